//! Orders and their outbox on SQL. The idempotency key is a unique column; every change locks
//! the order row, applies the patch with the core's rules, writes it only at the expected
//! version, and appends its events to `outbox`, all in one transaction.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ecommerce_core::catalog::Page;
use ecommerce_core::error::{OrderError, StoreError};
use ecommerce_core::events::{DomainEvent, EventEnvelope, Outbox, OutboxRecord};
use ecommerce_core::id::{CustomerId, EventId, IdempotencyKey, OrderId};
use ecommerce_core::order::{
    Created, HistoryCursor, MAX_HISTORY_PAGE, Order, OrderPatch, OrderStatus, OrderStore,
};
use sqlx::AssertSqlSafe;

use crate::db::{Db, Dialect, Tx, decode, encode, native, store_error};
use crate::statement::sql;
use crate::types::{Json, Time, Uuid};

/// Orders and their outbox in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlOrderStore {
    db: Db,
}

impl SqlOrderStore {
    /// The orders in this database (migrated with [`Db::migrate`]).
    pub fn new(db: Db) -> Self {
        SqlOrderStore { db }
    }

    async fn append(&self, tx: &mut Tx, events: &[DomainEvent]) -> Result<(), sqlx::Error> {
        for row in events.iter().map(OutboxRow::of) {
            let statement = sql!(
                "INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES ($1, $2, $3, $4, $5)"
            );
            native!(tx(tx), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(Uuid::from(row.id))
                    .bind(row.aggregatetype)
                    .bind(row.aggregateid)
                    .bind(row.r#type)
                    .bind(Json(row.payload))
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?;
        }
        Ok(())
    }

    /// Inserts a new order and its events in the caller's transaction, which it neither
    /// commits nor rolls back; `data` is the order encoded. `false` when the id or the
    /// customer's idempotency key is taken: nothing was written, roll back and see
    /// [`SqlOrderStore::existing`]. On PostgreSQL the order and its events are one statement.
    pub(crate) async fn insert_in(
        &self,
        tx: &mut Tx,
        order: &Order,
        data: &str,
        events: &[DomainEvent],
    ) -> Result<bool, sqlx::Error> {
        macro_rules! bind_order {
            ($query:expr) => {
                $query
                    .bind(Uuid::from(order.id))
                    .bind(Uuid::from(order.customer))
                    .bind(scoped_key(order.customer, &order.idempotency_key))
                    .bind(order.status.as_str())
                    .bind(order.version as i64)
                    .bind(Time::of(order.created_at))
                    .bind(Json(data))
            };
        }
        #[cfg(feature = "postgres")]
        #[allow(irrefutable_let_patterns)]
        if let Tx::Postgres(tx) = tx {
            let statements = (INSERT_LOGGED_ONE, INSERT_LOGGED);
            return changed_with_events(tx, statements, |q| bind_order!(q), events).await;
        }
        let statement = sql!(
            "INSERT INTO orders (id, customer_id, idempotency_key, status, version, created_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            mysql: "INSERT IGNORE INTO orders (id, customer_id, idempotency_key, status, version, created_at, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        );
        let inserted = native!(tx(&mut *tx), |c, sql| {
            bind_order!(sqlx::query(sql(statement)))
                .execute(c)
                .await
                .map(|done| done.rows_affected())
        })?;
        if inserted == 0 {
            return Ok(false);
        }
        self.append(tx, events).await?;
        Ok(true)
    }

    /// What creating `order` returns when its id or idempotency key was taken: the order of
    /// its key, else [`OrderError::Duplicate`].
    pub(crate) async fn existing(&self, order: &Order) -> Result<Created, OrderError> {
        match self
            .by_idempotency_key(order.customer, &order.idempotency_key)
            .await?
        {
            Some(existing) => Ok(Created::Existing(existing)),
            None => Err(OrderError::Duplicate(order.id)),
        }
    }

    /// Locks the order row, applies `patch` at `expected_version` and writes the result with
    /// its events, in the caller's transaction, which it neither commits nor rolls back.
    /// On [`Update::Refused`] nothing was written: roll back.
    pub(crate) async fn update_in(
        &self,
        tx: &mut Tx,
        id: OrderId,
        expected_version: u64,
        patch: &OrderPatch,
        events: &[DomainEvent],
    ) -> Result<Update, sqlx::Error> {
        let statement = sql!("SELECT data FROM orders WHERE id = $1 FOR UPDATE");
        let row: Option<(Json<String>,)> =
            native!(tx(tx), |c, sql| sqlx::query_as(sql(statement),)
                .bind(Uuid::from(id))
                .fetch_optional(c)
                .await)?;
        let Some((Json(json),)) = row else {
            return Ok(Update::Refused(OrderError::NotFound(id)));
        };
        let current: Order = match decode("order", &json) {
            Ok(o) => o,
            Err(e) => return Ok(Update::Refused(e.into())),
        };
        self.patch_in(tx, &current, expected_version, patch, events)
            .await
    }

    /// Applies `patch` to `current`, the order as stored at `expected_version`, and writes
    /// the result with its events (on PostgreSQL in one statement) in the caller's
    /// transaction, which it neither commits nor rolls back. The row is written only at that
    /// version, so `current` need not have been read in this transaction: at the version it
    /// names, it is the stored order. On [`Update::Refused`] nothing was written: roll back.
    pub(crate) async fn patch_in(
        &self,
        tx: &mut Tx,
        current: &Order,
        expected_version: u64,
        patch: &OrderPatch,
        events: &[DomainEvent],
    ) -> Result<Update, sqlx::Error> {
        let next = match current.apply(expected_version, patch, Utc::now()) {
            Ok(next) => next,
            Err(e) => return Ok(Update::Refused(e)),
        };
        let data = encode(&next);
        macro_rules! bind_patch {
            ($query:expr) => {
                $query
                    .bind(next.status.as_str())
                    .bind(next.version as i64)
                    .bind(Json(&data))
                    .bind(Uuid::from(current.id))
                    .bind(expected_version as i64)
            };
        }
        // On PostgreSQL the events go in the same statement.
        let logged = self.db.dialect() == Dialect::Postgres;
        let written = match &mut *tx {
            #[cfg(feature = "postgres")]
            Tx::Postgres(tx) => {
                let statements = (UPDATE_LOGGED_ONE, UPDATE_LOGGED);
                changed_with_events(tx, statements, |q| bind_patch!(q), events).await?
            }
            #[allow(unreachable_patterns)]
            other => {
                let statement = sql!(
                    "UPDATE orders SET status = $1, version = $2, data = $3 WHERE id = $4 AND version = $5"
                );
                native!(tx(other), |c, sql| {
                    bind_patch!(sqlx::query(sql(statement)))
                        .execute(c)
                        .await
                        .map(|done| done.rows_affected())
                })? == 1
            }
        };
        if !written {
            // Nothing was written: the order changed since `current` was read, or is gone.
            let statement = sql!("SELECT version FROM orders WHERE id = $1");
            let stored: Option<(i64,)> = native!(tx(tx), |c, sql| sqlx::query_as(sql(statement),)
                .bind(Uuid::from(current.id))
                .fetch_optional(c)
                .await)?;
            return Ok(Update::Refused(match stored {
                Some((actual,)) => OrderError::VersionConflict {
                    order: current.id,
                    expected: expected_version,
                    actual: u64::try_from(actual).unwrap_or_default(),
                },
                None => OrderError::NotFound(current.id),
            }));
        }
        if !logged {
            self.append(tx, events).await?;
        }
        Ok(Update::Done(Box::new(next)))
    }
}

/// PostgreSQL: a change of one order row (`RETURNING id` is added) and, if it changed a row,
/// the events in parameter `$events` (see [`outbox_rows`]), in order, in one statement whose
/// one row is the count of orders changed.
#[cfg(feature = "postgres")]
macro_rules! with_events {
    ($change:literal, $events:literal) => {
        concat!(
            "WITH changed AS (", $change, " RETURNING id), ",
            "appended AS (INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) ",
            "SELECT CAST(e ->> 'id' AS uuid), e ->> 'aggregatetype', e ->> 'aggregateid', e ->> 'type', CAST(e ->> 'payload' AS jsonb) ",
            "FROM changed, json_array_elements(CAST(", $events, " AS json)) WITH ORDINALITY AS events (e, n) ORDER BY n) ",
            "SELECT COUNT(*) FROM changed"
        )
    };
}

/// PostgreSQL: a change of one order row as [`with_events!`], with one event given as the
/// outbox row's columns in the five parameters from `$first`: no JSON array for the server to
/// parse, no payload escaped twice (a checkout's changes each carry one event).
#[cfg(feature = "postgres")]
macro_rules! with_event {
    ($change:literal, $first:literal, $second:literal, $third:literal, $fourth:literal, $fifth:literal) => {
        concat!(
            "WITH changed AS (",
            $change,
            " RETURNING id), ",
            "appended AS (INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) ",
            "SELECT ",
            $first,
            ", ",
            $second,
            ", ",
            $third,
            ", ",
            $fourth,
            ", ",
            $fifth,
            " FROM changed) ",
            "SELECT COUNT(*) FROM changed"
        )
    };
}

/// PostgreSQL: [`SqlOrderStore::insert_in`]'s order row and, if it was inserted, its events.
#[cfg(feature = "postgres")]
const INSERT_LOGGED: &str = with_events!(
    "INSERT INTO orders (id, customer_id, idempotency_key, status, version, created_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    "$8"
);

/// PostgreSQL: [`SqlOrderStore::patch_in`]'s update at the expected version and, if it was
/// written, its events.
#[cfg(feature = "postgres")]
const UPDATE_LOGGED: &str = with_events!(
    "UPDATE orders SET status = $1, version = $2, data = $3 WHERE id = $4 AND version = $5",
    "$6"
);

/// PostgreSQL: [`INSERT_LOGGED`] with one event ([`with_event!`]).
#[cfg(feature = "postgres")]
const INSERT_LOGGED_ONE: &str = with_event!(
    "INSERT INTO orders (id, customer_id, idempotency_key, status, version, created_at, data) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    "$8",
    "$9",
    "$10",
    "$11",
    "$12"
);

/// PostgreSQL: [`UPDATE_LOGGED`] with one event ([`with_event!`]).
#[cfg(feature = "postgres")]
const UPDATE_LOGGED_ONE: &str = with_event!(
    "UPDATE orders SET status = $1, version = $2, data = $3 WHERE id = $4 AND version = $5",
    "$6",
    "$7",
    "$8",
    "$9",
    "$10"
);

/// Runs a change of [`with_events!`] (`many`) or, for exactly one event, of [`with_event!`]
/// (`one`), its order row's parameters bound by `bind`: whether the order row changed (its
/// events were appended only then).
#[cfg(feature = "postgres")]
async fn changed_with_events<'q>(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    (one, many): (&'static str, &'static str),
    bind: impl FnOnce(PgQuery<'q>) -> PgQuery<'q>,
    events: &[DomainEvent],
) -> Result<bool, sqlx::Error> {
    let change = match events {
        [event] => {
            let row = OutboxRow::of(event);
            bind(sqlx::query(one))
                .bind(Uuid::from(row.id))
                .bind(row.aggregatetype)
                .bind(row.aggregateid)
                .bind(row.r#type)
                .bind(Json(row.payload))
        }
        _ => bind(sqlx::query(many)).bind(outbox_rows(events)),
    };
    let row = change.fetch_one(&mut **tx).await?;
    Ok(sqlx::Row::try_get::<i64, _>(&row, 0)? == 1)
}

/// A PostgreSQL statement with its parameters.
#[cfg(feature = "postgres")]
type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// An event as the outbox row it becomes (Debezium's outbox layout).
#[derive(serde::Serialize)]
struct OutboxRow {
    id: EventId,
    aggregatetype: &'static str,
    aggregateid: String,
    r#type: &'static str,
    /// The event in its envelope, as JSON.
    payload: String,
}

impl OutboxRow {
    fn of(event: &DomainEvent) -> Self {
        let envelope = EventEnvelope::new(event.clone());
        OutboxRow {
            id: envelope.id,
            aggregatetype: event.aggregate_type(),
            aggregateid: event.aggregate_id(),
            r#type: event.event_type(),
            payload: envelope.to_json(),
        }
    }
}

/// Events as the outbox rows they become, in order: a JSON array of objects with the
/// outbox's columns (the payload as a string).
#[cfg(feature = "postgres")]
fn outbox_rows(events: &[DomainEvent]) -> String {
    let rows: Vec<OutboxRow> = events.iter().map(OutboxRow::of).collect();
    serde_json::to_string(&rows).expect("outbox rows always serialize")
}

/// The stored form of an idempotency key: keys are scoped per customer, and the unique
/// column holds the customer and a SHA-256 of the key (a fixed 101 characters, whatever the
/// key's length).
fn scoped_key(customer: CustomerId, key: &IdempotencyKey) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "{customer}:{}",
        hex::encode(Sha256::digest(key.as_str().as_bytes()))
    )
}

fn orders(rows: Vec<(Json<String>,)>) -> Result<Vec<Order>, StoreError> {
    rows.iter()
        .map(|(Json(json),)| decode("order", json))
        .collect()
}

/// What a change of an order in a transaction came to.
pub(crate) enum Update {
    /// Written (not yet committed): the order as written.
    Done(Box<Order>),
    /// Refused, nothing written: roll back.
    Refused(OrderError),
}

#[async_trait]
impl OrderStore for SqlOrderStore {
    async fn create(&self, order: Order, events: Vec<DomainEvent>) -> Result<Created, OrderError> {
        let db = &self.db;
        let data = encode(&order);
        let inserted = db
            .retry("creating an order", || async {
                let mut tx = db.begin_write().await?;
                if !self.insert_in(&mut tx, &order, &data, &events).await? {
                    tx.rollback().await?;
                    return Ok(false);
                }
                tx.commit().await?;
                Ok(true)
            })
            .await?;
        if inserted {
            Ok(Created::New(order))
        } else {
            self.existing(&order).await
        }
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>, OrderError> {
        let statement = sql!("SELECT data FROM orders WHERE id = $1");
        let row: Option<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(
            sql(statement)
        )
        .bind(Uuid::from(id))
        .fetch_optional(c)
        .await)
        .map_err(|e| store_error("reading an order", e))?;
        Ok(row
            .map(|(Json(json),)| decode("order", &json))
            .transpose()?)
    }

    async fn by_idempotency_key(
        &self,
        customer: CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, OrderError> {
        let statement = sql!("SELECT data FROM orders WHERE idempotency_key = $1");
        let row: Option<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(
            sql(statement),
        )
        .bind(scoped_key(customer, key))
        .fetch_optional(c)
        .await)
        .map_err(|e| store_error("reading an order by key", e))?;
        Ok(row
            .map(|(Json(json),)| decode("order", &json))
            .transpose()?)
    }

    async fn update(
        &self,
        id: OrderId,
        expected_version: u64,
        patch: OrderPatch,
        events: Vec<DomainEvent>,
    ) -> Result<Order, OrderError> {
        let db = &self.db;
        let outcome = db
            .retry("updating an order", || async {
                let mut tx = db.begin_write().await?;
                let outcome = self
                    .update_in(&mut tx, id, expected_version, &patch, &events)
                    .await?;
                match outcome {
                    Update::Done(_) => tx.commit().await?,
                    Update::Refused(_) => tx.rollback().await?,
                }
                Ok(outcome)
            })
            .await?;
        match outcome {
            Update::Done(order) => Ok(*order),
            Update::Refused(e) => Err(e),
        }
    }

    async fn history(
        &self,
        customer: CustomerId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Page<Order, HistoryCursor>, OrderError> {
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        // Ids are UUID v7, whose order is creation order (on every dialect: MySQL and SQLite
        // keep them as lowercase hyphenated text, whose order is the UUIDs' own).
        let first_page =
            sql!("SELECT data FROM orders WHERE customer_id = $1 ORDER BY id DESC LIMIT $2");
        let next_page = sql!(
            "SELECT data FROM orders WHERE customer_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
        );
        let customer = Uuid::from(customer);
        let rows: Vec<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| match before {
            None =>
                sqlx::query_as(sql(first_page))
                    .bind(customer)
                    .bind(limit as i64 + 1)
                    .fetch_all(c)
                    .await,
            Some(before) =>
                sqlx::query_as(sql(next_page))
                    .bind(customer)
                    .bind(Uuid::from(before))
                    .bind(limit as i64 + 1)
                    .fetch_all(c)
                    .await,
        })
        .map_err(|e| store_error("reading order history", e))?;
        let items = orders(rows)?;
        Ok(Page::from_probe(items, limit, |o| o.id))
    }

    async fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Order>, OrderError> {
        let statement = sql!(
            "SELECT data FROM orders WHERE status = $1 AND created_at < $2 ORDER BY id LIMIT $3"
        );
        let rows: Vec<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(
            sql(statement)
        )
        .bind(OrderStatus::Pending.as_str())
        .bind(Time::of(cutoff))
        .bind(limit as i64)
        .fetch_all(c)
        .await)
        .map_err(|e| store_error("finding pending orders", e))?;
        Ok(orders(rows)?)
    }
}

#[async_trait]
impl Outbox for SqlOrderStore {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let statement = sql!(
            "SELECT seq, id, aggregatetype, aggregateid, type, payload FROM outbox ORDER BY seq LIMIT $1"
        );
        let rows: Vec<(i64, Uuid, String, String, String, Json<String>)> = native!(
            pool(self.db.pool()),
            |c, sql| sqlx::query_as(sql(statement))
                .bind(limit as i64)
                .fetch_all(c)
                .await
        )
        .map_err(|e| store_error("reading the outbox", e))?;
        rows.into_iter()
            .map(
                |(seq, id, aggregate_type, aggregate_id, event_type, Json(payload))| {
                    Ok(OutboxRecord::from_parts(
                        seq as u64,
                        EventId::from(id),
                        aggregate_type,
                        aggregate_id,
                        event_type,
                        payload,
                    ))
                },
            )
            .collect()
    }

    async fn acknowledge(&self, ids: &[EventId]) -> Result<(), StoreError> {
        for chunk in ids.chunks(500) {
            let sql = format!(
                "DELETE FROM outbox WHERE id IN ({})",
                self.db.dialect().placeholders(1, chunk.len())
            );
            native!(pool(self.db.writer()), |c, _sql| {
                let mut query = sqlx::query(AssertSqlSafe(sql));
                for id in chunk {
                    query = query.bind(Uuid::from(*id));
                }
                query.execute(c).await.map(drop)
            })
            .map_err(|e| store_error("acknowledging events", e))?;
        }
        Ok(())
    }
}
