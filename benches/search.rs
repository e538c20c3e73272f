//! Product search on a generated catalog: the SDK (`TantivySearch`) beside raw tantivy running
//! the same query on the same index, and beside PostgreSQL full-text search (tsvector + GIN)
//! on the same data when `ECOMMERCE_TEST_POSTGRES_URL` is set.
//!
//! Run with: `cargo bench --bench search -- [--products 100000] [--rounds 3] [--detail]`
//!
//! The query log is fixed: exact words, misspellings, prefixes typed one letter at a time
//! (search-as-you-type), and filtered, faceted queries. For each kind it prints p50/p99
//! latency and queries per second for one client, the SDK and raw tantivy interleaved query
//! by query (so a drift of the machine weighs on both alike), and the SDK's queries per second with two
//! concurrent clients (the machine has two cores); then the same with no word cache (every
//! query word analysed again), and with `--detail` the slowest queries. Then the relevance of the judged query set
//! on the same catalog: NDCG@10, recall@10 and how often a one-edit misspelling keeps the top
//! hit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ecommerce::demo;
use ecommerce::id::CategoryId;
use ecommerce::search::{
    ProductSearch, SearchDocument, SearchFilters, SearchQuery, SortOrder, terms,
};
use ecommerce_search::TantivySearch;
use ecommerce_search::relevance::{demo_queries, evaluate};
use rust_decimal::Decimal;
use sqlx::Executor;
use tantivy::collector::{Count, TopDocs};
use tantivy::schema::Value;

mod common;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fixed query log, by kind.
fn query_log() -> Vec<(&'static str, Vec<SearchQuery>)> {
    let exact = [
        "headphones",
        "espresso machine",
        "samsung tv",
        "yoga mat",
        "bluetooth speaker",
        "desk lamp",
        "board game",
        "garden hose",
    ];
    let typos = [
        "hedphones",
        "esspresso machne",
        "samsnug tv",
        "yoga matt",
        "bluetoth speeker",
        "desk lammp",
        "bord game",
        "gardn hose",
    ];
    let words = [
        "headphones",
        "backpack",
        "espresso",
        "kettlebell",
        "turntable",
        "bookshelf",
        "puzzle",
        "watering",
    ];
    let mut prefixes = Vec::new();
    for w in words {
        for n in 1..=w.len().min(7) {
            prefixes.push(SearchQuery::text(&w[..n]));
        }
    }
    let filtered: Vec<SearchQuery> = [
        ("tent", Some("outdoor"), None, Some(200)),
        ("wireless", Some("audio"), Some(20), Some(150)),
        ("", Some("kitchen"), None, Some(50)),
        ("premium", None, Some(100), None),
        ("", None, Some(10), Some(30)),
        ("lamp", Some("home"), None, None),
        ("", Some("toys"), None, None),
        ("smart", None, None, Some(500)),
    ]
    .into_iter()
    .map(|(text, category, min, max)| {
        let mut filters = SearchFilters::default().with_in_stock_only(true);
        filters.category = category.map(|c| CategoryId::new(c).expect("slug"));
        filters.min_price = min.map(Decimal::from);
        filters.max_price = max.map(Decimal::from);
        SearchQuery::text(text)
            .with_filters(filters)
            .with_sort(if text.is_empty() {
                SortOrder::PriceAscending
            } else {
                SortOrder::Relevance
            })
            .with_facets(true)
    })
    .collect();
    vec![
        (
            "exact words",
            exact.iter().map(|q| SearchQuery::text(*q)).collect(),
        ),
        (
            "misspelt",
            typos.iter().map(|q| SearchQuery::text(*q)).collect(),
        ),
        ("as-you-type prefixes", prefixes),
        ("filtered + faceted", filtered),
    ]
}

struct Stats {
    p50: f64,
    p99: f64,
    qps: f64,
}

/// Latency percentiles, and queries per second of one client asking one after the other.
fn stats(mut latencies: Vec<Duration>) -> Stats {
    latencies.sort();
    let at = |q: f64| {
        latencies[((latencies.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e3
    };
    let busy: Duration = latencies.iter().sum();
    Stats {
        p50: at(0.5),
        p99: at(0.99),
        qps: latencies.len() as f64 / busy.as_secs_f64(),
    }
}

/// Raw tantivy: the same query object, collectors and stored-document reads, with no SDK
/// layer (no blocking-pool hop, no query building, no hit decoding).
fn raw_once(
    searcher: &tantivy::Searcher,
    q: &SearchQuery,
    query: &dyn tantivy::query::Query,
) -> Duration {
    let hit = searcher.schema().get_field("hit").expect("hit field");
    let t = Instant::now();
    let top = TopDocs::with_limit(q.limit).and_offset(q.offset);
    let facets = || {
        [
            "facet_category",
            "facet_brand",
            "facet_price",
            "facet_stock",
        ]
        .map(|field| {
            let mut c = tantivy::collector::FacetCollector::for_field(field);
            c.add_facet("/");
            c
        })
    };
    let by_score = q.sort == SortOrder::Relevance && !terms(&q.text).is_empty();
    // One pass with the same collectors as the SDK.
    let docs: Vec<tantivy::DocAddress> = match (by_score, q.facets) {
        (true, false) => {
            let (docs, _) = searcher
                .search(query, &(top.order_by_score(), Count))
                .expect("search");
            docs.into_iter().map(|(_, a)| a).collect()
        }
        (true, true) => {
            let [a, b, c, d] = facets();
            let ((docs, _), _) = searcher
                .search(query, &((top.order_by_score(), Count), (a, b, c, d)))
                .expect("search");
            docs.into_iter().map(|(_, a)| a).collect()
        }
        (false, facets_wanted) => {
            let top = top.order_by_fast_field::<i64>("price", tantivy::Order::Asc);
            if facets_wanted {
                let [a, b, c, d] = facets();
                let ((docs, _), _) = searcher
                    .search(query, &((top, Count), (a, b, c, d)))
                    .expect("search");
                docs.into_iter().map(|(_, a)| a).collect()
            } else {
                let (docs, _) = searcher.search(query, &(top, Count)).expect("search");
                docs.into_iter().map(|(_, a)| a).collect()
            }
        }
    };
    for a in docs {
        let d: tantivy::TantivyDocument = searcher.doc(a).expect("doc");
        std::hint::black_box(d.get_first(hit).and_then(|v| v.as_str()).map(str::len));
    }
    t.elapsed()
}

async fn sdk_once(search: &TantivySearch, q: &SearchQuery) -> Duration {
    let t = Instant::now();
    std::hint::black_box(search.search(q).await.expect("search"));
    t.elapsed()
}

/// The SDK and raw tantivy on the same queries, interleaved (one query through each, their
/// order alternating by round), so that a drift of the machine weighs on both alike.
async fn side_by_side(
    search: &TantivySearch,
    queries: &[(SearchQuery, Box<dyn tantivy::query::Query>)],
    rounds: usize,
) -> (Stats, Stats) {
    let searcher = search.searcher();
    let (mut raw, mut sdk) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        for (q, query) in queries {
            if round % 2 == 0 {
                raw.push(raw_once(&searcher, q, &**query));
                sdk.push(sdk_once(search, q).await);
            } else {
                sdk.push(sdk_once(search, q).await);
                raw.push(raw_once(&searcher, q, &**query));
            }
        }
    }
    (stats(raw), stats(sdk))
}

async fn sdk_two_clients(search: &TantivySearch, queries: &[SearchQuery], rounds: usize) -> f64 {
    let queries = Arc::new(queries.to_vec());
    let wall = Instant::now();
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (search, queries) = (search.clone(), queries.clone());
            tokio::spawn(async move {
                for _ in 0..rounds {
                    for q in queries.iter() {
                        std::hint::black_box(search.search(q).await.expect("search"));
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("client");
    }
    (2 * rounds * queries.len()) as f64 / wall.elapsed().as_secs_f64()
}

/// PostgreSQL full-text search on the same products: a `tsvector` column with a GIN index,
/// words ANDed, the last one as a prefix, ranked by `ts_rank`. It has no typo tolerance.
struct Postgres {
    pool: sqlx::PgPool,
    schema: String,
    url: String,
}

impl Postgres {
    async fn load(docs: &[SearchDocument]) -> Option<Postgres> {
        let url = std::env::var("ECOMMERCE_TEST_POSTGRES_URL").ok()?;
        let schema = format!("ecommerce_search_bench_{}", uuid::Uuid::new_v4().simple());
        let pool = common::sql::pg_schema_pool(&url, &schema, 4).await?;
        pool.execute(
            "CREATE TABLE products (id TEXT PRIMARY KEY, title TEXT, category TEXT, price NUMERIC, in_stock BOOLEAN, body TEXT, \
             tsv tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED)",
        )
        .await
        .expect("create table");
        for chunk in docs.chunks(1_000) {
            let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                "INSERT INTO products (id, title, category, price, in_stock, body) ",
            );
            q.push_values(chunk, |mut b, d| {
                let body = format!(
                    "{} {} {} {} {}",
                    d.title,
                    d.brand,
                    d.category,
                    d.attributes.values().cloned().collect::<Vec<_>>().join(" "),
                    d.description
                );
                b.push_bind(d.product.to_string())
                    .push_bind(d.title.clone())
                    .push_bind(d.category.to_string())
                    .push_bind(d.price.amount)
                    .push_bind(d.in_stock)
                    .push_bind(body);
            });
            q.build().execute(&pool).await.expect("insert");
        }
        pool.execute("CREATE INDEX products_tsv ON products USING GIN (tsv)")
            .await
            .expect("gin");
        pool.execute("ANALYZE products").await.expect("analyze");
        Some(Postgres { pool, schema, url })
    }

    async fn run(&self, queries: &[SearchQuery], rounds: usize) -> (Stats, usize) {
        let mut latencies = Vec::new();
        let mut empty = 0;
        for _ in 0..rounds {
            for q in queries {
                let words = terms(&q.text);
                let tsquery = words
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        if i + 1 == words.len() {
                            format!("{w}:*")
                        } else {
                            w.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" & ");
                let category = q.filters.category.as_ref().map(|c| c.to_string());
                let t = Instant::now();
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT id FROM products WHERE ($1 = '' OR tsv @@ to_tsquery('simple', $1)) \
                     AND ($2::TEXT IS NULL OR category = $2) AND ($3::NUMERIC IS NULL OR price >= $3) \
                     AND ($4::NUMERIC IS NULL OR price <= $4) AND (NOT $5 OR in_stock) \
                     ORDER BY CASE WHEN $1 = '' THEN 0 ELSE ts_rank(tsv, to_tsquery('simple', $1)) END DESC, price LIMIT 20",
                )
                .bind(&tsquery)
                .bind(category)
                .bind(q.filters.min_price)
                .bind(q.filters.max_price)
                .bind(q.filters.in_stock_only)
                .fetch_all(&self.pool)
                .await
                .expect("fts query");
                latencies.push(t.elapsed());
                if rows.is_empty() {
                    empty += 1;
                }
            }
        }
        (stats(latencies), empty / rounds)
    }

    async fn drop(self) {
        self.pool.close().await;
        if let Ok(admin) = sqlx::PgPool::connect(&self.url).await {
            let _ = admin
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA {} CASCADE",
                    self.schema
                )))
                .await;
        }
    }
}

/// Per query, with no word cache: the median time of building the query (the SDK's
/// analysis), of raw tantivy running it and of the SDK's whole search, slowest first.
async fn detail(search: &TantivySearch, rounds: usize) {
    println!(
        "\nSlowest queries, no word cache:\n\n| kind | query | analysis ms | raw ms | SDK ms |\n| --- | --- | ---: | ---: | ---: |"
    );
    search.set_word_cache(0);
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let mut rows = Vec::new();
    for (kind, queries) in query_log() {
        for q in queries {
            let (mut build, mut raw_t, mut sdk_t) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..rounds.max(3) {
                let t = Instant::now();
                let built = search.tantivy_query(&q).expect("query");
                build.push(t.elapsed());
                raw_t.push(raw_once(&search.searcher(), &q, &*built));
                let t = Instant::now();
                std::hint::black_box(search.search(&q).await.expect("search"));
                sdk_t.push(t.elapsed());
            }
            rows.push((
                kind,
                q.text.clone(),
                median(build),
                median(raw_t),
                median(sdk_t),
            ));
        }
    }
    rows.sort_by(|a, b| b.4.total_cmp(&a.4));
    for (kind, text, build, raw_ms, sdk_ms) in rows.iter().take(25) {
        println!("| {kind} | {text} | {build:.3} | {raw_ms:.3} | {sdk_ms:.3} |");
    }
    search.set_word_cache(ecommerce_search::WORD_CACHE);
}

#[tokio::main]
async fn main() {
    let products = arg("--products", 100_000);
    let rounds = arg("--rounds", 3);
    eprintln!("generating {products} products ...");
    let docs: Vec<SearchDocument> = demo::catalog(products, 42)
        .filter_map(|d| SearchDocument::from_product(&d.product, d.stock.iter().any(|s| *s > 0)))
        .collect();
    let search = TantivySearch::in_ram().expect("index");
    let started = Instant::now();
    search
        .rebuild(docs.iter().cloned(), |n| {
            if n % 100_000 == 0 {
                eprintln!("  indexed {n}");
            }
        })
        .expect("rebuild");
    let index_time = started.elapsed();
    eprintln!(
        "indexed {products} products in {:.1} s",
        index_time.as_secs_f64()
    );
    let postgres = Postgres::load(&docs).await;
    if postgres.is_none() {
        eprintln!(
            "PostgreSQL full-text search skipped: ECOMMERCE_TEST_POSTGRES_URL not set or unreachable"
        );
    }

    println!(
        "\n{products} products, tantivy index built in {:.1} s; {rounds} rounds of the query log; {} cores\n",
        index_time.as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| queries | n | SDK p50 ms | SDK p99 ms | SDK q/s | SDK q/s, 2 clients | raw tantivy p50 ms | raw p99 ms | raw q/s | SDK / raw time | Postgres FTS p50 ms | FTS p99 ms | FTS empty results |"
    );
    println!(
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut log = Vec::new();
    for (kind, queries) in query_log() {
        let built: Vec<_> = queries
            .iter()
            .map(|q| (q.clone(), search.tantivy_query(q).expect("query")))
            .collect();
        // Warm both paths once.
        let _ = side_by_side(&search, &built, 1).await;
        let (r, s) = side_by_side(&search, &built, rounds).await;
        let two = sdk_two_clients(&search, &queries, rounds).await;
        let fts = match &postgres {
            Some(pg) => {
                let (st, empty) = pg.run(&queries, rounds).await;
                (
                    format!("{:.2}", st.p50),
                    format!("{:.2}", st.p99),
                    format!("{empty} of {}", queries.len()),
                )
            }
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "| {kind} | {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} | {} | {} | {} |",
            queries.len(),
            s.p50,
            s.p99,
            s.qps,
            two,
            r.p50,
            r.p99,
            r.qps,
            r.qps / s.qps,
            fts.0,
            fts.1,
            fts.2
        );
        log.push((kind, built));
    }
    // The same, with every word analysed again for each query (no word cache): what a query
    // never seen on this snapshot of the index costs.
    search.set_word_cache(0);
    println!(
        "\nWith no word cache (each word looked up in the term dictionaries every time):\n\n\
         | queries | SDK p50 ms | SDK p99 ms | SDK q/s | SDK / raw time |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for (kind, built) in &log {
        let (r, s) = side_by_side(&search, built, rounds).await;
        println!(
            "| {kind} | {:.2} | {:.2} | {:.0} | {:.2} |",
            s.p50,
            s.p99,
            s.qps,
            r.qps / s.qps
        );
    }
    search.set_word_cache(ecommerce_search::WORD_CACHE);
    if let Some(pg) = postgres {
        pg.drop().await;
    }
    if std::env::args().any(|a| a == "--detail") {
        detail(&search, rounds).await;
    }

    // Relevance on the judged query set of the demo catalog.
    let started = Instant::now();
    let report = evaluate(&search, &docs, demo_queries())
        .await
        .expect("relevance");
    println!(
        "\nRelevance ({} judged queries, {products} products, {:.1} s): NDCG@10 {:.3}, recall@10 {:.3}; \
         {} one-edit misspellings keep the clean query's top hit in {:.1} %; \
         {} queries find nothing, {} differ between plural and singular, {} answer in another order when run again",
        report.queries,
        started.elapsed().as_secs_f64(),
        report.ndcg_at_10,
        report.recall_at_10,
        report.typo_queries,
        100.0 * report.typo_robustness,
        report.empty.len(),
        report.plural_mismatches.len(),
        report.unstable.len(),
    );
    for query in &report.empty {
        println!("  a query that finds nothing: {query}");
    }
    for pair in &report.plural_mismatches {
        println!("  plural and singular found different products: {pair}");
    }
    for query in &report.unstable {
        println!("  a query that answered in another order when run again: {query}");
    }
    for miss in &report.typo_misses {
        println!("  a misspelling that lost the top hit: {miss}");
    }
}
