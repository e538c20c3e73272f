//! The search checks of the conformance suite with tantivy as the search engine (the other
//! stores in memory, since the checks go through a storefront over all of them).

use std::sync::Arc;

use ecommerce_core::testkit::{Backend, BackendFactory};
use ecommerce_search::TantivySearch;

struct Tantivy;

#[async_trait::async_trait]
impl BackendFactory for Tantivy {
    async fn backend(&self) -> Option<Backend> {
        let search = TantivySearch::in_ram().expect("index");
        Some(Backend {
            search: Arc::new(search),
            ..Backend::memory()
        })
    }
}

ecommerce_core::search_suite!(Tantivy);
