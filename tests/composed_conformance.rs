//! The whole conformance suite on composed stores, as a shop with a cache in front of its
//! catalog and Redis in front of SQL for carts runs them: a `CachingCatalog` over the catalog,
//! and carts split over an active store (expiring) and a persistent store.

use std::sync::Arc;
use std::time::Duration;

use ecommerce::cart::TieredCartStore;
use ecommerce::catalog_cache::{CachingCatalog, MemoryCatalogCache};
use ecommerce::memory::{MemoryCartStore, MemoryCatalog};
use ecommerce::testkit::{Backend, BackendFactory};

struct Composed;

#[async_trait::async_trait]
impl BackendFactory for Composed {
    async fn backend(&self) -> Option<Backend> {
        let carts = TieredCartStore::new(
            Arc::new(MemoryCartStore::with_ttl(Duration::from_secs(3600))),
            Arc::new(MemoryCartStore::new()),
        );
        let catalog = CachingCatalog::new(
            Arc::new(MemoryCatalog::new()),
            Arc::new(MemoryCatalogCache::new()),
            Duration::ZERO,
        );
        Some(Backend {
            carts: Arc::new(carts),
            catalog: Arc::new(catalog),
            histories: 50,
            simulated_histories: 500,
            ..Backend::memory()
        })
    }
}

ecommerce::conformance_suite!(Composed);
