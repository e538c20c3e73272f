//! Relevance measured, not guessed: judged queries and the figures of an engine over them.
//!
//! A [`Judged`] query names what a shopper typing it wants, as conditions on the products
//! (brand, category, attributes such as `type`, `color`, `screen`): a product meeting every
//! condition is relevant (grade 2), one meeting the first condition only is partly relevant
//! (grade 1: the right kind of product). [`evaluate`] runs every query against an engine
//! over a catalog and reports:
//!
//! - NDCG@10 and recall@10 (of the fully relevant products, as many as fit in ten);
//! - typo robustness: the share of one-edit misspellings ([`one_edit_typos`]) of each query
//!   that keep the clean query's top hit;
//! - the queries that find nothing, whose plural and singular find different products, or
//!   that answer in another order when run again.
//!
//! [`demo_queries`] is the judged set of the demo catalog ([`ecommerce_core::demo`]), written
//! by hand: product types, brands with types, plurals, typos, and attribute queries such as
//! "red 32 inch tv".

use std::collections::{BTreeSet, HashMap};

use ecommerce_core::error::SearchError;
use ecommerce_core::id::ProductId;
use ecommerce_core::search::{ProductSearch, SearchDocument, SearchQuery};

/// A query and what a shopper typing it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Judged {
    /// The text typed.
    pub query: &'static str,
    /// Conditions a relevant product meets, the most important first: `("brand", "Samsung")`,
    /// `("category", "tvs")`, or an attribute and a word of its value (`("type", "tv")`,
    /// `("screen", "32 inch")`), compared without case.
    pub wants: &'static [(&'static str, &'static str)],
}

impl Judged {
    /// 2 when the product meets every condition, 1 when it meets the first, else 0.
    pub fn grade(&self, product: &SearchDocument) -> u8 {
        let meets = |&(key, value): &(&str, &str)| -> bool {
            let value = value.to_lowercase();
            let has = |text: &str| {
                let text = text.to_lowercase();
                text == value || contains_words(&text, &value)
            };
            match key {
                "brand" => has(&product.brand),
                "category" => product.category.as_str() == value,
                key => product.attributes.get(key).is_some_and(|v| has(v)),
            }
        };
        match self.wants {
            [] => 0,
            all if all.iter().all(meets) => 2,
            [first, ..] if meets(first) => 1,
            _ => 0,
        }
    }
}

/// Whether `text` contains `words` as whole words, in order.
fn contains_words(text: &str, words: &str) -> bool {
    let text: Vec<&str> = text.split(|c: char| !c.is_alphanumeric()).collect();
    let words: Vec<&str> = words.split(|c: char| !c.is_alphanumeric()).collect();
    !words.is_empty() && text.windows(words.len()).any(|w| w == words.as_slice())
}

/// The figures of an engine over a judged set.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// Judged queries run.
    pub queries: usize,
    /// Mean NDCG@10.
    pub ndcg_at_10: f64,
    /// Mean recall@10 of the fully relevant products.
    pub recall_at_10: f64,
    /// Misspelt queries run (one edit each).
    pub typo_queries: usize,
    /// Of them, the share whose top hit is the clean query's.
    pub typo_robustness: f64,
    /// Queries that found nothing.
    pub empty: Vec<String>,
    /// Queries whose plural and singular found different products (different sets up to
    /// 2,000 matches, different counts beyond).
    pub plural_mismatches: Vec<String>,
    /// Queries that answered in another order when run again.
    pub unstable: Vec<String>,
    /// Misspellings that lost the top hit (for reading, not for scoring).
    pub typo_misses: Vec<String>,
}

/// How many hits each query looks at.
const DEPTH: usize = 10;

/// Runs the judged set against `search`, which holds the documents of `catalog`.
///
/// # Errors
/// [`SearchError`] from the engine.
pub async fn evaluate(
    search: &dyn ProductSearch,
    catalog: &[SearchDocument],
    judged: &[Judged],
) -> Result<Report, SearchError> {
    let mut report = Report::default();
    let (mut ndcg, mut recall) = (0.0, 0.0);
    let (mut typos, mut kept) = (0usize, 0usize);
    for judgement in judged {
        let grades: HashMap<ProductId, u8> = catalog
            .iter()
            .map(|p| (p.product, judgement.grade(p)))
            .filter(|(_, g)| *g > 0)
            .collect();
        let hits = top(search, judgement.query, DEPTH).await?;
        if hits.is_empty() {
            report.empty.push(judgement.query.to_owned());
        }
        if top(search, judgement.query, DEPTH).await? != hits {
            report.unstable.push(judgement.query.to_owned());
        }
        ndcg += ndcg_at(&hits, &grades, DEPTH);
        recall += recall_at(&hits, &grades, DEPTH);

        let all = everything(search, judgement.query).await?;
        for other in number_forms(judgement.query) {
            if everything(search, &other).await? != all {
                report
                    .plural_mismatches
                    .push(format!("{} / {other}", judgement.query));
            }
        }

        if let Some(first) = hits.first() {
            for typo in one_edit_typos(judgement.query) {
                typos += 1;
                let typo_hits = top(search, &typo, 1).await?;
                if typo_hits.first() == Some(first) {
                    kept += 1;
                } else {
                    report
                        .typo_misses
                        .push(format!("{} -> {typo}", judgement.query));
                }
            }
        }
    }
    report.queries = judged.len();
    if !judged.is_empty() {
        report.ndcg_at_10 = ndcg / judged.len() as f64;
        report.recall_at_10 = recall / judged.len() as f64;
    }
    report.typo_queries = typos;
    report.typo_robustness = if typos == 0 {
        1.0
    } else {
        kept as f64 / typos as f64
    };
    Ok(report)
}

async fn top(
    search: &dyn ProductSearch,
    text: &str,
    n: usize,
) -> Result<Vec<ProductId>, SearchError> {
    let results = search
        .search(&SearchQuery::text(text).with_limit(n))
        .await?;
    Ok(results.hits.into_iter().map(|h| h.product).collect())
}

/// The most products [`everything`] reads to compare two queries' matches.
const MAX_COMPARED: usize = 2_000;

/// How many products a query finds and, up to [`MAX_COMPARED`], which (`None` beyond: then
/// only the counts are compared, since the order of the first 2,000 of many is ranking, not
/// matching).
async fn everything(
    search: &dyn ProductSearch,
    text: &str,
) -> Result<(u64, Option<BTreeSet<ProductId>>), SearchError> {
    let first = search
        .search(&SearchQuery::text(text).with_limit(100))
        .await?;
    let total = first.total;
    if total > MAX_COMPARED as u64 {
        return Ok((total, None));
    }
    let mut found: BTreeSet<ProductId> = first.hits.into_iter().map(|h| h.product).collect();
    let mut offset = 100;
    while (offset as u64) < total {
        let page = search
            .search(&SearchQuery::text(text).with_limit(100).with_offset(offset))
            .await?;
        if page.hits.is_empty() {
            break;
        }
        offset += page.hits.len();
        found.extend(page.hits.into_iter().map(|h| h.product));
    }
    Ok((total, Some(found)))
}

fn ndcg_at(hits: &[ProductId], grades: &HashMap<ProductId, u8>, k: usize) -> f64 {
    let gain = |g: u8| f64::from((1u32 << g) - 1);
    let discount = |i: usize| (i as f64 + 2.0).log2();
    let dcg: f64 = hits
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, id)| gain(grades.get(id).copied().unwrap_or(0)) / discount(i))
        .sum();
    let mut ideal: Vec<u8> = grades.values().copied().collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, g)| gain(*g) / discount(i))
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

fn recall_at(hits: &[ProductId], grades: &HashMap<ProductId, u8>, k: usize) -> f64 {
    let relevant = grades.values().filter(|g| **g == 2).count().min(k);
    if relevant == 0 {
        return 0.0;
    }
    let found = hits
        .iter()
        .take(k)
        .filter(|id| grades.get(id) == Some(&2))
        .count();
    found as f64 / relevant as f64
}

/// The query with its last word in the other number: `kettle` <-> `kettles`, `box` <->
/// `boxes`; nothing for a last word of digits or shorter than four letters.
pub fn number_forms(query: &str) -> Vec<String> {
    let Some((head, last)) = split_last(query) else {
        return Vec::new();
    };
    if last.len() < 4 || !last.chars().all(|c| c.is_ascii_alphabetic()) {
        return Vec::new();
    }
    let other = if let Some(stem) = last
        .strip_suffix("es")
        .filter(|s| s.ends_with('s') || s.ends_with('x') || s.ends_with("ch") || s.ends_with("sh"))
    {
        stem.to_owned()
    } else if let Some(stem) = last.strip_suffix('s').filter(|s| !s.ends_with('s')) {
        stem.to_owned()
    } else if last.ends_with('s') || last.ends_with('x') || last.ends_with("ch") {
        format!("{last}es")
    } else {
        format!("{last}s")
    };
    vec![format!("{head}{other}")]
}

fn split_last(query: &str) -> Option<(&str, &str)> {
    let query = query.trim_end();
    let at = query.rfind(' ').map_or(0, |i| i + 1);
    let last = &query[at..];
    (!last.is_empty()).then_some((&query[..at], last))
}

/// Three misspellings of a query, one edit each, in its longest word of four letters or
/// more: two letters swapped, a letter dropped, a letter replaced by its neighbour in the
/// alphabet. None for a query without such a word.
pub fn one_edit_typos(query: &str) -> Vec<String> {
    let Some(word) = query
        .split(' ')
        .filter(|w| w.chars().count() >= 4 && w.chars().all(|c| c.is_ascii_alphabetic()))
        .max_by_key(|w| w.len())
    else {
        return Vec::new();
    };
    let at = query.find(word).expect("the word is in the query");
    let chars: Vec<char> = word.chars().collect();
    let n = chars.len();
    let mut swapped = chars.clone();
    swapped.swap(1, 2);
    let mut dropped = chars.clone();
    dropped.remove(n / 2);
    let mut replaced = chars.clone();
    let c = replaced[n - 2];
    replaced[n - 2] = if c == 'z' {
        'a'
    } else {
        char::from(c as u8 + 1)
    };
    [swapped, dropped, replaced]
        .into_iter()
        .map(|typo| typo.into_iter().collect::<String>())
        .filter(|typo| typo != word)
        .map(|typo| format!("{}{typo}{}", &query[..at], &query[at + word.len()..]))
        .collect()
}

/// The judged set of the demo catalog ([`ecommerce_core::demo::catalog`]): what shoppers
/// type in a department store, by hand: product types, brands and product lines with types,
/// synonyms, and attribute queries (screen size, storage, color, panel).
pub fn demo_queries() -> &'static [Judged] {
    const fn q(query: &'static str, wants: &'static [(&'static str, &'static str)]) -> Judged {
        Judged { query, wants }
    }
    const QUERIES: &[Judged] = &[
        // Phones and tablets.
        q("smartphone", &[("type", "smartphone")]),
        q("iphone", &[("type", "smartphone"), ("brand", "apple")]),
        q(
            "samsung galaxy phone",
            &[("type", "smartphone"), ("brand", "samsung")],
        ),
        q(
            "google pixel",
            &[("type", "smartphone"), ("brand", "google")],
        ),
        q(
            "256gb iphone",
            &[
                ("type", "smartphone"),
                ("brand", "apple"),
                ("storage", "256gb"),
            ],
        ),
        q("phone case", &[("type", "phone case")]),
        q("power bank", &[("type", "power bank")]),
        q("usb-c charger", &[("type", "charger")]),
        q("tablet", &[("type", "tablet")]),
        q("ipad", &[("type", "tablet"), ("brand", "apple")]),
        q("smartwatch", &[("type", "smartwatch")]),
        // Computers.
        q("laptop", &[("type", "laptop")]),
        q("dell laptop", &[("type", "laptop"), ("brand", "dell")]),
        q(
            "lenovo thinkpad",
            &[("type", "laptop"), ("brand", "lenovo")],
        ),
        q("macbook", &[("type", "laptop"), ("brand", "apple")]),
        q("gaming laptop", &[("type", "laptop")]),
        q("monitor", &[("type", "monitor")]),
        q("mechanical keyboard", &[("type", "keyboard")]),
        q("wireless mouse", &[("type", "mouse")]),
        q("webcam", &[("type", "webcam")]),
        q("printer", &[("type", "printer")]),
        q("docking station", &[("type", "docking station")]),
        // TVs and audio.
        q("tv", &[("type", "tv")]),
        q("television", &[("type", "tv")]),
        q("samsung tv", &[("type", "tv"), ("brand", "samsung")]),
        q(
            "lg oled tv",
            &[("type", "tv"), ("brand", "lg"), ("panel", "oled")],
        ),
        q("65 inch tv", &[("type", "tv"), ("screen", "65 inch")]),
        q(
            "black 32 inch tv",
            &[("type", "tv"), ("screen", "32 inch"), ("color", "black")],
        ),
        q("soundbar", &[("type", "soundbar")]),
        q("headphones", &[("type", "headphones")]),
        q(
            "sony headphones",
            &[("type", "headphones"), ("brand", "sony")],
        ),
        q(
            "bose headphones",
            &[("type", "headphones"), ("brand", "bose")],
        ),
        q("wireless earbuds", &[("type", "earbuds")]),
        q("bluetooth speaker", &[("type", "speaker")]),
        // Cameras and gaming.
        q("camera", &[("type", "camera")]),
        q("canon camera", &[("type", "camera"), ("brand", "canon")]),
        q("playstation", &[("type", "console"), ("brand", "sony")]),
        q(
            "xbox controller",
            &[("type", "controller"), ("brand", "microsoft")],
        ),
        // Appliances and kitchen.
        q("washing machine", &[("type", "washing machine")]),
        q("refrigerator", &[("type", "refrigerator")]),
        q("fridge", &[("type", "refrigerator")]),
        q("dishwasher", &[("type", "dishwasher")]),
        q("microwave", &[("type", "microwave")]),
        q("robot vacuum", &[("type", "robot vacuum")]),
        q(
            "dyson vacuum",
            &[("type", "vacuum cleaner"), ("brand", "dyson")],
        ),
        q("air fryer", &[("type", "air fryer")]),
        q(
            "ninja air fryer",
            &[("type", "air fryer"), ("brand", "ninja")],
        ),
        q("coffee maker", &[("type", "coffee maker")]),
        q("espresso machine", &[("type", "espresso machine")]),
        q("electric kettle", &[("type", "kettle")]),
        q("toaster", &[("type", "toaster")]),
        q("blender", &[("type", "blender")]),
        q(
            "kitchenaid stand mixer",
            &[("type", "stand mixer"), ("brand", "kitchenaid")],
        ),
        q("frying pan", &[("type", "frying pan")]),
        // Toys, home, outdoor, fitness, garden.
        q("lego", &[("type", "building blocks"), ("brand", "lego")]),
        q("board game", &[("type", "board game")]),
        q("puzzle", &[("type", "puzzle")]),
        q("office chair", &[("type", "office chair")]),
        q("desk lamp", &[("type", "desk lamp")]),
        q("tent", &[("type", "tent")]),
        q("sleeping bag", &[("type", "sleeping bag")]),
        q("yoga mat", &[("type", "yoga mat")]),
        q("running shoes", &[("type", "running shoes")]),
        q("lawn mower", &[("type", "lawn mower")]),
        q("garden hose", &[("type", "garden hose")]),
    ];
    QUERIES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_one_edit_in_the_longest_word() {
        assert_eq!(
            one_edit_typos("red kettle"),
            vec!["red ktetle", "red ketle", "red kettme"]
        );
        assert!(one_edit_typos("tv 55").is_empty());
    }

    #[test]
    fn number_forms_of_the_last_word() {
        assert_eq!(number_forms("electric kettle"), vec!["electric kettles"]);
        assert_eq!(number_forms("kettles"), vec!["kettle"]);
        assert_eq!(number_forms("glasses"), vec!["glass"]);
        assert_eq!(number_forms("box"), Vec::<String>::new());
        assert_eq!(number_forms("watch"), vec!["watches"]);
        assert_eq!(number_forms("65 inch"), vec!["65 inches"]);
    }

    #[test]
    fn ndcg_and_recall_of_a_ranking() {
        let ids: Vec<ProductId> = (0..4).map(|_| ProductId::new()).collect();
        let grades = HashMap::from([(ids[0], 2), (ids[1], 1)]);
        assert_eq!(ndcg_at(&[ids[0], ids[1]], &grades, 10), 1.0);
        assert!(ndcg_at(&[ids[1], ids[0]], &grades, 10) < 1.0);
        assert_eq!(ndcg_at(&[ids[2], ids[3]], &grades, 10), 0.0);
        assert_eq!(recall_at(&[ids[1], ids[0]], &grades, 10), 1.0);
        assert_eq!(recall_at(&[ids[1]], &grades, 10), 0.0);
    }
}
