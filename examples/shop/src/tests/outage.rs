//! The catalog stays visible through an outage: the shop on PostgreSQL (with and without
//! Redis in front) behind a TCP proxy that the test cuts. Home, category and product pages
//! keep answering from the catalog cache and say the catalog is stale; once the proxy is
//! restored the shop is fresh again without a restart. The shared servers are never stopped.
//!
//! Needs `ECOMMERCE_TEST_POSTGRES_URL` (and `ECOMMERCE_TEST_REDIS_URL` for the Redis cases);
//! skipped without them unless `ECOMMERCE_TEST_REQUIRE_SERVICES=1`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ecommerce::testkit::proxy::{CutMode, TcpProxy};
use reqwest::StatusCode;
use reqwest::Url;
use serde_json::{Value, json};

use super::TestShop;
use super::api::{add, get, pay, post};

const STALE_NOTICE: &str = "The catalog is shown as of";

fn service(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("ECOMMERCE_TEST_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("{var} is required")
        }
        _ => {
            eprintln!("skipped: {var} not set");
            None
        }
    }
}

async fn address(url: &Url) -> SocketAddr {
    let host = url.host_str().expect("a host");
    let port = url.port_or_known_default().expect("a port");
    tokio::net::lookup_host((host, port))
        .await
        .expect("resolves")
        .next()
        .expect("an address")
}

/// A database of its own on the PostgreSQL server, dropped at the end.
struct Database {
    admin: sqlx::PgPool,
    name: String,
}

impl Database {
    async fn create(url: &str) -> Database {
        let admin = sqlx::PgPool::connect(url).await.expect("postgres");
        let name = format!("shop_outage_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create database");
        Database { admin, name }
    }

    async fn drop(self) {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&self.admin)
        .await;
    }
}

async fn page(client: &reqwest::Client, url: String) -> (StatusCode, String, Duration) {
    let started = Instant::now();
    let res = client.get(url).send().await.expect("the shop answers");
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    (status, body, started.elapsed())
}

/// Home, a category page and a product page: all answered, stale or not as expected.
async fn pages_answer(shop: &TestShop, category: &str, product: &str, stale: bool) {
    let client = shop.shopper();
    for path in [
        "/".to_owned(),
        format!("/category/{category}"),
        format!("/product/{product}"),
    ] {
        let (status, body, took) = page(&client, shop.at(&path)).await;
        println!("GET {path}: {status} in {took:?} (stale expected: {stale})");
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(
            body.contains(STALE_NOTICE),
            stale,
            "{path} says whether the catalog is stale"
        );
    }
}

async fn outage(cut_redis: bool, with_redis: bool) {
    let Some(pg) = service("ECOMMERCE_TEST_POSTGRES_URL") else {
        return;
    };
    let redis = if with_redis {
        match service("ECOMMERCE_TEST_REDIS_URL") {
            Some(url) => Some(url),
            None => return,
        }
    } else {
        None
    };
    let database = Database::create(&pg).await;
    let pg_url = Url::parse(&pg).expect("url");
    let pg_proxy = TcpProxy::start(address(&pg_url).await);
    let password = pg_url
        .password()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let shop_url = format!(
        "postgres://{}{password}@{}/{}",
        pg_url.username(),
        pg_proxy.addr(),
        database.name
    );
    let redis_proxy = match &redis {
        Some(url) => Some(TcpProxy::start(
            address(&Url::parse(url).expect("url")).await,
        )),
        None => None,
    };
    let redis_url = redis_proxy
        .as_ref()
        .map(|p| format!("redis://{}", p.addr()));

    let shop = TestShop::start_on(Some(shop_url), redis_url).await;
    // A product with stock for the three units the customer buys during the outage.
    let (id, sku, _, _) = shop.in_stock(3).await;
    let product = shop
        .state
        .shop
        .product(id)
        .await
        .expect("read")
        .expect("a product");
    let product_id = id.to_string();
    let category = product.category.to_string();
    pages_answer(&shop, &category, &product_id, false).await;

    // A customer signed in before the outage, and a guest.
    let customer = shop.shopper();
    post(
        &customer,
        shop.at("/api/signin"),
        json!({"email": "outage@example.com"}),
    )
    .await;
    let guest = shop.shopper();

    let cut = match (&redis_proxy, cut_redis) {
        (Some(proxy), true) => proxy,
        _ => &pg_proxy,
    };
    cut.cut(CutMode::Blackhole);
    if cut_redis {
        // Customer carts live in SQL and keep working; guest carts fail fast and typed.
        for _ in 0..3 {
            let started = Instant::now();
            let (status, body) = add(&shop, &customer, &sku, 1).await;
            println!("customer add to cart: {status} in {:?}", started.elapsed());
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        for _ in 0..3 {
            let started = Instant::now();
            let (status, body) = add(&shop, &guest, &sku, 1).await;
            println!("guest add to cart: {status} in {:?}", started.elapsed());
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        }
        // The customer pays: the cart is claimed, stock taken and the order confirmed in
        // SQL; the gate is skipped while Redis is down.
        let charges = shop.state.gateway.charges().len();
        let (status, order) = pay(&shop, &customer, "tok_approve").await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        assert_eq!(order["status"], "confirmed");
        assert_eq!(
            shop.state.gateway.charges().len(),
            charges + 1,
            "charged once"
        );
    }
    // The first requests find the store down (within its timeouts); after that nothing waits.
    pages_answer(&shop, &category, &product_id, !cut_redis).await;
    pages_answer(&shop, &category, &product_id, !cut_redis).await;
    let (status, body) = get(
        &shop.shopper(),
        shop.at(&format!("/api/products/{product_id}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    if !cut_redis {
        assert!(
            body["stock"]
                .as_array()
                .expect("stock")
                .iter()
                .all(Value::is_null),
            "stock is unknown while the database is down: {body}"
        );
    }

    cut.restore();
    // Fresh again without a restart, once a probe finds the store back.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body, _) = page(&shop.shopper(), shop.at("/")).await;
        if status == StatusCode::OK && !body.contains(STALE_NOTICE) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the shop stays stale after the restore"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pages_answer(&shop, &category, &product_id, false).await;

    let prefix = shop.redis_prefix.clone();
    drop(shop);
    if let Some(url) = &redis {
        forget_redis_keys(url, &prefix).await;
    }
    drop(pg_proxy);
    database.drop().await;
}

/// Removes the keys a test shop left in Redis (under its prefix).
async fn forget_redis_keys(url: &str, prefix: &str) {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("*{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    for key in keys {
        let _: Result<i64, _> = redis::cmd("DEL").arg(&key).query_async(&mut conn).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_up_through_a_database_outage() {
    outage(false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_up_through_a_database_outage_with_redis() {
    outage(false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_stay_up_through_a_redis_outage() {
    outage(true, true).await;
}
