use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::catalog::{CatalogStore, Category, Offer, Page, Product, ProductCursor};
use crate::error::CatalogError;
use crate::id::{CategoryId, ProductId, Sku};

#[derive(Debug, Default)]
struct State {
    categories: BTreeMap<CategoryId, Category>,
    products: BTreeMap<ProductId, Product>,
    sku_owner: HashMap<Sku, ProductId>,
}

/// The catalog in memory.
#[derive(Debug, Default)]
pub struct MemoryCatalog {
    state: Mutex<State>,
}

impl MemoryCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CatalogStore for MemoryCatalog {
    async fn upsert_category(&self, category: Category) -> Result<(), CatalogError> {
        category.validate()?;
        lock(&self.state)
            .categories
            .insert(category.id.clone(), category);
        Ok(())
    }

    async fn categories(&self) -> Result<Vec<Category>, CatalogError> {
        Ok(lock(&self.state).categories.values().cloned().collect())
    }

    async fn upsert_product(&self, product: Product) -> Result<(), CatalogError> {
        product.validate()?;
        let mut state = lock(&self.state);
        for v in &product.variants {
            if let Some(owner) = state.sku_owner.get(&v.sku) {
                if *owner != product.id {
                    return Err(CatalogError::DuplicateSku {
                        sku: v.sku.clone(),
                        owner: *owner,
                    });
                }
            }
        }
        if let Some(old) = state.products.get(&product.id).cloned() {
            for v in &old.variants {
                state.sku_owner.remove(&v.sku);
            }
        }
        for v in &product.variants {
            state.sku_owner.insert(v.sku.clone(), product.id);
        }
        state.products.insert(product.id, product);
        Ok(())
    }

    async fn product(&self, id: ProductId) -> Result<Option<Product>, CatalogError> {
        Ok(lock(&self.state).products.get(&id).cloned())
    }

    async fn list_products(
        &self,
        category: Option<CategoryId>,
        after: Option<ProductCursor>,
        limit: usize,
    ) -> Result<Page<Product, ProductCursor>, CatalogError> {
        let state = lock(&self.state);
        let start = match after {
            Some(id) => std::ops::Bound::Excluded(id),
            None => std::ops::Bound::Unbounded,
        };
        let items: Vec<Product> = state
            .products
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, p)| p)
            .filter(|p| p.published && category.as_ref().is_none_or(|c| &p.category == c))
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        Ok(Page::from_probe(items, limit, |p| p.id))
    }

    async fn offers(&self, skus: &[Sku]) -> Result<HashMap<Sku, Offer>, CatalogError> {
        let state = lock(&self.state);
        Ok(skus
            .iter()
            .filter_map(|sku| {
                let product = state.products.get(state.sku_owner.get(sku)?)?;
                let variant = product.variant(sku)?;
                Some((sku.clone(), product.offer(variant)))
            })
            .collect())
    }
}
