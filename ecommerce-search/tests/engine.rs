//! What the engine does with the words shoppers type: plurals and typos together, typos that
//! keep the ranking, synonyms, known words left alone, a stable order for equal matches, "did
//! you mean", and an index of an older layout made again.

use ecommerce_core::catalog::{Product, Variant};
use ecommerce_core::id::{CategoryId, ProductId, Sku};
use ecommerce_core::money::{Currency, Money};
use ecommerce_core::search::{ProductSearch, SearchDocument, SearchQuery};
use ecommerce_search::{Synonyms, TantivySearch};

fn document(n: usize, title: &str, category: &str, description: &str) -> SearchDocument {
    let product = Product::new(ProductId::new(), title, CategoryId::new(category).unwrap())
        .with_brand("Acme")
        .with_description(description)
        .with_variants([Variant::new(
            Sku::new(format!("ENG-{n}")).unwrap(),
            Money::from_minor(1_999, Currency::USD),
        )]);
    SearchDocument::from_product(&product, true).unwrap()
}

async fn titles(search: &TantivySearch, text: &str) -> Vec<String> {
    search
        .search(&SearchQuery::text(text).with_limit(20))
        .await
        .unwrap()
        .hits
        .into_iter()
        .map(|h| h.title)
        .collect()
}

async fn engine(titles: &[(&str, &str)]) -> TantivySearch {
    let search = TantivySearch::in_ram().unwrap();
    let docs = titles
        .iter()
        .enumerate()
        .map(|(n, (title, category))| document(n, title, category, ""))
        .collect();
    search.index(docs).await.unwrap();
    search
}

#[tokio::test]
async fn plurals_and_typos_together_find_the_product() {
    let search = engine(&[
        ("Bluetooth Speaker", "audio"),
        ("Electric Kettle", "kitchen"),
        ("Countertop Blender", "kitchen"),
        ("HD Webcam", "computers"),
        ("Desk Lamp", "home"),
        ("USB-C Docking Station", "computers"),
        ("Plant Pot", "home"),
    ])
    .await;
    for (query, title) in [
        ("speaers", "Bluetooth Speaker"),
        ("ketltes", "Electric Kettle"),
        ("bleners", "Countertop Blender"),
        ("webams", "HD Webcam"),
        ("desk lmaps", "Desk Lamp"),
        ("docking statons", "USB-C Docking Station"),
        ("speakers", "Bluetooth Speaker"),
        ("kettles", "Electric Kettle"),
        ("lamps", "Desk Lamp"),
    ] {
        assert_eq!(titles(&search, query).await, vec![title], "{query}");
    }
    // Plural and singular find the same products.
    for (singular, plural) in [
        ("speaker", "speakers"),
        ("station", "stations"),
        ("pot", "pots"),
    ] {
        assert_eq!(
            titles(&search, singular).await,
            titles(&search, plural).await,
            "{singular} / {plural}"
        );
    }
}

#[tokio::test]
async fn a_typo_keeps_the_order_of_the_correct_word() {
    let search = TantivySearch::in_ram().unwrap();
    search
        .index(vec![
            document(1, "Orange Juice Press", "kitchen", ""),
            document(2, "Orange", "kitchen", ""),
            document(
                3,
                "Large Serving Tray With Orange Handles And Feet",
                "kitchen",
                "",
            ),
            document(4, "Wireless Wireless Charger", "phones", ""),
            document(
                5,
                "Wireless Charging Pad With Cable And Stand For Phones",
                "phones",
                "",
            ),
        ])
        .await
        .unwrap();
    let orange = titles(&search, "orange").await;
    assert_eq!(orange.len(), 3);
    assert_eq!(titles(&search, "orage").await, orange);
    let wireless = titles(&search, "wireless").await;
    assert_eq!(wireless.len(), 2);
    assert_eq!(titles(&search, "wireess").await, wireless);
}

#[tokio::test]
async fn a_word_the_index_knows_is_not_corrected() {
    let search = engine(&[
        ("USB Hub With Four Ports", "computers"),
        ("Plant Pots", "home"),
    ])
    .await;
    assert_eq!(
        titles(&search, "ports").await,
        vec!["USB Hub With Four Ports"]
    );
    assert_eq!(titles(&search, "pots").await, vec!["Plant Pots"]);
}

#[tokio::test]
async fn synonyms_find_each_other_and_can_be_replaced() {
    let search = engine(&[
        ("LG 55 inch OLED TV", "tvs"),
        ("Dell Notebook 13", "laptops"),
        ("Samsung Galaxy Smartphone", "phones"),
    ])
    .await;
    assert_eq!(
        titles(&search, "television").await,
        vec!["LG 55 inch OLED TV"]
    );
    assert_eq!(titles(&search, "laptop").await, vec!["Dell Notebook 13"]);
    assert_eq!(
        titles(&search, "phones").await,
        vec!["Samsung Galaxy Smartphone"]
    );
    search.set_synonyms(Synonyms::none());
    assert!(titles(&search, "television").await.is_empty());
    search.set_synonyms(Synonyms::from_groups([&["telly", "tv"][..]]));
    assert_eq!(titles(&search, "telly").await, vec!["LG 55 inch OLED TV"]);
}

#[tokio::test]
async fn equal_matches_rank_by_sales_then_the_same_way_whatever_the_indexing() {
    let mut docs: Vec<SearchDocument> = (0..40)
        .map(|n| document(n, "Classic Mug", "kitchen", "").with_sales((n % 4) as u64))
        .collect();
    let sales: std::collections::HashMap<ProductId, u64> =
        docs.iter().map(|d| (d.product, d.sales)).collect();
    let mut first: Option<Vec<ProductId>> = None;
    for round in 0..3 {
        // Several segments, in another order each time.
        docs.rotate_left(13);
        let search = TantivySearch::in_ram().unwrap();
        for chunk in docs.chunks(7) {
            search.index(chunk.to_vec()).await.unwrap();
        }
        let hits = search
            .search(&SearchQuery::text("mug").with_limit(40))
            .await
            .unwrap();
        let order: Vec<ProductId> = hits.hits.iter().map(|h| h.product).collect();
        assert_eq!(order.len(), 40);
        let sold: Vec<u64> = order.iter().map(|id| sales[id]).collect();
        assert!(
            sold.windows(2).all(|w| w[0] >= w[1]),
            "best sellers first: {sold:?}"
        );
        match &first {
            None => first = Some(order),
            Some(first) => assert_eq!(&order, first, "round {round}: the same order"),
        }
    }
}

#[tokio::test]
async fn a_query_that_finds_nothing_suggests_one_that_does() {
    let search = engine(&[
        ("Countertop Blender", "kitchen"),
        ("Electric Kettle", "kitchen"),
    ])
    .await;
    let results = search.search(&SearchQuery::text("blndr")).await.unwrap();
    assert_eq!(results.total, 0);
    assert_eq!(results.did_you_mean.as_deref(), Some("blender"));
    let results = search
        .search(&SearchQuery::text("electric kettel"))
        .await
        .unwrap();
    assert_eq!(results.total, 1, "one typo is found without a suggestion");
    assert_eq!(results.did_you_mean, None);
    let nothing = search
        .search(&SearchQuery::text("xylophone"))
        .await
        .unwrap();
    assert_eq!((nothing.total, nothing.did_you_mean), (0, None));
}

#[tokio::test]
async fn an_index_of_another_layout_is_made_again() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut schema = tantivy::schema::Schema::builder();
        schema.add_text_field("title", tantivy::schema::TEXT);
        let index = tantivy::Index::create_in_dir(dir.path(), schema.build()).unwrap();
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        writer.commit().unwrap();
    }
    let search = TantivySearch::open(dir.path()).expect("an old index is replaced");
    assert!(search.is_empty());
    search
        .index(vec![document(1, "Electric Kettle", "kitchen", "")])
        .await
        .unwrap();
    drop(search);
    let reopened = TantivySearch::open(dir.path()).unwrap();
    assert_eq!(reopened.len(), 1, "an index of this layout is kept");
}

#[tokio::test]
async fn a_word_is_analysed_again_when_the_index_changes() {
    let search = engine(&[("Plant Pots", "home")]).await;
    // Unknown, so a misspelling of `pots`.
    assert_eq!(titles(&search, "ports").await, vec!["Plant Pots"]);
    search
        .index(vec![document(
            9,
            "USB Hub With Four Ports",
            "computers",
            "",
        )])
        .await
        .unwrap();
    // Known now: taken as meant, not as the answer cached for the old snapshot.
    assert_eq!(
        titles(&search, "ports").await,
        vec!["USB Hub With Four Ports"]
    );
    // The same with no word cache at all.
    search.set_word_cache(0);
    assert_eq!(
        titles(&search, "ports").await,
        vec!["USB Hub With Four Ports"]
    );
}

#[tokio::test]
async fn a_rebuilt_index_is_one_segment_and_stays_searchable() {
    let search = TantivySearch::in_ram().unwrap();
    let docs: Vec<SearchDocument> = (0..3_000)
        .map(|n| document(n, &format!("Classic Mug {n}"), "kitchen", ""))
        .collect();
    // Several segments first, then a rebuild over them.
    for chunk in docs.chunks(1_000) {
        search.index(chunk.to_vec()).await.unwrap();
    }
    assert!(search.searcher().segment_readers().len() > 1);
    let rebuilt = search.rebuild(docs.clone(), |_| {}).unwrap();
    assert_eq!(rebuilt, 3_000);
    assert_eq!(search.searcher().segment_readers().len(), 1);
    assert_eq!(search.len(), 3_000);
    let mugs = search.search(&SearchQuery::text("mug 2999")).await.unwrap();
    assert_eq!(mugs.total, 1);
    // Later changes merge as usual and are searchable at once.
    search
        .index(vec![document(5_000, "Electric Kettle", "kitchen", "")])
        .await
        .unwrap();
    assert_eq!(titles(&search, "kettle").await, vec!["Electric Kettle"]);
    assert_eq!(search.len(), 3_001);
}

#[tokio::test]
async fn a_last_word_that_begins_nothing_found_is_taken_as_misspelt() {
    let search = engine(&[
        ("Non-Slip Yoga Mat", "sports"),
        ("Memory Foam Mattress", "home"),
    ])
    .await;
    // `matt` begins `mattress`, but no yoga mattress exists: it is `mat` misspelt.
    let results = search
        .search(&SearchQuery::text("yoga matt"))
        .await
        .unwrap();
    assert_eq!(results.total, 1);
    assert_eq!(results.hits[0].title, "Non-Slip Yoga Mat");
    assert_eq!(results.did_you_mean, None);
    // Alone, it is being typed.
    assert_eq!(titles(&search, "matt").await, vec!["Memory Foam Mattress"]);
}

#[tokio::test]
async fn a_plural_last_word_finds_what_the_singular_finds() {
    let search = engine(&[
        ("Family Board Game", "toys"),
        ("Board Gamepad Stand", "accessories"),
        ("Cutting Board", "kitchen"),
    ])
    .await;
    let mut singular = titles(&search, "board game").await;
    let mut plural = titles(&search, "board games").await;
    singular.sort();
    plural.sort();
    assert_eq!(singular, vec!["Board Gamepad Stand", "Family Board Game"]);
    assert_eq!(plural, singular);
}

#[tokio::test]
async fn an_index_not_sorted_by_rank_is_made_again() {
    let current = TantivySearch::in_ram().unwrap();
    let schema = current.searcher().schema().clone();
    let dir = tempfile::tempdir().unwrap();
    {
        // The same schema, in the layout of an older version: documents in insertion order.
        let index = tantivy::Index::create_in_dir(dir.path(), schema).unwrap();
        assert!(index.settings().sort_by_field.is_none());
        let mut writer: tantivy::IndexWriter = index.writer(15_000_000).unwrap();
        writer.commit().unwrap();
    }
    let search = TantivySearch::open(dir.path()).expect("an unsorted index is replaced");
    drop(search);
    let index = tantivy::Index::open_in_dir(dir.path()).unwrap();
    let sort = index.settings().sort_by_field.clone().expect("sorted now");
    assert_eq!(sort.field, "rank");
}
