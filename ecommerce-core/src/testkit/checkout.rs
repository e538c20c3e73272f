//! Checkout saga checks: a paid checkout confirms, sells stock and records; short stock,
//! declines, price changes and bad input fail cleanly; retries make one order; pending
//! payments, late successes and `recover()` settle every order; the order lifecycle
//! refunds and restocks once; and no history of concurrent checkouts ever oversells.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{
    Backend, Place, assert_conserved, cart_with, complete, key, method, new_order, request, shop,
    sku, stocked, usd,
};
use crate::checkout::{CheckoutRequest, charge_key};
use crate::error::{CartError, CheckoutError, InventoryError, OrderError};
use crate::events::{DomainEvent, OutboxRelay};
use crate::id::{CartId, CustomerId, OrderId, Sku};
use crate::inventory::{MovementKind, ReservationState};
use crate::money::{Currency, Money};
use crate::order::{Order, OrderStatus};
use crate::payment::{PaymentGateway, PaymentStatus, TestGateway};
use crate::storefront::{Storefront, StorefrontConfig};

/// A paid checkout confirms the order, sells the stock, clears the cart, emits
/// `OrderConfirmed` and counts co-purchases.
pub async fn checkout_confirms_sells_stock_and_records(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(
        &shop,
        "Tent",
        &[("SAGA-1", 12_000, 5), ("SAGA-2", 2_500, 5)],
    )
    .await;
    let cart = cart_with(&shop, &[("SAGA-1", 1), ("SAGA-2", 2)]).await;
    let customer = CustomerId::new();
    let order = shop
        .place(request(cart, customer, "tok_approve", "happy"))
        .await
        .expect("checkout");
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(order.total, usd(17_000));
    assert_eq!(
        order.payment.as_ref().map(|p| p.status),
        Some(PaymentStatus::Succeeded)
    );
    let level = shop.stock(&sku("SAGA-2")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (3, 0, 2));
    let cleared = shop.cart(cart).await.expect("load").expect("cart");
    assert!(
        cleared.is_empty() && cleared.checkout.is_none(),
        "the ordered units leave the cart: {cleared:?}"
    );
    assert_eq!(order.net_paid().expect("ledger"), order.total);
    assert_eq!(gateway.charges().len(), 1);
    assert_eq!(gateway.charges()[0].amount, usd(17_000));
    let history = shop
        .order_history(customer, None, 10)
        .await
        .expect("history");
    assert_eq!(history.items, vec![order.clone()]);
    let events = backend.outbox.pending(100).await.expect("outbox");
    assert!(events.iter().any(|e| matches!(
        &e.envelope().expect("an event").event,
        DomainEvent::OrderConfirmed { order: o, lines, .. } if *o == order.id && lines.len() == 2
    )));
    // Co-purchases are counted from the event, off the checkout's path.
    assert!(
        shop.also_bought(&sku("SAGA-1"), 5)
            .await
            .expect("also bought")
            .is_empty(),
        "nothing counted before the event is delivered"
    );
    OutboxRelay::new(backend.outbox.clone(), Arc::new(shop.effects()))
        .drain()
        .await
        .expect("the outbox relay");
    let also = shop
        .also_bought(&sku("SAGA-1"), 5)
        .await
        .expect("also bought");
    assert_eq!(also.first().map(|a| a.sku.clone()), Some(sku("SAGA-2")));
    // The same key again returns the same order and charges nothing more.
    let again = shop
        .place(request(cart, customer, "tok_approve", "happy"))
        .await
        .expect("retry");
    assert_eq!(again.id, order.id);
    assert_eq!(gateway.charges().len(), 1);
}

/// Stock that is short turns the buyer away naming every short SKU: no order is stored,
/// no stock is taken, nothing is charged, and a retry tries again.
pub async fn checkout_out_of_stock_names_skus_and_stores_nothing(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(
        &shop,
        "Lamp",
        &[
            ("OOS-1", 1_000, 1),
            ("OOS-2", 1_000, 5),
            ("OOS-3", 1_000, 0),
        ],
    )
    .await;
    let cart = cart_with(&shop, &[("OOS-1", 2), ("OOS-2", 1), ("OOS-3", 1)]).await;
    let customer = CustomerId::new();
    let result = shop
        .place(request(cart, customer, "tok_approve", "oos"))
        .await;
    match result {
        Err(CheckoutError::OutOfStock {
            order: None,
            shortages,
        }) => {
            let named: Vec<Sku> = shortages.into_iter().map(|s| s.sku).collect();
            assert_eq!(named, vec![sku("OOS-1"), sku("OOS-3")]);
        }
        other => panic!("expected out of stock with no order placed, got {other:?}"),
    }
    let history = shop
        .order_history(customer, None, 10)
        .await
        .expect("order history");
    assert!(
        history.items.is_empty(),
        "a buyer turned away for stock leaves no order: {:?}",
        history.items
    );
    assert!(gateway.charges().is_empty(), "nothing is charged");
    for (s, on_hand) in [("OOS-1", 1), ("OOS-2", 5)] {
        let level = shop.stock(&sku(s)).await.expect("level");
        assert_eq!(
            (level.on_hand, level.reserved),
            (on_hand, 0),
            "{s} untouched"
        );
    }
    let reserved = backend
        .inventory
        .ledger(&sku("OOS-2"))
        .await
        .expect("ledger");
    assert!(
        reserved.iter().all(|m| m.kind == MovementKind::Received),
        "no reservation was taken for the in-stock line: {reserved:?}"
    );
    let cart_now = shop
        .cart(cart)
        .await
        .expect("load")
        .expect("the cart stays");
    assert!(cart_now.checkout.is_none(), "the cart is not claimed");
    // A retry with the same key tries again, and succeeds once the stock is there.
    let again = shop
        .place(request(cart, customer, "tok_approve", "oos"))
        .await;
    assert!(
        matches!(again, Err(CheckoutError::OutOfStock { order: None, .. })),
        "still out of stock: {again:?}"
    );
    shop.receive_stock(&sku("OOS-1"), 1).await.expect("receive");
    shop.receive_stock(&sku("OOS-3"), 1).await.expect("receive");
    let placed = shop
        .place(request(cart, customer, "tok_approve", "oos"))
        .await
        .expect("stock is back");
    assert_eq!(placed.status, OrderStatus::Confirmed);
}

/// A declined payment fails the order and puts its stock back.
pub async fn checkout_decline_releases_stock(backend: Backend) {
    let (shop, _) = shop(&backend);
    stocked(&shop, "Kayak", &[("DEC-1", 50_000, 2)]).await;
    let cart = cart_with(&shop, &[("DEC-1", 2)]).await;
    let customer = CustomerId::new();
    let result = shop
        .place(request(cart, customer, "tok_decline", "decline"))
        .await;
    let order = match result {
        Err(CheckoutError::PaymentDeclined { order, reason }) => {
            assert!(reason.contains("declined"));
            order
        }
        other => panic!("expected a decline, got {other:?}"),
    };
    let level = shop.stock(&sku("DEC-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (2, 0, 0));
    let stored = shop.order(order).await.expect("read").expect("exists");
    assert_eq!(stored.status, OrderStatus::Failed);
    let reservation = backend
        .inventory
        .reservation(order)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(reservation.state, ReservationState::Released);
    // A new attempt with a new key and another card goes through.
    let ok = shop
        .place(request(cart, customer, "tok_approve", "decline-2"))
        .await
        .expect("second attempt");
    assert_eq!(ok.status, OrderStatus::Confirmed);
    assert_conserved(backend.inventory.as_ref(), &sku("DEC-1"), 2).await;
}

/// A price change since the item was added is reported and written to the cart, never charged.
pub async fn checkout_reprices_changed_lines(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    let mut p = stocked(&shop, "Jacket", &[("PRC-1", 10_000, 3), ("PRC-2", 500, 3)]).await;
    let cart = cart_with(&shop, &[("PRC-1", 1), ("PRC-2", 1)]).await;
    p.variants[0].price = usd(12_000);
    shop.upsert_product(p).await.expect("price change");
    let customer = CustomerId::new();
    match shop
        .place(request(cart, customer, "tok_approve", "reprice"))
        .await
    {
        Err(CheckoutError::PricesChanged { changes }) => {
            assert_eq!(changes.len(), 1);
            assert_eq!(changes[0].sku, sku("PRC-1"));
            assert_eq!((changes[0].was, changes[0].now), (usd(10_000), usd(12_000)));
        }
        other => panic!("expected a price change report, got {other:?}"),
    }
    assert!(gateway.charges().is_empty());
    assert_eq!(shop.stock(&sku("PRC-1")).await.expect("level").on_hand, 3);
    let repriced = shop.cart(cart).await.expect("load").expect("exists");
    assert_eq!(
        repriced.line(&sku("PRC-1")).map(|l| l.unit_price),
        Some(usd(12_000))
    );
    let order = shop
        .place(request(cart, customer, "tok_approve", "reprice-2"))
        .await
        .expect("confirmed at the new price");
    assert_eq!(order.total, usd(12_500));
}

/// Bad checkout input gets a typed error and places nothing.
pub async fn checkout_rejects_bad_input_and_changes_nothing(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    let mut p = stocked(&shop, "Boot", &[("CHK-1", 8_000, 3)]).await;
    let customer = CustomerId::new();
    let empty = shop.create_guest_cart().await.expect("cart").id;
    assert!(matches!(
        shop.place(request(empty, customer, "tok_approve", "bad-1"))
            .await,
        Err(CheckoutError::EmptyCart(_))
    ));
    assert!(matches!(
        shop.place(request(CartId::new(), customer, "tok_approve", "bad-2"))
            .await,
        Err(CheckoutError::CartNotFound(_))
    ));
    // Another customer's cart is not found.
    let theirs = shop.customer_cart(CustomerId::new()).await.expect("cart");
    shop.add_item(theirs.id, &sku("CHK-1"), 1)
        .await
        .expect("add");
    assert!(matches!(
        shop.place(request(theirs.id, customer, "tok_approve", "bad-3"))
            .await,
        Err(CheckoutError::CartNotFound(_))
    ));
    let cart = cart_with(&shop, &[("CHK-1", 1)]).await;
    p.published = false;
    shop.upsert_product(p.clone()).await.expect("unpublish");
    assert!(matches!(
        shop.place(request(cart, customer, "tok_approve", "bad-4"))
            .await,
        Err(CheckoutError::ItemUnavailable(_))
    ));
    p.published = true;
    shop.upsert_product(p).await.expect("publish");
    for k in ["bad-1", "bad-2", "bad-3", "bad-4"] {
        assert_eq!(
            backend
                .orders
                .by_idempotency_key(customer, &key(k))
                .await
                .expect("read"),
            None
        );
    }
    let order = shop
        .place(request(cart, customer, "tok_approve", "bad-5"))
        .await
        .expect("valid checkout");
    // The same key with a different request is a conflict, never a silent update.
    let other_cart = cart_with(&shop, &[("CHK-1", 1)]).await;
    assert!(matches!(
        shop.place(request(other_cart, customer, "tok_approve", "bad-5"))
            .await,
        Err(CheckoutError::IdempotencyConflict(_))
    ));
    assert_eq!(gateway.charges().len(), 1);
    assert_eq!(shop.stock(&sku("CHK-1")).await.expect("level").sold, 1);
    assert_eq!(
        shop.order(order.id).await.expect("read").map(|o| o.version),
        Some(order.version)
    );
    assert!(matches!(
        shop.handle_payment_event(crate::payment::PaymentEvent {
            order: OrderId::new(),
            payment_id: crate::payment::PaymentId("pay_x".into()),
            status: PaymentStatus::Succeeded,
            failure_reason: None,
        })
        .await,
        Err(CheckoutError::Order(OrderError::NotFound(_)))
    ));
}

/// 32 concurrent retries of one checkout make one order, one charge, one sale.
pub async fn concurrent_checkout_retries_make_one_order(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Drone", &[("RTY-1", 30_000, 10)]).await;
    let cart = cart_with(&shop, &[("RTY-1", 2)]).await;
    let customer = CustomerId::new();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let shop = shop.clone();
            tokio::spawn(async move {
                shop.place(request(cart, customer, "tok_approve", "retry-storm"))
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(order) => {
                ids.push(order.id);
            }
            // A retry that arrives after the cart was cleared but before the order shows as
            // placed cannot exist: the order is created before the cart is cleared.
            Err(e) => panic!("a retry must return the order, got {e}"),
        }
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order for one key");
    assert_eq!(gateway.charges().len(), 1, "one charge");
    let level = shop.stock(&sku("RTY-1")).await.expect("level");
    assert_eq!((level.on_hand, level.sold), (8, 2), "one sale");
    let order = shop.order(ids[0]).await.expect("read").expect("exists");
    assert_eq!(order.status, OrderStatus::Confirmed);
}

/// A pending payment (3-D Secure) holds the stock until the callback; duplicate and
/// out-of-order callbacks change nothing.
pub async fn pending_payment_completes_by_callback(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Bike", &[("PND-1", 90_000, 2)]).await;
    let customer = CustomerId::new();

    let cart = cart_with(&shop, &[("PND-1", 1)]).await;
    let order = shop
        .place(request(cart, customer, "tok_pending", "pending-1"))
        .await
        .expect("pending");
    assert_eq!(order.status, OrderStatus::Pending);
    let payment = order.payment.clone().expect("payment recorded");
    assert_eq!(payment.status, PaymentStatus::Pending);
    assert_eq!(shop.stock(&sku("PND-1")).await.expect("level").reserved, 1);
    let event = complete(&gateway, &payment.id, true);
    let confirmed = shop
        .handle_payment_event(event.clone())
        .await
        .expect("callback");
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    let dup = shop.handle_payment_event(event).await.expect("duplicate");
    assert_eq!(
        dup.version, confirmed.version,
        "a duplicate changes nothing"
    );
    // A stale failure arriving after the success changes nothing either.
    let stale = crate::payment::PaymentEvent {
        order: order.id,
        payment_id: payment.id.clone(),
        status: PaymentStatus::Failed,
        failure_reason: Some("timeout".into()),
    };
    let still = shop.handle_payment_event(stale).await.expect("stale");
    assert_eq!(
        (still.status, still.version),
        (OrderStatus::Confirmed, confirmed.version)
    );

    // The second one fails authentication: stock goes back.
    let cart = cart_with(&shop, &[("PND-1", 1)]).await;
    let order = shop
        .place(request(cart, customer, "tok_pending", "pending-2"))
        .await
        .expect("pending");
    let payment = order.payment.clone().expect("payment");
    let event = complete(&gateway, &payment.id, false);
    let failed = shop
        .handle_payment_event(event.clone())
        .await
        .expect("callback");
    assert_eq!(failed.status, OrderStatus::Failed);
    shop.handle_payment_event(event).await.expect("duplicate");
    let level = shop.stock(&sku("PND-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (1, 0, 1));
    // A retry of the pending checkout returns the order as it stands.
    let retried = shop
        .place(request(cart, customer, "tok_pending", "pending-2"))
        .await;
    assert!(
        matches!(retried, Err(CheckoutError::PaymentDeclined { .. })),
        "{retried:?}"
    );
    assert_conserved(backend.inventory.as_ref(), &sku("PND-1"), 2).await;
}

/// A success that arrives after the order failed and its stock was released is refunded,
/// never kept; a late success whose reservation merely expired takes the stock again.
pub async fn late_success_after_failure_is_refunded(backend: Backend) {
    let (shop, gateway) = backend
        .storefront(StorefrontConfig::default().with_reservation_ttl(Duration::from_millis(1)));
    stocked(&shop, "Sofa", &[("LATE-1", 70_000, 1)]).await;
    let customer = CustomerId::new();

    // Expired reservation, stock still there: the late success re-reserves and confirms.
    let cart = cart_with(&shop, &[("LATE-1", 1)]).await;
    let order = shop
        .place(request(cart, customer, "tok_pending", "late-1"))
        .await
        .expect("pending");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let report = shop
        .recover(Duration::from_secs(3600))
        .await
        .expect("recover");
    assert_eq!(report.expired_reservations, vec![order.id]);
    assert_eq!(shop.stock(&sku("LATE-1")).await.expect("level").on_hand, 1);
    let payment = order.payment.clone().expect("payment");
    let event = complete(&gateway, &payment.id, true);
    let confirmed = shop.handle_payment_event(event).await.expect("callback");
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    assert_eq!(shop.stock(&sku("LATE-1")).await.expect("level").sold, 1);

    // Expired and the stock sold to someone else: the late success is refunded.
    shop.receive_stock(&sku("LATE-1"), 1)
        .await
        .expect("restock");
    let cart = cart_with(&shop, &[("LATE-1", 1)]).await;
    let slow = shop
        .place(request(cart, customer, "tok_pending", "late-2"))
        .await
        .expect("pending");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    shop.recover(Duration::from_secs(3600))
        .await
        .expect("recover");
    let other = cart_with(&shop, &[("LATE-1", 1)]).await;
    shop.place(request(other, CustomerId::new(), "tok_approve", "late-3"))
        .await
        .expect("someone else buys it");
    let payment = slow.payment.clone().expect("payment");
    let event = complete(&gateway, &payment.id, true);
    let failed = shop
        .handle_payment_event(event.clone())
        .await
        .expect("callback");
    assert_eq!(failed.status, OrderStatus::Failed);
    assert!(matches!(
        failed.failure,
        Some(crate::order::FailureReason::StockLostAfterPayment { .. })
    ));
    assert_eq!(
        failed.payment.as_ref().map(|p| p.status),
        Some(PaymentStatus::Refunded)
    );
    assert_eq!(
        gateway.charge_of(&payment.id).map(|c| c.status),
        Some(PaymentStatus::Refunded)
    );
    let again = shop.handle_payment_event(event).await.expect("duplicate");
    assert_eq!(again.version, failed.version);

    assert_eq!(
        failed.net_paid().expect("ledger"),
        Money::zero(Currency::USD),
        "captured and refunded: {:?}",
        failed.money
    );
    assert_conserved(backend.inventory.as_ref(), &sku("LATE-1"), 2).await;
}

/// `recover()` finishes checkouts whose gateway answer was lost or never came.
pub async fn recover_finishes_interrupted_checkouts(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Grill", &[("RCV-1", 20_000, 5)]).await;
    let customer = CustomerId::new();

    // Charged, but the answer timed out: the order stays PENDING with its stock held.
    let cart = cart_with(&shop, &[("RCV-1", 1)]).await;
    let lost = shop
        .place(request(cart, customer, "tok_timeout", "rcv-1"))
        .await;
    assert!(matches!(lost, Err(CheckoutError::Payment(_))), "{lost:?}");
    let charged = backend
        .orders
        .by_idempotency_key(customer, &key("rcv-1"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(charged.status, OrderStatus::Pending);

    // The provider was never reached.
    let cart2 = cart_with(&shop, &[("RCV-1", 2)]).await;
    let down = shop
        .place(request(cart2, customer, "tok_unavailable", "rcv-2"))
        .await;
    assert!(matches!(down, Err(CheckoutError::Payment(_))), "{down:?}");
    let never = backend
        .orders
        .by_idempotency_key(customer, &key("rcv-2"))
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(shop.stock(&sku("RCV-1")).await.expect("level").reserved, 3);

    // The process died after creating the order, before anything else.
    let cart3 = cart_with(&shop, &[("RCV-1", 1)]).await;
    let mut died = new_order(customer, "rcv-3");
    died.cart = cart3;
    died.lines[0].sku = sku("RCV-1");
    died.lines[0].unit_price = usd(20_000);
    died.total = usd(20_000);
    died.payment_method = Some(method("tok_approve"));
    let died = backend
        .orders
        .create(died, Vec::new())
        .await
        .expect("create")
        .into_order();

    // Too recent: left alone.
    let report = shop
        .recover(Duration::from_secs(3600))
        .await
        .expect("recover");
    assert!(report.confirmed.is_empty() && report.failed.is_empty());

    let report = shop.recover(Duration::ZERO).await.expect("recover");
    let mut confirmed = report.confirmed.clone();
    confirmed.sort();
    let mut expected = vec![charged.id, died.id];
    expected.sort();
    assert_eq!(confirmed, expected, "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(
        report.errors.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        vec![never.id],
        "the provider is still unreachable for this one"
    );
    for id in [charged.id, died.id] {
        let order = shop.order(id).await.expect("read").expect("exists");
        assert_eq!(order.status, OrderStatus::Confirmed);
        assert_eq!(order.net_paid().expect("ledger"), order.total);
    }
    let never = shop.order(never.id).await.expect("read").expect("exists");
    assert_eq!(never.status, OrderStatus::Pending, "never guessed failed");
    assert!(
        gateway
            .charges()
            .iter()
            .all(|c| c.status == PaymentStatus::Succeeded)
    );
    let level = shop.stock(&sku("RCV-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (1, 2, 2));
    // Running it again confirms nothing twice.
    let report = shop.recover(Duration::ZERO).await.expect("recover");
    assert!(report.confirmed.is_empty() && report.failed.is_empty());
    let never_charged = gateway.lookup(&charge_key(never.id)).await.expect("lookup");
    assert!(never_charged.is_none(), "the provider never saw it");
}

/// SHIPPED and DELIVERED follow CONFIRMED; cancelling refunds and restocks once; other
/// transitions are refused.
pub async fn lifecycle_ship_deliver_cancel(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Chair", &[("LIFE-1", 15_000, 4)]).await;
    let customer = CustomerId::new();
    let a = shop
        .place(request(
            cart_with(&shop, &[("LIFE-1", 1)]).await,
            customer,
            "tok_approve",
            "life-a",
        ))
        .await
        .expect("order a");
    let b = shop
        .place(request(
            cart_with(&shop, &[("LIFE-1", 2)]).await,
            customer,
            "tok_approve",
            "life-b",
        ))
        .await
        .expect("order b");

    assert!(matches!(
        shop.deliver(a.id, a.version).await,
        Err(OrderError::InvalidTransition { .. })
    ));
    let shipped = shop.ship(a.id, a.version).await.expect("ship");
    assert!(matches!(
        shop.ship(a.id, a.version).await,
        Err(OrderError::VersionConflict { .. })
    ));
    let delivered = shop.deliver(a.id, shipped.version).await.expect("deliver");
    assert_eq!(delivered.status, OrderStatus::Delivered);
    assert!(matches!(
        shop.cancel(a.id).await,
        Err(CheckoutError::Order(OrderError::InvalidTransition { .. }))
    ));

    let cancelled = shop.cancel(b.id).await.expect("cancel");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_eq!(
        cancelled.payment.as_ref().map(|p| p.status),
        Some(PaymentStatus::Refunded)
    );
    let again = shop.cancel(b.id).await.expect("cancel again");
    assert_eq!(again.version, cancelled.version);
    let level = shop.stock(&sku("LIFE-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (3, 0, 1));
    let refunded = gateway
        .charges()
        .into_iter()
        .filter(|c| c.status == PaymentStatus::Refunded)
        .count();
    assert_eq!(refunded, 1);
    assert_conserved(backend.inventory.as_ref(), &sku("LIFE-1"), 4).await;
}

/// The oversell check: 64 concurrent checkouts of one unit of a SKU with S units: exactly S
/// orders are confirmed, the rest fail out of stock, stock never goes negative and is
/// conserved.
pub async fn oversell_concurrent_checkouts(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    let stock = 10;
    stocked(&shop, "Console", &[("FLASH-1", 49_900, stock)]).await;
    let mut carts = Vec::new();
    for _ in 0..64 {
        carts.push(cart_with(&shop, &[("FLASH-1", 1)]).await);
    }
    let tasks: Vec<_> = carts
        .into_iter()
        .enumerate()
        .map(|(i, cart)| {
            let shop = shop.clone();
            tokio::spawn(async move {
                shop.place(request(
                    cart,
                    CustomerId::new(),
                    "tok_approve",
                    &format!("flash-{i}"),
                ))
                .await
            })
        })
        .collect();
    let mut confirmed = 0;
    let mut out_of_stock = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(o) => {
                assert_eq!(o.status, OrderStatus::Confirmed);
                confirmed += 1;
            }
            Err(CheckoutError::OutOfStock { .. }) => out_of_stock += 1,
            Err(e) => panic!("unexpected checkout error: {e}"),
        }
    }
    assert_eq!(confirmed, stock, "exactly the stock is sold");
    assert_eq!(out_of_stock, 64 - stock);
    assert_eq!(
        gateway.charges().len() as u32,
        stock,
        "only buyers who got stock are charged"
    );
    let level = shop.stock(&sku("FLASH-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (0, 0, stock));
    assert_conserved(backend.inventory.as_ref(), &sku("FLASH-1"), stock).await;
}

/// The oversell check over many randomized histories: each history runs 64 concurrent
/// shoppers with random carts (one to three SKUs, repeated SKUs, random quantities) and
/// random payment outcomes (approve, decline, pending completed later either way, duplicate
/// callbacks), then checks that no SKU sold more than it had, stock is conserved and matches
/// the confirmed orders, nothing stays reserved, every order is settled, and every kept
/// charge belongs to a confirmed order. The seed is printed on failure.
pub async fn oversell_randomized_histories(backend: Backend) {
    let seed: u64 = std::env::var("ECOMMERCE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!(
        "oversell_randomized_histories: {} histories, seed {seed}",
        backend.histories
    );
    for history in 0..backend.histories {
        // A gateway per history, so its charges are this history's alone.
        let (shop, gateway) = shop(&backend);
        run_history(&shop, &gateway, &backend, seed, history).await;
    }
}

async fn run_history(
    shop: &Storefront,
    gateway: &Arc<TestGateway>,
    backend: &Backend,
    seed: u64,
    history: usize,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(history as u64));
    let context = format!("seed {seed}, history {history}");
    let sku_count = rng.random_range(1..=3);
    let mut skus = Vec::new();
    let mut items = Vec::new();
    for i in 0..sku_count {
        let s = format!("H{history}-{i}");
        let stock: u32 = rng.random_range(0..=12);
        items.push((s.clone(), 1_000 + i as i64, stock));
        skus.push((s, stock));
    }
    let borrowed: Vec<(&str, i64, u32)> =
        items.iter().map(|(s, p, q)| (s.as_str(), *p, *q)).collect();
    stocked(shop, &format!("History {history}"), &borrowed).await;

    let mut plans = Vec::new();
    for shopper in 0..64 {
        let lines: Vec<(String, u32)> = (0..rng.random_range(1..=3))
            .map(|_| {
                let (s, _) = &skus[rng.random_range(0..skus.len())];
                (s.clone(), rng.random_range(1..=3))
            })
            .collect();
        let token = match rng.random_range(0..100) {
            0..70 => "tok_approve",
            70..85 => "tok_decline",
            _ => "tok_pending",
        };
        plans.push((
            shopper,
            lines,
            token,
            rng.random_bool(0.5),
            rng.random_bool(0.3),
        ));
    }
    let tasks: Vec<_> = plans
        .into_iter()
        .map(
            |(shopper, lines, token, pending_succeeds, callback_twice)| {
                let shop = shop.clone();
                let gateway = gateway.clone();
                tokio::spawn(async move {
                    let cart = shop.create_guest_cart().await.expect("cart");
                    for (s, q) in &lines {
                        shop.add_item(cart.id, &sku(s), *q).await.expect("add");
                    }
                    let req = request(
                        cart.id,
                        CustomerId::new(),
                        token,
                        &format!("h{history}-{shopper}"),
                    );
                    let result = shop.place(req).await;
                    let order = match result {
                        Ok(o) if o.status == OrderStatus::Pending => o,
                        Ok(o) => return Some(o.id),
                        Err(CheckoutError::PaymentDeclined { order, .. }) => return Some(order),
                        Err(CheckoutError::OutOfStock { order, .. }) => return order,
                        Err(e) => panic!("unexpected checkout error: {e}"),
                    };
                    tokio::task::yield_now().await;
                    let payment = order.payment.clone().expect("pending payment");
                    let hook = gateway
                        .complete(&payment.id, pending_succeeds)
                        .expect("complete");
                    let event: crate::payment::PaymentEvent =
                        serde_json::from_slice(&hook.payload).expect("event");
                    let times = if callback_twice { 2 } else { 1 };
                    for _ in 0..times {
                        shop.handle_payment_event(event.clone())
                            .await
                            .expect("callback");
                    }
                    Some(order.id)
                })
            },
        )
        .collect();
    let mut order_ids = Vec::new();
    for t in tasks {
        // A buyer turned away for stock placed no order.
        order_ids.extend(
            t.await
                .unwrap_or_else(|e| panic!("{context}: task failed: {e}")),
        );
    }

    let mut sold_by_orders: HashMap<Sku, u32> = HashMap::new();
    let mut confirmed_payments = Vec::new();
    for id in &order_ids {
        let order = shop.order(*id).await.expect("read").expect("exists");
        match order.status {
            OrderStatus::Confirmed => {
                for l in &order.lines {
                    *sold_by_orders.entry(l.sku.clone()).or_default() += l.quantity;
                }
                confirmed_payments.push(order.payment.clone().expect("paid").id);
            }
            OrderStatus::Failed => {}
            other => panic!("{context}: order {id} left {other}"),
        }
    }
    for (s, stock) in &skus {
        let s = sku(s);
        let level = match backend.inventory.level(&s).await {
            Ok(level) => level,
            Err(InventoryError::UnknownSku(_)) if *stock == 0 => continue,
            Err(e) => panic!("{context}: {e}"),
        };
        let sold = sold_by_orders.get(&s).copied().unwrap_or(0);
        assert!(sold <= *stock, "{context}: oversold {s}: {sold} of {stock}");
        assert_eq!(
            level.sold, sold,
            "{context}: sold units of {s} match confirmed orders"
        );
        assert_eq!(
            level.reserved, 0,
            "{context}: nothing stays reserved for {s}"
        );
        assert_eq!(level.total(), u64::from(*stock), "{context}: {s} conserved");
        let ledger = backend.inventory.ledger(&s).await.expect("ledger");
        assert!(
            level.conserved(&ledger),
            "{context}: ledger of {s} replays to its level"
        );
    }
    let kept: Vec<_> = gateway
        .charges()
        .into_iter()
        .filter(|c| c.status == PaymentStatus::Succeeded)
        .map(|c| c.payment_id)
        .collect();
    for p in &kept {
        assert!(
            confirmed_payments.contains(p),
            "{context}: money kept for payment {p} without a confirmed order"
        );
    }
    assert_eq!(
        kept.len(),
        confirmed_payments.len(),
        "{context}: every confirmed order was paid"
    );
}

/// With a unit of work that holds the carts, the sale takes the ordered units out of the cart
/// in its own transaction when the cart is still as the claim stored it, and leaves a cart
/// changed since untouched (the checkout clears that one after the commit). Backends without
/// such a unit pass trivially.
pub async fn a_sale_clears_its_claimed_cart_in_its_transaction(backend: Backend) {
    let Some(unit) = backend.unit.clone().filter(|u| u.claims_carts()) else {
        return;
    };
    let (shop, _) = shop(&backend);
    stocked(&shop, "Lamp", &[("UOW-1", 4_000, 5), ("UOW-2", 1_000, 5)]).await;
    let customer = CustomerId::new();
    // Places an order of `quantity` UOW-1 from a new cart, claiming it in the same
    // transaction; returns the order and its cart as stored with the claim.
    let place = |quantity: u32, k: &'static str| {
        let (shop, unit) = (shop.clone(), unit.clone());
        async move {
            let cart = cart_with(&shop, &[("UOW-1", quantity)]).await;
            let cart = shop.cart(cart).await.expect("load").expect("cart");
            let mut order = new_order(customer, k);
            order.cart = cart.id;
            order.lines[0].sku = sku("UOW-1");
            order.lines[0].quantity = quantity;
            let mut claimed = cart.clone();
            claimed.checkout = Some(crate::cart::CheckoutClaim {
                order: order.id,
                lines: vec![(sku("UOW-1"), quantity)],
            });
            let placed = unit
                .place(
                    order,
                    Vec::new(),
                    &[super::line("UOW-1", quantity)],
                    super::TTL,
                    Some(&claimed),
                    &[],
                )
                .await
                .expect("placed");
            let stored = shop.cart(cart.id).await.expect("load").expect("cart");
            assert_eq!(
                stored.checkout.as_ref().map(|c| c.order),
                Some(placed.clone().into_order().id),
                "the claim is stored with the order"
            );
            (placed.into_order(), stored)
        }
    };
    let confirm = || crate::order::OrderPatch::status(OrderStatus::Confirmed);

    let (order, stored) = place(2, "uow-1").await;
    let sold = unit
        .sell(&order, confirm(), Vec::new(), Some(&stored))
        .await
        .expect("sold");
    assert_eq!(sold.order.status, OrderStatus::Confirmed);
    assert!(sold.cart_cleared, "the cart was as the claim left it");
    let cleared = shop.cart(stored.id).await.expect("load").expect("cart");
    assert!(
        cleared.is_empty() && cleared.checkout.is_none(),
        "the ordered units left the cart with the sale: {cleared:?}"
    );
    assert_eq!(cleared.version, stored.version + 1);

    // The shopper adds an item after the claim: the sale stands, the cart is left as it is.
    let (order, stored) = place(1, "uow-2").await;
    shop.add_item(stored.id, &sku("UOW-2"), 1)
        .await
        .expect("add");
    let sold = unit
        .sell(&order, confirm(), Vec::new(), Some(&stored))
        .await
        .expect("sold");
    assert_eq!(sold.order.status, OrderStatus::Confirmed);
    assert!(!sold.cart_cleared, "the cart changed since the claim");
    let kept = shop.cart(stored.id).await.expect("load").expect("cart");
    assert_eq!(
        kept.version,
        stored.version + 1,
        "only the shopper's change"
    );
    assert_eq!(kept.checkout.as_ref().map(|c| c.order), Some(order.id));
    assert_eq!(kept.lines.len(), 2);
    let level = shop.stock(&sku("UOW-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (2, 0, 3));
}

/// A retry of a paid checkout is answered with its order whatever the cart holds by then:
/// refilled with an item whose price changed since, with an item sold out, or emptied. No
/// second order, no second charge, nothing moved.
pub async fn a_retry_answers_its_order_whatever_the_cart_holds_now(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    let mut p = stocked(&shop, "Kettle", &[("AGN-1", 4_000, 5), ("AGN-2", 900, 1)]).await;
    let cart = cart_with(&shop, &[("AGN-1", 1)]).await;
    let customer = CustomerId::new();
    let first = shop
        .place(request(cart, customer, "tok_approve", "again"))
        .await
        .expect("confirmed");
    assert_eq!(first.status, OrderStatus::Confirmed);
    let retry = || shop.place(request(cart, customer, "tok_approve", "again"));

    // The cart, emptied by the sale.
    assert_eq!(retry().await.expect("the same order"), first);
    // Refilled, and the price changed since.
    shop.add_item(cart, &sku("AGN-1"), 2).await.expect("add");
    p.variants[0].price = usd(4_500);
    shop.upsert_product(p.clone()).await.expect("price change");
    assert_eq!(retry().await.expect("the same order"), first);
    // With an item nobody can have any more.
    shop.add_item(cart, &sku("AGN-2"), 1).await.expect("add");
    let other = cart_with(&shop, &[("AGN-2", 1)]).await;
    shop.place(request(other, CustomerId::new(), "tok_approve", "other"))
        .await
        .expect("the last one");
    assert_eq!(retry().await.expect("the same order"), first);

    assert_eq!(gateway.charges().len(), 2, "one charge per order");
    let level = shop.stock(&sku("AGN-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (4, 0, 1));
    let history = shop
        .order_history(customer, None, 10)
        .await
        .expect("history");
    assert_eq!(history.items.len(), 1, "one order for the key");
}

/// "Buy now" orders one item at once, in a cart of its own: the shopper's cart is left
/// alone; presses at once and later retries answer with the first order, whatever the item's
/// state now; the same key with another item is an idempotency conflict; a bad item is
/// refused and stores nothing.
pub async fn buy_now_orders_one_item_once_beside_the_cart(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    let mut p = stocked(&shop, "Kayak", &[("BUY-1", 50_000, 5), ("BUY-2", 1_500, 5)]).await;
    let customer = CustomerId::new();
    let mine = shop.customer_cart(customer).await.expect("cart");
    shop.add_item(mine.id, &sku("BUY-2"), 1).await.expect("add");
    let mine = shop.cart(mine.id).await.expect("load").expect("cart");
    let buy = |item: &str, quantity: u32, k: &str| {
        CheckoutRequest::buy_now(sku(item), quantity, customer, method("tok_approve"), key(k))
    };

    // Eight presses of the button at once: one order, one charge, one sale.
    let presses: Vec<_> = (0..8)
        .map(|_| {
            let (shop, request) = (shop.clone(), buy("BUY-1", 2, "now"));
            tokio::spawn(async move { shop.place(request).await })
        })
        .collect();
    let mut ids = Vec::new();
    for press in presses {
        let placed = press.await.expect("task");
        ids.push(placed.expect("every press is answered with the order").id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order for one key: {ids:?}");
    let order = shop.order(ids[0]).await.expect("read").expect("stored");
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(order.total, usd(100_000), "the catalog's price");
    let lines: Vec<_> = order
        .lines
        .iter()
        .map(|l| (l.sku.as_str(), l.quantity))
        .collect();
    assert_eq!(lines, [("BUY-1", 2)]);
    assert_eq!(
        order.cart,
        CartId::buy_now(customer, &key("now"), &sku("BUY-1"), 2)
    );
    assert_eq!(gateway.charges().len(), 1);
    let level = shop.stock(&sku("BUY-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (3, 0, 2));
    assert_eq!(
        shop.cart(mine.id).await.expect("load"),
        Some(mine.clone()),
        "the shopper's cart is left alone"
    );

    // The same key for another item: refused, nothing taken or charged.
    for other in [buy("BUY-1", 1, "now"), buy("BUY-2", 2, "now")] {
        match shop.place(other).await {
            Err(CheckoutError::IdempotencyConflict(k)) => assert_eq!(k, key("now")),
            other => panic!("expected an idempotency conflict, got {other:?}"),
        }
    }

    // Bad items: refused with the cart's own error, and no cart or order is stored.
    let refused = |item: &str, quantity: u32, k: &str, error: CheckoutError| {
        let expected = match (&error, quantity) {
            (CheckoutError::Cart(CartError::InvalidQuantity { .. }), 0 | u32::MAX) => true,
            (CheckoutError::Cart(CartError::UnknownSku(s)), _) => s.as_str() == item,
            (CheckoutError::Cart(CartError::Unavailable(s)), _) => s.as_str() == item,
            _ => false,
        };
        assert!(expected, "{item} x {quantity}: got {error:?}");
        CartId::buy_now(customer, &key(k), &sku(item), quantity)
    };
    for (item, quantity, k) in [
        ("BUY-2", 0, "zero"),
        ("BUY-2", u32::MAX, "max"),
        ("NOPE-1", 1, "nope"),
    ] {
        let error = shop
            .place(buy(item, quantity, k))
            .await
            .expect_err("refused");
        let cart = refused(item, quantity, k, error);
        assert_eq!(
            shop.cart(cart).await.expect("load"),
            None,
            "{item}: no cart"
        );
    }

    // The item leaves the catalog: a retry is answered with its order, a new key refused.
    p.published = false;
    shop.upsert_product(p).await.expect("unpublish");
    let again = shop.place(buy("BUY-1", 2, "now")).await.expect("retry");
    assert_eq!(again.id, order.id);
    let error = shop
        .place(buy("BUY-1", 2, "later"))
        .await
        .expect_err("refused");
    let cart = refused("BUY-1", 2, "later", error);
    assert_eq!(shop.cart(cart).await.expect("load"), None, "no cart");

    assert_eq!(gateway.charges().len(), 1, "one charge in all");
    let level = shop.stock(&sku("BUY-2")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (5, 0, 0));
    let history = shop
        .order_history(customer, None, 10)
        .await
        .expect("history");
    assert_eq!(history.items.len(), 1, "one order in the history");
}

/// A cart changed through another storefront (another process of the shop) since this one
/// stored it is checked out as stored, whatever this one remembers of it
/// ([`crate::StorefrontConfig::recent_carts`]): grown, its order holds every line; emptied,
/// it is refused and nothing is stored; paid for there, it is not paid again here. A price
/// that changed since the cart was made is shown to the shopper before it is charged.
pub async fn a_cart_changed_elsewhere_is_checked_out_as_stored(backend: Backend) {
    let (here, gateway) = shop(&backend);
    let (there, elsewhere) = shop(&backend);
    let mut p = stocked(&here, "Rug", &[("ELSE-1", 2_000, 5), ("ELSE-2", 1_000, 5)]).await;
    let customer = CustomerId::new();
    let lines = |order: &Order| -> Vec<(String, u32)> {
        let mut lines: Vec<_> = order
            .lines
            .iter()
            .map(|l| (l.sku.as_str().to_owned(), l.quantity))
            .collect();
        lines.sort();
        lines
    };

    // Grown there: the order holds the line added there too.
    let cart = here
        .create_guest_cart_with(&sku("ELSE-1"), 1)
        .await
        .expect("cart");
    there
        .add_item(cart.id, &sku("ELSE-2"), 2)
        .await
        .expect("add");
    let grown = here
        .place(request(cart.id, customer, "tok_approve", "grown"))
        .await
        .expect("confirmed");
    assert_eq!(grown.status, OrderStatus::Confirmed);
    assert_eq!(
        lines(&grown),
        [("ELSE-1".to_owned(), 1), ("ELSE-2".to_owned(), 2)],
        "the cart as stored, not as this storefront made it"
    );
    assert_eq!(grown.total, usd(4_000));

    // Emptied there: refused, nothing stored.
    let cart = here
        .create_guest_cart_with(&sku("ELSE-1"), 2)
        .await
        .expect("cart");
    there
        .remove_item(cart.id, &sku("ELSE-1"))
        .await
        .expect("remove");
    match here
        .place(request(cart.id, customer, "tok_approve", "emptied"))
        .await
    {
        Err(CheckoutError::EmptyCart(id)) => assert_eq!(id, cart.id),
        other => panic!("expected an empty cart, got {other:?}"),
    }

    // Paid for there: not paid again here, with another key.
    let cart = here
        .create_guest_cart_with(&sku("ELSE-1"), 1)
        .await
        .expect("cart");
    let paid = there
        .place(request(cart.id, customer, "tok_approve", "there"))
        .await
        .expect("confirmed");
    assert_eq!(paid.status, OrderStatus::Confirmed);
    match here
        .place(request(cart.id, customer, "tok_approve", "here"))
        .await
    {
        Err(CheckoutError::EmptyCart(id)) => assert_eq!(id, cart.id),
        other => panic!("expected the paid cart to be empty, got {other:?}"),
    }

    // Repriced since the cart was made: the shopper is told before any charge.
    let cart = here
        .create_guest_cart_with(&sku("ELSE-2"), 1)
        .await
        .expect("cart");
    p.variants[1].price = usd(1_200);
    here.upsert_product(p).await.expect("price change");
    match here
        .place(request(cart.id, customer, "tok_approve", "repriced"))
        .await
    {
        Err(CheckoutError::PricesChanged { changes }) => assert_eq!(changes.len(), 1),
        other => panic!("expected changed prices, got {other:?}"),
    }
    let repriced = here
        .place(request(cart.id, customer, "tok_approve", "repriced"))
        .await
        .expect("confirmed at the price shown");
    assert_eq!(repriced.total, usd(1_200));

    assert_eq!(gateway.charges().len(), 2, "grown, repriced");
    assert_eq!(elsewhere.charges().len(), 1, "paid there");
    let history = here
        .order_history(customer, None, 10)
        .await
        .expect("history");
    assert_eq!(history.items.len(), 3, "no order of a cart as it was");
    assert!(
        history
            .items
            .iter()
            .all(|o| o.status == OrderStatus::Confirmed),
        "{:?}",
        history.items
    );
    let level = here.stock(&sku("ELSE-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (3, 0, 2));
    let level = here.stock(&sku("ELSE-2")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (2, 0, 3));
}
