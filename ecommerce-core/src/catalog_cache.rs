//! The catalog must always be visible: [`CachingCatalog`] keeps the last good answer of every
//! read and serves it when the catalog store fails, saying that it is stale.
//!
//! It is itself a [`CatalogStore`] (caching is composition, not a flag), over any store and any
//! [`CatalogCache`]: [`MemoryCatalogCache`] in process, or a shared cache such as Redis.
//! Reads younger than the time to live come from the cache; older ones ask the store and
//! refresh the cache; when the store fails with a backend error, the last good answer is
//! served, whatever its age, and [`CatalogStore::stale_since`] reports since when the catalog
//! is served stale. Writes always go to the store (a write cannot be served from a cache) and
//! refresh the cached product and offers.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

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
/// an outage (they may evict, which only means a miss).
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
}

/// A [`CatalogCache`] in process memory.
#[derive(Debug, Default)]
pub struct MemoryCatalogCache {
    entries: Mutex<HashMap<String, CachedEntry>>,
}

impl MemoryCatalogCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CatalogCache for MemoryCatalogCache {
    async fn get(&self, key: &str) -> Result<Option<CachedEntry>, StoreError> {
        Ok(self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned())
    }

    async fn put(&self, key: &str, entry: CachedEntry) -> Result<(), StoreError> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), entry);
        Ok(())
    }
}

/// A catalog store that stays readable when its store fails (see the module docs).
#[derive(Debug)]
pub struct CachingCatalog {
    store: Arc<dyn CatalogStore>,
    cache: Arc<dyn CatalogCache>,
    ttl: Duration,
    stale_since: Mutex<Option<DateTime<Utc>>>,
}

impl CachingCatalog {
    /// Caches `store`'s answers in `cache`, serving them without asking the store for `ttl`.
    pub fn new(store: Arc<dyn CatalogStore>, cache: Arc<dyn CatalogCache>, ttl: Duration) -> Self {
        CachingCatalog {
            store,
            cache,
            ttl,
            stale_since: Mutex::new(None),
        }
    }

    fn mark(&self, stale: bool) {
        let mut since = self.stale_since.lock().unwrap_or_else(|e| e.into_inner());
        match (stale, *since) {
            (true, None) => *since = Some(Utc::now()),
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
        match fetch.await {
            Ok(value) => {
                self.put(key, &value).await;
                self.mark(false);
                Ok(value)
            }
            Err(CatalogError::Store(e)) => match cached.as_ref().and_then(decode) {
                Some(value) => {
                    self.mark(true);
                    Ok(value)
                }
                None => Err(CatalogError::Store(e)),
            },
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl CatalogStore for CachingCatalog {
    async fn upsert_category(&self, category: Category) -> Result<(), CatalogError> {
        self.store.upsert_category(category).await
    }

    async fn categories(&self) -> Result<Vec<Category>, CatalogError> {
        self.read("categories", self.store.categories()).await
    }

    async fn upsert_product(&self, product: Product) -> Result<(), CatalogError> {
        self.store.upsert_product(product.clone()).await?;
        self.put(&format!("product:{}", product.id), &Some(product.clone()))
            .await;
        for v in &product.variants {
            self.put(&format!("offer:{}", v.sku), &Some(product.offer(v)))
                .await;
        }
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
        let key = format!(
            "list:{}:{}:{limit}",
            category.as_ref().map_or("", |c| c.as_str()),
            after.map(|a| a.to_string()).unwrap_or_default()
        );
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
        match self.store.offers(&wanted).await {
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
        Product {
            id: ProductId::new(),
            title: "Lantern".into(),
            description: String::new(),
            brand: "Acme".into(),
            category: CategoryId::new("outdoor").unwrap(),
            attributes: Default::default(),
            variants: vec![Variant {
                sku: Sku::new("LAN-1").unwrap(),
                options: Default::default(),
                price: Money::from_minor(1_500, Currency::Usd),
                published: true,
            }],
            published: true,
            created_at: Utc::now(),
        }
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
        );
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
        assert_eq!(catalog.product(p.id).await.unwrap(), Some(p));
        assert_eq!(
            catalog.stale_since(),
            None,
            "fresh again once the store answers"
        );
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
