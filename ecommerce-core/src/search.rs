//! Product search: the query, filter, facet and hit types, and the engine trait.
//!
//! Any user string is a valid query: syntax characters are plain text, and a query longer
//! than [`MAX_QUERY_LEN`] characters is cut there. Matching is typo tolerant (the allowed edit
//! distance grows with the term's length, [`allowed_typos`]) and the last term also matches as
//! a prefix, for search-as-you-type.

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::catalog::Product;
use crate::error::SearchError;
use crate::id::{CategoryId, ProductId};
use crate::money::Money;

/// Longest query text, in characters; longer text is cut.
pub const MAX_QUERY_LEN: usize = 200;
/// Largest page.
pub const MAX_PAGE_SIZE: usize = 100;

/// The largest price a search filter may name (a trillion in major units); a price filter
/// above it, or below zero, is an invalid query.
pub const MAX_PRICE_FILTER: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

/// What a search engine indexes for one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchDocument {
    /// The product.
    pub product: ProductId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Brand.
    pub brand: String,
    /// Category.
    pub category: CategoryId,
    /// Attributes.
    pub attributes: BTreeMap<String, String>,
    /// Lowest variant price.
    pub price: Money,
    /// Whether any variant has stock.
    pub in_stock: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Units sold of all its variants: products that match a query equally well rank by it
    /// (then by id, so the same query always answers in the same order).
    #[serde(default)]
    pub sales: u64,
}

impl SearchDocument {
    /// With the units sold of all its variants.
    pub fn with_sales(mut self, sales: u64) -> Self {
        self.sales = sales;
        self
    }

    /// The document of a published product, `None` for an unpublished one (not searchable).
    pub fn from_product(product: &Product, in_stock: bool) -> Option<SearchDocument> {
        if !product.published {
            return None;
        }
        Some(SearchDocument {
            product: product.id,
            title: product.title.clone(),
            description: product.description.clone(),
            brand: product.brand.clone(),
            category: product.category.clone(),
            attributes: product.attributes.clone(),
            price: product.min_price()?,
            in_stock,
            created_at: product.created_at,
            sales: 0,
        })
    }
}

/// Filters; every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SearchFilters {
    /// Only this category.
    pub category: Option<CategoryId>,
    /// Only this brand (case-insensitive).
    pub brand: Option<String>,
    /// Lowest price, inclusive.
    pub min_price: Option<Decimal>,
    /// Highest price, inclusive.
    pub max_price: Option<Decimal>,
    /// Only products in stock.
    pub in_stock_only: bool,
    /// Attributes that must have these values.
    pub attributes: BTreeMap<String, String>,
}

impl SearchFilters {
    /// Keeps only this category.
    pub fn with_category(mut self, category: CategoryId) -> Self {
        self.category = Some(category);
        self
    }

    /// Keeps only this brand (case-insensitive).
    pub fn with_brand(mut self, brand: impl Into<String>) -> Self {
        self.brand = Some(brand.into());
        self
    }

    /// Sets the lowest price, inclusive.
    pub fn with_min_price(mut self, min_price: Decimal) -> Self {
        self.min_price = Some(min_price);
        self
    }

    /// Sets the highest price, inclusive.
    pub fn with_max_price(mut self, max_price: Decimal) -> Self {
        self.max_price = Some(max_price);
        self
    }

    /// Sets whether only products in stock are kept.
    pub fn with_in_stock_only(mut self, in_stock_only: bool) -> Self {
        self.in_stock_only = in_stock_only;
        self
    }

    /// Keeps only products whose attribute has this value (case-insensitive).
    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }

    /// Whether a document passes the filters.
    pub fn matches(&self, doc: &SearchDocument) -> bool {
        self.category.as_ref().is_none_or(|c| c == &doc.category)
            && self
                .brand
                .as_ref()
                .is_none_or(|b| b.eq_ignore_ascii_case(&doc.brand))
            && self.min_price.is_none_or(|p| doc.price.amount >= p)
            && self.max_price.is_none_or(|p| doc.price.amount <= p)
            && (!self.in_stock_only || doc.in_stock)
            && self.attributes.iter().all(|(k, v)| {
                doc.attributes
                    .get(k)
                    .is_some_and(|d| d.eq_ignore_ascii_case(v))
            })
    }
}

/// Result order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Best match first (newest first with no text).
    #[default]
    Relevance,
    /// Cheapest first.
    PriceAscending,
    /// Most expensive first.
    PriceDescending,
    /// Newest first.
    Newest,
}

/// A search request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SearchQuery {
    /// Free text (may be empty: then filters and sort alone decide).
    pub text: String,
    /// Filters.
    pub filters: SearchFilters,
    /// Order.
    pub sort: SortOrder,
    /// Hits to skip.
    pub offset: usize,
    /// Hits to return, 1 to [`MAX_PAGE_SIZE`].
    pub limit: usize,
    /// Whether to count facets.
    pub facets: bool,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            text: String::new(),
            filters: SearchFilters::default(),
            sort: SortOrder::Relevance,
            offset: 0,
            limit: 20,
            facets: false,
        }
    }
}

impl SearchQuery {
    /// A text query with default paging.
    pub fn text(text: impl Into<String>) -> Self {
        SearchQuery {
            text: text.into(),
            ..SearchQuery::default()
        }
    }

    /// Sets the filters.
    pub fn with_filters(mut self, filters: SearchFilters) -> Self {
        self.filters = filters;
        self
    }

    /// Sets the order.
    pub fn with_sort(mut self, sort: SortOrder) -> Self {
        self.sort = sort;
        self
    }

    /// Sets how many hits to skip.
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Sets how many hits to return, 1 to [`MAX_PAGE_SIZE`].
    pub fn with_limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Sets whether to count facets.
    pub fn with_facets(mut self, facets: bool) -> Self {
        self.facets = facets;
        self
    }

    /// Checks the paging and filter limits, and returns the text cut to [`MAX_QUERY_LEN`].
    ///
    /// # Errors
    /// [`SearchError::InvalidQuery`].
    pub fn validate(&self) -> Result<String, SearchError> {
        if self.limit == 0 || self.limit > MAX_PAGE_SIZE {
            return Err(SearchError::InvalidQuery(format!(
                "limit must be between 1 and {MAX_PAGE_SIZE}"
            )));
        }
        if self.offset > 10_000 {
            return Err(SearchError::InvalidQuery(
                "offset must be at most 10000".into(),
            ));
        }
        for (name, price) in [
            ("min_price", self.filters.min_price),
            ("max_price", self.filters.max_price),
        ] {
            if price.is_some_and(|p| p.is_sign_negative() || p > MAX_PRICE_FILTER) {
                return Err(SearchError::InvalidQuery(format!(
                    "{name} must be between 0 and {MAX_PRICE_FILTER}"
                )));
            }
        }
        if let (Some(lo), Some(hi)) = (self.filters.min_price, self.filters.max_price) {
            if lo > hi {
                return Err(SearchError::InvalidQuery(
                    "min_price is above max_price".into(),
                ));
            }
        }
        Ok(self.text.chars().take(MAX_QUERY_LEN).collect())
    }
}

/// One hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The product.
    pub product: ProductId,
    /// Title.
    pub title: String,
    /// Lowest price.
    pub price: Money,
    /// Whether it has stock.
    pub in_stock: bool,
    /// Relevance score (engine specific; higher is better).
    pub score: f32,
}

/// A facet value and how many matching products have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacetCount {
    /// The value (category slug, brand, price bucket label, `true`/`false`).
    pub value: String,
    /// Matching products with it.
    pub count: u64,
}

/// Facet counts over all hits (not just the page).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facets {
    /// By category, most first.
    pub category: Vec<FacetCount>,
    /// By brand, most first.
    pub brand: Vec<FacetCount>,
    /// By price bucket ([`price_bucket`]), cheapest first.
    pub price: Vec<FacetCount>,
    /// In stock (`true`) or not (`false`).
    pub in_stock: Vec<FacetCount>,
}

/// A page of results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchResults {
    /// Hits of this page.
    pub hits: Vec<SearchHit>,
    /// Matching products in all.
    pub total: u64,
    /// Facet counts, if asked for.
    pub facets: Option<Facets>,
    /// When the query found nothing: a corrected query that finds something ("did you
    /// mean"), for the shop to offer.
    pub did_you_mean: Option<String>,
}

/// The price buckets of the price facet, in major units: `0-25`, `25-50`, `50-100`,
/// `100-250`, `250-500`, `500+`.
pub const PRICE_BUCKETS: [(u32, Option<u32>); 6] = [
    (0, Some(25)),
    (25, Some(50)),
    (50, Some(100)),
    (100, Some(250)),
    (250, Some(500)),
    (500, None),
];

/// The label of the bucket a price falls in (lower bound inclusive).
pub fn price_bucket(price: Decimal) -> String {
    for (lo, hi) in PRICE_BUCKETS {
        match hi {
            Some(hi) if price < Decimal::from(hi) => return format!("{lo}-{hi}"),
            Some(_) => {}
            None => return format!("{lo}+"),
        }
    }
    unreachable!("the last bucket is open")
}

/// The edit distance a term of this many characters may be off by: 0 up to 3, 1 up to 7,
/// then 2.
pub fn allowed_typos(term_len: usize) -> u8 {
    match term_len {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Splits text into lowercase alphanumeric terms: how engines and queries tokenize.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// A product search engine.
///
/// Every implementation must: find a product by a term of its title, brand or category with
/// up to [`allowed_typos`] edits; match the query's last term as a prefix; apply every filter;
/// count facets over all matching products; never fail on query text.
#[async_trait]
pub trait ProductSearch: Debug + Send + Sync + 'static {
    /// Adds or replaces documents; searchable once this returns.
    ///
    /// # Errors
    /// [`SearchError::Store`].
    async fn index(&self, documents: Vec<SearchDocument>) -> Result<(), SearchError>;

    /// Replaces the whole index with these documents (a rebuild from the catalog): products
    /// not among them are no longer found.
    ///
    /// # Errors
    /// [`SearchError::Store`].
    async fn replace_all(&self, documents: Vec<SearchDocument>) -> Result<(), SearchError>;

    /// Removes a product; removing an absent one is fine.
    ///
    /// # Errors
    /// [`SearchError::Store`].
    async fn remove(&self, product: ProductId) -> Result<(), SearchError>;

    /// Runs a query.
    ///
    /// # Errors
    /// [`SearchError::InvalidQuery`] for paging or filter limits (never for the text),
    /// [`SearchError::Store`].
    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_terms() {
        assert_eq!(price_bucket(Decimal::new(2499, 2)), "0-25");
        assert_eq!(price_bucket(Decimal::from(25)), "25-50");
        assert_eq!(price_bucket(Decimal::from(9000)), "500+");
        assert_eq!(
            terms("Wireless  HEAD-phones!"),
            vec!["wireless", "head", "phones"]
        );
        assert_eq!(allowed_typos(3), 0);
        assert_eq!(allowed_typos(5), 1);
        assert_eq!(allowed_typos(9), 2);
    }

    #[test]
    fn price_filters_beyond_the_range_are_invalid_queries() {
        for (min, max) in [
            (Some(Decimal::MAX), None),
            (
                None,
                Some(Decimal::new(10, 0) * Decimal::from(1_000_000_000_000u64)),
            ),
            (Some(Decimal::NEGATIVE_ONE), None),
        ] {
            let mut query = SearchQuery::text("kettle");
            query.filters.min_price = min;
            query.filters.max_price = max;
            assert!(
                matches!(query.validate(), Err(SearchError::InvalidQuery(m)) if m.contains("between 0 and")),
                "{min:?} {max:?}"
            );
        }
        let mut query = SearchQuery::text("kettle");
        query.filters.max_price = Some(MAX_PRICE_FILTER);
        assert!(query.validate().is_ok());
        assert_eq!(MAX_PRICE_FILTER, Decimal::from(1_000_000_000_000u64));
    }

    #[test]
    fn the_builders_build_what_the_literals_built() {
        let kitchen = CategoryId::new("kitchen").unwrap();
        let filters = SearchFilters {
            category: Some(kitchen.clone()),
            brand: Some("Acme".into()),
            min_price: Some(Decimal::from(10)),
            max_price: Some(Decimal::from(50)),
            in_stock_only: true,
            attributes: BTreeMap::from([("color".to_owned(), "red".to_owned())]),
        };
        assert_eq!(
            SearchFilters::default()
                .with_category(kitchen)
                .with_brand("Acme")
                .with_min_price(Decimal::from(10))
                .with_max_price(Decimal::from(50))
                .with_in_stock_only(true)
                .with_attribute("color", "red"),
            filters
        );
        assert_eq!(
            SearchQuery::text("kettle")
                .with_filters(filters.clone())
                .with_sort(SortOrder::PriceAscending)
                .with_offset(40)
                .with_limit(10)
                .with_facets(true),
            SearchQuery {
                text: "kettle".into(),
                filters,
                sort: SortOrder::PriceAscending,
                offset: 40,
                limit: 10,
                facets: true,
            }
        );
        assert_eq!(
            SearchQuery::default().with_limit(1),
            SearchQuery {
                limit: 1,
                ..SearchQuery::default()
            }
        );
    }
}
