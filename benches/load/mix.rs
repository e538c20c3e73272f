//! The steady mix with a spike: browse, search, cart and checkout arriving at a fixed rate
//! (open loop: arrivals do not wait for answers), then five times the rate for a while, then
//! back. The raw pass replays the same arrivals on the floor of each operation that has one.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ecommerce::demo::DemoProduct;
use ecommerce::id::{ProductId, Sku};
use ecommerce::search::{SearchQuery, terms};
use ecommerce_search::TantivySearch;
use indicatif::ProgressBar;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use tantivy::collector::{Count, TopDocs};
use tokio::sync::Semaphore;

use crate::backends::Backend;
use crate::flash::checkout;
use crate::stats::{Point, Recorder, Sample, Summary, series, summarize};

/// The operations and their share of arrivals, in percent.
pub(crate) const MIX: [(&str, u32); 4] = [
    ("browse", 55),
    ("search", 30),
    ("cart", 10),
    ("checkout", 5),
];

/// The schedule: a base rate, and a spike of `factor` times it.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Schedule {
    pub(crate) rate: f64,
    pub(crate) factor: f64,
    pub(crate) steady: f64,
    pub(crate) spike: f64,
    pub(crate) after: f64,
}

impl Schedule {
    pub(crate) fn total(&self) -> f64 {
        self.steady + self.spike + self.after
    }

    /// The arrival times, in seconds from the start.
    fn arrivals(&self) -> Vec<f64> {
        let mut times = Vec::new();
        let mut t = 0.0;
        while t < self.total() {
            times.push(t);
            let in_spike = t >= self.steady && t < self.steady + self.spike;
            t += 1.0 / (self.rate * if in_spike { self.factor } else { 1.0 });
        }
        times
    }
}

/// What the shop sells in the mix.
pub(crate) struct Workload {
    pub(crate) products: Vec<ProductId>,
    /// The first SKU of each product, which a product page shows the stock of.
    pub(crate) first_skus: Vec<Sku>,
    pub(crate) skus: Vec<Sku>,
    pub(crate) queries: Vec<SearchQuery>,
}

impl Workload {
    /// Products, in-stock SKUs, and queries people type: a word, a brand and a word, a prefix,
    /// a typo.
    pub(crate) fn new(catalog: &[DemoProduct]) -> Workload {
        let mut rng = StdRng::seed_from_u64(7);
        let mut queries = Vec::new();
        for item in catalog.iter().take(200) {
            let words = terms(&item.product.title);
            let noun = words.get(2).cloned().unwrap_or_default();
            let text = match rng.random_range(0..4) {
                0 => noun.clone(),
                1 => format!("{} {noun}", words[0]),
                2 => noun.chars().take(4).collect(),
                _ => {
                    let mut c: Vec<char> = noun.chars().collect();
                    if c.len() > 4 {
                        c.swap(1, 2);
                    }
                    c.into_iter().collect()
                }
            };
            queries.push(SearchQuery::text(text).with_limit(20));
        }
        Workload {
            products: catalog.iter().map(|p| p.product.id).collect(),
            first_skus: catalog
                .iter()
                .map(|p| p.product.variants[0].sku.clone())
                .collect(),
            skus: catalog
                .iter()
                .flat_map(|p| p.product.variants.iter().zip(&p.stock))
                .filter(|(_, units)| **units > 0)
                .map(|(v, _)| v.sku.clone())
                .collect(),
            queries,
        }
    }
}

/// One operation on the SDK. `true` when it did its job (a sold-out checkout did).
async fn sdk_op(backend: &Backend, work: &Workload, op: &str, pick: usize) -> bool {
    let shop = &backend.shop;
    match op {
        "browse" => {
            let id = work.products[pick % work.products.len()];
            match shop.product(id).await {
                Ok(Some(p)) => shop.stock(&p.variants[0].sku).await.is_ok(),
                _ => false,
            }
        }
        "search" => shop
            .search(&work.queries[pick % work.queries.len()])
            .await
            .is_ok(),
        "cart" => {
            let sku = &work.skus[pick % work.skus.len()];
            match shop.create_guest_cart().await {
                Ok(cart) => shop.add_item(cart.id, sku, 1).await.is_ok(),
                Err(_) => false,
            }
        }
        _ => checkout(shop, &work.skus[pick % work.skus.len()])
            .await
            .is_ok(),
    }
}

/// The floor of an operation, where there is one: the product row through the driver, the
/// tantivy query alone, the reservation SQL (or gate script) alone.
async fn raw_op(
    backend: &Backend,
    search: &TantivySearch,
    work: &Workload,
    op: &str,
    pick: usize,
) -> Option<bool> {
    match op {
        "browse" => {
            let i = pick % work.products.len();
            let sql = backend.floor.as_ref()?.sql();
            let product = sql.product(work.products[i]).await;
            let stock = sql.on_hand(work.first_skus[i].as_str()).await;
            Some(product.is_ok() && stock.is_ok())
        }
        "search" => {
            let query = work.queries[pick % work.queries.len()].clone();
            let search = search.clone();
            let found = tokio::task::spawn_blocking(move || {
                let compiled = search.tantivy_query(&query).expect("query");
                let searcher = search.searcher();
                let (docs, _) = searcher
                    .search(
                        &compiled,
                        &(TopDocs::with_limit(query.limit).order_by_score(), Count),
                    )
                    .expect("search");
                for (_, address) in docs {
                    let _: tantivy::TantivyDocument = searcher.doc(address).expect("doc");
                }
            })
            .await;
            Some(found.is_ok())
        }
        "checkout" => {
            let sku = &work.skus[pick % work.skus.len()];
            let floor = backend.floor.as_ref()?;
            floor.reserve(sku.as_str()).await;
            Some(true)
        }
        _ => None,
    }
}

/// Per operation and phase: SDK and raw.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct OpResult {
    pub(crate) backend: &'static str,
    pub(crate) op: &'static str,
    pub(crate) phase: &'static str,
    pub(crate) sdk: Summary,
    pub(crate) raw: Option<Summary>,
}

/// The mix on one backend.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MixResult {
    pub(crate) backend: &'static str,
    pub(crate) schedule: Schedule,
    pub(crate) ops: Vec<OpResult>,
    /// The operations that have a floor, per second: SDK and raw.
    pub(crate) sdk_series: Vec<Point>,
    pub(crate) raw_series: Vec<Point>,
    /// Per operation, per second (SDK).
    pub(crate) op_series: Vec<(&'static str, Vec<Point>)>,
}

async fn run_pass(
    backend: &Arc<Backend>,
    search: &TantivySearch,
    work: &Arc<Workload>,
    schedule: Schedule,
    raw: bool,
    bar: &ProgressBar,
) -> Vec<Sample> {
    let arrivals = schedule.arrivals();
    let mut rng = StdRng::seed_from_u64(42);
    let plan: Vec<(f64, &'static str, usize)> = arrivals
        .into_iter()
        .map(|t| {
            let mut roll = rng.random_range(0..100);
            let op = MIX
                .iter()
                .find(|(_, share)| {
                    let hit = roll < *share;
                    roll = roll.saturating_sub(*share);
                    hit
                })
                .map_or("browse", |(op, _)| *op);
            (t, op, rng.random_range(0..usize::MAX / 2))
        })
        .collect();
    bar.set_length(plan.len() as u64);
    bar.set_position(0);
    let recorder = Arc::new(Recorder::new());
    let in_flight = Arc::new(Semaphore::new(1024));
    let start = recorder.start();
    let mut tasks = Vec::with_capacity(plan.len());
    for (t, op, pick) in plan {
        let due = start + Duration::from_secs_f64(t);
        tokio::time::sleep_until(due.into()).await;
        // The arrival is when the generator woke (the timer is coarse), not when it asked to.
        let arrived = std::time::Instant::now();
        let (backend, search, work, recorder, in_flight, bar) = (
            backend.clone(),
            search.clone(),
            work.clone(),
            recorder.clone(),
            in_flight.clone(),
            bar.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _slot = in_flight.acquire().await.expect("slots");
            let ok = if raw {
                raw_op(&backend, &search, &work, op, pick).await
            } else {
                Some(sdk_op(&backend, &work, op, pick).await)
            };
            if let Some(ok) = ok {
                recorder.record(op, arrived, ok);
            }
            bar.inc(1);
        }));
    }
    for t in tasks {
        t.await.expect("operation");
    }
    recorder.samples()
}

/// Runs the schedule on the SDK, then on the floors.
pub(crate) async fn mix(
    backend: &Arc<Backend>,
    search: &TantivySearch,
    work: &Arc<Workload>,
    schedule: Schedule,
    bar: &ProgressBar,
) -> MixResult {
    let name = backend.kind.name();
    bar.set_message(format!("{name} mix, SDK"));
    let sdk = run_pass(backend, search, work, schedule, false, bar).await;
    bar.set_message(format!("{name} mix, raw"));
    let raw = run_pass(backend, search, work, schedule, true, bar).await;

    let phases = [
        ("steady", 0.0, schedule.steady),
        ("spike", schedule.steady, schedule.steady + schedule.spike),
        ("after", schedule.steady + schedule.spike, schedule.total()),
    ];
    let mut ops = Vec::new();
    for (op, _) in MIX {
        for (phase, from, to) in phases {
            let keep = |s: &Sample| s.op == op && s.at >= from && s.at < to;
            let raw_summary = summarize(&raw, to - from, keep);
            ops.push(OpResult {
                backend: name,
                op,
                phase,
                sdk: summarize(&sdk, to - from, keep),
                raw: (raw_summary.count > 0).then_some(raw_summary),
            });
        }
    }
    let until = schedule.total();
    // Compare like with like: the SDK's operations that have a floor on this backend.
    let floored: HashSet<&str> = raw.iter().map(|s| s.op).collect();
    MixResult {
        backend: name,
        schedule,
        ops,
        sdk_series: series(&sdk, 1.0, until, |s| floored.contains(s.op)),
        raw_series: series(&raw, 1.0, until, |_| true),
        op_series: MIX
            .iter()
            .map(|(op, _)| (*op, series(&sdk, 1.0, until, |s| s.op == *op)))
            .collect(),
    }
}
