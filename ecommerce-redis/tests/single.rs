//! The whole conformance suite with carts, stock, recommendations and the catalog cache on a
//! single Redis.

mod common;

ecommerce_core::conformance_suite!(common::Single);

use std::time::Duration;

use ecommerce_core::cart::CartStore;
use ecommerce_core::error::{CartError, StoreError};
use ecommerce_core::id::CartId;
use ecommerce_redis::{Redis, RedisCartStore, RedisSetupError};
use redis::AsyncCommands;

#[tokio::test]
async fn a_foreign_or_corrupted_value_under_a_cart_key_is_an_error() {
    let Some((redis, _cleanup)) = common::fresh().await else {
        return;
    };
    let carts = RedisCartStore::new(redis.clone(), Duration::from_secs(60));
    let mut con = redis.connection();
    let foreign = CartId::new();
    let _: () = con
        .set(
            format!("{{{}:cart:{foreign}}}", redis.prefix()),
            "not a hash",
        )
        .await
        .expect("set");
    assert!(
        matches!(
            carts.load(foreign).await,
            Err(CartError::Store(StoreError::Corrupt { .. }))
        ),
        "a string where a hash belongs"
    );
    let corrupted = CartId::new();
    let _: () = con
        .hset(
            format!("{{{}:cart:{corrupted}}}", redis.prefix()),
            "doc",
            "{not json",
        )
        .await
        .expect("hset");
    assert!(matches!(
        carts.load(corrupted).await,
        Err(CartError::Store(StoreError::Corrupt { .. }))
    ));
}

#[tokio::test]
async fn an_unreachable_redis_or_a_bad_prefix_is_a_typed_error() {
    assert!(matches!(
        Redis::connect("redis://127.0.0.1:1", "shop").await,
        Err(RedisSetupError::Unreachable(_))
    ));
    assert!(matches!(
        Redis::connect("not a url", "shop").await,
        Err(RedisSetupError::Invalid(_))
    ));
    assert!(matches!(
        Redis::connect("redis://127.0.0.1:6379", "a{b}").await,
        Err(RedisSetupError::Invalid(_))
    ));
}
