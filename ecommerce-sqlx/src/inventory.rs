//! Inventory on SQL: the conditional decrement, reservation rows, and the stock ledger.
//!
//! A reservation is one transaction: it claims the order's reservation row (so two calls for
//! one order serialize on it and the second finds the first's result), then takes each SKU, in
//! SKU order, with
//!
//! ```sql
//! UPDATE stock SET on_hand = on_hand - n, reserved = reserved + n
//!  WHERE sku = ? AND on_hand >= n
//! ```
//!
//! where zero rows affected means out of stock. Any short SKU rolls the whole transaction
//! back. Commit, release and return lock the reservation row, move the units, and change its
//! state, so each happens once. Every movement appends to `stock_ledger` in the same
//! transaction. Deadlocks and serialization failures are retried; the `CHECK (on_hand >= 0)`
//! constraints stand behind all of it. Expiry compares with the database's clock.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use ecommerce_core::error::{InventoryError, Shortage, StoreError};
use ecommerce_core::id::{OrderId, ReservationId, Sku};
use ecommerce_core::inventory::{
    InventoryStore, MAX_QUANTITY, MovementKind, Reservation, ReservationLine, ReservationState,
    StockLevel, StockMovement, normalize_lines,
};
use sqlx::{Any, Transaction};

use crate::db::{Db, Dialect, decode, encode, store_error};

/// Stock in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlInventory {
    db: Db,
}

impl SqlInventory {
    /// The inventory in this database (migrated with [`Db::migrate`]).
    pub fn new(db: Db) -> Self {
        SqlInventory { db }
    }
}

fn state_name(state: ReservationState) -> &'static str {
    match state {
        ReservationState::Held => "held",
        ReservationState::Committed => "committed",
        ReservationState::Released => "released",
        ReservationState::Returned => "returned",
    }
}

fn parse_state(s: &str) -> Result<ReservationState, StoreError> {
    Ok(match s {
        "held" => ReservationState::Held,
        "committed" => ReservationState::Committed,
        "released" => ReservationState::Released,
        "returned" => ReservationState::Returned,
        other => {
            return Err(StoreError::Corrupt {
                message: format!("reservation state `{other}`"),
            });
        }
    })
}

fn kind_name(kind: MovementKind) -> &'static str {
    match kind {
        MovementKind::Received => "received",
        MovementKind::Reserved => "reserved",
        MovementKind::Released => "released",
        MovementKind::Committed => "committed",
        MovementKind::Returned => "returned",
    }
}

fn parse_kind(s: &str) -> Result<MovementKind, StoreError> {
    Ok(match s {
        "received" => MovementKind::Received,
        "reserved" => MovementKind::Reserved,
        "released" => MovementKind::Released,
        "committed" => MovementKind::Committed,
        "returned" => MovementKind::Returned,
        other => {
            return Err(StoreError::Corrupt {
                message: format!("ledger movement `{other}`"),
            });
        }
    })
}

/// The statement that moves `n` units of a SKU between two columns, guarded so the source
/// cannot go below zero: zero rows affected means the units were not there.
fn movement_sql(kind: MovementKind) -> &'static str {
    match kind {
        MovementKind::Received => unreachable!("receipts are upserts"),
        MovementKind::Reserved => {
            "UPDATE stock SET on_hand = on_hand - $1, reserved = reserved + $2 WHERE sku = $3 AND on_hand >= $4"
        }
        MovementKind::Released => {
            "UPDATE stock SET reserved = reserved - $1, on_hand = on_hand + $2 WHERE sku = $3 AND reserved >= $4"
        }
        MovementKind::Committed => {
            "UPDATE stock SET reserved = reserved - $1, sold = sold + $2 WHERE sku = $3 AND reserved >= $4"
        }
        MovementKind::Returned => {
            "UPDATE stock SET sold = sold - $1, on_hand = on_hand + $2 WHERE sku = $3 AND sold >= $4"
        }
    }
}

/// A reservation row as stored.
type Row = (String, String, String, i64);

fn reservation(order: OrderId, row: &Row) -> Result<Reservation, StoreError> {
    let (id, state, lines, expires_at) = row;
    Ok(Reservation {
        id: id.parse().map_err(|_| StoreError::Corrupt {
            message: format!("reservation id `{id}`"),
        })?,
        order,
        lines: decode("reservation lines", lines)?,
        state: parse_state(state)?,
        expires_at: Utc
            .timestamp_millis_opt(*expires_at)
            .single()
            .unwrap_or_default(),
    })
}

/// What a reservation transaction ended with.
enum Taken {
    Done(Row),
    Short(Vec<Shortage>),
}

/// What commit, release and return do from each state.
#[derive(Debug, Clone, Copy)]
enum Op {
    Commit,
    Release,
    ReleaseIfExpired,
    Return,
}

enum Decision {
    Move(ReservationState, MovementKind),
    Keep,
    Refuse(InventoryError),
}

fn decide(op: Op, order: OrderId, state: ReservationState, expired: bool) -> Decision {
    use ReservationState::*;
    match (op, state) {
        (Op::Commit, Held) => Decision::Move(Committed, MovementKind::Committed),
        (Op::Commit, Committed | Returned) => Decision::Keep,
        (Op::Commit, Released) => Decision::Refuse(InventoryError::Released(order)),
        (Op::Release, Held) => Decision::Move(Released, MovementKind::Released),
        (Op::ReleaseIfExpired, Held) if expired => Decision::Move(Released, MovementKind::Released),
        (Op::ReleaseIfExpired, _) => Decision::Keep,
        (Op::Release, Released) => Decision::Keep,
        (Op::Release, Committed | Returned) => Decision::Refuse(InventoryError::Committed(order)),
        (Op::Return, Committed) => Decision::Move(Returned, MovementKind::Returned),
        (Op::Return, Returned) => Decision::Keep,
        (Op::Return, Held) => Decision::Refuse(InventoryError::NotCommitted(order)),
        (Op::Return, Released) => Decision::Refuse(InventoryError::Released(order)),
    }
}

impl SqlInventory {
    async fn move_units(
        &self,
        tx: &mut Transaction<'static, Any>,
        order: Option<OrderId>,
        lines: &[ReservationLine],
        kind: MovementKind,
    ) -> Result<Vec<Shortage>, sqlx::Error> {
        let db = &self.db;
        let mut shortages = Vec::new();
        for line in lines {
            let n = i64::from(line.quantity);
            let moved = sqlx::query(db.sql(movement_sql(kind)))
                .bind(n)
                .bind(n)
                .bind(line.sku.as_str())
                .bind(n)
                .execute(&mut **tx)
                .await?
                .rows_affected();
            if moved == 0 {
                let available: Option<(i64,)> =
                    sqlx::query_as(db.sql("SELECT on_hand FROM stock WHERE sku = $1"))
                        .bind(line.sku.as_str())
                        .fetch_optional(&mut **tx)
                        .await?;
                shortages.push(Shortage {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available: available.map_or(0, |(a,)| u32::try_from(a).unwrap_or(0)),
                });
                continue;
            }
            if shortages.is_empty() {
                self.ledger_entry(tx, &line.sku, kind, line.quantity, order)
                    .await?;
            }
        }
        Ok(shortages)
    }

    async fn ledger_entry(
        &self,
        tx: &mut Transaction<'static, Any>,
        sku: &Sku,
        kind: MovementKind,
        quantity: u32,
        order: Option<OrderId>,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(self.db.sql(
            "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(sku.as_str())
        .bind(kind_name(kind))
        .bind(i64::from(quantity))
        .bind(order.map(|o| o.to_string()))
        .bind(Utc::now().timestamp_millis())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    async fn locked_row(
        &self,
        tx: &mut Transaction<'static, Any>,
        order: OrderId,
    ) -> Result<Option<(Row, bool)>, sqlx::Error> {
        let sql = match self.db.dialect() {
            Dialect::Postgres => {
                "SELECT id, state, line_items, expires_at, CASE WHEN expires_at <= (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT THEN 1 ELSE 0 END FROM reservations WHERE order_id = $1 FOR UPDATE"
            }
            Dialect::MySql => {
                "SELECT id, state, line_items, expires_at, CASE WHEN expires_at <= CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) THEN 1 ELSE 0 END FROM reservations WHERE order_id = ? FOR UPDATE"
            }
            Dialect::Sqlite => {
                "SELECT id, state, line_items, expires_at, CASE WHEN expires_at <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) THEN 1 ELSE 0 END FROM reservations WHERE order_id = $1"
            }
        };
        let row: Option<(String, String, String, i64, i64)> = sqlx::query_as(sql)
            .bind(order.to_string())
            .fetch_optional(&mut **tx)
            .await?;
        Ok(row.map(|(id, state, lines, expires, expired)| {
            ((id, state, lines, expires), expired == 1)
        }))
    }

    /// Commit, release or return in one transaction.
    async fn transition(
        &self,
        order: OrderId,
        op: Op,
    ) -> Result<Option<Reservation>, InventoryError> {
        let db = &self.db;
        db.retry("changing a reservation", || async {
            let mut tx = db.begin_write().await?;
            let Some((row, expired)) = self.locked_row(&mut tx, order).await? else {
                tx.rollback().await?;
                return Ok(Ok(None));
            };
            let current = match reservation(order, &row) {
                Ok(r) => r,
                Err(e) => return Ok(Err(InventoryError::Store(e))),
            };
            match decide(op, order, current.state, expired) {
                Decision::Keep => {
                    tx.rollback().await?;
                    Ok(Ok(Some(current)))
                }
                Decision::Refuse(e) => {
                    tx.rollback().await?;
                    Ok(Err(e))
                }
                Decision::Move(to, kind) => {
                    let short = self
                        .move_units(&mut tx, Some(order), &current.lines, kind)
                        .await?;
                    if !short.is_empty() {
                        tx.rollback().await?;
                        return Ok(Err(InventoryError::Store(StoreError::Corrupt {
                            message: format!(
                                "stock of order {order} is not where its reservation says"
                            ),
                        })));
                    }
                    sqlx::query(db.sql("UPDATE reservations SET state = $1 WHERE order_id = $2"))
                        .bind(state_name(to))
                        .bind(order.to_string())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Ok(Ok(Some(Reservation {
                        state: to,
                        ..current
                    })))
                }
            }
        })
        .await?
    }
}

#[async_trait]
impl InventoryStore for SqlInventory {
    async fn receive(&self, sku: &Sku, quantity: u32) -> Result<StockLevel, InventoryError> {
        if quantity == 0 || quantity > MAX_QUANTITY {
            return Err(InventoryError::InvalidQuantity {
                sku: sku.clone(),
                quantity,
            });
        }
        let db = &self.db;
        let upsert = match db.dialect() {
            Dialect::MySql => {
                "INSERT INTO stock (sku, on_hand, reserved, sold) VALUES (?, ?, 0, 0) ON DUPLICATE KEY UPDATE on_hand = on_hand + VALUES(on_hand)"
            }
            Dialect::Postgres | Dialect::Sqlite => {
                "INSERT INTO stock (sku, on_hand, reserved, sold) VALUES ($1, $2, 0, 0) ON CONFLICT (sku) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand"
            }
        };
        let level = db
            .retry("receiving stock", || async {
                let mut tx = db.begin_write().await?;
                sqlx::query(upsert)
                    .bind(sku.as_str())
                    .bind(i64::from(quantity))
                    .execute(&mut *tx)
                    .await?;
                let (on_hand, reserved, sold): (i64, i64, i64) = sqlx::query_as(
                    db.sql("SELECT on_hand, reserved, sold FROM stock WHERE sku = $1"),
                )
                .bind(sku.as_str())
                .fetch_one(&mut *tx)
                .await?;
                if on_hand + reserved + sold > i64::from(u32::MAX) {
                    tx.rollback().await?;
                    return Ok(None);
                }
                self.ledger_entry(&mut tx, sku, MovementKind::Received, quantity, None)
                    .await?;
                tx.commit().await?;
                Ok(Some(level_of(on_hand, reserved, sold)))
            })
            .await?;
        level.ok_or_else(|| InventoryError::InvalidQuantity {
            sku: sku.clone(),
            quantity,
        })
    }

    async fn level(&self, sku: &Sku) -> Result<StockLevel, InventoryError> {
        let row: Option<(i64, i64, i64)> = sqlx::query_as(
            self.db
                .sql("SELECT on_hand, reserved, sold FROM stock WHERE sku = $1"),
        )
        .bind(sku.as_str())
        .fetch_optional(self.db.pool())
        .await
        .map_err(|e| store_error("reading stock", e))?;
        row.map(|(a, b, c)| level_of(a, b, c))
            .ok_or_else(|| InventoryError::UnknownSku(sku.clone()))
    }

    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<Reservation, InventoryError> {
        let lines = normalize_lines(lines)?;
        let line_json = encode(&lines);
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 4);
        let db = &self.db;
        let (claim, rehold, read) = match db.dialect() {
            Dialect::Postgres => (
                "INSERT INTO reservations (order_id, id, state, line_items, expires_at) VALUES ($1, $2, 'held', $3, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT + $4) ON CONFLICT (order_id) DO NOTHING",
                "UPDATE reservations SET state = 'held', line_items = $1, expires_at = (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT + $2 WHERE order_id = $3",
                "SELECT id, state, line_items, expires_at FROM reservations WHERE order_id = $1",
            ),
            Dialect::MySql => (
                "INSERT IGNORE INTO reservations (order_id, id, state, line_items, expires_at) VALUES (?, ?, 'held', ?, CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) + ?)",
                "UPDATE reservations SET state = 'held', line_items = ?, expires_at = CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) + ? WHERE order_id = ?",
                "SELECT id, state, line_items, expires_at FROM reservations WHERE order_id = ?",
            ),
            Dialect::Sqlite => (
                "INSERT INTO reservations (order_id, id, state, line_items, expires_at) VALUES ($1, $2, 'held', $3, CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + $4) ON CONFLICT (order_id) DO NOTHING",
                "UPDATE reservations SET state = 'held', line_items = $1, expires_at = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) + $2 WHERE order_id = $3",
                "SELECT id, state, line_items, expires_at FROM reservations WHERE order_id = $1",
            ),
        };
        let taken = db
            .retry("reserving stock", || async {
                let mut tx = db.begin_write().await?;
                let claimed = sqlx::query(claim)
                    .bind(order.to_string())
                    .bind(ReservationId::new().to_string())
                    .bind(&line_json)
                    .bind(ttl_ms)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
                if !claimed {
                    // The order has a reservation: wait for its writer, then keep it unless it
                    // was released, in which case take the stock again.
                    let (row, _) = self
                        .locked_row(&mut tx, order)
                        .await?
                        .ok_or(sqlx::Error::RowNotFound)?;
                    if row.1 != "released" {
                        tx.rollback().await?;
                        return Ok(Taken::Done(row));
                    }
                    sqlx::query(rehold)
                        .bind(&line_json)
                        .bind(ttl_ms)
                        .bind(order.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                let short = self
                    .move_units(&mut tx, Some(order), &lines, MovementKind::Reserved)
                    .await?;
                if !short.is_empty() {
                    tx.rollback().await?;
                    return Ok(Taken::Short(short));
                }
                let row: Row = sqlx::query_as(read)
                    .bind(order.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Taken::Done(row))
            })
            .await?;
        match taken {
            Taken::Done(row) => Ok(reservation(order, &row)?),
            Taken::Short(shortages) => Err(InventoryError::OutOfStock { shortages }),
        }
    }

    async fn commit(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.transition(order, Op::Commit)
            .await?
            .ok_or(InventoryError::NoReservation(order))
    }

    async fn release(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        self.transition(order, Op::Release).await
    }

    async fn return_stock(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.transition(order, Op::Return)
            .await?
            .ok_or(InventoryError::NoReservation(order))
    }

    async fn reservation(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        let row: Option<Row> =
            sqlx::query_as(self.db.sql(
                "SELECT id, state, line_items, expires_at FROM reservations WHERE order_id = $1",
            ))
            .bind(order.to_string())
            .fetch_optional(self.db.pool())
            .await
            .map_err(|e| store_error("reading a reservation", e))?;
        Ok(row.map(|r| reservation(order, &r)).transpose()?)
    }

    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError> {
        let sql = match self.db.dialect() {
            Dialect::Postgres => {
                "SELECT order_id FROM reservations WHERE state = 'held' AND expires_at <= (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT ORDER BY expires_at LIMIT $1"
            }
            Dialect::MySql => {
                "SELECT order_id FROM reservations WHERE state = 'held' AND expires_at <= CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED) ORDER BY expires_at LIMIT ?"
            }
            Dialect::Sqlite => {
                "SELECT order_id FROM reservations WHERE state = 'held' AND expires_at <= CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) ORDER BY expires_at LIMIT $1"
            }
        };
        let rows: Vec<(String,)> = sqlx::query_as(sql)
            .bind(limit as i64)
            .fetch_all(self.db.pool())
            .await
            .map_err(|e| store_error("finding expired reservations", e))?;
        let mut released = Vec::new();
        for (order,) in rows {
            let order: OrderId = order.parse().map_err(|_| StoreError::Corrupt {
                message: format!("order id `{order}`"),
            })?;
            // Released only if still held and expired once locked: a concurrent re-reserve
            // of a late payment keeps its stock.
            if let Some(r) = self.transition(order, Op::ReleaseIfExpired).await? {
                if r.state == ReservationState::Released {
                    released.push(order);
                }
            }
        }
        Ok(released)
    }

    async fn ledger(&self, sku: &Sku) -> Result<Vec<StockMovement>, InventoryError> {
        let rows: Vec<(String, i64, Option<String>, i64)> = sqlx::query_as(self.db.sql(
            "SELECT kind, quantity, order_id, at FROM stock_ledger WHERE sku = $1 ORDER BY seq",
        ))
        .bind(sku.as_str())
        .fetch_all(self.db.pool())
        .await
        .map_err(|e| store_error("reading the ledger", e))?;
        rows.into_iter()
            .map(|(kind, quantity, order, at)| {
                Ok(StockMovement {
                    sku: sku.clone(),
                    kind: parse_kind(&kind)?,
                    quantity: u32::try_from(quantity).map_err(|_| StoreError::Corrupt {
                        message: format!("ledger quantity {quantity}"),
                    })?,
                    order: order.and_then(|o| o.parse().ok()),
                    at: Utc.timestamp_millis_opt(at).single().unwrap_or_default(),
                })
            })
            .collect::<Result<_, StoreError>>()
            .map_err(InventoryError::Store)
    }
}

fn level_of(on_hand: i64, reserved: i64, sold: i64) -> StockLevel {
    let clamp = |v: i64| u32::try_from(v).unwrap_or(u32::MAX);
    StockLevel {
        on_hand: clamp(on_hand),
        reserved: clamp(reserved),
        sold: clamp(sold),
    }
}
