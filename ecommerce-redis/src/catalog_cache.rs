//! The catalog's last good answers on Redis, shared by every process of a shop.

use std::time::Duration;

use async_trait::async_trait;
use ecommerce_core::catalog_cache::{CachedEntry, CatalogCache};
use ecommerce_core::error::StoreError;
use redis::AsyncCommands;

use crate::{Redis, decode, store_error};

/// A [`CatalogCache`] on Redis: give it to [`ecommerce_core::catalog_cache::CachingCatalog`].
/// Entries are kept for `keep` (a week by default), the longest outage the catalog should
/// survive.
#[derive(Debug, Clone)]
pub struct RedisCatalogCache {
    redis: Redis,
    keep: Duration,
}

impl RedisCatalogCache {
    /// A cache on this Redis keeping entries for a week.
    pub fn new(redis: Redis) -> Self {
        RedisCatalogCache {
            redis,
            keep: Duration::from_secs(7 * 24 * 3600),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{{{}:cat}}:{key}", self.redis.prefix)
    }
}

#[async_trait]
impl CatalogCache for RedisCatalogCache {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", key = key))]
    async fn get(&self, key: &str) -> Result<Option<CachedEntry>, StoreError> {
        let json: Option<String> = self
            .redis
            .connection()
            .get(self.key(key))
            .await
            .map_err(|e| store_error("reading the catalog cache", e))?;
        json.map(|j| decode("catalog cache entry", &j)).transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", key = key))]
    async fn put(&self, key: &str, entry: CachedEntry) -> Result<(), StoreError> {
        let json = serde_json::to_string(&entry).expect("entries serialize");
        let _: () = self
            .redis
            .connection()
            .set_ex(self.key(key), json, self.keep.as_secs())
            .await
            .map_err(|e| store_error("writing the catalog cache", e))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", key = key))]
    async fn remove(&self, key: &str) -> Result<(), StoreError> {
        let _: i64 = self
            .redis
            .connection()
            .del(self.key(key))
            .await
            .map_err(|e| store_error("removing from the catalog cache", e))?;
        Ok(())
    }
}
