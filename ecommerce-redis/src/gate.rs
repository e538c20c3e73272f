//! The flash-sale gate: Redis in front of the SQL inventory.
//!
//! [`GatedInventory`] keeps a counter of available units per SKU in Redis. A reservation first
//! reads the order's reservation from the inner inventory (one read by order id): an order
//! that has one (held, committed or returned) gets it back and the counters are not touched.
//! Otherwise it takes its units from the counters in one Lua script, all or nothing: when they
//! are short, the buyer is turned away without taking anything in the database. Otherwise the
//! inner inventory (the SQL conditional decrement) decides, and stays the source of truth: if
//! it refuses, the units go back to the counters and the counters of the short SKUs are reset
//! from it.
//!
//! The counters are rebuilt from the inner inventory with [`GatedInventory::rebuild`] on
//! start, and [`GatedInventory::reconcile`] resets them periodically. Drift can only turn a
//! buyer away early (a counter below the truth, until the next reconcile) or send a buyer the
//! database refuses (a counter above it): never an oversell, since the database decides.
//! When Redis is down (once it is seen down, a circuit breaker skips it without waiting), or
//! a SKU has no counter, reservations fall through to the inner inventory: slower, still
//! correct.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ecommerce_core::breaker::{BreakerConfig, CircuitBreaker};
use ecommerce_core::error::{InventoryError, Shortage};
use ecommerce_core::id::{OrderId, Sku};
use ecommerce_core::inventory::{
    InventoryStore, Reservation, ReservationLine, ReservationState, StockLevel, StockMovement,
    normalize_lines,
};
use redis::{AsyncCommands, RedisResult, Script};

use crate::{Redis, decode};

/// Whether a Redis error means Redis is unreachable (not an answer it gave).
fn unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

/// Redis counters in front of an inventory (see the module docs).
#[derive(Debug, Clone)]
pub struct GatedInventory {
    redis: Redis,
    inner: Arc<dyn InventoryStore>,
    take: Script,
    give_back: Script,
    restock: Script,
    received: Script,
    /// Watches Redis: while it is down the gate is skipped at once.
    breaker: Arc<CircuitBreaker>,
}

enum Gate {
    /// The units are taken from the counters (or were for this order).
    Through,
    /// The counters cannot tell (no counter, or Redis unreachable): ask the inventory.
    Unknown,
    /// Short at the gate.
    Short(Vec<Shortage>),
}

impl GatedInventory {
    /// A gate on this Redis in front of `inner`.
    pub fn new(redis: Redis, inner: Arc<dyn InventoryStore>) -> Self {
        GatedInventory {
            redis,
            inner,
            take: Script::new(include_str!("../lua/gate_take.lua")),
            give_back: Script::new(include_str!("../lua/gate_give_back.lua")),
            restock: Script::new(include_str!("../lua/gate_restock.lua")),
            received: Script::new(include_str!("../lua/gate_receive.lua")),
            breaker: Arc::new(CircuitBreaker::new("stock gate", BreakerConfig::default())),
        }
    }

    /// Runs a Redis call unless Redis is known to be down (then `None`, at once).
    async fn on_redis<T>(
        &self,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Option<RedisResult<T>> {
        if !self.breaker.permit().allowed() {
            return None;
        }
        let result = call.await;
        self.breaker.record(&result, unreachable);
        Some(result)
    }

    fn key(&self, name: &str) -> String {
        format!("{{{}:gate}}:{name}", self.redis.prefix)
    }

    /// Sets the counters of these SKUs to the inner inventory's units on hand: on start, and
    /// for SKUs stocked before the gate existed.
    ///
    /// # Errors
    /// [`InventoryError`] from the inner inventory or Redis.
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", skus = skus.len()))]
    pub async fn rebuild(&self, skus: &[Sku]) -> Result<(), InventoryError> {
        for sku in skus {
            let level = self.inner.level(sku).await?;
            let _: () = self
                .redis
                .connection()
                .hset(self.key("available"), sku.as_str(), level.on_hand)
                .await
                .map_err(|e| crate::store_error("setting a gate counter", e))?;
        }
        Ok(())
    }

    /// Resets every counter to the inner inventory's units on hand; returns how many.
    ///
    /// # Errors
    /// [`InventoryError`] from the inner inventory or Redis.
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis"))]
    pub async fn reconcile(&self) -> Result<usize, InventoryError> {
        let skus: Vec<String> = self
            .redis
            .connection()
            .hkeys(self.key("available"))
            .await
            .map_err(|e| crate::store_error("listing gate counters", e))?;
        let skus: Vec<Sku> = skus.into_iter().filter_map(|s| Sku::new(s).ok()).collect();
        self.rebuild(&skus).await?;
        Ok(skus.len())
    }

    /// The gate's counter of a SKU, `None` when it has none.
    ///
    /// # Errors
    /// [`InventoryError::Store`].
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", sku = %sku))]
    pub async fn counter(&self, sku: &Sku) -> Result<Option<i64>, InventoryError> {
        Ok(self
            .redis
            .connection()
            .hget(self.key("available"), sku.as_str())
            .await
            .map_err(|e| crate::store_error("reading a gate counter", e))?)
    }

    async fn pass(&self, order: OrderId, lines: &[ReservationLine]) -> Gate {
        let mut invocation = self.take.prepare_invoke();
        invocation
            .key(self.key("available"))
            .key(self.key("through"))
            .arg(order.to_string())
            .arg(serde_json::to_string(lines).expect("lines serialize"));
        for line in lines {
            invocation.arg(line.sku.as_str()).arg(line.quantity);
        }
        let mut connection = self.redis.connection();
        let Some(reply) = self
            .on_redis(invocation.invoke_async::<Vec<String>>(&mut connection))
            .await
        else {
            return Gate::Unknown;
        };
        match reply {
            Ok(r) if r.first().map(String::as_str) == Some("through") => Gate::Through,
            Ok(r) if r.first().map(String::as_str) == Some("short") => {
                match r
                    .get(1)
                    .map(|json| decode::<Vec<Shortage>>("gate shortages", json))
                {
                    Some(Ok(shortages)) => Gate::Short(shortages),
                    _ => Gate::Unknown,
                }
            }
            // A missing counter, or Redis unreachable: the database decides.
            _ => Gate::Unknown,
        }
    }

    /// Gives an order's units back to the counters; a Redis failure is left to reconcile.
    async fn give_back(&self, order: OrderId) {
        let mut connection = self.redis.connection();
        let mut invocation = self.give_back.prepare_invoke();
        invocation
            .key(self.key("available"))
            .key(self.key("through"))
            .arg(order.to_string());
        let _ = self
            .on_redis(invocation.invoke_async::<i64>(&mut connection))
            .await;
    }
}

#[async_trait]
impl InventoryStore for GatedInventory {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", sku = %sku, quantity = quantity))]
    async fn receive(&self, sku: &Sku, quantity: u32) -> Result<StockLevel, InventoryError> {
        let level = self.inner.receive(sku, quantity).await?;
        // Counted on the gate too (a new counter starts at the units on hand); if Redis misses
        // it, reconcile restores it.
        let mut connection = self.redis.connection();
        let mut invocation = self.received.prepare_invoke();
        invocation
            .key(self.key("available"))
            .arg(sku.as_str())
            .arg(quantity)
            .arg(level.on_hand);
        let _ = self
            .on_redis(invocation.invoke_async::<i64>(&mut connection))
            .await;
        Ok(level)
    }

    async fn level(&self, sku: &Sku) -> Result<StockLevel, InventoryError> {
        self.inner.level(sku).await
    }

    /// From the counters, without the database, when every SKU has one; otherwise (or with
    /// Redis down) the inner inventory's answer.
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", skus = lines.len()))]
    async fn shortages(&self, lines: &[ReservationLine]) -> Result<Vec<Shortage>, InventoryError> {
        let lines = normalize_lines(lines)?;
        let skus: Vec<&str> = lines.iter().map(|l| l.sku.as_str()).collect();
        let mut connection = self.redis.connection();
        let counters = self
            .on_redis(
                redis::cmd("HMGET")
                    .arg(self.key("available"))
                    .arg(&skus)
                    .query_async::<Vec<Option<i64>>>(&mut connection),
            )
            .await;
        let Some(Ok(counters)) = counters else {
            return self.inner.shortages(&lines).await;
        };
        if counters.len() != lines.len() || counters.iter().any(Option::is_none) {
            return self.inner.shortages(&lines).await;
        }
        Ok(lines
            .into_iter()
            .zip(counters)
            .filter_map(|(line, counter)| {
                let available = u32::try_from(counter.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
                (available < line.quantity).then_some(Shortage {
                    sku: line.sku,
                    requested: line.quantity,
                    available,
                })
            })
            .collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order, skus = lines.len()))]
    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<Reservation, InventoryError> {
        let lines = normalize_lines(lines)?;
        // A retry of an order the inventory already holds (or sold) gets its reservation back
        // before the counters are touched: its units are off them already (or, committed, its
        // `through` entry is gone), and taking them again would turn other buyers away.
        if let Some(existing) = self.inner.reservation(order).await? {
            if existing.state != ReservationState::Released {
                return Ok(existing);
            }
        }
        let gate = self.pass(order, &lines).await;
        if let Gate::Short(shortages) = gate {
            return Err(InventoryError::OutOfStock { shortages });
        }
        match self.inner.reserve(order, &lines, ttl).await {
            Ok(reservation) => Ok(reservation),
            Err(e) => {
                if matches!(gate, Gate::Through) {
                    self.give_back(order).await;
                }
                if let InventoryError::OutOfStock { shortages } = &e {
                    let short: Vec<Sku> = shortages.iter().map(|s| s.sku.clone()).collect();
                    let _ = self.rebuild(&short).await;
                }
                Err(e)
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order))]
    async fn commit(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        let reservation = self.inner.commit(order).await?;
        // Sold: the units stay off the counters; forget the order.
        let mut connection = self.redis.connection();
        let _ = self
            .on_redis(connection.hdel::<_, _, i64>(self.key("through"), order.to_string()))
            .await;
        Ok(reservation)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order))]
    async fn release(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        let released = self.inner.release(order).await?;
        if released.is_some() {
            self.give_back(order).await;
        }
        Ok(released)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order))]
    async fn return_stock(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        let reservation = self.inner.return_stock(order).await?;
        let mut invocation = self.restock.prepare_invoke();
        invocation
            .key(self.key("available"))
            .key(self.key("restocked"))
            .arg(order.to_string());
        for line in &reservation.lines {
            invocation.arg(line.sku.as_str()).arg(line.quantity);
        }
        let mut connection = self.redis.connection();
        let _ = self
            .on_redis(invocation.invoke_async::<i64>(&mut connection))
            .await;
        Ok(reservation)
    }

    async fn reservation(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        self.inner.reservation(order).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", limit = limit))]
    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError> {
        let released = self.inner.release_expired(limit).await?;
        for order in &released {
            self.give_back(*order).await;
        }
        Ok(released)
    }

    async fn ledger(&self, sku: &Sku) -> Result<Vec<StockMovement>, InventoryError> {
        self.inner.ledger(sku).await
    }
}
