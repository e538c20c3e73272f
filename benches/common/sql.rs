//! The raw SQL floor the benchmarks measure the SDK against, and throwaway databases to run
//! them in.

use std::time::Duration;

use ecommerce::cart::{Cart, CartLine, CheckoutClaim};
use ecommerce::id::{OrderId, ProductId, Sku};
use ecommerce::money::{Currency, Money};
use ecommerce_sqlx::types::{Json, Time, Uuid};
use ecommerce_sqlx::{Db, DbOptions};
use sqlx::Executor;

const TTL: Duration = Duration::from_secs(3600);

/// The raw floor: one reservation of one unit, the statements the SDK sends, on the native
/// driver.
#[derive(Clone)]
pub(crate) enum Raw {
    Postgres(sqlx::PgPool),
    /// MySQL or MariaDB; `true` when the server answers `INSERT ... RETURNING` (MariaDB 10.5
    /// and later), as the SDK asks it at connect.
    MySql(sqlx::MySqlPool, bool),
    Sqlite(sqlx::SqlitePool),
}

const PG_TAKE: &str = "UPDATE stock SET on_hand = on_hand - $1, taken = taken + $2 WHERE sku = $3 AND bucket = $4 AND on_hand >= $5";
const PG_LEDGER: &str = "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES ($1, 'reserved', $2, $3, $4)";
const PG_ROW: &str = "INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES ($1, $2, 'held', $3, $4, clock_timestamp() + $5 * INTERVAL '1 microsecond') ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at";
const MY_TAKE: &str = "UPDATE stock SET on_hand = on_hand - ?, taken = taken + ? WHERE sku = ? AND bucket = ? AND on_hand >= ?";
const MY_LEDGER: &str =
    "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES (?, 'reserved', ?, ?, ?)";
const MY_ROW: &str = "INSERT IGNORE INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES (?, ?, 'held', ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)";
const MARIADB_ROW: &str = "INSERT IGNORE INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES (?, ?, 'held', ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND) RETURNING id, state, line_items, takes, expires_at";
const PG_BUCKETS: &str = "SELECT bucket, on_hand FROM stock WHERE sku = $1 ORDER BY bucket";
const MY_BUCKETS: &str = "SELECT bucket, on_hand FROM stock WHERE sku = ? ORDER BY bucket";
const PG_READ: &str =
    "SELECT id, state, line_items, takes, expires_at FROM reservations WHERE order_id = $1";
const MY_READ: &str =
    "SELECT id, state, line_items, takes, expires_at FROM reservations WHERE order_id = ?";
const LITE_ROW: &str = "INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES (?, ?, 'held', ?, ?, strftime('%Y-%m-%dT%H:%M:%f', 'now', '+' || (? / 1000000.0) || ' seconds') || '000Z') ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at";

pub(crate) type Row = (Uuid, String, Json<String>, Json<String>, Time);

/// Moves one unit of bucket 0 of `sku` with a stock statement (`take` or `sell`: both bind
/// the quantity twice, the SKU, the bucket and the quantity again); the rows it changed.
/// PostgreSQL: the reservation row and, when it is new, one unit of bucket 0 taken for its
/// order with the ledger entry, one statement; the row and whether the unit was taken.
const PG_ROW_TAKING: &str = "WITH placed AS (INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES ($1, $2, 'held', $3, $4, clock_timestamp() + $5 * INTERVAL '1 microsecond') ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at), took AS (UPDATE stock SET on_hand = on_hand - $6, taken = taken + $6 WHERE sku = $7 AND bucket = 0 AND on_hand >= $6 AND EXISTS (SELECT 1 FROM placed) RETURNING sku), logged AS (INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) SELECT sku, 'reserved', $6, $1, $8 FROM took) SELECT id, state, line_items, takes, expires_at, CAST((SELECT COUNT(*) FROM took) AS BIGINT) FROM placed";

/// Runs [`PG_ROW_TAKING`]-shaped `$sql` for one unit of `$sku` for `$order`: units taken
/// (0 or 1).
macro_rules! row_taking {
    ($sql:expr, $order:expr, $lines:expr, $takes:expr, $sku:expr, $tx:ident) => {{
        let row: Option<(Uuid, String, Json<String>, Json<String>, Time, i64)> =
            sqlx::query_as($sql)
                .bind(&$order)
                .bind(Uuid(uuid::Uuid::now_v7()))
                .bind(Json(&$lines))
                .bind(Json(&$takes))
                .bind(TTL.as_micros() as i64)
                .bind(1i64)
                .bind($sku)
                .bind(Time::now())
                .fetch_optional(&mut *$tx)
                .await?;
        match row {
            Some(row) => row.5,
            None => {
                return Err(sqlx::Error::Protocol(format!(
                    "reservation of {} not inserted",
                    $order
                )));
            }
        }
    }};
}

macro_rules! one_unit {
    ($sql:expr, $sku:expr, $tx:ident) => {
        sqlx::query($sql)
            .bind(1i64)
            .bind(1i64)
            .bind($sku)
            .bind(0i64)
            .bind(1i64)
            .execute(&mut *$tx)
            .await?
            .rows_affected()
    };
}

macro_rules! raw_reserve {
    ($pool:expr, $begin:expr, $take:expr, $row_taking:expr, $ledger:expr, $row:expr, $buckets:expr, $sku:expr, $returning:expr) => {{
        let row_taking: Option<&str> = $row_taking;
        let sku: &str = $sku;
        let order = Uuid::from(OrderId::new());
        let lines = format!(r#"[{{"sku":"{sku}","quantity":1}}]"#);
        let takes = format!(r#"[{{"sku":"{sku}","bucket":0,"quantity":1}}]"#);
        // As the SDK does: the reservation row, then the stock row (held from there to the
        // commit) and the ledger (on PostgreSQL all in one statement).
        let mut tx = $begin;
        let taken = if let Some(row_taking) = row_taking {
            row_taking!(row_taking, order, lines, takes, sku, tx)
        } else {
            if $returning {
                let _: Option<Row> = sqlx::query_as($row)
                    .bind(&order)
                    .bind(Uuid(uuid::Uuid::now_v7()))
                    .bind(Json(&lines))
                    .bind(Json(&takes))
                    .bind(TTL.as_micros() as i64)
                    .fetch_optional(&mut *tx)
                    .await?;
            } else {
                sqlx::query($row)
                    .bind(&order)
                    .bind(Uuid(uuid::Uuid::now_v7()))
                    .bind(Json(&lines))
                    .bind(Json(&takes))
                    .bind(TTL.as_micros() as i64)
                    .execute(&mut *tx)
                    .await?;
                let _: Row = sqlx::query_as(MY_READ)
                    .bind(&order)
                    .fetch_one(&mut *tx)
                    .await?;
            }
            one_unit!($take, sku, tx) as i64
        };
        if taken == 0 {
            // As the SDK does: read the SKU's rows to say how many are left.
            let _: Vec<(i64, i64)> = sqlx::query_as($buckets)
                .bind(sku)
                .fetch_all(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(false);
        }
        if row_taking.is_none() {
            sqlx::query($ledger)
                .bind(sku)
                .bind(1i64)
                .bind(&order)
                .bind(Time::now())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }};
}

/// The durable writes of one whole checkout, the SDK's two transactions when the orders and
/// the stock share a database (its unit of work), in one dialect; before them, the cart is
/// created and gets its item, each a statement on its own.
struct CheckoutSql {
    /// A new cart row (version 1).
    cart_insert: &'static str,
    /// The cart written at its version: the item added, the claim (TX1), the units cleared
    /// (TX2).
    cart_update: &'static str,
    /// TX1 "place": the order row, nothing if its id or idempotency key is taken.
    order: &'static str,
    /// Its event (TX1) or the confirmation's (TX2).
    outbox: &'static str,
    /// PostgreSQL: the order row and its event in one statement (TX1), and the order's
    /// update with its event (TX2).
    order_logged: Option<(&'static str, &'static str)>,
    /// Reserve: on hand to reserved, guarded.
    take: &'static str,
    /// PostgreSQL: the reservation row, the take and its ledger entry in one statement
    /// ([`PG_ROW_TAKING`]).
    row_taking: Option<&'static str>,
    /// What the SDK reads when the take finds the stock gone.
    buckets: &'static str,
    ledger: &'static str,
    /// The reservation row; `returning` when it comes back from the `INSERT`, else it is
    /// read back by `read`.
    row: &'static str,
    returning: bool,
    read: &'static str,
    /// TX2 "sell": the order written at the version TX1 left it (the SDK does not read it
    /// again).
    update_order: &'static str,
    /// The reservation row locked (with whether it expired), the unit sold (added to the
    /// SKU's `stock_sold` row: the stock row is not locked again), the ledger, the new state.
    lock_row: &'static str,
    sell: &'static str,
    sold_ledger: &'static str,
    set_state: &'static str,
    /// PostgreSQL: the new state of the reservation if it is held (its row locked by the
    /// change), the ledger and the sale in one statement, without `lock_row`.
    sell_logged: Option<&'static str>,
}

const PG_CHECKOUT: CheckoutSql = CheckoutSql {
    cart_insert: "INSERT INTO carts (id, version, data, updated_at, guest) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    cart_update: "UPDATE carts SET version = $1, data = $2, updated_at = $3 WHERE id = $4 AND version = $5",
    order: "INSERT INTO orders (id, customer_id, idempotency_key, status, version, created_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    outbox: "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'order', $2, $3, $4)",
    order_logged: Some((
        "WITH changed AS (INSERT INTO orders (id, customer_id, idempotency_key, status, version, created_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id) INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) SELECT $8, 'order', id, $9, $10 FROM changed",
        "WITH changed AS (UPDATE orders SET status = $1, version = $2, data = $3 WHERE id = $4 AND version = $5 RETURNING id) INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) SELECT $6, 'order', id, $7, $8 FROM changed",
    )),
    take: PG_TAKE,
    row_taking: Some(PG_ROW_TAKING),
    buckets: PG_BUCKETS,
    ledger: PG_LEDGER,
    row: PG_ROW,
    returning: true,
    read: PG_READ,
    update_order: "UPDATE orders SET status = $1, version = $2, data = $3 WHERE id = $4 AND version = $5",
    lock_row: "SELECT id, state, line_items, takes, expires_at, CASE WHEN expires_at <= clock_timestamp() THEN 1 ELSE 0 END FROM reservations WHERE order_id = $1 FOR UPDATE",
    sell: "INSERT INTO stock_sold (sku, bucket, sold) VALUES ($1, 0, $2) ON CONFLICT (sku, bucket) DO UPDATE SET sold = stock_sold.sold + excluded.sold",
    sold_ledger: "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES ($1, 'committed', $2, $3, $4)",
    set_state: "UPDATE reservations SET state = $1 WHERE order_id = $2",
    sell_logged: Some(
        "WITH state AS (UPDATE reservations SET state = 'committed' WHERE order_id = $1 AND state = 'held' RETURNING order_id), logged AS (INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) SELECT $2, 'committed', $3, order_id, $4 FROM state) INSERT INTO stock_sold (sku, bucket, sold) SELECT $2, 0, $3 FROM state ON CONFLICT (sku, bucket) DO UPDATE SET sold = stock_sold.sold + excluded.sold",
    ),
};

const MY_CHECKOUT: CheckoutSql = CheckoutSql {
    cart_insert: "INSERT IGNORE INTO carts (id, version, data, updated_at, guest) VALUES (?, ?, ?, ?, ?)",
    cart_update: MY_CART_UPDATE,
    order: "INSERT IGNORE INTO orders (id, customer_id, idempotency_key, status, version, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
    outbox: "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES (?, 'order', ?, ?, ?)",
    order_logged: None,
    take: MY_TAKE,
    row_taking: None,
    buckets: MY_BUCKETS,
    ledger: MY_LEDGER,
    row: MY_ROW,
    returning: false,
    read: MY_READ,
    update_order: "UPDATE orders SET status = ?, version = ?, data = ? WHERE id = ? AND version = ?",
    lock_row: "SELECT id, state, line_items, takes, expires_at, CASE WHEN expires_at <= UTC_TIMESTAMP(6) THEN 1 ELSE 0 END FROM reservations WHERE order_id = ? FOR UPDATE",
    sell: "INSERT INTO stock_sold (sku, bucket, sold) VALUES (?, 0, ?) ON DUPLICATE KEY UPDATE sold = sold + VALUES(sold)",
    sold_ledger: "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES (?, 'committed', ?, ?, ?)",
    set_state: "UPDATE reservations SET state = ? WHERE order_id = ?",
    sell_logged: None,
};

/// MariaDB 10.5 and later: the reservation row comes back from its insert.
const MARIADB_CHECKOUT: CheckoutSql = CheckoutSql {
    row: MARIADB_ROW,
    returning: true,
    ..MY_CHECKOUT
};

const MY_CART_UPDATE: &str =
    "UPDATE carts SET version = ?, data = ?, updated_at = ? WHERE id = ? AND version = ?";

/// SQLite: a single writer (`BEGIN IMMEDIATE`), no `FOR UPDATE`.
const LITE_CHECKOUT: CheckoutSql = CheckoutSql {
    cart_insert: "INSERT INTO carts (id, version, data, updated_at, guest) VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    cart_update: MY_CART_UPDATE,
    order: "INSERT INTO orders (id, customer_id, idempotency_key, status, version, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
    outbox: "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES (?, 'order', ?, ?, ?)",
    order_logged: None,
    take: MY_TAKE,
    row_taking: None,
    buckets: MY_BUCKETS,
    ledger: MY_LEDGER,
    row: LITE_ROW,
    returning: true,
    read: MY_READ,
    update_order: "UPDATE orders SET status = ?, version = ?, data = ? WHERE id = ? AND version = ?",
    lock_row: "SELECT id, state, line_items, takes, expires_at, CASE WHEN expires_at <= strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z' THEN 1 ELSE 0 END FROM reservations WHERE order_id = ?",
    sell: "INSERT INTO stock_sold (sku, bucket, sold) VALUES (?, 0, ?) ON CONFLICT (sku, bucket) DO UPDATE SET sold = stock_sold.sold + excluded.sold",
    sold_ledger: "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES (?, 'committed', ?, ?, ?)",
    set_state: "UPDATE reservations SET state = ? WHERE order_id = ?",
    sell_logged: None,
};

/// The documents of one checkout of one unit, shaped as the SDK encodes them.
struct Checkout {
    order: Uuid,
    customer: Uuid,
    /// The unique column: the customer and a SHA-256 of the key, as the SDK stores it.
    scoped_key: String,
    created_at: Time,
    /// The order as placed, PENDING at version 1.
    pending: String,
    /// Its `order_placed` event in its envelope.
    placed: (Uuid, String),
    lines: String,
    takes: String,
    /// Filled in after TX1, as the SDK does after the payment.
    document: serde_json::Value,
    /// The cart as it is saved: made with the item, claimed, cleared (versions 1 to 3).
    carts: [String; 3],
    cart: Uuid,
}

const PRICE: &str = "129.00";

impl Checkout {
    fn new(sku: &str) -> Checkout {
        use sha2::{Digest, Sha256};
        let customer = uuid::Uuid::now_v7();
        let order_id = OrderId::new();
        let order = order_id.to_string();
        let mut cart = Cart::new_guest();
        let mut carts: [String; 3] = Default::default();
        let next = |cart: &mut Cart| {
            cart.version += 1;
            cart.updated_at = chrono::Utc::now();
            serde_json::to_string(&*cart).expect("a cart encodes")
        };
        let the_sku = Sku::new(sku).expect("sku");
        cart.lines.push(CartLine {
            sku: the_sku.clone(),
            title: "Limited sneakers".into(),
            quantity: 1,
            unit_price: Money::from_minor(12_900, Currency::USD),
        });
        carts[0] = next(&mut cart);
        cart.checkout = Some(CheckoutClaim {
            order: order_id,
            lines: vec![(the_sku, 1)],
        });
        carts[1] = next(&mut cart);
        cart.clear_checkout(order_id);
        carts[2] = next(&mut cart);
        let cart = cart.id;
        let key = uuid::Uuid::new_v4().to_string();
        let scoped_key = format!("{customer}:{}", hex::encode(Sha256::digest(key.as_bytes())));
        let fingerprint = hex::encode(Sha256::digest(format!("{cart}{customer}tok_approve")));
        let now = chrono::Utc::now();
        let total = serde_json::json!({ "amount": PRICE, "currency": "USD" });
        let document = serde_json::json!({
            "id": order,
            "customer": customer,
            "cart": cart,
            "idempotency_key": key,
            "request_fingerprint": fingerprint,
            "status": "pending",
            "version": 1,
            "lines": [{ "sku": sku, "title": "Limited sneakers", "quantity": 1, "unit_price": total }],
            "total": total,
            "payment": null,
            "failure": null,
            "payment_method": "tok_approve",
            "created_at": now,
            "updated_at": now,
        });
        let event = uuid::Uuid::now_v7();
        let placed = serde_json::json!({
            "id": event,
            "occurred_at": now,
            "event": { "type": "order_placed", "order": order, "customer": customer, "total": total },
        });
        Checkout {
            pending: document.to_string(),
            placed: (Uuid(event), placed.to_string()),
            lines: format!(r#"[{{"sku":"{sku}","quantity":1}}]"#),
            takes: format!(r#"[{{"sku":"{sku}","bucket":0,"quantity":1}}]"#),
            created_at: Time::of(now),
            document,
            order: Uuid::from(order_id),
            customer: Uuid(customer),
            scoped_key,
            carts,
            cart: Uuid::from(cart),
        }
    }

    /// The order CONFIRMED at version 2 with its payment and capture, and its
    /// `order_confirmed` event: `(order, (event id, envelope))`.
    fn confirmed(&mut self, sku: &str) -> (String, (Uuid, String)) {
        let now = chrono::Utc::now();
        let total = serde_json::json!({ "amount": PRICE, "currency": "USD" });
        let payment = format!("pay_test_{}", uuid::Uuid::new_v4().simple());
        let order = self.order.0;
        let d = &mut self.document;
        d["status"] = "confirmed".into();
        d["version"] = 2.into();
        d["payment"] = serde_json::json!({ "id": payment, "status": "succeeded" });
        d["money"] = serde_json::json!([{
            "kind": "captured",
            "payment": payment,
            "amount": total,
            "key": format!("order-{order}-charge"),
        }]);
        d["charge_started_at"] = serde_json::json!(now);
        d["updated_at"] = serde_json::json!(now);
        let event = uuid::Uuid::now_v7();
        let confirmed = serde_json::json!({
            "id": event,
            "occurred_at": now,
            "event": {
                "type": "order_confirmed",
                "order": order,
                "customer": self.customer.0,
                "lines": [[sku, 1]],
                "total": total,
            },
        });
        (d.to_string(), (Uuid(event), confirmed.to_string()))
    }
}

/// The reservation row locked in TX2, with whether it expired (PostgreSQL says `INT4`).
type LockedPg = (Uuid, String, Json<String>, Json<String>, Time, i32);
type Locked = (Uuid, String, Json<String>, Json<String>, Time, i64);

/// A deadlock or a serialization failure: the transaction is worth running again.
fn retryable(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(|db| {
        matches!(
            db.code().as_deref(),
            Some("40001" | "40P01" | "1213" | "1205")
        ) || db.message().contains("Deadlock found")
            || db.message().contains("database is locked")
    })
}

/// The cart of a checkout written at `version - 1`, as version `version`, on `executor`;
/// whether it was.
macro_rules! cart_write {
    ($sql:expr, $c:expr, $version:expr, $executor:expr) => {{
        let (c, version): (&Checkout, i64) = (&$c, $version);
        let data = &c.carts[version as usize - 1];
        let at = Time::now();
        let done = if version == 1 {
            sqlx::query($sql.cart_insert)
                .bind(&c.cart)
                .bind(version)
                .bind(Json(data))
                .bind(at)
                .bind(1i64)
                .execute($executor)
                .await?
        } else {
            sqlx::query($sql.cart_update)
                .bind(version)
                .bind(Json(data))
                .bind(at)
                .bind(&c.cart)
                .bind(version - 1)
                .execute($executor)
                .await?
        };
        done.rows_affected() == 1
    }};
}

macro_rules! raw_checkout {
    ($pool:expr, $begin:expr, $sql:expr, $locked:ty, $sku:expr) => {{
        let (sql, sku): (&CheckoutSql, &str) = (&$sql, $sku);
        let mut c = Checkout::new(sku);
        // The cart, made with its item: one statement.
        if !cart_write!(sql, c, 1, $pool) {
            return Err(sqlx::Error::Protocol(format!(
                "cart {} not written",
                c.cart
            )));
        }
        // TX1 "place": the cart's claim, the order and its event (on PostgreSQL one
        // statement), the reservation row, then the stock row (held from there to the commit)
        // and the ledger (on PostgreSQL the row, the take and the ledger are one statement).
        // Each transaction runs again on a deadlock or serialization failure, as the SDK's do.
        let mut tries = 0;
        let placed: bool = loop {
            let attempt: Result<bool, sqlx::Error> = async {
                let mut tx = $begin;
                if !cart_write!(sql, c, 2, &mut *tx) {
                    return Err(sqlx::Error::Protocol(format!(
                        "cart {} not claimed",
                        c.cart
                    )));
                }
                let insert = sqlx::query(sql.order_logged.map_or(sql.order, |(insert, _)| insert))
                    .bind(&c.order)
                    .bind(&c.customer)
                    .bind(&c.scoped_key)
                    .bind("pending")
                    .bind(1i64)
                    .bind(c.created_at)
                    .bind(Json(&c.pending));
                let inserted = if sql.order_logged.is_some() {
                    insert
                        .bind(&c.placed.0)
                        .bind("order_placed")
                        .bind(Json(&c.placed.1))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                } else {
                    insert.execute(&mut *tx).await?.rows_affected()
                };
                if inserted != 1 {
                    return Err(sqlx::Error::Protocol(format!(
                        "order {} not inserted",
                        c.order
                    )));
                }
                if sql.order_logged.is_none() {
                    sqlx::query(sql.outbox)
                        .bind(&c.placed.0)
                        .bind(&c.order)
                        .bind("order_placed")
                        .bind(Json(&c.placed.1))
                        .execute(&mut *tx)
                        .await?;
                }
                let taken = if let Some(row_taking) = sql.row_taking {
                    row_taking!(row_taking, c.order, c.lines, c.takes, sku, tx)
                } else {
                    let id = Uuid(uuid::Uuid::now_v7());
                    let _: Row = if sql.returning {
                        sqlx::query_as(sql.row)
                            .bind(&c.order)
                            .bind(&id)
                            .bind(Json(&c.lines))
                            .bind(Json(&c.takes))
                            .bind(TTL.as_micros() as i64)
                            .fetch_one(&mut *tx)
                            .await?
                    } else {
                        // No RETURNING: insert, then read the row back.
                        sqlx::query(sql.row)
                            .bind(&c.order)
                            .bind(&id)
                            .bind(Json(&c.lines))
                            .bind(Json(&c.takes))
                            .bind(TTL.as_micros() as i64)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query_as(sql.read)
                            .bind(&c.order)
                            .fetch_one(&mut *tx)
                            .await?
                    };
                    one_unit!(sql.take, sku, tx) as i64
                };
                if taken == 0 {
                    // Sold out: as the SDK does, read the SKU's rows to say how many are left, and
                    // roll the order back.
                    let _: Vec<(i64, i64)> = sqlx::query_as(sql.buckets)
                        .bind(sku)
                        .fetch_all(&mut *tx)
                        .await?;
                    tx.rollback().await?;
                    return Ok(false);
                }
                if sql.row_taking.is_none() {
                    sqlx::query(sql.ledger)
                        .bind(sku)
                        .bind(1i64)
                        .bind(&c.order)
                        .bind(Time::now())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }
            .await;
            match attempt {
                Err(e) if retryable(&e) && tries < 20 => tries += 1,
                other => break other?,
            }
        };
        if !placed {
            return Ok(false);
        }
        // The payment happens here, in memory.
        let (confirmed, event) = c.confirmed(sku);
        // TX2 "sell": the order (written at the version TX1 left it), its event and the cart,
        // then the reservation (locked), the ledger, the new state, and the unit sold (its
        // SKU's `stock_sold` row; the stock row is not locked again). On PostgreSQL the order
        // and its event are one statement, and so are the reservation's new state (its row
        // locked by that change, not read first), the ledger and the sale.
        let mut tries = 0;
        loop {
            let attempt: Result<(), sqlx::Error> = async {
                let mut tx = $begin;
                let update = sqlx::query(
                    sql.order_logged
                        .map_or(sql.update_order, |(_, update)| update),
                )
                .bind("confirmed")
                .bind(2i64)
                .bind(Json(&confirmed))
                .bind(&c.order)
                .bind(1i64);
                let written = if sql.order_logged.is_some() {
                    update
                        .bind(&event.0)
                        .bind("order_confirmed")
                        .bind(Json(&event.1))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                } else {
                    update.execute(&mut *tx).await?.rows_affected()
                };
                if written != 1 {
                    return Err(sqlx::Error::Protocol(format!(
                        "order {} not updated",
                        c.order
                    )));
                }
                if sql.order_logged.is_none() {
                    sqlx::query(sql.outbox)
                        .bind(&event.0)
                        .bind(&c.order)
                        .bind("order_confirmed")
                        .bind(Json(&event.1))
                        .execute(&mut *tx)
                        .await?;
                }
                if !cart_write!(sql, c, 3, &mut *tx) {
                    return Err(sqlx::Error::Protocol(format!(
                        "cart {} not cleared",
                        c.cart
                    )));
                }
                if sql.sell_logged.is_none() {
                    let _: $locked = sqlx::query_as(sql.lock_row)
                        .bind(&c.order)
                        .fetch_one(&mut *tx)
                        .await?;
                }
                let sold = match sql.sell_logged {
                    Some(sell_logged) => sqlx::query(sell_logged)
                        .bind(&c.order)
                        .bind(sku)
                        .bind(1i64)
                        .bind(Time::now())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                    None => {
                        sqlx::query(sql.sold_ledger)
                            .bind(sku)
                            .bind(1i64)
                            .bind(&c.order)
                            .bind(Time::now())
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(sql.set_state)
                            .bind("committed")
                            .bind(&c.order)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query(sql.sell)
                            .bind(sku)
                            .bind(1i64)
                            .execute(&mut *tx)
                            .await?
                            .rows_affected()
                    }
                };
                // An upsert: MySQL counts an updated row twice.
                if sold == 0 {
                    return Err(sqlx::Error::Protocol(format!(
                        "the unit of order {} was not sold",
                        c.order
                    )));
                }
                tx.commit().await?;
                Ok(())
            }
            .await;
            match attempt {
                Err(e) if retryable(&e) && tries < 20 => tries += 1,
                other => break other?,
            }
        }
        Ok(true)
    }};
}

const PG_PRODUCT: &str = "SELECT data FROM products WHERE id = $1";
const MY_PRODUCT: &str = "SELECT data FROM products WHERE id = ?";
const PG_ON_HAND: &str = "SELECT s.on_hand, s.taken - COALESCE(d.sold, 0), COALESCE(d.sold, 0) FROM stock s LEFT JOIN stock_sold d ON d.sku = s.sku AND d.bucket = s.bucket WHERE s.sku = $1";
const MY_ON_HAND: &str = "SELECT s.on_hand, s.taken - COALESCE(d.sold, 0), COALESCE(d.sold, 0) FROM stock s LEFT JOIN stock_sold d ON d.sku = s.sku AND d.bucket = s.bucket WHERE s.sku = ?";

impl Raw {
    /// Reads an order's reservation.
    pub(crate) async fn reservation(&self, order: OrderId) -> Result<Option<Row>, sqlx::Error> {
        let order = Uuid::from(order);
        match self {
            Raw::Postgres(p) => sqlx::query_as(PG_READ).bind(order).fetch_optional(p).await,
            Raw::MySql(p, _) => sqlx::query_as(MY_READ).bind(order).fetch_optional(p).await,
            Raw::Sqlite(p) => sqlx::query_as(MY_READ).bind(order).fetch_optional(p).await,
        }
    }

    /// Reads a SKU's stock rows, as a product page does.
    pub(crate) async fn on_hand(&self, sku: &str) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
        match self {
            Raw::Postgres(p) => sqlx::query_as(PG_ON_HAND).bind(sku).fetch_all(p).await,
            Raw::MySql(p, _) => sqlx::query_as(MY_ON_HAND).bind(sku).fetch_all(p).await,
            Raw::Sqlite(p) => sqlx::query_as(MY_ON_HAND).bind(sku).fetch_all(p).await,
        }
    }

    /// Reads a product's stored row, as a product page does.
    pub(crate) async fn product(&self, id: ProductId) -> Result<Option<Json<String>>, sqlx::Error> {
        let id = Uuid::from(id);
        match self {
            Raw::Postgres(p) => {
                sqlx::query_scalar(PG_PRODUCT)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
            Raw::MySql(p, _) => {
                sqlx::query_scalar(MY_PRODUCT)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
            Raw::Sqlite(p) => {
                sqlx::query_scalar(MY_PRODUCT)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
        }
    }

    /// Reserves one unit of `sku`; `Ok(false)` when it has none left.
    pub(crate) async fn reserve(&self, sku: &str) -> Result<bool, sqlx::Error> {
        match self {
            Raw::Postgres(p) => {
                raw_reserve!(
                    p,
                    p.begin().await?,
                    PG_TAKE,
                    Some(PG_ROW_TAKING),
                    PG_LEDGER,
                    PG_ROW,
                    PG_BUCKETS,
                    sku,
                    true
                )
            }
            Raw::MySql(p, returning) => {
                raw_reserve!(
                    p,
                    p.begin().await?,
                    MY_TAKE,
                    None,
                    MY_LEDGER,
                    if *returning { MARIADB_ROW } else { MY_ROW },
                    MY_BUCKETS,
                    sku,
                    *returning
                )
            }
            Raw::Sqlite(p) => raw_reserve!(
                p,
                p.begin_with("BEGIN IMMEDIATE").await?,
                MY_TAKE,
                None,
                MY_LEDGER,
                LITE_ROW,
                MY_BUCKETS,
                sku,
                true
            ),
        }
    }

    /// One whole checkout of one unit of `sku`, by hand: the durable writes of the SDK's
    /// checkout in its two transactions (place, then sell), with documents of the same shape
    /// and size. `Ok(false)` when the SKU is sold out (TX1 rolled back).
    pub(crate) async fn checkout(&self, sku: &str) -> Result<bool, sqlx::Error> {
        match self {
            Raw::Postgres(p) => raw_checkout!(p, p.begin().await?, PG_CHECKOUT, LockedPg, sku),
            Raw::MySql(p, returning) => raw_checkout!(
                p,
                p.begin().await?,
                if *returning {
                    MARIADB_CHECKOUT
                } else {
                    MY_CHECKOUT
                },
                Locked,
                sku
            ),
            Raw::Sqlite(p) => raw_checkout!(
                p,
                p.begin_with("BEGIN IMMEDIATE").await?,
                LITE_CHECKOUT,
                Locked,
                sku
            ),
        }
    }
}

pub(crate) struct Target {
    pub(crate) name: &'static str,
    pub(crate) sdk: Db,
    pub(crate) raw: Raw,
    /// A server and the statement that removes the bench's schema or database, or the
    /// SQLite file to delete.
    cleanup: Result<(String, String), std::path::PathBuf>,
}

/// Creates `schema` and returns a native pool whose connections work in it.
pub(crate) async fn pg_schema_pool(
    url: &str,
    schema: &str,
    max_connections: u32,
) -> Option<sqlx::PgPool> {
    let admin = sqlx::PgPool::connect(url).await.ok()?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .await
        .ok()?;
    admin.close().await;
    let set = format!("SET search_path TO {schema}");
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(move |conn, _| {
            let set = set.clone();
            Box::pin(async move {
                conn.execute(sqlx::AssertSqlSafe(set)).await?;
                Ok(())
            })
        })
        .connect(url)
        .await
        .ok()
}

/// A fresh schema (PostgreSQL), database (MariaDB) or file (SQLite) for a benchmark, migrated,
/// with the SDK's pool and a native pool on it (SQLite ignores `url`); `None` when the server
/// is not configured or unreachable.
pub(crate) async fn target(name: &str, url: Option<&str>) -> Option<Target> {
    let tag = format!("ecommerce_bench_{}", uuid::Uuid::new_v4().simple());
    let options = DbOptions {
        max_connections: 32,
        ..DbOptions::default()
    };
    match name {
        "postgres" => {
            let url = url?.to_owned();
            let raw = pg_schema_pool(&url, &tag, 32).await?;
            let set = format!("SET search_path TO {tag}");
            let sdk = Db::connect_with(&url, options, std::slice::from_ref(&set))
                .await
                .ok()?;
            sdk.migrate().await.ok()?;
            Some(Target {
                name: "postgres",
                sdk,
                raw: Raw::Postgres(raw),
                cleanup: Ok((url, format!("DROP SCHEMA {tag} CASCADE"))),
            })
        }
        "mysql" => {
            let url = url?.to_owned();
            let admin = Db::connect(&url).await.ok()?;
            admin
                .execute(&format!("CREATE DATABASE {tag}"))
                .await
                .ok()?;
            admin.close().await;
            let db_url = format!(
                "{}/{tag}",
                url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base)
            );
            let sdk = Db::connect_with(&db_url, options, &[]).await.ok()?;
            sdk.migrate().await.ok()?;
            let raw = sqlx::mysql::MySqlPoolOptions::new()
                .max_connections(32)
                .connect(&db_url)
                .await
                .ok()?;
            let returning = sdk.returning();
            Some(Target {
                name: "mariadb",
                sdk,
                raw: Raw::MySql(raw, returning),
                cleanup: Ok((url, format!("DROP DATABASE {tag}"))),
            })
        }
        "sqlite" => {
            let path = std::env::temp_dir().join(format!("{tag}.db"));
            let url = format!("sqlite://{}?mode=rwc", path.display());
            let sdk = Db::connect_with(&url, options, &[]).await.ok()?;
            sdk.migrate().await.ok()?;
            let raw = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(32)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA busy_timeout = 30000").await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .ok()?;
            Some(Target {
                name: "sqlite",
                sdk,
                raw: Raw::Sqlite(raw),
                cleanup: Err(path),
            })
        }
        _ => None,
    }
}

impl Target {
    /// Closes the pools and removes the schema, database or file.
    pub(crate) async fn cleanup(self) {
        self.sdk.close().await;
        match self.cleanup {
            Ok((url, sql)) => {
                if let Ok(admin) = Db::connect(&url).await {
                    let _ = admin.execute(&sql).await;
                }
            }
            Err(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }
}
