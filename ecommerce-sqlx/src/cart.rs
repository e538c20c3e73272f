//! Persistent carts on SQL: one row per cart, the cart as a JSON document, compare-and-set
//! on the version column.

use async_trait::async_trait;
use ecommerce_core::cart::{Cart, CartStore};
use ecommerce_core::error::CartError;
use ecommerce_core::id::CartId;
use sqlx::{Any, Transaction};

use crate::db::{Db, Dialect, decode, encode, millis, store_error};

/// Carts in a SQL database: the persistent cart of the original design (carts never expire
/// here; put an expiring active-cart store in front for guests).
#[derive(Debug, Clone)]
pub struct SqlCartStore {
    db: Db,
}

impl SqlCartStore {
    /// Carts in this database (migrated with [`Db::migrate`]).
    pub fn new(db: Db) -> Self {
        SqlCartStore { db }
    }

    /// Writes `cart` if the stored version is `cart.version` (absent for 0); returns whether
    /// it did.
    async fn write(
        &self,
        tx: &mut Transaction<'static, Any>,
        cart: &Cart,
        stored: &Cart,
    ) -> Result<bool, sqlx::Error> {
        let db = &self.db;
        let data = encode(stored);
        let done = if cart.version == 0 {
            let sql = match db.dialect() {
                Dialect::MySql => {
                    "INSERT IGNORE INTO carts (id, version, data, updated_at) VALUES (?, ?, ?, ?)"
                }
                Dialect::Postgres | Dialect::Sqlite => {
                    "INSERT INTO carts (id, version, data, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING"
                }
            };
            sqlx::query(sql)
                .bind(cart.id.to_string())
                .bind(stored.version as i64)
                .bind(data)
                .bind(millis(stored.updated_at))
                .execute(&mut **tx)
                .await?
        } else {
            sqlx::query(db.sql(
                "UPDATE carts SET version = $1, data = $2, updated_at = $3 WHERE id = $4 AND version = $5",
            ))
            .bind(stored.version as i64)
            .bind(data)
            .bind(millis(stored.updated_at))
            .bind(cart.id.to_string())
            .bind(cart.version as i64)
            .execute(&mut **tx)
            .await?
        };
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl CartStore for SqlCartStore {
    async fn load(&self, id: CartId) -> Result<Option<Cart>, CartError> {
        let row: Option<(String,)> =
            sqlx::query_as(self.db.sql("SELECT data FROM carts WHERE id = $1"))
                .bind(id.to_string())
                .fetch_optional(self.db.pool())
                .await
                .map_err(|e| store_error("loading a cart", e))?;
        Ok(row.map(|(json,)| decode("cart", &json)).transpose()?)
    }

    async fn save(&self, cart: &Cart) -> Result<Cart, CartError> {
        let stored = cart.next_version();
        let written = self
            .db
            .retry("saving a cart", || async {
                let mut tx = self.db.begin_write().await?;
                let written = self.write(&mut tx, cart, &stored).await?;
                tx.commit().await?;
                Ok(written)
            })
            .await?;
        if written {
            Ok(stored)
        } else {
            Err(CartError::VersionConflict { cart: cart.id })
        }
    }

    async fn delete(&self, id: CartId) -> Result<(), CartError> {
        sqlx::query(self.db.sql("DELETE FROM carts WHERE id = $1"))
            .bind(id.to_string())
            .execute(self.db.pool())
            .await
            .map_err(|e| store_error("deleting a cart", e))?;
        Ok(())
    }

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
                let deleted =
                    sqlx::query(db.sql("DELETE FROM carts WHERE id = $1 AND version = $2"))
                        .bind(consumed.to_string())
                        .bind(consumed_version as i64)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                if deleted == 0 && consumed_version != 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if deleted == 0 {
                    let exists: Option<(i64,)> =
                        sqlx::query_as(db.sql("SELECT version FROM carts WHERE id = $1"))
                            .bind(consumed.to_string())
                            .fetch_optional(&mut *tx)
                            .await?;
                    if exists.is_some() {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                }
                if !self.write(&mut tx, merged, &stored).await? {
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
