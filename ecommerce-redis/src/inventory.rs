//! Stock on Redis: levels in three hashes (on hand, reserved, sold), reservations in a hash
//! by order with their expiries in a sorted set, a ledger list per SKU. Every change is one Lua
//! script, so a multi-SKU reservation is all or nothing; all keys share the `{prefix:inv}` hash
//! tag, so on a cluster they live in one slot. Expiry uses the Redis server's clock. See the
//! crate docs for the durability limits.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use ecommerce_core::error::{InventoryError, Shortage, StoreError};
use ecommerce_core::id::{OrderId, ReservationId, Sku};
use ecommerce_core::inventory::{
    InventoryStore, MAX_QUANTITY, MovementKind, Reservation, ReservationLine, ReservationOp,
    ReservationState, StockLevel, StockMovement, normalize_lines,
};
use redis::{AsyncCommands, Script};
use serde::Deserialize;

use crate::{Redis, decode, store_error};

/// Stock on Redis.
#[derive(Debug, Clone)]
pub struct RedisInventory {
    redis: Redis,
    receive: Script,
    reserve: Script,
    transition: Script,
}

/// A reservation as the scripts store it.
#[derive(Debug, Deserialize)]
struct Stored {
    id: String,
    lines: Vec<ReservationLine>,
    state: String,
    expires_at: i64,
}

#[derive(Debug, Deserialize)]
struct StoredMovement {
    kind: String,
    quantity: u32,
    #[serde(default)]
    order: Option<String>,
    at: i64,
}

fn corrupt(message: String) -> InventoryError {
    InventoryError::Store(StoreError::Corrupt { message })
}

fn state(s: &str) -> Result<ReservationState, InventoryError> {
    ReservationState::parse(s).ok_or_else(|| corrupt(format!("reservation state `{s}`")))
}

fn reservation(order: OrderId, json: &str) -> Result<Reservation, InventoryError> {
    let stored: Stored = decode("reservation", json)?;
    Ok(Reservation {
        id: stored
            .id
            .parse::<ReservationId>()
            .map_err(|e| corrupt(e.to_string()))?,
        order,
        lines: stored.lines,
        state: state(&stored.state)?,
        expires_at: Utc
            .timestamp_millis_opt(stored.expires_at)
            .single()
            .unwrap_or_default(),
    })
}

impl RedisInventory {
    /// Stock on this Redis.
    pub fn new(redis: Redis) -> Self {
        RedisInventory {
            redis,
            receive: Script::new(include_str!("../lua/stock_receive.lua")),
            reserve: Script::new(include_str!("../lua/stock_reserve.lua")),
            transition: Script::new(include_str!("../lua/stock_transition.lua")),
        }
    }

    fn key(&self, name: &str) -> String {
        format!("{{{}:inv}}:{name}", self.redis.prefix)
    }

    fn ledger_key(&self, sku: &Sku) -> String {
        self.key(&format!("ledger:{sku}"))
    }

    async fn stored(&self, order: OrderId) -> Result<Option<String>, InventoryError> {
        Ok(self
            .redis
            .connection()
            .hget(self.key("reservations"), order.to_string())
            .await
            .map_err(|e| store_error("reading a reservation", e))?)
    }

    /// Runs a transition; `Ok(None)` when the order has no reservation.
    async fn transition(
        &self,
        order: OrderId,
        op: ReservationOp,
    ) -> Result<Option<Reservation>, InventoryError> {
        for _ in 0..8 {
            let Some(json) = self.stored(order).await? else {
                return Ok(None);
            };
            let current = reservation(order, &json)?;
            let mut invocation = self.transition.prepare_invoke();
            invocation
                .key(self.key("on_hand"))
                .key(self.key("reserved"))
                .key(self.key("sold"))
                .key(self.key("reservations"))
                .key(self.key("expiries"));
            for line in &current.lines {
                invocation.key(self.ledger_key(&line.sku));
            }
            invocation
                .arg(order.to_string())
                .arg(op.as_str())
                .arg(current.lines.len());
            let reply: Vec<String> = invocation
                .invoke_async(&mut self.redis.connection())
                .await
                .map_err(|e| store_error("changing a reservation", e))?;
            match reply.first().map(String::as_str) {
                Some("none") => return Ok(None),
                Some("stale") => continue,
                Some("kept" | "moved") => {
                    let json = reply.get(1).ok_or_else(|| corrupt("empty reply".into()))?;
                    return Ok(Some(reservation(order, json)?));
                }
                Some("refused") => {
                    // The script applies the same table as the core rule: let the rule name
                    // the refusal.
                    let from = state(reply.get(1).map_or("", String::as_str))?;
                    return match from.step(op, order, false) {
                        Err(e) => Err(e),
                        Ok(_) => Err(corrupt(format!(
                            "the script refused {} from {from:?}",
                            op.as_str()
                        ))),
                    };
                }
                _ => return Err(corrupt(format!("unexpected script reply {reply:?}"))),
            }
        }
        Err(InventoryError::Store(StoreError::Conflict {
            message: "reservation kept changing".into(),
            source: None,
        }))
    }
}

#[async_trait]
impl InventoryStore for RedisInventory {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", sku = %sku, quantity = quantity))]
    async fn receive(&self, sku: &Sku, quantity: u32) -> Result<StockLevel, InventoryError> {
        if quantity == 0 || quantity > MAX_QUANTITY {
            return Err(InventoryError::InvalidQuantity {
                sku: sku.clone(),
                quantity,
            });
        }
        let reply: Result<Vec<i64>, _> = self
            .receive
            .key(self.key("on_hand"))
            .key(self.key("reserved"))
            .key(self.key("sold"))
            .key(self.ledger_key(sku))
            .arg(sku.as_str())
            .arg(quantity)
            .arg(u64::from(u32::MAX) - 1)
            .invoke_async(&mut self.redis.connection())
            .await;
        match reply {
            Ok(v) if v.len() == 3 => Ok(StockLevel {
                on_hand: u32::try_from(v[0]).unwrap_or(u32::MAX),
                reserved: u32::try_from(v[1]).unwrap_or(u32::MAX),
                sold: u32::try_from(v[2]).unwrap_or(u32::MAX),
            }),
            Ok(v) => Err(corrupt(format!("unexpected script reply {v:?}"))),
            Err(e) if e.to_string().contains("overflow") => Err(InventoryError::InvalidQuantity {
                sku: sku.clone(),
                quantity,
            }),
            Err(e) => Err(store_error("receiving stock", e).into()),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", sku = %sku))]
    async fn level(&self, sku: &Sku) -> Result<StockLevel, InventoryError> {
        let (on_hand, reserved, sold): (Option<u32>, Option<u32>, Option<u32>) = redis::pipe()
            .hget(self.key("on_hand"), sku.as_str())
            .hget(self.key("reserved"), sku.as_str())
            .hget(self.key("sold"), sku.as_str())
            .query_async(&mut self.redis.connection())
            .await
            .map_err(|e| store_error("reading stock", e))?;
        match (on_hand, reserved, sold) {
            (Some(on_hand), reserved, sold) => Ok(StockLevel {
                on_hand,
                reserved: reserved.unwrap_or(0),
                sold: sold.unwrap_or(0),
            }),
            _ => Err(InventoryError::UnknownSku(sku.clone())),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order, skus = lines.len()))]
    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<Reservation, InventoryError> {
        let lines = normalize_lines(lines)?;
        let mut invocation = self.reserve.prepare_invoke();
        invocation
            .key(self.key("on_hand"))
            .key(self.key("reserved"))
            .key(self.key("reservations"))
            .key(self.key("expiries"));
        for line in &lines {
            invocation.key(self.ledger_key(&line.sku));
        }
        invocation
            .arg(order.to_string())
            .arg(ReservationId::new().to_string())
            .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX / 4));
        for line in &lines {
            invocation.arg(line.sku.as_str()).arg(line.quantity);
        }
        let reply: Vec<String> = invocation
            .invoke_async(&mut self.redis.connection())
            .await
            .map_err(|e| store_error("reserving stock", e))?;
        match (reply.first().map(String::as_str), reply.get(1)) {
            (Some("existing" | "taken"), Some(json)) => reservation(order, json),
            (Some("short"), Some(json)) => {
                let shortages: Vec<Shortage> = decode("shortages", json)?;
                Err(InventoryError::OutOfStock { shortages })
            }
            _ => Err(corrupt(format!("unexpected script reply {reply:?}"))),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order))]
    async fn commit(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.transition(order, ReservationOp::Commit)
            .await?
            .ok_or(InventoryError::NoReservation(order))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order))]
    async fn release(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        self.transition(order, ReservationOp::Release).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order))]
    async fn return_stock(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.transition(order, ReservationOp::Return)
            .await?
            .ok_or(InventoryError::NoReservation(order))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", order = %order))]
    async fn reservation(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        self.stored(order)
            .await?
            .map(|json| reservation(order, &json))
            .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", limit = limit))]
    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError> {
        let (seconds, micros): (i64, i64) = redis::cmd("TIME")
            .query_async(&mut self.redis.connection())
            .await
            .map_err(|e| store_error("reading the server clock", e))?;
        let now = seconds * 1000 + micros / 1000;
        let due: Vec<String> = self
            .redis
            .connection()
            .zrangebyscore_limit(self.key("expiries"), "-inf", now, 0, limit as isize)
            .await
            .map_err(|e| store_error("finding expired reservations", e))?;
        let mut released = Vec::new();
        for order in due {
            let order: OrderId = order
                .parse()
                .map_err(|_| corrupt(format!("order id `{order}`")))?;
            if let Some(r) = self
                .transition(order, ReservationOp::ReleaseIfExpired)
                .await?
            {
                if r.state == ReservationState::Released {
                    released.push(order);
                }
            }
        }
        Ok(released)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = "redis", sku = %sku))]
    async fn ledger(&self, sku: &Sku) -> Result<Vec<StockMovement>, InventoryError> {
        let entries: Vec<String> = self
            .redis
            .connection()
            .lrange(self.ledger_key(sku), 0, -1)
            .await
            .map_err(|e| store_error("reading the ledger", e))?;
        entries
            .iter()
            .map(|json| {
                let m: StoredMovement = decode("ledger entry", json)?;
                let kind = MovementKind::parse(&m.kind)
                    .ok_or_else(|| corrupt(format!("ledger movement `{}`", m.kind)))?;
                Ok(StockMovement {
                    sku: sku.clone(),
                    kind,
                    quantity: m.quantity,
                    order: m.order.and_then(|o| o.parse().ok()),
                    at: Utc.timestamp_millis_opt(m.at).single().unwrap_or_default(),
                })
            })
            .collect()
    }
}
