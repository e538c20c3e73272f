//! Active carts on Redis: one hash per cart (`v`: version, `doc`: the cart as JSON), a time to
//! live refreshed by every write, compare-and-set in a Lua script.

use std::time::Duration;

use async_trait::async_trait;
use ecommerce_core::cart::{Cart, CartStore};
use ecommerce_core::error::CartError;
use ecommerce_core::id::CartId;
use redis::{AsyncCommands, Script};

use crate::{Redis, decode, store_error};

/// Carts on Redis, expiring `ttl` after their last write: the active-cart store of the
/// original design (put it in front of a persistent store with
/// [`ecommerce_core::cart::TieredCartStore`]).
///
/// Saving a merge writes the merged cart, then deletes the consumed cart (they may live on
/// different cluster nodes); the merged cart carries the consumed cart's id, so a merge
/// interrupted between the two is finished, not repeated, when retried.
#[derive(Debug, Clone)]
pub struct RedisCartStore {
    redis: Redis,
    ttl: Duration,
    save: Script,
    delete_at: Script,
}

impl RedisCartStore {
    /// Carts on this Redis, expiring `ttl` after their last write.
    pub fn new(redis: Redis, ttl: Duration) -> Self {
        RedisCartStore {
            redis,
            ttl,
            save: Script::new(include_str!("../lua/cart_save.lua")),
            delete_at: Script::new(include_str!("../lua/cart_delete_at.lua")),
        }
    }

    fn key(&self, id: CartId) -> String {
        format!("{{{}:cart:{id}}}", self.redis.prefix)
    }

    async fn write(&self, cart: &Cart) -> Result<Cart, CartError> {
        let stored = cart.next_version();
        let written: i64 = self
            .save
            .key(self.key(cart.id))
            .arg(cart.version)
            .arg(serde_json::to_string(&stored).expect("carts serialize"))
            .arg(u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX))
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(|e| store_error("saving a cart", e))?;
        if written == 1 {
            Ok(stored)
        } else {
            Err(CartError::VersionConflict { cart: cart.id })
        }
    }
}

#[async_trait]
impl CartStore for RedisCartStore {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", cart = %id))]
    async fn load(&self, id: CartId) -> Result<Option<Cart>, CartError> {
        let doc: Option<String> = self
            .redis
            .connection()
            .hget(self.key(id), "doc")
            .await
            .map_err(|e| store_error("loading a cart", e))?;
        Ok(doc.map(|json| decode("cart", &json)).transpose()?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", cart = %cart.id))]
    async fn save(&self, cart: &Cart) -> Result<Cart, CartError> {
        self.write(cart).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", cart = %id))]
    async fn delete(&self, id: CartId) -> Result<(), CartError> {
        let _: i64 = self
            .redis
            .connection()
            .del(self.key(id))
            .await
            .map_err(|e| store_error("deleting a cart", e))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", cart = %merged.id, consumed = %consumed))]
    async fn save_merged(
        &self,
        merged: &Cart,
        consumed: CartId,
        consumed_version: u64,
    ) -> Result<Cart, CartError> {
        let current: Option<u64> = self
            .redis
            .connection()
            .hget(self.key(consumed), "v")
            .await
            .map_err(|e| store_error("reading a cart version", e))?;
        if current.unwrap_or(0) != consumed_version {
            return Err(CartError::VersionConflict { cart: consumed });
        }
        let stored = self.write(merged).await?;
        let _: i64 = self
            .delete_at
            .key(self.key(consumed))
            .arg(consumed_version)
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(|e| store_error("deleting a merged cart", e))?;
        Ok(stored)
    }
}
