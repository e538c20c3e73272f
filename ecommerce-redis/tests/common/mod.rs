//! A fresh key prefix per test on the Redis of `ECOMMERCE_TEST_REDIS_URL` (skipped without it,
//! failed when `ECOMMERCE_TEST_REQUIRE_SERVICES=1`), its keys deleted when the test ends.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::time::Duration;

use ecommerce_core::catalog_cache::CachingCatalog;
use ecommerce_core::memory::MemoryCatalog;
use ecommerce_core::testkit::{Backend, BackendFactory};
use ecommerce_redis::{
    Redis, RedisCartStore, RedisCatalogCache, RedisInventory, RedisRecommendations,
};

fn required() -> bool {
    std::env::var("ECOMMERCE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// The Redis URL, or `None` (after printing why) when the test should skip.
pub fn redis_url() -> Option<String> {
    match std::env::var("ECOMMERCE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if required() => {
            panic!("ECOMMERCE_TEST_REDIS_URL not set and ECOMMERCE_TEST_REQUIRE_SERVICES=1")
        }
        _ => {
            eprintln!("skipped: ECOMMERCE_TEST_REDIS_URL not set");
            None
        }
    }
}

/// Deletes every key of a prefix when dropped.
#[derive(Debug)]
pub struct Cleanup {
    url: String,
    prefix: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (url, pattern) = (self.url.clone(), format!("{{{}:*", self.prefix));
        let _ = std::thread::spawn(move || {
            let Ok(client) = redis::Client::open(url) else {
                return;
            };
            let Ok(mut con) = client.get_connection() else {
                return;
            };
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(&pattern)
                .query(&mut con)
                .unwrap_or_default();
            for key in keys {
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(&mut con);
            }
        })
        .join();
    }
}

/// A connected handle with a fresh prefix, and its cleanup.
pub async fn fresh() -> Option<(Redis, Arc<Cleanup>)> {
    let url = redis_url()?;
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    match Redis::connect(&url, &prefix).await {
        Ok(redis) => Some((redis, Arc::new(Cleanup { url, prefix }))),
        Err(e) if required() => panic!("redis unreachable: {e}"),
        Err(e) => {
            eprintln!("skipped: redis unreachable: {e}");
            None
        }
    }
}

/// Every Redis store, the others in memory.
pub fn backend(redis: Redis, guard: Option<Arc<dyn std::fmt::Debug + Send + Sync>>) -> Backend {
    Backend {
        carts: Arc::new(RedisCartStore::new(
            redis.clone(),
            Duration::from_secs(3600),
        )),
        inventory: Arc::new(RedisInventory::new(redis.clone())),
        recommendations: Arc::new(RedisRecommendations::new(redis.clone())),
        catalog: Arc::new(CachingCatalog::new(
            Arc::new(MemoryCatalog::new()),
            Arc::new(RedisCatalogCache::new(redis)),
            Duration::ZERO,
        )),
        histories: 20,
        simulated_histories: 1_000,
        guard,
        ..Backend::memory()
    }
}

pub struct Single;

#[async_trait::async_trait]
impl BackendFactory for Single {
    async fn backend(&self) -> Option<Backend> {
        let (redis, cleanup) = fresh().await?;
        Some(backend(redis, Some(cleanup)))
    }
}
