//! Promotions, coupon codes and their usage on SQL (see [`SqlPromotionStore`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ecommerce_core::error::StoreError;
use ecommerce_core::id::OrderId;
use ecommerce_core::money::Money;
use ecommerce_core::promotion::{
    Coupon, CouponCode, Limit, Promotion, PromotionError, PromotionId, PromotionStore,
    PromotionUse, Taken, Usage, UseState,
};
use sqlx::AssertSqlSafe;

use crate::db::{Db, Dialect, Tx, decode, encode, is_unique_violation, native, store_error};
use crate::statement::sql;
use crate::types::{Json, Time, Uuid};

/// Promotions, coupon codes and their usage in a SQL database, kept as exactly as stock.
///
/// A promotion is a JSON document in `promotions` beside its limits (`max_uses`,
/// `per_customer`, `budget_minor`) and its counters (`taken`: the uses held or committed,
/// and `spent_minor`); a code is a `coupons` row with its own limit and `used` count;
/// `promotion_customers` counts each customer's uses of a promotion; `promotion_uses`
/// records each order's uses, all in one state (`held`, `committed` or `released`), and is
/// where [`PromotionStore::usage`] counts the committed ones (a count over the promotion's
/// use rows, by index: a report, not a hot path). [`PromotionStore::taken`], what quotes
/// check the limits with, reads the promotion's row alone. Money is in minor units of the
/// promotion's currency.
///
/// [`PromotionStore::reserve`] runs in one write transaction. An order that already has use
/// rows gets nothing more (a retry). Otherwise, when the uses name several promotions, their
/// rows are locked first, in id order (`SELECT ... ORDER BY id FOR UPDATE`), so two
/// reservations never deadlock; then each use, in the order given, is counted with
/// conditional increments:
///
/// ```sql
/// UPDATE promotions SET taken = taken + 1, spent_minor = spent_minor + :amount
///  WHERE id = :id AND (max_uses IS NULL OR taken + 1 <= max_uses)
///    AND (budget_minor IS NULL OR :amount <= budget_minor - spent_minor);
/// UPDATE promotion_customers SET used = used + 1  -- the row made first if absent
///  WHERE promotion = :id AND customer_key = :customer
///    AND (per_customer IS NULL OR used + 1 <= per_customer);  -- the promotion's
/// UPDATE coupons SET used = used + 1
///  WHERE code = :code AND (max_uses IS NULL OR used + 1 <= max_uses);
/// ```
///
/// and its `promotion_uses` row inserted, held. Zero rows affected is a limit reached: the
/// transaction rolls back (nothing is reserved) and the error names the first limit the use
/// would pass, in the order total, per customer, budget, code (as
/// [`MemoryPromotions`](ecommerce_core::memory::MemoryPromotions) checks them). A concurrent
/// second reservation of the same order fails on the use rows' primary key, rolls back and
/// answers as a retry does. [`SqlUnitOfWork`](crate::SqlUnitOfWork) runs the same
/// reservation inside its order transaction.
///
/// A commit moves the order's held use rows to committed with one conditional `UPDATE` and
/// touches no counter: a use counts under every limit from the moment it is held. So the
/// buyers of a limited promotion queue on its row once per checkout (the reservation), and a
/// sale never waits for it. A release locks the order's use rows (`FOR UPDATE`; SQLite
/// takes the database's write lock at `BEGIN`), so it happens once, and gives held or
/// committed uses back (the promotion's `taken` and spent budget, the customer's and the
/// code's uses). Deadlocks and serialization failures run the transaction again.
///
/// [`PromotionStore::held_before`] compares times to the microsecond, as the columns keep
/// them: a use made in the cutoff's microsecond counts as before it.
///
/// One difference from the in-memory store: a use whose code has no `coupons` row (a code
/// never saved) counts against no code limit and is not counted for the code.
#[derive(Debug, Clone)]
pub struct SqlPromotionStore {
    db: Db,
}

impl SqlPromotionStore {
    /// The promotions in this database (migrated with [`Db::migrate`]).
    pub fn new(db: Db) -> Self {
        SqlPromotionStore { db }
    }

    /// Reserves an order's uses in the caller's transaction, which it neither commits nor
    /// rolls back: commit on `Ok(Ok(()))`, roll back on `Ok(Err(_))` (a limit reached, or a
    /// promotion that does not exist: what it counted must not stay). An order that already
    /// has uses gets nothing more, and `Ok(Ok(()))`. A concurrent reservation of the same
    /// order makes the insert of the use rows fail with a unique violation.
    pub(crate) async fn reserve_in(
        &self,
        tx: &mut Tx,
        order: OrderId,
        uses: &[PromotionUse],
    ) -> Result<Result<(), PromotionError>, sqlx::Error> {
        if uses.is_empty() {
            return Ok(Ok(()));
        }
        let db = &self.db;
        let order_id = Uuid::from(order);
        let statement = sql!("SELECT order_id FROM promotion_uses WHERE order_id = $1 LIMIT 1");
        let existing: Option<(Uuid,)> = native!(tx(tx), |c, sql| sqlx::query_as(sql(statement))
            .bind(order_id)
            .fetch_optional(c)
            .await)?;
        if existing.is_some() {
            return Ok(Ok(()));
        }
        // Several promotions: lock their rows in id order first, so reservations that share
        // promotions queue in one order instead of deadlocking.
        let mut ids: Vec<&str> = uses.iter().map(|u| u.promotion.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() > 1 {
            let lock = match db.dialect() {
                Dialect::Sqlite => "",
                Dialect::Postgres | Dialect::MySql => " FOR UPDATE",
            };
            let sql = format!(
                "SELECT id FROM promotions WHERE id IN ({}) ORDER BY id{lock}",
                db.dialect().placeholders(1, ids.len())
            );
            native!(tx(tx), |c, _sql| {
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for id in &ids {
                    query = query.bind(*id);
                }
                query.fetch_all(c).await.map(drop)
            })?;
        }
        // An upsert takes the row's exclusive lock whether it inserts or finds the row.
        let customer_row = sql!(
            "INSERT INTO promotion_customers (promotion, customer_key, used) VALUES ($1, $2, 0) ON CONFLICT (promotion, customer_key) DO NOTHING",
            mysql: "INSERT INTO promotion_customers (promotion, customer_key, used) VALUES (?, ?, 0) ON DUPLICATE KEY UPDATE used = used",
        );
        let now = Time::now();
        for (seq, u) in uses.iter().enumerate() {
            let minor = u.amount.to_minor().ok();
            // An amount too large for minor units passes no budget and counts nothing.
            let (add, need) = (minor.unwrap_or(0), minor.unwrap_or(i64::MAX));
            let promotion = u.promotion.as_str();
            let statement = sql!(
                "UPDATE promotions SET taken = taken + 1, spent_minor = spent_minor + $1 WHERE id = $2 AND (max_uses IS NULL OR taken + 1 <= max_uses) AND (budget_minor IS NULL OR $3 <= budget_minor - spent_minor)"
            );
            let counted = native!(tx(tx), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(add)
                    .bind(promotion)
                    .bind(need)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            if counted == 0 {
                return Ok(Err(self.refusal(tx, u).await?));
            }
            native!(tx(tx), |c, sql| sqlx::query(sql(customer_row))
                .bind(promotion)
                .bind(u.customer.as_str())
                .execute(c)
                .await
                .map(|done| done.rows_affected()))?;
            let statement = sql!(
                "UPDATE promotion_customers SET used = used + 1 WHERE promotion = $1 AND customer_key = $2 AND used + 1 <= COALESCE((SELECT per_customer FROM promotions WHERE id = $3), used + 1)"
            );
            let counted = native!(tx(tx), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(promotion)
                    .bind(u.customer.as_str())
                    .bind(promotion)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            if counted == 0 {
                return Ok(Err(exhausted(u, Limit::PerCustomer)));
            }
            if let Some(code) = &u.code {
                let statement = sql!(
                    "UPDATE coupons SET used = used + 1 WHERE code = $1 AND (max_uses IS NULL OR used + 1 <= max_uses)"
                );
                let counted = native!(tx(tx), |c, sql| {
                    sqlx::query(sql(statement))
                        .bind(code.as_str())
                        .execute(c)
                        .await
                        .map(|done| done.rows_affected())
                })?;
                if counted == 0 {
                    let statement = sql!("SELECT code FROM coupons WHERE code = $1");
                    let known: Option<(String,)> =
                        native!(tx(tx), |c, sql| sqlx::query_as(sql(statement))
                            .bind(code.as_str())
                            .fetch_optional(c)
                            .await)?;
                    if known.is_some() {
                        return Ok(Err(exhausted(u, Limit::Code)));
                    }
                }
            }
            let statement = sql!(
                "INSERT INTO promotion_uses (order_id, seq, promotion, code, customer_key, amount_minor, state, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            );
            native!(tx(tx), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(order_id)
                    .bind(i64::try_from(seq).unwrap_or(i64::MAX))
                    .bind(promotion)
                    .bind(u.code.as_ref().map(CouponCode::as_str))
                    .bind(u.customer.as_str())
                    .bind(add)
                    .bind(state_str(UseState::Held))
                    .bind(now)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?;
        }
        Ok(Ok(()))
    }

    /// Why the promotion's row refused a use (in the transaction that tried, after the
    /// uses before it were counted): no such promotion, or the first limit it would pass,
    /// in the order total, per customer, budget.
    async fn refusal(&self, tx: &mut Tx, u: &PromotionUse) -> Result<PromotionError, sqlx::Error> {
        let statement =
            sql!("SELECT max_uses, per_customer, taken FROM promotions WHERE id = $1 FOR UPDATE");
        let row: Option<(Option<i64>, Option<i64>, i64)> =
            native!(tx(tx), |c, sql| sqlx::query_as(sql(statement))
                .bind(u.promotion.as_str())
                .fetch_optional(c)
                .await)?;
        let Some((max_uses, per_customer, taken)) = row else {
            return Ok(PromotionError::NotFound(u.promotion.clone()));
        };
        if max_uses.is_some_and(|max| taken >= max) {
            return Ok(exhausted(u, Limit::Total));
        }
        if let Some(max) = per_customer {
            let statement = sql!(
                "SELECT used FROM promotion_customers WHERE promotion = $1 AND customer_key = $2"
            );
            let used: Option<(i64,)> = native!(tx(tx), |c, sql| {
                sqlx::query_as(sql(statement))
                    .bind(u.promotion.as_str())
                    .bind(u.customer.as_str())
                    .fetch_optional(c)
                    .await
            })?;
            if used.map_or(0, |(n,)| n) >= max {
                return Ok(exhausted(u, Limit::PerCustomer));
            }
        }
        Ok(exhausted(u, Limit::Budget))
    }

    /// The order's use rows, locked, by promotion: promotion, code, customer key, amount,
    /// state.
    async fn locked_uses(&self, tx: &mut Tx, order: OrderId) -> Result<Vec<UseRow>, sqlx::Error> {
        let statement = sql!(
            "SELECT promotion, code, customer_key, amount_minor, state FROM promotion_uses WHERE order_id = $1 ORDER BY promotion, seq FOR UPDATE"
        );
        native!(tx(tx), |c, sql| {
            sqlx::query_as(sql(statement))
                .bind(Uuid::from(order))
                .fetch_all(c)
                .await
        })
    }

    /// Commits (`release == false`) or releases an order's uses in one transaction.
    async fn settle(&self, order: OrderId, release: bool) -> Result<(), PromotionError> {
        let db = &self.db;
        let what = if release {
            "releasing promotion uses"
        } else {
            "committing promotion uses"
        };
        db.retry(what, || async {
            let mut tx = db.begin_write().await?;
            let settled = self.settle_in(&mut tx, order, release).await?;
            match settled {
                Ok(true) => tx.commit().await?,
                Ok(false) | Err(_) => tx.rollback().await?,
            }
            Ok(settled.map(|_| ()))
        })
        .await?
    }

    /// Commits (`release == false`) or releases an order's uses in the caller's transaction,
    /// which it neither commits nor rolls back. A commit moves the order's held use rows to
    /// committed and nothing else (they count under every limit since they were held). A
    /// release locks the order's use rows, gives them back to every limit they are under and
    /// marks them released. `Ok(false)`: nothing to write (no uses, or already settled that
    /// way); on `Err` roll back.
    pub(crate) async fn settle_in(
        &self,
        tx: &mut Tx,
        order: OrderId,
        release: bool,
    ) -> Result<Result<bool, PromotionError>, sqlx::Error> {
        if !release {
            // The row locks this takes order it after a concurrent release, whose state it
            // then reads (`released`: nothing to commit).
            let statement = sql!(
                "UPDATE promotion_uses SET state = 'committed' WHERE order_id = $1 AND state = 'held'"
            );
            let committed = native!(tx(tx), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(Uuid::from(order))
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            return Ok(Ok(committed > 0));
        }
        let rows = self.locked_uses(tx, order).await?;
        let Some((_, _, _, _, state)) = rows.first() else {
            return Ok(Ok(false));
        };
        let was = match parse_state(state) {
            Ok(was) => was,
            Err(e) => return Ok(Err(PromotionError::Store(e))),
        };
        if was == UseState::Released {
            return Ok(Ok(false));
        }
        for (promotion, code, customer, amount, _) in &rows {
            let statement = sql!(
                "UPDATE promotions SET taken = taken - 1, spent_minor = spent_minor - $1 WHERE id = $2"
            );
            native!(tx(tx), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(*amount)
                    .bind(promotion)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            let statement = sql!(
                "UPDATE promotion_customers SET used = CASE WHEN used > 0 THEN used - 1 ELSE 0 END WHERE promotion = $1 AND customer_key = $2"
            );
            native!(tx(tx), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(promotion)
                    .bind(customer)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?;
            if let Some(code) = code {
                let statement = sql!(
                    "UPDATE coupons SET used = CASE WHEN used > 0 THEN used - 1 ELSE 0 END WHERE code = $1"
                );
                native!(tx(tx), |c, sql| {
                    sqlx::query(sql(statement))
                        .bind(code)
                        .execute(c)
                        .await
                        .map(|done| done.rows_affected())
                })?;
            }
        }
        let statement = sql!("UPDATE promotion_uses SET state = $1 WHERE order_id = $2");
        native!(tx(tx), |c, sql| sqlx::query(sql(statement))
            .bind(state_str(UseState::Released))
            .bind(Uuid::from(order))
            .execute(c)
            .await
            .map(|done| done.rows_affected()))?;
        Ok(Ok(true))
    }
}

/// A `promotion_uses` row as commit and release read it: promotion, code, customer key,
/// amount in minor units, state.
type UseRow = (String, Option<String>, String, i64, String);

fn exhausted(u: &PromotionUse, limit: Limit) -> PromotionError {
    PromotionError::Exhausted {
        promotion: u.promotion.clone(),
        code: u.code.clone(),
        limit,
    }
}

fn state_str(state: UseState) -> &'static str {
    match state {
        UseState::Held => "held",
        UseState::Committed => "committed",
        UseState::Released => "released",
    }
}

fn parse_state(s: &str) -> Result<UseState, StoreError> {
    match s {
        "held" => Ok(UseState::Held),
        "committed" => Ok(UseState::Committed),
        "released" => Ok(UseState::Released),
        other => Err(StoreError::Corrupt {
            message: format!("promotion use state `{other}`"),
        }),
    }
}

/// A count column as a `u32`.
fn count(what: &str, n: i64) -> Result<u32, StoreError> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt {
        message: format!("{what}: {n} out of range"),
    })
}

#[async_trait]
impl PromotionStore for SqlPromotionStore {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), promotion = %promotion.id))]
    async fn save_promotion(&self, promotion: &Promotion) -> Result<(), PromotionError> {
        promotion.validate()?;
        let db = &self.db;
        let upsert = sql!(
            "INSERT INTO promotions (id, data, max_uses, per_customer, budget_minor, automatic) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET data = excluded.data, max_uses = excluded.max_uses, per_customer = excluded.per_customer, budget_minor = excluded.budget_minor, automatic = excluded.automatic",
            mysql: "INSERT INTO promotions (id, data, max_uses, per_customer, budget_minor, automatic) VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE data = VALUES(data), max_uses = VALUES(max_uses), per_customer = VALUES(per_customer), budget_minor = VALUES(budget_minor), automatic = VALUES(automatic)",
        );
        let data = Json(encode(promotion));
        let limits = &promotion.limits;
        let (max_uses, per_customer) = (
            limits.total.map(i64::from),
            limits.per_customer.map(i64::from),
        );
        let budget = limits.budget.map(|b| b.to_minor().unwrap_or(0));
        db.retry("saving a promotion", || async {
            native!(pool(db.writer()), |c, sql| sqlx::query(sql(upsert))
                .bind(promotion.id.as_str())
                .bind(&data)
                .bind(max_uses)
                .bind(per_customer)
                .bind(budget)
                .bind(i64::from(!promotion.code_only))
                .execute(c)
                .await
                .map(|done| done.rows_affected()))
        })
        .await?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend()))]
    async fn promotions(&self) -> Result<Vec<Promotion>, PromotionError> {
        let statement = sql!("SELECT data FROM promotions ORDER BY id");
        let rows: Vec<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(
            sql(statement)
        )
        .fetch_all(c)
        .await)
        .map_err(|e| store_error("listing promotions", e))?;
        Ok(rows
            .iter()
            .map(|(Json(data),)| decode("promotion", data))
            .collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend()))]
    async fn automatic(&self) -> Result<Vec<Promotion>, PromotionError> {
        let statement = sql!("SELECT data FROM promotions WHERE automatic = 1 ORDER BY id");
        let rows: Vec<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(
            sql(statement)
        )
        .fetch_all(c)
        .await)
        .map_err(|e| store_error("listing automatic promotions", e))?;
        Ok(rows
            .iter()
            .map(|(Json(data),)| decode("promotion", data))
            .collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), promotion = %id))]
    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>, PromotionError> {
        let statement = sql!("SELECT data FROM promotions WHERE id = $1");
        let row: Option<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(
            sql(statement),
        )
        .bind(id.as_str())
        .fetch_optional(c)
        .await)
        .map_err(|e| store_error("reading a promotion", e))?;
        Ok(row
            .map(|(Json(data),)| decode("promotion", &data))
            .transpose()?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), promotion = %coupon.promotion))]
    async fn save_coupon(&self, coupon: &Coupon) -> Result<(), PromotionError> {
        let db = &self.db;
        // An upsert takes the row's exclusive lock whether it inserts or finds the row.
        let insert = sql!(
            "INSERT INTO coupons (code, promotion, max_uses, used) VALUES ($1, $2, $3, 0) ON CONFLICT (code) DO NOTHING",
            mysql: "INSERT INTO coupons (code, promotion, max_uses, used) VALUES (?, ?, ?, 0) ON DUPLICATE KEY UPDATE code = code",
        );
        let (code, promotion) = (coupon.code.as_str(), coupon.promotion.as_str());
        let max_uses = coupon.max_uses.map(i64::from);
        db.retry("saving a coupon code", || async {
            let mut tx = db.begin_write().await?;
            let statement = sql!("SELECT id FROM promotions WHERE id = $1");
            let found: Option<(String,)> =
                native!(tx(&mut tx), |c, sql| sqlx::query_as(sql(statement))
                    .bind(promotion)
                    .fetch_optional(c)
                    .await)?;
            if found.is_none() {
                tx.rollback().await?;
                return Ok(Err(PromotionError::NotFound(coupon.promotion.clone())));
            }
            native!(tx(&mut tx), |c, sql| sqlx::query(sql(insert))
                .bind(code)
                .bind(promotion)
                .bind(max_uses)
                .execute(c)
                .await
                .map(|done| done.rows_affected()))?;
            let statement = sql!("SELECT promotion FROM coupons WHERE code = $1 FOR UPDATE");
            let (owner,): (String,) =
                native!(tx(&mut tx), |c, sql| sqlx::query_as(sql(statement))
                    .bind(code)
                    .fetch_one(c)
                    .await)?;
            if owner != promotion {
                tx.rollback().await?;
                return Ok(Err(PromotionError::CodeTaken(coupon.code.clone())));
            }
            let statement = sql!("UPDATE coupons SET max_uses = $1 WHERE code = $2");
            native!(tx(&mut tx), |c, sql| sqlx::query(sql(statement))
                .bind(max_uses)
                .bind(code)
                .execute(c)
                .await
                .map(|done| done.rows_affected()))?;
            tx.commit().await?;
            Ok(Ok(()))
        })
        .await?
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend()))]
    async fn coupon(&self, code: &CouponCode) -> Result<Option<Coupon>, PromotionError> {
        let statement = sql!("SELECT promotion, max_uses FROM coupons WHERE code = $1");
        let row: Option<(String, Option<i64>)> =
            native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
                statement
            ))
            .bind(code.as_str())
            .fetch_optional(c)
            .await)
            .map_err(|e| store_error("reading a coupon code", e))?;
        let Some((promotion, max_uses)) = row else {
            return Ok(None);
        };
        let promotion = PromotionId::new(promotion).map_err(|e| StoreError::Corrupt {
            message: format!("coupon {code}: promotion id: {e}"),
        })?;
        let max_uses = max_uses.map(|n| count("coupon max uses", n)).transpose()?;
        Ok(Some(Coupon {
            code: code.clone(),
            promotion,
            max_uses,
        }))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order, uses = uses.len()))]
    async fn reserve(&self, order: OrderId, uses: &[PromotionUse]) -> Result<(), PromotionError> {
        if uses.is_empty() {
            return Ok(());
        }
        let db = &self.db;
        db.retry("reserving promotion uses", || async {
            let mut tx = db.begin_write().await?;
            match self.reserve_in(&mut tx, order, uses).await {
                Ok(Ok(())) => {
                    tx.commit().await?;
                    Ok(Ok(()))
                }
                Ok(Err(e)) => {
                    tx.rollback().await?;
                    Ok(Err(e))
                }
                // A concurrent reservation of the order inserted its rows first: the order
                // has its uses, as a retry finds them.
                Err(e) if is_unique_violation(&e) => {
                    tx.rollback().await?;
                    Ok(Ok(()))
                }
                Err(e) => Err(e),
            }
        })
        .await?
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order))]
    async fn commit(&self, order: OrderId) -> Result<(), PromotionError> {
        self.settle(order, false).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order))]
    async fn release(&self, order: OrderId) -> Result<(), PromotionError> {
        self.settle(order, true).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order))]
    async fn uses_of(&self, order: OrderId) -> Result<Option<UseState>, PromotionError> {
        let statement = sql!("SELECT state FROM promotion_uses WHERE order_id = $1 LIMIT 1");
        let row: Option<(String,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
            statement
        ))
        .bind(Uuid::from(order))
        .fetch_optional(c)
        .await)
        .map_err(|e| store_error("reading promotion uses", e))?;
        Ok(row.map(|(s,)| parse_state(&s)).transpose()?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), promotion = %promotion))]
    async fn usage(&self, promotion: &PromotionId) -> Result<Usage, PromotionError> {
        // One statement, so the uses taken and those committed are of one moment.
        let statement = sql!(
            "SELECT data, taken, (SELECT COUNT(*) FROM promotion_uses WHERE promotion = promotions.id AND state = 'committed'), spent_minor FROM promotions WHERE id = $1"
        );
        let row: Option<(Json<String>, i64, i64, i64)> =
            native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
                statement
            ))
            .bind(promotion.as_str())
            .fetch_optional(c)
            .await)
            .map_err(|e| store_error("reading promotion usage", e))?;
        let Some((Json(data), taken, committed, spent)) = row else {
            return Err(PromotionError::NotFound(promotion.clone()));
        };
        let p: Promotion = decode("promotion", &data)?;
        Ok(Usage {
            held: count("promotion uses held", taken - committed)?,
            committed: count("promotion uses committed", committed)?,
            spent: Money::from_minor(spent, p.currency),
        })
    }

    /// The promotion's row alone: its `taken` and `spent_minor`, without counting use rows.
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), promotion = %promotion))]
    async fn taken(&self, promotion: &PromotionId) -> Result<Taken, PromotionError> {
        let statement = sql!("SELECT data, taken, spent_minor FROM promotions WHERE id = $1");
        let row: Option<(Json<String>, i64, i64)> =
            native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
                statement
            ))
            .bind(promotion.as_str())
            .fetch_optional(c)
            .await)
            .map_err(|e| store_error("reading the uses a promotion's limits count", e))?;
        let Some((Json(data), taken, spent)) = row else {
            return Err(PromotionError::NotFound(promotion.clone()));
        };
        let p: Promotion = decode("promotion", &data)?;
        Ok(Taken {
            uses: count("promotion uses taken", taken)?,
            spent: Money::from_minor(spent, p.currency),
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend()))]
    async fn code_uses(&self, code: &CouponCode) -> Result<u32, PromotionError> {
        let statement = sql!("SELECT used FROM coupons WHERE code = $1");
        let row: Option<(i64,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
            statement
        ),)
        .bind(code.as_str())
        .fetch_optional(c)
        .await)
        .map_err(|e| store_error("reading coupon uses", e))?;
        Ok(row
            .map(|(n,)| count("coupon uses", n))
            .transpose()?
            .unwrap_or(0))
    }

    /// Times are kept to the microsecond: a use made in the cutoff's microsecond counts as
    /// before it.
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), limit = limit))]
    async fn held_before(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, OrderId)>, PromotionError> {
        // The first microsecond not before the cutoff.
        let cutoff = Time::of(cutoff + chrono::TimeDelta::nanoseconds(999));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let first_page = sql!(
            "SELECT DISTINCT order_id, created_at FROM promotion_uses WHERE state = 'held' AND created_at < $1 ORDER BY created_at, order_id LIMIT $2"
        );
        let next_page = sql!(
            "SELECT DISTINCT order_id, created_at FROM promotion_uses WHERE state = 'held' AND created_at < $1 AND (created_at > $2 OR (created_at = $3 AND order_id > $4)) ORDER BY created_at, order_id LIMIT $5"
        );
        let rows: Vec<(Uuid, Time)> = native!(pool(self.db.pool()), |c, sql| match &after {
            None =>
                sqlx::query_as(sql(first_page))
                    .bind(cutoff)
                    .bind(limit)
                    .fetch_all(c)
                    .await,
            // After the last entry of the page before (times are whole microseconds here).
            Some((at, order)) =>
                sqlx::query_as(sql(next_page))
                    .bind(cutoff)
                    .bind(Time::of(*at))
                    .bind(Time::of(*at))
                    .bind(Uuid::from(*order))
                    .bind(limit)
                    .fetch_all(c)
                    .await,
        })
        .map_err(|e| store_error("finding held promotion uses", e))?;
        Ok(rows
            .into_iter()
            .map(|(order, Time(at))| (at, OrderId::from(order)))
            .collect())
    }
}
