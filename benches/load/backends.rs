//! The backends the harness drives, each with its raw floor.

use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use ecommerce::cart::TieredCartStore;
use ecommerce::catalog_cache::{CachingCatalog, MemoryCatalogCache};
use ecommerce::id::OrderId;
use ecommerce::inventory::InventoryStore;
use ecommerce::memory::{MemoryCartStore, MemoryCatalog, MemoryInventory, MemoryOrderStore};
use ecommerce::payment::TestGateway;
use ecommerce::{Storefront, StorefrontConfig};
use ecommerce_redis::{GatedInventory, Redis, RedisCartStore};
use ecommerce_search::TantivySearch;
use ecommerce_sqlx::{Db, SqlInventory, SqlStores};
use redis::Script;

use crate::common::sql::{Raw, Target, target};

/// A backend to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Kind {
    /// Every store in memory.
    Memory,
    /// SQLite on a temporary file.
    Sqlite,
    /// PostgreSQL (`--postgres-url`).
    Postgres,
    /// MariaDB or MySQL (`--mysql-url`).
    Mariadb,
    /// PostgreSQL with carts on Redis and the Redis flash-sale gate in front of its stock.
    RedisPostgres,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Memory => "memory",
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::Mariadb => "mariadb",
            Kind::RedisPostgres => "redis+postgres",
        }
    }
}

/// Where the servers are.
#[derive(Debug, Clone, Default)]
pub(crate) struct Urls {
    pub(crate) postgres: Option<String>,
    pub(crate) mysql: Option<String>,
    pub(crate) redis: Option<String>,
}

/// The floor a backend's reservation is measured against: the statements or commands the SDK
/// sends (on the sold-out path too), without the SDK.
#[derive(Clone)]
pub(crate) enum Floor {
    /// The reservation SQL on the native driver.
    Sql(Raw),
    /// The gate's Lua script on Redis, then (for the buyers it lets through) the reservation
    /// SQL.
    Gated {
        redis: Redis,
        take: Arc<Script>,
        sql: Raw,
    },
}

impl Floor {
    /// Reserves one unit of `sku` for a new order; `false` when none is left.
    pub(crate) async fn reserve(&self, sku: &str) -> bool {
        match self {
            Floor::Sql(raw) => raw.reserve(sku).await.expect("raw reservation"),
            Floor::Gated { sql, .. } => match self.gate(sku).await {
                // As the SDK does: a turned-away order may hold a reservation already.
                Some(order) => {
                    sql.reservation(order).await.expect("raw read");
                    false
                }
                None => sql.reserve(sku).await.expect("raw reservation"),
            },
        }
    }

    /// The gate's script for one unit of `sku` under a new order: the order's id when the
    /// gate turned it away, `None` when it let it through.
    async fn gate(&self, sku: &str) -> Option<OrderId> {
        let Floor::Gated { redis, take, .. } = self else {
            return None;
        };
        let prefix = redis.prefix();
        let order = OrderId::new();
        let answer: Vec<String> = take
            .key(format!("{{{prefix}:gate}}:available"))
            .key(format!("{{{prefix}:gate}}:through"))
            .arg(order.to_string())
            .arg(format!(r#"[{{"sku":"{sku}","quantity":1}}]"#))
            .arg(sku)
            .arg(1)
            .invoke_async(&mut redis.connection())
            .await
            .expect("raw gate");
        (answer.first().map(String::as_str) == Some("short")).then_some(order)
    }

    /// One whole checkout of one unit of `sku` by hand, the SDK checkout's two transactions
    /// on the native driver; `false` when none is left. Behind the gate, a buyer the gate
    /// turns away costs nothing in SQL (as a buyer turned away from a fresh cart costs the
    /// SDK); the others check out in the two transactions.
    ///
    /// # Errors
    /// The database's.
    pub(crate) async fn checkout(&self, sku: &str) -> Result<bool, sqlx::Error> {
        if self.gate(sku).await.is_some() {
            return Ok(false);
        }
        self.sql().checkout(sku).await
    }

    /// A raw product read, for the browse floor.
    pub(crate) fn sql(&self) -> &Raw {
        match self {
            Floor::Sql(raw) | Floor::Gated { sql: raw, .. } => raw,
        }
    }
}

/// A storefront ready to be driven.
pub(crate) struct Backend {
    pub(crate) kind: Kind,
    pub(crate) shop: Arc<Storefront>,
    /// The same stores, selling to an address with shipping and tax.
    pub(crate) priced: Arc<Storefront>,
    /// The reservation path the SDK's checkout uses.
    pub(crate) inventory: Arc<dyn InventoryStore>,
    /// The SQL inventory underneath, for spreading a hot SKU over buckets.
    pub(crate) sql_inventory: Option<Arc<SqlInventory>>,
    /// The SDK's pool, for connection hold time.
    pub(crate) db: Option<Db>,
    pub(crate) floor: Option<Floor>,
    target: Option<Target>,
    redis: Option<(Redis, String)>,
}

/// The storefront's settings, as a shop would set them: the automatic promotions' definitions
/// kept for 5 s (their limits are reserved exactly at Pay).
fn config() -> StorefrontConfig {
    StorefrontConfig::default().with_promotion_cache_ttl(Duration::from_secs(5))
}

impl Backend {
    /// Opens a backend over fresh, empty stores.
    ///
    /// # Errors
    /// Why the backend cannot be reached.
    pub(crate) async fn open(
        kind: Kind,
        urls: &Urls,
        search: &TantivySearch,
    ) -> Result<Backend, String> {
        let gateway = Arc::new(TestGateway::default());
        if kind == Kind::Memory {
            let orders = Arc::new(MemoryOrderStore::new());
            let builder = Storefront::builder()
                .catalog(Arc::new(MemoryCatalog::new()))
                .carts(Arc::new(MemoryCartStore::new()))
                .inventory(Arc::new(MemoryInventory::new()))
                .orders(orders)
                .search(Arc::new(search.clone()))
                .with_memory_defaults()
                .config(config())
                .payments(gateway);
            let priced = crate::flash::pricing(builder.clone())
                .build()
                .map_err(|e| e.to_string())?;
            let shop = builder.build().map_err(|e| e.to_string())?;
            return Ok(Backend {
                kind,
                inventory: shop.inventory().clone(),
                shop: Arc::new(shop),
                priced: Arc::new(priced),
                sql_inventory: None,
                db: None,
                floor: None,
                target: None,
                redis: None,
            });
        }
        let (sql_name, url) = match kind {
            Kind::Sqlite => ("sqlite", None),
            Kind::Mariadb => (
                "mysql",
                Some(
                    urls.mysql
                        .clone()
                        .ok_or("--mysql-url (or ECOMMERCE_TEST_MYSQL_URL) is not set")?,
                ),
            ),
            _ => (
                "postgres",
                Some(
                    urls.postgres
                        .clone()
                        .ok_or("--postgres-url (or ECOMMERCE_TEST_POSTGRES_URL) is not set")?,
                ),
            ),
        };
        let t = target(sql_name, url.as_deref()).await.ok_or_else(|| {
            format!(
                "{} is unreachable at {}",
                kind.name(),
                url.as_deref().unwrap_or("a temporary file")
            )
        })?;
        let stores = SqlStores::new(t.sdk.clone());
        let sql_inventory = stores.inventory.clone();
        // The catalog through an in-process cache, as the reference shop serves it (offers
        // fresh for 30 s; the checkout's pricing reads them there).
        let catalog = Arc::new(CachingCatalog::new(
            stores.catalog.clone(),
            Arc::new(MemoryCatalogCache::new()),
            Duration::from_secs(30),
        ));
        let mut builder = stores
            .builder(gateway)
            .catalog(catalog)
            .search(Arc::new(search.clone()))
            .config(config());
        let mut inventory: Arc<dyn InventoryStore> = sql_inventory.clone();
        let mut floor = Floor::Sql(t.raw.clone());
        let mut redis_cleanup = None;
        if kind == Kind::RedisPostgres {
            let url = urls
                .redis
                .clone()
                .ok_or("--redis-url (or ECOMMERCE_TEST_REDIS_URL) is not set")?;
            let prefix = format!("load{}", uuid::Uuid::new_v4().simple());
            let redis = Redis::connect(&url, &prefix)
                .await
                .map_err(|e| format!("redis is unreachable at {url}: {e}"))?;
            inventory = Arc::new(GatedInventory::new(redis.clone(), inventory));
            builder = builder
                .carts(Arc::new(TieredCartStore::new(
                    Arc::new(RedisCartStore::new(
                        redis.clone(),
                        Duration::from_secs(3600),
                    )),
                    stores.carts.clone(),
                )))
                .inventory(inventory.clone());
            floor = Floor::Gated {
                redis: redis.clone(),
                take: Arc::new(Script::new(include_str!(
                    "../../ecommerce-redis/lua/gate_take.lua"
                ))),
                sql: t.raw.clone(),
            };
            redis_cleanup = Some((redis, url));
        }
        let priced = crate::flash::pricing(builder.clone())
            .build()
            .map_err(|e| e.to_string())?;
        let shop = builder.build().map_err(|e| e.to_string())?;
        Ok(Backend {
            kind,
            shop: Arc::new(shop),
            priced: Arc::new(priced),
            inventory,
            sql_inventory: Some(sql_inventory),
            db: Some(t.sdk.clone()),
            floor: Some(floor),
            target: Some(t),
            redis: redis_cleanup,
        })
    }

    /// Removes what the run created: the schema, database or file, and the Redis keys.
    pub(crate) async fn close(self) {
        if let Some((redis, url)) = self.redis {
            if let Ok(client) = redis::Client::open(url) {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await {
                    let keys: Vec<String> = redis::cmd("KEYS")
                        .arg(format!("*{}*", redis.prefix()))
                        .query_async(&mut conn)
                        .await
                        .unwrap_or_default();
                    for chunk in keys.chunks(500) {
                        let _: Result<(), _> =
                            redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
                    }
                }
            }
        }
        if let Some(t) = self.target {
            t.cleanup().await;
        }
    }
}

/// Samples how many of the pool's connections are in use, to tell how long a checkout holds
/// one: busy connection-seconds divided by checkouts.
pub(crate) struct HoldMeter {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<f64>,
}

impl HoldMeter {
    /// Starts sampling `db`'s pool; `None` without a pool.
    pub(crate) fn start(db: Option<&Db>) -> Option<HoldMeter> {
        let pool = db?.pool().clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let (mut busy, mut last) = (0.0, std::time::Instant::now());
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(1)).await;
                let in_use = pool.size().saturating_sub(pool.num_idle() as u32) as f64;
                let now = std::time::Instant::now();
                busy += in_use * now.duration_since(last).as_secs_f64();
                last = now;
            }
            busy
        });
        Some(HoldMeter { stop, task })
    }

    /// Busy connection-seconds since the start.
    pub(crate) async fn stop(meter: Option<HoldMeter>) -> Option<f64> {
        let meter = meter?;
        meter.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        meter.task.await.ok()
    }
}
