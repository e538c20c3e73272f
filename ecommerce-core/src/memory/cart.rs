use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::lock;
use crate::cart::{Cart, CartStore};
use crate::error::CartError;
use crate::id::CartId;

/// Carts in memory, optionally expiring a fixed time after their last save.
#[derive(Debug, Default)]
pub struct MemoryCartStore {
    carts: Mutex<HashMap<CartId, (Cart, Option<Instant>)>>,
    ttl: Option<Duration>,
}

impl MemoryCartStore {
    /// A store whose carts never expire.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose carts expire `ttl` after their last save (an active-cart store).
    pub fn with_ttl(ttl: Duration) -> Self {
        MemoryCartStore {
            carts: Mutex::default(),
            ttl: Some(ttl),
        }
    }

    fn live(entry: Option<&(Cart, Option<Instant>)>) -> Option<&Cart> {
        match entry {
            Some((cart, expiry)) if expiry.is_none_or(|at| Instant::now() < at) => Some(cart),
            _ => None,
        }
    }

    fn check_version(
        carts: &HashMap<CartId, (Cart, Option<Instant>)>,
        id: CartId,
        expected: u64,
    ) -> Result<(), CartError> {
        let stored = Self::live(carts.get(&id)).map_or(0, |c| c.version);
        if stored == expected {
            Ok(())
        } else {
            Err(CartError::VersionConflict { cart: id })
        }
    }

    fn store(&self, carts: &mut HashMap<CartId, (Cart, Option<Instant>)>, cart: &Cart) -> Cart {
        let stored = cart.next_version();
        let expiry = self.ttl.map(|ttl| Instant::now() + ttl);
        carts.insert(cart.id, (stored.clone(), expiry));
        stored
    }
}

#[async_trait]
impl CartStore for MemoryCartStore {
    async fn load(&self, id: CartId) -> Result<Option<Cart>, CartError> {
        Ok(Self::live(lock(&self.carts).get(&id)).cloned())
    }

    async fn save(&self, cart: &Cart) -> Result<Cart, CartError> {
        let mut carts = lock(&self.carts);
        Self::check_version(&carts, cart.id, cart.version)?;
        Ok(self.store(&mut carts, cart))
    }

    async fn delete(&self, id: CartId) -> Result<(), CartError> {
        lock(&self.carts).remove(&id);
        Ok(())
    }

    async fn save_merged(
        &self,
        merged: &Cart,
        consumed: CartId,
        consumed_version: u64,
    ) -> Result<Cart, CartError> {
        let mut carts = lock(&self.carts);
        Self::check_version(&carts, merged.id, merged.version)?;
        Self::check_version(&carts, consumed, consumed_version)?;
        carts.remove(&consumed);
        Ok(self.store(&mut carts, merged))
    }
}
