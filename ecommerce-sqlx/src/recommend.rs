//! Co-purchase counts on SQL: `recorded_orders` makes counting an order idempotent, and each
//! pair is an upserted counter, written in SKU order so concurrent orders lock rows in the
//! same order.

use async_trait::async_trait;
use ecommerce_core::error::StoreError;
use ecommerce_core::id::{OrderId, Sku};
use ecommerce_core::recommend::{
    AlsoBought, MAX_RECOMMENDATIONS, RecommendationStore, distinct_skus,
};

use crate::db::{Db, native, store_error};
use crate::statement::sql;
use crate::types::Uuid;

/// Co-purchase counts in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlRecommendations {
    db: Db,
}

impl SqlRecommendations {
    /// The counts in this database (migrated with [`Db::migrate`]).
    pub fn new(db: Db) -> Self {
        SqlRecommendations { db }
    }
}

#[async_trait]
impl RecommendationStore for SqlRecommendations {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), order = %order, skus = skus.len()))]
    async fn record_order(&self, order: OrderId, skus: &[Sku]) -> Result<bool, StoreError> {
        let skus = distinct_skus(skus);
        if skus.len() < 2 {
            // No pair to count: nothing to store, no round trip.
            return Ok(false);
        }
        let db = &self.db;
        let claim = sql!(
            "INSERT INTO recorded_orders (order_id) VALUES ($1) ON CONFLICT DO NOTHING",
            mysql: "INSERT IGNORE INTO recorded_orders (order_id) VALUES (?)",
        );
        let bump = sql!(
            "INSERT INTO co_purchases (sku, other, count) VALUES ($1, $2, 1) ON CONFLICT (sku, other) DO UPDATE SET count = co_purchases.count + 1",
            mysql: "INSERT INTO co_purchases (sku, other, `count`) VALUES (?, ?, 1) ON DUPLICATE KEY UPDATE `count` = `count` + 1",
        );
        db.retry("recording co-purchases", || async {
            let mut tx = db.begin_write().await?;
            let claimed = native!(tx(&mut tx), |c, sql| sqlx::query(sql(claim))
                .bind(Uuid::from(order))
                .execute(c)
                .await
                .map(|done| done.rows_affected()))?
                == 1;
            if !claimed {
                tx.rollback().await?;
                return Ok(false);
            }
            for a in &skus {
                for b in &skus {
                    if a != b {
                        native!(tx(&mut tx), |c, sql| sqlx::query(sql(bump))
                            .bind(a.as_str())
                            .bind(b.as_str())
                            .execute(c)
                            .await
                            .map(|done| done.rows_affected()))?;
                    }
                }
            }
            tx.commit().await?;
            Ok(true)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), sku = %sku, k = k))]
    async fn also_bought(&self, sku: &Sku, k: usize) -> Result<Vec<AlsoBought>, StoreError> {
        let statement = sql!(
            "SELECT other, count FROM co_purchases WHERE sku = $1 ORDER BY count DESC, other LIMIT $2",
            mysql: "SELECT other, `count` FROM co_purchases WHERE sku = ? ORDER BY `count` DESC, other LIMIT ?",
        );
        let rows: Vec<(String, i64)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
            statement
        ))
        .bind(sku.as_str())
        .bind(k.min(MAX_RECOMMENDATIONS) as i64)
        .fetch_all(c)
        .await)
        .map_err(|e| store_error("reading co-purchases", e))?;
        rows.into_iter()
            .map(|(other, count)| {
                Ok(AlsoBought {
                    sku: Sku::new(other).map_err(|e| StoreError::Corrupt {
                        message: e.to_string(),
                    })?,
                    count: u64::try_from(count).unwrap_or(0),
                })
            })
            .collect()
    }
}
