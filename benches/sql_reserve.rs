//! Stock reservation on SQL: the SDK beside the same SQL sent through sqlx alone.
//!
//! Run with: `cargo bench --bench sql_reserve -- [--seconds 2] [--reps 3] [--db postgres,mysql,sqlite]`
//!
//! For each database reachable through `ECOMMERCE_TEST_POSTGRES_URL` /
//! `ECOMMERCE_TEST_MYSQL_URL` (SQLite always runs, on a temporary file), it measures
//! reservations per second of one unit:
//! - on one hot SKU (every client on the same row), and on 1,000 random SKUs;
//! - at 1, 8 and 32 concurrent clients;
//! - through `SqlInventory::reserve` (the SDK), and through the native sqlx driver sending the
//!   statements the SDK sends (the raw floor: conditional decrement, ledger row, reservation
//!   row, in one transaction);
//! - for the hot SKU also spread over 16 buckets (SDK), against the single-row raw figure;
//!
//! and whole checkouts per second (`Storefront::place_order`, test gateway) at 32 clients.
//! Each figure is the median of `--reps` runs of `--seconds` each; raw and SDK runs alternate.

use std::sync::Arc;
use std::time::Duration;

use ecommerce::CheckoutRequest;
use ecommerce::catalog::{Product, Variant};
use ecommerce::id::{CategoryId, CustomerId, IdempotencyKey, OrderId, ProductId, Sku};
use ecommerce::inventory::{InventoryStore, ReservationLine};
use ecommerce::payment::{PaymentMethod, TestGateway};
use ecommerce::{Currency, Money};
use ecommerce_sqlx::{Db, DbOptions, SqlInventory, SqlStores};
use sqlx::Executor;

mod common;

use common::{median, throughput};

const TTL: Duration = Duration::from_secs(3600);
const RANDOM_SKUS: usize = 1_000;

#[derive(Debug, Clone)]
struct Args {
    seconds: f64,
    reps: usize,
    dbs: Vec<String>,
}

fn args() -> Args {
    let mut args = Args {
        seconds: 2.0,
        reps: 3,
        dbs: vec!["postgres".into(), "mysql".into(), "sqlite".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => args.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(2.0),
            "--reps" => args.reps = it.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--db" => {
                args.dbs = it
                    .next()
                    .map(|v| v.split(',').map(str::to_owned).collect())
                    .unwrap_or_default()
            }
            _ => {}
        }
    }
    args
}

/// The raw floor: one reservation of one unit, the statements the SDK sends, on the native
/// driver.
#[derive(Clone)]
enum Raw {
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
    Sqlite(sqlx::SqlitePool),
}

const PG_TAKE: &str = "UPDATE stock SET on_hand = on_hand - $1, reserved = reserved + $2 WHERE sku = $3 AND bucket = $4 AND on_hand >= $5";
const PG_LEDGER: &str = "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES ($1, 'reserved', $2, $3, $4)";
const PG_ROW: &str = "INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES ($1, $2, 'held', $3, $4, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT + $5) ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at";
const MY_TAKE: &str = "UPDATE stock SET on_hand = on_hand - ?, reserved = reserved + ? WHERE sku = ? AND bucket = ? AND on_hand >= ?";
const MY_LEDGER: &str =
    "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES (?, 'reserved', ?, ?, ?)";
const MY_ROW: &str = "INSERT IGNORE INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES (?, ?, 'held', ?, ?, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) + ?)";
const MY_READ: &str =
    "SELECT id, state, line_items, takes, expires_at FROM reservations WHERE order_id = ?";
const LITE_ROW: &str = "INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES (?, ?, 'held', ?, ?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + ?) ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at";

type Row = (String, String, String, String, i64);

macro_rules! raw_reserve {
    ($pool:expr, $begin:expr, $take:expr, $ledger:expr, $row:expr, $sku:expr, $returning:expr) => {{
        let sku: &str = $sku;
        let order = OrderId::new().to_string();
        let lines = format!(r#"[{{"sku":"{sku}","quantity":1}}]"#);
        let takes = format!(r#"[{{"sku":"{sku}","bucket":0,"quantity":1}}]"#);
        let mut tx = $begin;
        let taken = sqlx::query($take)
            .bind(1i64)
            .bind(1i64)
            .bind(sku)
            .bind(0i64)
            .bind(1i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        assert_eq!(taken, 1, "raw reservation found no stock");
        sqlx::query($ledger)
            .bind(sku)
            .bind(1i64)
            .bind(&order)
            .bind(chrono::Utc::now().timestamp_millis())
            .execute(&mut *tx)
            .await?;
        if $returning {
            let _: Option<Row> = sqlx::query_as($row)
                .bind(&order)
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&lines)
                .bind(&takes)
                .bind(TTL.as_millis() as i64)
                .fetch_optional(&mut *tx)
                .await?;
        } else {
            sqlx::query($row)
                .bind(&order)
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&lines)
                .bind(&takes)
                .bind(TTL.as_millis() as i64)
                .execute(&mut *tx)
                .await?;
            let _: Row = sqlx::query_as(MY_READ)
                .bind(&order)
                .fetch_one(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }};
}

impl Raw {
    async fn reserve(&self, sku: &str) -> Result<(), sqlx::Error> {
        match self {
            Raw::Postgres(p) => {
                raw_reserve!(p, p.begin().await?, PG_TAKE, PG_LEDGER, PG_ROW, sku, true)
            }
            Raw::MySql(p) => {
                raw_reserve!(p, p.begin().await?, MY_TAKE, MY_LEDGER, MY_ROW, sku, false)
            }
            Raw::Sqlite(p) => raw_reserve!(
                p,
                p.begin_with("BEGIN IMMEDIATE").await?,
                MY_TAKE,
                MY_LEDGER,
                LITE_ROW,
                sku,
                true
            ),
        }
    }
}

struct Target {
    name: &'static str,
    sdk: Db,
    raw: Raw,
    /// A server and the statement that removes the bench's schema or database, or the
    /// SQLite file to delete.
    cleanup: Result<(String, String), std::path::PathBuf>,
}

async fn target(name: &str) -> Option<Target> {
    let tag = format!("ecommerce_bench_{}", uuid::Uuid::new_v4().simple());
    let options = DbOptions {
        max_connections: 32,
        ..DbOptions::default()
    };
    match name {
        "postgres" => {
            let url = std::env::var("ECOMMERCE_TEST_POSTGRES_URL").ok()?;
            let admin = Db::connect(&url).await.ok()?;
            admin
                .pool()
                .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {tag}")))
                .await
                .ok()?;
            admin.close().await;
            let set = format!("SET search_path TO {tag}");
            let sdk = Db::connect_with(&url, options, std::slice::from_ref(&set))
                .await
                .ok()?;
            sdk.migrate().await.ok()?;
            let raw = sqlx::postgres::PgPoolOptions::new()
                .max_connections(32)
                .after_connect(move |conn, _| {
                    let set = set.clone();
                    Box::pin(async move {
                        conn.execute(sqlx::AssertSqlSafe(set)).await?;
                        Ok(())
                    })
                })
                .connect(&url)
                .await
                .ok()?;
            Some(Target {
                name: "postgres",
                sdk,
                raw: Raw::Postgres(raw),
                cleanup: Ok((url, format!("DROP SCHEMA {tag} CASCADE"))),
            })
        }
        "mysql" => {
            let url = std::env::var("ECOMMERCE_TEST_MYSQL_URL").ok()?;
            let admin = Db::connect(&url).await.ok()?;
            admin
                .pool()
                .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {tag}")))
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
            Some(Target {
                name: "mariadb",
                sdk,
                raw: Raw::MySql(raw),
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

fn sku(s: String) -> Sku {
    Sku::new(s).expect("bench sku")
}

struct Line {
    db: &'static str,
    workload: String,
    clients: usize,
    raw: Option<f64>,
    sdk: f64,
}

#[tokio::main]
async fn main() {
    let args = args();
    let mut table: Vec<Line> = Vec::new();
    for name in &args.dbs {
        let Some(t) = target(name).await else {
            eprintln!("skipped {name}: not configured or unreachable");
            continue;
        };
        eprintln!("benchmarking {} ...", t.name);
        let inventory = Arc::new(SqlInventory::new(t.sdk.clone()));
        let mut run = 0usize;
        for workload in ["hot SKU", "random SKUs"] {
            for clients in [1usize, 8, 32] {
                run += 1;
                let skus: Arc<Vec<String>> = Arc::new(if workload == "hot SKU" {
                    vec![format!("HOT-{run}")]
                } else {
                    (0..RANDOM_SKUS).map(|i| format!("R{run}-{i}")).collect()
                });
                for s in skus.iter() {
                    inventory
                        .receive(&sku(s.clone()), 1_000_000)
                        .await
                        .expect("stock");
                }
                let mut raw_runs = Vec::new();
                let mut sdk_runs = Vec::new();
                for _ in 0..args.reps {
                    let (raw, list) = (t.raw.clone(), skus.clone());
                    raw_runs.push(
                        throughput(clients, args.seconds, move |c, i| {
                            let (raw, list) = (raw.clone(), list.clone());
                            async move {
                                let s = &list[(c * 7919 + i as usize * 104_729) % list.len()];
                                raw.reserve(s).await.expect("raw reserve");
                            }
                        })
                        .await,
                    );
                    let (inv, list) = (inventory.clone(), skus.clone());
                    sdk_runs.push(
                        throughput(clients, args.seconds, move |c, i| {
                            let (inv, list) = (inv.clone(), list.clone());
                            async move {
                                let s = &list[(c * 7919 + i as usize * 104_729) % list.len()];
                                let line = ReservationLine {
                                    sku: sku(s.clone()),
                                    quantity: 1,
                                };
                                inv.reserve(OrderId::new(), &[line], TTL)
                                    .await
                                    .expect("sdk reserve");
                            }
                        })
                        .await,
                    );
                }
                table.push(Line {
                    db: t.name,
                    workload: workload.into(),
                    clients,
                    raw: Some(median(raw_runs)),
                    sdk: median(sdk_runs),
                });
            }
        }

        // The hot SKU spread over 16 buckets, against the single-row raw figure at 32 clients.
        let hot = sku("HOT-BUCKETED".into());
        inventory.receive(&hot, 1_000_000).await.expect("stock");
        inventory.set_buckets(&hot, 16).await.expect("buckets");
        let mut runs = Vec::new();
        for _ in 0..args.reps {
            let (inv, hot) = (inventory.clone(), hot.clone());
            runs.push(
                throughput(32, args.seconds, move |_, _| {
                    let (inv, hot) = (inv.clone(), hot.clone());
                    async move {
                        let line = ReservationLine {
                            sku: hot,
                            quantity: 1,
                        };
                        inv.reserve(OrderId::new(), &[line], TTL)
                            .await
                            .expect("sdk reserve");
                    }
                })
                .await,
            );
        }
        let single_raw = table
            .iter()
            .find(|l| l.db == t.name && l.workload == "hot SKU" && l.clients == 32)
            .and_then(|l| l.raw);
        table.push(Line {
            db: t.name,
            workload: "hot SKU, 16 buckets (raw: 1 row)".into(),
            clients: 32,
            raw: single_raw,
            sdk: median(runs),
        });

        // Whole checkouts: place_order with the test gateway, single-row and bucketed hot SKU.
        for (label, buckets) in [
            ("checkouts, hot SKU", 1u32),
            ("checkouts, hot SKU, 16 buckets", 16),
        ] {
            let stores = SqlStores::new(t.sdk.clone());
            let shop = stores
                .builder(Arc::new(TestGateway::default()))
                .inventory(Arc::new(SqlInventory::new(t.sdk.clone())))
                .build()
                .expect("storefront");
            let s = sku(format!("CHK-{buckets}"));
            shop.upsert_product(Product {
                id: ProductId::new(),
                title: "Bench item".into(),
                description: String::new(),
                brand: "Acme".into(),
                category: CategoryId::new("bench").expect("slug"),
                attributes: Default::default(),
                variants: vec![Variant {
                    sku: s.clone(),
                    options: Default::default(),
                    price: Money::from_minor(1_000, Currency::Usd),
                    published: true,
                }],
                published: true,
                created_at: chrono::Utc::now(),
            })
            .await
            .expect("product");
            shop.receive_stock(&s, 1_000_000).await.expect("stock");
            if buckets > 1 {
                inventory.set_buckets(&s, buckets).await.expect("buckets");
            }
            let mut runs = Vec::new();
            for rep in 0..args.reps {
                let (shop, s) = (shop.clone(), s.clone());
                runs.push(
                    throughput(32, args.seconds, move |c, i| {
                        let (shop, s) = (shop.clone(), s.clone());
                        async move {
                            let customer = CustomerId::new();
                            let cart = shop.customer_cart(customer).await.expect("cart");
                            shop.add_item(cart.id, &s, 1).await.expect("add");
                            let key = IdempotencyKey::new(format!("b{buckets}-{rep}-{c}-{i}"))
                                .expect("key");
                            shop.place_order(CheckoutRequest {
                                cart: cart.id,
                                customer,
                                payment_method: PaymentMethod::new("tok_approve").expect("token"),
                                idempotency_key: key,
                            })
                            .await
                            .expect("checkout");
                        }
                    })
                    .await,
                );
            }
            table.push(Line {
                db: t.name,
                workload: label.into(),
                clients: 32,
                raw: None,
                sdk: median(runs),
            });
        }

        t.sdk.close().await;
        match t.cleanup {
            Ok((url, sql)) => {
                if let Ok(admin) = Db::connect(&url).await {
                    let _ = admin.pool().execute(sqlx::AssertSqlSafe(sql)).await;
                }
            }
            Err(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
            }
        }
    }

    println!(
        "\n| database | workload | clients | raw sqlx (ops/s) | SDK (ops/s) | SDK / raw |\n| --- | --- | ---: | ---: | ---: | ---: |"
    );
    for l in &table {
        let (raw, ratio) = match l.raw {
            Some(r) => (format!("{r:.0}"), format!("{:.2}", l.sdk / r)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {} |",
            l.db, l.workload, l.clients, raw, l.sdk, ratio
        );
    }
    println!(
        "\nmedian of {} runs of {} s each; {} cores",
        args.reps,
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
