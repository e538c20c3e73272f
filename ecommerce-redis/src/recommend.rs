//! Co-purchase counts on Redis sorted sets: one sorted set per SKU (member: the other SKU,
//! score: orders with both), and a set of counted orders, updated by one Lua script so an
//! order counts once. All keys share the `{prefix:rec}` hash tag.

use async_trait::async_trait;
use ecommerce_core::error::StoreError;
use ecommerce_core::id::{OrderId, Sku};
use ecommerce_core::recommend::{
    AlsoBought, MAX_RECOMMENDATIONS, RecommendationStore, distinct_skus,
};
use redis::{AsyncCommands, Script};

use crate::{Redis, store_error};

/// Co-purchase counts on Redis.
#[derive(Debug, Clone)]
pub struct RedisRecommendations {
    redis: Redis,
    record: Script,
}

impl RedisRecommendations {
    /// Counts on this Redis.
    pub fn new(redis: Redis) -> Self {
        RedisRecommendations {
            redis,
            record: Script::new(include_str!("../lua/record_order.lua")),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{{{}:rec}}:{name}", self.redis.prefix)
    }
}

#[async_trait]
impl RecommendationStore for RedisRecommendations {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order, skus = skus.len()))]
    async fn record_order(&self, order: OrderId, skus: &[Sku]) -> Result<bool, StoreError> {
        let skus = distinct_skus(skus);
        if skus.len() < 2 {
            // No pair to count: nothing to store, no round trip.
            return Ok(false);
        }
        let mut invocation = self.record.prepare_invoke();
        invocation.key(self.key("counted")).arg(order.to_string());
        for sku in &skus {
            invocation
                .key(self.key(&format!("also:{sku}")))
                .arg(sku.as_str());
        }
        let counted: i64 = invocation
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(|e| store_error("recording co-purchases", e))?;
        Ok(counted == 1)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", sku = %sku, k = k))]
    async fn also_bought(&self, sku: &Sku, k: usize) -> Result<Vec<AlsoBought>, StoreError> {
        let k = k.min(MAX_RECOMMENDATIONS);
        if k == 0 {
            return Ok(Vec::new());
        }
        let key = self.key(&format!("also:{sku}"));
        let mut con = self.redis.connection();
        let mut top: Vec<(String, f64)> = con
            .zrevrange_withscores(&key, 0, k as isize - 1)
            .await
            .map_err(|e| store_error("reading co-purchases", e))?;
        // Ties at the cut are ordered by SKU, as every store does: fetch the whole tie.
        if let Some(&(_, last)) = top.last() {
            let tied: Vec<(String, f64)> = con
                .zrangebyscore_withscores(&key, last, last)
                .await
                .map_err(|e| store_error("reading co-purchases", e))?;
            top.retain(|(_, score)| *score > last);
            top.extend(tied);
        }
        let mut list: Vec<AlsoBought> = top
            .into_iter()
            .map(|(other, score)| {
                Ok(AlsoBought {
                    sku: Sku::new(other).map_err(|e| StoreError::Corrupt {
                        message: e.to_string(),
                    })?,
                    count: score as u64,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.sku.cmp(&b.sku)));
        list.truncate(k);
        Ok(list)
    }
}
