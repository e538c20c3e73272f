//! Inventory: stock levels, reservations tied to orders, and the ledger that proves stock is
//! conserved.
//!
//! Adding to a cart reserves nothing. At checkout every line of an order is taken in one
//! atomic step, all or nothing, with the semantics of the conditional decrement
//! `UPDATE stock SET on_hand = on_hand - n WHERE sku = ? AND on_hand >= n`: a SKU that cannot
//! cover its quantity fails the whole reservation and is named in
//! [`InventoryError::OutOfStock`]. Each taking is a [`Reservation`] keyed by the order, so it
//! is committed (sold) or released (back on hand) exactly once, however often the call is
//! repeated.
//!
//! For every SKU, `on_hand + reserved + sold` changes only when units are received: a
//! reservation moves units from on hand to reserved, a commit from reserved to sold, a release
//! or a return back to on hand. The append-only [`StockMovement`] ledger records every change,
//! and [`StockLevel::conserved`] replays it to prove no unit was created or lost.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{InventoryError, Shortage};
use crate::id::{OrderId, ReservationId, Sku};

/// Largest quantity of one SKU in one reservation or one receipt.
pub const MAX_QUANTITY: u32 = 1_000_000;

/// The stock of one SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StockLevel {
    /// Units that can be sold now.
    pub on_hand: u32,
    /// Units held by reservations of orders awaiting payment.
    pub reserved: u32,
    /// Units sold (reservations committed), less units returned.
    pub sold: u32,
}

impl StockLevel {
    /// `on_hand + reserved + sold`: constant except for receipts.
    pub fn total(&self) -> u64 {
        u64::from(self.on_hand) + u64::from(self.reserved) + u64::from(self.sold)
    }

    /// Replays a ledger and checks that it yields this level: the proof that no unit was
    /// created or lost.
    pub fn conserved(&self, ledger: &[StockMovement]) -> bool {
        let mut replay = StockLevel::default();
        for m in ledger {
            let n = m.quantity;
            let ok = match m.kind {
                MovementKind::Received => {
                    replay.on_hand += n;
                    true
                }
                MovementKind::Reserved => {
                    take(&mut replay.on_hand, n) && give(&mut replay.reserved, n)
                }
                MovementKind::Released => {
                    take(&mut replay.reserved, n) && give(&mut replay.on_hand, n)
                }
                MovementKind::Committed => {
                    take(&mut replay.reserved, n) && give(&mut replay.sold, n)
                }
                MovementKind::Returned => take(&mut replay.sold, n) && give(&mut replay.on_hand, n),
            };
            if !ok {
                return false;
            }
        }
        replay == *self
    }
}

fn take(from: &mut u32, n: u32) -> bool {
    match from.checked_sub(n) {
        Some(v) => {
            *from = v;
            true
        }
        None => false,
    }
}

fn give(to: &mut u32, n: u32) -> bool {
    *to += n;
    true
}

/// What a ledger entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MovementKind {
    /// Units received into stock (on hand grows).
    Received,
    /// Units taken by a reservation (on hand to reserved).
    Reserved,
    /// A reservation released (reserved back to on hand).
    Released,
    /// A reservation committed (reserved to sold).
    Committed,
    /// A sale returned (sold back to on hand), as when a confirmed order is cancelled.
    Returned,
}

impl MovementKind {
    /// The wire name (`received`, `reserved`...), as stores write it.
    pub fn as_str(self) -> &'static str {
        match self {
            MovementKind::Received => "received",
            MovementKind::Reserved => "reserved",
            MovementKind::Released => "released",
            MovementKind::Committed => "committed",
            MovementKind::Returned => "returned",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<MovementKind> {
        [
            MovementKind::Received,
            MovementKind::Reserved,
            MovementKind::Released,
            MovementKind::Committed,
            MovementKind::Returned,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One entry of the append-only stock ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockMovement {
    /// The SKU.
    pub sku: Sku,
    /// What happened.
    pub kind: MovementKind,
    /// How many units.
    pub quantity: u32,
    /// The order, for reservation movements.
    pub order: Option<OrderId>,
    /// When (the store's clock).
    pub at: DateTime<Utc>,
}

/// One SKU and quantity to reserve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationLine {
    /// The SKU.
    pub sku: Sku,
    /// Units.
    pub quantity: u32,
}

/// Where a reservation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationState {
    /// Stock is held for the order.
    Held,
    /// Stock is sold to the order.
    Committed,
    /// Stock went back on hand (payment failed or the reservation expired).
    Released,
    /// The sale was undone and the stock went back on hand (order cancelled).
    Returned,
}

impl ReservationState {
    /// The wire name (`held`, `committed`...), as stores write it.
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationState::Held => "held",
            ReservationState::Committed => "committed",
            ReservationState::Released => "released",
            ReservationState::Returned => "returned",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<ReservationState> {
        [
            ReservationState::Held,
            ReservationState::Committed,
            ReservationState::Released,
            ReservationState::Returned,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// What is asked of a reservation after it was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReservationOp {
    /// Sell the held stock ([`InventoryStore::commit`]).
    Commit,
    /// Put the held stock back ([`InventoryStore::release`]).
    Release,
    /// Release only if still held and past its expiry ([`InventoryStore::release_expired`]).
    ReleaseIfExpired,
    /// Put the sold stock back ([`InventoryStore::return_stock`]).
    Return,
}

impl ReservationOp {
    /// The wire name (`commit`, `release`, `release_if_expired`, `return`).
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationOp::Commit => "commit",
            ReservationOp::Release => "release",
            ReservationOp::ReleaseIfExpired => "release_if_expired",
            ReservationOp::Return => "return",
        }
    }
}

impl ReservationState {
    /// The rule every store applies: what `op` does to a reservation of `order` in this state
    /// (`expired`: its expiry has passed). `Ok(Some((next, movement)))` moves the units,
    /// `Ok(None)` changes nothing (the operation was done before, or does not apply), `Err`
    /// refuses.
    ///
    /// # Errors
    /// [`InventoryError::Released`], [`InventoryError::Committed`],
    /// [`InventoryError::NotCommitted`].
    pub fn step(
        self,
        op: ReservationOp,
        order: OrderId,
        expired: bool,
    ) -> Result<Option<(ReservationState, MovementKind)>, InventoryError> {
        use ReservationOp as Op;
        use ReservationState::*;
        match (op, self) {
            (Op::Commit, Held) => Ok(Some((Committed, MovementKind::Committed))),
            (Op::Commit, Committed | Returned) => Ok(None),
            (Op::Commit, Released) => Err(InventoryError::Released(order)),
            (Op::Release, Held) => Ok(Some((Released, MovementKind::Released))),
            (Op::ReleaseIfExpired, Held) if expired => Ok(Some((Released, MovementKind::Released))),
            (Op::ReleaseIfExpired, _) | (Op::Release, Released) => Ok(None),
            (Op::Release, Committed | Returned) => Err(InventoryError::Committed(order)),
            (Op::Return, Committed) => Ok(Some((Returned, MovementKind::Returned))),
            (Op::Return, Returned) => Ok(None),
            (Op::Return, Held) => Err(InventoryError::NotCommitted(order)),
            (Op::Return, Released) => Err(InventoryError::Released(order)),
        }
    }
}

/// The stock taken for one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Id.
    pub id: ReservationId,
    /// The order (one reservation per order).
    pub order: OrderId,
    /// Lines, one per SKU, sorted by SKU.
    pub lines: Vec<ReservationLine>,
    /// State.
    pub state: ReservationState,
    /// When a held reservation expires and is released by
    /// [`InventoryStore::release_expired`].
    pub expires_at: DateTime<Utc>,
}

/// Sums lines of the same SKU and sorts by SKU: the fixed order in which stores take stock, so
/// two orders never wait on each other's rows in opposite orders.
///
/// # Errors
/// [`InventoryError::EmptyReservation`], [`InventoryError::InvalidQuantity`] for a zero line or
/// a sum above [`MAX_QUANTITY`].
pub fn normalize_lines(lines: &[ReservationLine]) -> Result<Vec<ReservationLine>, InventoryError> {
    if lines.is_empty() {
        return Err(InventoryError::EmptyReservation);
    }
    let mut sums: BTreeMap<&Sku, u64> = BTreeMap::new();
    for line in lines {
        if line.quantity == 0 || line.quantity > MAX_QUANTITY {
            return Err(InventoryError::InvalidQuantity {
                sku: line.sku.clone(),
                quantity: line.quantity,
            });
        }
        *sums.entry(&line.sku).or_default() += u64::from(line.quantity);
    }
    sums.into_iter()
        .map(|(sku, q)| {
            if q > u64::from(MAX_QUANTITY) {
                Err(InventoryError::InvalidQuantity {
                    sku: sku.clone(),
                    quantity: u32::try_from(q).unwrap_or(u32::MAX),
                })
            } else {
                Ok(ReservationLine {
                    sku: sku.clone(),
                    quantity: q as u32,
                })
            }
        })
        .collect()
}

/// Stock storage.
///
/// Every implementation must guarantee:
/// - **No oversell**: `on_hand` never goes below zero, under any concurrency.
/// - **All or nothing**: [`InventoryStore::reserve`] takes every line or none; lines of the
///   same SKU are summed first ([`normalize_lines`]), SKUs are taken in SKU order.
/// - **Exactly once per order**: reserve, commit, release and return are idempotent, keyed by
///   the order id. A repeated call returns the current reservation and moves no stock.
/// - **Conservation**: every change appends [`StockMovement`]s, and
///   [`StockLevel::conserved`] holds for every SKU's level and ledger.
/// - No network I/O other than to the store itself while a transaction or lock is held.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait InventoryStore: Debug + Send + Sync + 'static {
    /// Adds `quantity` units on hand (creating the SKU's stock record if needed).
    ///
    /// # Errors
    /// [`InventoryError::InvalidQuantity`] for 0 or above [`MAX_QUANTITY`],
    /// [`InventoryError::Store`].
    async fn receive(&self, sku: &Sku, quantity: u32) -> Result<StockLevel, InventoryError>;

    /// The stock of a SKU.
    ///
    /// # Errors
    /// [`InventoryError::UnknownSku`] when it has no stock record, [`InventoryError::Store`].
    async fn level(&self, sku: &Sku) -> Result<StockLevel, InventoryError>;

    /// The lines the store counts too few units for right now (empty: all could be taken).
    /// A hint, not a hold: [`InventoryStore::reserve`] decides. The checkout asks it before
    /// it stores an order, so that a buyer turned away for stock costs no write. The default
    /// reads [`InventoryStore::level`] of each SKU (a SKU with no stock record has 0); a store
    /// with a cheaper count (a cache, a gate) answers from it.
    ///
    /// # Errors
    /// [`InventoryError::Store`].
    async fn shortages(&self, lines: &[ReservationLine]) -> Result<Vec<Shortage>, InventoryError> {
        let mut shortages = Vec::new();
        for line in normalize_lines(lines)? {
            let available = match self.level(&line.sku).await {
                Ok(level) => level.on_hand,
                Err(InventoryError::UnknownSku(_)) => 0,
                Err(e) => return Err(e),
            };
            if available < line.quantity {
                shortages.push(Shortage {
                    sku: line.sku,
                    requested: line.quantity,
                    available,
                });
            }
        }
        Ok(shortages)
    }

    /// Takes every line for the order, all or nothing, held until `ttl` has passed.
    ///
    /// If the order already has a held, committed or returned reservation, returns it unchanged
    /// (no stock moves). If its reservation was released (expired, or payment failed), takes the
    /// stock again: this is how a payment that succeeds late gets its stock back.
    ///
    /// # Errors
    /// [`InventoryError::OutOfStock`] naming every short SKU (a SKU with no stock record is
    /// short with 0 available), [`InventoryError::EmptyReservation`],
    /// [`InventoryError::InvalidQuantity`], [`InventoryError::Store`]. Nothing is taken on error.
    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<Reservation, InventoryError>;

    /// Sells the held stock of the order (reserved to sold). Committing a committed
    /// reservation changes nothing.
    ///
    /// # Errors
    /// [`InventoryError::NoReservation`], [`InventoryError::Released`] (the stock went back
    /// on hand: reserve again first), [`InventoryError::Store`].
    async fn commit(&self, order: OrderId) -> Result<Reservation, InventoryError>;

    /// Puts the held stock of the order back on hand. Releasing a released (or absent)
    /// reservation changes nothing and returns `Ok(None)` for absent.
    ///
    /// # Errors
    /// [`InventoryError::Committed`] (sold stock comes back through
    /// [`InventoryStore::return_stock`]), [`InventoryError::Store`].
    async fn release(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError>;

    /// Puts the sold stock of a committed reservation back on hand (the order was cancelled).
    /// Returning a returned reservation changes nothing.
    ///
    /// # Errors
    /// [`InventoryError::NoReservation`], [`InventoryError::NotCommitted`] when it is held,
    /// [`InventoryError::Released`] when it was released, [`InventoryError::Store`].
    async fn return_stock(&self, order: OrderId) -> Result<Reservation, InventoryError>;

    /// The reservation of an order, or `Ok(None)`.
    ///
    /// # Errors
    /// [`InventoryError::Store`].
    async fn reservation(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError>;

    /// Releases up to `limit` held reservations whose expiry has passed (by the store's
    /// clock) and returns their orders.
    ///
    /// # Errors
    /// [`InventoryError::Store`].
    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError>;

    /// The ledger of a SKU, oldest first.
    ///
    /// # Errors
    /// [`InventoryError::Store`].
    async fn ledger(&self, sku: &Sku) -> Result<Vec<StockMovement>, InventoryError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sku: &str, quantity: u32) -> ReservationLine {
        ReservationLine {
            sku: Sku::new(sku).unwrap(),
            quantity,
        }
    }

    #[test]
    fn lines_are_summed_and_sorted() {
        let lines = normalize_lines(&[line("B", 1), line("A", 2), line("B", 3)]).unwrap();
        assert_eq!(lines, vec![line("A", 2), line("B", 4)]);
        assert!(matches!(
            normalize_lines(&[line("A", 0)]),
            Err(InventoryError::InvalidQuantity { .. })
        ));
        assert!(matches!(
            normalize_lines(&[line("A", MAX_QUANTITY), line("A", 1)]),
            Err(InventoryError::InvalidQuantity { .. })
        ));
        assert!(matches!(
            normalize_lines(&[]),
            Err(InventoryError::EmptyReservation)
        ));
    }

    #[test]
    fn ledger_replay_detects_a_lost_unit() {
        let sku = Sku::new("A").unwrap();
        let mv = |kind, quantity| StockMovement {
            sku: sku.clone(),
            kind,
            quantity,
            order: None,
            at: Utc::now(),
        };
        let ledger = vec![
            mv(MovementKind::Received, 5),
            mv(MovementKind::Reserved, 2),
            mv(MovementKind::Committed, 2),
        ];
        let level = StockLevel {
            on_hand: 3,
            reserved: 0,
            sold: 2,
        };
        assert!(level.conserved(&ledger));
        let wrong = StockLevel {
            on_hand: 4,
            ..level
        };
        assert!(!wrong.conserved(&ledger));
        assert!(!level.conserved(&[mv(MovementKind::Reserved, 1)]));
    }
}
