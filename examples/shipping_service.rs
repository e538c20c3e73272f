//! A shipping service beside the shop: it consumes `OrderConfirmed` from the shop's NATS
//! JetStream stream with a durable consumer, makes one parcel per order (a table of its own
//! in the shop's database, keyed by the order id) and moves the order to SHIPPED, exactly
//! once per order however often an event is redelivered or the service is restarted.
//!
//! Run with:
//!
//! ```text
//! # beside a shop that relays its outbox to NATS (cargo run -p shop -- --nats-url ...):
//! cargo run --example shipping_service -- --database-url postgres://postgres@127.0.0.1/shop \
//!     --nats-url nats://127.0.0.1:4222
//! # or on its own: place 200 orders in a fresh SQLite database, relay, ship them, exit
//! cargo run --example shipping_service -- --demo 200
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Parser;
use ecommerce::catalog::{Category, Product, Variant};
use ecommerce::error::EventError;
use ecommerce::events::OutboxRelay;
use ecommerce::id::{CategoryId, CustomerId, IdempotencyKey, ProductId, Sku};
use ecommerce::order::Order;
use ecommerce::payment::{PaymentMethod, TestGateway};
use ecommerce::{CheckoutRequest, Currency, Money, Storefront};
use ecommerce_events::fulfilment::{Carrier, Fulfilment, Shipment};
use ecommerce_events::nats::{EventConsumer, EventStream, JetStreamPublisher};
use ecommerce_sqlx::{Db, Dialect, Pool, SqlStores};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

#[derive(Debug, Parser)]
#[command(about = "Ships the shop's confirmed orders, once each, from its NATS event stream")]
struct Args {
    /// The shop's database (PostgreSQL, MySQL/MariaDB or SQLite).
    #[arg(long, env = "SHOP_DATABASE_URL")]
    database_url: Option<String>,
    /// The NATS server with JetStream.
    #[arg(long, env = "SHOP_NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The shop's event stream.
    #[arg(long, default_value = "SHOP")]
    stream: String,
    /// Its subject prefix.
    #[arg(long, default_value = "shop")]
    prefix: String,
    /// Place this many orders in a fresh SQLite database and a stream of its own, relay
    /// them, ship them all and exit.
    #[arg(long)]
    demo: Option<usize>,
}

/// Runs `$body` with `$pool` bound to the database's pool of its own driver (the body is
/// compiled once per driver).
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db.pool() {
            Pool::Postgres($pool) => $body,
            Pool::MySql($pool) => $body,
            Pool::Sqlite($pool) => $body,
            _ => Err(sqlx::Error::Configuration(
                "the shop's database is PostgreSQL, MySQL or SQLite".into(),
            )),
        }
    };
}

/// Parcels in a table of the shop's database: one row per order, so asking twice for an
/// order's parcel returns the first one.
#[derive(Debug)]
struct TableCarrier {
    db: Db,
}

impl TableCarrier {
    async fn new(db: Db) -> Result<Self> {
        db.execute(
            "CREATE TABLE IF NOT EXISTS shipments (order_id VARCHAR(64) PRIMARY KEY, tracking VARCHAR(64) NOT NULL)",
        )
        .await?;
        Ok(TableCarrier { db })
    }

    async fn parcels(&self) -> Result<i64> {
        Ok(on_pool!(self.db, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM shipments"
        )
        .fetch_one(pool)
        .await)?)
    }
}

#[async_trait]
impl Carrier for TableCarrier {
    async fn shipment(&self, order: &Order) -> std::result::Result<Shipment, EventError> {
        let (insert, select) = match self.db.dialect() {
            Dialect::Postgres => (
                "INSERT INTO shipments (order_id, tracking) VALUES ($1, $2) ON CONFLICT (order_id) DO NOTHING",
                "SELECT tracking FROM shipments WHERE order_id = $1",
            ),
            Dialect::MySql => (
                "INSERT IGNORE INTO shipments (order_id, tracking) VALUES (?, ?)",
                "SELECT tracking FROM shipments WHERE order_id = ?",
            ),
            _ => (
                "INSERT INTO shipments (order_id, tracking) VALUES (?, ?) ON CONFLICT (order_id) DO NOTHING",
                "SELECT tracking FROM shipments WHERE order_id = ?",
            ),
        };
        let id = order.id.to_string();
        let tracking = format!("1Z{}", &order.id.to_string().replace('-', "")[..16]).to_uppercase();
        let failed = |e: sqlx::Error| EventError::Delivery {
            message: format!("recording the shipment: {e}"),
            source: Some(Arc::new(e)),
        };
        on_pool!(self.db, |pool| sqlx::query(insert)
            .bind(&id)
            .bind(&tracking)
            .execute(pool)
            .await
            .map(drop))
        .map_err(failed)?;
        let tracking: String = on_pool!(self.db, |pool| sqlx::query_scalar(select)
            .bind(&id)
            .fetch_one(pool)
            .await)
        .map_err(failed)?;
        Ok(Shipment {
            order: order.id,
            tracking,
        })
    }
}

/// Consumes `OrderConfirmed` until stopped.
async fn serve(shop: Storefront, carrier: Arc<TableCarrier>, stream: &EventStream) -> Result<()> {
    let consumer = EventConsumer::durable(
        stream,
        "shipping",
        &stream.subject("order", "order_confirmed"),
    )
    .await?;
    consumer.run(&Fulfilment::new(shop, carrier)).await;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.demo {
        Some(orders) => demo(&args, orders).await,
        None => {
            let url = args
                .database_url
                .as_deref()
                .ok_or("--database-url (or SHOP_DATABASE_URL) names the shop's database")?;
            let stores = SqlStores::connect(url).await?;
            let shop = stores.storefront(Arc::new(TestGateway::default()))?;
            let carrier = Arc::new(TableCarrier::new(stores.db.clone()).await?);
            let stream = EventStream::connect(&args.nats_url, &args.stream, &args.prefix).await?;
            println!(
                "Shipping the confirmed orders of stream {} (Ctrl-C to stop)",
                args.stream
            );
            tokio::select! {
                served = serve(shop, carrier, &stream) => served,
                _ = tokio::signal::ctrl_c() => Ok(()),
            }
        }
    }
}

/// A shop of its own: orders placed, relayed to a stream of its own, shipped once each.
async fn demo(args: &Args, orders: usize) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("shipping-demo-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}?mode=rwc", dir.join("shop.db").display());
    let stores = SqlStores::connect(&url).await?;
    let shop = stores.storefront(Arc::new(TestGateway::default()))?;
    let carrier = Arc::new(TableCarrier::new(stores.db.clone()).await?);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let stream = EventStream::connect(
        &args.nats_url,
        &format!("SHIPPING_DEMO_{tag}"),
        &format!("shipping_demo_{tag}"),
    )
    .await?;

    let sku = Sku::new("PARCEL-1")?;
    let category = CategoryId::new("demo")?;
    shop.upsert_category(Category::new(category.clone(), "Demo"))
        .await?;
    shop.upsert_product(
        Product::new(ProductId::new(), "Boxed kettle", category).with_variants([Variant::new(
            sku.clone(),
            Money::from_minor(2_499, Currency::USD),
        )]),
    )
    .await?;
    shop.receive_stock(&sku, orders as u32).await?;

    let relay = OutboxRelay::publishing(
        shop.outbox().clone(),
        Arc::new(JetStreamPublisher::new(stream.clone())),
    );
    let relay = tokio::spawn(async move { relay.run().await });
    let service = {
        let (shop, carrier, stream) = (shop.clone(), carrier.clone(), stream.clone());
        tokio::spawn(async move { serve(shop, carrier, &stream).await })
    };

    let started = Instant::now();
    for n in 0..orders {
        let cart = shop.create_guest_cart().await?;
        shop.add_item(cart.id, &sku, 1).await?;
        shop.place_order(CheckoutRequest::new(
            cart.id,
            CustomerId::new(),
            PaymentMethod::new("tok_approve")?,
            IdempotencyKey::new(format!("demo-{n}"))?,
        ))
        .await?;
    }
    println!(
        "{orders} orders placed and confirmed in {:.1?}",
        started.elapsed()
    );

    let deadline = Instant::now() + Duration::from_secs(120);
    let shipped = loop {
        let shipped = shipped_orders(&stores.db).await?;
        if shipped == orders || Instant::now() > deadline {
            break shipped;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    relay.abort();
    service.abort();
    let parcels = carrier.parcels().await?;
    println!(
        "{shipped} of {orders} orders shipped, {parcels} parcels, in {:.1?}",
        started.elapsed()
    );
    stream.delete().await?;
    drop(stores);
    let _ = std::fs::remove_dir_all(&dir);
    if shipped == orders && parcels == orders as i64 {
        println!("Every confirmed order shipped exactly once.");
        Ok(())
    } else {
        Err(format!("{shipped} shipped and {parcels} parcels for {orders} orders").into())
    }
}

/// Orders that are SHIPPED.
async fn shipped_orders(db: &Db) -> Result<usize> {
    let shipped: i64 = on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM orders WHERE status = 'shipped'"
    )
    .fetch_one(pool)
    .await)?;
    Ok(shipped as usize)
}
