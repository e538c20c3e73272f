//! The whole conformance suite with carts split over an active store (expiring) and a
//! persistent store, as a shop with Redis in front of SQL runs them.

use std::sync::Arc;
use std::time::Duration;

use ecommerce::cart::TieredCartStore;
use ecommerce::memory::MemoryCartStore;
use ecommerce::testkit::{Backend, BackendFactory};

struct Tiered;

#[async_trait::async_trait]
impl BackendFactory for Tiered {
    async fn backend(&self) -> Option<Backend> {
        let carts = TieredCartStore::new(
            Arc::new(MemoryCartStore::with_ttl(Duration::from_secs(3600))),
            Arc::new(MemoryCartStore::new()),
        );
        Some(Backend {
            carts: Arc::new(carts),
            histories: 50,
            ..Backend::memory()
        })
    }
}

ecommerce::conformance_suite!(Tiered);
