//! Short prefixes, as shoppers type the first letters of a word: the documents with a word
//! beginning with them in some fields, found once per segment and kept.
//!
//! A one- or two-letter prefix begins many words and matches a large share of the catalog:
//! unioning the postings of every such word into a bit set per field is most of such a
//! query's time, and the answer only changes with the segment. [`ShortPrefixQuery`] matches
//! and scores exactly as one prefix query per field would (a constant per field, summed over
//! the fields the prefix begins a word in) but reads the documents and their scores from
//! [`PrefixCache`], keyed by segment and prefix.

use std::sync::Arc;

use tantivy::index::SegmentId;
use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{DocId, DocSet, Score, SegmentReader, TERMINATED, TantivyError};

/// Prefixes up to this many characters go through [`PrefixCache`].
pub(crate) const SHORT_PREFIX: usize = 2;

/// Memory the cached document lists may take.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// The documents a short prefix matches in one segment, with their scores.
#[derive(Debug, Default)]
struct PrefixDocs {
    docs: Vec<DocId>,
    scores: Vec<Score>,
}

/// Document lists of short prefixes, by segment (segments never change, so an entry is
/// never stale; the entries of merged-away segments are evicted as the cache fills).
#[derive(Clone)]
pub(crate) struct PrefixCache(moka::sync::Cache<(SegmentId, String), Arc<PrefixDocs>>);

impl PrefixCache {
    pub(crate) fn new() -> Self {
        PrefixCache(
            moka::sync::Cache::builder()
                .max_capacity(CACHE_BYTES)
                .weigher(|_, docs: &Arc<PrefixDocs>| {
                    u32::try_from(docs.docs.len() * 8 + 64).unwrap_or(u32::MAX)
                })
                .build(),
        )
    }
}

impl std::fmt::Debug for PrefixCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixCache")
            .field("entries", &self.0.entry_count())
            .finish()
    }
}

/// Documents with a word beginning with `prefix` in any of `fields`, scored by the sum of
/// the weights of the fields it begins a word in.
#[derive(Clone, Debug)]
pub(crate) struct ShortPrefixQuery {
    pub(crate) prefix: String,
    pub(crate) fields: Vec<(Field, Score)>,
    pub(crate) cache: PrefixCache,
}

impl Query for ShortPrefixQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(self.clone()))
    }
}

impl ShortPrefixQuery {
    fn docs(&self, reader: &SegmentReader) -> tantivy::Result<Arc<PrefixDocs>> {
        let key = (reader.segment_id(), self.prefix.clone());
        self.cache
            .0
            .try_get_with(key, || self.read(reader).map(Arc::new))
            .map_err(|e: Arc<TantivyError>| TantivyError::InternalError(e.to_string()))
    }

    /// Unions the postings of every word beginning with the prefix, field by field.
    fn read(&self, reader: &SegmentReader) -> tantivy::Result<PrefixDocs> {
        let mut score: Vec<Score> = vec![0.0; reader.max_doc() as usize];
        for &(field, weight) in &self.fields {
            let inverted = reader.inverted_index(field)?;
            let mut in_field = vec![false; score.len()];
            let mut terms = inverted
                .terms()
                .range()
                .ge(self.prefix.as_bytes())
                .into_stream()?;
            while terms.advance() && terms.key().starts_with(self.prefix.as_bytes()) {
                let mut postings = inverted
                    .read_block_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)?;
                while !postings.docs().is_empty() {
                    for &doc in postings.docs() {
                        in_field[doc as usize] = true;
                    }
                    postings.advance();
                }
            }
            for (score, _) in score.iter_mut().zip(&in_field).filter(|(_, hit)| **hit) {
                *score += weight;
            }
        }
        let mut docs = PrefixDocs::default();
        for (doc, &s) in score.iter().enumerate() {
            if s > 0.0 {
                docs.docs.push(doc as DocId);
                docs.scores.push(s);
            }
        }
        Ok(docs)
    }
}

impl Weight for ShortPrefixQuery {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(PrefixScorer {
            docs: self.docs(reader)?,
            at: 0,
            boost,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let docs = self.docs(reader)?;
        match docs.docs.binary_search(&doc) {
            Ok(i) => Ok(Explanation::new_with_string(
                format!("a word begins with {:?}", self.prefix),
                docs.scores[i],
            )),
            Err(_) => Err(TantivyError::InvalidArgument(format!(
                "no word of document {doc} begins with {:?}",
                self.prefix
            ))),
        }
    }
}

struct PrefixScorer {
    docs: Arc<PrefixDocs>,
    at: usize,
    boost: Score,
}

impl DocSet for PrefixScorer {
    fn advance(&mut self) -> DocId {
        self.at += 1;
        self.doc()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        let rest = &self.docs.docs[self.at.min(self.docs.docs.len())..];
        self.at += rest.partition_point(|&doc| doc < target);
        self.doc()
    }

    fn doc(&self) -> DocId {
        self.docs.docs.get(self.at).copied().unwrap_or(TERMINATED)
    }

    fn size_hint(&self) -> u32 {
        u32::try_from(self.docs.docs.len()).unwrap_or(u32::MAX)
    }
}

impl Scorer for PrefixScorer {
    fn score(&mut self) -> Score {
        self.docs
            .scores
            .get(self.at)
            .map_or(0.0, |s| s * self.boost)
    }
}

#[cfg(test)]
mod tests {
    use tantivy::collector::{Count, TopDocs};
    use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur};
    use tantivy::schema::{Schema, TEXT};
    use tantivy::{DocAddress, Index, IndexWriter, Term, doc};

    use super::*;

    /// What [`ShortPrefixQuery`] finds and how it scores, beside one prefix query per field.
    #[test]
    fn matches_and_scores_as_a_prefix_query_per_field() {
        let mut schema = Schema::builder();
        let title = schema.add_text_field("title", TEXT);
        let brand = schema.add_text_field("brand", TEXT);
        let category = schema.add_text_field("category", TEXT);
        let index = Index::create_in_ram(schema.build());
        let mut writer: IndexWriter = index.writer_with_num_threads(1, 20_000_000).unwrap();
        let words = [
            "tent", "toaster", "kettle", "blender", "table", "tv", "bag", "teapot", "lamp",
        ];
        for n in 0..600usize {
            writer
                .add_document(doc!(
                    title => format!("{} {}", words[n % 9], words[(n / 9) % 9]),
                    brand => ["Tefal", "Bosch", "Acme"][n % 3],
                    category => ["kitchen", "toys", "home", "books"][n % 4],
                ))
                .unwrap();
            if n % 200 == 199 {
                writer.commit().unwrap();
            }
        }
        // A deleted document is not found.
        writer.delete_term(Term::from_field_text(title, "teapot"));
        writer.commit().unwrap();
        let searcher = index.reader().unwrap().searcher();
        let fields = vec![(title, 2.4), (brand, 1.6), (category, 1.6)];
        let cache = PrefixCache::new();
        for prefix in ["t", "b", "te", "k", "x"] {
            let per_field = BooleanQuery::new(
                fields
                    .iter()
                    .map(|&(field, weight)| {
                        let q = FuzzyTermQuery::new_prefix(
                            Term::from_field_text(field, prefix),
                            0,
                            true,
                        );
                        let q: Box<dyn Query> = Box::new(BoostQuery::new(Box::new(q), weight));
                        (Occur::Should, q)
                    })
                    .collect(),
            );
            let short = ShortPrefixQuery {
                prefix: prefix.to_owned(),
                fields: fields.clone(),
                cache: cache.clone(),
            };
            let all = |q: &dyn Query| -> (Vec<(DocAddress, i64)>, usize) {
                let (top, n) = searcher
                    .search(q, &(TopDocs::with_limit(1_000).order_by_score(), Count))
                    .unwrap();
                let mut top: Vec<(DocAddress, i64)> = top
                    .into_iter()
                    .map(|(score, a)| (a, (score * 1_000.0).round() as i64))
                    .collect();
                top.sort();
                (top, n)
            };
            let expected = all(&per_field);
            assert_eq!(all(&short), expected, "prefix {prefix}");
            // From the cache the second time, the same.
            assert_eq!(all(&short), expected, "prefix {prefix}, cached");
            if prefix == "x" {
                assert_eq!(expected.1, 0);
            } else {
                assert!(expected.1 > 0);
            }
        }
    }
}
