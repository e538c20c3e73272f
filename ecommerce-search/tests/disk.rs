//! An index on disk survives a restart; a long catalog is searchable right after each change.

use ecommerce_core::demo;
use ecommerce_core::search::{ProductSearch, SearchDocument, SearchQuery};
use ecommerce_search::TantivySearch;

#[tokio::test]
async fn an_index_on_disk_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let docs: Vec<SearchDocument> = demo::catalog(500, 1)
        .filter_map(|d| SearchDocument::from_product(&d.product, true))
        .collect();
    let probe = docs[17].clone();
    {
        let search = TantivySearch::open(dir.path()).expect("open");
        let mut seen = Vec::new();
        let n = search
            .rebuild(docs.clone(), |n| seen.push(n))
            .expect("rebuild");
        assert_eq!(n, 500);
        assert_eq!(seen.last(), Some(&500), "progress reports the end");
    }
    let search = TantivySearch::open(dir.path()).expect("reopen");
    assert_eq!(search.len(), 500);
    let results = search
        .search(&SearchQuery::text(probe.title.clone()))
        .await
        .expect("search");
    assert_eq!(results.hits.first().map(|h| h.product), Some(probe.product));

    // A change is searchable as soon as `index` returns.
    let mut changed = probe.clone();
    changed.title = "Quasar Telescope".into();
    search.index(vec![changed]).await.expect("index");
    let found = search
        .search(&SearchQuery::text("quasar telesc"))
        .await
        .expect("search");
    assert_eq!(
        found.hits.iter().map(|h| h.product).collect::<Vec<_>>(),
        vec![probe.product]
    );
    assert_eq!(search.len(), 500, "replaced, not added");
    search.remove(probe.product).await.expect("remove");
    assert_eq!(search.len(), 499);
}
