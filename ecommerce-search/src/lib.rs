//! Product search on [tantivy](https://docs.rs/tantivy): in-process, no server to run.
//!
//! [`TantivySearch`] implements [`ProductSearch`]:
//! - BM25 full text over title, brand, category, attributes and description, with field boosts
//!   (title 3, brand and category 2, attributes 1, description 0.5);
//! - typo tolerance: a term matches with up to [`allowed_typos`] edits (0 up to 3 characters,
//!   1 up to 7, then 2; a transposition counts as one) in title, brand, category and
//!   attributes;
//! - search-as-you-type: the last term also matches as a prefix (and, from four characters, as
//!   a prefix with typos) of title, brand and category words;
//! - every term must match somewhere; filters on category, brand, price range, stock and
//!   attributes; facet counts over all hits (category, brand, price bucket, in stock); sort by
//!   relevance, price or newest; offset pagination.
//!
//! Any user string is a valid query: the text is split into words (so syntax characters are
//! just separators) and cut at [`MAX_QUERY_LEN`](ecommerce_core::search::MAX_QUERY_LEN)
//! characters. Indexing commits and reloads the reader before it returns, so a change is
//! searchable at once; searches run on a snapshot and never wait for the writer.
//!
//! Pick [`TantivySearch::in_ram`] for tests and small catalogs rebuilt on start, and
//! [`TantivySearch::open`] for an index on disk that survives restarts.

use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use ecommerce_core::error::{SearchError, StoreError};
use ecommerce_core::id::ProductId;
use ecommerce_core::money::Money;
use ecommerce_core::search::{
    FacetCount, Facets, PRICE_BUCKETS, ProductSearch, SearchDocument, SearchHit, SearchQuery,
    SearchResults, SortOrder, allowed_typos, price_bucket, terms,
};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use tantivy::collector::{Collector, Count, FacetCollector, FacetCounts, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, RangeQuery, TermQuery,
};
use tantivy::schema::{
    FAST, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT, Value,
};
use tantivy::{
    DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, Searcher, TantivyDocument,
    Term, doc,
};

/// Words longer than this are dropped by the tokenizer, so a query word this long matches
/// nothing and is not expanded.
const MAX_TERM_LEN: usize = 40;
/// Prices are indexed as integers of this many ten-thousandths.
const PRICE_SCALE: i64 = 10_000;
/// Memory budget of the index writer.
const WRITER_MEMORY: usize = 128 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    brand: Field,
    category: Field,
    attributes: Field,
    description: Field,
    brand_key: Field,
    category_key: Field,
    attribute_key: Field,
    price: Field,
    created: Field,
    in_stock: Field,
    facet_brand: Field,
    facet_category: Field,
    facet_price: Field,
    facet_stock: Field,
    hit: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING),
        title: b.add_text_field("title", TEXT),
        brand: b.add_text_field("brand", TEXT),
        category: b.add_text_field("category", TEXT),
        attributes: b.add_text_field("attributes", TEXT),
        description: b.add_text_field("description", TEXT),
        brand_key: b.add_text_field("brand_key", STRING),
        category_key: b.add_text_field("category_key", STRING),
        attribute_key: b.add_text_field("attribute_key", STRING),
        price: b.add_i64_field("price", INDEXED | FAST),
        created: b.add_i64_field("created", FAST),
        in_stock: b.add_u64_field("in_stock", INDEXED | FAST),
        facet_brand: b.add_facet_field("facet_brand", FacetOptions::default()),
        facet_category: b.add_facet_field("facet_category", FacetOptions::default()),
        facet_price: b.add_facet_field("facet_price", FacetOptions::default()),
        facet_stock: b.add_facet_field("facet_stock", FacetOptions::default()),
        hit: b.add_text_field("hit", STORED),
    };
    (b.build(), fields)
}

/// What a hit shows, stored with the document.
#[derive(Debug, Serialize, Deserialize)]
struct StoredHit {
    product: ProductId,
    title: String,
    price: Money,
    in_stock: bool,
}

fn scaled(price: Decimal) -> i64 {
    price
        .checked_mul(Decimal::from(PRICE_SCALE))
        .and_then(|p| p.round().to_i64())
        .unwrap_or(if price.is_sign_negative() {
            i64::MIN
        } else {
            i64::MAX
        })
}

fn store_error(what: &str, e: impl std::fmt::Display) -> SearchError {
    SearchError::Store(StoreError::Backend {
        message: format!("{what}: {e}"),
        source: None,
    })
}

struct Inner {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
}

/// Product search on a tantivy index, in RAM or in a directory. Cheap to clone.
#[derive(Clone)]
pub struct TantivySearch {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TantivySearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TantivySearch")
            .field("documents", &self.inner.reader.searcher().num_docs())
            .finish()
    }
}

impl TantivySearch {
    /// An empty index in memory.
    ///
    /// # Errors
    /// [`SearchError::Store`] when the writer cannot start.
    pub fn in_ram() -> Result<Self, SearchError> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields)
    }

    /// The index in `dir`, created if the directory is empty.
    ///
    /// # Errors
    /// [`SearchError::Store`] when the directory cannot be read or holds another schema.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, SearchError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| store_error("creating the index directory", e))?;
        let (schema, fields) = schema();
        let directory = tantivy::directory::MmapDirectory::open(dir)
            .map_err(|e| store_error("opening the index directory", e))?;
        let index = Index::open_or_create(directory, schema)
            .map_err(|e| store_error("opening the index", e))?;
        Self::with_index(index, fields)
    }

    fn with_index(index: Index, fields: Fields) -> Result<Self, SearchError> {
        let writer = index
            .writer(WRITER_MEMORY)
            .map_err(|e| store_error("starting the index writer", e))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e| store_error("opening the index reader", e))?;
        Ok(TantivySearch {
            inner: Arc::new(Inner {
                index,
                reader,
                writer: Mutex::new(writer),
                fields,
            }),
        })
    }

    /// How many products are searchable.
    pub fn len(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    /// Whether no product is searchable.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the whole index with these documents, calling `progress` with the count so far
    /// every 10,000 documents and at the end. Blocking: call it from a blocking thread.
    ///
    /// # Errors
    /// [`SearchError::Store`].
    pub fn rebuild(
        &self,
        documents: impl IntoIterator<Item = SearchDocument>,
        mut progress: impl FnMut(usize),
    ) -> Result<usize, SearchError> {
        let n = self.inner.write(|writer| {
            writer
                .delete_all_documents()
                .map_err(|e| store_error("clearing the index", e))?;
            let mut n = 0;
            for document in documents {
                writer
                    .add_document(self.inner.document(&document))
                    .map_err(|e| store_error("indexing", e))?;
                n += 1;
                if n % 10_000 == 0 {
                    progress(n);
                }
            }
            Ok(n)
        })?;
        progress(n);
        Ok(n)
    }

    /// The query [`ProductSearch::search`] runs for this request: for measuring the engine
    /// beside raw tantivy on the same query.
    ///
    /// # Errors
    /// [`SearchError::InvalidQuery`].
    pub fn tantivy_query(&self, query: &SearchQuery) -> Result<Box<dyn Query>, SearchError> {
        let text = query.validate()?;
        Ok(self.inner.query(&text, query))
    }

    /// A searcher on the current snapshot (raw tantivy access).
    pub fn searcher(&self) -> Searcher {
        self.inner.reader.searcher()
    }
}

impl Inner {
    /// Runs a change under the writer's lock, commits it, and reloads the reader, so the
    /// change is searchable when this returns. Blocking.
    fn write<T>(
        &self,
        change: impl FnOnce(&mut IndexWriter) -> Result<T, SearchError>,
    ) -> Result<T, SearchError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let result = change(&mut writer)?;
        writer
            .commit()
            .map_err(|e| store_error("committing the index", e))?;
        drop(writer);
        self.reader
            .reload()
            .map_err(|e| store_error("reloading the index", e))?;
        Ok(result)
    }

    fn document(&self, d: &SearchDocument) -> TantivyDocument {
        let f = &self.fields;
        let hit = serde_json::to_string(&StoredHit {
            product: d.product,
            title: d.title.clone(),
            price: d.price,
            in_stock: d.in_stock,
        })
        .expect("hits serialize");
        let attributes: Vec<&str> = d.attributes.values().map(String::as_str).collect();
        let mut doc = doc!(
            f.id => d.product.to_string(),
            f.title => d.title.as_str(),
            f.brand => d.brand.as_str(),
            f.category => d.category.as_str(),
            f.attributes => attributes.join(" "),
            f.description => d.description.as_str(),
            f.brand_key => d.brand.to_lowercase(),
            f.category_key => d.category.as_str(),
            f.price => scaled(d.price.amount),
            f.created => d.created_at.timestamp_millis(),
            f.in_stock => u64::from(d.in_stock),
            f.facet_brand => tantivy::schema::Facet::from_path([d.brand.as_str()]),
            f.facet_category => tantivy::schema::Facet::from_path([d.category.as_str()]),
            f.facet_price => tantivy::schema::Facet::from_path([price_bucket(d.price.amount)]),
            f.facet_stock => tantivy::schema::Facet::from_path([d.in_stock.to_string()]),
            f.hit => hit,
        );
        for (k, v) in &d.attributes {
            doc.add_text(
                f.attribute_key,
                format!("{}={}", k.to_lowercase(), v.to_lowercase()),
            );
        }
        doc
    }

    /// Every word must match: each is a disjunction of exact, typo-tolerant and (for the last
    /// word) prefix matches over the fields; then the filters.
    fn query(&self, text: &str, request: &SearchQuery) -> Box<dyn Query> {
        let f = &self.fields;
        let words = terms(text);
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (i, word) in words.iter().enumerate() {
            let last = i + 1 == words.len();
            let typos = allowed_typos(word.chars().count());
            let expand = word.chars().count() <= MAX_TERM_LEN;
            let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
            for (field, weight, fuzzy, prefix) in [
                (f.title, 3.0, true, true),
                (f.brand, 2.0, true, true),
                (f.category, 2.0, true, true),
                (f.attributes, 1.0, true, false),
                (f.description, 0.5, false, false),
            ] {
                let term = Term::from_field_text(field, word);
                let exact = TermQuery::new(term.clone(), IndexRecordOption::WithFreqs);
                should.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(exact), weight)),
                ));
                if !expand {
                    continue;
                }
                if fuzzy && typos > 0 {
                    let q = FuzzyTermQuery::new(term.clone(), typos, true);
                    should.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(q), weight * 0.5)),
                    ));
                }
                if last && prefix {
                    let q = FuzzyTermQuery::new_prefix(term.clone(), 0, true);
                    should.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(q), weight * 0.8)),
                    ));
                    if typos > 0 {
                        let q = FuzzyTermQuery::new_prefix(term, typos, true);
                        should.push((
                            Occur::Should,
                            Box::new(BoostQuery::new(Box::new(q), weight * 0.3)),
                        ));
                    }
                }
            }
            must.push((Occur::Must, Box::new(BooleanQuery::new(should))));
        }
        let filters = &request.filters;
        let exact = |field: Field, value: &str| -> (Occur, Box<dyn Query>) {
            let q = TermQuery::new(
                Term::from_field_text(field, value),
                IndexRecordOption::Basic,
            );
            (Occur::Must, Box::new(q))
        };
        if let Some(category) = &filters.category {
            must.push(exact(f.category_key, category.as_str()));
        }
        if let Some(brand) = &filters.brand {
            must.push(exact(f.brand_key, &brand.to_lowercase()));
        }
        for (k, v) in &filters.attributes {
            must.push(exact(
                f.attribute_key,
                &format!("{}={}", k.to_lowercase(), v.to_lowercase()),
            ));
        }
        if filters.min_price.is_some() || filters.max_price.is_some() {
            let bound = |p: Option<Decimal>| match p {
                Some(p) => Bound::Included(Term::from_field_i64(f.price, scaled(p))),
                None => Bound::Unbounded,
            };
            let range = RangeQuery::new(bound(filters.min_price), bound(filters.max_price));
            must.push((Occur::Must, Box::new(range)));
        }
        if filters.in_stock_only {
            let q = TermQuery::new(
                Term::from_field_u64(f.in_stock, 1),
                IndexRecordOption::Basic,
            );
            must.push((Occur::Must, Box::new(q)));
        }
        if must.is_empty() {
            return Box::new(AllQuery);
        }
        if words.is_empty() {
            must.push((Occur::Must, Box::new(AllQuery)));
        }
        Box::new(BooleanQuery::new(must))
    }

    fn facets(&self) -> [FacetCollector; 4] {
        let f = &self.fields;
        [
            f.facet_category,
            f.facet_brand,
            f.facet_price,
            f.facet_stock,
        ]
        .map(|field| {
            let mut c = FacetCollector::for_field(self.index.schema().get_field_name(field));
            c.add_facet("/");
            c
        })
    }

    fn run(&self, request: &SearchQuery) -> Result<SearchResults, SearchError> {
        let text = request.validate()?;
        let query = self.query(&text, request);
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(request.limit).and_offset(request.offset);
        let relevance = request.sort == SortOrder::Relevance && !terms(&text).is_empty();
        let (hits, total, facets) = match request.sort {
            _ if relevance => self.collect(
                &searcher,
                &*query,
                top.order_by_score(),
                request.facets,
                |s| s,
            )?,
            SortOrder::PriceAscending => self.collect(
                &searcher,
                &*query,
                top.order_by_fast_field::<i64>("price", Order::Asc),
                request.facets,
                |_| 0.0,
            )?,
            SortOrder::PriceDescending => self.collect(
                &searcher,
                &*query,
                top.order_by_fast_field::<i64>("price", Order::Desc),
                request.facets,
                |_| 0.0,
            )?,
            SortOrder::Newest | SortOrder::Relevance => self.collect(
                &searcher,
                &*query,
                top.order_by_fast_field::<i64>("created", Order::Desc),
                request.facets,
                |_| 0.0,
            )?,
        };
        let hits = hits
            .into_iter()
            .map(|(score, address)| self.hit(&searcher, address, score))
            .collect::<Result<_, _>>()?;
        Ok(SearchResults {
            hits,
            total: total as u64,
            facets,
        })
    }

    /// Runs the top-docs collector with a count and, if asked, the facet collectors, in one
    /// pass.
    #[allow(clippy::type_complexity)]
    fn collect<C, K>(
        &self,
        searcher: &Searcher,
        query: &dyn Query,
        top: C,
        want_facets: bool,
        score: impl Fn(K) -> f32,
    ) -> Result<(Vec<(f32, DocAddress)>, usize, Option<Facets>), SearchError>
    where
        C: Collector<Fruit = Vec<(K, DocAddress)>>,
    {
        let to_hits = |docs: Vec<(K, DocAddress)>| -> Vec<(f32, DocAddress)> {
            docs.into_iter().map(|(k, a)| (score(k), a)).collect()
        };
        if want_facets {
            let [c, b, p, s] = self.facets();
            let ((docs, total), (c, b, p, s)) = searcher
                .search(query, &((top, Count), (c, b, p, s)))
                .map_err(|e| store_error("searching", e))?;
            let mut price = facet_counts(&p);
            let order: Vec<String> = PRICE_BUCKETS
                .iter()
                .map(|(lo, hi)| hi.map_or_else(|| format!("{lo}+"), |hi| format!("{lo}-{hi}")))
                .collect();
            price.sort_by_key(|f| order.iter().position(|o| o == &f.value));
            let facets = Facets {
                category: facet_counts(&c),
                brand: facet_counts(&b),
                price,
                in_stock: facet_counts(&s),
            };
            Ok((to_hits(docs), total, Some(facets)))
        } else {
            let (docs, total) = searcher
                .search(query, &(top, Count))
                .map_err(|e| store_error("searching", e))?;
            Ok((to_hits(docs), total, None))
        }
    }

    fn hit(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        score: f32,
    ) -> Result<SearchHit, SearchError> {
        let doc: TantivyDocument = searcher
            .doc(address)
            .map_err(|e| store_error("reading a hit", e))?;
        let stored = doc
            .get_first(self.fields.hit)
            .and_then(|v| v.as_str())
            .ok_or_else(|| store_error("reading a hit", "no stored hit"))?;
        let stored: StoredHit =
            serde_json::from_str(stored).map_err(|e| store_error("decoding a hit", e))?;
        Ok(SearchHit {
            product: stored.product,
            title: stored.title,
            price: stored.price,
            in_stock: stored.in_stock,
            score,
        })
    }
}

fn facet_counts(counts: &FacetCounts) -> Vec<FacetCount> {
    let mut list: Vec<FacetCount> = counts
        .get("/")
        .map(|(facet, count)| FacetCount {
            value: facet
                .to_path()
                .last()
                .map_or_else(String::new, |s| (*s).to_owned()),
            count,
        })
        .collect();
    list.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    list
}

#[async_trait]
impl ProductSearch for TantivySearch {
    async fn replace_all(&self, documents: Vec<SearchDocument>) -> Result<(), SearchError> {
        let search = self.clone();
        tokio::task::spawn_blocking(move || search.rebuild(documents, |_| {}))
            .await
            .map_err(|e| store_error("rebuilding the index", e))??;
        Ok(())
    }

    async fn index(&self, documents: Vec<SearchDocument>) -> Result<(), SearchError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.write(|writer| {
                for d in &documents {
                    writer.delete_term(Term::from_field_text(
                        inner.fields.id,
                        &d.product.to_string(),
                    ));
                    writer
                        .add_document(inner.document(d))
                        .map_err(|e| store_error("indexing", e))?;
                }
                Ok(())
            })
        })
        .await
        .map_err(|e| store_error("indexing", e))?
    }

    async fn remove(&self, product: ProductId) -> Result<(), SearchError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            inner.write(|writer| {
                writer.delete_term(Term::from_field_text(inner.fields.id, &product.to_string()));
                Ok(())
            })
        })
        .await
        .map_err(|e| store_error("removing", e))?
    }

    async fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError> {
        query.validate()?;
        let inner = self.inner.clone();
        let query = query.clone();
        tokio::task::spawn_blocking(move || inner.run(&query))
            .await
            .map_err(|e| store_error("searching", e))?
    }
}
