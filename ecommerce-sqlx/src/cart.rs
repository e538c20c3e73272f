//! Persistent carts on SQL: one row per cart, the cart as a JSON document, compare-and-set
//! on the version column. Guest carts expire: one unchanged for longer than the guest time
//! to live reads as absent (and is deleted then), and
//! [`SqlCartStore::purge_expired_guest_carts`] sweeps the ones nobody reads again.

use std::time::Duration;

use crate::db::{Db, On, decode, encode, native, store_error};
use crate::statement::sql;
use crate::types::{Json, Time, Uuid};
use async_trait::async_trait;
use ecommerce_core::cart::{Cart, CartStore};
use ecommerce_core::error::CartError;
use ecommerce_core::id::CartId;

/// Carts in a SQL database: customers' persistent carts, which never expire, and guest
/// carts, which expire a week after their last change unless set otherwise
/// ([`SqlCartStore::with_guest_ttl`]).
#[derive(Debug, Clone)]
pub struct SqlCartStore {
    db: Db,
    guest_ttl: Duration,
}

/// How long a guest cart lives after its last change, by default: a week.
const DEFAULT_GUEST_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

impl SqlCartStore {
    /// Carts in this database (migrated with [`Db::migrate`]); guest carts expire a week
    /// after their last change.
    pub fn new(db: Db) -> Self {
        SqlCartStore {
            db,
            guest_ttl: DEFAULT_GUEST_TTL,
        }
    }

    /// Sets how long a guest cart lives after its last change.
    pub fn with_guest_ttl(mut self, ttl: Duration) -> Self {
        self.guest_ttl = ttl;
        self
    }

    /// The update time before which a guest cart has expired.
    fn cutoff(&self) -> Time {
        // A TTL that reaches back before 1970 expires nothing (every cart is newer).
        let now = chrono::Utc::now();
        let ttl = chrono::TimeDelta::from_std(self.guest_ttl).unwrap_or(chrono::TimeDelta::MAX);
        let cutoff = now.checked_sub_signed(ttl).unwrap_or_default();
        Time::of(cutoff.max(chrono::DateTime::UNIX_EPOCH))
    }

    /// Deletes up to `limit` expired guest carts; returns how many. Run it from time to time
    /// (expired carts already read as absent; this gives their rows back).
    ///
    /// # Errors
    /// [`CartError::Store`].
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), limit = limit))]
    pub async fn purge_expired_guest_carts(&self, limit: usize) -> Result<usize, CartError> {
        let cutoff = self.cutoff();
        let statement = sql!(
            "SELECT id FROM carts WHERE guest = 1 AND updated_at < $1 ORDER BY updated_at LIMIT $2"
        );
        let rows: Vec<(Uuid,)> = native!(pool(self.db.pool()), |c, sql| {
            sqlx::query_as(sql(statement))
                .bind(cutoff)
                .bind(limit as i64)
                .fetch_all(c)
                .await
        })
        .map_err(|e| store_error("finding expired guest carts", e))?;
        let mut purged = 0;
        for (id,) in rows {
            purged += self.delete_if_expired(id, cutoff).await?;
        }
        Ok(purged)
    }

    /// Deletes a guest cart if it is still expired (a save since makes it live again).
    async fn delete_if_expired(&self, id: Uuid, cutoff: Time) -> Result<usize, CartError> {
        let statement = sql!("DELETE FROM carts WHERE id = $1 AND guest = 1 AND updated_at < $2");
        let deleted = native!(pool(self.db.writer()), |c, sql| sqlx::query(sql(statement))
            .bind(id)
            .bind(cutoff)
            .execute(c)
            .await
            .map(|done| done.rows_affected()))
        .map_err(|e| store_error("deleting an expired guest cart", e))?;
        Ok(deleted as usize)
    }

    /// Writes `stored` if the stored version is `cart.version` (absent for 0), in one
    /// statement `on` a transaction or the writer; returns whether it did.
    pub(crate) async fn write(
        &self,
        on: On<'_>,
        cart: &Cart,
        stored: &Cart,
    ) -> Result<bool, sqlx::Error> {
        let data = Json(encode(stored));
        let done = if cart.version == 0 {
            let statement = sql!(
                "INSERT INTO carts (id, version, data, updated_at, guest) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
                mysql: "INSERT IGNORE INTO carts (id, version, data, updated_at, guest) VALUES (?, ?, ?, ?, ?)",
            );
            native!(on(on), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(Uuid::from(cart.id))
                    .bind(stored.version as i64)
                    .bind(data)
                    .bind(Time::of(stored.updated_at))
                    .bind(i64::from(stored.customer.is_none()))
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?
        } else {
            let statement = sql!(
                "UPDATE carts SET version = $1, data = $2, updated_at = $3 WHERE id = $4 AND version = $5"
            );
            native!(on(on), |c, sql| {
                sqlx::query(sql(statement))
                    .bind(stored.version as i64)
                    .bind(data)
                    .bind(Time::of(stored.updated_at))
                    .bind(Uuid::from(cart.id))
                    .bind(cart.version as i64)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected())
            })?
        };
        Ok(done == 1)
    }
}

#[async_trait]
impl CartStore for SqlCartStore {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), cart = %id))]
    async fn load(&self, id: CartId) -> Result<Option<Cart>, CartError> {
        let statement = sql!("SELECT data, guest, updated_at FROM carts WHERE id = $1");
        let row: Option<(Json<String>, i64, Time)> =
            native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
                statement
            ))
            .bind(Uuid::from(id))
            .fetch_optional(c)
            .await)
            .map_err(|e| store_error("loading a cart", e))?;
        match row {
            Some((_, guest, updated_at)) if guest == 1 && updated_at < self.cutoff() => {
                self.delete_if_expired(id.into(), self.cutoff()).await?;
                Ok(None)
            }
            Some((Json(json), _, _)) => Ok(Some(decode("cart", &json)?)),
            None => Ok(None),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), cart = %cart.id))]
    async fn save(&self, cart: &Cart) -> Result<Cart, CartError> {
        let stored = cart.next_version();
        let written = self
            .db
            // One statement: atomic on its own, no transaction around it.
            .retry("saving a cart", || {
                self.write(On::Pool(self.db.writer()), cart, &stored)
            })
            .await?;
        if written {
            Ok(stored)
        } else {
            Err(CartError::VersionConflict { cart: cart.id })
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), cart = %id))]
    async fn delete(&self, id: CartId) -> Result<(), CartError> {
        let statement = sql!("DELETE FROM carts WHERE id = $1");
        native!(pool(self.db.writer()), |c, sql| sqlx::query(sql(statement))
            .bind(Uuid::from(id))
            .execute(c)
            .await
            .map(drop))
        .map_err(|e| store_error("deleting a cart", e))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), cart = %merged.id, consumed = %consumed))]
    async fn save_merged(
        &self,
        merged: &Cart,
        consumed: CartId,
        consumed_version: u64,
    ) -> Result<Cart, CartError> {
        let db = &self.db;
        let stored = merged.next_version();
        let written = db
            .retry("merging carts", || async {
                let mut tx = db.begin_write().await?;
                let statement = sql!("DELETE FROM carts WHERE id = $1 AND version = $2");
                let deleted = native!(tx(&mut tx), |c, sql| sqlx::query(sql(statement))
                    .bind(Uuid::from(consumed))
                    .bind(consumed_version as i64)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected()))?;
                if deleted == 0 && consumed_version != 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if deleted == 0 {
                    let statement = sql!("SELECT version FROM carts WHERE id = $1");
                    let exists: Option<(i64,)> =
                        native!(tx(&mut tx), |c, sql| sqlx::query_as(sql(statement))
                            .bind(Uuid::from(consumed))
                            .fetch_optional(c)
                            .await)?;
                    if exists.is_some() {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                if !self.write(On::Tx(&mut tx), merged, &stored).await? {
                    tx.rollback().await?;
                    return Ok(false);
                }
                tx.commit().await?;
                Ok(true)
            })
            .await?;
        if written {
            Ok(stored)
        } else {
            Err(CartError::VersionConflict { cart: merged.id })
        }
    }
}
