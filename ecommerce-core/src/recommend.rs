//! Recommendations: "customers who bought this also bought".
//!
//! Every confirmed order counts, once, each pair of distinct SKUs in it, both ways
//! (item-to-item co-purchase counts). [`RecommendationStore::also_bought`] returns the SKUs
//! most often bought with a given one.

use std::fmt::Debug;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::id::{OrderId, Sku};

/// Most recommendations one call returns.
pub const MAX_RECOMMENDATIONS: usize = 100;

/// A SKU bought together with another, and how many orders did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlsoBought {
    /// The SKU.
    pub sku: Sku,
    /// Orders that contained both.
    pub count: u64,
}

/// Co-purchase counts.
///
/// Every implementation must:
/// - count an order once, however often [`RecommendationStore::record_order`] is called with
///   it (the saga and `recover()` may repeat it);
/// - count each unordered pair of distinct SKUs of an order once (duplicates in `skus` count
///   once);
/// - order [`RecommendationStore::also_bought`] by count descending, then SKU ascending.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait RecommendationStore: Debug + Send + Sync + 'static {
    /// Counts the co-purchases of an order. Returns whether it was counted now: `false` when it
    /// had been already, or when the order has fewer than two distinct SKUs (no pair to count,
    /// so nothing is stored).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn record_order(&self, order: OrderId, skus: &[Sku]) -> Result<bool, StoreError>;

    /// The `k` SKUs (at most [`MAX_RECOMMENDATIONS`]) most often bought with `sku`.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn also_bought(&self, sku: &Sku, k: usize) -> Result<Vec<AlsoBought>, StoreError>;
}

/// The distinct SKUs of an order, sorted: what stores count pairs over.
pub fn distinct_skus(skus: &[Sku]) -> Vec<Sku> {
    let mut v = skus.to_vec();
    v.sort();
    v.dedup();
    v
}
