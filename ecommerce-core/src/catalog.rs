//! The catalog: products, their variants (one per [`Sku`]) and categories.
//!
//! The catalog is the pricing authority: a cart line takes its price from
//! [`CatalogStore::offers`], never from the caller. [`Product::validate`] holds the rules every
//! store enforces before writing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{CatalogError, ValidationError};
use crate::id::{CategoryId, ProductId, Sku};
use crate::money::Money;

/// Longest product title, in characters.
pub const MAX_TITLE_LEN: usize = 200;
/// Longest product description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 10_000;
/// Longest brand, category name, attribute name or attribute value, in characters.
pub const MAX_LABEL_LEN: usize = 100;
/// Most variants per product.
pub const MAX_VARIANTS: usize = 100;
/// Most attributes (or options) per product or variant.
pub const MAX_ATTRIBUTES: usize = 50;

/// A category of the catalog tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Category {
    /// The slug.
    pub id: CategoryId,
    /// Display name.
    pub name: String,
    /// Parent category, if any.
    pub parent: Option<CategoryId>,
}

/// One purchasable variant of a product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Variant {
    /// The SKU, unique across the catalog.
    pub sku: Sku,
    /// Options that tell variants apart (`size: M`, `color: red`).
    pub options: BTreeMap<String, String>,
    /// The price, in the product's currency.
    pub price: Money,
    /// Whether this variant is for sale (the product must be published too).
    pub published: bool,
    /// How it is taxed and shipped.
    #[serde(default)]
    pub profile: ItemProfile,
}

/// How an item is taxed and shipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default)]
pub struct ItemProfile {
    /// Its tax class (default `standard`).
    pub tax_class: crate::tax::TaxClass,
    /// Weight of one unit, in grams.
    pub weight_grams: u32,
    /// Its shipping class (`bulky`, `frozen`...), if any.
    pub shipping_class: Option<String>,
}

/// A product as shoppers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Product {
    /// Id.
    pub id: ProductId,
    /// Title.
    pub title: String,
    /// Description (plain text).
    pub description: String,
    /// Brand.
    pub brand: String,
    /// Category.
    pub category: CategoryId,
    /// Free-form attributes (`material: cotton`).
    pub attributes: BTreeMap<String, String>,
    /// Variants; at least one.
    pub variants: Vec<Variant>,
    /// Whether the product is for sale.
    pub published: bool,
    /// When the product was first created.
    pub created_at: DateTime<Utc>,
}

fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    required: bool,
) -> Result<(), ValidationError> {
    if required && value.trim().is_empty() {
        return Err(ValidationError::Empty { field });
    }
    if value.chars().count() > max {
        return Err(ValidationError::TooLong { field, max });
    }
    refuse_nul(field, value)
}

/// Refuses a NUL character: no text column of PostgreSQL's (`TEXT`, `JSONB`) can hold one,
/// so no backend takes it.
pub(crate) fn refuse_nul(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if value.contains('\0') {
        return Err(ValidationError::Invalid {
            field,
            reason: "contains a NUL character".into(),
        });
    }
    Ok(())
}

fn check_pairs(
    field: &'static str,
    pairs: &BTreeMap<String, String>,
) -> Result<(), ValidationError> {
    if pairs.len() > MAX_ATTRIBUTES {
        return Err(ValidationError::Invalid {
            field,
            reason: format!("at most {MAX_ATTRIBUTES} entries"),
        });
    }
    for (k, v) in pairs {
        check_text(field, k, MAX_LABEL_LEN, true)?;
        check_text(field, v, MAX_LABEL_LEN, false)?;
    }
    Ok(())
}

impl Variant {
    /// A published variant with no options and the default [`ItemProfile`].
    pub fn new(sku: Sku, price: Money) -> Self {
        Variant {
            sku,
            options: BTreeMap::new(),
            price,
            published: true,
            profile: ItemProfile::default(),
        }
    }

    /// Adds an option that tells this variant apart (`size: M`).
    pub fn with_option(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.insert(name.into(), value.into());
        self
    }

    /// Sets whether this variant is for sale.
    pub fn with_published(mut self, published: bool) -> Self {
        self.published = published;
        self
    }

    /// Sets how it is taxed and shipped.
    pub fn with_profile(mut self, profile: ItemProfile) -> Self {
        self.profile = profile;
        self
    }
}

impl Product {
    /// A published product created now, with no description, brand, attributes or variants
    /// (it needs at least one variant to be valid).
    pub fn new(id: ProductId, title: impl Into<String>, category: CategoryId) -> Self {
        Product {
            id,
            title: title.into(),
            description: String::new(),
            brand: String::new(),
            category,
            attributes: BTreeMap::new(),
            variants: Vec::new(),
            published: true,
            created_at: Utc::now(),
        }
    }

    /// Sets the description (plain text).
    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Sets the brand.
    pub fn with_brand(mut self, brand: impl Into<String>) -> Self {
        self.brand = brand.into();
        self
    }

    /// Adds a free-form attribute (`material: cotton`).
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Sets the variants, replacing any there were.
    pub fn with_variants(mut self, variants: impl IntoIterator<Item = Variant>) -> Self {
        self.variants = variants.into_iter().collect();
        self
    }

    /// Sets whether the product is for sale.
    pub fn with_published(mut self, published: bool) -> Self {
        self.published = published;
        self
    }

    /// Sets when the product was first created.
    pub fn with_created_at(mut self, created_at: DateTime<Utc>) -> Self {
        self.created_at = created_at;
        self
    }

    /// Checks the rules every store enforces before writing a product: non-empty title, text
    /// lengths, no NUL character in any text, 1 to [`MAX_VARIANTS`] variants with distinct
    /// SKUs, non-negative prices, one currency for all variants.
    ///
    /// # Errors
    /// The first broken rule.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_text("title", &self.title, MAX_TITLE_LEN, true)?;
        check_text("description", &self.description, MAX_DESCRIPTION_LEN, false)?;
        check_text("brand", &self.brand, MAX_LABEL_LEN, false)?;
        check_pairs("attributes", &self.attributes)?;
        if self.variants.is_empty() {
            return Err(ValidationError::Invalid {
                field: "variants",
                reason: "a product needs at least one variant".into(),
            });
        }
        if self.variants.len() > MAX_VARIANTS {
            return Err(ValidationError::Invalid {
                field: "variants",
                reason: format!("at most {MAX_VARIANTS} variants"),
            });
        }
        let currency = self.variants[0].price.currency;
        let mut seen = HashSet::new();
        for v in &self.variants {
            if !seen.insert(&v.sku) {
                return Err(ValidationError::Invalid {
                    field: "variants",
                    reason: format!("sku {} appears twice", v.sku),
                });
            }
            if v.price.is_negative() {
                return Err(ValidationError::Negative { field: "price" });
            }
            if v.price.currency != currency {
                return Err(ValidationError::Invalid {
                    field: "price",
                    reason: "all variants of a product share one currency".into(),
                });
            }
            check_pairs("options", &v.options)?;
        }
        Ok(())
    }

    /// The variant with this SKU.
    pub fn variant(&self, sku: &Sku) -> Option<&Variant> {
        self.variants.iter().find(|v| &v.sku == sku)
    }

    /// The offer of one variant, as carts and checkout see it.
    pub fn offer(&self, variant: &Variant) -> Offer {
        let mut title = self.title.clone();
        if !variant.options.is_empty() {
            let opts: Vec<&str> = variant.options.values().map(String::as_str).collect();
            title = format!("{title} ({})", opts.join(", "));
        }
        Offer {
            sku: variant.sku.clone(),
            product: self.id,
            title,
            price: variant.price,
            available: self.published && variant.published,
            profile: variant.profile.clone(),
        }
    }

    /// The lowest price over the product's variants.
    pub fn min_price(&self) -> Option<Money> {
        self.variants
            .iter()
            .map(|v| v.price)
            .min_by(|a, b| a.amount.cmp(&b.amount))
    }
}

impl Category {
    /// A top-level category.
    pub fn new(id: CategoryId, name: impl Into<String>) -> Self {
        Category {
            id,
            name: name.into(),
            parent: None,
        }
    }

    /// Sets the parent category.
    pub fn with_parent(mut self, parent: CategoryId) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Checks the category's name.
    ///
    /// # Errors
    /// An empty or overlong name, or one with a NUL character.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_text("category name", &self.name, MAX_LABEL_LEN, true)
    }
}

/// What a cart or checkout needs to know about one SKU: the authoritative price and whether it
/// is for sale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    /// The SKU.
    pub sku: Sku,
    /// The product it belongs to.
    pub product: ProductId,
    /// Display title (product title with the variant's options).
    pub title: String,
    /// Current catalog price.
    pub price: Money,
    /// Whether the product and the variant are both published.
    pub available: bool,
    /// How it is taxed and shipped.
    #[serde(default)]
    pub profile: ItemProfile,
}

/// A page of a listing, with the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T, C> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass this to get the next page; `None` on the last page.
    pub next: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page from a query that fetched up to `limit + 1` items: if the extra one came, there
    /// is a next page, which continues after the last item kept.
    pub fn from_probe(mut items: Vec<T>, limit: usize, cursor: impl Fn(&T) -> C) -> Self {
        let next = if items.len() > limit {
            items.truncate(limit);
            items.last().map(cursor)
        } else {
            None
        };
        Page { items, next }
    }
}

/// Where a product listing continues: after this product (listings are ordered by id).
pub type ProductCursor = ProductId;

/// The catalog's storage.
///
/// Every implementation must:
/// - validate with [`Product::validate`] / [`Category::validate`] before writing, and write
///   nothing on error;
/// - keep SKUs unique across products ([`CatalogError::DuplicateSku`]);
/// - make `upsert_product` atomic: readers see the old product or the new one, never a mix.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait CatalogStore: Debug + Send + Sync + 'static {
    /// Creates or replaces a category.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`], [`CatalogError::Store`].
    async fn upsert_category(&self, category: Category) -> Result<(), CatalogError>;

    /// Every category, ordered by id.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    async fn categories(&self) -> Result<Vec<Category>, CatalogError>;

    /// Creates or replaces a product with all its variants.
    ///
    /// # Errors
    /// [`CatalogError::Invalid`], [`CatalogError::DuplicateSku`], [`CatalogError::Store`].
    async fn upsert_product(&self, product: Product) -> Result<(), CatalogError>;

    /// The product, or `Ok(None)`.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    async fn product(&self, id: ProductId) -> Result<Option<Product>, CatalogError>;

    /// Published products, optionally of one category, ordered by id, `limit` at most, after
    /// the cursor.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    async fn list_products(
        &self,
        category: Option<CategoryId>,
        after: Option<ProductCursor>,
        limit: usize,
    ) -> Result<Page<Product, ProductCursor>, CatalogError>;

    /// The offers of these SKUs; unknown SKUs are absent from the map.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    async fn offers(&self, skus: &[Sku]) -> Result<HashMap<Sku, Offer>, CatalogError>;

    /// Since when reads have been served from stale data because the backing store fails, or
    /// `None` when they are fresh. Only caching stores ([`crate::catalog_cache::CachingCatalog`])
    /// are ever stale.
    fn stale_since(&self) -> Option<DateTime<Utc>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;

    #[test]
    fn the_constructors_build_what_the_literals_built() {
        let sku = Sku::new("TEE-M").unwrap();
        let price = Money::from_minor(1_999, Currency::USD);
        let variant = Variant {
            sku: sku.clone(),
            options: BTreeMap::from([("size".to_owned(), "M".to_owned())]),
            price,
            published: true,
            profile: ItemProfile::default(),
        };
        assert_eq!(
            Variant::new(sku.clone(), price).with_option("size", "M"),
            variant
        );
        let hidden = Variant {
            published: false,
            profile: ItemProfile {
                weight_grams: 180,
                ..ItemProfile::default()
            },
            ..variant.clone()
        };
        assert_eq!(
            Variant::new(sku, price)
                .with_option("size", "M")
                .with_published(false)
                .with_profile(ItemProfile {
                    weight_grams: 180,
                    ..ItemProfile::default()
                }),
            hidden
        );

        let id = ProductId::new();
        let apparel = CategoryId::new("apparel").unwrap();
        let created_at = Utc::now();
        let product = Product {
            id,
            title: "Tee".into(),
            description: "Soft.".into(),
            brand: "Acme".into(),
            category: apparel.clone(),
            attributes: BTreeMap::from([("material".to_owned(), "cotton".to_owned())]),
            variants: vec![variant.clone(), hidden.clone()],
            published: false,
            created_at,
        };
        let built = Product::new(id, "Tee", apparel.clone())
            .with_description("Soft.")
            .with_brand("Acme")
            .with_attribute("material", "cotton")
            .with_variants([variant.clone(), hidden])
            .with_published(false)
            .with_created_at(created_at);
        assert_eq!(built, product);
        let plain = Product::new(id, "Tee", apparel.clone()).with_variants([variant.clone()]);
        assert_eq!(
            plain,
            Product {
                id,
                title: "Tee".into(),
                description: String::new(),
                brand: String::new(),
                category: apparel.clone(),
                attributes: BTreeMap::new(),
                variants: vec![variant],
                published: true,
                created_at: plain.created_at,
            }
        );
        plain.validate().unwrap();

        let shirts = CategoryId::new("shirts").unwrap();
        assert_eq!(
            Category::new(shirts.clone(), "Shirts"),
            Category {
                id: shirts.clone(),
                name: "Shirts".into(),
                parent: None,
            }
        );
        assert_eq!(
            Category::new(shirts.clone(), "Shirts").with_parent(apparel.clone()),
            Category {
                id: shirts,
                name: "Shirts".into(),
                parent: Some(apparel),
            }
        );
    }
}
