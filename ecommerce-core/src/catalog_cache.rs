//! The catalog must always be visible: [`CachingCatalog`] keeps the last good answer of every
//! read and serves it when the catalog store fails, saying that it is stale.
//!
//! It is itself a [`CatalogStore`] (caching is composition, not a flag), over any store and any
//! [`CatalogCache`]: [`MemoryCatalogCache`] in process (bounded, on moka), a shared cache such
//! as Redis, or both ([`TieredCatalogCache`]: in process first, the shared tier behind it).
//!
//! - Reads younger than the time to live come from the cache; older ones ask the store and
//!   refresh the cache.
//! - When the store fails with a backend error, the last good answer is served, whatever its
//!   age, and [`CatalogStore::stale_since`] reports since when the catalog is served stale.
//! - A [`CircuitBreaker`] watches the store: once it is seen down, reads answer from the cache
//!   at once instead of waiting out the store's timeout, and one probe at a time checks whether
//!   it is back. A read that was never cached fails fast with a transient error.
//! - Writes always go to the store (a write cannot be served from a cache) and refresh what
//!   they change: the product and its offers, the category list; the first listing pages this
//!   process cached are dropped, so a new product shows at once.
//! - [`CachingCatalog::warm`] reads the categories, the first listing pages and every product
//!   at start, so pages are served through an outage from the first minute.
//!
//! Listing pages past the first (`page:` keys) stay in process: a client inventing cursors
//! cannot fill a shared cache.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::breaker::{BreakerConfig, CircuitBreaker, Permit};
use crate::catalog::{CatalogStore, Category, Offer, Page, Product, ProductCursor};
use crate::error::{CatalogError, StoreError};
use crate::id::{CategoryId, ProductId, Sku};

/// A cached answer: JSON, and when it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedEntry {
    /// The answer, as JSON.
    pub json: String,
    /// When it was read from the store.
    pub stored_at: DateTime<Utc>,
}

/// Where a [`CachingCatalog`] keeps its answers.
///
/// Implementations keep entries at least as long as the catalog should stay visible through
/// an outage, within a bounded size (they may evict, which only means a miss).
#[async_trait]
pub trait CatalogCache: Debug + Send + Sync + 'static {
    /// The entry under `key`, or `Ok(None)`.
    ///
    /// # Errors
    /// [`StoreError`] when the cache itself fails (the catalog then asks the store).
    async fn get(&self, key: &str) -> Result<Option<CachedEntry>, StoreError>;

    /// Stores an entry under `key`.
    ///
    /// # Errors
    /// [`StoreError`] (the answer is still returned to the caller).
    async fn put(&self, key: &str, entry: CachedEntry) -> Result<(), StoreError>;

    /// Drops the entry under `key`; absent is fine.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn remove(&self, key: &str) -> Result<(), StoreError>;
}

/// A bounded [`CatalogCache`] in process memory (moka): entries leave only when the cache is
/// full (least recently used first), never by age, so the catalog stays visible through an
/// outage of any length.
#[derive(Debug, Clone)]
pub struct MemoryCatalogCache {
    entries: moka::sync::Cache<String, CachedEntry>,
}

impl Default for MemoryCatalogCache {
    fn default() -> Self {
        MemoryCatalogCache::with_capacity(64 * 1024 * 1024)
    }
}

impl MemoryCatalogCache {
    /// A cache of at most 64 MiB of answers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A cache of at most `bytes` of answers (JSON length).
    pub fn with_capacity(bytes: u64) -> Self {
        MemoryCatalogCache {
            entries: moka::sync::Cache::builder()
                .weigher(|key: &String, entry: &CachedEntry| {
                    u32::try_from(key.len() + entry.json.len()).unwrap_or(u32::MAX)
                })
                .max_capacity(bytes)
                .build(),
        }
    }
}

#[async_trait]
impl CatalogCache for MemoryCatalogCache {
    async fn get(&self, key: &str) -> Result<Option<CachedEntry>, StoreError> {
        Ok(self.entries.get(key))
    }

    async fn put(&self, key: &str, entry: CachedEntry) -> Result<(), StoreError> {
        self.entries.insert(key.to_owned(), entry);
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.entries.invalidate(key);
        Ok(())
    }
}

/// Two caches as one: an in-process tier in front of a shared one (Redis). Reads try the near
/// tier first and fill it from the far one; writes go to both, except listing pages past the
/// first (`page:` keys), which stay near. Writes to the far tier happen in the background, and
/// a circuit breaker stops asking the far tier while it is down, so a Redis outage never
/// slows a catalog read.
#[derive(Debug, Clone)]
pub struct TieredCatalogCache {
    near: MemoryCatalogCache,
    far: Arc<dyn CatalogCache>,
    breaker: Arc<CircuitBreaker>,
}

impl TieredCatalogCache {
    /// `near` in front of `far`.
    pub fn new(near: MemoryCatalogCache, far: Arc<dyn CatalogCache>) -> Self {
        TieredCatalogCache {
            near,
            far,
            breaker: Arc::new(CircuitBreaker::new(
                "shared catalog cache",
                BreakerConfig::default(),
            )),
        }
    }

    fn shared(key: &str) -> bool {
        !key.starts_with("page:")
    }
}

#[async_trait]
impl CatalogCache for TieredCatalogCache {
    async fn get(&self, key: &str) -> Result<Option<CachedEntry>, StoreError> {
        if let Some(entry) = self.near.get(key).await? {
            return Ok(Some(entry));
        }
        if !Self::shared(key) || !self.breaker.permit().allowed() {
            return Ok(None);
        }
        let entry = self.far.get(key).await;
        self.breaker.record(&entry, StoreError::is_transient);
        let entry = entry?;
        if let Some(entry) = &entry {
            self.near.put(key, entry.clone()).await?;
        }
        Ok(entry)
    }

    async fn put(&self, key: &str, entry: CachedEntry) -> Result<(), StoreError> {
        self.near.put(key, entry.clone()).await?;
        if Self::shared(key) && self.breaker.permit().allowed() {
            let (far, key) = (self.far.clone(), key.to_owned());
            self.breaker.probe_in_background(
                async move { far.put(&key, entry).await },
                StoreError::is_transient,
            );
        }
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        self.near.remove(key).await?;
        self.far.remove(key).await
    }
}

/// A catalog store that stays readable when its store fails (see the module docs).
#[derive(Debug)]
pub struct CachingCatalog {
    store: Arc<dyn CatalogStore>,
    cache: Arc<dyn CatalogCache>,
    ttl: Duration,
    breaker: Arc<CircuitBreaker>,
    stale_since: Mutex<Option<DateTime<Utc>>>,
    /// The first listing pages this process cached: dropped when a product changes.
    listings: Mutex<HashSet<String>>,
}

impl CachingCatalog {
    /// Caches `store`'s answers in `cache`, serving them without asking the store for `ttl`.
    pub fn new(store: Arc<dyn CatalogStore>, cache: Arc<dyn CatalogCache>, ttl: Duration) -> Self {
        CachingCatalog {
            store,
            cache,
            ttl,
            breaker: Arc::new(CircuitBreaker::new("catalog", BreakerConfig::default())),
            stale_since: Mutex::new(None),
            listings: Mutex::new(HashSet::new()),
        }
    }

    /// Caches `store`'s answers in process ([`MemoryCatalogCache`]).
    pub fn in_process(store: Arc<dyn CatalogStore>, ttl: Duration) -> Self {
        CachingCatalog::new(store, Arc::new(MemoryCatalogCache::new()), ttl)
    }

    /// Sets when the store is taken for down and how often it is probed.
    pub fn with_breaker(mut self, config: BreakerConfig) -> Self {
        self.breaker = Arc::new(CircuitBreaker::new("catalog", config));
        self
    }

    /// Watches the store with a breaker shared with the other stores on the same database,
    /// so an outage seen by one is known to all at once.
    pub fn with_shared_breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.breaker = breaker;
        self
    }

    /// Reads the categories, the first page of every listing and every product, so the
    /// catalog is served from the cache through an outage that starts right after. Returns
    /// how many products were cached.
    ///
    /// # Errors
    /// [`CatalogError`] when the store fails; what was read before stays cached.
    pub async fn warm(&self, page_size: usize) -> Result<usize, CatalogError> {
        let categories = self.categories().await?;
        for category in std::iter::once(None).chain(categories.into_iter().map(|c| Some(c.id))) {
            self.list_products(category, None, page_size).await?;
        }
        let mut products = 0;
        let mut after = None;
        loop {
            let page = self.store.list_products(None, after, 100).await?;
            for product in &page.items {
                self.remember(product).await;
            }
            products += page.items.len();
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(products),
            }
        }
    }

    fn mark(&self, stale: bool) {
        let mut since = self.stale_since.lock().unwrap_or_else(|e| e.into_inner());
        match (stale, *since) {
            (true, None) => *since = Some(self.breaker.down_since().unwrap_or_else(Utc::now)),
            (false, Some(_)) => *since = None,
            _ => {}
        }
    }

    async fn put<T: Serialize>(&self, key: &str, value: &T) {
        let entry = CachedEntry {
            json: serde_json::to_string(value).expect("catalog types serialize"),
            stored_at: Utc::now(),
        };
        // The answer stands without the cache; a failed put only means a later miss.
        let _ = self.cache.put(key, entry).await;
    }

    /// Caches a product as the store holds it, with its offers.
    async fn remember(&self, product: &Product) {
        self.put(&format!("product:{}", product.id), &Some(product.clone()))
            .await;
        for v in &product.variants {
            self.put(&format!("offer:{}", v.sku), &Some(product.offer(v)))
                .await;
        }
    }

    /// The error of a read the store cannot answer and the cache never saw.
    fn down() -> CatalogError {
        CatalogError::Store(StoreError::Unavailable {
            message: "the catalog store is down and this answer was never cached".into(),
            source: None,
        })
    }

    /// Asks the store unless its breaker says it is down (then `None`). When the store may
    /// be back and the caller has a last good answer, that answer is served and the probe
    /// runs in the background: no read waits on a store that may still be down.
    async fn ask<T, F>(&self, fetch: F, has_fallback: bool) -> Option<Result<T, CatalogError>>
    where
        F: std::future::Future<Output = Result<T, CatalogError>>,
    {
        match self.breaker.permit() {
            Permit::Call => {}
            Permit::Probe if has_fallback => {
                let store = self.store.clone();
                self.breaker.probe_in_background(
                    async move { store.categories().await },
                    CatalogError::is_transient,
                );
                return None;
            }
            Permit::Probe => {}
            Permit::Refused => return None,
        }
        let result = fetch.await;
        self.breaker.record(&result, CatalogError::is_transient);
        Some(result)
    }

    /// Read-through with fallback: fresh cache, else the store (refreshing the cache), else
    /// the last good answer.
    async fn read<T, F>(&self, key: &str, fetch: F) -> Result<T, CatalogError>
    where
        T: Serialize + DeserializeOwned,
        F: std::future::Future<Output = Result<T, CatalogError>>,
    {
        let cached = self.cache.get(key).await.ok().flatten();
        let decode = |entry: &CachedEntry| serde_json::from_str::<T>(&entry.json).ok();
        if let Some(entry) = &cached {
            let age = (Utc::now() - entry.stored_at).to_std().unwrap_or_default();
            if age < self.ttl {
                if let Some(value) = decode(entry) {
                    return Ok(value);
                }
            }
        }
        let last_good = || match cached.as_ref().and_then(decode) {
            Some(value) => {
                self.mark(true);
                Ok(value)
            }
            None => Err(Self::down()),
        };
        let has_fallback = cached.as_ref().and_then(decode).is_some();
        match self.ask(fetch, has_fallback).await {
            None => last_good(),
            Some(Ok(value)) => {
                self.put(key, &value).await;
                self.mark(false);
                Ok(value)
            }
            Some(Err(CatalogError::Store(e))) => last_good().map_err(|_| CatalogError::Store(e)),
            Some(Err(e)) => Err(e),
        }
    }

    /// Drops the first listing pages this process cached.
    async fn forget_listings(&self) {
        let keys: Vec<String> = self
            .listings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        for key in keys {
            let _ = self.cache.remove(&key).await;
        }
    }
}

#[async_trait]
impl CatalogStore for CachingCatalog {
    async fn upsert_category(&self, category: Category) -> Result<(), CatalogError> {
        self.store.upsert_category(category).await?;
        if let Ok(categories) = self.store.categories().await {
            self.put("categories", &categories).await;
        }
        Ok(())
    }

    async fn categories(&self) -> Result<Vec<Category>, CatalogError> {
        self.read("categories", self.store.categories()).await
    }

    async fn upsert_product(&self, product: Product) -> Result<(), CatalogError> {
        self.store.upsert_product(product.clone()).await?;
        self.remember(&product).await;
        self.forget_listings().await;
        Ok(())
    }

    async fn product(&self, id: ProductId) -> Result<Option<Product>, CatalogError> {
        self.read(&format!("product:{id}"), self.store.product(id))
            .await
    }

    async fn list_products(
        &self,
        category: Option<CategoryId>,
        after: Option<ProductCursor>,
        limit: usize,
    ) -> Result<Page<Product, ProductCursor>, CatalogError> {
        let category_key = category.as_ref().map_or("", |c| c.as_str()).to_owned();
        let key = match after {
            None => {
                let key = format!("list:{category_key}:{limit}");
                self.listings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key.clone());
                key
            }
            Some(after) => format!("page:{category_key}:{after}:{limit}"),
        };
        self.read(&key, self.store.list_products(category, after, limit))
            .await
    }

    async fn offers(&self, skus: &[Sku]) -> Result<HashMap<Sku, Offer>, CatalogError> {
        // Offers are cached per SKU, so every cart and checkout warms the cache of the SKUs
        // it touches.
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        for sku in skus {
            let key = format!("offer:{sku}");
            let entry = self.cache.get(&key).await.ok().flatten();
            let fresh = entry
                .as_ref()
                .filter(|e| (Utc::now() - e.stored_at).to_std().unwrap_or_default() < self.ttl);
            match fresh.and_then(|e| serde_json::from_str::<Option<Offer>>(&e.json).ok()) {
                Some(offer) => {
                    if let Some(offer) = offer {
                        found.insert(sku.clone(), offer);
                    }
                }
                None => missing.push((sku.clone(), entry)),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let wanted: Vec<Sku> = missing.iter().map(|(s, _)| s.clone()).collect();
        let has_fallback = missing.iter().all(|(_, entry)| entry.is_some());
        let answer = match self.ask(self.store.offers(&wanted), has_fallback).await {
            Some(answer) => answer,
            None => Err(Self::down()),
        };
        match answer {
            Ok(mut offers) => {
                for sku in &wanted {
                    let offer = offers.remove(sku);
                    self.put(&format!("offer:{sku}"), &offer).await;
                    if let Some(offer) = offer {
                        found.insert(sku.clone(), offer);
                    }
                }
                self.mark(false);
                Ok(found)
            }
            Err(CatalogError::Store(e)) => {
                for (sku, entry) in missing {
                    let last_good = entry
                        .as_ref()
                        .and_then(|e| serde_json::from_str::<Option<Offer>>(&e.json).ok());
                    match last_good {
                        Some(Some(offer)) => {
                            found.insert(sku, offer);
                        }
                        Some(None) => {}
                        // Never seen: answering "unknown SKU" would be a lie.
                        None => return Err(CatalogError::Store(e)),
                    }
                }
                self.mark(true);
                Ok(found)
            }
            Err(e) => Err(e),
        }
    }

    fn stale_since(&self) -> Option<DateTime<Utc>> {
        *self.stale_since.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::catalog::{MockCatalogStore, Variant};
    use crate::memory::MemoryCatalog;
    use crate::money::{Currency, Money};

    fn product() -> Product {
        Product::new(
            ProductId::new(),
            "Lantern",
            CategoryId::new("outdoor").unwrap(),
        )
        .with_brand("Acme")
        .with_variants([Variant::new(
            Sku::new("LAN-1").unwrap(),
            Money::from_minor(1_500, Currency::USD),
        )])
    }

    fn down() -> CatalogError {
        CatalogError::Store(StoreError::Unavailable {
            message: "database down".into(),
            source: None,
        })
    }

    /// A mock store that answers from a memory catalog until it is switched off.
    fn flaky(memory: Arc<MemoryCatalog>, up: Arc<AtomicBool>) -> MockCatalogStore {
        let mut m = MockCatalogStore::new();
        let (mem, on) = (memory.clone(), up.clone());
        m.expect_categories().returning(move || {
            if !on.load(Ordering::SeqCst) {
                return Err(down());
            }
            futures::executor::block_on(mem.categories())
        });
        let (mem, on) = (memory.clone(), up.clone());
        m.expect_product().returning(move |id| {
            if !on.load(Ordering::SeqCst) {
                return Err(down());
            }
            futures::executor::block_on(mem.product(id))
        });
        let (mem, on) = (memory.clone(), up.clone());
        m.expect_offers().returning(move |skus| {
            if !on.load(Ordering::SeqCst) {
                return Err(down());
            }
            futures::executor::block_on(mem.offers(skus))
        });
        let (mem, on) = (memory, up);
        m.expect_list_products().returning(move |c, a, l| {
            if !on.load(Ordering::SeqCst) {
                return Err(down());
            }
            futures::executor::block_on(mem.list_products(c, a, l))
        });
        m
    }

    /// Lets the background probe report.
    async fn after_the_probe() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn the_last_good_answer_is_served_when_the_store_fails_and_said_to_be_stale() {
        let memory = Arc::new(MemoryCatalog::new());
        let p = product();
        memory.upsert_product(p.clone()).await.unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let catalog = CachingCatalog::new(
            Arc::new(flaky(memory, up.clone())),
            Arc::new(MemoryCatalogCache::new()),
            Duration::ZERO,
        )
        .with_breaker(BreakerConfig {
            failures_to_open: 2,
            open_for: Duration::ZERO,
        });
        let sku = Sku::new("LAN-1").unwrap();
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p.clone()));
        assert_eq!(
            catalog
                .offers(std::slice::from_ref(&sku))
                .await
                .unwrap()
                .len(),
            1
        );
        let listed = catalog.list_products(None, None, 10).await.unwrap();
        assert_eq!(catalog.stale_since(), None);

        up.store(false, Ordering::SeqCst);
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p.clone()));
        assert!(
            catalog.stale_since().is_some(),
            "the catalog says it is stale"
        );
        assert_eq!(
            catalog.offers(std::slice::from_ref(&sku)).await.unwrap()[&sku].price,
            p.variants[0].price
        );
        assert_eq!(catalog.list_products(None, None, 10).await.unwrap(), listed);
        // Never read before: an error, not an invented answer.
        assert!(matches!(
            catalog.product(ProductId::new()).await,
            Err(CatalogError::Store(_))
        ));
        let unseen = Sku::new("LAN-404").unwrap();
        assert!(matches!(
            catalog.offers(&[unseen]).await,
            Err(CatalogError::Store(_))
        ));

        up.store(true, Ordering::SeqCst);
        // The read that finds the store may be back answers at once, and probes behind.
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p.clone()));
        after_the_probe().await;
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p));
        assert_eq!(
            catalog.stale_since(),
            None,
            "fresh again once the store answers"
        );
    }

    #[tokio::test]
    async fn a_store_seen_down_is_not_waited_on_and_one_probe_finds_it_back() {
        let memory = Arc::new(MemoryCatalog::new());
        let p = product();
        memory.upsert_product(p.clone()).await.unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut store = MockCatalogStore::new();
        let (mem, on, n) = (memory.clone(), up.clone(), calls.clone());
        store.expect_product().returning(move |id| {
            n.fetch_add(1, Ordering::SeqCst);
            if !on.load(Ordering::SeqCst) {
                return Err(down());
            }
            futures::executor::block_on(mem.product(id))
        });
        let (mem, on) = (memory.clone(), up.clone());
        store.expect_categories().returning(move || {
            if !on.load(Ordering::SeqCst) {
                return Err(down());
            }
            futures::executor::block_on(mem.categories())
        });
        let catalog = CachingCatalog::in_process(Arc::new(store), Duration::ZERO).with_breaker(
            BreakerConfig {
                failures_to_open: 2,
                open_for: Duration::from_millis(50),
            },
        );
        catalog.product(p.id).await.unwrap();
        up.store(false, Ordering::SeqCst);
        for _ in 0..10 {
            assert_eq!(catalog.product(p.id).await.unwrap(), Some(p.clone()));
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "two failures open the breaker; the other reads do not ask the store"
        );
        assert!(catalog.stale_since().is_some());
        let never = catalog.product(ProductId::new()).await;
        assert!(matches!(&never, Err(e) if e.is_transient()), "{never:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 3, "failing fast, not waiting");

        up.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p.clone()));
        after_the_probe().await;
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p));
        assert_eq!(catalog.stale_since(), None, "the probe found it back");
    }

    #[tokio::test]
    async fn a_warmed_catalog_is_served_through_an_outage_and_writes_show_at_once() {
        let memory = Arc::new(MemoryCatalog::new());
        let p = product();
        memory.upsert_product(p.clone()).await.unwrap();
        memory
            .upsert_category(Category::new(
                CategoryId::new("outdoor").unwrap(),
                "Outdoor",
            ))
            .await
            .unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let mut store = flaky(memory.clone(), up.clone());
        let mem = memory.clone();
        store
            .expect_upsert_category()
            .returning(move |c| futures::executor::block_on(mem.upsert_category(c)));
        let mem = memory.clone();
        store
            .expect_upsert_product()
            .returning(move |p| futures::executor::block_on(mem.upsert_product(p)));
        let catalog = CachingCatalog::in_process(Arc::new(store), Duration::from_secs(3600));
        assert_eq!(catalog.warm(24).await.unwrap(), 1);

        // Writes show at once, for all the freshness time left.
        catalog
            .upsert_category(Category::new(CategoryId::new("garden").unwrap(), "Garden"))
            .await
            .unwrap();
        assert_eq!(catalog.categories().await.unwrap().len(), 2);
        let mut newer = product();
        newer.id = ProductId::new();
        newer.variants[0].sku = Sku::new("LAN-2").unwrap();
        catalog.upsert_product(newer).await.unwrap();
        let outdoor = CategoryId::new("outdoor").unwrap();
        assert_eq!(
            catalog
                .list_products(Some(outdoor.clone()), None, 24)
                .await
                .unwrap()
                .items
                .len(),
            2
        );

        up.store(false, Ordering::SeqCst);
        assert_eq!(catalog.categories().await.unwrap().len(), 2);
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p));
        assert_eq!(
            catalog
                .list_products(Some(outdoor), None, 24)
                .await
                .unwrap()
                .items
                .len(),
            2
        );
    }

    #[test]
    fn the_in_process_cache_is_bounded() {
        let cache = MemoryCatalogCache::with_capacity(10_000);
        for i in 0..1_000 {
            let entry = CachedEntry {
                json: "x".repeat(100),
                stored_at: Utc::now(),
            };
            futures::executor::block_on(cache.put(&format!("k{i}"), entry)).unwrap();
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.weighted_size() <= 10_000);
    }

    #[tokio::test]
    async fn fresh_entries_are_served_without_asking_the_store_and_writes_refresh_them() {
        let memory = Arc::new(MemoryCatalog::new());
        let catalog = CachingCatalog::new(
            memory.clone(),
            Arc::new(MemoryCatalogCache::new()),
            Duration::from_secs(3600),
        );
        let mut p = product();
        catalog.upsert_product(p.clone()).await.unwrap();
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p.clone()));
        p.title = "Lantern, renamed".into();
        catalog.upsert_product(p.clone()).await.unwrap();
        assert_eq!(
            catalog.product(p.id).await.unwrap().unwrap().title,
            "Lantern, renamed"
        );
        let sku = Sku::new("LAN-1").unwrap();
        assert_eq!(
            catalog.offers(std::slice::from_ref(&sku)).await.unwrap()[&sku].title,
            "Lantern, renamed"
        );
        // A write the store refuses changes nothing in the cache either.
        let mut bad = p.clone();
        bad.title = String::new();
        assert!(catalog.upsert_product(bad).await.is_err());
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p));
    }
}
