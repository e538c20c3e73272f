//! The judged query set over the demo catalog: what the issue of relevance asks, held.

use ecommerce_core::demo;
use ecommerce_core::search::{ProductSearch, SearchDocument};
use ecommerce_search::TantivySearch;
use ecommerce_search::relevance::{demo_queries, evaluate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_judged_queries_find_rank_and_survive_typos() {
    let documents: Vec<SearchDocument> = demo::catalog(5_000, 2026)
        .filter_map(|d| SearchDocument::from_product(&d.product, true))
        .collect();
    let search = TantivySearch::in_ram().unwrap();
    search.index(documents.clone()).await.unwrap();
    let report = evaluate(&search, &documents, demo_queries()).await.unwrap();
    eprintln!(
        "{} queries: NDCG@10 {:.3}, recall@10 {:.3}; {} misspellings keep the top hit in {:.1} %",
        report.queries,
        report.ndcg_at_10,
        report.recall_at_10,
        report.typo_queries,
        100.0 * report.typo_robustness
    );
    for miss in &report.typo_misses {
        eprintln!("  typo lost the top hit: {miss}");
    }
    assert!(
        report.empty.is_empty(),
        "queries that find nothing: {:?}",
        report.empty
    );
    assert!(
        report.plural_mismatches.is_empty(),
        "plural and singular differ: {:?}",
        report.plural_mismatches
    );
    assert!(
        report.unstable.is_empty(),
        "order changed: {:?}",
        report.unstable
    );
    assert!(
        report.typo_robustness >= 0.9,
        "typos keep the top hit in {:.1} %",
        100.0 * report.typo_robustness
    );
}
