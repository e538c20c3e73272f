//! Carts and stock on Redis: the SDK beside the same Redis commands sent raw through the redis
//! crate.
//!
//! Run with: `cargo bench --bench redis -- [--seconds 2] [--reps 3]` (uses
//! `ECOMMERCE_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`).
//!
//! At 1, 8 and 50 concurrent clients it measures operations per second of:
//! - cart write: `RedisCartStore::save` of a one-line cart (compare-and-set script), beside
//!   the same script invoked raw with the JSON prepared once;
//! - cart read: `RedisCartStore::load`, beside a raw `HGET`;
//! - stock reserve: `RedisInventory::reserve` of one unit of one of 100 SKUs, beside the same
//!   script invoked raw.
//!
//! Each figure is the median of `--reps` runs of `--seconds`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{median, throughput};
use ecommerce::cart::{Cart, CartLimits, CartStore};
use ecommerce::catalog::Offer;
use ecommerce::id::{OrderId, ProductId, ReservationId, Sku};
use ecommerce::inventory::{InventoryStore, ReservationLine};
use ecommerce::{Currency, Money};
use ecommerce_redis::{Redis, RedisCartStore, RedisInventory};
use redis::{AsyncCommands, Script};
use tokio::sync::Mutex;

fn arg(name: &str, default: f64) -> f64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cart_with_a_line() -> Cart {
    let mut cart = Cart::new_guest();
    let offer = Offer {
        sku: Sku::new("BENCH-1").expect("sku"),
        product: ProductId::new(),
        title: "Bench item".into(),
        price: Money::from_minor(1_999, Currency::USD),
        available: true,
        profile: Default::default(),
    };
    cart.add(&offer, 1, &CartLimits::default()).expect("add");
    cart
}

#[tokio::main]
async fn main() {
    let seconds = arg("--seconds", 2.0);
    let reps = arg("--reps", 3.0) as usize;
    let url = std::env::var("ECOMMERCE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("bench{}", uuid::Uuid::new_v4().simple());
    let redis = match Redis::connect(&url, &prefix).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("redis unreachable at {url}: {e}");
            std::process::exit(1);
        }
    };
    let carts = Arc::new(RedisCartStore::new(redis.clone(), Duration::from_secs(600)));
    let inventory = Arc::new(RedisInventory::new(redis.clone()));
    let save = Arc::new(Script::new(include_str!(
        "../ecommerce-redis/lua/cart_save.lua"
    )));
    let reserve = Arc::new(Script::new(include_str!(
        "../ecommerce-redis/lua/stock_reserve.lua"
    )));
    let skus: Arc<Vec<Sku>> = Arc::new(
        (0..100)
            .map(|i| Sku::new(format!("RB-{i}")).expect("sku"))
            .collect(),
    );
    for sku in skus.iter() {
        inventory.receive(sku, 1_000_000).await.expect("stock");
    }

    let mut rows = Vec::new();
    for clients in [1usize, 8, 50] {
        // One cart per client, for the SDK and for the raw runs.
        let sdk_carts: Arc<Vec<Mutex<Cart>>> = Arc::new(
            (0..clients)
                .map(|_| Mutex::new(cart_with_a_line()))
                .collect(),
        );
        let raw_carts: Arc<Vec<Mutex<(String, u64, String)>>> = Arc::new(
            (0..clients)
                .map(|_| {
                    let cart = cart_with_a_line();
                    let key = format!("{{{prefix}:cart:{}}}", cart.id);
                    Mutex::new((key, 0, serde_json::to_string(&cart).expect("json")))
                })
                .collect(),
        );
        let (mut sw, mut rw, mut sr, mut rr, mut sv, mut rv) =
            (vec![], vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..reps {
            let (c, s) = (carts.clone(), sdk_carts.clone());
            sw.push(
                throughput(clients, seconds, move |client, _| {
                    let (c, s) = (c.clone(), s.clone());
                    async move {
                        let mut cart = s[client].lock().await;
                        *cart = c.save(&cart).await.expect("save");
                    }
                })
                .await,
            );
            let (r, s, script) = (redis.clone(), raw_carts.clone(), save.clone());
            rw.push(
                throughput(clients, seconds, move |client, _| {
                    let (r, s, script) = (r.clone(), s.clone(), script.clone());
                    async move {
                        let mut slot = s[client].lock().await;
                        let written: i64 = script
                            .key(&slot.0)
                            .arg(slot.1)
                            .arg(&slot.2)
                            .arg(600_000)
                            .invoke_async(&mut r.connection())
                            .await
                            .expect("raw save");
                        assert_eq!(written, 1);
                        slot.1 += 1;
                    }
                })
                .await,
            );
            let (c, s) = (carts.clone(), sdk_carts.clone());
            sr.push(
                throughput(clients, seconds, move |client, _| {
                    let (c, s) = (c.clone(), s.clone());
                    async move {
                        let id = s[client].lock().await.id;
                        std::hint::black_box(c.load(id).await.expect("load"));
                    }
                })
                .await,
            );
            let (r, s) = (redis.clone(), raw_carts.clone());
            rr.push(
                throughput(clients, seconds, move |client, _| {
                    let (r, s) = (r.clone(), s.clone());
                    async move {
                        let key = s[client].lock().await.0.clone();
                        let doc: Option<String> =
                            r.connection().hget(key, "doc").await.expect("hget");
                        std::hint::black_box(doc);
                    }
                })
                .await,
            );
            let (inv, list) = (inventory.clone(), skus.clone());
            sv.push(
                throughput(clients, seconds, move |client, i| {
                    let (inv, list) = (inv.clone(), list.clone());
                    async move {
                        let sku = list[(client * 31 + i as usize) % list.len()].clone();
                        inv.reserve(
                            OrderId::new(),
                            &[ReservationLine { sku, quantity: 1 }],
                            Duration::from_secs(600),
                        )
                        .await
                        .expect("reserve");
                    }
                })
                .await,
            );
            let (r, list, script, p) =
                (redis.clone(), skus.clone(), reserve.clone(), prefix.clone());
            rv.push(
                throughput(clients, seconds, move |client, i| {
                    let (r, list, script, p) = (r.clone(), list.clone(), script.clone(), p.clone());
                    async move {
                        let sku = &list[(client * 31 + i as usize) % list.len()];
                        let reply: Vec<String> = script
                            .key(format!("{{{p}:inv}}:on_hand"))
                            .key(format!("{{{p}:inv}}:reserved"))
                            .key(format!("{{{p}:inv}}:reservations"))
                            .key(format!("{{{p}:inv}}:expiries"))
                            .key(format!("{{{p}:inv}}:ledger:{sku}"))
                            .arg(OrderId::new().to_string())
                            .arg(ReservationId::new().to_string())
                            .arg(600_000)
                            .arg(sku.as_str())
                            .arg(1)
                            .invoke_async(&mut r.connection())
                            .await
                            .expect("raw reserve");
                        std::hint::black_box(reply);
                    }
                })
                .await,
            );
        }
        rows.push(("cart write", clients, median(rw), median(sw)));
        rows.push(("cart read", clients, median(rr), median(sr)));
        rows.push(("stock reserve", clients, median(rv), median(sv)));
    }

    println!(
        "\n| operation | clients | raw redis (ops/s) | SDK (ops/s) | SDK / raw |\n| --- | ---: | ---: | ---: | ---: |"
    );
    rows.sort_by_key(|r| (r.0, r.1));
    for (op, clients, raw, sdk) in rows {
        println!(
            "| {op} | {clients} | {raw:.0} | {sdk:.0} | {:.2} |",
            sdk / raw
        );
    }
    println!(
        "\nmedian of {reps} runs of {seconds} s; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let keys: Vec<String> = redis
        .connection()
        .keys(format!("{{{prefix}:*"))
        .await
        .unwrap_or_default();
    for key in keys {
        let _: Result<i64, _> = redis.connection().del(key).await;
    }
}
