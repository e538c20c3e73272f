//! The catalog on SQL: products as JSON documents, with a `variants` table that keeps SKUs
//! unique across products and resolves offers.

use std::collections::HashMap;

use async_trait::async_trait;
use ecommerce_core::catalog::{CatalogStore, Category, Offer, Page, Product, ProductCursor};
use ecommerce_core::error::CatalogError;
use ecommerce_core::id::{CategoryId, ProductId, Sku};
use sqlx::AssertSqlSafe;

use crate::db::{Db, decode, encode, is_unique_violation, native, store_error};
use crate::statement::sql;
use crate::types::{Json, Uuid};

/// The catalog in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlCatalog {
    db: Db,
}

impl SqlCatalog {
    /// The catalog in this database (migrated with [`Db::migrate`]).
    pub fn new(db: Db) -> Self {
        SqlCatalog { db }
    }
}

enum Upsert {
    Done,
    Taken { sku: Sku, owner: Option<ProductId> },
}

#[async_trait]
impl CatalogStore for SqlCatalog {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), category = %category.id))]
    async fn upsert_category(&self, category: Category) -> Result<(), CatalogError> {
        category.validate()?;
        let db = &self.db;
        let statement = sql!(
            "INSERT INTO categories (id, data) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            mysql: "INSERT INTO categories (id, data) VALUES (?, ?) ON DUPLICATE KEY UPDATE data = VALUES(data)",
        );
        native!(pool(db.writer()), |c, sql| sqlx::query(sql(statement))
            .bind(category.id.as_str())
            .bind(Json(encode(&category)))
            .execute(c)
            .await
            .map(|done| done.rows_affected()))
        .map_err(|e| store_error("upserting a category", e))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend()))]
    async fn categories(&self) -> Result<Vec<Category>, CatalogError> {
        let rows: Vec<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(
            "SELECT data FROM categories ORDER BY id"
        )
        .fetch_all(c)
        .await)
        .map_err(|e| store_error("listing categories", e))?;
        Ok(rows
            .iter()
            .map(|(Json(json),)| decode("category", json))
            .collect::<Result<_, _>>()?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), product = %product.id, skus = product.variants.len()))]
    async fn upsert_product(&self, product: Product) -> Result<(), CatalogError> {
        product.validate()?;
        let db = &self.db;
        let id = Uuid::from(product.id);
        let data = Json(encode(&product));
        let published = i64::from(product.published);
        let skus: Vec<String> = product.variants.iter().map(|v| v.sku.to_string()).collect();
        let outcome = db
            .retry("upserting a product", || async {
                let mut tx = db.begin_write().await?;
                for sku in &skus {
                    let statement = sql!("SELECT product_id FROM variants WHERE sku = $1 FOR UPDATE");
                    let owner: Option<(Uuid,)> = native!(tx(&mut tx), |c, sql| sqlx::query_as(sql(statement))
                    .bind(sku)
                    .fetch_optional(c)
                    .await)?;
                    if let Some((owner,)) = owner.filter(|(owner,)| owner != &id) {
                        return Ok(Upsert::Taken {
                            sku: Sku::new(sku.clone()).expect("stored skus are valid"),
                            owner: Some(owner.into()),
                        });
                    }
                }
                let statement = sql!(
                    "INSERT INTO products (id, category, published, data) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET category = excluded.category, published = excluded.published, data = excluded.data",
                    mysql: "INSERT INTO products (id, category, published, data) VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE category = VALUES(category), published = VALUES(published), data = VALUES(data)",
                );
                native!(tx(&mut tx), |c, sql| sqlx::query(sql(statement))
                    .bind(id)
                    .bind(product.category.as_str())
                    .bind(published)
                    .bind(&data)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected()))?;
                let statement = sql!("DELETE FROM variants WHERE product_id = $1");
                native!(tx(&mut tx), |c, sql| sqlx::query(sql(statement))
                    .bind(id)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected()))?;
                for sku in &skus {
                    let statement = sql!("INSERT INTO variants (sku, product_id) VALUES ($1, $2)");
                    let inserted = native!(tx(&mut tx), |c, sql| sqlx::query(sql(statement))
                    .bind(sku)
                    .bind(id)
                    .execute(c)
                    .await
                    .map(|done| done.rows_affected()));
                    match inserted {
                        Ok(_) => {}
                        // A concurrent upsert took the SKU after our check.
                        Err(e) if is_unique_violation(&e) => {
                            tx.rollback().await?;
                            return Ok(Upsert::Taken {
                                sku: Sku::new(sku.clone()).expect("stored skus are valid"),
                                owner: None,
                            });
                        }
                        Err(e) => return Err(e),
                    }
                }
                tx.commit().await?;
                Ok(Upsert::Done)
            })
            .await?;
        match outcome {
            Upsert::Done => Ok(()),
            Upsert::Taken { sku, owner } => {
                let owner = match owner {
                    Some(owner) => owner,
                    None => self.owner_of(&sku).await?.unwrap_or(product.id),
                };
                Err(CatalogError::DuplicateSku { sku, owner })
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), product = %id))]
    async fn product(&self, id: ProductId) -> Result<Option<Product>, CatalogError> {
        let statement = sql!("SELECT data FROM products WHERE id = $1");
        let row: Option<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(
            sql(statement)
        )
        .bind(Uuid::from(id))
        .fetch_optional(c)
        .await)
        .map_err(|e| store_error("reading a product", e))?;
        Ok(row
            .map(|(Json(json),)| decode("product", &json))
            .transpose()?)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), category = category.as_ref().map(CategoryId::as_str), limit = limit))]
    async fn list_products(
        &self,
        category: Option<CategoryId>,
        after: Option<ProductCursor>,
        limit: usize,
    ) -> Result<Page<Product, ProductCursor>, CatalogError> {
        let limit = limit.clamp(1, 1_000);
        // Product ids are UUIDs, in the UUIDs' own order on every dialect.
        let first_page = sql!(
            "SELECT data FROM products WHERE published = 1 AND (category = $1 OR $2 = 0) ORDER BY id LIMIT $3"
        );
        let next_page = sql!(
            "SELECT data FROM products WHERE published = 1 AND (category = $1 OR $2 = 0) AND id > $3 ORDER BY id LIMIT $4"
        );
        let category_id = category.as_ref().map_or("", |c| c.as_str());
        let filtered = i64::from(category.is_some());
        let rows: Vec<(Json<String>,)> = native!(pool(self.db.pool()), |c, sql| match after {
            None =>
                sqlx::query_as(sql(first_page))
                    .bind(category_id)
                    .bind(filtered)
                    .bind(limit as i64 + 1)
                    .fetch_all(c)
                    .await,
            Some(after) =>
                sqlx::query_as(sql(next_page))
                    .bind(category_id)
                    .bind(filtered)
                    .bind(Uuid::from(after))
                    .bind(limit as i64 + 1)
                    .fetch_all(c)
                    .await,
        })
        .map_err(|e| store_error("listing products", e))?;
        let items: Vec<Product> = rows
            .iter()
            .map(|(Json(json),)| decode("product", json))
            .collect::<Result<_, _>>()?;
        Ok(Page::from_probe(items, limit, |p| p.id))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), skus = skus.len()))]
    async fn offers(&self, skus: &[Sku]) -> Result<HashMap<Sku, Offer>, CatalogError> {
        if skus.is_empty() {
            return Ok(HashMap::new());
        }
        let dialect = self.db.dialect();
        let sql = format!(
            "SELECT v.sku, p.data FROM variants v JOIN products p ON p.id = v.product_id WHERE v.sku IN ({})",
            dialect.placeholders(1, skus.len())
        );
        let rows: Vec<(String, Json<String>)> = native!(pool(self.db.pool()), |c, _sql| {
            let mut query = sqlx::query_as(AssertSqlSafe(sql));
            for sku in skus {
                query = query.bind(sku.as_str());
            }
            query.fetch_all(c).await
        })
        .map_err(|e| store_error("reading offers", e))?;
        let mut offers = HashMap::with_capacity(rows.len());
        for (sku, Json(json)) in rows {
            let product: Product = decode("product", &json)?;
            let sku = Sku::new(sku).map_err(|e| {
                CatalogError::Store(ecommerce_core::error::StoreError::Corrupt {
                    message: e.to_string(),
                })
            })?;
            if let Some(variant) = product.variant(&sku) {
                offers.insert(sku, product.offer(variant));
            }
        }
        Ok(offers)
    }
}

impl SqlCatalog {
    async fn owner_of(&self, sku: &Sku) -> Result<Option<ProductId>, CatalogError> {
        let statement = sql!("SELECT product_id FROM variants WHERE sku = $1");
        let row: Option<(Uuid,)> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
            statement
        ),)
        .bind(sku.as_str())
        .fetch_optional(c)
        .await)
        .map_err(|e| store_error("reading a sku owner", e))?;
        Ok(row.map(|(id,)| id.into()))
    }
}
