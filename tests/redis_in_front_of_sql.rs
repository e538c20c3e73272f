//! The original design's carts: active carts on Redis in front of persistent carts in SQL
//! (SQLite here), merged on login. The whole conformance suite runs on that composition, with
//! stock in SQL behind the Redis flash-sale gate.

use std::sync::Arc;
use std::time::Duration;

use ecommerce::cart::TieredCartStore;
use ecommerce::testkit::{Backend, BackendFactory};
use ecommerce_redis::{GatedInventory, Redis, RedisCartStore};
use ecommerce_sqlx::SqlStores;

/// Removes the SQLite files and the Redis keys of one backend.
#[derive(Debug)]
struct Cleanup {
    url: String,
    prefix: String,
    path: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path));
        }
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

struct RedisOverSql;

#[async_trait::async_trait]
impl BackendFactory for RedisOverSql {
    async fn backend(&self) -> Option<Backend> {
        let url = match std::env::var("ECOMMERCE_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("ECOMMERCE_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1") => {
                panic!("ECOMMERCE_TEST_REDIS_URL not set and ECOMMERCE_TEST_REQUIRE_SERVICES=1")
            }
            _ => {
                eprintln!("skipped: ECOMMERCE_TEST_REDIS_URL not set");
                return None;
            }
        };
        let tag = uuid::Uuid::new_v4().simple().to_string();
        let path = std::env::temp_dir()
            .join(format!("ecommerce-tiered-{tag}.db"))
            .display()
            .to_string();
        let sql = SqlStores::connect(&format!("sqlite://{path}?mode=rwc"))
            .await
            .expect("sqlite");
        let prefix = format!("r{tag}");
        let redis = Redis::connect(&url, &prefix).await.expect("redis");
        let carts = TieredCartStore::new(
            Arc::new(RedisCartStore::new(
                redis.clone(),
                Duration::from_secs(3600),
            )),
            sql.carts.clone(),
        );
        Some(Backend {
            catalog: sql.catalog.clone(),
            carts: Arc::new(carts),
            inventory: Arc::new(GatedInventory::new(redis, sql.inventory.clone())),
            orders: sql.orders.clone(),
            outbox: sql.orders.clone(),
            recommendations: sql.recommendations.clone(),
            address_book: sql.address_book.clone(),
            promotions: sql.promotions.clone(),
            histories: 10,
            simulated_histories: 1_000,
            guard: Some(Arc::new(Cleanup { url, prefix, path })),
            ..Backend::memory()
        })
    }
}

ecommerce::conformance_suite!(RedisOverSql);
