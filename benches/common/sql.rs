//! The raw SQL floor the benchmarks measure the SDK against, and throwaway databases to run
//! them in.

use std::time::Duration;

use ecommerce::id::OrderId;
use ecommerce_sqlx::{Db, DbOptions};
use sqlx::Executor;

const TTL: Duration = Duration::from_secs(3600);

/// The raw floor: one reservation of one unit, the statements the SDK sends, on the native
/// driver.
#[derive(Clone)]
pub(crate) enum Raw {
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
const PG_BUCKETS: &str = "SELECT bucket, on_hand FROM stock WHERE sku = $1 ORDER BY bucket";
const MY_BUCKETS: &str = "SELECT bucket, on_hand FROM stock WHERE sku = ? ORDER BY bucket";
const PG_READ: &str =
    "SELECT id, state, line_items, takes, expires_at FROM reservations WHERE order_id = $1";
const MY_READ: &str =
    "SELECT id, state, line_items, takes, expires_at FROM reservations WHERE order_id = ?";
const LITE_ROW: &str = "INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES (?, ?, 'held', ?, ?, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + ?) ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at";

pub(crate) type Row = (String, String, String, String, i64);

macro_rules! raw_reserve {
    ($pool:expr, $begin:expr, $take:expr, $ledger:expr, $row:expr, $buckets:expr, $sku:expr, $returning:expr) => {{
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
        if taken == 0 {
            // As the SDK does: read the SKU's rows to say how many are left.
            let _: Vec<(i64, i64)> = sqlx::query_as($buckets)
                .bind(sku)
                .fetch_all(&mut *tx)
                .await?;
            tx.rollback().await?;
            return Ok(false);
        }
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
        Ok(true)
    }};
}

const PG_PRODUCT: &str = "SELECT data FROM products WHERE id = $1";
const MY_PRODUCT: &str = "SELECT data FROM products WHERE id = ?";
const PG_ON_HAND: &str = "SELECT on_hand, reserved, sold FROM stock WHERE sku = $1";
const MY_ON_HAND: &str = "SELECT on_hand, reserved, sold FROM stock WHERE sku = ?";

impl Raw {
    /// Reads an order's reservation.
    pub(crate) async fn reservation(&self, order: &str) -> Result<Option<Row>, sqlx::Error> {
        match self {
            Raw::Postgres(p) => sqlx::query_as(PG_READ).bind(order).fetch_optional(p).await,
            Raw::MySql(p) => sqlx::query_as(MY_READ).bind(order).fetch_optional(p).await,
            Raw::Sqlite(p) => sqlx::query_as(MY_READ).bind(order).fetch_optional(p).await,
        }
    }

    /// Reads a SKU's stock rows, as a product page does.
    pub(crate) async fn on_hand(&self, sku: &str) -> Result<Vec<(i64, i64, i64)>, sqlx::Error> {
        match self {
            Raw::Postgres(p) => sqlx::query_as(PG_ON_HAND).bind(sku).fetch_all(p).await,
            Raw::MySql(p) => sqlx::query_as(MY_ON_HAND).bind(sku).fetch_all(p).await,
            Raw::Sqlite(p) => sqlx::query_as(MY_ON_HAND).bind(sku).fetch_all(p).await,
        }
    }

    /// Reads a product's stored row, as a product page does.
    pub(crate) async fn product(&self, id: &str) -> Result<Option<String>, sqlx::Error> {
        match self {
            Raw::Postgres(p) => {
                sqlx::query_scalar(PG_PRODUCT)
                    .bind(id)
                    .fetch_optional(p)
                    .await
            }
            Raw::MySql(p) => {
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
                    PG_LEDGER,
                    PG_ROW,
                    PG_BUCKETS,
                    sku,
                    true
                )
            }
            Raw::MySql(p) => {
                raw_reserve!(
                    p,
                    p.begin().await?,
                    MY_TAKE,
                    MY_LEDGER,
                    MY_ROW,
                    MY_BUCKETS,
                    sku,
                    false
                )
            }
            Raw::Sqlite(p) => raw_reserve!(
                p,
                p.begin_with("BEGIN IMMEDIATE").await?,
                MY_TAKE,
                MY_LEDGER,
                LITE_ROW,
                MY_BUCKETS,
                sku,
                true
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

impl Target {
    /// Closes the pools and removes the schema, database or file.
    pub(crate) async fn cleanup(self) {
        self.sdk.close().await;
        match self.cleanup {
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
}
