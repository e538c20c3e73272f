//! The shop as an attacker tries it: requests from other sites, stolen and old session
//! cookies, slow clients, webhook floods, strangers at the test bank, stock held by payments
//! nobody finishes, and input that is not what it claims to be.

use std::time::Duration;

use ecommerce::payment::PaymentId;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, ORIGIN, REFERER, SET_COOKIE};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TestShop;
use super::api::{add, error_code, get, pay, post};
use crate::payments::SIGNATURE_HEADER;

/// The shop's address as `host:port`.
fn authority(shop: &TestShop) -> String {
    shop.url.trim_start_matches("http://").to_owned()
}

/// The session cookie a response set, as `name=value`.
fn session_cookie(res: &reqwest::Response) -> String {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(crate::session::COOKIE_NAME))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned()
}

#[tokio::test]
async fn requests_from_other_origins_are_refused_and_change_nothing() {
    let shop = TestShop::start().await;
    let (_, sku, _, _) = shop.in_stock(1).await;
    let victim = shop.shopper();
    let here = format!("http://{}", authority(&shop));
    // Another port of the same host is another origin (and the same site).
    let other_port = "http://127.0.0.1:1";

    // Login CSRF: a form on another site signs the victim in as the attacker.
    for (header, value) in [
        (ORIGIN, "https://attacker.example"),
        (ORIGIN, other_port),
        (ORIGIN, "null"),
        (REFERER, "https://attacker.example/page"),
    ] {
        let res = victim
            .post(shop.at("/signin"))
            .header(header.clone(), value)
            .form(&[("email", "attacker@example.com")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{header}: {value}");
        assert!(
            res.headers().get(SET_COOKIE).is_none(),
            "no session was set"
        );
        let body = res.text().await.unwrap();
        assert!(body.contains("cross_site_request"), "{body}");
    }
    // A browser's own say-so: a cross-site or same-site (not same-origin) fetch.
    for site in ["cross-site", "same-site"] {
        let res = victim
            .post(shop.at("/api/cart/items"))
            .header("sec-fetch-site", site)
            .json(&json!({"sku": sku, "quantity": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{site}");
    }
    let (_, cart) = get(&victim, shop.at("/api/cart")).await;
    assert_eq!(cart["lines"].as_array().map_or(0, Vec::len), 0, "{cart}");
    let (_, orders) = get(&victim, shop.at("/api/orders")).await;
    assert_eq!(orders["items"].as_array().map_or(0, Vec::len), 0);

    // The shop's own pages, and clients that are not browsers, are served.
    let res = victim
        .post(shop.at("/api/cart/items"))
        .header(ORIGIN, &here)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"sku": sku, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = victim
        .post(shop.at("/signin"))
        .header(REFERER, format!("{here}/signin"))
        .form(&[("email", "victim@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (status, _) = add(&shop, &victim, &sku, 1).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_session_expires_and_an_old_cookie_names_nothing_after_sign_out() {
    let shop = TestShop::start().await;
    let (_, sku, _, _) = shop.in_stock(1).await;
    let http = reqwest::Client::new();
    let res = http
        .post(shop.at("/api/signin"))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let set_cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(
        set_cookie.contains("Max-Age=604800") || set_cookie.contains("Expires="),
        "the cookie expires: {set_cookie}"
    );
    let cookie = session_cookie(&res);
    let with_cookie = |req: reqwest::RequestBuilder| req.header(COOKIE, &cookie);

    // Signed in: the cart is the customer's.
    let res = with_cookie(http.post(shop.at("/api/cart/items")))
        .json(&json!({"sku": sku, "quantity": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cart: Value = res.json().await.unwrap();
    let cart_id = cart["id"].as_str().unwrap().to_owned();

    // Signing out ends the session: the copy of the cookie taken before names nothing.
    let res = with_cookie(http.post(shop.at("/api/signout")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = with_cookie(http.get(shop.at(&format!("/api/carts/{cart_id}"))))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the old cookie is a guest"
    );
    let cart: Value = with_cookie(http.get(shop.at("/api/cart")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(cart["lines"].as_array().map_or(0, Vec::len), 0, "{cart}");
}

/// Reads until the server closes the connection; `true` when it did so within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(wait, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let shop = TestShop::start().await;
    // The test shop gives 2 s for the headers and 2 s for the body; 30 s would mean never.
    let never = Duration::from_secs(30);

    // A connection that sends nothing.
    let mut idle = TcpStream::connect(authority(&shop)).await.unwrap();
    assert!(
        closed_within(&mut idle, never).await,
        "an idle connection is closed"
    );

    // Headers trickled a byte at a time.
    let mut trickle = TcpStream::connect(authority(&shop)).await.unwrap();
    let writer = async {
        for byte in b"GET / HTTP/1.1\r\nHost: shop\r\nX-Slow: ".iter().cycle() {
            if trickle.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    assert!(
        tokio::time::timeout(never, writer).await.is_ok(),
        "trickled headers are cut off"
    );

    // A body trickled after its headers.
    let mut body = TcpStream::connect(authority(&shop)).await.unwrap();
    body.write_all(
        format!(
            "POST /api/signin HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{",
            authority(&shop)
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let cut = tokio::time::timeout(never, async {
        let mut buf = [0u8; 1024];
        loop {
            let _ = body.write_all(b" ").await;
            tokio::select! {
                read = body.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => answer.extend_from_slice(&buf[..n]),
                },
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    })
    .await;
    assert!(cut.is_ok(), "a trickled body is cut off");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");

    // An honest client is still served.
    let (status, _) = get(&shop.shopper(), shop.at("/api/categories")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_webhook_flooded_with_signatures_is_refused_as_malformed() {
    let shop = TestShop::start().await;
    let wrong = format!("v1={}", "ab".repeat(32));
    let header = format!(
        "t={},{}",
        chrono::Utc::now().timestamp(),
        vec![wrong.as_str(); 6_000].join(",")
    );
    let res = reqwest::Client::new()
        .post(shop.at("/webhooks/payments"))
        .header(SIGNATURE_HEADER, header)
        .body(format!(r#"{{"pad":"{}"}}"#, "x".repeat(15_000)))
        .send()
        .await
        .unwrap();
    // Refused for its shape, before any signature is checked.
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_webhook", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("malformed"),
        "{body}"
    );
}

#[tokio::test]
async fn only_the_payer_reaches_the_test_banks_page_for_their_payment() {
    let shop = TestShop::start().await;
    let (_, sku, _, _) = shop.in_stock(1).await;
    let ann = shop.shopper();
    add(&shop, &ann, &sku, 1).await;
    let (status, order) = pay(&shop, &ann, "tok_pending").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let payment = order["payment"]["id"].as_str().unwrap().to_owned();
    let bank = shop.at(&format!("/test-provider/3ds/{payment}"));

    let stranger = shop.shopper();
    let res = stranger.get(&bank).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = stranger
        .post(&bank)
        .form(&[("outcome", "fail")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let id = order["id"].as_str().unwrap();
    let (_, still) = get(&ann, shop.at(&format!("/api/orders/{id}"))).await;
    assert_eq!(still["status"], "pending", "the stranger changed nothing");

    let res = ann.get(&bank).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = ann
        .post(&bank)
        .form(&[("outcome", "approve")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, paid) = get(&ann, shop.at(&format!("/api/orders/{id}"))).await;
    assert_eq!(paid["status"], "confirmed");
}

#[tokio::test]
async fn one_shopper_holds_stock_for_one_waiting_payment_for_minutes() {
    let shop = TestShop::start().await;
    assert_eq!(
        shop.state.shop.config().reservation_ttl,
        Duration::from_secs(5 * 60),
        "a payment waiting for the bank holds its stock for five minutes"
    );
    let (_, sku, _, _) = shop.in_stock(3).await;
    let hoarder = shop.shopper();
    add(&shop, &hoarder, &sku, 1).await;
    let (status, first) = pay(&shop, &hoarder, "tok_pending").await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["status"], "pending");

    // A second cart, paid the same way while the first payment waits: refused, nothing more
    // held. (The guest cart is in checkout; signing in brings its lines to a cart that is not.)
    let (status, _) = post(
        &hoarder,
        shop.at("/api/signin"),
        json!({"email": "hoarder@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    add(&shop, &hoarder, &sku, 1).await;
    let (_, cart) = get(&hoarder, shop.at("/api/cart")).await;
    assert_ne!(cart["id"], first["cart"], "a cart of its own: {cart}");
    let (status, refused) = pay(&shop, &hoarder, "tok_pending").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(error_code(&refused), "payment_waiting");
    assert_eq!(refused["error"]["order"], first["id"], "{refused}");
    let stock = shop.state.shop.stock(&sku).await.unwrap();
    assert_eq!(stock.reserved, 1, "only the first order holds stock");

    // Once the bank has answered, the shopper pays again.
    let payment = PaymentId(first["payment"]["id"].as_str().unwrap().to_owned());
    let webhook = shop.state.gateway.complete(&payment, true).unwrap();
    crate::payments::receive(&shop.state, &webhook.signature, &webhook.payload)
        .await
        .unwrap();
    let (status, second) = pay(&shop, &hoarder, "tok_approve").await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
}

#[tokio::test]
async fn out_of_range_prices_and_text_that_is_not_utf8_are_bad_requests() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    for query in [
        "/api/search?q=kettle&min_price=79228162514264337593543950335",
        "/api/search?q=kettle&max_price=10000000000000000",
        "/api/search?q=kettle&min_price=-1",
    ] {
        let (status, body) = get(&ann, shop.at(query)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {body}");
    }
    let res = ann
        .get(shop.at("/search?q=kettle&min_price=79228162514264337593543950335"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    let (status, body) = get(&ann, shop.at("/api/search?q=%FF%FE")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(error_code(&body), "invalid_utf8");
    let res = ann.get(shop.at("/search?q=caf%C3")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = ann
        .post(shop.at("/signin"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=ann%FF%40example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        res.headers().get(SET_COOKIE).is_none(),
        "nobody was signed in"
    );

    // Valid UTF-8, encoded, is served.
    let (status, _) = get(&ann, shop.at("/api/search?q=caf%C3%A9")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &ann,
        shop.at("/api/signin"),
        json!({"email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
