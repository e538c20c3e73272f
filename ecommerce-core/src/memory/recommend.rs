use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::error::StoreError;
use crate::id::{OrderId, Sku};
use crate::recommend::{AlsoBought, MAX_RECOMMENDATIONS, RecommendationStore, distinct_skus};

#[derive(Debug, Default)]
struct State {
    counted: HashSet<OrderId>,
    pairs: HashMap<Sku, HashMap<Sku, u64>>,
}

/// Co-purchase counts in memory.
#[derive(Debug, Default)]
pub struct MemoryRecommendations {
    state: Mutex<State>,
}

impl MemoryRecommendations {
    /// No counts yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl RecommendationStore for MemoryRecommendations {
    async fn record_order(&self, order: OrderId, skus: &[Sku]) -> Result<bool, StoreError> {
        let skus = distinct_skus(skus);
        if skus.len() < 2 {
            // No pair to count: nothing to store, no round trip.
            return Ok(false);
        }
        let mut state = lock(&self.state);
        if !state.counted.insert(order) {
            return Ok(false);
        }
        for a in &skus {
            for b in &skus {
                if a != b {
                    *state
                        .pairs
                        .entry(a.clone())
                        .or_default()
                        .entry(b.clone())
                        .or_default() += 1;
                }
            }
        }
        Ok(true)
    }

    async fn also_bought(&self, sku: &Sku, k: usize) -> Result<Vec<AlsoBought>, StoreError> {
        let state = lock(&self.state);
        let mut list: Vec<AlsoBought> = state
            .pairs
            .get(sku)
            .map(|m| {
                m.iter()
                    .map(|(sku, count)| AlsoBought {
                        sku: sku.clone(),
                        count: *count,
                    })
                    .collect()
            })
            .unwrap_or_default();
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.sku.cmp(&b.sku)));
        list.truncate(k.min(MAX_RECOMMENDATIONS));
        Ok(list)
    }
}
