//! Checks that money is as exact as stock: every charge ends in exactly one paid order or a
//! refund, whatever order callbacks come in and however often "Pay" is pressed.

use std::time::Duration;

use super::{Backend, Place, assert_conserved, cart_with, complete, request, shop, sku, stocked};
use crate::checkout::{Placed, charge_key};
use crate::error::{CheckoutError, OrderError};
use crate::id::CustomerId;
use crate::money::{Currency, Money};
use crate::order::{Order, OrderStatus};
use crate::payment::{PaymentEvent, PaymentGateway, PaymentStatus, TestGateway};
use crate::storefront::StorefrontConfig;

/// The money law for one order, checked against the gateway: captured - refunded is the
/// total when the order is paid and zero otherwise, in the order's ledger and at the gateway.
pub(super) async fn assert_money_settled(gateway: &TestGateway, order: &Order) {
    let charge = gateway.lookup(&charge_key(order.id)).await.expect("lookup");
    let at_gateway = match &charge {
        Some(c) if c.status == PaymentStatus::Succeeded => c.amount,
        _ => Money::zero(order.total.currency),
    };
    let expected = if order.is_paid() {
        order.total
    } else {
        Money::zero(order.total.currency)
    };
    assert_eq!(
        at_gateway, expected,
        "the gateway holds the total of a paid order and nothing of another: {order:?} {charge:?}"
    );
    assert_eq!(
        order.net_paid().expect("ledger"),
        expected,
        "the order's money ledger agrees with the gateway: {order:?}"
    );
}

/// A charge whose answer was lost, retried with the same key while fewer units are on hand
/// than the order holds: the retry asks the gateway, finds the charge and confirms the order
/// with the stock it already holds (never "sold out, nothing charged" with a kept charge).
pub async fn retry_after_a_lost_charge_answer_confirms(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Kettle", &[("LOST-1", 4_000, 3)]).await;
    let customer = CustomerId::new();
    let cart = cart_with(&shop, &[("LOST-1", 2)]).await;
    let lost = shop
        .place_order(request(cart, customer, "tok_timeout", "lost-1"))
        .await;
    assert!(
        matches!(&lost, Err(e) if e.is_transient()),
        "outcome unknown: {lost:?}"
    );
    // Someone else buys the last free unit: 0 on hand, 2 held for the first order.
    let other = cart_with(&shop, &[("LOST-1", 1)]).await;
    shop.place(request(other, CustomerId::new(), "tok_approve", "lost-2"))
        .await
        .expect("the last free unit");
    let retried = shop
        .place_order(request(cart, customer, "tok_timeout", "lost-1"))
        .await
        .expect("the retry finds the charge");
    let Placed::Confirmed(order) = retried else {
        panic!("the charged order is confirmed: {retried:?}");
    };
    assert_eq!(gateway.charges().len(), 2, "no second charge");
    assert_money_settled(&gateway, &order).await;
    let level = shop.stock(&sku("LOST-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (0, 0, 3));
    assert_conserved(backend.inventory.as_ref(), &sku("LOST-1"), 3).await;
}

/// A charge that succeeded after its stock was released and sold to someone else ends as a
/// typed error (never `Ok` with a FAILED order), refunded, and says so.
pub async fn stock_lost_after_payment_is_a_typed_refunded_failure(backend: Backend) {
    let (shop, gateway) = backend
        .storefront(StorefrontConfig::default().with_reservation_ttl(Duration::from_millis(1)));
    stocked(&shop, "Lamp", &[("GONE-1", 2_500, 1)]).await;
    let customer = CustomerId::new();
    let cart = cart_with(&shop, &[("GONE-1", 1)]).await;
    let lost = shop
        .place_order(request(cart, customer, "tok_timeout", "gone-1"))
        .await;
    assert!(lost.is_err(), "{lost:?}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    shop.recover(Duration::from_secs(3600))
        .await
        .expect("expired reservations released");
    let other = cart_with(&shop, &[("GONE-1", 1)]).await;
    shop.place(request(other, CustomerId::new(), "tok_approve", "gone-2"))
        .await
        .expect("someone else buys it");
    let retried = shop
        .place_order(request(cart, customer, "tok_timeout", "gone-1"))
        .await;
    let Err(CheckoutError::StockLostAfterPayment { order, shortages }) = retried else {
        panic!("a typed failure, not Ok with a failed order: {retried:?}");
    };
    assert_eq!(shortages[0].sku, sku("GONE-1"));
    let order = shop.order(order).await.expect("read").expect("exists");
    assert_eq!(order.status, OrderStatus::Failed);
    assert_money_settled(&gateway, &order).await;
    assert_eq!(
        gateway
            .lookup(&charge_key(order.id))
            .await
            .expect("lookup")
            .map(|c| c.status),
        Some(PaymentStatus::Refunded)
    );
    assert_conserved(backend.inventory.as_ref(), &sku("GONE-1"), 1).await;
}

/// Two tabs, 20 presses of "Pay" on one cart, each with its own key: one order is paid, once;
/// every other press is told which order is paying for the cart, or finds the paid units
/// gone from it.
pub async fn one_cart_is_paid_once_whatever_the_keys(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Phone", &[("TABS-1", 50_000, 40)]).await;
    let customer = CustomerId::new();
    let cart = cart_with(&shop, &[("TABS-1", 1)]).await;
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let shop = shop.clone();
            tokio::spawn(async move {
                shop.place_order(request(cart, customer, "tok_approve", &format!("tab-{n}")))
                    .await
            })
        })
        .collect();
    let mut paid = Vec::new();
    let mut told = Vec::new();
    for t in tasks {
        match t.await.expect("task") {
            Ok(Placed::Confirmed(order)) => paid.push(order.id),
            Err(CheckoutError::CartInCheckout { order }) => told.push(order),
            // Pressed after the order was paid and its units left the cart.
            Err(CheckoutError::EmptyCart(_) | CheckoutError::CartChanged { .. }) => {}
            other => panic!("a press is paid or told who pays: {other:?}"),
        }
    }
    assert_eq!(paid.len(), 1, "one paid order, got {paid:?}");
    assert!(
        told.iter().all(|o| *o == paid[0]),
        "every other press names the paying order"
    );
    let charged = gateway
        .charges()
        .into_iter()
        .filter(|c| c.status == PaymentStatus::Succeeded)
        .count();
    assert_eq!(charged, 1, "charged once");
    let level = shop.stock(&sku("TABS-1")).await.expect("level");
    assert_eq!((level.sold, level.reserved), (1, 0));
    // A later press finds the paid units gone from the cart.
    let again = shop
        .place_order(request(cart, customer, "tok_approve", "tab-late"))
        .await;
    assert!(
        matches!(again, Err(CheckoutError::EmptyCart(_))),
        "the paid units left the cart: {again:?}"
    );
}

/// Items added to a cart while its checkout waits for the customer stay in the cart once the
/// order is paid; the ordered units leave it.
pub async fn items_added_during_checkout_stay_in_the_cart(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Desk", &[("ADD-1", 30_000, 5), ("ADD-2", 2_000, 5)]).await;
    let customer = CustomerId::new();
    let cart = cart_with(&shop, &[("ADD-1", 1)]).await;
    let Placed::AwaitingPayment(order) = shop
        .place_order(request(cart, customer, "tok_pending", "add-1"))
        .await
        .expect("pending")
    else {
        panic!("3-D Secure waits");
    };
    let busy = shop
        .place_order(request(cart, customer, "tok_approve", "add-2"))
        .await;
    assert!(
        matches!(busy, Err(CheckoutError::CartInCheckout { order: o }) if o == order.id),
        "{busy:?}"
    );
    shop.add_item(cart, &sku("ADD-2"), 2).await.expect("add");
    shop.add_item(cart, &sku("ADD-1"), 1)
        .await
        .expect("add more");
    let payment = order.payment.clone().expect("payment");
    let paid = shop
        .handle_payment_event(complete(&gateway, &payment.id, true))
        .await
        .expect("callback");
    assert_eq!(paid.status, OrderStatus::Confirmed);
    let left = shop.cart(cart).await.expect("load").expect("cart");
    let mut units: Vec<_> = left
        .lines
        .iter()
        .map(|l| (l.sku.as_str().to_owned(), l.quantity))
        .collect();
    units.sort();
    assert_eq!(
        units,
        vec![("ADD-1".to_owned(), 1), ("ADD-2".to_owned(), 2)],
        "only the ordered unit left the cart"
    );
    assert!(left.checkout.is_none());
    // The rest can be checked out now.
    let next = shop
        .place_order(request(cart, customer, "tok_approve", "add-3"))
        .await
        .expect("the rest");
    assert!(next.is_confirmed());
    assert_eq!(next.order().lines.len(), 2);
}

/// Callbacks are facts about *which* order to look at, not about what happened: a stale
/// "failed" before "succeeded", or a signed event naming another order's payment, changes
/// nothing; the gateway's answer decides. An event for an unknown order is a typed not-found.
pub async fn payment_events_are_checked_with_the_gateway(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Chair", &[("EVT-1", 9_000, 4)]).await;
    let customer = CustomerId::new();
    let pending = |k: &'static str| {
        let shop = shop.clone();
        async move {
            let cart = cart_with(&shop, &[("EVT-1", 1)]).await;
            shop.place(request(cart, customer, "tok_pending", k))
                .await
                .expect("pending")
        }
    };
    let a = pending("evt-a").await;
    let b = pending("evt-b").await;
    let a_pay = a.payment.clone().expect("payment");
    let b_pay = b.payment.clone().expect("payment");

    // A stale failure while the payment is still pending at the gateway.
    let stale = PaymentEvent {
        order: a.id,
        payment_id: a_pay.id.clone(),
        status: PaymentStatus::Failed,
        failure_reason: Some("stale".into()),
    };
    let still = shop.handle_payment_event(stale.clone()).await.expect("ok");
    assert_eq!(
        still.status,
        OrderStatus::Pending,
        "a stale failure changes nothing"
    );

    // B's payment succeeds; an event names B's payment for order A.
    let b_event = complete(&gateway, &b_pay.id, true);
    let crossed = PaymentEvent {
        order: a.id,
        ..b_event.clone()
    };
    let a_after = shop.handle_payment_event(crossed).await.expect("ok");
    assert_eq!(
        a_after.status,
        OrderStatus::Pending,
        "another order's payment never confirms this one"
    );
    let b_after = shop.handle_payment_event(b_event).await.expect("ok");
    assert_eq!(b_after.status, OrderStatus::Confirmed);

    // A succeeds; the stale failure delivered again after it changes nothing.
    let a_event = complete(&gateway, &a_pay.id, true);
    let a_paid = shop.handle_payment_event(a_event).await.expect("ok");
    assert_eq!(a_paid.status, OrderStatus::Confirmed);
    let late = shop.handle_payment_event(stale).await.expect("ok");
    assert_eq!(late.status, OrderStatus::Confirmed);
    assert_eq!(late.version, a_paid.version);
    for order in [&late, &b_after] {
        assert_money_settled(&gateway, order).await;
    }

    let unknown = PaymentEvent {
        order: crate::id::OrderId::new(),
        ..stale_event(&a_pay.id)
    };
    let result = shop.handle_payment_event(unknown).await;
    assert!(
        matches!(result, Err(CheckoutError::Order(OrderError::NotFound(_)))),
        "{result:?}"
    );
    assert!(result.is_err_and(|e| e.is_not_found()));
}

fn stale_event(payment: &crate::payment::PaymentId) -> PaymentEvent {
    PaymentEvent {
        order: crate::id::OrderId::new(),
        payment_id: payment.clone(),
        status: PaymentStatus::Succeeded,
        failure_reason: None,
    }
}

/// Idempotency keys are scoped per customer: two customers using `checkout-1` get their own
/// orders, and neither learns of the other's.
pub async fn idempotency_keys_are_scoped_per_customer(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Mug", &[("KEY-1", 1_200, 5)]).await;
    let (alice, bob) = (CustomerId::new(), CustomerId::new());
    let a = shop
        .place(request(
            cart_with(&shop, &[("KEY-1", 1)]).await,
            alice,
            "tok_approve",
            "checkout-1",
        ))
        .await
        .expect("alice");
    let b = shop
        .place(request(
            cart_with(&shop, &[("KEY-1", 2)]).await,
            bob,
            "tok_approve",
            "checkout-1",
        ))
        .await
        .expect("bob is not told of alice's key");
    assert_ne!(a.id, b.id);
    assert_eq!((a.customer, b.customer), (alice, bob));
    assert_eq!(gateway.charges().len(), 2);
    for order in [&a, &b] {
        assert_money_settled(&gateway, order).await;
    }
}

/// Cancelling a paid order refunds it once, however often it is asked, and the ledger says
/// so.
pub async fn cancellation_refunds_once_in_the_ledger(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Tent", &[("CNL-1", 15_000, 2)]).await;
    let order = shop
        .place(request(
            cart_with(&shop, &[("CNL-1", 1)]).await,
            CustomerId::new(),
            "tok_approve",
            "cnl-1",
        ))
        .await
        .expect("paid");
    shop.cancel(order.id).await.expect("cancel");
    let cancelled = shop
        .cancel(order.id)
        .await
        .expect("cancelling again is a no-op");
    assert_eq!(cancelled.status, OrderStatus::Cancelled);
    assert_money_settled(&gateway, &cancelled).await;
    assert_eq!(
        cancelled.net_paid().expect("ledger"),
        Money::zero(Currency::USD)
    );
    assert_eq!(cancelled.money.len(), 2, "one capture, one refund");
    assert_conserved(backend.inventory.as_ref(), &sku("CNL-1"), 2).await;
}

/// A provider that has forgotten every idempotency key (Stripe keeps them for 24 hours) but
/// still knows its payments by id.
#[derive(Debug)]
struct ForgetfulKeys(std::sync::Arc<TestGateway>);

#[async_trait::async_trait]
impl PaymentGateway for ForgetfulKeys {
    async fn charge(
        &self,
        request: &crate::payment::ChargeRequest,
    ) -> Result<crate::payment::Charge, crate::error::PaymentError> {
        self.0.charge(request).await
    }

    async fn lookup(
        &self,
        _idempotency_key: &str,
    ) -> Result<Option<crate::payment::Charge>, crate::error::PaymentError> {
        Ok(None)
    }

    async fn payment(
        &self,
        id: &crate::payment::PaymentId,
    ) -> Result<Option<crate::payment::Charge>, crate::error::PaymentError> {
        self.0.payment(id).await
    }

    async fn refund(
        &self,
        request: &crate::payment::RefundRequest,
    ) -> Result<crate::payment::Refund, crate::error::PaymentError> {
        self.0.refund(request).await
    }
}

/// Once an order knows its payment id, the gateway is asked by id: a payment completed after
/// the provider forgot the charge's idempotency key still confirms its order, and a stale
/// "failed" for it still changes nothing.
pub async fn payments_are_looked_up_by_id_once_known(backend: Backend) {
    let (builder, gateway) = backend.builder(StorefrontConfig::default());
    let shop = builder
        .payments(std::sync::Arc::new(ForgetfulKeys(gateway.clone())))
        .build()
        .expect("every store is given");
    stocked(&shop, "Lamp", &[("BYID-1", 4_000, 2)]).await;
    let cart = cart_with(&shop, &[("BYID-1", 1)]).await;
    let order = match shop
        .place_order(request(cart, CustomerId::new(), "tok_pending", "by-id"))
        .await
        .expect("checkout")
    {
        Placed::AwaitingPayment(order) => order,
        other => panic!("expected a pending payment, got {other:?}"),
    };
    let payment = order.payment.as_ref().expect("payment id").id.clone();
    let mut stale = complete(&gateway, &payment, true);
    let confirmed = shop
        .handle_payment_event(stale.clone())
        .await
        .expect("event");
    assert_eq!(
        confirmed.status,
        OrderStatus::Confirmed,
        "the payment is found by its id"
    );
    stale.status = PaymentStatus::Failed;
    let still = shop.handle_payment_event(stale).await.expect("stale event");
    assert_eq!(still.status, OrderStatus::Confirmed);
    assert_money_settled(&gateway, &still).await;
    assert_eq!(gateway.charges().len(), 1, "charged once");
}
