//! Which stores the shop runs on, and the demo catalog it starts with.
//!
//! The default needs no server: SQLite for the catalog, carts, stock, orders and
//! recommendations, and a tantivy index, both in the data directory, where the test payment
//! provider keeps its charges too. A database URL moves every SQL store to PostgreSQL or
//! MySQL/MariaDB; a Redis URL puts carts, a stock gate and a catalog cache in front of the SQL
//! stores, which stay the system of record. Promotions, coupon codes and their uses are kept
//! in SQL too; the demo ones (`promotions.rs`) are saved at every start.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ecommerce::breaker::{BreakerConfig, CircuitBreaker};
use ecommerce::cart::{CartStore, TieredCartStore};
use ecommerce::catalog_cache::{
    CachingCatalog, CatalogCache, MemoryCatalogCache, TieredCatalogCache,
};
use ecommerce::inventory::InventoryStore;
use ecommerce::payment::{PaymentGateway, TestGateway};
use ecommerce::redis_stores::{GatedInventory, Redis, RedisCartStore, RedisCatalogCache};
use ecommerce::search_engine::TantivySearch;
use ecommerce::sql::{Db, SqlStores};
use ecommerce::{ImportItem, Storefront, demo};
use indicatif::{ProgressBar, ProgressStyle};

/// Where the shop keeps its data.
#[derive(Debug, Clone)]
pub(crate) struct BackendConfig {
    /// The folder of the SQLite file and the search index.
    pub(crate) data_dir: PathBuf,
    /// `postgres://...`, `mysql://...` or `sqlite://...`; `None` for SQLite in `data_dir`.
    pub(crate) database_url: Option<String>,
    /// `redis://...` to keep carts, a stock gate and a catalog cache on Redis.
    pub(crate) redis_url: Option<String>,
    /// The prefix of the shop's Redis keys (several shops can share one Redis).
    pub(crate) redis_prefix: String,
    /// How long a cached catalog answer is served without asking the database. Writes
    /// through the shop refresh what they change at once; this bounds how late a change made
    /// by another process shows. During an outage the last good answer is served whatever
    /// its age.
    pub(crate) catalog_freshness: Duration,
    /// How many demo products to create when the catalog is empty.
    pub(crate) demo_products: usize,
    /// Whether to draw progress bars (a terminal is watching).
    pub(crate) progress: bool,
}

impl BackendConfig {
    /// The SQL database URL in use.
    pub(crate) fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("shop.db").display()
            )
        })
    }

    /// The file where the test payment provider keeps its charges and refunds.
    pub(crate) fn gateway_file(&self) -> PathBuf {
        self.data_dir.join("test-gateway.json")
    }

    /// A one-line description for the startup banner.
    pub(crate) fn describe(&self) -> String {
        let database = self.database_url();
        let database = database.split('@').next_back().unwrap_or(&database);
        let mut text = format!(
            "SQL {database}, search index {}, test payments {}",
            self.data_dir.join("index").display(),
            self.gateway_file().display()
        );
        if let Some(redis) = &self.redis_url {
            text.push_str(&format!(", carts and stock gate on {redis}"));
        }
        text
    }
}

/// Opens (creating if needed) the test payment provider, which keeps its charges in the data
/// folder: after a crash, `recover()` asks it what happened to the charges of the orders left
/// PENDING, so it must remember them across restarts, as a real provider does.
///
/// # Errors
/// The data folder or the provider's file cannot be created, read or written.
pub(crate) fn open_gateway(
    config: &BackendConfig,
    webhook_secret: Vec<u8>,
) -> Result<TestGateway, Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("creating {}: {e}", config.data_dir.display()))?;
    let path = config.gateway_file();
    TestGateway::open(&path, webhook_secret).map_err(|e| {
        format!(
            "opening the test payment provider's file {}: {e}",
            path.display()
        )
        .into()
    })
}

/// Opens (creating if needed) every store and returns the storefront, and the SQL database
/// for what the shop keeps of its own (sessions).
///
/// # Errors
/// A database, Redis or index that cannot be opened, with what was being opened.
pub(crate) async fn open(
    config: &BackendConfig,
    payments: Arc<dyn PaymentGateway>,
) -> Result<(Storefront, Db), Box<dyn std::error::Error + Send + Sync>> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("creating {}: {e}", config.data_dir.display()))?;
    let sql = SqlStores::connect(&config.database_url())
        .await
        .map_err(|e| format!("opening the database: {e}"))?;
    let search = TantivySearch::open(config.data_dir.join("index"))
        .map_err(|e| format!("opening the search index: {e}"))?;

    // The catalog is always served through a cache, so it stays visible when the database
    // is down: in process, with Redis as a shared second tier when there is one.
    let mut cache: Arc<dyn CatalogCache> = Arc::new(MemoryCatalogCache::new());
    let mut carts: Arc<dyn CartStore> = sql.carts.clone();
    let mut inventory: Arc<dyn InventoryStore> = sql.inventory.clone();
    if let Some(url) = &config.redis_url {
        let redis = Redis::connect(url, &config.redis_prefix)
            .await
            .map_err(|e| format!("connecting to Redis: {e}"))?;
        cache = Arc::new(TieredCatalogCache::new(
            MemoryCatalogCache::new(),
            Arc::new(RedisCatalogCache::new(redis.clone())),
        ));
        carts = Arc::new(TieredCartStore::new(
            Arc::new(RedisCartStore::new(
                redis.clone(),
                Duration::from_secs(7 * 24 * 3600),
            )),
            carts,
        ));
        inventory = Arc::new(GatedInventory::new(redis, inventory));
    }
    // One breaker for the database: an outage one store sees, every store knows at once.
    let database = Arc::new(CircuitBreaker::new("database", BreakerConfig::default()));
    let catalog = Arc::new(
        CachingCatalog::new(sql.catalog.clone(), cache, config.catalog_freshness)
            .with_shared_breaker(database.clone()),
    );

    let mut builder = crate::checkout::configure(Storefront::builder())
        .catalog(catalog.clone())
        .carts(carts)
        .inventory(inventory)
        .orders(sql.orders.clone())
        .recommendations(sql.recommendations.clone())
        .address_book(sql.address_book.clone())
        .promotions(sql.promotions.clone())
        .search(Arc::new(search.clone()))
        .payments(payments)
        .breaker(database);
    if config.redis_url.is_none() {
        // Orders, stock, carts and promotion uses in one database: a checkout in two
        // transactions. Behind Redis the stock goes through the gate, step by step.
        builder = builder.unit_of_work(sql.unit_of_work());
    }
    let shop = builder.build()?;

    if shop.categories().await?.is_empty() {
        seed(&shop, config).await?;
    } else if search.is_empty() {
        // The index folder was removed: build it again from the catalog.
        shop.rebuild_search_index().await?;
    }
    // At every start: saving a promotion again keeps its uses, and the module's definitions
    // win over what an earlier version of the shop saved. The shop ships (`checkout::zones`).
    crate::promotions::seed(&shop, true)
        .await
        .map_err(|e| format!("saving the demo promotions: {e}"))?;
    // Guest carts in SQL expire a week after their last change; their rows are swept here.
    let carts = sql.carts.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = carts.purge_expired_guest_carts(1_000).await {
                tracing::warn!(error = %e, "sweeping expired guest carts failed");
            }
        }
    });
    // Home, category and product pages are served through an outage from the first minute.
    catalog
        .warm(crate::pages::PAGE_SIZE)
        .await
        .map_err(|e| format!("warming the catalog cache: {e}"))?;
    Ok((shop, sql.db))
}

fn bar(config: &BackendConfig, len: u64, what: &str) -> ProgressBar {
    if !config.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>18} [{bar:40}] {pos}/{len} ({eta} left)")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// Creates the demo catalog with its stock, indexed for search as it goes.
async fn seed(
    shop: &Storefront,
    config: &BackendConfig,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for category in demo::categories() {
        shop.upsert_category(category).await?;
    }
    let progress = bar(config, config.demo_products as u64, "seeding catalog");
    let items = demo::catalog(config.demo_products, 2026).map(ImportItem::from);
    shop.import(items, |n| progress.set_position(n as u64))
        .await?;
    progress.finish_with_message("catalog seeded");
    Ok(())
}
