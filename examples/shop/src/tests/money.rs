//! Money over HTTP: a second "Pay" never charges twice, a lost answer is settled by asking the
//! provider (also after a restart), webhooks are checked against the provider, and a code's
//! use is held like stock (given back when the payment fails).

use std::time::Duration;

use ecommerce::checkout::charge_key;
use ecommerce::id::OrderId;
use ecommerce::inventory::ReservationLine;
use ecommerce::payment::{PaymentEvent, PaymentGateway, PaymentId, PaymentStatus};
use ecommerce::promotion::{Coupon, CouponCode, PromotionId};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::TestShop;
use super::api::{add, error_code, get, key, pay, post};
use crate::payments::SIGNATURE_HEADER;

fn order_id(order: &Value) -> OrderId {
    order["id"]
        .as_str()
        .expect("an order")
        .parse()
        .expect("an order id")
}

#[tokio::test]
async fn a_second_pay_on_the_same_cart_is_told_which_order_pays_it() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (_, sku, _, _) = shop.in_stock(2).await;
    add(&shop, &ann, &sku, 1).await;
    let (status, pending) = pay(&shop, &ann, "tok_pending").await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    // Another tab, another key, same cart.
    let (status, body) = pay(&shop, &ann, "tok_approve").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "cart_in_checkout");
    assert_eq!(body["error"]["order"], pending["id"]);

    // Twenty presses at once on a fresh cart: one paid order, charged once.
    let bob = shop.shopper();
    add(&shop, &bob, &sku, 1).await;
    let presses = (0..20).map(|_| pay(&shop, &bob, "tok_approve"));
    let answers = futures::future::join_all(presses).await;
    let paid: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .map(|(_, order)| order)
        .collect();
    assert_eq!(paid.len(), 1, "{answers:?}");
    for (status, body) in &answers {
        if *status != StatusCode::CREATED {
            assert!(
                matches!(
                    error_code(body),
                    "cart_in_checkout" | "empty_cart" | "cart_changed"
                ),
                "{body}"
            );
        }
    }
    let charge = shop
        .state
        .gateway
        .lookup(&charge_key(order_id(paid[0])))
        .await
        .unwrap()
        .expect("charged");
    assert_eq!(charge.status, PaymentStatus::Succeeded);
    let succeeded = shop
        .state
        .gateway
        .charges()
        .into_iter()
        .filter(|c| c.status == PaymentStatus::Succeeded)
        .count();
    assert_eq!(succeeded, 1, "one charge for twenty presses");
}

#[tokio::test]
async fn a_lost_answer_retried_with_its_key_is_confirmed_even_when_stock_ran_low() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (_, sku, on_hand, _) = shop.in_stock(3).await;
    add(&shop, &ann, &sku, 2).await;
    let k = key();
    let delivery = super::api::delivery(&shop, &ann).await;
    let checkout =
        json!({"payment_method": "tok_timeout", "idempotency_key": k, "delivery": delivery});
    let (status, body) = post(&ann, shop.at("/api/checkout"), checkout.clone()).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        !message.to_lowercase().contains("nothing was charged"),
        "never claim nothing was charged when the provider did not say so: {message}"
    );
    // Everything else on hand is held by others: fewer units than this order's own two.
    let rest = on_hand - 2;
    shop.state
        .shop
        .inventory()
        .reserve(
            OrderId::new(),
            &[ReservationLine {
                sku: sku.clone(),
                quantity: rest,
            }],
            Duration::from_secs(600),
        )
        .await
        .unwrap();
    let (status, order) = post(&ann, shop.at("/api/checkout"), checkout).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "confirmed");
    let stock = shop.state.shop.stock(&sku).await.unwrap();
    assert_eq!((stock.on_hand, stock.sold), (0, 2));
}

#[tokio::test]
async fn a_restarted_shop_settles_a_charge_whose_answer_was_lost() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (_, sku, _, _) = shop.in_stock(1).await;
    add(&shop, &ann, &sku, 1).await;
    let (status, body) = pay(&shop, &ann, "tok_timeout").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    let (_, orders) = get(&ann, shop.at("/api/orders")).await;
    let id = order_id(&orders["items"][0]);

    // The shop's own recovery settles it once the order is older than its deadline: nobody
    // calls `recover` here, and the gateway remembers the charge across the restart.
    let shop = shop.restart().await;
    let started = std::time::Instant::now();
    let order = loop {
        let order = shop.state.shop.order(id).await.unwrap().unwrap();
        if order.status.as_str() != "pending" {
            break order;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the restarted shop never settled the order"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("settled {:?} after the restart", started.elapsed());
    assert_eq!(order.status.as_str(), "confirmed");
    assert_eq!(order.net_paid().unwrap(), order.total);
}

#[tokio::test]
async fn webhooks_for_unknown_orders_or_other_payments_change_nothing() {
    let shop = TestShop::start().await;
    let provider = reqwest::Client::new();
    let deliver = |event: &PaymentEvent| {
        let hook = shop.state.gateway.webhook_for(event);
        provider
            .post(shop.at("/webhooks/payments"))
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, hook.signature)
            .body(hook.payload)
            .send()
    };
    let (_, sku, _, _) = shop.in_stock(2).await;
    let mut pending = Vec::new();
    for _ in 0..2 {
        let shopper = shop.shopper();
        add(&shop, &shopper, &sku, 1).await;
        let (status, order) = pay(&shop, &shopper, "tok_pending").await;
        assert_eq!(status, StatusCode::CREATED);
        pending.push(order);
    }
    let payment_of = |order: &Value| PaymentId(order["payment"]["id"].as_str().unwrap().into());

    // Signed, but for an order the shop never had: answered as handled, not as an outage.
    let unknown = PaymentEvent {
        order: OrderId::new(),
        payment_id: payment_of(&pending[0]),
        status: PaymentStatus::Succeeded,
        failure_reason: None,
    };
    let res = deliver(&unknown).await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // The second order's payment succeeds; an event naming it for the first order.
    shop.state
        .gateway
        .complete(&payment_of(&pending[1]), true)
        .unwrap();
    let crossed = PaymentEvent {
        order: order_id(&pending[0]),
        payment_id: payment_of(&pending[1]),
        status: PaymentStatus::Succeeded,
        failure_reason: None,
    };
    let res = deliver(&crossed).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let ack: Value = res.json().await.unwrap();
    assert_eq!(
        ack["status"], "pending",
        "another payment never confirms it"
    );

    // A stale "failed" while the provider still waits for the customer changes nothing.
    let stale = PaymentEvent {
        order: order_id(&pending[0]),
        payment_id: payment_of(&pending[0]),
        status: PaymentStatus::Failed,
        failure_reason: Some("stale".into()),
    };
    let ack: Value = deliver(&stale).await.unwrap().json().await.unwrap();
    assert_eq!(ack["status"], "pending");
}

#[tokio::test]
async fn two_shoppers_may_use_the_same_checkout_key() {
    let shop = TestShop::start().await;
    let (_, sku, _, _) = shop.in_stock(2).await;
    let key = "checkout-1";
    let mut orders = Vec::new();
    for _ in 0..2 {
        let shopper = shop.shopper();
        add(&shop, &shopper, &sku, 1).await;
        let delivery = super::api::delivery(&shop, &shopper).await;
        let (status, order) = post(
            &shopper,
            shop.at("/api/checkout"),
            json!({"payment_method": "tok_approve", "idempotency_key": key, "delivery": delivery}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        orders.push(order["id"].clone());
    }
    assert_ne!(orders[0], orders[1], "a key is the shopper's own");
}

#[tokio::test]
async fn sold_out_while_the_bank_confirmed_is_refunded_and_said_so() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (_, sku, _, _) = shop.in_stock(1).await;
    add(&shop, &ann, &sku, 1).await;
    let delivery = super::api::delivery(&shop, &ann).await;
    let checkout =
        json!({"payment_method": "tok_pending", "idempotency_key": key(), "delivery": delivery});
    let (status, order) = post(&ann, shop.at("/api/checkout"), checkout.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["status"], "pending");
    let id: OrderId = order["id"].as_str().unwrap().parse().unwrap();
    let payment = order["payment"]["id"].as_str().unwrap().to_owned();

    // The hold lapses (recovery released it) and the last units go to another order.
    let inventory = shop.state.shop.inventory();
    inventory.release(id).await.unwrap();
    let left = shop.state.shop.stock(&sku).await.unwrap().on_hand;
    inventory
        .reserve(
            OrderId::new(),
            &[ReservationLine {
                sku: sku.clone(),
                quantity: left,
            }],
            Duration::from_secs(600),
        )
        .await
        .unwrap();

    // The customer passes 3-D Secure; the shop is paid for stock it no longer has.
    let res = ann
        .post(shop.at(&format!("/test-provider/3ds/{payment}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("outcome=approve")
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());

    // Pressing "Pay" again says what happened, naming the order: refunded, not confirmed.
    let (status, body) = post(&ann, shop.at("/api/checkout"), checkout).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "sold_out_refunded");
    assert_eq!(body["error"]["order"], order["id"]);
    let charge = shop
        .state
        .gateway
        .charge_of(&PaymentId(payment))
        .expect("the charge");
    assert_eq!(charge.status, PaymentStatus::Refunded);
    let (_, stored) = get(&ann, shop.at(&format!("/api/orders/{id}"))).await;
    assert_eq!(stored["status"], "failed");
}

#[tokio::test]
async fn a_declined_payment_gives_its_code_back_and_the_charge_is_the_discounted_total() {
    let shop = TestShop::start().await;
    let flash = PromotionId::new(crate::promotions::FLASH).unwrap();
    let once = Coupon::single_use(CouponCode::new("ONCE-MORE").unwrap(), flash.clone());
    shop.state.shop.save_coupon(&once).await.unwrap();
    let (_, sku, _, _) = shop.in_stock(2).await;
    let (ann, bob) = (shop.shopper(), shop.shopper());
    for shopper in [&ann, &bob] {
        add(&shop, shopper, &sku, 1).await;
        let (status, cart) = post(
            shopper,
            shop.at("/api/cart/coupons"),
            json!({"code": "ONCE-MORE"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{cart}");
    }

    // A declined card fails the order and gives its use back: the code is still free.
    let (status, body) = pay(&shop, &ann, "tok_decline").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let usage = shop.state.shop.promotion_usage(&flash).await.unwrap();
    assert_eq!((usage.held, usage.committed), (0, 0));

    // Paid, it is charged exactly the discounted total, and the use is taken for good.
    let (status, order) = pay(&shop, &ann, "tok_approve").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(order["quote"]["promotions"][0]["code"], "ONCE-MORE");
    let charge = shop
        .state
        .gateway
        .lookup(&charge_key(order_id(&order)))
        .await
        .unwrap()
        .expect("charged");
    let total: ecommerce::money::Money = serde_json::from_value(order["total"].clone()).unwrap();
    assert_eq!(charge.amount, total);
    let code: ecommerce::money::Money =
        serde_json::from_value(order["quote"]["promotions"][0]["amount"].clone()).unwrap();
    assert_eq!(code.amount, Decimal::new(500, 2), "{order}");
    let usage = shop.state.shop.promotion_usage(&flash).await.unwrap();
    assert_eq!((usage.held, usage.committed), (0, 1));
    let (status, body) = pay(&shop, &bob, "tok_approve").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "promotion_exhausted")
    );
}
