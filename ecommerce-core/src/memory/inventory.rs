use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use super::lock;
use crate::error::{InventoryError, Shortage};
use crate::id::{OrderId, ReservationId, Sku};
use crate::inventory::{
    InventoryStore, MAX_QUANTITY, MovementKind, Reservation, ReservationLine, ReservationOp,
    ReservationState, StockLevel, StockMovement, normalize_lines,
};

#[derive(Debug, Default)]
struct State {
    levels: HashMap<Sku, StockLevel>,
    reservations: HashMap<OrderId, Reservation>,
    ledger: HashMap<Sku, Vec<StockMovement>>,
}

impl State {
    /// Moves units between the buckets of every line's level and records the movement.
    /// Callers have checked that the source bucket covers every line.
    fn apply(&mut self, order: OrderId, lines: &[ReservationLine], kind: MovementKind) {
        let now = Utc::now();
        for line in lines {
            let level = self.levels.entry(line.sku.clone()).or_default();
            let n = line.quantity;
            match kind {
                MovementKind::Received => level.on_hand += n,
                MovementKind::Reserved => {
                    level.on_hand -= n;
                    level.reserved += n;
                }
                MovementKind::Released => {
                    level.reserved -= n;
                    level.on_hand += n;
                }
                MovementKind::Committed => {
                    level.reserved -= n;
                    level.sold += n;
                }
                MovementKind::Returned => {
                    level.sold -= n;
                    level.on_hand += n;
                }
            }
            self.ledger
                .entry(line.sku.clone())
                .or_default()
                .push(StockMovement {
                    sku: line.sku.clone(),
                    kind,
                    quantity: n,
                    order: Some(order),
                    at: now,
                });
        }
    }

    fn transition(
        &mut self,
        order: OrderId,
        to: ReservationState,
        kind: MovementKind,
    ) -> Reservation {
        let reservation = self
            .reservations
            .get_mut(&order)
            .expect("checked by caller");
        reservation.state = to;
        let reservation = reservation.clone();
        self.apply(order, &reservation.lines, kind);
        reservation
    }
}

/// Stock in memory: one mutex over levels, reservations and the ledger, so a multi-SKU
/// reservation is a single atomic step.
#[derive(Debug, Default)]
pub struct MemoryInventory {
    state: Mutex<State>,
}

impl MemoryInventory {
    /// An empty inventory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies an operation to an order's reservation under the lock; `Ok(None)` when the
    /// order has none.
    fn apply(
        &self,
        order: OrderId,
        op: ReservationOp,
    ) -> Result<Option<Reservation>, InventoryError> {
        let mut state = lock(&self.state);
        let Some(r) = state.reservations.get(&order) else {
            return Ok(None);
        };
        let expired = r.expires_at <= Utc::now();
        Ok(Some(match r.state.step(op, order, expired)? {
            Some((to, kind)) => state.transition(order, to, kind),
            None => r.clone(),
        }))
    }
}

#[async_trait]
impl InventoryStore for MemoryInventory {
    async fn receive(&self, sku: &Sku, quantity: u32) -> Result<StockLevel, InventoryError> {
        if quantity == 0 || quantity > MAX_QUANTITY {
            return Err(InventoryError::InvalidQuantity {
                sku: sku.clone(),
                quantity,
            });
        }
        let mut state = lock(&self.state);
        let level = state.levels.entry(sku.clone()).or_default();
        if level.total() + u64::from(quantity) > u64::from(u32::MAX) {
            return Err(InventoryError::InvalidQuantity {
                sku: sku.clone(),
                quantity,
            });
        }
        level.on_hand += quantity;
        let level = *level;
        state
            .ledger
            .entry(sku.clone())
            .or_default()
            .push(StockMovement {
                sku: sku.clone(),
                kind: MovementKind::Received,
                quantity,
                order: None,
                at: Utc::now(),
            });
        Ok(level)
    }

    async fn level(&self, sku: &Sku) -> Result<StockLevel, InventoryError> {
        lock(&self.state)
            .levels
            .get(sku)
            .copied()
            .ok_or_else(|| InventoryError::UnknownSku(sku.clone()))
    }

    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<Reservation, InventoryError> {
        let lines = normalize_lines(lines)?;
        let mut state = lock(&self.state);
        let previous = state.reservations.get(&order);
        if let Some(r) = previous {
            if r.state != ReservationState::Released {
                return Ok(r.clone());
            }
        }
        let shortages: Vec<Shortage> = lines
            .iter()
            .filter_map(|line| {
                let available = state.levels.get(&line.sku).map_or(0, |l| l.on_hand);
                (available < line.quantity).then(|| Shortage {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available,
                })
            })
            .collect();
        if !shortages.is_empty() {
            return Err(InventoryError::OutOfStock { shortages });
        }
        let id = previous.map_or_else(ReservationId::new, |r| r.id);
        let reservation = Reservation {
            id,
            order,
            lines: lines.clone(),
            state: ReservationState::Held,
            expires_at: Utc::now()
                + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX),
        };
        state.apply(order, &lines, MovementKind::Reserved);
        state.reservations.insert(order, reservation.clone());
        Ok(reservation)
    }

    async fn commit(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.apply(order, ReservationOp::Commit)?
            .ok_or(InventoryError::NoReservation(order))
    }

    async fn release(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        self.apply(order, ReservationOp::Release)
    }

    async fn return_stock(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.apply(order, ReservationOp::Return)?
            .ok_or(InventoryError::NoReservation(order))
    }

    async fn reservation(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        Ok(lock(&self.state).reservations.get(&order).cloned())
    }

    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError> {
        let now = Utc::now();
        let mut expired: Vec<(chrono::DateTime<Utc>, OrderId)> = lock(&self.state)
            .reservations
            .values()
            .filter(|r| r.state == ReservationState::Held && r.expires_at <= now)
            .map(|r| (r.expires_at, r.order))
            .collect();
        expired.sort();
        expired.truncate(limit);
        let mut released = Vec::new();
        for (_, order) in expired {
            if let Some(r) = self.apply(order, ReservationOp::ReleaseIfExpired)? {
                if r.state == ReservationState::Released {
                    released.push(order);
                }
            }
        }
        Ok(released)
    }

    async fn ledger(&self, sku: &Sku) -> Result<Vec<StockMovement>, InventoryError> {
        Ok(lock(&self.state)
            .ledger
            .get(sku)
            .cloned()
            .unwrap_or_default())
    }
}
