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
//!   relevance, price or newest; offset pagination;
//! - equal matches rank by units sold, then by a fixed key of the product id: the index keeps
//!   its documents in that order, so the tie-break reads nothing per match.
//!
//! Each query word is analysed once per index snapshot (known or not, being typed or
//! misspelt, its corrections) and kept in a word cache; [`TantivySearch::rebuild`] merges the
//! index into one segment, so a word is looked up in one term dictionary.
//!
//! Any user string is a valid query: the text is split into words (so syntax characters are
//! just separators) and cut at [`MAX_QUERY_LEN`](ecommerce_core::search::MAX_QUERY_LEN)
//! characters. Indexing commits and reloads the reader before it returns, so a change is
//! searchable at once; searches run on a snapshot and never wait for the writer.
//!
//! Pick [`TantivySearch::in_ram`] for tests and small catalogs rebuilt on start, and
//! [`TantivySearch::open`] for an index on disk that survives restarts.

mod prefix;
pub mod relevance;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use crate::prefix::{PrefixCache, SHORT_PREFIX, ShortPrefixQuery};
use async_trait::async_trait;
use ecommerce_core::error::{SearchError, StoreError};
use ecommerce_core::id::ProductId;
use ecommerce_core::money::Money;
use ecommerce_core::search::{
    FacetCount, Facets, PRICE_BUCKETS, ProductSearch, SearchDocument, SearchHit, SearchQuery,
    SearchResults, SortOrder, allowed_typos, price_bucket, terms,
};
use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};
use tantivy::collector::{
    Collector, Count, FacetCollector, FacetCounts, SegmentCollector, TopDocs,
};
use tantivy::columnar::ColumnValues;
use tantivy::merge_policy::{LogMergePolicy, NoMergePolicy};
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, FuzzyTermQuery, Occur, Query, RangeQuery,
    TermQuery,
};
use tantivy::schema::{
    FAST, FacetOptions, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer,
    TextAnalyzer,
};
use tantivy::{
    DocAddress, DocId, Index, IndexReader, IndexSettings, IndexSortByField, IndexWriter, Order,
    ReloadPolicy, Score, Searcher, SegmentOrdinal, SegmentReader, TantivyDocument, Term, doc,
};
use tantivy_fst::Automaton;

/// Words longer than this are dropped by the tokenizer, so a query word this long matches
/// nothing and is not expanded.
const MAX_TERM_LEN: usize = 40;
/// Prices are indexed as integers of this many ten-thousandths.
const PRICE_SCALE: i64 = 10_000;
/// Memory budget of the index writer.
const WRITER_MEMORY: usize = 128 * 1024 * 1024;
/// A match on the stem (a plural, an inflection) weighs this much of an exact match.
const STEM_WEIGHT: f32 = 0.9;
/// A match on a synonym weighs this much of an exact match.
const SYNONYM_WEIGHT: f32 = 0.8;
/// The last word as the beginning of a word weighs this much of an exact match.
const PREFIX_WEIGHT: f32 = 0.8;
/// The last word as the beginning of a word with typos weighs this much of an exact match.
const PREFIX_TYPO_WEIGHT: f32 = 0.3;
/// A match with one typo weighs this much of an exact match; with two, half of it.
const TYPO_WEIGHT: f32 = 0.5;
/// The most indexed words one misspelt word stands for (the closest, then the most common).
const MAX_EXPANSIONS: usize = 8;

/// Levenshtein automaton builders for 1 and 2 edits (a transposition is one), built once.
fn automata(typos: u8) -> &'static LevenshteinAutomatonBuilder {
    static BUILDERS: OnceLock<[LevenshteinAutomatonBuilder; 2]> = OnceLock::new();
    let builders = BUILDERS.get_or_init(|| {
        [
            LevenshteinAutomatonBuilder::new(1, true),
            LevenshteinAutomatonBuilder::new(2, true),
        ]
    });
    &builders[usize::from(typos.clamp(1, 2)) - 1]
}

/// A Levenshtein automaton walking a term dictionary.
struct Within<'a>(&'a DFA);

impl Automaton for Within<'_> {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != levenshtein_automata::SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

/// The indexed words of `field` within `typos` edits of `word`, with their edits and how many
/// documents use them: the closest first, then the most common, at most [`MAX_EXPANSIONS`].
fn expand(searcher: &Searcher, field: Field, dfa: &DFA) -> Vec<(String, u8, u32)> {
    let mut found: HashMap<String, (u8, u32)> = HashMap::new();
    for segment in searcher.segment_readers() {
        let Ok(inverted) = segment.inverted_index(field) else {
            continue;
        };
        let Ok(mut stream) = inverted.terms().search(Within(dfa)).into_stream() else {
            continue;
        };
        while stream.advance() {
            let Ok(term) = std::str::from_utf8(stream.key()) else {
                continue;
            };
            let Distance::Exact(edits) = dfa.eval(term) else {
                continue;
            };
            let entry = found.entry(term.to_owned()).or_insert((edits, 0));
            entry.1 += stream.value().doc_freq;
        }
    }
    let mut found: Vec<(String, (u8, u32))> = found.into_iter().collect();
    found.sort_by(|(a, (ea, na)), (b, (eb, nb))| ea.cmp(eb).then(nb.cmp(na)).then(a.cmp(b)));
    found
        .into_iter()
        .take(MAX_EXPANSIONS)
        .map(|(term, (edits, uses))| (term, edits, uses))
        .collect()
}

/// What a misspelt word may have meant.
#[derive(Debug, Clone)]
enum Correction {
    /// An indexed word.
    Word(String),
    /// An indexed stem (no exact form to match).
    Stem(String),
}

/// The two analyzers of the index, for query words.
struct Analyzers {
    exact: TextAnalyzer,
    stem: TextAnalyzer,
}

impl Analyzers {
    fn new() -> Self {
        Analyzers {
            exact: analyzer(false),
            stem: analyzer(true),
        }
    }

    fn exact(&mut self, word: &str) -> Option<String> {
        token(&mut self.exact, word)
    }

    fn stem(&mut self, word: &str) -> Option<String> {
        token(&mut self.stem, word)
    }
}

/// Words that mean the same to a shopper: a query word also finds its synonyms (one word
/// each, compared in lower case without accents).
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    /// Stem -> the other words of its groups.
    table: HashMap<String, Vec<String>>,
    /// Every word of every group.
    words: Vec<String>,
}

impl Synonyms {
    /// No synonyms.
    pub fn none() -> Self {
        Synonyms::default()
    }

    /// Groups of words that mean the same: each finds the others, in any number (`tvs`
    /// finds `television` too: words are compared by their stems).
    pub fn from_groups<'a>(groups: impl IntoIterator<Item = &'a [&'a str]>) -> Self {
        let mut table: HashMap<String, Vec<String>> = HashMap::new();
        let mut words: Vec<String> = Vec::new();
        let mut stem = analyzer(true);
        for group in groups {
            for word in group.iter() {
                let word = word.to_lowercase();
                if !words.contains(&word) {
                    words.push(word);
                }
            }
            let stems: Vec<String> = group.iter().filter_map(|w| token(&mut stem, w)).collect();
            for (i, key) in stems.iter().enumerate() {
                let others = table.entry(key.clone()).or_default();
                for (j, word) in group.iter().enumerate() {
                    if stems.get(j) != Some(key) && i != j && !others.iter().any(|o| o == word) {
                        others.push((*word).to_lowercase());
                    }
                }
            }
        }
        Synonyms { table, words }
    }

    /// The table the engine starts with: common shop words (tv / television, laptop /
    /// notebook, phone / smartphone / mobile, fridge / refrigerator...).
    pub fn shop_english() -> Self {
        Synonyms::from_groups([
            &["tv", "television", "telly"][..],
            &["laptop", "notebook"],
            &["phone", "smartphone", "mobile", "cellphone"],
            &["fridge", "refrigerator"],
            &["earphones", "earbuds"],
            &["headset", "headphones"],
            &["sofa", "couch"],
            &["hoover", "vacuum"],
            &["pc", "computer"],
            &["cooker", "stove"],
            &["trainers", "sneakers"],
            &["grey", "gray"],
            &["colour", "color"],
        ])
    }

    /// The synonyms of a word, given by its stem (the engine's English stemmer).
    pub fn of(&self, stem: &str) -> &[String] {
        self.table.get(stem).map_or(&[], Vec::as_slice)
    }

    /// Every word of the table.
    pub fn words(&self) -> &[String] {
        &self.words
    }
}

#[derive(Debug, Clone, Copy)]
struct Fields {
    id: Field,
    title: Field,
    brand: Field,
    category: Field,
    attributes: Field,
    description: Field,
    title_stem: Field,
    category_stem: Field,
    attributes_stem: Field,
    description_stem: Field,
    brand_key: Field,
    category_key: Field,
    attribute_key: Field,
    price: Field,
    created: Field,
    in_stock: Field,
    rank: Field,
    facet_brand: Field,
    facet_category: Field,
    facet_price: Field,
    facet_stock: Field,
    hit: Field,
}

/// Words as typed, lower case, accents folded (`Café` is `cafe`).
const EXACT: &str = "shop_exact";
/// Words reduced to their English stem as well (`kettles` is `kettl`, like `kettle`).
const STEMMED: &str = "shop_stem";

fn text(tokenizer: &str) -> TextOptions {
    TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(tokenizer)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    )
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let fields = Fields {
        id: b.add_text_field("id", STRING),
        title: b.add_text_field("title", text(EXACT)),
        brand: b.add_text_field("brand", text(EXACT)),
        category: b.add_text_field("category", text(EXACT)),
        attributes: b.add_text_field("attributes", text(EXACT)),
        description: b.add_text_field("description", text(EXACT)),
        title_stem: b.add_text_field("title_stem", text(STEMMED)),
        category_stem: b.add_text_field("category_stem", text(STEMMED)),
        attributes_stem: b.add_text_field("attributes_stem", text(STEMMED)),
        description_stem: b.add_text_field("description_stem", text(STEMMED)),
        brand_key: b.add_text_field("brand_key", STRING),
        category_key: b.add_text_field("category_key", STRING),
        attribute_key: b.add_text_field("attribute_key", STRING),
        price: b.add_i64_field("price", INDEXED | FAST),
        created: b.add_i64_field("created", FAST),
        in_stock: b.add_u64_field("in_stock", INDEXED | FAST),
        rank: b.add_u64_field("rank", FAST),
        facet_brand: b.add_facet_field("facet_brand", FacetOptions::default()),
        facet_category: b.add_facet_field("facet_category", FacetOptions::default()),
        facet_price: b.add_facet_field("facet_price", FacetOptions::default()),
        facet_stock: b.add_facet_field("facet_stock", FacetOptions::default()),
        hit: b.add_text_field("hit", STORED),
    };
    (b.build(), fields)
}

/// Documents are kept in rank order (best sellers first), so that within a segment the
/// lower document of two equal matches is the one that ranks first.
fn settings() -> IndexSettings {
    IndexSettings {
        sort_by_field: Some(IndexSortByField {
            field: "rank".to_owned(),
            order: Order::Desc,
        }),
        ..IndexSettings::default()
    }
}

fn analyzer(stem: bool) -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(MAX_TERM_LEN))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter);
    if stem {
        builder.filter(Stemmer::new(Language::English)).build()
    } else {
        builder.build()
    }
}

/// The first token `analyzer` makes of `word` (a query word is one token).
fn token(analyzer: &mut TextAnalyzer, word: &str) -> Option<String> {
    let mut stream = analyzer.token_stream(word);
    stream.advance().then(|| stream.token().text.clone())
}

/// The order of equal matches, one fast value per document (one read per hit): units sold
/// (up to 2^32) in the high half, then a fixed key of the product id, so the same query
/// always answers in the same order whatever the segments.
fn rank(d: &SearchDocument) -> u64 {
    let id = d.product.as_uuid().as_u128();
    let folded = (id as u64) ^ ((id >> 64) as u64);
    let key = (folded as u32) ^ ((folded >> 32) as u32);
    (d.sales.min(u64::from(u32::MAX)) << 32) | u64::from(u32::MAX - key)
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

/// One query word analysed on one snapshot of the index.
#[derive(Debug, Default)]
struct WordClauses {
    /// BM25-scored term matches: field, term, boost.
    terms: Vec<(Field, String, f32)>,
    /// For the last word: the beginning of a title, brand or category word, with up to this
    /// many typos.
    prefix: Option<(String, u8)>,
    /// For the last word when its stem is not the word itself (a plural): the stem as the
    /// beginning of a word too, so that `board games` finds what `board game` finds.
    stem_prefix: Option<String>,
    /// A last word the index does not know but that begins an indexed word: taken as being
    /// typed, not misspelt.
    typing: bool,
}

/// Where a word stands in the query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Place {
    /// Before the last word.
    Inner,
    /// The last word, also a prefix; when the index does not know it but has words it
    /// begins, it is being typed.
    Last,
    /// The last word, also a prefix, and misspelt when the index does not know it (the
    /// second try when taking it as being typed found nothing: `yoga matt` is not the
    /// beginning of `yoga mattress`).
    LastMisspelt,
}

impl WordClauses {
    /// A disjunction of the clauses (nothing matches a word with none).
    fn query(&self, f: &Fields, prefixes: &PrefixCache) -> Box<dyn Query> {
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (field, term, boost) in &self.terms {
            let q = TermQuery::new(
                Term::from_field_text(*field, term),
                IndexRecordOption::WithFreqs,
            );
            should.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(q), *boost)),
            ));
        }
        // Search-as-you-type.
        if let Some((prefix, typos)) = &self.prefix {
            let fields = [(f.title, 3.0), (f.brand, 2.0), (f.category, 2.0)];
            if *typos == 0 && prefix.chars().count() <= SHORT_PREFIX {
                // The same matches and scores as a prefix query per field, read once per
                // segment.
                should.push((
                    Occur::Should,
                    Box::new(ShortPrefixQuery {
                        prefix: prefix.clone(),
                        fields: fields
                            .iter()
                            .map(|&(f, w)| (f, w * PREFIX_WEIGHT))
                            .collect(),
                        cache: prefixes.clone(),
                    }),
                ));
            } else {
                for (field, weight) in fields {
                    let term = Term::from_field_text(field, prefix);
                    let q = FuzzyTermQuery::new_prefix(term.clone(), 0, true);
                    should.push((
                        Occur::Should,
                        Box::new(BoostQuery::new(Box::new(q), weight * PREFIX_WEIGHT)),
                    ));
                    if *typos > 0 {
                        let q = FuzzyTermQuery::new_prefix(term, *typos, true);
                        should.push((
                            Occur::Should,
                            Box::new(BoostQuery::new(Box::new(q), weight * PREFIX_TYPO_WEIGHT)),
                        ));
                    }
                }
            }
        }
        if let Some(stem) = &self.stem_prefix {
            for (field, weight) in [(f.title_stem, 3.0), (f.brand, 2.0), (f.category_stem, 2.0)] {
                let q = FuzzyTermQuery::new_prefix(Term::from_field_text(field, stem), 0, true);
                should.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(
                        Box::new(q),
                        weight * PREFIX_WEIGHT * STEM_WEIGHT,
                    )),
                ));
            }
        }
        if should.is_empty() {
            return Box::new(EmptyQuery);
        }
        Box::new(BooleanQuery::new(should))
    }
}

/// What a word's analysis depends on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct WordKey {
    /// The searcher generation (the index snapshot).
    snapshot: u64,
    /// The version of the synonyms table.
    synonyms: u64,
    place: Place,
    word: String,
}

/// How many analysed words [`TantivySearch`] keeps by default.
pub const WORD_CACHE: u64 = 10_000;

struct Inner {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    /// The table and its version (part of the word cache's key).
    synonyms: RwLock<(u64, Synonyms)>,
    /// Analysed query words, by snapshot and synonyms version.
    words: RwLock<moka::sync::Cache<WordKey, Arc<WordClauses>>>,
    /// The documents of short prefixes, by segment.
    prefixes: PrefixCache,
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
        let index = Index::builder()
            .schema(schema)
            .settings(settings())
            .create_in_ram()
            .map_err(|e| store_error("creating the index", e))?;
        Self::with_index(index, fields)
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
        let opened = Index::builder()
            .schema(schema.clone())
            .settings(settings())
            .open_or_create(directory);
        let index = match opened {
            Ok(index) if index.settings().sort_by_field == settings().sort_by_field => index,
            // An index of another version of this engine (another schema, or not sorted by
            // rank): it is derived data, so it is dropped and made again (empty: rebuild it
            // from the catalog, as for a new one).
            Ok(_) | Err(tantivy::TantivyError::SchemaError(_)) => {
                for entry in std::fs::read_dir(dir)
                    .map_err(|e| store_error("clearing an old index", e))?
                    .flatten()
                {
                    let path = entry.path();
                    let removed = if path.is_dir() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                    removed.map_err(|e| store_error("clearing an old index", e))?;
                }
                let directory = tantivy::directory::MmapDirectory::open(dir)
                    .map_err(|e| store_error("opening the index directory", e))?;
                Index::create(directory, schema, settings())
                    .map_err(|e| store_error("creating the index", e))?
            }
            Err(e) => return Err(store_error("opening the index", e)),
        };
        Self::with_index(index, fields)
    }

    fn with_index(index: Index, fields: Fields) -> Result<Self, SearchError> {
        index.tokenizers().register(EXACT, analyzer(false));
        index.tokenizers().register(STEMMED, analyzer(true));
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
                synonyms: RwLock::new((0, Synonyms::shop_english())),
                words: RwLock::new(moka::sync::Cache::new(WORD_CACHE)),
                prefixes: PrefixCache::new(),
            }),
        })
    }

    /// Replaces the synonyms table ([`Synonyms::shop_english`] to start with); queries from
    /// now on use it, nothing is reindexed.
    pub fn set_synonyms(&self, synonyms: Synonyms) {
        let mut table = self
            .inner
            .synonyms
            .write()
            .unwrap_or_else(|e| e.into_inner());
        *table = (table.0 + 1, synonyms);
    }

    /// Keeps the analysis of up to `words` query words ([`WORD_CACHE`] to start with; 0
    /// keeps none). A word is analysed once per index snapshot: whether the index knows it,
    /// whether it begins an indexed word, and its corrections, which are looked up in the
    /// term dictionaries. The cache starts empty.
    pub fn set_word_cache(&self, words: u64) {
        *self.inner.words.write().unwrap_or_else(|e| e.into_inner()) =
            moka::sync::Cache::new(words);
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
            // No merges while the new segments are written: they are merged into one below.
            writer.set_merge_policy(Box::new(NoMergePolicy));
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
        });
        // One segment: a query looks each word up once instead of once per segment.
        let compacted = self.inner.compact();
        let n = n?;
        compacted?;
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
        Ok(self.inner.query(&self.searcher(), &text, query, true))
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

    /// Merges every segment into one, reloads the reader and restores the default merge
    /// policy. Blocking.
    fn compact(&self) -> Result<(), SearchError> {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let merged = (|| -> Result<(), SearchError> {
            let segments = self
                .index
                .searchable_segment_ids()
                .map_err(|e| store_error("listing the index segments", e))?;
            if segments.len() > 1 {
                writer
                    .merge(&segments)
                    .wait()
                    .map_err(|e| store_error("merging the index segments", e))?;
            }
            Ok(())
        })();
        writer.set_merge_policy(Box::new(LogMergePolicy::default()));
        drop(writer);
        merged?;
        self.reader
            .reload()
            .map_err(|e| store_error("reloading the index", e))
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
            f.title_stem => d.title.as_str(),
            f.category_stem => d.category.as_str(),
            f.attributes_stem => attributes.join(" "),
            f.description_stem => d.description.as_str(),
            f.rank => rank(d),
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

    /// Every word must match: each is a disjunction of its exact form, its stem (plurals and
    /// inflections) and its synonyms in every field and, for the last word, prefixes. A word
    /// the index does not know also stands for the indexed words within its typo allowance,
    /// each as if it had been typed (so a misspelt query ranks as the right one would),
    /// weighed down by its edits. Then the filters.
    ///
    /// With `typing` false, an unknown last word is always taken as misspelt.
    fn query(
        &self,
        searcher: &Searcher,
        text: &str,
        request: &SearchQuery,
        typing: bool,
    ) -> Box<dyn Query> {
        let f = &self.fields;
        let words = terms(text);
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for (i, word) in words.iter().enumerate() {
            let place = match (i + 1 == words.len(), typing) {
                (false, _) => Place::Inner,
                (true, true) => Place::Last,
                (true, false) => Place::LastMisspelt,
            };
            let clauses = self.clauses(searcher, word, place);
            must.push((Occur::Must, clauses.query(f, &self.prefixes)));
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

    /// The clauses of one query word on this snapshot of the index, from the word cache or
    /// analysed now (and cached until the index or the synonyms change).
    fn clauses(&self, searcher: &Searcher, word: &str, place: Place) -> Arc<WordClauses> {
        let synonyms = self.synonyms.read().unwrap_or_else(|e| e.into_inner());
        let key = WordKey {
            snapshot: searcher.generation().generation_id(),
            synonyms: synonyms.0,
            place,
            word: word.to_owned(),
        };
        let cache = self.words.read().unwrap_or_else(|e| e.into_inner()).clone();
        cache.get_with(key, || {
            Arc::new(self.analyse(searcher, word, place, &synonyms.1))
        })
    }

    /// What one query word stands for on this snapshot: see [`Inner::query`].
    fn analyse(
        &self,
        searcher: &Searcher,
        word: &str,
        place: Place,
        synonyms: &Synonyms,
    ) -> WordClauses {
        let last = place != Place::Inner;
        let mut clauses = WordClauses::default();
        let mut analyzers = Analyzers::new();
        let (Some(exact), Some(stem)) = (analyzers.exact(word), analyzers.stem(word)) else {
            // Longer than any indexed word: matches nothing.
            return clauses;
        };
        self.word(
            &mut clauses,
            Some(&exact),
            &stem,
            1.0,
            synonyms,
            &mut analyzers,
        );
        // Typed length plus one: a dropped letter costs the allowance nothing.
        let typos = allowed_typos(word.chars().count() + 1);
        // A word the index knows, or whose synonym it knows, is taken as meant.
        let known = self.known(searcher, &exact, &stem)
            || synonyms.of(&stem).iter().any(|synonym| {
                let exact = analyzers.exact(synonym).unwrap_or_default();
                let stem = analyzers.stem(synonym).unwrap_or_default();
                self.known(searcher, &exact, &stem)
            });
        // A last word that begins an indexed word is being typed, not misspelt.
        let typing = place == Place::Last && !known && self.begins_a_word(searcher, &exact);
        clauses.typing = typing;
        if last {
            let prefix_typos = if known || typing { 0 } else { typos };
            clauses.prefix = Some((exact.clone(), prefix_typos));
            if stem != exact {
                clauses.stem_prefix = Some(stem.clone());
            }
        }
        if !known && !typing && typos > 0 {
            let corrections = self.corrections(searcher, &exact, &stem, typos, synonyms);
            let closest = corrections.first().map_or(0, |(_, edits)| *edits);
            for (candidate, edits) in corrections {
                // The closest corrections count as the word typed right; each further edit
                // halves the weight.
                let scale = TYPO_WEIGHT.powi(i32::from(edits - closest));
                match candidate {
                    Correction::Word(word) => {
                        let stem = analyzers.stem(&word).unwrap_or_else(|| word.clone());
                        self.word(
                            &mut clauses,
                            Some(&word),
                            &stem,
                            scale,
                            synonyms,
                            &mut analyzers,
                        );
                    }
                    Correction::Stem(stem) => {
                        self.word(&mut clauses, None, &stem, scale, synonyms, &mut analyzers);
                    }
                }
            }
        }
        clauses
    }

    /// The clauses of one word (or of a correction of it, `scale` < 1): its exact form in
    /// every field, its stem and its synonyms' stems in the stemmed fields, BM25-scored.
    fn word(
        &self,
        clauses: &mut WordClauses,
        exact: Option<&str>,
        stem: &str,
        scale: f32,
        synonyms: &Synonyms,
        analyzers: &mut Analyzers,
    ) {
        let f = &self.fields;
        let alternatives: Vec<String> = synonyms
            .of(stem)
            .iter()
            .filter_map(|synonym| analyzers.stem(synonym))
            .collect();
        for (field, stemmed, weight) in [
            (f.title, Some(f.title_stem), 3.0),
            (f.brand, None, 2.0),
            (f.category, Some(f.category_stem), 2.0),
            (f.attributes, Some(f.attributes_stem), 1.0),
            (f.description, Some(f.description_stem), 0.5),
        ] {
            if let Some(exact) = exact {
                clauses
                    .terms
                    .push((field, exact.to_owned(), weight * scale));
            }
            if let Some(stem_field) = stemmed {
                clauses
                    .terms
                    .push((stem_field, stem.to_owned(), weight * STEM_WEIGHT * scale));
                for synonym in &alternatives {
                    clauses.terms.push((
                        stem_field,
                        synonym.clone(),
                        weight * SYNONYM_WEIGHT * scale,
                    ));
                }
            }
        }
    }

    /// What an unknown word may have meant: the indexed words of the searched fields within
    /// `typos` edits of it, and the indexed stems within `typos` edits of its stem (`speaers`
    /// is one edit from the stem of `speaker`); the closest first, then the most common, one
    /// per stem, at most [`MAX_EXPANSIONS`].
    fn corrections(
        &self,
        searcher: &Searcher,
        exact: &str,
        stem: &str,
        typos: u8,
        synonyms: &Synonyms,
    ) -> Vec<(Correction, u8)> {
        let f = &self.fields;
        let mut analyzers = Analyzers::new();
        // One automaton per word, for every field and segment: building one is the costly part.
        let exact_dfa = automata(typos).build_dfa(exact);
        let stem_dfa = (stem != exact).then(|| automata(typos).build_dfa(stem));
        let stem_dfa = stem_dfa.as_ref().unwrap_or(&exact_dfa);
        // stem -> (edits, uses, correction)
        let mut best: HashMap<String, (u8, u32, Correction)> = HashMap::new();
        let mut offer = |stem: String, edits: u8, uses: u32, correction: Correction| {
            let entry = best.entry(stem).or_insert((edits, 0, correction.clone()));
            if edits < entry.0 || (edits == entry.0 && matches!(correction, Correction::Word(_))) {
                entry.0 = edits;
                entry.2 = correction;
            }
            entry.1 += uses;
        };
        for field in [f.title, f.brand, f.category, f.attributes] {
            for (word, edits, uses) in expand(searcher, field, &exact_dfa) {
                let stem = analyzers.stem(&word).unwrap_or_else(|| word.clone());
                offer(stem, edits, uses, Correction::Word(word));
            }
        }
        for field in [f.title_stem, f.category_stem, f.attributes_stem] {
            for (candidate, edits, uses) in expand(searcher, field, stem_dfa) {
                offer(candidate.clone(), edits, uses, Correction::Stem(candidate));
            }
        }
        // A misspelt synonym (`televsion` for `television`, which finds `tv`).
        for word in synonyms.words() {
            if let Distance::Exact(edits) = exact_dfa.eval(word) {
                let stem = analyzers.stem(word).unwrap_or_else(|| word.clone());
                offer(stem, edits, 0, Correction::Word(word.clone()));
            }
        }
        let mut found: Vec<(String, (u8, u32, Correction))> = best.into_iter().collect();
        found.sort_by(|(a, (ea, na, _)), (b, (eb, nb, _))| {
            ea.cmp(eb).then(nb.cmp(na)).then(a.cmp(b))
        });
        found
            .into_iter()
            .take(MAX_EXPANSIONS)
            .map(|(_, (edits, _, correction))| (correction, edits))
            .collect()
    }

    /// Whether some title, brand or category word begins with `prefix`.
    fn begins_a_word(&self, searcher: &Searcher, prefix: &str) -> bool {
        let f = &self.fields;
        searcher.segment_readers().iter().any(|segment| {
            [f.title, f.brand, f.category].into_iter().any(|field| {
                let Ok(inverted) = segment.inverted_index(field) else {
                    return false;
                };
                let Ok(mut stream) = inverted.terms().range().ge(prefix).into_stream() else {
                    return false;
                };
                stream.advance() && stream.key().starts_with(prefix.as_bytes())
            })
        })
    }

    /// Whether the index has the word as typed or its stem in a searched field: such a word
    /// is not corrected (`ports` does not also find `pots` when products say "ports").
    fn known(&self, searcher: &Searcher, exact: &str, stem: &str) -> bool {
        let f = &self.fields;
        let exact_fields = [f.title, f.brand, f.category, f.attributes];
        let stem_fields = [f.title_stem, f.category_stem, f.attributes_stem];
        let has = |field: Field, term: &str| {
            let term = Term::from_field_text(field, term);
            searcher.doc_freq(&term).is_ok_and(|n| n > 0)
        };
        exact_fields.iter().any(|&field| has(field, exact))
            || stem_fields.iter().any(|&field| has(field, stem))
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
        let searcher = self.reader.searcher();
        let mut results = self.run_on(&searcher, request, true)?;
        if results.total == 0 && self.typing(&searcher, request)? {
            // Not the beginning of a word after all: a misspelt one.
            results = self.run_on(&searcher, request, false)?;
        }
        if results.total == 0 {
            results.did_you_mean = self.did_you_mean(&searcher, request)?;
        }
        Ok(results)
    }

    /// Whether the query's last word was taken as being typed (see [`Place::Last`]).
    fn typing(&self, searcher: &Searcher, request: &SearchQuery) -> Result<bool, SearchError> {
        let text = request.validate()?;
        Ok(terms(&text)
            .last()
            .is_some_and(|word| self.clauses(searcher, word, Place::Last).typing))
    }

    /// When a query finds nothing: the same query with each word the index does not know
    /// replaced by the closest indexed word (up to two edits, the most common first), if
    /// that finds something.
    fn did_you_mean(
        &self,
        searcher: &Searcher,
        request: &SearchQuery,
    ) -> Result<Option<String>, SearchError> {
        let text = request.validate()?;
        let words = terms(&text);
        let mut analyzers = Analyzers::new();
        let mut corrected = Vec::with_capacity(words.len());
        let mut changed = false;
        for word in &words {
            let (Some(exact), Some(stem)) = (analyzers.exact(word), analyzers.stem(word)) else {
                return Ok(None);
            };
            if self.known(searcher, &exact, &stem) || exact.chars().count() < 2 {
                corrected.push(exact);
                continue;
            }
            let typos = if exact.chars().count() <= 4 { 1 } else { 2 };
            let f = &self.fields;
            let dfa = automata(typos).build_dfa(&exact);
            let best = [f.title, f.brand, f.category]
                .into_iter()
                .flat_map(|field| {
                    expand(searcher, field, &dfa)
                        .into_iter()
                        .next()
                        .map(|(term, edits, uses)| (edits, std::cmp::Reverse(uses), term))
                })
                .min();
            match best {
                Some((_, _, term)) => {
                    corrected.push(term);
                    changed = true;
                }
                None => return Ok(None),
            }
        }
        if !changed {
            return Ok(None);
        }
        let suggestion = corrected.join(" ");
        let mut retry = request.clone();
        retry.text = suggestion.clone();
        retry.limit = 1;
        retry.offset = 0;
        retry.facets = false;
        Ok((self.run_on(searcher, &retry, true)?.total > 0).then_some(suggestion))
    }

    fn run_on(
        &self,
        searcher: &Searcher,
        request: &SearchQuery,
        typing: bool,
    ) -> Result<SearchResults, SearchError> {
        let text = request.validate()?;
        let query = self.query(searcher, &text, request, typing);
        let searcher = searcher.clone();
        let top = TopDocs::with_limit(request.limit).and_offset(request.offset);
        let relevance = request.sort == SortOrder::Relevance && !terms(&text).is_empty();
        let (hits, total, facets) = match request.sort {
            // Equal scores rank by sales, then by id: the same query always answers in the
            // same order, however the index was built.
            _ if relevance => self.collect(
                &searcher,
                &*query,
                ByScoreThenRank {
                    limit: request.limit,
                    offset: request.offset,
                },
                request.facets,
                |score| score,
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
            did_you_mean: None,
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

/// The best `limit` matches after `offset` by score, equal scores by rank (units sold, then a
/// fixed key of the product id). The index is sorted by rank, so within a segment the lower
/// document of two equal matches is the one that ranks first: each segment keeps its best
/// matches by score alone, and only those have their rank read, to merge the segments.
struct ByScoreThenRank {
    limit: usize,
    offset: usize,
}

impl Collector for ByScoreThenRank {
    type Fruit = Vec<(Score, DocAddress)>;
    type Child = SegmentBest;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentBest> {
        Ok(SegmentBest {
            segment,
            keep: self.offset + self.limit,
            best: BinaryHeap::with_capacity(self.offset + self.limit),
            threshold: Score::INFINITY,
            rank: reader.fast_fields().u64("rank")?.first_or_default_col(0),
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(
        &self,
        segments: Vec<Vec<(Score, u64, DocAddress)>>,
    ) -> tantivy::Result<Self::Fruit> {
        let mut all: Vec<(Score, u64, DocAddress)> = segments.into_iter().flatten().collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(&b.2)));
        Ok(all
            .into_iter()
            .skip(self.offset)
            .take(self.limit)
            .map(|(score, _, address)| (score, address))
            .collect())
    }
}

/// A match kept by [`SegmentBest`]: the greater is the better (higher score, then lower
/// document).
#[derive(Debug, Clone, Copy)]
struct Kept {
    score: Score,
    doc: DocId,
}

impl PartialEq for Kept {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Kept {}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.doc.cmp(&self.doc))
    }
}

/// One segment's best `keep` matches by score (documents arrive in order, so of equal
/// scores the first kept wins), with their rank when harvested.
struct SegmentBest {
    segment: SegmentOrdinal,
    keep: usize,
    /// The worst kept match on top.
    best: BinaryHeap<Reverse<Kept>>,
    /// Once `keep` are kept, the worst kept score: a match must beat it to be kept.
    threshold: Score,
    rank: Arc<dyn ColumnValues<u64>>,
}

impl SegmentCollector for SegmentBest {
    type Fruit = Vec<(Score, u64, DocAddress)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.best.len() < self.keep {
            self.best.push(Reverse(Kept { score, doc }));
            if self.best.len() == self.keep {
                self.threshold = self.best.peek().map_or(Score::INFINITY, |w| w.0.score);
            }
        } else if score > self.threshold {
            if let Some(mut worst) = self.best.peek_mut() {
                *worst = Reverse(Kept { score, doc });
            }
            self.threshold = self.best.peek().map_or(Score::INFINITY, |w| w.0.score);
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.best
            .into_iter()
            .map(|Reverse(kept)| {
                (
                    kept.score,
                    self.rank.get_val(kept.doc),
                    DocAddress::new(self.segment, kept.doc),
                )
            })
            .collect()
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
