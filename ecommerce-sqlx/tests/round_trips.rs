//! The statements a whole checkout sends to each database, in order: the round trips the
//! unit of work promises (see `ecommerce_sqlx::SqlUnitOfWork`). A statement more, or one
//! that moved into another transaction, fails here with both lists printed.
//!
//! The statements are read from sqlx's own log (target `sqlx::query`, level `DEBUG`), one
//! event per statement sent, `COMMIT` included; `BEGIN` is not logged.

mod common;

use std::sync::Mutex;

use common::{Factory, Server, dollar_off, server_url, usd};
use ecommerce_core::catalog::{Product, Variant};
use ecommerce_core::checkout::CheckoutRequest;
use ecommerce_core::id::{CartId, CategoryId, CustomerId, IdempotencyKey, ProductId, Sku};
use ecommerce_core::money::Money;
use ecommerce_core::order::OrderStatus;
use ecommerce_core::payment::PaymentMethod;
use ecommerce_core::promotion::{Coupon, CouponCode, PromotionId};
use ecommerce_core::storefront::{Storefront, StorefrontConfig};
use ecommerce_core::testkit::{Backend, BackendFactory};
use ecommerce_sqlx::Db;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Every statement sqlx logged since the last [`sent`].
static STATEMENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records the summary of each statement sqlx logs.
struct Recorder;

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let meta = event.metadata();
        // Slow statements are logged again at WARN: count each statement once.
        if meta.target() != "sqlx::query" || *meta.level() != Level::DEBUG {
            return;
        }
        let mut summary = Summary::default();
        event.record(&mut summary);
        if let Some(statement) = summary.text() {
            STATEMENTS.lock().expect("not poisoned").push(statement);
        }
    }
}

/// A logged statement: sqlx gives its whole text in `db.statement` when `summary` shortens
/// it.
#[derive(Default)]
struct Summary {
    summary: Option<String>,
    statement: Option<String>,
}

impl Summary {
    fn text(self) -> Option<String> {
        let text = self.statement.filter(|s| !s.is_empty()).or(self.summary)?;
        Some(text.split_whitespace().collect::<Vec<_>>().join(" "))
    }
}

impl Visit for Summary {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "summary" => self.summary = Some(value.to_owned()),
            "db.statement" => self.statement = Some(value.to_owned()),
            _ => {}
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, format!("{value:?}").trim_matches('"'));
    }
}

/// The statements logged since the last call, without a new connection's settings: the
/// pool may open a connection in the middle of a checkout (`SET` on the servers, `PRAGMA`
/// on SQLite), which is no round trip of the checkout's own.
fn sent() -> Vec<String> {
    std::mem::take(&mut *STATEMENTS.lock().expect("not poisoned"))
        .into_iter()
        .filter(|s| !s.starts_with("SET ") && !s.starts_with("PRAGMA "))
        .collect()
}

fn sku() -> Sku {
    Sku::new("RT-1").expect("valid sku")
}

/// A shop on a fresh database of `server` (removed with the backend) with one product in
/// stock and an automatic promotion without limits (it applies to every order and holds no
/// use), after a guest's confirmed checkout of it (the pool's connection opened).
async fn shop_on(server: Server) -> Option<(Storefront, Backend)> {
    let factory = match server {
        Server::Postgres => Factory::postgres(),
        Server::MySql => Factory::mysql(),
        Server::Sqlite => Factory::sqlite(),
    };
    let backend = factory.backend().await?;
    let (shop, _gateway) = backend.storefront(StorefrontConfig::default());
    let category = CategoryId::new("gear").expect("valid slug");
    let product = Product::new(ProductId::new(), "Lamp", category)
        .with_variants([Variant::new(sku(), usd(2_500))]);
    shop.upsert_product(product).await.expect("product");
    shop.receive_stock(&sku(), 10).await.expect("stock");
    shop.save_promotion(&dollar_off("welcome"))
        .await
        .expect("promotion");
    checkout(&shop, "warm-up").await;
    Some((shop, backend))
}

/// A guest's whole checkout of one unit (the cart made with its item, then paid) and the
/// statements the payment sent.
async fn checkout(shop: &Storefront, key: &str) -> Vec<String> {
    let cart = shop.create_guest_cart_with(&sku(), 1).await.expect("cart");
    pay(shop, cart.id, key, usd(2_400)).await
}

/// Pays for a cart, and the statements the payment sent.
async fn pay(shop: &Storefront, cart: CartId, key: &str, total: Money) -> Vec<String> {
    let request = CheckoutRequest::new(
        cart,
        CustomerId::new(),
        PaymentMethod::new("tok_approve").expect("token"),
        IdempotencyKey::new(key).expect("key"),
    );
    confirmed(shop, request, total).await
}

/// A guest's "Buy now" of one unit, and the statements it sent.
async fn buy_now(shop: &Storefront, key: &str) -> Vec<String> {
    let request = CheckoutRequest::buy_now(
        sku(),
        1,
        CustomerId::new(),
        PaymentMethod::new("tok_approve").expect("token"),
        IdempotencyKey::new(key).expect("key"),
    );
    confirmed(shop, request, usd(2_400)).await
}

/// Places an order that must be confirmed at `total`, and the statements it sent.
async fn confirmed(shop: &Storefront, request: CheckoutRequest, total: Money) -> Vec<String> {
    sent();
    let order = shop
        .place_order(request)
        .await
        .expect("checkout")
        .into_order();
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(order.total, total, "the promotions applied");
    sent()
}

/// Compares statement by statement: each sent one must start with its expected beginning.
fn assert_statements(server: Server, sent: &[String], expected: &[&str]) {
    let matches =
        sent.len() == expected.len() && sent.iter().zip(expected).all(|(s, e)| s.starts_with(e));
    assert!(
        matches,
        "{server:?}: a checkout sent {} statements, {} expected\nsent:\n  {}\nexpected:\n  {}",
        sent.len(),
        expected.len(),
        sent.iter()
            .map(|s| s.chars().take(90).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n  "),
        expected.join("\n  ")
    );
}

/// What every dialect reads before the first transaction: the prices, the stock hint (a
/// sold-out cart stops here) and the automatic promotions. Not the cart: the storefront
/// stored it just before, and its claim in the first transaction is a compare-and-set on
/// the version it remembers (`StorefrontConfig::recent_carts`).
const READS: [&str; 3] = [
    "SELECT v.sku, p.data",
    "SELECT (SELECT ",
    "SELECT data FROM promotions",
];

/// The two transactions of a checkout on PostgreSQL: the order with its events is one
/// statement; so are the reservation row with the take and its ledger entry, and the sale
/// with its state, ledger and sold units.
const CHECKOUT_WRITES_POSTGRES: [&str; 8] = [
    // The claim, the order, the hold.
    "UPDATE carts SET version",
    "WITH changed AS (INSERT INTO orders",
    "WITH placed AS (INSERT INTO reservations",
    "COMMIT",
    // The sale: the order at the version the checkout read, the cart, the stock.
    "WITH changed AS (UPDATE orders",
    "UPDATE carts SET version",
    "WITH state AS (UPDATE reservations SET state = 'committed' WHERE order_id = $1 AND state = 'held'",
    "COMMIT",
];

/// One test for the three servers: the subscriber is global (SQLite runs its statements on
/// a thread of its own), and set once per test binary.
#[tokio::test]
async fn a_checkout_sends_the_statements_of_its_two_transactions() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Recorder))
        .expect("the only subscriber of this test binary");

    // PostgreSQL: see `CHECKOUT_WRITES_POSTGRES`.
    if let Some((shop, _backend)) = shop_on(Server::Postgres).await {
        let sent = checkout(&shop, "counted").await;
        let expected = &CHECKOUT_WRITES_POSTGRES[..];
        assert_statements(Server::Postgres, &sent, &[&READS[..], expected].concat());
        // Each change carries one event, sent as the outbox row's columns: no JSON array of
        // events for the server to parse.
        assert!(
            sent.iter().all(|s| !s.contains(" AS events ")),
            "an event sent as a JSON array: {sent:#?}"
        );

        // With a code of a limited promotion: its limit is checked on the promotion's row
        // (no count of use rows), its use reserved with the order, and committed in the sale
        // by the order's own use rows alone (the promotion's row, which every buyer's
        // reservation locks, is not locked again).
        shop.save_promotion(&dollar_off("ten-only").with_code_only().limited_to(
            Some(10),
            None,
            None,
        ))
        .await
        .expect("promotion");
        let code = CouponCode::new("TENONLY").expect("code");
        shop.save_coupon(&Coupon::new(
            code.clone(),
            PromotionId::new("ten-only").expect("id"),
        ))
        .await
        .expect("code");
        let cart = shop.create_guest_cart_with(&sku(), 1).await.expect("cart");
        shop.apply_coupon(cart.id, code.as_str())
            .await
            .expect("code applied");
        let sent = pay(&shop, cart.id, "with-a-code", usd(2_300)).await;
        let expected = [
            "SELECT v.sku, p.data",
            "SELECT (SELECT ",
            "SELECT data FROM promotions WHERE automatic",
            "SELECT promotion, max_uses FROM coupons",
            "SELECT data FROM promotions WHERE id",
            "SELECT data, taken, spent_minor FROM promotions",
            // The claim, the order, the promotion use, the hold.
            "UPDATE carts SET version",
            "WITH changed AS (INSERT INTO orders",
            "SELECT order_id FROM promotion_uses",
            "UPDATE promotions SET taken = taken + 1",
            "INSERT INTO promotion_customers",
            "UPDATE promotion_customers SET used = used + 1",
            "UPDATE coupons SET used = used + 1",
            "INSERT INTO promotion_uses",
            "WITH placed AS (INSERT INTO reservations",
            "COMMIT",
            // The sale: the order, the cart, the use, the stock.
            "WITH changed AS (UPDATE orders",
            "UPDATE carts SET version",
            "UPDATE promotion_uses SET state = 'committed'",
            "WITH state AS (UPDATE reservations SET state = 'committed' WHERE order_id = $1 AND state = 'held'",
            "COMMIT",
        ];
        assert_statements(Server::Postgres, &sent, &expected);

        // "Buy now": the cart made with its item and checked out in the same call, neither
        // the cart nor its price read again.
        let expected = [
            "SELECT v.sku, p.data",
            "INSERT INTO carts",
            "SELECT (SELECT ",
            "SELECT data FROM promotions",
        ];
        let sent = buy_now(&shop, "buy-now").await;
        let writes = &CHECKOUT_WRITES_POSTGRES[..];
        assert_statements(Server::Postgres, &sent, &[&expected[..], writes].concat());
    }

    // MySQL and MariaDB: no statement carries another's writes; the order is not read again.
    // MariaDB (10.5 and later) returns the new reservation row from its insert; MySQL reads
    // it back.
    if let Some((shop, _backend)) = shop_on(Server::MySql).await {
        let url = server_url(Server::MySql).expect("the server of the shop");
        let returning = Db::connect(&url).await.expect("connect").returning();
        let sent = checkout(&shop, "counted").await;
        let read_back: &[&str] = if returning {
            &[]
        } else {
            &["SELECT id, state, line_items"]
        };
        let placed = [
            "BEGIN",
            "UPDATE carts SET version",
            "INSERT IGNORE INTO orders",
            "INSERT INTO outbox",
            "INSERT IGNORE INTO reservations",
        ];
        let expected = [
            "UPDATE stock SET on_hand",
            "INSERT INTO stock_ledger",
            "COMMIT",
            "BEGIN",
            "UPDATE orders SET status",
            "INSERT INTO outbox",
            "UPDATE carts SET version",
            "SELECT id, state, line_items",
            "INSERT INTO stock_ledger",
            "UPDATE reservations SET state",
            "INSERT INTO stock_sold",
            "COMMIT",
        ];
        assert_statements(
            Server::MySql,
            &sent,
            &[&READS[..], &placed, read_back, &expected].concat(),
        );
    }

    // SQLite: the same statements in process (its BEGIN and COMMIT are not logged).
    if let Some((shop, _backend)) = shop_on(Server::Sqlite).await {
        let sent = checkout(&shop, "counted").await;
        let expected = [
            "UPDATE carts SET version",
            "INSERT INTO orders",
            "INSERT INTO outbox",
            "INSERT INTO reservations",
            "UPDATE stock SET on_hand",
            "INSERT INTO stock_ledger",
            "UPDATE orders SET status",
            "INSERT INTO outbox",
            "UPDATE carts SET version",
            "SELECT id, state, line_items",
            "INSERT INTO stock_ledger",
            "UPDATE reservations SET state",
            "INSERT INTO stock_sold",
        ];
        assert_statements(Server::Sqlite, &sent, &[&READS[..], &expected].concat());
    }
}
