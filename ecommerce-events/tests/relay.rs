//! The outbox relayed to NATS JetStream with the relay, the shipping consumer and the analytics
//! exporter each killed part-way: every event arrives once, in order per order, every
//! confirmed order ships exactly once, and the Parquet history answers the revenue to the
//! cent against SQL.
//!
//! Needs `ECOMMERCE_TEST_NATS_URL` (NATS with JetStream) and `ECOMMERCE_TEST_POSTGRES_URL`;
//! skipped without them unless `ECOMMERCE_TEST_REQUIRE_SERVICES=1`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ecommerce_core::catalog::{Category, Product, Variant};
use ecommerce_core::checkout::CheckoutRequest;
use ecommerce_core::error::EventError;
use ecommerce_core::events::{DomainEvent, EventPublisher, Outbox, OutboxRecord, OutboxRelay};
use ecommerce_core::id::{
    CategoryId, CustomerId, EventId, IdempotencyKey, OrderId, ProductId, Sku,
};
use ecommerce_core::money::{Currency, Money};
use ecommerce_core::payment::{PaymentMethod, TestGateway};
use ecommerce_core::storefront::Storefront;
use ecommerce_events::analytics::{self, ParquetExporter};
use ecommerce_events::nats::{EventConsumer, EventStream, JetStreamPublisher};
use ecommerce_sqlx::{Db, SqlStores};
use rust_decimal::Decimal;
use tokio::task::JoinHandle;

const ORDERS: usize = 10_000;
const BUYERS: usize = 32;
const SKUS: usize = 12;

fn required() -> bool {
    std::env::var("ECOMMERCE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if required() => panic!("{var} is not set and ECOMMERCE_TEST_REQUIRE_SERVICES=1"),
        _ => {
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// A database of its own on the test server, dropped at the end.
struct Database {
    admin: Db,
    name: String,
    url: String,
}

impl Database {
    async fn create(server: &str) -> Database {
        let admin = Db::connect(server).await.expect("the PostgreSQL server");
        let name = format!("events_{}", uuid::Uuid::new_v4().simple());
        admin
            .execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
        let url = format!("{base}/{name}");
        Database { admin, name, url }
    }

    async fn drop(self) {
        let _ = self
            .admin
            .execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

async fn seed(shop: &Storefront) -> Vec<Sku> {
    let category = CategoryId::new("events").unwrap();
    shop.upsert_category(Category::new(category.clone(), "Events"))
        .await
        .unwrap();
    let mut skus = Vec::new();
    for i in 0..SKUS {
        let sku = Sku::new(format!("EVT-{i:02}")).unwrap();
        shop.upsert_product(
            Product::new(ProductId::new(), format!("Thing {i}"), category.clone()).with_variants([
                Variant::new(
                    sku.clone(),
                    Money::from_minor(199 + 137 * i as i64, Currency::USD),
                ),
            ]),
        )
        .await
        .unwrap();
        shop.receive_stock(&sku, 1_000_000).await.unwrap();
        skus.push(sku);
    }
    skus
}

/// Buyer `b` places orders `b, b + BUYERS, ...`: one to three lines each.
async fn buy(shop: Storefront, skus: Vec<Sku>, buyer: usize) {
    for n in (buyer..ORDERS).step_by(BUYERS) {
        let cart = shop.create_guest_cart().await.unwrap();
        for k in 0..(1 + n % 3) {
            let sku = &skus[(n * 7 + k * 5) % SKUS];
            shop.add_item(cart.id, sku, 1 + (n % 2) as u32)
                .await
                .unwrap();
        }
        let request = CheckoutRequest::new(
            cart.id,
            CustomerId::new(),
            PaymentMethod::new("tok_approve").unwrap(),
            IdempotencyKey::new(format!("order-{n}")).unwrap(),
        );
        shop.place_order(request).await.expect("checkout");
    }
}

fn relay(shop: &Storefront, stream: &EventStream) -> JoinHandle<()> {
    let relay = OutboxRelay::publishing(
        shop.outbox().clone(),
        Arc::new(JetStreamPublisher::new(stream.clone())),
    )
    .batch_size(200)
    .poll_interval(Duration::from_millis(20));
    tokio::spawn(async move { relay.run().await })
}

/// The shipping example (`examples/shipping_service.rs`) as a process of its own, on the
/// test's database and stream; built first when the test runs without the workspace's
/// examples.
struct ShippingService(std::process::Child);

impl ShippingService {
    fn binary() -> PathBuf {
        let target = std::env::current_exe().expect("the test's path");
        let profile = target
            .parent()
            .and_then(|deps| deps.parent())
            .expect("target/<profile>/deps");
        let binary = profile.join("examples").join("shipping_service");
        if !binary.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
            let status = std::process::Command::new(cargo)
                .args(["build", "--example", "shipping_service"])
                .current_dir(root)
                .status()
                .expect("cargo build --example shipping_service");
            assert!(status.success(), "building the shipping example failed");
        }
        binary
    }

    fn start(database: &str, nats: &str, stream: &EventStream) -> ShippingService {
        let child = std::process::Command::new(Self::binary())
            .args(["--database-url", database, "--nats-url", nats])
            .args(["--stream", stream.name(), "--prefix", stream.prefix()])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("the shipping service starts");
        ShippingService(child)
    }

    /// SIGKILL: no goodbye, whatever it was doing.
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exporter(stream: &EventStream, dir: PathBuf) -> JoinHandle<()> {
    let stream = stream.clone();
    tokio::spawn(async move {
        let mut exporter = ParquetExporter::open(&dir).expect("exporter");
        stream.export_history(&mut exporter).await
    })
}

async fn stream_messages(stream: &EventStream) -> u64 {
    let mut info = stream
        .context()
        .get_stream(stream.name())
        .await
        .expect("stream");
    info.info().await.expect("stream info").state.messages
}

async fn wait_for(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn kill(task: JoinHandle<()>) {
    task.abort();
    let _ = task.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_orders_relayed_through_kills_ship_once_and_add_up() {
    let (Some(nats), Some(pg)) = (
        service("ECOMMERCE_TEST_NATS_URL"),
        service("ECOMMERCE_TEST_POSTGRES_URL"),
    ) else {
        return;
    };
    let database = Database::create(&pg).await;
    let stores = SqlStores::connect(&database.url).await.expect("stores");
    let shop = stores
        .storefront(Arc::new(TestGateway::default()))
        .expect("storefront");
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let stream = EventStream::connect(&nats, &format!("TEST_{tag}"), &format!("test_{tag}"))
        .await
        .expect("NATS");
    let history = tempfile::tempdir().unwrap();
    let skus = seed(&shop).await;
    let started = Instant::now();

    let mut relay_task = relay(&shop, &stream);
    let mut shipping_service = ShippingService::start(&database.url, &nats, &stream);
    let mut export_task = exporter(&stream, history.path().to_owned());
    let buyers: Vec<_> = (0..BUYERS)
        .map(|b| tokio::spawn(buy(shop.clone(), skus.clone(), b)))
        .collect();

    // Kill the relay twice in the middle, and each consumer once; start them again.
    for (i, at) in [(ORDERS * 2) / 3, (ORDERS * 4) / 3].into_iter().enumerate() {
        wait_for(
            "events in the stream",
            Duration::from_secs(600),
            async || stream_messages(&stream).await >= at as u64,
        )
        .await;
        kill(relay_task).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        relay_task = relay(&shop, &stream);
        if i == 0 {
            shipping_service.kill();
            shipping_service = ShippingService::start(&database.url, &nats, &stream);
        } else {
            kill(export_task).await;
            export_task = exporter(&stream, history.path().to_owned());
        }
    }
    for buyer in buyers {
        buyer.await.expect("buyer");
    }
    let placed = started.elapsed();
    // Placed + confirmed + shipped for every order.
    let expected = 3 * ORDERS as u64;
    wait_for(
        "every event in the stream",
        Duration::from_secs(600),
        async || {
            stream_messages(&stream).await >= expected
                && shop.outbox().pending(1).await.unwrap().is_empty()
        },
    )
    .await;
    let dir = history.path().to_owned();
    wait_for("the history", Duration::from_secs(600), async || {
        analytics::exported_up_to(&dir).unwrap() >= expected
    })
    .await;
    eprintln!(
        "{ORDERS} orders placed in {placed:.1?}, relayed, shipped and exported in {:.1?}",
        started.elapsed()
    );
    kill(relay_task).await;
    shipping_service.kill();
    kill(export_task).await;

    // Every event once, in order per order.
    assert_eq!(
        stream_messages(&stream).await,
        expected,
        "no event twice in the stream"
    );
    let replay = EventConsumer::replay(&stream, 1, &format!("{}.>", stream.prefix()))
        .await
        .expect("replay");
    let mut seen: HashSet<EventId> = HashSet::new();
    let mut steps: HashMap<OrderId, Vec<&'static str>> = HashMap::new();
    let mut confirmed: HashMap<OrderId, Money> = HashMap::new();
    let mut last_seq = 0;
    while (seen.len() as u64) < expected {
        let batch = replay
            .next_batch(1_000, Duration::from_secs(2))
            .await
            .expect("replay batch");
        assert!(
            !batch.is_empty(),
            "the replay ended at {} events",
            seen.len()
        );
        for delivery in batch {
            assert!(delivery.stream_seq > last_seq, "replayed in stream order");
            last_seq = delivery.stream_seq;
            assert!(
                seen.insert(delivery.event.id),
                "event {} twice",
                delivery.event.id
            );
            let (order, step) = match delivery.event.event {
                DomainEvent::OrderPlaced { order, .. } => (order, "placed"),
                DomainEvent::OrderConfirmed { order, total, .. } => {
                    confirmed.insert(order, total);
                    (order, "confirmed")
                }
                DomainEvent::OrderShipped { order } => (order, "shipped"),
                other => panic!("unexpected event {other:?}"),
            };
            steps.entry(order).or_default().push(step);
        }
    }
    assert_eq!(steps.len(), ORDERS);
    for (order, steps) in &steps {
        assert_eq!(steps, &["placed", "confirmed", "shipped"], "order {order}");
    }

    // The shipping example shipped every order exactly once: one parcel per order, one
    // SHIPPED transition per order (one OrderShipped above).
    let ecommerce_sqlx::Pool::Postgres(pg) = stores.db.pool() else {
        panic!("the relay test runs on PostgreSQL");
    };
    let (parcels, orders_with_parcels): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM shipments")
            .fetch_one(pg)
            .await
            .expect("count parcels");
    assert_eq!(
        (parcels, orders_with_parcels),
        (ORDERS as i64, ORDERS as i64)
    );
    let shipped: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE status = 'shipped'")
        .fetch_one(pg)
        .await
        .expect("count shipped");
    assert_eq!(shipped, ORDERS as i64);

    // The Parquet history answers the revenue and the units to the cent against SQL.
    let revenue = analytics::daily_revenue(history.path()).expect("daily revenue");
    let parquet_total: Decimal = revenue
        .values()
        .flat_map(|by_currency| by_currency.get(&Currency::USD))
        .sum();
    let sql_total: String = sqlx::query_scalar(
        "SELECT CAST(SUM(CAST(data::jsonb #>> '{total,amount}' AS NUMERIC)) AS TEXT) FROM orders",
    )
    .fetch_one(pg)
    .await
    .expect("SQL revenue");
    let sql_total: Decimal = sql_total.parse().unwrap();
    assert_eq!(parquet_total, sql_total);
    assert_eq!(
        parquet_total,
        confirmed.values().map(|m| m.amount).sum::<Decimal>()
    );
    let mut sql_units: BTreeMap<String, u64> = BTreeMap::new();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT line ->> 'sku', CAST(SUM(CAST(line ->> 'quantity' AS BIGINT)) AS BIGINT) \
         FROM orders, jsonb_array_elements(data::jsonb -> 'lines') AS line GROUP BY 1",
    )
    .fetch_all(pg)
    .await
    .expect("SQL units");
    for (sku, units) in rows {
        sql_units.insert(sku, units as u64);
    }
    let top = analytics::top_skus(history.path(), SKUS).expect("top SKUs");
    assert_eq!(top.len(), SKUS);
    for (sku, units) in &top {
        assert_eq!(sql_units.get(sku), Some(units), "units of {sku}");
    }
    eprintln!(
        "revenue {parquet_total} USD over {} day(s); top SKU {:?}",
        revenue.len(),
        top[0]
    );

    stream.delete().await.expect("delete the stream");
    drop(stores);
    database.drop().await;
}

/// An outbox holding one good event of an order, a corrupt row, and a second event of the
/// same order: a publisher that rejects the first for good.
#[derive(Debug, Default)]
struct ScriptedOutbox {
    rows: Mutex<Vec<OutboxRecord>>,
}

#[async_trait]
impl Outbox for ScriptedOutbox {
    async fn pending(
        &self,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>, ecommerce_core::error::StoreError> {
        Ok(self
            .rows
            .lock()
            .unwrap()
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn acknowledge(&self, ids: &[EventId]) -> Result<(), ecommerce_core::error::StoreError> {
        self.rows.lock().unwrap().retain(|r| !ids.contains(&r.id));
        Ok(())
    }
}

fn record(seq: u64, event: DomainEvent) -> OutboxRecord {
    OutboxRecord::new(seq, &ecommerce_core::events::EventEnvelope::new(event))
}

#[tokio::test]
async fn corrupt_events_go_to_the_dead_letters_and_the_relay_goes_on() {
    let Some(nats) = service("ECOMMERCE_TEST_NATS_URL") else {
        return;
    };
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let stream = EventStream::connect(&nats, &format!("TEST_{tag}"), &format!("test_{tag}"))
        .await
        .expect("NATS");
    let order = OrderId::new();
    let good = record(1, DomainEvent::OrderShipped { order });
    let mut corrupt = record(2, DomainEvent::OrderDelivered { order });
    corrupt.payload = "{not json".into();
    let after = record(
        3,
        DomainEvent::OrderShipped {
            order: OrderId::new(),
        },
    );
    let outbox = Arc::new(ScriptedOutbox::default());
    *outbox.rows.lock().unwrap() = vec![good.clone(), corrupt.clone(), after.clone()];
    let publisher = Arc::new(JetStreamPublisher::new(stream.clone()));
    let relay = OutboxRelay::publishing(outbox.clone(), publisher.clone());
    let round = relay.round().await.expect("round");
    assert_eq!(
        (round.delivered, round.dead_letters, round.failed),
        (2, 1, 0)
    );
    assert!(outbox.rows.lock().unwrap().is_empty());

    // A message on the stream that is not an event: the consumer sets it aside and goes on.
    stream
        .context()
        .publish(stream.subject("order", "order_shipped"), "garbage".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let later = record(
        4,
        DomainEvent::OrderShipped {
            order: OrderId::new(),
        },
    );
    assert!(publisher.publish(std::slice::from_ref(&later)).await[0].is_ok());
    // Published again (an acknowledgement lost): JetStream drops the duplicate.
    assert!(publisher.publish(std::slice::from_ref(&later)).await[0].is_ok());

    let filter = stream.subject("order", "order_shipped");
    let consumer = EventConsumer::durable(&stream, "test", &filter)
        .await
        .expect("consumer");
    let batch = consumer
        .next_batch(10, Duration::from_secs(1))
        .await
        .expect("batch");
    let ids: Vec<EventId> = batch.iter().map(|d| d.event.id).collect();
    assert_eq!(ids, vec![good.id, after.id, later.id]);

    let mut raw = stream
        .context()
        .get_stream(stream.name())
        .await
        .expect("stream");
    let info = raw.info().await.expect("info");
    // good, corrupt (dead letter), after, garbage, garbage's dead letter, later.
    assert_eq!(info.state.messages, 6);
    let subjects = raw.info().await.expect("info").state.subjects_count;
    assert_eq!(subjects, 2, "the events' subject and the dead letters'");
    stream.delete().await.expect("delete");
}

/// Keeps the publisher API honest: a rejected row is tried `max_attempts` times, then set
/// aside, and the rows after it of other orders are not held back.
#[derive(Debug, Default)]
struct Rejecting {
    attempts: AtomicUsize,
    dead: Mutex<Vec<(u64, String)>>,
}

#[async_trait]
impl EventPublisher for Rejecting {
    async fn publish(&self, records: &[OutboxRecord]) -> Vec<Result<(), EventError>> {
        records
            .iter()
            .map(|r| {
                if r.seq == 1 {
                    self.attempts.fetch_add(1, Ordering::SeqCst);
                    Err(EventError::Rejected {
                        message: "too large".into(),
                    })
                } else {
                    Ok(())
                }
            })
            .collect()
    }

    async fn dead_letter(&self, record: &OutboxRecord, reason: &str) -> Result<(), EventError> {
        self.dead
            .lock()
            .unwrap()
            .push((record.seq, reason.to_owned()));
        Ok(())
    }
}

#[tokio::test]
async fn a_rejected_event_is_tried_then_set_aside_without_holding_other_orders() {
    let order = OrderId::new();
    let outbox = Arc::new(ScriptedOutbox::default());
    *outbox.rows.lock().unwrap() = vec![
        record(1, DomainEvent::OrderShipped { order }),
        record(
            2,
            DomainEvent::OrderShipped {
                order: OrderId::new(),
            },
        ),
        record(3, DomainEvent::OrderDelivered { order }),
    ];
    let publisher = Arc::new(Rejecting::default());
    let relay = OutboxRelay::publishing(outbox.clone(), publisher.clone()).max_attempts(3);
    let first = relay.round().await.expect("round");
    // The other order's event went; the rejected one holds back its own order's next event.
    assert_eq!(
        (first.delivered, first.dead_letters, first.failed),
        (1, 0, 1)
    );
    assert_eq!(outbox.rows.lock().unwrap().len(), 2);
    relay.round().await.expect("round");
    let third = relay.round().await.expect("round");
    assert_eq!((third.delivered, third.dead_letters), (1, 1));
    assert_eq!(publisher.attempts.load(Ordering::SeqCst), 3);
    let dead = publisher.dead.lock().unwrap().clone();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, 1);
    assert!(dead[0].1.contains("rejected 3 times"), "{}", dead[0].1);
    assert!(outbox.rows.lock().unwrap().is_empty());
}

/// NATS goes away while orders are placed: their events wait in the outbox, the relay backs
/// off, and once NATS is back every event arrives, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_keeps_events_in_the_outbox_and_the_relay_catches_up() {
    use ecommerce_core::testkit::proxy::{CutMode, TcpProxy};

    let Some(nats) = service("ECOMMERCE_TEST_NATS_URL") else {
        return;
    };
    let upstream = nats
        .trim_start_matches("nats://")
        .parse()
        .expect("ECOMMERCE_TEST_NATS_URL is nats://host:port");
    let proxy = TcpProxy::start(upstream);
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let (name, prefix) = (format!("TEST_{tag}"), format!("test_{tag}"));
    // The relay's connection goes through the proxy; the test looks at the stream directly.
    let through_proxy = EventStream::connect(&format!("nats://{}", proxy.addr()), &name, &prefix)
        .await
        .expect("NATS through the proxy");
    let direct = EventStream::connect(&nats, &name, &prefix)
        .await
        .expect("NATS");
    let shop = Storefront::in_memory(Arc::new(TestGateway::default()));
    let skus = seed(&shop).await;
    let relay = OutboxRelay::publishing(
        shop.outbox().clone(),
        Arc::new(JetStreamPublisher::new(through_proxy.clone())),
    )
    .poll_interval(Duration::from_millis(20))
    .max_backoff(Duration::from_millis(500));
    let relay = tokio::spawn(async move { relay.run().await });
    let place = async |from: usize| {
        for n in from..from + 20 {
            let cart = shop.create_guest_cart().await.unwrap();
            shop.add_item(cart.id, &skus[n % SKUS], 1).await.unwrap();
            shop.place_order(CheckoutRequest::new(
                cart.id,
                CustomerId::new(),
                PaymentMethod::new("tok_approve").unwrap(),
                IdempotencyKey::new(format!("outage-{n}")).unwrap(),
            ))
            .await
            .expect("checkout");
        }
    };

    place(0).await;
    wait_for(
        "the first orders' events",
        Duration::from_secs(30),
        async || stream_messages(&direct).await == 40,
    )
    .await;
    proxy.cut(CutMode::Refuse);
    place(20).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(stream_messages(&direct).await, 40, "nothing reached NATS");
    assert_eq!(
        shop.outbox().pending(100).await.unwrap().len(),
        40,
        "the events wait in the outbox"
    );
    proxy.restore();
    wait_for(
        "the relay to catch up",
        Duration::from_secs(60),
        async || shop.outbox().pending(1).await.unwrap().is_empty(),
    )
    .await;
    relay.abort();
    assert_eq!(stream_messages(&direct).await, 80, "every event once");
    direct.delete().await.expect("delete");
}
