//! Search checks: typo- and prefix-tolerant text search with filters, sorting and facets,
//! kept in step with catalog changes, with facet counts that agree with filtered totals.

use rust_decimal::Decimal;

use super::{Backend, product, shop, sku};
use crate::id::CategoryId;
use crate::search::{SearchFilters, SearchQuery, SortOrder};

/// Search finds products by misspelt and half-typed words, filters, sorts and counts facets.
pub async fn search_tolerates_typos_prefixes_and_counts_facets(backend: Backend) {
    let (shop, _) = shop(&backend);
    let mut headphones = product("Wireless Headphones", &[("SRCH-1", 19_900)]);
    headphones.brand = "Sonic".into();
    headphones.attributes.insert("color".into(), "black".into());
    let mut speaker = product("Bluetooth Speaker", &[("SRCH-2", 4_900)]);
    speaker.brand = "Sonic".into();
    speaker.category = CategoryId::new("audio").expect("slug");
    let mut kettle = product("Electric Kettle", &[("SRCH-3", 2_900)]);
    kettle.category = CategoryId::new("kitchen").expect("slug");
    let mut hidden = product("Wireless Prototype", &[("SRCH-4", 100)]);
    hidden.published = false;
    for p in [&headphones, &speaker, &kettle, &hidden] {
        shop.upsert_product(p.clone()).await.expect("upsert");
    }
    shop.receive_stock(&sku("SRCH-1"), 3).await.expect("stock");
    let ids =
        |r: &crate::search::SearchResults| r.hits.iter().map(|h| h.product).collect::<Vec<_>>();

    let exact = shop
        .search(&SearchQuery::text("headphones"))
        .await
        .expect("search");
    assert_eq!(ids(&exact), vec![headphones.id]);
    let typo = shop
        .search(&SearchQuery::text("wireles headphnoes"))
        .await
        .expect("search");
    assert_eq!(
        ids(&typo),
        vec![headphones.id],
        "typos within the allowed distance match"
    );
    let prefix = shop
        .search(&SearchQuery::text("blueto"))
        .await
        .expect("search");
    assert_eq!(
        ids(&prefix),
        vec![speaker.id],
        "the last term matches as a prefix"
    );
    let none = shop
        .search(&SearchQuery::text("wireless xylophone"))
        .await
        .expect("search");
    assert_eq!(none.total, 0, "every term must match");
    let weird = shop
        .search(&SearchQuery::text(format!(
            "\"(AND OR*:~ {}",
            "z".repeat(5000)
        )))
        .await
        .expect("any text is a valid query");
    assert_eq!(weird.total, 0);

    let mut q = SearchQuery::default()
        .with_facets(true)
        .with_sort(SortOrder::PriceAscending);
    let all = shop.search(&q).await.expect("search");
    assert_eq!(ids(&all), vec![kettle.id, speaker.id, headphones.id]);
    let facets = all.facets.expect("facets asked for");
    let brand: Vec<(String, u64)> = facets
        .brand
        .iter()
        .map(|f| (f.value.clone(), f.count))
        .collect();
    assert_eq!(brand, vec![("Sonic".into(), 2), ("Acme".into(), 1)]);
    let stock: Vec<(String, u64)> = facets
        .in_stock
        .iter()
        .map(|f| (f.value.clone(), f.count))
        .collect();
    assert_eq!(stock, vec![("false".into(), 2), ("true".into(), 1)]);
    let price: Vec<(String, u64)> = facets
        .price
        .iter()
        .map(|f| (f.value.clone(), f.count))
        .collect();
    assert_eq!(price, vec![("25-50".into(), 2), ("100-250".into(), 1)]);

    q.filters = SearchFilters::default()
        .with_brand("sonic")
        .with_max_price(Decimal::from(100));
    let filtered = shop.search(&q).await.expect("search");
    assert_eq!(ids(&filtered), vec![speaker.id]);
    let facets = filtered.facets.expect("facets");
    assert_eq!(facets.category.len(), 1, "facets count the filtered hits");
    q.filters = SearchFilters::default().with_in_stock_only(true);
    assert_eq!(
        ids(&shop.search(&q).await.expect("search")),
        vec![headphones.id]
    );
    q.filters = SearchFilters::default();
    q.limit = 1;
    q.offset = 1;
    let page = shop.search(&q).await.expect("search");
    assert_eq!((ids(&page), page.total), (vec![speaker.id], 3));
    q.limit = 0;
    assert!(
        shop.search(&q).await.is_err(),
        "a zero page size is refused"
    );
}

/// A changed product is found by its new words and not its old ones, an unpublished one is
/// gone, and every facet count equals the total of the search filtered on that value.
pub async fn search_follows_catalog_changes_and_facets_agree_with_filters(backend: Backend) {
    let (shop, _) = shop(&backend);
    let brands = ["Boreal", "Kestrel", "Lumen"];
    let mut products = Vec::new();
    for i in 0..12 {
        let mut p = product(
            &format!("Trail Lantern {i}"),
            &[(&format!("LNT-{i}"), 1_000 + 700 * i)],
        );
        p.brand = brands[i as usize % 3].into();
        if i % 4 == 0 {
            p.category = CategoryId::new("camping").expect("slug");
        }
        shop.upsert_product(p.clone()).await.expect("upsert");
        products.push(p);
    }
    let all = SearchQuery::text("lantern")
        .with_facets(true)
        .with_limit(100);
    let results = shop.search(&all).await.expect("search");
    assert_eq!(results.total, 12);
    let facets = results.facets.expect("facets");
    for f in &facets.brand {
        let filtered = all
            .clone()
            .with_filters(SearchFilters::default().with_brand(f.value.clone()));
        assert_eq!(
            shop.search(&filtered).await.expect("search").total,
            f.count,
            "brand {}",
            f.value
        );
    }
    for f in &facets.category {
        let filtered = all.clone().with_filters(
            SearchFilters::default().with_category(CategoryId::new(f.value.clone()).expect("slug")),
        );
        assert_eq!(
            shop.search(&filtered).await.expect("search").total,
            f.count,
            "category {}",
            f.value
        );
    }
    assert_eq!(facets.price.iter().map(|f| f.count).sum::<u64>(), 12);

    let mut renamed = products[1].clone();
    renamed.title = "Summit Headlamp".into();
    renamed.description = "Bright and light.".into();
    shop.upsert_product(renamed.clone()).await.expect("rename");
    let found = shop
        .search(&SearchQuery::text("headlamp"))
        .await
        .expect("search");
    assert_eq!(
        found.hits.iter().map(|h| h.product).collect::<Vec<_>>(),
        vec![renamed.id]
    );
    let lanterns = shop
        .search(&SearchQuery::text("lantern"))
        .await
        .expect("search");
    assert_eq!(lanterns.total, 11, "the old title is gone");
    let mut hidden = products[2].clone();
    hidden.published = false;
    shop.upsert_product(hidden.clone())
        .await
        .expect("unpublish");
    let lanterns = shop
        .search(&SearchQuery::text("lantern"))
        .await
        .expect("search");
    assert_eq!(lanterns.total, 10);
    assert!(lanterns.hits.iter().all(|h| h.product != hidden.id));
}

/// Products imported with their stock are found at once, in stock; a rebuild indexes what
/// the catalog holds and drops what it no longer publishes.
pub async fn search_index_imports_and_rebuilds_from_the_catalog(backend: Backend) {
    let (shop, _) = shop(&backend);
    let compass = product("Pocket Compass", &[("RBLD-1", 1_500)]);
    let imported = shop
        .import(
            vec![crate::ImportItem::new(compass.clone()).with_stock(sku("RBLD-1"), 4)],
            |_| {},
        )
        .await
        .expect("import");
    assert_eq!((imported.products, imported.units), (1, 4));
    let query = SearchQuery::text("compass")
        .with_filters(SearchFilters::default().with_in_stock_only(true));
    let hits = shop.search(&query).await.expect("search").hits;
    assert_eq!(
        hits.iter().map(|h| h.product).collect::<Vec<_>>(),
        vec![compass.id]
    );

    // Written to the catalog behind the index's back: a new product, and the compass
    // unpublished.
    let sextant = product("Brass Sextant", &[("RBLD-2", 9_900)]);
    shop.catalog()
        .upsert_product(sextant.clone())
        .await
        .expect("upsert");
    let mut hidden = compass.clone();
    hidden.published = false;
    shop.catalog().upsert_product(hidden).await.expect("upsert");
    assert!(shop.rebuild_search_index().await.expect("rebuild") >= 1);
    let found = |text: &str| {
        let shop = shop.clone();
        let text = text.to_owned();
        async move {
            shop.search(&SearchQuery::text(text))
                .await
                .expect("search")
                .hits
                .into_iter()
                .map(|h| h.product)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("sextant").await, vec![sextant.id]);
    assert!(
        found("compass").await.is_empty(),
        "unpublished leaves the index"
    );
}
