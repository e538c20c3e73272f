use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::error::SearchError;
use crate::id::ProductId;
use crate::search::{
    FacetCount, Facets, PRICE_BUCKETS, ProductSearch, SearchDocument, SearchHit, SearchQuery,
    SearchResults, SortOrder, allowed_typos, price_bucket, terms,
};

/// A document with its terms per field, tokenized once at indexing.
#[derive(Debug)]
struct Indexed {
    doc: SearchDocument,
    /// (terms, field weight)
    fields: Vec<(Vec<String>, f32)>,
}

impl Indexed {
    fn new(doc: SearchDocument) -> Self {
        let attributes: Vec<String> = doc.attributes.values().flat_map(|v| terms(v)).collect();
        let fields = vec![
            (terms(&doc.title), 3.0),
            (terms(&doc.brand), 2.0),
            (terms(doc.category.as_str()), 2.0),
            (attributes, 1.0),
            (terms(&doc.description), 0.5),
        ];
        Indexed { doc, fields }
    }

    /// The score of the query terms against this document, `None` if a term matches nowhere.
    fn score(&self, query: &[String]) -> Option<f32> {
        let mut total = 0.0;
        for (i, q) in query.iter().enumerate() {
            let as_prefix = i + 1 == query.len();
            let best = self
                .fields
                .iter()
                .flat_map(|(terms, weight)| {
                    terms
                        .iter()
                        .map(move |t| term_match(q, t, as_prefix) * weight)
                })
                .fold(0.0f32, f32::max);
            if best == 0.0 {
                return None;
            }
            total += best;
        }
        Some(total)
    }
}

/// How well a query term matches a document term: 1 exact, 0.8 prefix, 0.6 one edit away,
/// 0.4 two edits away (within the allowed distance), 0.3 a prefix with typos, 0 not at all.
fn term_match(query: &str, term: &str, as_prefix: bool) -> f32 {
    if query == term {
        return 1.0;
    }
    if as_prefix && term.starts_with(query) {
        return 0.8;
    }
    let max = usize::from(allowed_typos(query.chars().count()));
    if max == 0 {
        return 0.0;
    }
    if let Some(d) = distance_within(query, term, max) {
        return if d <= 1 { 0.6 } else { 0.4 };
    }
    if as_prefix {
        // A misspelt prefix: compare with the term cut to the query's length.
        let cut: String = term.chars().take(query.chars().count()).collect();
        if distance_within(query, &cut, max).is_some() {
            return 0.3;
        }
    }
    0.0
}

/// The Levenshtein distance of `a` and `b` if it is at most `max`.
fn distance_within(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return None;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            row_min = row_min.min(cur[j]);
        }
        if row_min > max {
            return None;
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    (prev[b.len()] <= max).then_some(prev[b.len()])
}

fn count(values: impl Iterator<Item = String>) -> Vec<FacetCount> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for v in values {
        *counts.entry(v).or_default() += 1;
    }
    let mut list: Vec<FacetCount> = counts
        .into_iter()
        .map(|(value, count)| FacetCount { value, count })
        .collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    list
}

/// Product search in memory: a scan over every document, with the same matching rules as the
/// tantivy engine (typo tolerance, prefix on the last term, filters, facets). Fine for tests
/// and catalogs of a few thousand products.
#[derive(Debug, Default)]
pub struct MemorySearch {
    docs: Mutex<HashMap<ProductId, Indexed>>,
}

impl MemorySearch {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ProductSearch for MemorySearch {
    async fn index(&self, documents: Vec<SearchDocument>) -> Result<(), SearchError> {
        let indexed: Vec<Indexed> = documents.into_iter().map(Indexed::new).collect();
        let mut docs = lock(&self.docs);
        for i in indexed {
            docs.insert(i.doc.product, i);
        }
        Ok(())
    }

    async fn replace_all(&self, documents: Vec<SearchDocument>) -> Result<(), SearchError> {
        let indexed: HashMap<ProductId, Indexed> = documents
            .into_iter()
            .map(|d| (d.product, Indexed::new(d)))
            .collect();
        *lock(&self.docs) = indexed;
        Ok(())
    }

    async fn remove(&self, product: ProductId) -> Result<(), SearchError> {
        lock(&self.docs).remove(&product);
        Ok(())
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError> {
        let text = query.validate()?;
        let query_terms = terms(&text);
        let docs = lock(&self.docs);
        let mut matches: Vec<(&SearchDocument, f32)> = docs
            .values()
            .filter(|i| query.filters.matches(&i.doc))
            .filter_map(|i| i.score(&query_terms).map(|s| (&i.doc, s)))
            .collect();
        let facets = query.facets.then(|| Facets {
            category: count(matches.iter().map(|(d, _)| d.category.to_string())),
            brand: count(matches.iter().map(|(d, _)| d.brand.clone())),
            price: {
                let mut buckets = count(matches.iter().map(|(d, _)| price_bucket(d.price.amount)));
                let order: Vec<String> = PRICE_BUCKETS
                    .iter()
                    .map(|(lo, hi)| match hi {
                        Some(hi) => format!("{lo}-{hi}"),
                        None => format!("{lo}+"),
                    })
                    .collect();
                buckets.sort_by_key(|f| order.iter().position(|o| o == &f.value));
                buckets
            },
            in_stock: count(matches.iter().map(|(d, _)| d.in_stock.to_string())),
        });
        let newest = |a: &SearchDocument, b: &SearchDocument| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| a.product.cmp(&b.product))
        };
        match query.sort {
            SortOrder::Relevance => matches.sort_by(|(a, sa), (b, sb)| {
                sb.partial_cmp(sa)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| b.sales.cmp(&a.sales))
                    .then_with(|| a.product.cmp(&b.product))
            }),
            SortOrder::PriceAscending => matches.sort_by(|(a, _), (b, _)| {
                a.price
                    .amount
                    .cmp(&b.price.amount)
                    .then_with(|| newest(a, b))
            }),
            SortOrder::PriceDescending => matches.sort_by(|(a, _), (b, _)| {
                b.price
                    .amount
                    .cmp(&a.price.amount)
                    .then_with(|| newest(a, b))
            }),
            SortOrder::Newest => matches.sort_by(|(a, _), (b, _)| newest(a, b)),
        }
        let total = matches.len() as u64;
        let hits = matches
            .into_iter()
            .skip(query.offset)
            .take(query.limit)
            .map(|(d, score)| SearchHit {
                product: d.product,
                title: d.title.clone(),
                price: d.price,
                in_stock: d.in_stock,
                score,
            })
            .collect();
        Ok(SearchResults {
            hits,
            total,
            facets,
            did_you_mean: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_bound() {
        assert_eq!(distance_within("headphones", "headphnoes", 2), Some(2));
        assert_eq!(distance_within("kitten", "sitten", 1), Some(1));
        assert_eq!(distance_within("kitten", "sitting", 2), None);
        assert_eq!(distance_within("", "", 0), Some(0));
        assert_eq!(term_match("head", "headphones", true), 0.8);
        assert_eq!(term_match("head", "headphones", false), 0.0);
        assert_eq!(term_match("hedphones", "headphones", false), 0.6);
        assert_eq!(term_match("hedphones", "headphone", false), 0.4);
        assert_eq!(term_match("hexdp", "headphones", true), 0.3);
    }
}
