//! Fresh, isolated databases for the tests: a schema per test on PostgreSQL, a database per
//! test on MySQL/MariaDB, a file per test on SQLite, each removed when the test ends.
//!
//! Server URLs come from `ECOMMERCE_TEST_POSTGRES_URL` and `ECOMMERCE_TEST_MYSQL_URL`; a test
//! prints `skipped: VAR not set` without one, and fails instead when
//! `ECOMMERCE_TEST_REQUIRE_SERVICES=1`.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use ecommerce_core::id::Sku;
use ecommerce_core::inventory::{ReservationLine, StockLevel};
use ecommerce_core::money::{Currency, Money};
use ecommerce_core::promotion::{Action, Promotion, Target};
use ecommerce_core::testkit::{Backend, BackendFactory};
use ecommerce_sqlx::{Db, DbOptions, SqlInventory, SqlStores, SqlUnitOfWork};

/// Runs `$body` with `$pool` bound to the database's pool of its own driver (the body is
/// compiled once per driver, so it must come to the same type for each).
#[allow(unused_macros)]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db.pool() {
            #[cfg(feature = "postgres")]
            ecommerce_sqlx::Pool::Postgres($pool) => $body,
            #[cfg(feature = "mysql")]
            ecommerce_sqlx::Pool::MySql($pool) => $body,
            #[cfg(feature = "sqlite")]
            ecommerce_sqlx::Pool::Sqlite($pool) => $body,
            #[allow(unreachable_patterns)]
            _ => unreachable!("a pool of a driver this build has"),
        }
    };
}
#[allow(unused_imports)]
pub(crate) use on_pool;

/// How long the tests' reservations are held: longer than any test.
pub const TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// An order's lines: `quantity` units of one SKU.
pub fn lines(sku: &Sku, quantity: u32) -> Vec<ReservationLine> {
    vec![ReservationLine {
        sku: sku.clone(),
        quantity,
    }]
}

/// A stock level.
pub fn level(on_hand: u32, reserved: u32, sold: u32) -> StockLevel {
    StockLevel {
        on_hand,
        reserved,
        sold,
    }
}

/// `minor` US cents.
pub fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

/// An automatic promotion of a dollar off the order, without limits.
pub fn dollar_off(id: &str) -> Promotion {
    Promotion::new(
        id,
        "A dollar off",
        Currency::USD,
        Action::AmountOff {
            amount: usd(100),
            target: Target::Order,
        },
    )
    .expect("valid promotion")
}

/// The database servers the tests can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Postgres,
    MySql,
    Sqlite,
}

impl Server {
    fn var(self) -> Option<&'static str> {
        match self {
            Server::Postgres => Some("ECOMMERCE_TEST_POSTGRES_URL"),
            Server::MySql => Some("ECOMMERCE_TEST_MYSQL_URL"),
            Server::Sqlite => None,
        }
    }
}

fn required() -> bool {
    std::env::var("ECOMMERCE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The server URL, or `None` (after printing why) when the test should skip.
pub fn server_url(server: Server) -> Option<String> {
    let var = server.var()?;
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if required() => panic!("{var} not set and ECOMMERCE_TEST_REQUIRE_SERVICES=1"),
        _ => {
            eprintln!("skipped: {var} not set");
            None
        }
    }
}

/// Replaces the database name (the path) of a server URL.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// Drops a schema, a database or files when the last handle goes away.
#[derive(Debug)]
pub struct Cleanup {
    /// A server to run `drop_sql` on.
    pub url: String,
    /// The statement that removes what the test made.
    pub drop_sql: Option<String>,
    /// Files to delete.
    pub files: Vec<String>,
    /// The URL of the test's own database, for a second pool onto it.
    pub database_url: String,
    /// Statements every connection of such a pool runs first (the PostgreSQL schema).
    pub setup: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        let Some(sql) = self.drop_sql.take() else {
            return;
        };
        let url = self.url.clone();
        // Drop runs inside the test's runtime: do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(db) = Db::connect_with(&url, small(), &[]).await {
                    let _ = db.execute(&sql).await;
                    db.close().await;
                }
            });
        })
        .join();
    }
}

fn small() -> DbOptions {
    DbOptions {
        max_connections: 2,
        ..DbOptions::default()
    }
}

/// A fresh, migrated, isolated database on a server, with the guard that removes it.
pub async fn fresh_db(server: Server, max_connections: u32) -> Option<(Db, Arc<Cleanup>)> {
    let (db, cleanup) = empty_db(server, max_connections).await?;
    db.migrate().await.expect("migrations apply");
    Some((db, cleanup))
}

/// A fresh, isolated database on a server, not migrated, with the guard that removes it.
pub async fn empty_db(server: Server, max_connections: u32) -> Option<(Db, Arc<Cleanup>)> {
    let name = format!("ecommerce_t_{}", uuid::Uuid::new_v4().simple());
    // The suites queue many concurrent shoppers on a few connections of a loaded 2-core
    // machine: waiting for a connection is expected there, not an outage.
    let options = DbOptions {
        max_connections,
        acquire_timeout: std::time::Duration::from_secs(30),
        ..DbOptions::default()
    };
    let fail = |what: &str, e: &dyn std::fmt::Display| -> Option<(Db, Arc<Cleanup>)> {
        if required() {
            panic!("{what}: {e}");
        }
        eprintln!("skipped: {what}: {e}");
        None
    };
    let (db, cleanup) = match server {
        Server::Sqlite => {
            let path = std::env::temp_dir().join(format!("{name}.db"));
            let path = path.display().to_string();
            let url = format!("sqlite://{path}?mode=rwc");
            let cleanup = Arc::new(Cleanup {
                url: url.clone(),
                drop_sql: None,
                files: ["", "-wal", "-shm"]
                    .iter()
                    .map(|suffix| format!("{path}{suffix}"))
                    .collect(),
                database_url: url.clone(),
                setup: Vec::new(),
            });
            let db = Db::connect_with(&url, options, &[])
                .await
                .expect("sqlite opens");
            (db, cleanup)
        }
        Server::Postgres | Server::MySql => {
            let url = server_url(server)?;
            let (create, drop) = if server == Server::Postgres {
                (
                    format!("CREATE SCHEMA {name}"),
                    format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
                )
            } else {
                (
                    format!("CREATE DATABASE {name}"),
                    format!("DROP DATABASE IF EXISTS {name}"),
                )
            };
            let admin = match Db::connect_with(&url, small(), &[]).await {
                Ok(db) => db,
                Err(e) => return fail("database server unreachable", &e),
            };
            admin
                .execute(&create)
                .await
                .expect("create the test's schema or database");
            admin.close().await;
            // A schema is picked per connection; a MySQL database is part of the URL.
            let (database_url, setup) = if server == Server::Postgres {
                (url.clone(), vec![format!("SET search_path TO {name}")])
            } else {
                (with_database(&url, &name), Vec::new())
            };
            let cleanup = Arc::new(Cleanup {
                url: url.clone(),
                drop_sql: Some(drop),
                files: Vec::new(),
                database_url: database_url.clone(),
                setup: setup.clone(),
            });
            let db = Db::connect_with(&database_url, options, &setup).await;
            (db.expect("connect"), cleanup)
        }
    };
    Some((db, cleanup))
}

/// Makes a fresh backend per check.
#[derive(Debug, Clone, Copy)]
pub struct Factory {
    pub server: Server,
    pub histories: usize,
    /// Buckets of every new SKU (1: ordinary stock rows).
    pub buckets: u32,
}

impl Factory {
    pub fn postgres() -> Self {
        Factory {
            server: Server::Postgres,
            histories: 20,
            buckets: 1,
        }
    }

    pub fn mysql() -> Self {
        Factory {
            server: Server::MySql,
            histories: 20,
            buckets: 1,
        }
    }

    pub fn sqlite() -> Self {
        Factory {
            server: Server::Sqlite,
            histories: 10,
            buckets: 1,
        }
    }

    /// The same, with every SKU spread over four buckets (hot-SKU stock).
    pub fn bucketed(self) -> Self {
        Factory { buckets: 4, ..self }
    }
}

#[async_trait::async_trait]
impl BackendFactory for Factory {
    async fn backend(&self) -> Option<Backend> {
        let (db, cleanup) = fresh_db(self.server, 16).await?;
        let stores = SqlStores::new(db);
        let memory = Backend::memory();
        let inventory = SqlInventory::new(stores.db.clone()).with_default_buckets(self.buckets);
        Some(Backend {
            catalog: stores.catalog,
            carts: stores.carts.clone(),
            inventory: Arc::new(inventory.clone()),
            unit: Some(Arc::new(
                SqlUnitOfWork::new((*stores.orders).clone(), inventory)
                    .with_carts((*stores.carts).clone()),
            )),
            orders: stores.orders.clone(),
            outbox: stores.orders,
            recommendations: stores.recommendations,
            search: memory.search,
            address_book: stores.address_book,
            promotions: stores.promotions,
            histories: self.histories,
            simulated_histories: 1_000,
            guard: Some(cleanup),
        })
    }
}

/// A fresh, migrated PostgreSQL database (not a schema): for tests of several databases.
pub async fn fresh_postgres_database() -> Option<(Db, String, Arc<Cleanup>)> {
    let url = server_url(Server::Postgres)?;
    let name = format!("ecommerce_d_{}", uuid::Uuid::new_v4().simple());
    let admin = match Db::connect_with(&url, small(), &[]).await {
        Ok(db) => db,
        Err(e) if !required() => {
            eprintln!("skipped: postgres unreachable: {e}");
            return None;
        }
        Err(e) => panic!("postgres unreachable: {e}"),
    };
    admin
        .execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    admin.close().await;
    let db_url = with_database(&url, &name);
    let cleanup = Arc::new(Cleanup {
        url: url.clone(),
        drop_sql: Some(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")),
        files: Vec::new(),
        database_url: db_url.clone(),
        setup: Vec::new(),
    });
    let db = Db::connect_with(&db_url, DbOptions::default(), &[])
        .await
        .expect("connect");
    db.migrate().await.expect("migrations apply");
    Some((db, db_url, cleanup))
}
