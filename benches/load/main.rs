//! Black Friday on one machine: the SDK driven the way a shop is used, beside what the
//! databases alone can do, in the same run.
//!
//! Run with: `cargo bench --bench load -- [--scenario all|flash-sale,hot-sku,http,mix] [--backend memory,sqlite,postgres,mariadb,redis-postgres]`
//!
//! Paths, for each backend (the raw ones only where the backend has a raw floor):
//! - **raw reserve**: one reservation of one unit by hand, the SQL the SDK sends (behind the
//!   gate's Redis script on redis+postgres) on the native driver;
//! - **SDK reserve**: the SDK's reservation;
//! - **raw checkout (2 tx)**: a whole checkout's durable writes by hand on the native driver,
//!   in the SDK checkout's two transactions: place (the order row and its event, then the
//!   stock, ledger and reservation row) and sell (the order row locked and updated with its
//!   event, then the reservation row locked, the stock from reserved to sold, ledger and
//!   reservation state);
//! - **SDK checkout**: the SDK's whole checkout (a cart, one unit, "Pay").
//!
//! Each SDK path is compared with its own floor: SDK reserve with raw reserve, SDK checkout
//! with raw checkout (2 tx).
//!
//! Scenarios, for each backend:
//! - **flash sale**: `--buyers` press "Pay" at once for `--units` of one SKU (at most
//!   `--in-flight` served at a time, as a web server's worker pool would). Each path must sell
//!   exactly `--units`; anything else is reported as a failure and the run exits non-zero.
//! - **hot SKU**: `--clients` buyers in a closed loop on one SKU with plenty of stock for
//!   `--hot-seconds`: checkouts per second, latency, and how long a checkout holds a database
//!   connection; a checkout of a cart made with its item just before, and "Buy now" (the cart
//!   made and paid in one call). The units the store counts as taken must match the buyers
//!   served.
//! - **HTTP**: the reference shop's release binary over the backend's database (SQLite,
//!   PostgreSQL, MariaDB), `--http-clients` buyers (default 16 on SQLite, 64 on the servers)
//!   in a closed loop for `--hot-seconds`, each checkout a new visitor: add to cart, shipping
//!   quotes, pay. Beside the in-process SDK checkout of the hot SKU scenario.
//! - **mix**: browse, search, cart and checkout arriving at `--rate` per second (open loop),
//!   then `--spike` times that for `--spike-seconds`, then back; per operation and phase, and
//!   over time. The raw pass replays the same arrivals on each operation's floor.
//!
//! Output: a markdown table on stdout, `report.json` and SVG charts in `--out`.

#[path = "../common/mod.rs"]
mod common;

mod backends;
mod flash;
mod http;
mod mix;
mod plot;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, ValueEnum};
use ecommerce::demo;
use ecommerce::search::SearchDocument;
use ecommerce_search::TantivySearch;
use indicatif::{ProgressBar, ProgressStyle};

use crate::backends::{Backend, Kind, Urls};
use crate::flash::{BUY_NOW, COUPON_CHECKOUT, PRICED_CHECKOUT, PathResult, RAW_CHECKOUT};
use crate::mix::{MixResult, Schedule, Workload};
use crate::plot::{Line, chart};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    FlashSale,
    HotSku,
    Http,
    Mix,
}

/// The load harness of the ecommerce SDK.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Which scenarios to run, comma separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    scenario: Vec<Scenario>,
    /// Backends, comma separated [default: memory, sqlite, and each server whose URL is set].
    #[arg(long, value_enum, value_delimiter = ',')]
    backend: Vec<Kind>,
    #[arg(long, env = "ECOMMERCE_TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    #[arg(long, env = "ECOMMERCE_TEST_MYSQL_URL")]
    mysql_url: Option<String>,
    #[arg(long, env = "ECOMMERCE_TEST_REDIS_URL")]
    redis_url: Option<String>,
    /// Flash sale: buyers pressing "Pay" at once.
    #[arg(long, default_value_t = 10_000)]
    buyers: usize,
    /// Flash sale: units on sale.
    #[arg(long, default_value_t = 100)]
    units: u32,
    /// Flash sale: buyers served at a time.
    #[arg(long, default_value_t = 256)]
    in_flight: usize,
    /// Hot SKU: concurrent buyers.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Hot SKU: seconds per path.
    #[arg(long, default_value_t = 5.0)]
    hot_seconds: f64,
    /// HTTP: concurrent buyers [default: 16 on SQLite, 64 on the servers].
    #[arg(long)]
    http_clients: Option<usize>,
    /// Hot SKU: stock rows to spread the SKU over on SQL (1 = one row).
    #[arg(long, default_value_t = 1)]
    buckets: u32,
    /// Mix: operations per second before and after the spike.
    #[arg(long, default_value_t = 200.0)]
    rate: f64,
    /// Mix: how many times the rate during the spike.
    #[arg(long, default_value_t = 5.0)]
    spike: f64,
    #[arg(long, default_value_t = 10.0)]
    steady_seconds: f64,
    #[arg(long, default_value_t = 5.0)]
    spike_seconds: f64,
    #[arg(long, default_value_t = 5.0)]
    after_seconds: f64,
    /// Mix: products in the catalog.
    #[arg(long, default_value_t = 1_000)]
    products: usize,
    /// Where report.json and the charts go.
    #[arg(long, default_value = "target/load")]
    out: PathBuf,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Args {
    fn backends(&self) -> Vec<Kind> {
        if !self.backend.is_empty() {
            return self.backend.clone();
        }
        let mut kinds = vec![Kind::Memory, Kind::Sqlite];
        if self.postgres_url.is_some() {
            kinds.push(Kind::Postgres);
        }
        if self.mysql_url.is_some() {
            kinds.push(Kind::Mariadb);
        }
        if self.postgres_url.is_some() && self.redis_url.is_some() {
            kinds.push(Kind::RedisPostgres);
        }
        kinds
    }

    fn runs(&self, scenario: Scenario) -> bool {
        self.scenario.contains(&Scenario::All) || self.scenario.contains(&scenario)
    }
}

fn bar() -> ProgressBar {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg:<40} [{bar:40}] {pos}/{len} {elapsed}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar
}

async fn load_catalog(backend: &Backend, catalog: &[demo::DemoProduct], bar: &ProgressBar) {
    bar.set_message(format!("{} loading catalog", backend.kind.name()));
    bar.set_length(catalog.len() as u64);
    bar.set_position(0);
    for category in demo::categories() {
        backend
            .shop
            .upsert_category(category)
            .await
            .expect("category");
    }
    for item in catalog {
        backend
            .shop
            .catalog()
            .upsert_product(item.product.clone())
            .await
            .expect("product");
        for (variant, units) in item.product.variants.iter().zip(&item.stock) {
            if *units > 0 {
                backend
                    .inventory
                    .receive(&variant.sku, *units)
                    .await
                    .expect("stock");
            }
        }
        bar.inc(1);
    }
}

fn ratio(sdk: f64, raw: Option<f64>) -> String {
    raw.map_or("-".into(), |r| format!("{:.2}", sdk / r))
}

/// The floor a path is compared with, in the same backend's results: SDK reserve with raw
/// reserve, SDK checkout with raw checkout (2 tx) (raw reserve where there is none); a floor
/// with itself.
fn floor_of<'a>(results: &'a [PathResult], r: &PathResult) -> Option<&'a PathResult> {
    let of_backend = |path: &str| {
        results
            .iter()
            .find(|x| x.backend == r.backend && x.path == path)
    };
    match r.path {
        "SDK checkout" | BUY_NOW => of_backend(RAW_CHECKOUT).or_else(|| of_backend("raw reserve")),
        PRICED_CHECKOUT | COUPON_CHECKOUT => of_backend("SDK checkout"),
        "SDK reserve" => of_backend("raw reserve"),
        path => of_backend(path).filter(|_| path.starts_with("raw ")),
    }
}

fn print_flash(title: &str, results: &[PathResult], expect_units: Option<u32>) {
    println!("\n### {title}\n");
    println!(
        "| backend | path | ops | ok | ops/s | p50 ms | p99 ms | conn. hold ms / checkout | ops/s vs its raw floor |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in results {
        let raw = floor_of(results, r).map(|x| x.summary.per_second);
        let exact = match expect_units {
            Some(units) => {
                r.succeeded == units as usize && r.units_taken.is_none_or(|t| t == units)
            }
            None => r.units_taken.is_none_or(|t| t as usize == r.succeeded),
        };
        let ok = format!("{}{}", r.succeeded, if exact { "" } else { " **WRONG**" });
        println!(
            "| {} | {} | {} | {ok} | {:.0} | {:.1} | {:.1} | {} | {} |",
            r.backend,
            r.path,
            r.summary.count,
            r.summary.per_second,
            r.summary.p50_ms,
            r.summary.p99_ms,
            r.hold_ms.map_or("-".into(), |h| format!("{h:.1}")),
            ratio(r.summary.per_second, raw),
        );
    }
    println!(
        "\nops/s vs its raw floor: SDK reserve / raw reserve, SDK checkout and {BUY_NOW} / \
         {RAW_CHECKOUT} \
         (same writes, same two transactions, by hand on the native driver); the floors show \
         1.00. ok: {}.",
        if expect_units.is_some() {
            "buyers who got a unit; **WRONG** unless it and the units the store counts as taken \
             equal the units on sale"
        } else {
            "operations that got their unit; **WRONG** unless the store counts as many units \
             reserved (reserve paths) or sold (checkout paths)"
        }
    );
}

fn print_http(results: &[PathResult], hot: &[PathResult]) {
    println!("\n### The reference shop over HTTP\n");
    println!(
        "| backend | path | checkouts | confirmed | checkouts/s | p50 ms | p99 ms | p99 / p50 | vs in-process SDK checkout |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in results {
        let sdk = hot
            .iter()
            .find(|h| h.backend == r.backend && h.path == "SDK checkout")
            .map(|h| h.summary.per_second);
        println!(
            "| {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} |",
            r.backend,
            r.path,
            r.summary.count,
            r.succeeded,
            r.summary.per_second,
            r.summary.p50_ms,
            r.summary.p99_ms,
            r.summary.p99_ms / r.summary.p50_ms,
            ratio(r.summary.per_second, sdk),
        );
    }
    println!(
        "\nA checkout over HTTP is three requests by a new visitor (add to cart, shipping quotes \
         to Texas, pay with the approving card), from the first request to the confirmed order. \
         The last column divides by the hot SKU's in-process SDK checkout (no shipping or tax) \
         of the same backend in this run."
    );
}

fn print_mix(results: &[MixResult]) {
    println!("\n### Steady mix with a spike\n");
    println!(
        "| backend | operation | phase | SDK ops/s | SDK p50 ms | SDK p99 ms | raw p50 ms | raw p99 ms | p50 SDK / raw |"
    );
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for m in results {
        for o in &m.ops {
            let (rp50, rp99, r) = match o.raw {
                Some(raw) => (
                    format!("{:.2}", raw.p50_ms),
                    format!("{:.2}", raw.p99_ms),
                    format!("{:.2}", o.sdk.p50_ms / raw.p50_ms),
                ),
                None => ("-".into(), "-".into(), "-".into()),
            };
            println!(
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {rp50} | {rp99} | {r} |",
                o.backend, o.op, o.phase, o.sdk.per_second, o.sdk.p50_ms, o.sdk.p99_ms
            );
        }
    }
}

async fn run(args: Args) -> Result<bool, String> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("creating {}: {e}", args.out.display()))?;
    let urls = Urls {
        postgres: args.postgres_url.clone(),
        mysql: args.mysql_url.clone(),
        redis: args.redis_url.clone(),
    };
    let catalog: Vec<demo::DemoProduct> = demo::catalog(args.products, 2026).collect();
    let search = TantivySearch::in_ram().map_err(|e| e.to_string())?;
    let documents: Vec<SearchDocument> = catalog
        .iter()
        .filter_map(|d| SearchDocument::from_product(&d.product, d.stock.iter().any(|u| *u > 0)))
        .collect();
    search
        .rebuild(documents, |_| {})
        .map_err(|e| e.to_string())?;
    let work = Arc::new(Workload::new(&catalog));
    let schedule = Schedule {
        rate: args.rate,
        factor: args.spike,
        steady: args.steady_seconds,
        spike: args.spike_seconds,
        after: args.after_seconds,
    };

    let bar = bar();
    let (mut flash, mut hot, mut mixes) = (Vec::new(), Vec::new(), Vec::new());
    let mut over_http = Vec::new();
    let kinds = args.backends();
    for kind in &kinds {
        let backend = Arc::new(
            Backend::open(*kind, &urls, &search)
                .await
                .map_err(|e| format!("backend {}: {e}", kind.name()))?,
        );
        if args.runs(Scenario::FlashSale) {
            flash.extend(
                flash::flash_sale(&backend, args.buyers, args.units, args.in_flight, &bar).await,
            );
        }
        if args.runs(Scenario::HotSku) {
            hot.extend(
                flash::hot_sku_load(&backend, args.clients, args.hot_seconds, args.buckets, &bar)
                    .await,
            );
        }
        if args.runs(Scenario::Http)
            && matches!(kind, Kind::Sqlite | Kind::Postgres | Kind::Mariadb)
        {
            let clients = args.http_clients.unwrap_or(match kind {
                Kind::Sqlite => 16,
                _ => 64,
            });
            over_http.push(
                http::shop_over_http(*kind, &urls, clients, args.hot_seconds, &bar)
                    .await
                    .map_err(|e| format!("{} shop over HTTP: {e}", kind.name()))?,
            );
        }
        if args.runs(Scenario::Mix) {
            load_catalog(&backend, &catalog, &bar).await;
            mixes.push(mix::mix(&backend, &search, &work, schedule, &bar).await);
        }
        match Arc::try_unwrap(backend) {
            Ok(backend) => backend.close().await,
            Err(_) => return Err("a task still holds the backend".into()),
        }
    }
    bar.finish_and_clear();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "## Load harness: {} cores, backends {}",
        cores,
        kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut exact = true;
    if !flash.is_empty() {
        print_flash(
            &format!(
                "Flash sale: {} buyers for {} units, {} served at a time",
                args.buyers, args.units, args.in_flight
            ),
            &flash,
            Some(args.units),
        );
        for r in &flash {
            if r.succeeded != args.units as usize
                || r.units_taken.is_some_and(|t| t != args.units)
                || r.errors > 0
            {
                exact = false;
                eprintln!(
                    "FAILURE: {} {} sold {} (stock says {:?}) of {} units, {} errors",
                    r.backend, r.path, r.succeeded, r.units_taken, args.units, r.errors
                );
            }
        }
    }
    if !hot.is_empty() {
        print_flash(
            &format!(
                "Hot SKU: {} buyers in a loop for {} s, {} stock row(s)",
                args.clients, args.hot_seconds, args.buckets
            ),
            &hot,
            None,
        );
        for r in hot.iter().filter(|r| r.errors > 0) {
            exact = false;
            eprintln!("FAILURE: {} {}: {} errors", r.backend, r.path, r.errors);
        }
        for r in &hot {
            if r.units_taken.is_some_and(|t| t as usize != r.succeeded) {
                exact = false;
                eprintln!(
                    "FAILURE: {} {}: {} got their unit, the store counts {:?}",
                    r.backend, r.path, r.succeeded, r.units_taken
                );
            }
        }
    }
    if !over_http.is_empty() {
        print_http(&over_http, &hot);
        for r in &over_http {
            if r.errors > 0 || r.units_taken.is_some_and(|t| t as usize != r.succeeded) {
                exact = false;
                eprintln!(
                    "FAILURE: {} {}: {} confirmed, the store counts {:?} sold, {} errors",
                    r.backend, r.path, r.succeeded, r.units_taken, r.errors
                );
            }
        }
    }
    if !mixes.is_empty() {
        print_mix(&mixes);
    }

    let report = serde_json::json!({
        "machine": { "cores": cores },
        "args": format!("{args:?}"),
        "flash_sale": flash,
        "hot_sku": hot,
        "mix": mixes,
        "http": over_http,
    });
    let json = args.out.join("report.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&report).expect("json"))
        .map_err(|e| e.to_string())?;
    let mut written = vec![json];
    if !hot.is_empty() {
        let lines: Vec<Line<'_>> = hot
            .iter()
            // Memory runs two orders of magnitude faster and would flatten the rest. The
            // checkouts, each beside its floor.
            .filter(|r| {
                (r.path == "SDK checkout" || r.path == RAW_CHECKOUT) && r.backend != "memory"
            })
            .map(|r| Line {
                label: format!("{} {}", r.backend, r.path),
                color: kinds
                    .iter()
                    .position(|k| k.name() == r.backend)
                    .unwrap_or(0),
                sdk: r.path == "SDK checkout",
                points: &r.series,
            })
            .collect();
        let path = args.out.join("hot-sku.svg");
        chart(
            &path,
            "Hot SKU on the databases: SDK checkouts (thick) beside raw checkouts, 2 tx (thin)",
            &lines,
            None,
        )
        .map_err(|e| e.to_string())?;
        written.push(path);
    }
    if !mixes.is_empty() {
        let mut lines = Vec::new();
        for (i, m) in mixes.iter().enumerate() {
            lines.push(Line {
                label: format!("{} SDK", m.backend),
                color: i,
                sdk: true,
                points: &m.sdk_series,
            });
            lines.push(Line {
                label: format!("{} raw", m.backend),
                color: i,
                sdk: false,
                points: &m.raw_series,
            });
        }
        let path = args.out.join("mix.svg");
        let spike = (schedule.steady, schedule.steady + schedule.spike);
        chart(
            &path,
            "Mix with a 5x spike (shaded): SDK (thick) beside the raw floor (thin)",
            &lines,
            Some(spike),
        )
        .map_err(|e| e.to_string())?;
        written.push(path);
    }
    println!();
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(exact)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("FAILED: a path sold a different number of units than it had, or errored");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
