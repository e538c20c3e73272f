//! The reference shop over HTTP: its release binary on a free port, over a database of its own
//! on the backend's server (a temporary folder for SQLite), driven through its JSON API by
//! buyers in a closed loop. Each checkout is a new visitor (no session cookie yet) on a kept-
//! alive connection: add one unit of the hot SKU to the cart (the shop starts a session and a
//! cart), ask for shipping quotes to a Texas address, and pay with the approving test card. A
//! checkout counts from its first request to the confirmed order.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ecommerce::demo;
use ecommerce::id::Sku;
use ecommerce::inventory::InventoryStore;
use ecommerce_sqlx::SqlStores;
use indicatif::ProgressBar;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::backends::{Kind, Urls};
use crate::flash::PathResult;
use crate::stats::{Recorder, series, summarize};

/// The path's name in the tables.
pub(crate) const HTTP_CHECKOUT: &str = "shop over HTTP: checkout";

/// Demo products the shop seeds (the hot SKU is among them).
const PRODUCTS: usize = 200;

/// Units of the hot SKU received before the run: more than any run sells.
const HOT_UNITS: u32 = ecommerce::inventory::MAX_QUANTITY;

/// A database of its own on a server, dropped at the end.
struct Database {
    shop_url: String,
    admin_url: String,
    drop: Option<String>,
    _dir: Option<TempDir>,
}

/// A folder removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> TempDir {
    let dir = std::env::temp_dir().join(format!("ecommerce-load-shop-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temporary folder");
    TempDir(dir)
}

/// `url` with its database (the path) replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Database {
    async fn create(kind: Kind, urls: &Urls) -> Result<Database, String> {
        let name = format!("ecommerce_load_shop_{}", uuid::Uuid::new_v4().simple());
        let admin_url = match kind {
            Kind::Sqlite => {
                let dir = temp_dir();
                let url = format!("sqlite://{}?mode=rwc", dir.0.join("shop.db").display());
                return Ok(Database {
                    shop_url: url.clone(),
                    admin_url: url,
                    drop: None,
                    _dir: Some(dir),
                });
            }
            Kind::Postgres => urls.postgres.clone().ok_or("--postgres-url is not set")?,
            Kind::Mariadb => urls.mysql.clone().ok_or("--mysql-url is not set")?,
            Kind::Memory | Kind::RedisPostgres => {
                return Err(format!("the shop does not run on {}", kind.name()));
            }
        };
        let admin = ecommerce_sqlx::Db::connect(&admin_url)
            .await
            .map_err(|e| e.to_string())?;
        admin
            .execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(|e| format!("creating the shop's database: {e}"))?;
        admin.close().await;
        let drop = match kind {
            Kind::Postgres => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            _ => format!("DROP DATABASE IF EXISTS {name}"),
        };
        Ok(Database {
            shop_url: with_database(&admin_url, &name),
            admin_url,
            drop: Some(drop),
            _dir: None,
        })
    }

    async fn remove(self) {
        if let Some(drop) = &self.drop {
            if let Ok(admin) = ecommerce_sqlx::Db::connect(&self.admin_url).await {
                let _ = admin.execute(drop).await;
                admin.close().await;
            }
        }
    }
}

/// Builds the shop's release binary (it is a package of its own) and returns its path.
fn build_shop() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "shop"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .map_err(|e| format!("building the shop: {e}"))?;
    if !status.success() {
        return Err("building the shop failed".into());
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    Ok(target.join("release").join("shop"))
}

/// The shop, running; killed on drop.
struct Shop {
    base: String,
    _process: Child,
    _data: TempDir,
}

async fn start_shop(binary: &PathBuf, database_url: &str) -> Result<Shop, String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let data = temp_dir();
    let process = Command::new(binary)
        .args(["--addr", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data.0)
        .args(["--database-url", database_url])
        .args(["--demo-products", &PRODUCTS.to_string()])
        // Warnings only: a log line per request would measure the terminal.
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", binary.display()))?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(res) = client.get(format!("{base}/api/categories")).send().await {
            if res.status().is_success() {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err("the shop did not open within two minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(Shop {
        base,
        _process: process,
        _data: data,
    })
}

/// The hot SKU: the first published variant of the demo catalog the shop seeded.
fn hot_sku() -> Sku {
    demo::catalog(PRODUCTS, 2026)
        .filter(|item| item.product.published)
        .flat_map(|item| item.product.variants.into_iter())
        .find(|variant| variant.published)
        .map(|variant| variant.sku)
        .expect("the demo catalog has a published variant")
}

/// One whole checkout by a new visitor; `Ok(true)` when the order is confirmed.
async fn checkout(client: &reqwest::Client, base: &str, sku: &Sku) -> Result<bool, String> {
    let texas = json!({
        "name": "Grace Hopper", "line1": "1 Congress Ave", "city": "Austin",
        "region": "TX", "postal_code": "78701", "country": "US"
    });
    let added = client
        .post(format!("{base}/api/cart/items"))
        .json(&json!({"sku": sku, "quantity": 1}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !added.status().is_success() {
        return Err(format!("add to cart: {}", added.status()));
    }
    let cookie = added
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';')
                .next()
                .filter(|c| c.starts_with("shop_session="))
        })
        .ok_or("no session cookie")?
        .to_owned();
    let quotes: Value = client
        .post(format!("{base}/api/checkout/shipping-quotes"))
        .header(reqwest::header::COOKIE, &cookie)
        .json(&json!({"address": texas}))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let delivery = json!({
        "email": "grace@example.com",
        "shipping_address": texas,
        "shipping": quotes[0],
    });
    let paid = client
        .post(format!("{base}/api/checkout"))
        .header(reqwest::header::COOKIE, &cookie)
        .json(&json!({
            "payment_method": "tok_approve",
            "idempotency_key": uuid::Uuid::new_v4().to_string(),
            "delivery": delivery,
        }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = paid.status();
    let order: Value = paid.json().await.map_err(|e| e.to_string())?;
    if status != reqwest::StatusCode::CREATED {
        return Err(format!("checkout: {status} {}", order["error"]["code"]));
    }
    Ok(order["status"] == "confirmed")
}

/// The shop on `kind`'s database, `clients` buyers for `seconds`.
pub(crate) async fn shop_over_http(
    kind: Kind,
    urls: &Urls,
    clients: usize,
    seconds: f64,
    bar: &ProgressBar,
) -> Result<PathResult, String> {
    bar.set_message(format!("{} shop over HTTP: starting", kind.name()));
    let binary = tokio::task::spawn_blocking(build_shop)
        .await
        .map_err(|e| e.to_string())??;
    let database = Database::create(kind, urls).await?;
    let result = drive(kind, &binary, &database, clients, seconds, bar).await;
    database.remove().await;
    result
}

async fn drive(
    kind: Kind,
    binary: &PathBuf,
    database: &Database,
    clients: usize,
    seconds: f64,
    bar: &ProgressBar,
) -> Result<PathResult, String> {
    let shop = start_shop(binary, &database.shop_url).await?;
    // The stock, received through the SDK on the shop's database.
    let stores = SqlStores::connect(&database.shop_url)
        .await
        .map_err(|e| e.to_string())?;
    let sku = hot_sku();
    stores
        .inventory
        .receive(&sku, HOT_UNITS)
        .await
        .map_err(|e| e.to_string())?;
    let sold_before = stores
        .inventory
        .level(&sku)
        .await
        .map_err(|e| e.to_string())?
        .sold;

    bar.set_message(format!("{} shop over HTTP: {clients} buyers", kind.name()));
    let recorder = Arc::new(Recorder::new());
    let (confirmed, errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (recorder, confirmed, errors) = (recorder.clone(), confirmed.clone(), errors.clone());
        let (base, sku, first_error) = (shop.base.clone(), sku.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while Instant::now() < until {
                let began = Instant::now();
                let outcome = checkout(&client, &base, &sku).await;
                let ok = matches!(outcome, Ok(true));
                recorder.record("checkout", began, ok);
                match outcome {
                    Ok(true) => {
                        confirmed.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(false) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().expect("error").get_or_insert(e);
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())?;
    }
    let wall = recorder.elapsed().as_secs_f64();
    if let Some(e) = first_error.lock().expect("error").take() {
        eprintln!("{} shop over HTTP: first error: {e}", kind.name());
    }
    let sold = stores
        .inventory
        .level(&sku)
        .await
        .map_err(|e| e.to_string())?
        .sold;
    stores.db.close().await;
    drop(shop);
    let samples = recorder.samples();
    Ok(PathResult {
        backend: kind.name(),
        path: HTTP_CHECKOUT,
        summary: summarize(&samples, wall, |_| true),
        succeeded: confirmed.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        hold_ms: None,
        units_taken: Some(sold - sold_before),
        series: series(&samples, 1.0, wall, |_| true),
    })
}
