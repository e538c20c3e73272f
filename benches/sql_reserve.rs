//! Stock reservation on SQL: the SDK beside the same SQL sent through sqlx alone.
//!
//! Run with: `cargo bench --bench sql_reserve -- [--seconds 2] [--reps 3] [--db postgres,mysql,sqlite]`
//!
//! For each database reachable through `ECOMMERCE_TEST_POSTGRES_URL` /
//! `ECOMMERCE_TEST_MYSQL_URL` (SQLite always runs, on a temporary file), it measures
//! reservations per second of one unit:
//! - on one hot SKU (every client on the same row), and on 1,000 random SKUs;
//! - at 1, 8 and 32 concurrent clients;
//! - through `SqlInventory::reserve` (the SDK), and through the native sqlx driver sending the
//!   statements the SDK sends (the raw floor: conditional decrement, ledger row, reservation
//!   row, in one transaction);
//! - for the hot SKU also spread over 16 buckets (SDK), against the single-row raw figure;
//!
//! and whole checkouts per second (`Storefront::place_order`, test gateway) at 32 clients.
//! Each figure is the median of `--reps` runs of `--seconds` each; raw and SDK runs alternate.

use std::sync::Arc;
use std::time::Duration;

use ecommerce::CheckoutRequest;
use ecommerce::catalog::{Product, Variant};
use ecommerce::id::{CategoryId, CustomerId, IdempotencyKey, OrderId, ProductId, Sku};
use ecommerce::inventory::{InventoryStore, ReservationLine};
use ecommerce::payment::{PaymentMethod, TestGateway};
use ecommerce::{Currency, Money};
use ecommerce_sqlx::{SqlInventory, SqlStores, SqlUnitOfWork};

mod common;

use common::sql::target;
use common::{median, throughput};

const TTL: Duration = Duration::from_secs(3600);
const RANDOM_SKUS: usize = 1_000;

#[derive(Debug, Clone)]
struct Args {
    seconds: f64,
    reps: usize,
    dbs: Vec<String>,
}

fn args() -> Args {
    let mut args = Args {
        seconds: 2.0,
        reps: 3,
        dbs: vec!["postgres".into(), "mysql".into(), "sqlite".into()],
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => args.seconds = it.next().and_then(|v| v.parse().ok()).unwrap_or(2.0),
            "--reps" => args.reps = it.next().and_then(|v| v.parse().ok()).unwrap_or(3),
            "--db" => {
                args.dbs = it
                    .next()
                    .map(|v| v.split(',').map(str::to_owned).collect())
                    .unwrap_or_default()
            }
            _ => {}
        }
    }
    args
}

fn sku(s: String) -> Sku {
    Sku::new(s).expect("bench sku")
}

struct Line {
    db: &'static str,
    workload: String,
    clients: usize,
    raw: Option<f64>,
    sdk: f64,
}

#[tokio::main]
async fn main() {
    let args = args();
    let mut table: Vec<Line> = Vec::new();
    for name in &args.dbs {
        let url = match name.as_str() {
            "postgres" => std::env::var("ECOMMERCE_TEST_POSTGRES_URL").ok(),
            "mysql" => std::env::var("ECOMMERCE_TEST_MYSQL_URL").ok(),
            _ => None,
        };
        let Some(t) = target(name, url.as_deref()).await else {
            eprintln!("skipped {name}: not configured or unreachable");
            continue;
        };
        eprintln!("benchmarking {} ...", t.name);
        let inventory = Arc::new(SqlInventory::new(t.sdk.clone()));
        let mut run = 0usize;
        for workload in ["hot SKU", "random SKUs"] {
            for clients in [1usize, 8, 32] {
                run += 1;
                let skus: Arc<Vec<String>> = Arc::new(if workload == "hot SKU" {
                    vec![format!("HOT-{run}")]
                } else {
                    (0..RANDOM_SKUS).map(|i| format!("R{run}-{i}")).collect()
                });
                for s in skus.iter() {
                    inventory
                        .receive(&sku(s.clone()), 1_000_000)
                        .await
                        .expect("stock");
                }
                let mut raw_runs = Vec::new();
                let mut sdk_runs = Vec::new();
                for _ in 0..args.reps {
                    let (raw, list) = (t.raw.clone(), skus.clone());
                    raw_runs.push(
                        throughput(clients, args.seconds, move |c, i| {
                            let (raw, list) = (raw.clone(), list.clone());
                            async move {
                                let s = &list[(c * 7919 + i as usize * 104_729) % list.len()];
                                assert!(
                                    raw.reserve(s).await.expect("raw reserve"),
                                    "raw reservation found no stock"
                                );
                            }
                        })
                        .await,
                    );
                    let (inv, list) = (inventory.clone(), skus.clone());
                    sdk_runs.push(
                        throughput(clients, args.seconds, move |c, i| {
                            let (inv, list) = (inv.clone(), list.clone());
                            async move {
                                let s = &list[(c * 7919 + i as usize * 104_729) % list.len()];
                                let line = ReservationLine {
                                    sku: sku(s.clone()),
                                    quantity: 1,
                                };
                                inv.reserve(OrderId::new(), &[line], TTL)
                                    .await
                                    .expect("sdk reserve");
                            }
                        })
                        .await,
                    );
                }
                table.push(Line {
                    db: t.name,
                    workload: workload.into(),
                    clients,
                    raw: Some(median(raw_runs)),
                    sdk: median(sdk_runs),
                });
            }
        }

        // The hot SKU spread over 16 buckets, against the single-row raw figure at 32 clients.
        let hot = sku("HOT-BUCKETED".into());
        inventory.receive(&hot, 1_000_000).await.expect("stock");
        inventory.set_buckets(&hot, 16).await.expect("buckets");
        let mut runs = Vec::new();
        for _ in 0..args.reps {
            let (inv, hot) = (inventory.clone(), hot.clone());
            runs.push(
                throughput(32, args.seconds, move |_, _| {
                    let (inv, hot) = (inv.clone(), hot.clone());
                    async move {
                        let line = ReservationLine {
                            sku: hot,
                            quantity: 1,
                        };
                        inv.reserve(OrderId::new(), &[line], TTL)
                            .await
                            .expect("sdk reserve");
                    }
                })
                .await,
            );
        }
        let single_raw = table
            .iter()
            .find(|l| l.db == t.name && l.workload == "hot SKU" && l.clients == 32)
            .and_then(|l| l.raw);
        table.push(Line {
            db: t.name,
            workload: "hot SKU, 16 buckets (raw: 1 row)".into(),
            clients: 32,
            raw: single_raw,
            sdk: median(runs),
        });

        // Whole checkouts: place_order with the test gateway, single-row and bucketed hot SKU.
        for (label, buckets) in [
            ("checkouts, hot SKU", 1u32),
            ("checkouts, hot SKU, 16 buckets", 16),
        ] {
            let stores = SqlStores::new(t.sdk.clone());
            let inventory = SqlInventory::new(t.sdk.clone());
            let unit = SqlUnitOfWork::new((*stores.orders).clone(), inventory.clone());
            let shop = stores
                .builder(Arc::new(TestGateway::default()))
                .inventory(Arc::new(inventory.clone()))
                .unit_of_work(Arc::new(unit))
                .with_memory_defaults()
                .build()
                .expect("storefront");
            let s = sku(format!("CHK-{buckets}"));
            shop.upsert_product(
                Product::new(
                    ProductId::new(),
                    "Bench item",
                    CategoryId::new("bench").expect("slug"),
                )
                .with_brand("Acme")
                .with_variants([Variant::new(
                    s.clone(),
                    Money::from_minor(1_000, Currency::USD),
                )]),
            )
            .await
            .expect("product");
            shop.receive_stock(&s, 1_000_000).await.expect("stock");
            if buckets > 1 {
                inventory.set_buckets(&s, buckets).await.expect("buckets");
            }
            let mut runs = Vec::new();
            for rep in 0..args.reps {
                let (shop, s) = (shop.clone(), s.clone());
                runs.push(
                    throughput(32, args.seconds, move |c, i| {
                        let (shop, s) = (shop.clone(), s.clone());
                        async move {
                            let customer = CustomerId::new();
                            let cart = shop.customer_cart(customer).await.expect("cart");
                            shop.add_item(cart.id, &s, 1).await.expect("add");
                            let key = IdempotencyKey::new(format!("b{buckets}-{rep}-{c}-{i}"))
                                .expect("key");
                            shop.place_order(CheckoutRequest::new(
                                cart.id,
                                customer,
                                PaymentMethod::new("tok_approve").expect("token"),
                                key,
                            ))
                            .await
                            .expect("checkout");
                        }
                    })
                    .await,
                );
            }
            table.push(Line {
                db: t.name,
                workload: label.into(),
                clients: 32,
                raw: None,
                sdk: median(runs),
            });
        }

        t.cleanup().await;
    }

    println!(
        "\n| database | workload | clients | raw sqlx (ops/s) | SDK (ops/s) | SDK / raw |\n| --- | --- | ---: | ---: | ---: | ---: |"
    );
    for l in &table {
        let (raw, ratio) = match l.raw {
            Some(r) => (format!("{r:.0}"), format!("{:.2}", l.sdk / r)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "| {} | {} | {} | {} | {:.0} | {} |",
            l.db, l.workload, l.clients, raw, l.sdk, ratio
        );
    }
    println!(
        "\nmedian of {} runs of {} s each; {} cores",
        args.reps,
        args.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
