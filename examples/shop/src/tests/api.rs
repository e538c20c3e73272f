use ecommerce::id::Sku;
use ecommerce::money::{Currency, Money};
use ecommerce::promotion::{Action, Coupon, CouponCode, NotApplied, Promotion, Target};
use ecommerce::quote::Quote;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::TestShop;
use crate::payments::SIGNATURE_HEADER;

pub(super) async fn get(client: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Value,
) -> (StatusCode, Value) {
    let res = client
        .request(method, url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

pub(super) async fn post(
    client: &reqwest::Client,
    url: String,
    body: Value,
) -> (StatusCode, Value) {
    send(client, reqwest::Method::POST, url, body).await
}

/// Adds units of a SKU to the shopper's cart.
pub(super) async fn add(
    shop: &TestShop,
    client: &reqwest::Client,
    sku: &impl serde::Serialize,
    quantity: u32,
) -> (StatusCode, Value) {
    post(
        client,
        shop.at("/api/cart/items"),
        json!({"sku": sku, "quantity": quantity}),
    )
    .await
}

/// A Texas address as the API takes it.
pub(super) fn texas() -> Value {
    json!({
        "name": "Grace Hopper",
        "line1": "1 Congress Ave",
        "city": "Austin",
        "region": "TX",
        "postal_code": "78701",
        "country": "US"
    })
}

/// The delivery of the shopper's cart to Texas by the first shipping method offered.
pub(super) async fn delivery(shop: &TestShop, client: &reqwest::Client) -> Value {
    let (status, quotes) = post(
        client,
        shop.at("/api/checkout/shipping-quotes"),
        json!({"address": texas()}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{quotes}");
    json!({
        "email": "grace@example.com",
        "shipping_address": texas(),
        "shipping": quotes[0],
    })
}

/// Pays for the shopper's cart with a test card, shipped to Texas, under a new idempotency
/// key.
pub(super) async fn pay(
    shop: &TestShop,
    client: &reqwest::Client,
    method: &str,
) -> (StatusCode, Value) {
    let delivery = delivery(shop, client).await;
    post(
        client,
        shop.at("/api/checkout"),
        json!({"payment_method": method, "idempotency_key": key(), "delivery": delivery}),
    )
    .await
}

/// Pays with the approving card, going on without a promotion whose uses ran out.
async fn pay_without_used_up_codes(
    shop: &TestShop,
    client: &reqwest::Client,
) -> (StatusCode, Value) {
    let delivery = delivery(shop, client).await;
    post(
        client,
        shop.at("/api/checkout"),
        json!({
            "payment_method": "tok_approve",
            "idempotency_key": key(),
            "delivery": delivery,
            "without_exhausted_promotions": true,
        }),
    )
    .await
}

pub(super) fn error_code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

pub(super) fn key() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[tokio::test]
async fn browse_search_cart_checkout_and_history() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (product, sku, on_hand, title) = shop.in_stock(2).await;

    let (status, categories) = get(&ann, shop.at("/api/categories")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(categories.as_array().unwrap().len() >= 5);
    let category = categories[0]["id"].as_str().unwrap();
    let (status, page) = get(
        &ann,
        shop.at(&format!("/api/products?category={category}&limit=5")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["category"] == category)
    );

    // Search by title with facets, and as-you-type suggestions from a prefix.
    let (status, results) = get(
        &ann,
        shop.at(&format!("/api/search?q={}", title.replace(' ', "+"))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        results["hits"][0]["product"],
        product.to_string(),
        "{results}"
    );
    assert!(!results["facets"]["brand"].as_array().unwrap().is_empty());
    let prefix: String = title.chars().take(title.find(' ').unwrap() + 4).collect();
    let (_, suggestions) = get(
        &ann,
        shop.at(&format!("/api/suggest?q={}", prefix.replace(' ', "+"))),
    )
    .await;
    assert!(
        suggestions
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == &json!(title)),
        "{prefix}: {suggestions}"
    );

    let (status, view) = get(&ann, shop.at(&format!("/api/products/{product}"))).await;
    assert_eq!(status, StatusCode::OK);
    let catalog_price = view["product"]["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["sku"] == sku.as_str())
        .unwrap()["price"]
        .clone();

    let (status, cart) = add(&shop, &ann, &sku, 2).await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(cart["lines"][0]["unit_price"], catalog_price);

    // Address, shipping method, quote, pay: the order is charged the quote.
    let delivery = delivery(&shop, &ann).await;
    assert_eq!(delivery["shipping"]["method"], "ground");
    let (status, quote) = post(
        &ann,
        shop.at("/api/checkout/quote"),
        json!({"delivery": delivery}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    assert_eq!(quote["taxes"][0]["name"], "Texas sales tax");
    let key = key();
    let checkout = json!({
        "payment_method": "tok_approve",
        "idempotency_key": key,
        "delivery": delivery,
        "accepted_quote": quote,
    });
    let (status, order) = post(&ann, shop.at("/api/checkout"), checkout.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["total"], quote["total"]);
    assert_eq!(order["quote"]["hash"], quote["hash"]);
    assert_eq!(order["shipping_address"]["postal_code"], "78701");
    assert_eq!(order["contact"], "grace@example.com");
    // Pressing "Pay" again with the same key returns the same order.
    let (_, again) = post(&ann, shop.at("/api/checkout"), checkout).await;
    assert_eq!(again["id"], order["id"]);

    let stock = shop.state.shop.stock(&sku).await.unwrap();
    assert_eq!(stock.on_hand, on_hand - 2);
    let (_, cart) = get(&ann, shop.at("/api/cart")).await;
    assert!(
        cart["lines"].as_array().unwrap().is_empty(),
        "a confirmed checkout empties the cart"
    );
    let (status, history) = get(&ann, shop.at("/api/orders")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(history["items"].as_array().unwrap().len(), 1);
    assert_eq!(history["items"][0]["id"], order["id"]);
    let (status, same) = get(
        &ann,
        shop.at(&format!("/api/orders/{}", order["id"].as_str().unwrap())),
    )
    .await;
    assert_eq!((status, &same["total"]), (StatusCode::OK, &order["total"]));
}

#[tokio::test]
async fn another_customers_cart_and_order_answer_404() {
    let shop = TestShop::start().await;
    let (ann, bob) = (shop.shopper(), shop.shopper());
    let (_, sku, _, _) = shop.in_stock(1).await;
    let (_, cart) = add(&shop, &ann, &sku, 1).await;
    let cart_id = cart["id"].as_str().unwrap().to_owned();
    let (_, order) = pay(&shop, &ann, "tok_approve").await;
    let order_id = order["id"].as_str().unwrap().to_owned();

    for path in [
        format!("/api/orders/{order_id}"),
        format!("/api/carts/{cart_id}"),
    ] {
        let (status, body) = get(&bob, shop.at(&path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(error_code(&body), "not_found");
    }
    let (status, _) = get(&ann, shop.at(&format!("/api/orders/{order_id}"))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, history) = get(&bob, shop.at("/api/orders")).await;
    assert!(history["items"].as_array().unwrap().is_empty());

    // The order page answers the same to someone else.
    let page = bob
        .get(shop.at(&format!("/orders/{order_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("order not found"));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (_, sku, on_hand, _) = shop.in_stock(1).await;
    let (_, before) = add(&shop, &ann, &sku, 1).await;

    let too_big = "x".repeat(crate::app::MAX_BODY_BYTES + 1);
    let cases: Vec<(Value, StatusCode, &str)> = vec![
        // A price from the client is refused, not used.
        (
            json!({"sku": sku, "quantity": 1, "unit_price": {"amount": "0.01", "currency": "USD"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_request",
        ),
        (
            json!({"sku": sku, "quantity": 0}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_quantity",
        ),
        (
            json!({"sku": sku, "quantity": 100_000}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_quantity",
        ),
        (
            json!({"sku": sku, "quantity": -1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_request",
        ),
        (
            json!({"sku": sku, "quantity": 5_000_000_000u64}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_request",
        ),
        (
            json!({"sku": "NO-SUCH-SKU", "quantity": 1}),
            StatusCode::NOT_FOUND,
            "unknown_item",
        ),
        (
            json!({"sku": "<script>", "quantity": 1}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_request",
        ),
        (
            json!({"sku": too_big, "quantity": 1}),
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = post(&ann, shop.at("/api/cart/items"), body.clone()).await;
        assert_eq!(
            (got, error_code(&answer)),
            (status, code),
            "{body}: {answer}"
        );
    }
    let res = ann
        .post(shop.at("/api/cart/items"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&res.json().await.unwrap()), "bad_request");

    for (path, status) in [
        ("/api/orders/not-an-id", StatusCode::BAD_REQUEST),
        ("/api/search?q=lamp&limit=1000", StatusCode::BAD_REQUEST),
        (
            "/api/search?q=lamp&min_price=10&max_price=1",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/products/00000000-0000-0000-0000-000000000000",
            StatusCode::NOT_FOUND,
        ),
        ("/api/no-such-endpoint", StatusCode::NOT_FOUND),
    ] {
        let (got, answer) = get(&ann, shop.at(path)).await;
        assert_eq!(got, status, "{path}: {answer}");
        error_code(&answer);
    }
    let (status, answer) = post(
        &ann,
        shop.at("/api/checkout"),
        json!({"payment_method": "", "idempotency_key": key(), "delivery": delivery(&shop, &ann).await}),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "bad_request")
    );
    let (status, answer) = post(
        &ann,
        shop.at("/api/signin"),
        json!({"email": "not an address"}),
    )
    .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_email")
    );

    let (_, after) = get(&ann, shop.at("/api/cart")).await;
    assert_eq!(after, before, "no bad request changed the cart");
    assert_eq!(shop.state.shop.stock(&sku).await.unwrap().on_hand, on_hand);
    let (_, history) = get(&ann, shop.at("/api/orders")).await;
    assert!(history["items"].as_array().unwrap().is_empty());

    // A page answers with a page, not a stack trace.
    let page = ann.get(shop.at("/product/not-an-id")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::BAD_REQUEST);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn declined_and_sold_out_checkouts_explain_and_keep_the_stock() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (_, sku, on_hand, _) = shop.in_stock(1).await;
    add(&shop, &ann, &sku, 1).await;
    let (status, answer) = pay(&shop, &ann, "tok_decline").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::PAYMENT_REQUIRED, "payment_declined")
    );
    assert_eq!(shop.state.shop.stock(&sku).await.unwrap().on_hand, on_hand);

    assert!(on_hand < 99, "one more than the stock fits in a cart line");
    let sold_out = on_hand + 1;
    let (status, _) = send(
        &ann,
        reqwest::Method::PUT,
        shop.at(&format!("/api/cart/items/{sku}")),
        json!({"quantity": sold_out}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = pay(&shop, &ann, "tok_approve").await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::CONFLICT, "out_of_stock")
    );
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains(sku.as_str())
    );
    assert_eq!(shop.state.shop.stock(&sku).await.unwrap().on_hand, on_hand);
    assert!(
        shop.state
            .gateway
            .charges()
            .iter()
            .all(|c| c.status != ecommerce::payment::PaymentStatus::Succeeded)
    );
}

#[tokio::test]
async fn a_pending_payment_completes_only_through_a_signed_webhook() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (_, sku, on_hand, _) = shop.in_stock(1).await;
    add(&shop, &ann, &sku, 1).await;
    let (status, order) = pay(&shop, &ann, "tok_pending").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (
            order["status"].as_str(),
            order["payment"]["status"].as_str()
        ),
        (Some("pending"), Some("pending"))
    );
    let order_id = order["id"].as_str().unwrap().to_owned();
    let payment =
        ecommerce::payment::PaymentId(order["payment"]["id"].as_str().unwrap().to_owned());

    let webhook = shop.state.gateway.complete(&payment, true).unwrap();
    let provider = reqwest::Client::new();
    let deliver = |signature: Option<String>, payload: Vec<u8>| {
        let mut request = provider
            .post(shop.at("/webhooks/payments"))
            .header("content-type", "application/json")
            .body(payload);
        if let Some(signature) = signature {
            request = request.header(SIGNATURE_HEADER, signature);
        }
        request.send()
    };
    // Unsigned, forged, and signed with another key: refused, and the order does not move.
    let forged = ecommerce::payment::sign_webhook(
        b"not the shop's secret",
        chrono::Utc::now().timestamp(),
        &webhook.payload,
    );
    for signature in [None, Some("t=1,v1=00".to_owned()), Some(forged)] {
        let res = deliver(signature, webhook.payload.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_code(&res.json().await.unwrap()), "invalid_webhook");
    }
    let tampered = String::from_utf8(webhook.payload.clone())
        .unwrap()
        .replace("succeeded", "failed");
    let res = deliver(Some(webhook.signature.clone()), tampered.into_bytes())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let (_, still) = get(&ann, shop.at(&format!("/api/orders/{order_id}"))).await;
    assert_eq!(still["status"], "pending");

    // The provider's own webhook confirms it; delivering it again changes nothing.
    for _ in 0..2 {
        let res = deliver(Some(webhook.signature.clone()), webhook.payload.clone())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let ack: Value = res.json().await.unwrap();
        assert_eq!(ack["status"], "confirmed");
    }
    let (_, confirmed) = get(&ann, shop.at(&format!("/api/orders/{order_id}"))).await;
    assert_eq!(confirmed["status"], "confirmed");
    let stock = shop.state.shop.stock(&sku).await.unwrap();
    assert_eq!((stock.on_hand, stock.sold), (on_hand - 1, 1));
}

#[tokio::test]
async fn signing_in_merges_the_guest_cart_into_the_customers() {
    let shop = TestShop::start().await;
    let (phone, laptop) = (shop.shopper(), shop.shopper());
    let (_, sku, _, _) = shop.in_stock(3).await;

    // On the phone, signed in, one unit; on the laptop, as a guest, two more.
    post(
        &phone,
        shop.at("/api/signin"),
        json!({"email": "ann@example.com"}),
    )
    .await;
    add(&shop, &phone, &sku, 1).await;
    add(&shop, &laptop, &sku, 2).await;
    let (status, merged) = post(
        &laptop,
        shop.at("/api/signin"),
        json!({"email": " Ann@Example.com "}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["lines"][0]["quantity"], 3);
    let (_, on_phone) = get(&phone, shop.at("/api/cart")).await;
    assert_eq!(on_phone["id"], merged["id"], "one cart on every device");
    assert_eq!(on_phone["lines"][0]["quantity"], 3);

    // Orders follow the customer; signing out starts a fresh guest.
    let (_, order) = pay(&shop, &phone, "tok_approve").await;
    let (_, history) = get(&laptop, shop.at("/api/orders")).await;
    assert_eq!(history["items"][0]["id"], order["id"]);
    let res = laptop.post(shop.at("/api/signout")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, history) = get(&laptop, shop.at("/api/orders")).await;
    assert!(history["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn checkout_needs_a_valid_delivery_and_charges_the_accepted_quote() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (id, sku, on_hand, _) = shop.in_stock(1).await;
    let mut product = shop.state.shop.product(id).await.unwrap().unwrap();
    add(&shop, &ann, &sku, 1).await;

    let no_delivery = json!({"payment_method": "tok_approve", "idempotency_key": key()});
    let (status, body) = post(&ann, shop.at("/api/checkout"), no_delivery).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "delivery_required");

    for (field, value) in [
        ("country", "XX"),
        ("postal_code", "ABCDE"),
        ("region", "ZZ"),
        ("line1", " "),
    ] {
        let mut address = texas();
        address[field] = json!(value);
        let (status, body) = post(
            &ann,
            shop.at("/api/checkout/shipping-quotes"),
            json!({"address": address}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {body}");
        assert_eq!(error_code(&body), "invalid_address", "{field}");
    }
    let mut germany = texas();
    germany["country"] = json!("DE");
    germany["region"] = Value::Null;
    germany["postal_code"] = json!("10115");
    let (status, body) = post(
        &ann,
        shop.at("/api/checkout/shipping-quotes"),
        json!({"address": germany}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(error_code(&body), "no_shipping");

    // An edited shipping quote is refused.
    let mut delivery = delivery(&shop, &ann).await;
    delivery["shipping"]["amount"]["amount"] = json!("0.01");
    let edited =
        json!({"payment_method": "tok_approve", "idempotency_key": key(), "delivery": delivery});
    let (status, body) = post(&ann, shop.at("/api/checkout"), edited).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "shipping_quote_invalid");

    // The shopper accepts a quote; the catalog price changes; Pay names the change.
    let delivery = super::api::delivery(&shop, &ann).await;
    let (_, accepted) = post(
        &ann,
        shop.at("/api/checkout/quote"),
        json!({"delivery": delivery}),
    )
    .await;
    let variant = product.variants.iter_mut().find(|v| v.sku == sku).unwrap();
    variant.price = ecommerce::money::Money::from_minor(
        variant.price.to_minor().unwrap() + 100,
        variant.price.currency,
    );
    shop.state.shop.upsert_product(product).await.unwrap();
    let pay = json!({
        "payment_method": "tok_approve",
        "idempotency_key": key(),
        "delivery": delivery,
        "accepted_quote": accepted,
    });
    let (status, body) = post(&ann, shop.at("/api/checkout"), pay.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "prices_changed");
    let (status, body) = post(&ann, shop.at("/api/checkout"), pay).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "quote_changed");
    let new_quote = body["error"]["detail"]["quote"].clone();
    assert_ne!(new_quote["total"], accepted["total"]);

    assert!(
        shop.state.gateway.charges().is_empty(),
        "nothing was charged"
    );
    assert_eq!(shop.state.shop.stock(&sku).await.unwrap().on_hand, on_hand);

    let pay = json!({
        "payment_method": "tok_approve",
        "idempotency_key": key(),
        "delivery": delivery,
        "accepted_quote": new_quote,
    });
    let (status, order) = post(&ann, shop.at("/api/checkout"), pay).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["total"], new_quote["total"]);
}

#[tokio::test]
async fn a_signed_in_customer_finds_the_address_of_their_last_order() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (status, _) = post(
        &ann,
        shop.at("/api/signin"),
        json!({"email": "ann@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, sku, _, _) = shop.in_stock(1).await;
    add(&shop, &ann, &sku, 1).await;
    let (status, order) = pay(&shop, &ann, "tok_approve").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let (status, book) = get(&ann, shop.at("/api/addresses")).await;
    assert_eq!(status, StatusCode::OK, "{book}");
    assert_eq!(book.as_array().unwrap().len(), 1, "{book}");
    assert_eq!(book[0]["address"]["postal_code"], "78701");
    // The next checkout's form starts from it.
    add(&shop, &ann, &sku, 1).await;
    let page = ann.get(shop.at("/checkout")).send().await.unwrap();
    assert!(page.text().await.unwrap().contains("1 Congress Ave"));

    // Another customer cannot remove it; its owner can.
    let id = book[0]["id"].as_str().unwrap().to_owned();
    let bob = shop.shopper();
    let res = bob
        .delete(shop.at(&format!("/api/addresses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = ann
        .delete(shop.at(&format!("/api/addresses/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let (_, book) = get(&ann, shop.at("/api/addresses")).await;
    assert!(book.as_array().unwrap().is_empty());
}

// ----- promotions and coupon codes -----

/// A variant outside the toys deal, at $10 to $80: one unit gets no automatic discount
/// (the toys deal needs three toys, free shipping $100 of items).
async fn plain_item(shop: &TestShop, units: u32) -> (Sku, i64) {
    let (_, sku, _, _) = shop
        .in_stock_where(units, |product, variant| {
            let cents = variant.price.to_minor().unwrap();
            product.category.as_str() != crate::promotions::TOYS && (1_000..8_000).contains(&cents)
        })
        .await;
    let price = shop
        .state
        .shop
        .catalog()
        .offers(std::slice::from_ref(&sku))
        .await
        .unwrap()[&sku]
        .price;
    (sku, price.to_minor().unwrap())
}

fn usd(cents: i64) -> Money {
    Money::from_minor(cents, Currency::USD)
}

fn money(value: &Value) -> Money {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn codes(cart: &Value) -> Vec<String> {
    cart["coupons"]
        .as_array()
        .map(|codes| {
            codes
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn apply(shop: &TestShop, client: &reqwest::Client, code: &str) -> (StatusCode, Value) {
    post(
        client,
        shop.at("/api/cart/coupons"),
        json!({ "code": code }),
    )
    .await
}

/// The quote's parts add up: `subtotal − discounts + shipping + tax = total` (tax-exclusive
/// prices), the lines' and shipping's discounts are the promotions' amounts, and each line's
/// net is its amount less its discount.
fn assert_adds_up(quote: &Quote) {
    let c = quote.currency;
    let shipping = quote.shipping.as_ref().map_or(Money::zero(c), |s| s.amount);
    let sum = quote
        .subtotal
        .checked_sub(quote.discount_total)
        .and_then(|m| m.checked_add(shipping))
        .and_then(|m| m.checked_add(quote.tax_total))
        .unwrap();
    assert_eq!(sum, quote.total, "{quote:?}");
    let promotions = Money::sum(c, quote.promotions.iter().map(|a| a.amount)).unwrap();
    assert_eq!(promotions, quote.discount_total);
    let lines = Money::sum(c, quote.lines.iter().map(|l| l.discount)).unwrap();
    let shipping_discount = quote
        .shipping
        .as_ref()
        .map_or(Money::zero(c), |s| s.discount);
    assert_eq!(lines.checked_add(shipping_discount).unwrap(), promotions);
    for line in &quote.lines {
        assert_eq!(line.amount.checked_sub(line.discount).unwrap(), line.net);
    }
}

/// What the gateway charged for an order.
async fn charged(shop: &TestShop, order: &Value) -> Money {
    use ecommerce::payment::PaymentGateway;
    let id: ecommerce::id::OrderId = order["id"].as_str().unwrap().parse().unwrap();
    shop.state
        .gateway
        .lookup(&ecommerce::checkout::charge_key(id))
        .await
        .unwrap()
        .expect("a charge")
        .amount
}

#[tokio::test]
async fn a_code_discounts_the_quote_the_order_and_the_charge() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (sku, price) = plain_item(&shop, 2).await;
    add(&shop, &ann, &sku, 1).await;

    // Typed loosely, applied normalised; the cart shows the discount before shipping.
    let (status, cart) = apply(&shop, &ann, " welcome10 ").await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    assert_eq!(codes(&cart), ["WELCOME10"]);
    let off = usd((price + 5) / 10);
    let applied = &cart["discounts"]["applied"];
    assert_eq!(applied.as_array().unwrap().len(), 1, "{cart}");
    assert_eq!(applied[0]["code"], "WELCOME10");
    assert_eq!(money(&applied[0]["amount"]), off);

    // The quote takes it before tax, and its parts add up.
    let delivery = delivery(&shop, &ann).await;
    let (status, quote_json) = post(
        &ann,
        shop.at("/api/checkout/quote"),
        json!({ "delivery": delivery }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{quote_json}");
    let quote: Quote = serde_json::from_value(quote_json.clone()).unwrap();
    assert_eq!(quote.promotions.len(), 1, "{quote_json}");
    assert_eq!(
        quote.promotions[0].code.as_ref().unwrap().as_str(),
        "WELCOME10"
    );
    assert_eq!(quote.discount_total, off);
    assert_eq!(quote.lines[0].discount, off);
    assert!(quote.shipping.as_ref().unwrap().discount.amount.is_zero());
    assert_adds_up(&quote);

    // The order keeps it and the charge is the discounted total.
    let (status, order) = post(
        &ann,
        shop.at("/api/checkout"),
        json!({
            "payment_method": "tok_approve",
            "idempotency_key": key(),
            "delivery": delivery,
            "accepted_quote": quote_json,
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(money(&order["total"]), quote.total);
    assert_eq!(order["quote"]["promotions"][0]["code"], "WELCOME10");
    assert_eq!(money(&order["quote"]["discount_total"]), off);
    assert_eq!(charged(&shop, &order).await, quote.total);
    let welcome = ecommerce::promotion::PromotionId::new(crate::promotions::WELCOME).unwrap();
    let usage = shop.state.shop.promotion_usage(&welcome).await.unwrap();
    assert_eq!((usage.held, usage.committed), (0, 1));
    let (_, cart) = get(&ann, shop.at("/api/cart")).await;
    assert!(
        codes(&cart).is_empty(),
        "the code went with the order: {cart}"
    );

    // The order page and the history show it.
    let id = order["id"].as_str().unwrap();
    let page = ann
        .get(shop.at(&format!("/orders/{id}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"class="quote-discount" data-promotion="welcome10""#),
        "{page}"
    );
    assert!(page.contains(&format!("−{off}")), "{page}");
    let history = ann.get(shop.at("/orders")).send().await.unwrap();
    assert!(history.text().await.unwrap().contains("WELCOME10"));

    // Once per customer (a guest by the checkout's e-mail): the second order is told at Pay,
    // nothing charged; asked to, it goes on without the code, at the full price.
    add(&shop, &ann, &sku, 1).await;
    let (status, cart) = apply(&shop, &ann, "WELCOME10").await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    let charges = shop.state.gateway.charges().len();
    let (status, body) = pay(&shop, &ann, "tok_approve").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "promotion_exhausted");
    assert_eq!(body["error"]["detail"]["limit"], "per_customer");
    assert_eq!(body["error"]["detail"]["code"], "WELCOME10");
    assert_eq!(
        shop.state.gateway.charges().len(),
        charges,
        "nothing charged"
    );
    let (status, order) = pay_without_used_up_codes(&shop, &ann).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let quote: Quote = serde_json::from_value(order["quote"].clone()).unwrap();
    assert!(quote.promotions.is_empty(), "{order}");
    assert!(quote.discount_total.amount.is_zero());
    assert!(
        quote.promotion_trace.iter().any(|t| t
            .code
            .as_ref()
            .is_some_and(|c| c.as_str() == "WELCOME10")
            && matches!(t.not_applied, Some(NotApplied::Exhausted { .. }))),
        "{order}"
    );
    assert_eq!(quote.subtotal, usd(price));
    assert_adds_up(&quote);
    assert_eq!(charged(&shop, &order).await, quote.total);
}

#[tokio::test]
async fn bad_codes_get_a_typed_error_and_leave_the_cart_unchanged() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let storefront = &shop.state.shop;
    let now = chrono::Utc::now();
    let day = chrono::Duration::days(1);
    let dollar_off = |id: &str, currency: Currency| {
        Promotion::new(
            id,
            "A dollar off",
            currency,
            Action::AmountOff {
                amount: Money::from_minor(100, currency),
                target: Target::Order,
            },
        )
        .unwrap()
        .with_code_only()
    };
    for (promotion, code) in [
        (
            dollar_off("ended", Currency::USD).between(Some(now - day * 2), Some(now - day)),
            "OLD1",
        ),
        (
            dollar_off("tomorrow", Currency::USD).between(Some(now + day), None),
            "SOON1",
        ),
        (dollar_off("in-euros", Currency::EUR), "EURO1"),
        (dollar_off("extra", Currency::USD), "EXTRA1"),
    ] {
        storefront.save_promotion(&promotion).await.unwrap();
        let coupon = Coupon::new(CouponCode::new(code).unwrap(), promotion.id.clone());
        storefront.save_coupon(&coupon).await.unwrap();
    }

    // Without a cart there is nothing to apply a code to.
    let (status, body) = apply(&shop, &ann, "WELCOME10").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );

    let (sku, _) = plain_item(&shop, 1).await;
    add(&shop, &ann, &sku, 1).await;
    let (status, _) = apply(&shop, &ann, "WELCOME10").await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = get(&ann, shop.at("/api/cart")).await;
    for (code, status, error) in [
        ("NOPE1", StatusCode::NOT_FOUND, "unknown_code"),
        ("x", StatusCode::NOT_FOUND, "unknown_code"),
        ("<script>", StatusCode::NOT_FOUND, "unknown_code"),
        ("OLD1", StatusCode::UNPROCESSABLE_ENTITY, "code_expired"),
        (
            "soon1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_not_yet_valid",
        ),
        (
            "EURO1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_other_currency",
        ),
        (
            " welcome10",
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_already_applied",
        ),
    ] {
        let (got, body) = apply(&shop, &ann, code).await;
        assert_eq!((got, error_code(&body)), (status, error), "{code}: {body}");
        assert!(body["error"]["detail"]["problem"].is_string(), "{body}");
        let (_, after) = get(&ann, shop.at("/api/cart")).await;
        assert_eq!(after, before, "{code} changed the cart");
    }

    // Two order-wide codes do not stack: WELCOME10 goes first, FLASH50 says why not.
    let (status, cart) = apply(&shop, &ann, "FLASH50").await;
    assert_eq!(status, StatusCode::OK, "{cart}");
    let applied = cart["discounts"]["applied"].as_array().unwrap();
    assert_eq!(applied.len(), 1, "{cart}");
    assert_eq!(applied[0]["code"], "WELCOME10");
    let flash = cart["discounts"]["trace"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "FLASH50")
        .expect("FLASH50 traced");
    assert_eq!(
        flash["not_applied"]["reason"], "does_not_combine",
        "{flash}"
    );
    let page = ann.get(shop.at("/cart")).send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains(r#"class="cart-discount" data-promotion="welcome10""#),
        "{page}"
    );
    assert!(
        page.contains("does not combine with “10 % off your order”"),
        "{page}"
    );
    // Below the free shipping's minimum, the cart says how much more it takes.
    assert!(
        page.contains(r#"class="offer-hint muted" data-promotion="free-shipping-100""#),
        "{page}"
    );

    // Three codes at most.
    let (status, _) = apply(&shop, &ann, "EXTRA1").await;
    assert_eq!(status, StatusCode::OK);
    let (_, before) = get(&ann, shop.at("/api/cart")).await;
    let (status, body) = apply(&shop, &ann, "NOPE1").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_codes")
    );
    let (_, after) = get(&ann, shop.at("/api/cart")).await;
    assert_eq!(after, before);

    // A refused code on the cart page: the cart again, with the problem and its status.
    let res = ann
        .post(shop.at("/cart/coupons"))
        .form(&[("code", "NOPE2")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = res.text().await.unwrap();
    assert!(page.contains(r#"data-code="too_many_codes""#), "{page}");
    assert!(page.contains(r#"class="cart-line""#), "{page}");

    // Removing: by the code as typed; one the cart does not carry changes nothing.
    let res = ann
        .delete(shop.at("/api/cart/coupons/flash50"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cart: Value = res.json().await.unwrap();
    assert_eq!(codes(&cart), ["WELCOME10", "EXTRA1"]);
    let res = ann
        .delete(shop.at("/api/cart/coupons/NOPE1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(codes(&res.json().await.unwrap()), ["WELCOME10", "EXTRA1"]);
    let res = ann
        .post(shop.at("/cart/coupons/remove"))
        .form(&[("code", "EXTRA1")])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    let res = ann
        .post(shop.at("/cart/coupons"))
        .form(&[("code", "NOPE2")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains(r#"data-code="unknown_code""#)
    );
    let (_, cart) = get(&ann, shop.at("/api/cart")).await;
    assert_eq!(codes(&cart), ["WELCOME10"]);
}

#[tokio::test]
async fn a_single_use_code_pays_once_and_the_next_pay_is_told() {
    let shop = TestShop::start().await;
    let flash = ecommerce::promotion::PromotionId::new(crate::promotions::FLASH).unwrap();
    let once = Coupon::single_use(CouponCode::new("FLASH-ONCE").unwrap(), flash.clone());
    shop.state.shop.save_coupon(&once).await.unwrap();
    let (sku, price) = plain_item(&shop, 3).await;

    // Three shoppers apply it while it is unused.
    let (ann, bob, dan) = (shop.shopper(), shop.shopper(), shop.shopper());
    for shopper in [&ann, &bob, &dan] {
        add(&shop, shopper, &sku, 1).await;
        let (status, cart) = apply(&shop, shopper, "flash-once").await;
        assert_eq!(status, StatusCode::OK, "{cart}");
        assert_eq!(money(&cart["discounts"]["applied"][0]["amount"]), usd(500));
    }
    let (status, order) = pay(&shop, &ann, "tok_approve").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["quote"]["promotions"][0]["code"], "FLASH-ONCE");
    assert_eq!(money(&order["quote"]["discount_total"]), usd(500));

    // Bob's Pay finds its use taken: nothing stored, charged or reserved.
    let charges = shop.state.gateway.charges().len();
    let on_hand = shop.state.shop.stock(&sku).await.unwrap().on_hand;
    let (status, body) = pay(&shop, &bob, "tok_approve").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "promotion_exhausted");
    assert_eq!(body["error"]["detail"]["code"], "FLASH-ONCE");
    assert_eq!(body["error"]["detail"]["limit"], "code");
    assert_eq!(shop.state.gateway.charges().len(), charges);
    assert_eq!(shop.state.shop.stock(&sku).await.unwrap().on_hand, on_hand);
    let (_, history) = get(&bob, shop.at("/api/orders")).await;
    assert!(history["items"].as_array().unwrap().is_empty());

    // Bob's client asks to go on without it: the full price.
    let (status, order) = pay_without_used_up_codes(&shop, &bob).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(money(&order["quote"]["subtotal"]), usd(price));
    assert!(money(&order["quote"]["discount_total"]).amount.is_zero());

    // Dan pays on the pages: the review comes back saying so, and offers to drop the code.
    let delivery = super::api::delivery(&shop, &dan).await;
    let (_, quote) = post(
        &dan,
        shop.at("/api/checkout/quote"),
        json!({ "delivery": delivery }),
    )
    .await;
    let shipping = serde_json::to_string(&delivery["shipping"]).unwrap();
    let address = texas();
    let mut form: Vec<(&str, String)> = vec![
        ("email", "grace@example.com".into()),
        ("shipping", shipping),
        ("quote_hash", quote["hash"].as_str().unwrap().into()),
        ("payment_method", "tok_approve".into()),
        ("idempotency_key", key()),
    ];
    for field in ["name", "line1", "city", "region", "postal_code", "country"] {
        form.push((field, address[field].as_str().unwrap().into()));
    }
    let res = dan
        .post(shop.at("/checkout"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let page = res.text().await.unwrap();
    assert!(
        page.contains(r#"data-code="promotion_exhausted""#),
        "{page}"
    );
    assert!(page.contains(r#"id="remove-exhausted-code""#), "{page}");
    form.push(("remove_code", "FLASH-ONCE".into()));
    let res = dan
        .post(shop.at("/checkout/review"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let page = res.text().await.unwrap();
    assert!(!page.contains("quote-discount"), "{page}");
    let (_, cart) = get(&dan, shop.at("/api/cart")).await;
    assert!(codes(&cart).is_empty(), "{cart}");

    // Once used, it is refused when applied.
    let carol = shop.shopper();
    add(&shop, &carol, &sku, 1).await;
    let (status, body) = apply(&shop, &carol, "FLASH-ONCE").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "code_used_up")
    );
    let usage = shop.state.shop.promotion_usage(&flash).await.unwrap();
    assert_eq!((usage.held, usage.committed), (0, 1));
}
