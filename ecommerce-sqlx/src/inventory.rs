//! Inventory on SQL: the conditional decrement, reservation rows, hot-SKU buckets, and the
//! stock ledger.
//!
//! A reservation first reads the order's reservation row (by its primary key, no lock): a
//! retry of an order that has one gets it back without taking anything, so it is never
//! refused for want of the stock it holds itself. Otherwise it is one transaction that takes
//! each SKU, in SKU order, with
//!
//! ```sql
//! UPDATE stock SET on_hand = on_hand - n, taken = taken + n
//!  WHERE sku = ? AND bucket = ? AND on_hand >= n
//! ```
//!
//! where zero rows affected means the bucket cannot cover it (`taken` counts the units out of
//! `on_hand`, reserved or sold: a sale adds to the bucket's row in `stock_sold` and leaves the
//! stock row alone, so a hot SKU's buyers queue on its stock row for their takes only, and
//! the units reserved are `taken` less `sold`). Any short SKU rolls the whole
//! transaction back. The transaction starts by inserting the order's reservation row; its
//! primary key makes a concurrent second reservation of the same order wait, find the row,
//! roll back and return the first result (and one that finds the stock gone reads the row
//! again before saying out of stock: the concurrent first may have taken it). Every
//! transaction that holds both locks an order's reservation row before any stock row, so the
//! two kinds of lock never wait for each other in a cycle, and the stock statements come last:
//! a hot SKU's row is held only from its statement to the commit. The ledger entries of a
//! reservation come after (or, on PostgreSQL, in the same statement as) its takes, those of a
//! release or a return before its moves (or in the same statement): entries are numbered as
//! they are written, and replayed in that order a take must come after the release it waited
//! for, which it does, as it is numbered only once it holds the row the release committed.
//! A released reservation takes its stock again under the row's lock. Commit, release and
//! return lock the reservation row, append to the ledger, move the units in the buckets it
//! recorded and change its state, so each happens once (the ledger comes before the stock: a
//! hot SKU's row, the lock its buyers queue on, is held from its statement to the commit; on
//! PostgreSQL the ledger, the state and the first bucket's move are one statement). Every
//! movement appends to `stock_ledger` in the same transaction; deadlocks and serialization
//! failures are retried; the `CHECK (on_hand >= 0)` constraints stand behind all of it.
//! Expiry compares with the database's clock.
//!
//! # Hot SKUs
//!
//! A SKU's stock is one row per bucket. Ordinary SKUs have one bucket. For a flash sale,
//! [`SqlInventory::set_buckets`] spreads a SKU's units over several rows: buyers start at the
//! buckets in turn, so concurrent buyers lock different rows instead of queueing on one.
//! When no single bucket can cover a quantity, the reservation locks all of the SKU's buckets
//! in order and takes across them, so a bucketed SKU sells exactly the units it has, like any
//! other. The level of a SKU is the sum over its buckets.
//!
//! Reservations of different orders never deadlock, on bucketed stock too. A conditional
//! `UPDATE` that finds too few units may keep its row lock (InnoDB always does under
//! `REPEATABLE READ`; PostgreSQL does when the row changed under it), so a reservation only
//! ever waits for a bucket lock when every bucket lock it holds comes before that bucket in
//! (SKU, bucket) order. Per SKU, in SKU order:
//!
//! 1. wait for one bucket (the transaction's first lock on the SKU) and take from it;
//! 2. failing that, take from a later bucket that covers the quantity and that nobody holds,
//!    found with `FOR UPDATE SKIP LOCKED` (so bucketed SKUs need PostgreSQL 9.5+, MySQL 8.0+
//!    or MariaDB 10.6+). This does not wait, but may lock rows it passes over, and MariaDB
//!    queues a request for a locked row before skipping it (its deadlock detector sees that
//!    request): looking only after the bucket of step 1, in bucket order, keeps even those
//!    requests in order. On MySQL and MariaDB the later buckets are listed by key (`bucket IN
//!    (...)`), not scanned as a range: under `REPEATABLE READ` a range scan also locks the row
//!    past its end, and with `SKIP LOCKED` goes on past locked ones, into the next SKU;
//! 3. failing that, read the buckets without locking: fewer units than the quantity is out of
//!    stock. Otherwise the units are there but held by transactions in flight, or spread over
//!    several buckets: waiting for them now could close a cycle, so the transaction rolls back
//!    (releasing every lock) and runs again, first waiting for a bucket the read showed
//!    covering the quantity, and if that fails too, locking all of the SKU's buckets in order
//!    before anything else on the SKU. A transaction runs again at most twice per SKU.
//!
//! Single-bucket SKUs skip step 2: the one row step 1 may hold is bucket 0, first in order, so
//! after the read they lock all buckets in place (more than one only when another process
//! spread the SKU). SQLite has a single writer and never waits for a row lock, so it never
//! runs a transaction again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use ecommerce_core::error::{InventoryError, Shortage, StoreError};
use ecommerce_core::id::{OrderId, ReservationId, Sku};
use ecommerce_core::inventory::{
    InventoryStore, MAX_QUANTITY, MovementKind, Reservation, ReservationLine, ReservationOp,
    ReservationState, StockLevel, StockMovement, normalize_lines,
};
use serde::{Deserialize, Serialize};
use sqlx::AssertSqlSafe;

use crate::db::{Db, Dialect, Tx, decode, encode, native, store_error};
use crate::statement::{Sql, sql};
use crate::types::{Json, Time, Uuid};

/// Most buckets of one SKU.
pub const MAX_BUCKETS: u32 = 64;

/// Stock in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlInventory {
    db: Db,
    /// Bucket counts seen so far. Only a hint for where to start: correctness never depends
    /// on it (a stale count ends in the lock-all-buckets path).
    buckets: Arc<RwLock<HashMap<Sku, u32>>>,
    default_buckets: u32,
    /// The bucket the next reservation of a bucketed SKU waits for first, modulo the SKU's
    /// bucket count: buyers in turn spread evenly over the rows (a random pick piles some
    /// buyers on one row while another sits idle).
    next_start: Arc<AtomicU32>,
}

/// Units taken from one bucket, recorded on the reservation so they go back to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Take {
    sku: Sku,
    bucket: i64,
    quantity: u32,
}

impl Take {
    /// A line's whole quantity, from one bucket.
    fn whole(line: &ReservationLine, bucket: i64) -> Self {
        Take {
            sku: line.sku.clone(),
            bucket,
            quantity: line.quantity,
        }
    }
}

/// How one attempt of a reservation transaction takes a SKU, when not the usual way (the next
/// bucket in turn, then a free one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Approach {
    /// Wait for this bucket first (the attempt's first lock on the SKU, so the wait is safe),
    /// then look for a free one as usual.
    From(i64),
    /// Lock all of the SKU's buckets in bucket order before anything else on the SKU, then
    /// take from them.
    LockAll,
}

/// The SKUs a reservation attempt takes in another way, learned from earlier attempts.
pub(crate) type Approaches = HashMap<Sku, Approach>;

/// What one line came to in a reservation attempt.
enum Taking {
    Taken(Vec<Take>),
    /// Out of stock: the units available.
    Short(u32),
    /// The units may be there, but finding out would mean waiting for a bucket while holding
    /// another of the SKU that comes after it: roll back and run the attempt again, taking
    /// the SKU this way.
    Again(Approach),
}

/// Why a reservation attempt took nothing.
enum Untaken {
    /// Every short SKU.
    Short(Vec<Shortage>),
    /// Run the attempt again, taking this SKU this way.
    Again(Sku, Approach),
}

impl SqlInventory {
    /// The inventory in this database (migrated with [`Db::migrate`]); new SKUs get one bucket.
    pub fn new(db: Db) -> Self {
        SqlInventory {
            db,
            buckets: Arc::default(),
            default_buckets: 1,
            next_start: Arc::new(AtomicU32::new(uuid::Uuid::new_v4().as_u128() as u32)),
        }
    }

    /// New SKUs get `buckets` buckets (1 to [`MAX_BUCKETS`]): for a shop where every SKU sells
    /// in flash sales, or to run the conformance suite on bucketed stock.
    pub fn with_default_buckets(mut self, buckets: u32) -> Self {
        self.default_buckets = buckets.clamp(1, MAX_BUCKETS);
        self
    }

    /// Spreads a SKU's units on hand evenly over `buckets` rows (1 to [`MAX_BUCKETS`]); the
    /// count only grows (a smaller count keeps the current one). Reserved and sold units stay
    /// where they are, tied to their reservations. Creates the SKU if needed.
    ///
    /// # Errors
    /// [`InventoryError::Store`].
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), sku = %sku, buckets = buckets))]
    pub async fn set_buckets(&self, sku: &Sku, buckets: u32) -> Result<StockLevel, InventoryError> {
        let wanted = i64::from(buckets.clamp(1, MAX_BUCKETS));
        let db = &self.db;
        let level = db
            .retry("spreading stock over buckets", || async {
                let mut tx = db.begin_write().await?;
                let rows = self.buckets(&mut tx, sku, true).await?;
                let count = (rows.len() as i64).max(wanted);
                let on_hand: i64 = rows.iter().map(|(_, on_hand)| on_hand).sum();
                for bucket in 0..count {
                    let share = on_hand / count + i64::from(bucket < on_hand % count);
                    self.upsert_bucket(&mut tx, sku, bucket, share, true)
                        .await?;
                }
                let level = self.level_in(&mut tx, sku).await?;
                tx.commit().await?;
                Ok((level, count))
            })
            .await?;
        self.remember(sku, u32::try_from(level.1).unwrap_or(1));
        Ok(level.0.unwrap_or_default())
    }

    /// The database.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    fn remember(&self, sku: &Sku, buckets: u32) {
        self.buckets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sku.clone(), buckets);
    }

    fn bucket_hint(&self, sku: &Sku) -> u32 {
        self.buckets
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(sku)
            .copied()
            .unwrap_or(1)
    }

    /// Sets (`replace`) or adds to a bucket's units on hand, creating the bucket.
    async fn upsert_bucket(
        &self,
        tx: &mut Tx,
        sku: &Sku,
        bucket: i64,
        on_hand: i64,
        replace: bool,
    ) -> Result<(), sqlx::Error> {
        let upsert = if replace {
            sql!(
                "INSERT INTO stock (sku, bucket, on_hand, taken) VALUES ($1, $2, $3, 0) ON CONFLICT (sku, bucket) DO UPDATE SET on_hand = excluded.on_hand",
                mysql: "INSERT INTO stock (sku, bucket, on_hand, taken) VALUES (?, ?, ?, 0) ON DUPLICATE KEY UPDATE on_hand = VALUES(on_hand)",
            )
        } else {
            sql!(
                "INSERT INTO stock (sku, bucket, on_hand, taken) VALUES ($1, $2, $3, 0) ON CONFLICT (sku, bucket) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand",
                mysql: "INSERT INTO stock (sku, bucket, on_hand, taken) VALUES (?, ?, ?, 0) ON DUPLICATE KEY UPDATE on_hand = on_hand + VALUES(on_hand)",
            )
        };
        native!(tx(tx), |c, sql| sqlx::query(sql(upsert))
            .bind(sku.as_str())
            .bind(bucket)
            .bind(on_hand)
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(())
    }

    /// Every bucket of a SKU, in bucket order: `(bucket, on_hand)`; locked when `lock`.
    async fn buckets(
        &self,
        tx: &mut Tx,
        sku: &Sku,
        lock: bool,
    ) -> Result<Vec<(i64, i64)>, sqlx::Error> {
        let buckets = if lock {
            sql!("SELECT bucket, on_hand FROM stock WHERE sku = $1 ORDER BY bucket FOR UPDATE")
        } else {
            sql!("SELECT bucket, on_hand FROM stock WHERE sku = $1 ORDER BY bucket")
        };
        native!(tx(tx), |c, sql| sqlx::query_as(sql(buckets))
            .bind(sku.as_str())
            .fetch_all(c)
            .await)
    }

    async fn level_in(&self, tx: &mut Tx, sku: &Sku) -> Result<Option<StockLevel>, sqlx::Error> {
        let row: (Option<i64>, Option<i64>, Option<i64>) =
            native!(tx(tx), |c, sql| sqlx::query_as(sql(LEVEL))
                .bind(sku.as_str())
                .bind(sku.as_str())
                .fetch_one(c)
                .await)?;
        Ok(level_of(row))
    }

    /// Moves units of one bucket: taken from or given back to `on_hand`, sold (added to the
    /// bucket's `stock_sold` row, the stock row left alone) or returned (from `stock_sold`
    /// back to `on_hand`, the sold row first); `false` when the source did not have them.
    async fn move_in_bucket(
        &self,
        tx: &mut Tx,
        kind: MovementKind,
        sku: &Sku,
        bucket: i64,
        n: u32,
    ) -> Result<bool, sqlx::Error> {
        let n = i64::from(n);
        let unsold = match kind {
            MovementKind::Committed => {
                native!(tx(tx), |c, sql| sqlx::query(sql(SELL))
                    .bind(sku.as_str())
                    .bind(bucket)
                    .bind(n)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected()))?;
                return Ok(true);
            }
            MovementKind::Returned => native!(tx(tx), |c, sql| {
                sqlx::query(sql(UNSELL))
                    .bind(n)
                    .bind(sku.as_str())
                    .bind(bucket)
                    .bind(n)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?,
            _ => 1,
        };
        Ok(unsold == 1
            && native!(tx(tx), |c, sql| sqlx::query(sql(movement_sql(kind)))
                .bind(n)
                .bind(n)
                .bind(sku.as_str())
                .bind(bucket)
                .bind(n)
                .execute(c)
                .await
                .map(|done| done.rows_affected()))?
                == 1)
    }

    /// Takes `line.quantity` units of a SKU (see the module documentation for the steps and
    /// why they never deadlock): from one bucket if one covers it, else across all buckets
    /// under lock; or says the SKU is short, or that the attempt must run again.
    async fn take(
        &self,
        tx: &mut Tx,
        line: &ReservationLine,
        approach: Option<Approach>,
    ) -> Result<Taking, sqlx::Error> {
        let hint = self.bucket_hint(&line.sku);
        let start = match approach {
            Some(Approach::LockAll) => return self.take_across(tx, line).await,
            Some(Approach::From(bucket)) => bucket,
            None => i64::from(self.next_start.fetch_add(1, Ordering::Relaxed) % hint),
        };
        // 1. The attempt's first lock on the SKU: waiting for it cannot close a cycle.
        if self
            .move_in_bucket(tx, MovementKind::Reserved, &line.sku, start, line.quantity)
            .await?
        {
            return Ok(Taking::Taken(vec![Take::whole(line, start)]));
        }
        self.take_past(tx, line, start, approach).await
    }

    /// Steps 2 and 3 of [`take`](Self::take), after the attempt's first `UPDATE` on bucket
    /// `start` found too few units.
    async fn take_past(
        &self,
        tx: &mut Tx,
        line: &ReservationLine,
        start: i64,
        approach: Option<Approach>,
    ) -> Result<Taking, sqlx::Error> {
        let (sku, n) = (&line.sku, line.quantity);
        let one = |bucket: i64| Taking::Taken(vec![Take::whole(line, bucket)]);
        let hint = self.bucket_hint(sku);
        // The failed UPDATE may still lock `start`: from here on, only a bucket after every
        // one held may be waited for. Locking all buckets in order is safe while the attempt
        // holds at most bucket 0.
        let mut first_bucket_only = start == 0;
        let dialect = self.db.dialect();
        if start + 1 < i64::from(hint) {
            // 2. A later bucket that covers the quantity and that nobody holds, without
            // waiting.
            let free: Option<(i64,)> = match dialect {
                // Each later bucket by its key: a range scan under REPEATABLE READ also locks
                // the first row past its end, and with SKIP LOCKED skips on past locked ones,
                // into the next SKU's buckets.
                Dialect::MySql => {
                    let later = (start + 1)..i64::from(hint);
                    let sql = format!(
                        "SELECT bucket FROM stock WHERE sku = ? AND on_hand >= ? AND bucket IN ({}) ORDER BY bucket LIMIT 1 FOR UPDATE SKIP LOCKED",
                        dialect.placeholders(3, (i64::from(hint) - start - 1) as usize)
                    );
                    native!(tx(tx), |c, _sql| {
                        let mut query = sqlx::query_as(AssertSqlSafe(sql))
                            .bind(sku.as_str())
                            .bind(i64::from(n));
                        for bucket in later {
                            query = query.bind(bucket);
                        }
                        query.fetch_optional(c).await
                    })?
                }
                Dialect::Postgres | Dialect::Sqlite => {
                    native!(tx(tx), |c, sql| sqlx::query_as(sql(FREE_BUCKET))
                        .bind(sku.as_str())
                        .bind(start)
                        .bind(i64::from(n))
                        .fetch_optional(c)
                        .await)?
                }
            };
            if let Some((bucket,)) = free {
                if self
                    .move_in_bucket(tx, MovementKind::Reserved, sku, bucket, n)
                    .await?
                {
                    return Ok(one(bucket));
                }
            }
            // The search may lock rows it passed over (InnoDB locks every row it reads under
            // REPEATABLE READ; PostgreSQL keeps the lock of a row that changed under it).
            first_bucket_only = false;
        }
        // 3. A plain read (no lock, no wait) says whether the SKU is short. A sold-out SKU
        // (every buyer after the last unit, in a flash sale) ends here.
        let rows = self.buckets(tx, sku, false).await?;
        if !rows.is_empty() && rows.len() as u32 != hint {
            self.remember(sku, rows.len() as u32);
        }
        let available: i64 = rows.iter().map(|(_, on_hand)| on_hand).sum();
        if available < i64::from(n) {
            return Ok(Taking::Short(u32::try_from(available).unwrap_or(0)));
        }
        if first_bucket_only || dialect == Dialect::Sqlite {
            return self.take_across(tx, line).await;
        }
        // The units are there but held by transactions in flight, or spread over buckets.
        // Waiting for them now could close a cycle: run again, waiting first for a bucket that
        // covers the quantity (the next in turn of those), else locking them all.
        let covering: Vec<i64> = rows
            .iter()
            .filter(|(_, on_hand)| *on_hand >= i64::from(n))
            .map(|(bucket, _)| *bucket)
            .collect();
        Ok(Taking::Again(match approach {
            None if !covering.is_empty() => {
                let turn = self.next_start.fetch_add(1, Ordering::Relaxed) as usize;
                Approach::From(covering[turn % covering.len()])
            }
            _ => Approach::LockAll,
        }))
    }

    /// Locks all of a SKU's buckets in bucket order and takes the quantity from the first that
    /// covers it, else across them.
    async fn take_across(
        &self,
        tx: &mut Tx,
        line: &ReservationLine,
    ) -> Result<Taking, sqlx::Error> {
        let rows = self.buckets(tx, &line.sku, true).await?;
        if !rows.is_empty() && rows.len() as u32 != self.bucket_hint(&line.sku) {
            self.remember(&line.sku, rows.len() as u32);
        }
        let available: i64 = rows.iter().map(|(_, on_hand)| on_hand).sum();
        if available < i64::from(line.quantity) {
            return Ok(Taking::Short(u32::try_from(available).unwrap_or(u32::MAX)));
        }
        let covering = rows
            .iter()
            .position(|(_, on_hand)| *on_hand >= i64::from(line.quantity));
        let rows = match covering {
            Some(i) => &rows[i..=i],
            None => &rows[..],
        };
        let mut left = line.quantity;
        let mut takes = Vec::new();
        for &(bucket, on_hand) in rows {
            if left == 0 {
                break;
            }
            let n = left.min(u32::try_from(on_hand).unwrap_or(u32::MAX));
            if n == 0 {
                continue;
            }
            if !self
                .move_in_bucket(tx, MovementKind::Reserved, &line.sku, bucket, n)
                .await?
            {
                return Err(sqlx::Error::Protocol(format!(
                    "bucket {bucket} of {} changed under its lock",
                    line.sku
                )));
            }
            takes.push(Take {
                sku: line.sku.clone(),
                bucket,
                quantity: n,
            });
            left -= n;
        }
        Ok(Taking::Taken(takes))
    }

    async fn ledger_entry(
        &self,
        tx: &mut Tx,
        sku: &Sku,
        kind: MovementKind,
        quantity: u32,
        order: Option<OrderId>,
    ) -> Result<(), sqlx::Error> {
        let statement = sql!(
            "INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) VALUES ($1, $2, $3, $4, $5)"
        );
        native!(tx(tx), |c, sql| {
            sqlx::query(sql(statement))
                .bind(sku.as_str())
                .bind(kind.as_str())
                .bind(i64::from(quantity))
                .bind(order.map(Uuid::from))
                .bind(Time::now())
                .execute(c)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Takes every line (SKU order) and records the ledger; `Err` names every short SKU, or
    /// a SKU to take another way in a new attempt; the caller rolls back.
    ///
    /// The ledger comes after the takes: an entry is numbered when it is written, and one
    /// that takes units must be numbered after the entries that gave them (a release this
    /// take waited for), or replaying the ledger in order would go below zero.
    ///
    /// On PostgreSQL, a SKU of one bucket taken the usual way is taken and logged in one
    /// statement (the ledger's insert reads the `UPDATE`'s result), so a hot SKU's row is held
    /// only from that statement to the commit.
    ///
    /// `first_tried`: the first line's take from bucket 0 with its ledger entry was already
    /// sent (on PostgreSQL, in the statement that inserted the reservation row), and whether
    /// it took the units.
    async fn take_all(
        &self,
        tx: &mut Tx,
        order: OrderId,
        lines: &[ReservationLine],
        approaches: &Approaches,
        first_tried: Option<bool>,
    ) -> Result<Result<Vec<Take>, Untaken>, sqlx::Error> {
        let mut takes = Vec::new();
        let mut shortages = Vec::new();
        let mut logged = vec![false; lines.len()];
        for (i, line) in lines.iter().enumerate() {
            let approach = approaches.get(&line.sku).copied();
            let tried = if i == 0 { first_tried } else { None };
            let taking = if tried.is_some()
                || self.db.dialect() == Dialect::Postgres
                    && shortages.is_empty()
                    && approach.is_none()
                    && self.bucket_hint(&line.sku) == 1
            {
                let took = match tried {
                    Some(took) => took,
                    None => self.take_logged(tx, order, line).await?,
                };
                if took {
                    logged[i] = true;
                    takes.push(Take::whole(line, 0));
                    continue;
                }
                // That was step 1 of `take` on bucket 0.
                self.take_past(tx, line, 0, None).await?
            } else {
                self.take(tx, line, approach).await?
            };
            match taking {
                Taking::Taken(t) => takes.extend(t),
                Taking::Short(available) => shortages.push(Shortage {
                    sku: line.sku.clone(),
                    requested: line.quantity,
                    available,
                }),
                Taking::Again(approach) if shortages.is_empty() => {
                    return Ok(Err(Untaken::Again(line.sku.clone(), approach)));
                }
                // Short of an earlier SKU already: the reservation fails whatever this one
                // has, and a read showed it enough units.
                Taking::Again(_) => {}
            }
        }
        if !shortages.is_empty() {
            return Ok(Err(Untaken::Short(shortages)));
        }
        for (line, _) in lines.iter().zip(logged).filter(|(_, logged)| !logged) {
            self.ledger_entry(
                tx,
                &line.sku,
                MovementKind::Reserved,
                line.quantity,
                Some(order),
            )
            .await?;
        }
        Ok(Ok(takes))
    }

    /// PostgreSQL: takes `line.quantity` units from bucket 0 and appends the ledger entry in
    /// one statement; whether the bucket had them (if not, nothing changed).
    async fn take_logged(
        &self,
        tx: &mut Tx,
        order: OrderId,
        line: &ReservationLine,
    ) -> Result<bool, sqlx::Error> {
        let n = i64::from(line.quantity);
        Ok(native!(tx(tx), |c, sql| {
            sqlx::query(
            "WITH took AS (UPDATE stock SET on_hand = on_hand - $1, taken = taken + $1 WHERE sku = $2 AND bucket = 0 AND on_hand >= $1 RETURNING sku) INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) SELECT sku, 'reserved', $1, $3, $4 FROM took",
        )
        .bind(n)
        .bind(line.sku.as_str())
        .bind(Uuid::from(order))
        .bind(Time::now())
        .execute(c)
        .await
        .map(|done| done.rows_affected())
        })? == 1)
    }

    /// Runs a reservation transaction (retrying conflicts) until it ends without asking to take
    /// a SKU another way; each SKU is taken another way at most twice (from a covering bucket,
    /// then under the lock of all buckets), so this ends.
    pub(crate) async fn attempts<T, F, Fut>(
        &self,
        what: &'static str,
        mut body: F,
    ) -> Result<T, StoreError>
    where
        T: Attempt,
        F: FnMut(Approaches) -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut approaches = Approaches::new();
        loop {
            let attempt = self.db.retry(what, || body(approaches.clone())).await?;
            match attempt.again() {
                Some((sku, approach)) => {
                    approaches.insert(sku, approach);
                }
                None => return Ok(attempt),
            }
        }
    }

    /// Takes the stock of an order that has no reservation and inserts its reservation row,
    /// in the caller's transaction, which it neither commits nor rolls back: commit on
    /// [`Taken::Done`], roll back on anything else ([`Taken::Exists`]: a concurrent
    /// reservation of the order inserted the row first).
    pub(crate) async fn take_new_in(
        &self,
        tx: &mut Tx,
        order: OrderId,
        hold: &Hold,
        approaches: &Approaches,
    ) -> Result<Taken, sqlx::Error> {
        // The reservation row first: every transaction that holds an order's reservation row
        // and a stock row locked the reservation row first (see `transition_in`), so neither
        // lock waits for the other in a cycle, and a second reservation of the order finds the
        // row before it takes anything. When every SKU has one bucket and is taken the usual
        // way the row says at once where the units come from; otherwise (or when another
        // process spread a SKU) it is corrected once the takes are known.
        let planned: Vec<Take> =
            if approaches.is_empty() && hold.lines.iter().all(|l| self.bucket_hint(&l.sku) == 1) {
                hold.lines.iter().map(|l| Take::whole(l, 0)).collect()
            } else {
                Vec::new()
            };
        let planned_json = encode(&planned);
        let (mut row, first_tried) = match hold.lines.first() {
            Some(first) if !planned.is_empty() && self.db.dialect() == Dialect::Postgres => {
                match self
                    .insert_row_taking(tx, order, hold, &planned_json, first)
                    .await?
                {
                    Some((row, took)) => (row, Some(took)),
                    None => return Ok(Taken::Exists),
                }
            }
            _ => match self.insert_row(tx, order, hold, &planned_json).await? {
                Some(row) => (row, None),
                None => return Ok(Taken::Exists),
            },
        };
        let takes = match self
            .take_all(tx, order, &hold.lines, approaches, first_tried)
            .await?
        {
            Ok(takes) => takes,
            Err(untaken) => return Ok(untaken.into()),
        };
        if takes != planned {
            let takes_json = encode(&takes);
            let statement = sql!("UPDATE reservations SET takes = $1 WHERE order_id = $2");
            native!(tx(tx), |c, sql| sqlx::query(sql(statement))
                .bind(Json(&takes_json))
                .bind(Uuid::from(order))
                .execute(c)
                .await
                .map(|done| done.rows_affected()))?;
            row.3 = Json(takes_json);
        }
        Ok(Taken::Done(row))
    }

    /// PostgreSQL: inserts an order's reservation row holding `takes_json` and, only if the
    /// row is new, takes `first`'s units from bucket 0 with their ledger entry, in one
    /// statement (the row is written before the stock row is locked, as everywhere). The row
    /// and whether the units were there (if not, the stock is unchanged); `None` when the
    /// order has a reservation row already (nothing written).
    async fn insert_row_taking(
        &self,
        tx: &mut Tx,
        order: OrderId,
        hold: &Hold,
        takes_json: &str,
        first: &ReservationLine,
    ) -> Result<Option<(Row, bool)>, sqlx::Error> {
        let row: Option<Flagged> =
            native!(tx(tx), |c, sql| sqlx::query_as(INSERT_RESERVATION_TAKING)
                .bind(Uuid::from(order))
                .bind(Uuid::from(ReservationId::new()))
                .bind(Json(&hold.line_json))
                .bind(Json(takes_json))
                .bind(hold.ttl_us)
                .bind(i64::from(first.quantity))
                .bind(first.sku.as_str())
                .bind(Time::now())
                .fetch_optional(c)
                .await)?;
        Ok(row.map(|(id, state, lines, takes, expires, took)| {
            ((id, state, lines, takes, expires), took == 1)
        }))
    }

    /// Inserts an order's reservation row holding `takes_json`; `None` when the order has one.
    async fn insert_row(
        &self,
        tx: &mut Tx,
        order: OrderId,
        hold: &Hold,
        takes_json: &str,
    ) -> Result<Option<Row>, sqlx::Error> {
        let insert = INSERT_RESERVATION;
        let id = Uuid::from(ReservationId::new());
        // The row comes back from the insert (none when ignored), except on MySQL.
        let returning = match self.db.dialect() {
            Dialect::MySql if self.db.returning() => Some(MARIADB_INSERT_RESERVATION),
            Dialect::MySql => None,
            Dialect::Postgres | Dialect::Sqlite => Some(insert),
        };
        let row: Option<Row> = if let Some(insert) = returning {
            native!(tx(tx), |c, sql| sqlx::query_as(sql(insert))
                .bind(Uuid::from(order))
                .bind(id)
                .bind(Json(&hold.line_json))
                .bind(Json(takes_json))
                .bind(hold.ttl_us)
                .fetch_optional(c)
                .await)?
        } else {
            // No RETURNING: the affected row count says whether the row is ours.
            let inserted = native!(tx(tx), |c, sql| sqlx::query(sql(insert))
                .bind(Uuid::from(order))
                .bind(id)
                .bind(Json(&hold.line_json))
                .bind(Json(takes_json))
                .bind(hold.ttl_us)
                .execute(c)
                .await
                .map(|done| done.rows_affected()))?
                == 1;
            if inserted {
                Some(native!(tx(tx), |c, sql| sqlx::query_as(sql(
                    READ_RESERVATION
                ))
                .bind(Uuid::from(order))
                .fetch_one(c)
                .await)?)
            } else {
                None
            }
        };
        Ok(row)
    }

    /// The reservation row of an order, by a plain read (no transaction, no lock).
    async fn stored_row(&self, order: OrderId) -> Result<Option<Row>, InventoryError> {
        Ok(native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
            READ_RESERVATION
        ))
        .bind(Uuid::from(order))
        .fetch_optional(c)
        .await)
        .map_err(|e| store_error("reading a reservation", e))?)
    }

    async fn locked_row(
        &self,
        tx: &mut Tx,
        order: OrderId,
    ) -> Result<Option<(Row, bool)>, sqlx::Error> {
        let statement = sql!(
            postgres: "SELECT id, state, line_items, takes, expires_at, CASE WHEN expires_at <= clock_timestamp() THEN 1 ELSE 0 END::BIGINT FROM reservations WHERE order_id = $1 FOR UPDATE",
            mysql: "SELECT id, state, line_items, takes, expires_at, CASE WHEN expires_at <= UTC_TIMESTAMP(6) THEN 1 ELSE 0 END FROM reservations WHERE order_id = ? FOR UPDATE",
            sqlite: "SELECT id, state, line_items, takes, expires_at, CASE WHEN expires_at <= strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z' THEN 1 ELSE 0 END FROM reservations WHERE order_id = $1",
        );
        let row: Option<Flagged> = native!(tx(tx), |c, sql| sqlx::query_as(sql(statement))
            .bind(Uuid::from(order))
            .fetch_optional(c)
            .await)?;
        Ok(row.map(|(id, state, lines, takes, expires, expired)| {
            ((id, state, lines, takes, expires), expired == 1)
        }))
    }

    /// Commit, release or return in one transaction.
    async fn transition(
        &self,
        order: OrderId,
        op: ReservationOp,
    ) -> Result<Option<Reservation>, InventoryError> {
        let db = &self.db;
        db.retry("changing a reservation", || async {
            let mut tx = db.begin_write().await?;
            let outcome = self.transition_in(&mut tx, order, op).await?;
            match outcome {
                Ok(Some(_)) => tx.commit().await?,
                Ok(None) | Err(_) => tx.rollback().await?,
            }
            Ok(outcome)
        })
        .await?
    }

    /// Commits, releases or returns the order's reservation in the caller's transaction,
    /// which it neither commits nor rolls back: locks the reservation row, steps its state,
    /// moves the units out of the buckets it recorded, appends to the ledger and writes the
    /// new state. `Ok(None)`: the order has no reservation. A step that changes nothing (a
    /// commit of a committed reservation) writes nothing and returns the reservation; on
    /// `Err` roll back.
    pub(crate) async fn transition_in(
        &self,
        tx: &mut Tx,
        order: OrderId,
        op: ReservationOp,
    ) -> Result<Result<Option<Reservation>, InventoryError>, sqlx::Error> {
        if op == ReservationOp::Commit && self.db.dialect() == Dialect::Postgres {
            // The sale of a held reservation, whole, in one statement; any other state (or
            // none) is answered below, under the row's lock.
            let sold: Option<Row> = native!(tx(tx), |c, sql| sqlx::query_as(SELL_HELD)
                .bind(Uuid::from(order))
                .bind(Time::now())
                .fetch_optional(c)
                .await)?;
            if let Some(row) = sold {
                return Ok(reservation(order, &row)
                    .map(|(sold, _)| Some(sold))
                    .map_err(InventoryError::Store));
            }
        }
        let Some((row, expired)) = self.locked_row(tx, order).await? else {
            return Ok(Ok(None));
        };
        let (current, takes) = match reservation(order, &row) {
            Ok(r) => r,
            Err(e) => return Ok(Err(InventoryError::Store(e))),
        };
        let (to, kind) = match current.state.step(op, order, expired) {
            Ok(Some(step)) => step,
            Ok(None) => return Ok(Ok(Some(current))),
            Err(e) => return Ok(Err(e)),
        };
        // The ledger and the new state first, the stock last: a hot SKU's row is the lock its
        // buyers queue on, held from its statement to the commit. The reservation row is
        // locked before any stock row here as everywhere (a new reservation inserts its row
        // before it takes), so no transaction holds a stock row while it waits for this row.
        let misplaced = || {
            Ok(Err(InventoryError::Store(StoreError::Corrupt {
                message: format!("stock of order {order} is not where its reservation says"),
            })))
        };
        let combined = match self.db.dialect() {
            Dialect::Postgres => transition_sql(kind),
            _ => None,
        };
        let rest = match (takes.split_first(), combined) {
            // PostgreSQL: the ledger, the new state and the first take in one statement.
            (Some((first, rest)), Some(statement)) => {
                let lines: Vec<serde_json::Value> = current
                    .lines
                    .iter()
                    .map(|l| serde_json::json!({"sku": l.sku.as_str(), "quantity": l.quantity}))
                    .collect();
                let n = i64::from(first.quantity);
                let moved = native!(tx(tx), |c, sql| sqlx::query(statement)
                    .bind(to.as_str())
                    .bind(Uuid::from(order))
                    .bind(kind.as_str())
                    .bind(Time::now())
                    .bind(serde_json::Value::Array(lines).to_string())
                    .bind(n)
                    .bind(first.sku.as_str())
                    .bind(first.bucket)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected()))?;
                if moved != 1 {
                    return misplaced();
                }
                rest
            }
            _ => {
                for line in &current.lines {
                    self.ledger_entry(tx, &line.sku, kind, line.quantity, Some(order))
                        .await?;
                }
                let statement = sql!("UPDATE reservations SET state = $1 WHERE order_id = $2");
                native!(tx(tx), |c, sql| sqlx::query(sql(statement))
                    .bind(to.as_str())
                    .bind(Uuid::from(order))
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected()))?;
                &takes[..]
            }
        };
        for take in rest {
            if !self
                .move_in_bucket(tx, kind, &take.sku, take.bucket, take.quantity)
                .await?
            {
                return misplaced();
            }
        }
        Ok(Ok(Some(Reservation {
            state: to,
            ..current
        })))
    }
}

fn parse_state(s: &str) -> Result<ReservationState, StoreError> {
    ReservationState::parse(s).ok_or_else(|| StoreError::Corrupt {
        message: format!("reservation state `{s}`"),
    })
}

fn parse_kind(s: &str) -> Result<MovementKind, StoreError> {
    MovementKind::parse(s).ok_or_else(|| StoreError::Corrupt {
        message: format!("ledger movement `{s}`"),
    })
}

/// The statement that moves `n` units of one bucket's stock row between `on_hand` and
/// `taken`, guarded so the source cannot go below zero: zero rows affected means the units
/// were not there. A sale does not touch the stock row ([`SELL`]); a return gives its units
/// back to `on_hand` here after taking them out of `stock_sold`.
fn movement_sql(kind: MovementKind) -> Sql {
    match kind {
        MovementKind::Received => unreachable!("receipts are upserts"),
        MovementKind::Committed => unreachable!("a sale adds to stock_sold"),
        MovementKind::Reserved => sql!(
            "UPDATE stock SET on_hand = on_hand - $1, taken = taken + $2 WHERE sku = $3 AND bucket = $4 AND on_hand >= $5"
        ),
        MovementKind::Released | MovementKind::Returned => sql!(
            "UPDATE stock SET taken = taken - $1, on_hand = on_hand + $2 WHERE sku = $3 AND bucket = $4 AND taken >= $5"
        ),
    }
}

/// A sale of `$3` units of bucket `$2` of SKU `$1`: added to the bucket's `stock_sold` row
/// (made by the first sale). The units stay in the stock row's `taken`, which the sale does
/// not lock: a hot SKU's buyers queue on its stock row for their takes only.
const SELL: Sql = sql!(
    "INSERT INTO stock_sold (sku, bucket, sold) VALUES ($1, $2, $3) ON CONFLICT (sku, bucket) DO UPDATE SET sold = stock_sold.sold + excluded.sold",
    mysql: "INSERT INTO stock_sold (sku, bucket, sold) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE sold = sold + VALUES(sold)",
);

/// PostgreSQL: a reservation's transition in one statement: its new state (`$1`, of order
/// `$2`), the ledger entries of its lines (kind `$3`, time `$4`, the lines `$5` as a JSON
/// array of `{"sku", "quantity"}`, in order) and one take's units moved as
/// [`SqlInventory::move_in_bucket`] moves them (`$6` units of SKU `$7` in bucket `$8`): one
/// row written when they were there. `None` for a return, which moves units in two rows.
fn transition_sql(kind: MovementKind) -> Option<&'static str> {
    macro_rules! logged {
        ($move:literal) => {
            Some(concat!(
                "WITH state AS (UPDATE reservations SET state = $1 WHERE order_id = $2), ",
                "logged AS (INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) ",
                "SELECT l ->> 'sku', $3, CAST(l ->> 'quantity' AS BIGINT), $2, $4 ",
                "FROM json_array_elements(CAST($5 AS json)) WITH ORDINALITY AS lines (l, n) ORDER BY n) ",
                $move
            ))
        };
    }
    match kind {
        MovementKind::Received | MovementKind::Reserved => {
            unreachable!("receipts are upserts and takes are not transitions")
        }
        MovementKind::Released => logged!(
            "UPDATE stock SET taken = taken - $6, on_hand = on_hand + $6 WHERE sku = $7 AND bucket = $8 AND taken >= $6"
        ),
        MovementKind::Committed => logged!(
            "INSERT INTO stock_sold (sku, bucket, sold) VALUES ($7, $8, $6) ON CONFLICT (sku, bucket) DO UPDATE SET sold = stock_sold.sold + excluded.sold"
        ),
        MovementKind::Returned => None,
    }
}

/// PostgreSQL: the sale of order `$1`'s reservation if it is held, in one statement: its state
/// committed, the ledger entries of its lines (time `$2`) in their order, and every take's
/// units added to its bucket's `stock_sold` row in the order of the takes (the order all
/// stock is taken in). Returns the reservation row as committed; no row (and nothing
/// written) when the order has no held reservation. Everything it writes comes from the row
/// it changes, under that row's lock.
const SELL_HELD: &str = concat!(
    "WITH state AS (UPDATE reservations SET state = 'committed' WHERE order_id = $1 AND state = 'held' ",
    "RETURNING id, state, line_items, takes, expires_at), ",
    "logged AS (INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) ",
    "SELECT l ->> 'sku', 'committed', CAST(l ->> 'quantity' AS BIGINT), $1, $2 ",
    "FROM state, jsonb_array_elements(state.line_items) WITH ORDINALITY AS lines (l, n) ORDER BY n), ",
    "sold AS (INSERT INTO stock_sold (sku, bucket, sold) ",
    "SELECT t ->> 'sku', CAST(t ->> 'bucket' AS BIGINT), CAST(t ->> 'quantity' AS BIGINT) ",
    "FROM state, jsonb_array_elements(state.takes) WITH ORDINALITY AS takes (t, n) ORDER BY n ",
    "ON CONFLICT (sku, bucket) DO UPDATE SET sold = stock_sold.sold + excluded.sold) ",
    "SELECT id, state, line_items, takes, expires_at FROM state",
);

/// The first bucket of a SKU (`$1`) after bucket `$2` with at least `$3` units on hand that no
/// other transaction holds, locked, without waiting; SQLite has a single writer and no row
/// locks. MySQL and MariaDB list the later buckets by key instead (see `take`).
const FREE_BUCKET: Sql = sql!(
    "SELECT bucket FROM stock WHERE sku = $1 AND bucket > $2 AND on_hand >= $3 ORDER BY bucket LIMIT 1 FOR UPDATE SKIP LOCKED"
);

/// A SKU's units sold (`$1`), on hand and taken (`$2`), summed over its buckets (`NULL`s
/// for the stock: no such SKU); both parameters are the SKU.
const LEVEL: Sql = sql!(
    postgres: "SELECT (SELECT CAST(COALESCE(SUM(sold), 0) AS BIGINT) FROM stock_sold WHERE sku = $1), CAST(SUM(on_hand) AS BIGINT), CAST(SUM(taken) AS BIGINT) FROM stock WHERE sku = $2",
    mysql: "SELECT (SELECT CAST(COALESCE(SUM(sold), 0) AS SIGNED) FROM stock_sold WHERE sku = ?), CAST(SUM(on_hand) AS SIGNED), CAST(SUM(taken) AS SIGNED) FROM stock WHERE sku = ?",
    sqlite: "SELECT (SELECT COALESCE(SUM(sold), 0) FROM stock_sold WHERE sku = $1), SUM(on_hand), SUM(taken) FROM stock WHERE sku = $2",
);

/// The level of [`LEVEL`]'s row: reserved units are those taken and not sold.
fn level_of(row: (Option<i64>, Option<i64>, Option<i64>)) -> Option<StockLevel> {
    let clamp = |v: i64| u32::try_from(v.max(0)).unwrap_or(u32::MAX);
    match row {
        (Some(sold), Some(on_hand), Some(taken)) => Some(StockLevel {
            on_hand: clamp(on_hand),
            reserved: clamp(taken - sold),
            sold: clamp(sold),
        }),
        _ => None,
    }
}

/// A reservation row as stored: id, state, lines, takes, expiry.
pub(crate) type Row = (Uuid, String, Json<String>, Json<String>, Time);

/// A reservation row read with a flag (1 or 0) after its columns.
type Flagged = (Uuid, String, Json<String>, Json<String>, Time, i64);

fn reservation(order: OrderId, row: &Row) -> Result<(Reservation, Vec<Take>), StoreError> {
    let (id, state, Json(lines), Json(takes), Time(expires_at)) = row;
    let reservation = Reservation {
        id: ReservationId::from(*id),
        order,
        lines: decode("reservation lines", lines)?,
        state: parse_state(state)?,
        expires_at: *expires_at,
    };
    Ok((reservation, decode("reservation takes", takes)?))
}

/// What a reservation transaction ended with.
pub(crate) enum Taken {
    /// Taken: the reservation row as stored.
    Done(Row),
    /// Every short SKU.
    Short(Vec<Shortage>),
    /// The order already has a reservation row: look at it under lock.
    Exists,
    /// Run the transaction again, taking this SKU this way.
    Again(Sku, Approach),
}

/// One attempt of a reservation transaction, as [`SqlInventory::attempts`] runs it: it may ask
/// to run again, taking a SKU another way.
pub(crate) trait Attempt {
    /// The SKU to take another way, and how, when the attempt must run again.
    fn again(&self) -> Option<(Sku, Approach)>;
}

impl Attempt for Taken {
    fn again(&self) -> Option<(Sku, Approach)> {
        match self {
            Taken::Again(sku, approach) => Some((sku.clone(), *approach)),
            _ => None,
        }
    }
}

/// What a reservation of a new order takes: its lines, normalized (see [`normalize_lines`])
/// and encoded, and how long it holds them.
pub(crate) struct Hold {
    lines: Vec<ReservationLine>,
    line_json: String,
    /// In microseconds.
    ttl_us: i64,
}

/// The longest a reservation is held: a longer TTL holds it this long (100 years).
const MAX_HOLD: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

impl Hold {
    /// `lines` normalized, held for `ttl` (at most [`MAX_HOLD`]).
    pub(crate) fn new(lines: &[ReservationLine], ttl: Duration) -> Result<Hold, InventoryError> {
        let lines = normalize_lines(lines)?;
        Ok(Hold {
            line_json: encode(&lines),
            lines,
            // Within every dialect's time columns (MySQL's `DATETIME` ends in 9999).
            ttl_us: i64::try_from(ttl.min(MAX_HOLD).as_micros()).unwrap_or(i64::MAX),
        })
    }
}

impl From<Untaken> for Taken {
    fn from(untaken: Untaken) -> Self {
        match untaken {
            Untaken::Short(shortages) => Taken::Short(shortages),
            Untaken::Again(sku, approach) => Taken::Again(sku, approach),
        }
    }
}

/// Takes units returned out of a bucket's sold count, if it has them.
const UNSELL: Sql =
    sql!("UPDATE stock_sold SET sold = sold - $1 WHERE sku = $2 AND bucket = $3 AND sold >= $4");

/// Inserts an order's reservation row, held, unless the order has one; returns what it stored
/// (MySQL has no `RETURNING`: the affected row count says whether the row is new; MariaDB
/// 10.5 and later use [`MARIADB_INSERT_RESERVATION`]).
const INSERT_RESERVATION: Sql = sql!(
    postgres: "INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES ($1, $2, 'held', $3, $4, clock_timestamp() + $5 * INTERVAL '1 microsecond') ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at",
    mysql: "INSERT IGNORE INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES (?, ?, 'held', ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)",
    sqlite: "INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES ($1, $2, 'held', $3, $4, strftime('%Y-%m-%dT%H:%M:%f', 'now', '+' || ($5 / 1000000.0) || ' seconds') || '000Z') ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at",
);

/// [`INSERT_RESERVATION`] with, on MariaDB 10.5 and later, the row it inserted (none when the
/// order has one).
const MARIADB_INSERT_RESERVATION: Sql = sql!(
    postgres: INSERT_RESERVATION.postgres,
    mysql: "INSERT IGNORE INTO reservations (order_id, id, state, line_items, takes, expires_at) VALUES (?, ?, 'held', ?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND) RETURNING id, state, line_items, takes, expires_at",
    sqlite: INSERT_RESERVATION.sqlite,
);

/// PostgreSQL: [`INSERT_RESERVATION`] (`$1` to `$5`) and, when it inserted the row,
/// [`SqlInventory::take_logged`]'s take of `$6` units of SKU `$7` from bucket 0 logged at `$8`;
/// returns the row and 1 when the units were taken, 0 when they were not there. The take waits
/// for the insert (it reads its result), so the reservation row is written first.
const INSERT_RESERVATION_TAKING: &str = concat!(
    "WITH placed AS (INSERT INTO reservations (order_id, id, state, line_items, takes, expires_at) ",
    "VALUES ($1, $2, 'held', $3, $4, clock_timestamp() + $5 * INTERVAL '1 microsecond') ",
    "ON CONFLICT (order_id) DO NOTHING RETURNING id, state, line_items, takes, expires_at), ",
    "took AS (UPDATE stock SET on_hand = on_hand - $6, taken = taken + $6 ",
    "WHERE sku = $7 AND bucket = 0 AND on_hand >= $6 AND EXISTS (SELECT 1 FROM placed) RETURNING sku), ",
    "logged AS (INSERT INTO stock_ledger (sku, kind, quantity, order_id, at) ",
    "SELECT sku, 'reserved', $6, $1, $8 FROM took) ",
    "SELECT id, state, line_items, takes, expires_at, CAST((SELECT COUNT(*) FROM took) AS BIGINT) FROM placed",
);

/// Holds a released reservation row again, with new lines and takes.
const REHOLD_RESERVATION: Sql = sql!(
    postgres: "UPDATE reservations SET state = 'held', line_items = $1, takes = $2, expires_at = clock_timestamp() + $3 * INTERVAL '1 microsecond' WHERE order_id = $4",
    mysql: "UPDATE reservations SET state = 'held', line_items = ?, takes = ?, expires_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND WHERE order_id = ?",
    sqlite: "UPDATE reservations SET state = 'held', line_items = $1, takes = $2, expires_at = strftime('%Y-%m-%dT%H:%M:%f', 'now', '+' || ($3 / 1000000.0) || ' seconds') || '000Z' WHERE order_id = $4",
);

/// An order's reservation row.
const READ_RESERVATION: Sql =
    sql!("SELECT id, state, line_items, takes, expires_at FROM reservations WHERE order_id = $1");

#[async_trait]
impl InventoryStore for SqlInventory {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), sku = %sku, quantity = quantity))]
    async fn receive(&self, sku: &Sku, quantity: u32) -> Result<StockLevel, InventoryError> {
        if quantity == 0 || quantity > MAX_QUANTITY {
            return Err(InventoryError::InvalidQuantity {
                sku: sku.clone(),
                quantity,
            });
        }
        let db = &self.db;
        let received = db
            .retry("receiving stock", || async {
                let mut tx = db.begin_write().await?;
                let rows = self.buckets(&mut tx, sku, true).await?;
                let count = if rows.is_empty() {
                    i64::from(self.default_buckets)
                } else {
                    rows.len() as i64
                };
                let q = i64::from(quantity);
                for bucket in 0..count {
                    let share = q / count + i64::from(bucket < q % count);
                    if share > 0 || rows.is_empty() {
                        self.upsert_bucket(&mut tx, sku, bucket, share, false)
                            .await?;
                    }
                }
                let level = self.level_in(&mut tx, sku).await?.unwrap_or_default();
                if level.total() > u64::from(u32::MAX) - 1 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                self.ledger_entry(&mut tx, sku, MovementKind::Received, quantity, None)
                    .await?;
                tx.commit().await?;
                Ok(Some((level, count)))
            })
            .await?;
        let (level, count) = received.ok_or_else(|| InventoryError::InvalidQuantity {
            sku: sku.clone(),
            quantity,
        })?;
        self.remember(sku, u32::try_from(count).unwrap_or(1));
        Ok(level)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), sku = %sku))]
    async fn level(&self, sku: &Sku) -> Result<StockLevel, InventoryError> {
        let row = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(LEVEL))
            .bind(sku.as_str())
            .bind(sku.as_str())
            .fetch_one(c)
            .await)
        .map_err(|e| store_error("reading stock", e))?;
        level_of(row).ok_or_else(|| InventoryError::UnknownSku(sku.clone()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order, skus = lines.len()))]
    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<Reservation, InventoryError> {
        let hold = Hold::new(lines, ttl)?;
        let hold = &hold;
        let (lines, line_json, ttl_us) =
            (hold.lines.as_slice(), hold.line_json.as_str(), hold.ttl_us);
        let db = &self.db;
        let (rehold, read) = (REHOLD_RESERVATION, READ_RESERVATION);
        // The common case, a new order, costs one transaction: take the stock, then insert
        // the reservation row. A retry finds its row there (the insert does nothing), undoes
        // what it took and answers with the row; a retry short of stock looks for its row
        // before saying so (it must not be refused for want of the stock it already holds).
        // A released row takes its stock again, under the row's lock below.
        let taken = {
            let taken = self
                .attempts("reserving stock", |approaches| async move {
                    let mut tx = db.begin_write().await?;
                    let taken = self.take_new_in(&mut tx, order, hold, &approaches).await?;
                    match taken {
                        Taken::Done(_) => tx.commit().await?,
                        _ => tx.rollback().await?,
                    }
                    Ok(taken)
                })
                .await?;
            match taken {
                // Short, but a concurrent reserve of this order may have taken the stock (and
                // committed its row) since the read above: the order has that reservation.
                Taken::Short(short) => match self.stored_row(order).await? {
                    Some(_) => Taken::Exists,
                    None => Taken::Short(short),
                },
                other => other,
            }
        };
        let taken = match taken {
            Taken::Exists => {
                self.attempts("reserving stock again", |approaches| async move {
                    let mut tx = db.begin_write().await?;
                    let (row, _) = self
                        .locked_row(&mut tx, order)
                        .await?
                        .ok_or(sqlx::Error::RowNotFound)?;
                    if row.1 != "released" {
                        tx.rollback().await?;
                        return Ok(Taken::Done(row));
                    }
                    // Released (expired, or payment failed): take the stock again.
                    let takes = match self
                        .take_all(&mut tx, order, lines, &approaches, None)
                        .await?
                    {
                        Ok(takes) => takes,
                        Err(untaken) => {
                            tx.rollback().await?;
                            return Ok(untaken.into());
                        }
                    };
                    native!(tx(&mut tx), |c, sql| sqlx::query(sql(rehold))
                        .bind(Json(line_json))
                        .bind(Json(encode(&takes)))
                        .bind(ttl_us)
                        .bind(Uuid::from(order))
                        .execute(c)
                        .await
                        .map(|done| done.rows_affected()))?;
                    let row: Row = native!(tx(&mut tx), |c, sql| sqlx::query_as(sql(read))
                        .bind(Uuid::from(order))
                        .fetch_one(c)
                        .await)?;
                    tx.commit().await?;
                    Ok(Taken::Done(row))
                })
                .await?
            }
            other => other,
        };
        match taken {
            Taken::Done(row) => Ok(reservation(order, &row)?.0),
            Taken::Short(shortages) => Err(InventoryError::OutOfStock { shortages }),
            Taken::Exists | Taken::Again(..) => unreachable!("resolved above"),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order))]
    async fn commit(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.transition(order, ReservationOp::Commit)
            .await?
            .ok_or(InventoryError::NoReservation(order))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order))]
    async fn release(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        self.transition(order, ReservationOp::Release).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order))]
    async fn return_stock(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.transition(order, ReservationOp::Return)
            .await?
            .ok_or(InventoryError::NoReservation(order))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order))]
    async fn reservation(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        Ok(self
            .stored_row(order)
            .await?
            .map(|r| reservation(order, &r).map(|(r, _)| r))
            .transpose()?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), limit = limit))]
    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError> {
        let statement = sql!(
            postgres: "SELECT order_id FROM reservations WHERE state = 'held' AND expires_at <= clock_timestamp() ORDER BY expires_at LIMIT $1",
            mysql: "SELECT order_id FROM reservations WHERE state = 'held' AND expires_at <= UTC_TIMESTAMP(6) ORDER BY expires_at LIMIT ?",
            sqlite: "SELECT order_id FROM reservations WHERE state = 'held' AND expires_at <= strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z' ORDER BY expires_at LIMIT $1",
        );
        let rows: Vec<(Uuid,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
            statement
        ))
        .bind(limit as i64)
        .fetch_all(c)
        .await)
        .map_err(|e| store_error("finding expired reservations", e))?;
        let mut released = Vec::new();
        for (order,) in rows {
            let order = OrderId::from(order);
            // Released only if still held and expired once locked: a concurrent re-reserve
            // of a late payment keeps its stock.
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

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), sku = %sku))]
    async fn ledger(&self, sku: &Sku) -> Result<Vec<StockMovement>, InventoryError> {
        let statement = sql!(
            "SELECT kind, quantity, order_id, at FROM stock_ledger WHERE sku = $1 ORDER BY seq"
        );
        let rows: Vec<(String, i64, Option<Uuid>, Time)> = native!(
            pool(self.db.pool()),
            |c, sql| sqlx::query_as(sql(statement))
                .bind(sku.as_str())
                .fetch_all(c)
                .await
        )
        .map_err(|e| store_error("reading the ledger", e))?;
        rows.into_iter()
            .map(|(kind, quantity, order, at)| {
                Ok(StockMovement {
                    sku: sku.clone(),
                    kind: parse_kind(&kind)?,
                    quantity: u32::try_from(quantity).map_err(|_| StoreError::Corrupt {
                        message: format!("ledger quantity {quantity}"),
                    })?,
                    order: order.map(OrderId::from),
                    at: at.0,
                })
            })
            .collect::<Result<_, StoreError>>()
            .map_err(InventoryError::Store)
    }
}
