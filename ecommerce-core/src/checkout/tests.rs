//! Failure paths of the saga, with mockall mocks of the store traits and the gateway.
//!
//! The mocks delegate to the in-memory stores and fail once at a chosen step, as a process
//! that dies there would leave things. `recover()` must then finish every order: confirmed
//! with its stock sold when the charge happened, failed with its stock back when it did not,
//! and never a charge without a confirmed order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::executor::block_on;

use super::*;
use crate::cart::{CartStore, MockCartStore};
use crate::catalog::{CatalogStore, Product, Variant};
use crate::error::StoreError;
use crate::id::{ProductId, Sku};
use crate::inventory::{InventoryStore, MockInventoryStore};
use crate::memory::{
    MemoryCartStore, MemoryCatalog, MemoryInventory, MemoryOrderStore, MemoryRecommendations,
};
use crate::money::Currency;
use crate::order::{MockOrderStore, OrderStore};
use crate::payment::{MockPaymentGateway, PaymentGateway, PaymentId, TestGateway};
use crate::recommend::{MockRecommendationStore, RecommendationStore};

/// Where the process dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    CreateOrder,
    ClaimCart,
    Reserve,
    ChargeNeverSent,
    ChargeAnswerLost,
    Commit,
    RecordCoPurchases,
    ClearCart,
    MarkConfirmed,
    ReleaseAfterDecline,
    MarkFailed,
}

#[derive(Debug, Clone)]
struct Fault {
    step: Step,
    armed: Arc<AtomicBool>,
}

impl Fault {
    fn at(step: Step) -> Self {
        Fault {
            step,
            armed: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Whether the call at `step` fails now (once).
    fn hit(&self, step: Step) -> bool {
        self.step == step && self.armed.swap(false, Ordering::SeqCst)
    }
}

fn crash() -> StoreError {
    StoreError::Unavailable {
        message: "process died".into(),
        source: None,
    }
}

fn sku() -> Sku {
    Sku::new("SAGA-T").unwrap()
}

struct World {
    catalog: Arc<MemoryCatalog>,
    carts: Arc<MemoryCartStore>,
    inventory: Arc<MemoryInventory>,
    orders: Arc<MemoryOrderStore>,
    recommendations: Arc<MemoryRecommendations>,
    gateway: Arc<TestGateway>,
}

impl World {
    async fn new() -> World {
        let world = World {
            catalog: Arc::new(MemoryCatalog::new()),
            carts: Arc::new(MemoryCartStore::new()),
            inventory: Arc::new(MemoryInventory::new()),
            orders: Arc::new(MemoryOrderStore::new()),
            recommendations: Arc::new(MemoryRecommendations::new()),
            gateway: Arc::new(TestGateway::default()),
        };
        let product = Product::new(
            ProductId::new(),
            "Saga tester",
            crate::id::CategoryId::new("test").unwrap(),
        )
        .with_brand("Acme")
        .with_variants([
            Variant::new(sku(), Money::from_minor(2_000, Currency::USD)),
            Variant::new(
                Sku::new("SAGA-U").unwrap(),
                Money::from_minor(500, Currency::USD),
            ),
        ]);
        world.catalog.upsert_product(product).await.unwrap();
        world.inventory.receive(&sku(), 3).await.unwrap();
        world
            .inventory
            .receive(&Sku::new("SAGA-U").unwrap(), 3)
            .await
            .unwrap();
        world
    }

    /// A storefront whose stores fail once at the fault's step.
    fn storefront(&self, fault: &Fault) -> Storefront {
        self.storefront_with(fault, self.gateway.clone())
    }

    fn storefront_with(&self, fault: &Fault, payments: Arc<dyn PaymentGateway>) -> Storefront {
        let orders = Arc::new(self.order_mock(fault));
        Storefront::builder()
            .catalog(self.catalog.clone())
            .carts(Arc::new(self.cart_mock(fault)))
            .inventory(Arc::new(self.inventory_mock(fault)))
            .orders_and_outbox(orders, self.orders.clone())
            .payments(payments)
            .with_memory_defaults()
            .recommendations(Arc::new(self.recommendation_mock(fault)))
            .build()
            .unwrap()
    }

    fn inventory_mock(&self, fault: &Fault) -> MockInventoryStore {
        let mut m = MockInventoryStore::new();
        let (s, f) = (self.inventory.clone(), fault.clone());
        m.expect_reserve().returning(move |o, l, t| {
            if f.hit(Step::Reserve) {
                return Err(crash().into());
            }
            block_on(s.reserve(o, l, t))
        });
        let (s, f) = (self.inventory.clone(), fault.clone());
        m.expect_commit().returning(move |o| {
            if f.hit(Step::Commit) {
                return Err(crash().into());
            }
            block_on(s.commit(o))
        });
        let (s, f) = (self.inventory.clone(), fault.clone());
        m.expect_release().returning(move |o| {
            if f.hit(Step::ReleaseAfterDecline) {
                return Err(crash().into());
            }
            block_on(s.release(o))
        });
        let s = self.inventory.clone();
        m.expect_release_expired()
            .returning(move |n| block_on(s.release_expired(n)));
        let s = self.inventory.clone();
        m.expect_reservation()
            .returning(move |o| block_on(s.reservation(o)));
        let s = self.inventory.clone();
        m.expect_return_stock()
            .returning(move |o| block_on(s.return_stock(o)));
        let s = self.inventory.clone();
        m.expect_level().returning(move |k| block_on(s.level(k)));
        let s = self.inventory.clone();
        m.expect_shortages()
            .returning(move |l| block_on(s.shortages(l)));
        m
    }

    fn order_mock(&self, fault: &Fault) -> MockOrderStore {
        let mut m = MockOrderStore::new();
        let (s, f) = (self.orders.clone(), fault.clone());
        m.expect_create().returning(move |o, e| {
            if f.hit(Step::CreateOrder) {
                return Err(crash().into());
            }
            block_on(s.create(o, e))
        });
        let (s, f) = (self.orders.clone(), fault.clone());
        m.expect_update().returning(move |id, v, patch, e| {
            let step = match patch.status {
                Some(OrderStatus::Confirmed) => Some(Step::MarkConfirmed),
                Some(OrderStatus::Failed) => Some(Step::MarkFailed),
                _ => None,
            };
            if step.is_some_and(|step| f.hit(step)) {
                return Err(crash().into());
            }
            block_on(s.update(id, v, patch, e))
        });
        let s = self.orders.clone();
        m.expect_get().returning(move |id| block_on(s.get(id)));
        let s = self.orders.clone();
        m.expect_by_idempotency_key()
            .returning(move |c, k| block_on(s.by_idempotency_key(c, k)));
        let s = self.orders.clone();
        m.expect_pending_before()
            .returning(move |c, n| block_on(s.pending_before(c, n)));
        m
    }

    fn cart_mock(&self, fault: &Fault) -> MockCartStore {
        let mut m = MockCartStore::new();
        let s = self.carts.clone();
        m.expect_load().returning(move |id| block_on(s.load(id)));
        let (s, f) = (self.carts.clone(), fault.clone());
        m.expect_save().returning(move |c| {
            let claimed = block_on(s.load(c.id)).unwrap().and_then(|c| c.checkout);
            let step = match (&claimed, &c.checkout) {
                (None, Some(_)) => Some(Step::ClaimCart),
                (Some(_), None) => Some(Step::ClearCart),
                _ => None,
            };
            if step.is_some_and(|step| f.hit(step)) {
                return Err(crash().into());
            }
            block_on(s.save(c))
        });
        let s = self.carts.clone();
        m.expect_delete()
            .returning(move |id| block_on(s.delete(id)));
        m
    }

    fn recommendation_mock(&self, fault: &Fault) -> MockRecommendationStore {
        let mut m = MockRecommendationStore::new();
        let (s, f) = (self.recommendations.clone(), fault.clone());
        m.expect_record_order().returning(move |o, skus| {
            if f.hit(Step::RecordCoPurchases) {
                return Err(crash());
            }
            block_on(s.record_order(o, skus))
        });
        m
    }

    async fn cart(&self, shop: &Storefront) -> CartId {
        let cart = shop.create_guest_cart().await.unwrap();
        shop.add_item(cart.id, &sku(), 2).await.unwrap();
        shop.add_item(cart.id, &Sku::new("SAGA-U").unwrap(), 1)
            .await
            .unwrap();
        cart.id
    }

    async fn assert_conserved(&self) {
        for s in [sku(), Sku::new("SAGA-U").unwrap()] {
            let level = self.inventory.level(&s).await.unwrap();
            let ledger = self.inventory.ledger(&s).await.unwrap();
            assert_eq!(level.total(), 3, "{s} conserved: {level:?}");
            assert!(level.conserved(&ledger));
            assert_eq!(level.reserved, 0, "nothing left held for {s}");
        }
    }
}

/// Publishes a product titled `title` of `variants` (SKU, price in cents of a US dollar,
/// units received) on `shop`.
async fn stocked(shop: &Storefront, title: &str, variants: &[(&Sku, i64, u32)]) {
    let product = Product::new(
        ProductId::new(),
        title,
        crate::id::CategoryId::new("test").unwrap(),
    )
    .with_variants(variants.iter().map(|(sku, price, _)| {
        Variant::new((*sku).clone(), Money::from_minor(*price, Currency::USD))
    }));
    shop.upsert_product(product).await.unwrap();
    for (sku, _, units) in variants {
        shop.receive_stock(sku, *units).await.unwrap();
    }
}

fn customer() -> CustomerId {
    CustomerId::from_uuid(uuid::Uuid::from_u128(7))
}

fn request(cart: CartId, token: &str) -> CheckoutRequest {
    CheckoutRequest::new(
        cart,
        customer(),
        PaymentMethod::new(token).unwrap(),
        IdempotencyKey::new("crash-test").unwrap(),
    )
}

/// What the world must look like once `recover()` has run.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    NoOrder,
    Confirmed,
    Failed,
    /// The provider stays unreachable: the order waits, holding its stock, charged nowhere.
    Pending,
}

async fn crash_then_recover(step: Step, token: &str, expect: Expect) {
    let world = World::new().await;
    let fault = Fault::at(step);
    let shop = world.storefront(&fault);
    let cart = world.cart(&shop).await;
    let result = shop.place_order(request(cart, token)).await;
    // A side effect after the confirmation never undoes it: the outbox finishes it.
    let after_confirmation = matches!(step, Step::RecordCoPurchases | Step::ClearCart);
    assert_eq!(
        result.is_ok(),
        after_confirmation,
        "{step:?}: only an interrupted checkout reports an error: {result:?}"
    );
    // The charge steps fail through the test gateway's token; the others through a store.
    let through_token = matches!(step, Step::ChargeNeverSent | Step::ChargeAnswerLost);
    // Co-purchases are counted only when the confirmation's event is delivered.
    let at_delivery = matches!(step, Step::RecordCoPurchases);
    assert_eq!(
        through_token || at_delivery,
        fault.armed.load(Ordering::SeqCst),
        "{step:?}: the fault was reached during the checkout"
    );

    let report = shop.recover(Duration::ZERO).await.unwrap();
    assert_eq!(
        report.errors.is_empty(),
        expect != Expect::Pending,
        "{step:?}: {:?}",
        report.errors
    );
    let again = shop.recover(Duration::ZERO).await.unwrap();
    assert!(
        again.confirmed.is_empty() && again.failed.is_empty(),
        "{step:?}: a second pass finds nothing"
    );
    let relay = crate::events::OutboxRelay::new(world.orders.clone(), Arc::new(shop.effects()));
    if at_delivery {
        assert!(
            relay.drain().await.is_err(),
            "{step:?}: the failed delivery is reported"
        );
        assert!(
            !fault.armed.load(Ordering::SeqCst),
            "{step:?}: the fault was reached"
        );
    }
    relay.drain().await.unwrap();

    let order = world
        .orders
        .by_idempotency_key(customer(), &IdempotencyKey::new("crash-test").unwrap())
        .await
        .unwrap();
    let kept_charges = world
        .gateway
        .charges()
        .into_iter()
        .filter(|c| c.status == PaymentStatus::Succeeded)
        .count();
    let level = world.inventory.level(&sku()).await.unwrap();
    match expect {
        Expect::NoOrder => {
            assert!(order.is_none(), "{step:?}");
            assert_eq!(kept_charges, 0);
            assert_eq!(level.on_hand, 3);
        }
        Expect::Pending => {
            let order = order.expect("order exists");
            assert_eq!(order.status, OrderStatus::Pending, "{step:?}");
            assert_eq!(kept_charges, 0);
            assert_eq!(level.reserved, 2, "{step:?}: stock held while unknown");
            return;
        }
        Expect::Failed => {
            let order = order.expect("order exists");
            assert_eq!(order.status, OrderStatus::Failed, "{step:?}");
            assert_eq!(report.failed, vec![order.id]);
            assert_eq!(
                kept_charges, 0,
                "{step:?}: no money kept for a failed order"
            );
            assert_eq!(level.on_hand, 3, "{step:?}: stock back");
        }
        Expect::Confirmed => {
            let order = order.expect("order exists");
            assert_eq!(order.status, OrderStatus::Confirmed, "{step:?}");
            if !after_confirmation {
                assert_eq!(report.confirmed, vec![order.id]);
            }
            assert_eq!(kept_charges, 1, "{step:?}: charged exactly once");
            assert_eq!(
                (level.on_hand, level.sold),
                (1, 2),
                "{step:?}: stock sold once"
            );
            let cleared = world.carts.load(cart).await.unwrap().unwrap();
            assert!(
                cleared.is_empty() && cleared.checkout.is_none(),
                "{step:?}: the ordered units left the cart: {cleared:?}"
            );
            assert_eq!(order.net_paid().unwrap(), order.total, "{step:?}: ledger");
            let also = world.recommendations.also_bought(&sku(), 5).await.unwrap();
            assert_eq!(also.len(), 1, "{step:?}: co-purchase counted once");
            assert_eq!(also[0].count, 1);
        }
    }
    world.assert_conserved().await;
}

#[tokio::test]
async fn crash_between_any_two_steps_is_finished_by_recover() {
    use Step::*;
    let cases = [
        (CreateOrder, "tok_approve", Expect::NoOrder),
        (ClaimCart, "tok_approve", Expect::Confirmed),
        (Reserve, "tok_approve", Expect::Confirmed),
        (ChargeNeverSent, "tok_unavailable", Expect::Pending),
        (ChargeAnswerLost, "tok_timeout", Expect::Confirmed),
        (Commit, "tok_approve", Expect::Confirmed),
        (RecordCoPurchases, "tok_approve", Expect::Confirmed),
        (ClearCart, "tok_approve", Expect::Confirmed),
        (MarkConfirmed, "tok_approve", Expect::Confirmed),
        (ReleaseAfterDecline, "tok_decline", Expect::Failed),
        (MarkFailed, "tok_decline", Expect::Failed),
    ];
    for (step, token, expect) in cases {
        crash_then_recover(step, token, expect).await;
    }
}

fn charge(status: PaymentStatus) -> Charge {
    Charge {
        payment_id: PaymentId("pay_mock_1".into()),
        status,
        amount: Money::from_minor(4_500, Currency::USD),
        failure_reason: None,
        next_action: None,
    }
}

#[tokio::test]
async fn payment_timeout_holds_stock_until_recover_asks_the_gateway() {
    let world = World::new().await;
    let fault = Fault::at(Step::CreateOrder);
    fault.armed.store(false, Ordering::SeqCst);

    let mut gateway = MockPaymentGateway::new();
    gateway.expect_charge().times(1).returning(|request| {
        assert_eq!(request.idempotency_key, charge_key(request.order));
        Err(PaymentError::Timeout)
    });
    gateway.expect_refund().never();
    let shop = world.storefront_with(&fault, Arc::new(gateway));
    let cart = world.cart(&shop).await;
    let result = shop.place_order(request(cart, "tok_any")).await;
    assert!(matches!(
        result,
        Err(CheckoutError::Payment(PaymentError::Timeout))
    ));
    let level = world.inventory.level(&sku()).await.unwrap();
    assert_eq!(
        (level.on_hand, level.reserved),
        (1, 2),
        "stock held while unknown"
    );

    // The gateway is still down when the first recovery runs: nothing changes.
    let mut down = MockPaymentGateway::new();
    down.expect_lookup()
        .times(1)
        .returning(|_| Err(PaymentError::Timeout));
    let recovering = world.storefront_with(&fault, Arc::new(down));
    let report = recovering.recover(Duration::ZERO).await.unwrap();
    assert_eq!(report.errors.len(), 1);
    assert_eq!(world.inventory.level(&sku()).await.unwrap().reserved, 2);

    // Then it answers that the charge went through: the order is confirmed.
    let mut up = MockPaymentGateway::new();
    up.expect_lookup().times(1).returning(|key| {
        assert!(key.ends_with("-charge"));
        Ok(Some(charge(PaymentStatus::Succeeded)))
    });
    up.expect_charge().never();
    let recovering = world.storefront_with(&fault, Arc::new(up));
    let report = recovering.recover(Duration::ZERO).await.unwrap();
    assert_eq!(report.confirmed.len(), 1);
    let level = world.inventory.level(&sku()).await.unwrap();
    assert_eq!((level.on_hand, level.reserved, level.sold), (1, 0, 2));
    world.assert_conserved().await;
}

#[tokio::test]
async fn a_provider_rejection_fails_the_order_and_releases_stock() {
    let world = World::new().await;
    let fault = Fault::at(Step::CreateOrder);
    fault.armed.store(false, Ordering::SeqCst);
    let mut gateway = MockPaymentGateway::new();
    gateway.expect_charge().times(1).returning(|_| {
        Err(PaymentError::Rejected {
            message: "amount too large".into(),
        })
    });
    let shop = world.storefront_with(&fault, Arc::new(gateway));
    let cart = world.cart(&shop).await;
    let result = shop.place_order(request(cart, "tok_any")).await;
    assert!(
        matches!(&result, Err(CheckoutError::PaymentDeclined { reason, .. }) if reason.contains("too large")),
        "{result:?}"
    );
    world.assert_conserved().await;
    assert_eq!(world.inventory.level(&sku()).await.unwrap().on_hand, 3);
}

#[tokio::test]
async fn a_store_error_before_the_order_exists_changes_nothing() {
    let world = World::new().await;
    let fault = Fault::at(Step::CreateOrder);
    let mut gateway = MockPaymentGateway::new();
    gateway.expect_charge().never();
    let shop = world.storefront_with(&fault, Arc::new(gateway));
    let cart = world.cart(&shop).await;
    let result = shop.place_order(request(cart, "tok_any")).await;
    assert!(matches!(
        result,
        Err(CheckoutError::Order(OrderError::Store(_)))
    ));
    assert!(world.carts.load(cart).await.unwrap().is_some());
    assert_eq!(world.inventory.level(&sku()).await.unwrap().on_hand, 3);
}

#[test]
fn the_request_and_delivery_constructors_build_what_the_literals_built() {
    let address = |line1: &str| {
        crate::address::Address::new(crate::address::AddressInput {
            name: "Grace Hopper".into(),
            line1: line1.into(),
            city: "Austin".into(),
            region: Some("TX".into()),
            postal_code: "78701".into(),
            country: "US".into(),
            ..Default::default()
        })
        .unwrap()
    };
    let email: crate::address::Email = "grace@example.com".parse().unwrap();
    let cart = CartId::new();
    let shipping = crate::shipping::ShippingQuote::new(
        cart,
        &address("1 Congress Ave"),
        crate::shipping::ShippingOffer {
            method: "ground".into(),
            name: "Ground".into(),
            amount: Money::from_minor(799, Currency::USD),
            tax_class: None,
            valid_for: Duration::from_secs(600),
        },
        Utc::now(),
    );
    let delivery = Delivery {
        email: email.clone(),
        shipping_address: address("1 Congress Ave"),
        billing_address: Some(address("2 Lavaca St")),
        shipping: Some(shipping.clone()),
    };
    assert_eq!(
        Delivery::new(email.clone(), address("1 Congress Ave"))
            .with_billing_address(address("2 Lavaca St"))
            .with_shipping(shipping),
        delivery
    );
    assert_eq!(
        Delivery::new(email.clone(), address("1 Congress Ave")),
        Delivery {
            email,
            shipping_address: address("1 Congress Ave"),
            billing_address: None,
            shipping: None,
        }
    );

    let plain = CheckoutRequest {
        cart,
        customer: customer(),
        payment_method: PaymentMethod::new("tok_approve").unwrap(),
        idempotency_key: IdempotencyKey::new("k-1").unwrap(),
        delivery: None,
        accepted_quote: None,
        without_exhausted_promotions: false,
        buy_now: None,
    };
    let new = || {
        CheckoutRequest::new(
            cart,
            customer(),
            PaymentMethod::new("tok_approve").unwrap(),
            IdempotencyKey::new("k-1").unwrap(),
        )
    };
    assert_eq!(new(), plain);
    assert_eq!(
        new()
            .with_delivery(delivery.clone())
            .without_exhausted_promotions(true),
        CheckoutRequest {
            delivery: Some(delivery),
            without_exhausted_promotions: true,
            ..plain
        }
    );
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A checkout with the approving card, in a world of its own: its cart and what it came to.
async fn checkout_in_a_new_world() -> (CartId, Result<Placed, CheckoutError>) {
    let world = World::new().await;
    let fault = Fault::at(Step::CreateOrder);
    fault.armed.store(false, Ordering::SeqCst);
    let shop = world.storefront(&fault);
    let cart = world.cart(&shop).await;
    (cart, shop.place_order(request(cart, "tok_approve")).await)
}

#[tokio::test(flavor = "current_thread")]
async fn the_checkout_is_traced_with_its_cart_customer_and_order() {
    // A checkout first, before the subscriber: every span and event the checkout records is
    // then registered by this thread, so a test running beside this one cannot be half-way
    // through registering one (and leave it cached as of interest to no subscriber) when
    // the subscriber below is set.
    let (_, warm) = checkout_in_a_new_world().await;
    assert!(matches!(warm, Ok(Placed::Confirmed(_))), "{warm:?}");
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (cart, placed) = checkout_in_a_new_world().await;
    let order = match placed {
        Ok(Placed::Confirmed(order)) => order,
        other => panic!("{other:?}"),
    };
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let span = format!(
        "place_order{{cart={cart} customer={} order={}}}",
        customer(),
        order.id
    );
    let confirmed = log
        .lines()
        .find(|l| l.contains("order confirmed"))
        .unwrap_or_else(|| panic!("no confirmation in:\n{log}"));
    assert!(confirmed.contains(&span), "{confirmed}");
    assert!(
        confirmed.contains(&format!("confirm{{order={} lines=2}}", order.id)),
        "{confirmed}"
    );
}

/// An inventory that counts the stock hints it is asked for.
#[derive(Debug, Default)]
struct CountingHints {
    inner: MemoryInventory,
    asked: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl InventoryStore for CountingHints {
    async fn receive(
        &self,
        sku: &Sku,
        quantity: u32,
    ) -> Result<crate::inventory::StockLevel, InventoryError> {
        self.inner.receive(sku, quantity).await
    }
    async fn level(&self, sku: &Sku) -> Result<crate::inventory::StockLevel, InventoryError> {
        self.inner.level(sku).await
    }
    async fn shortages(
        &self,
        lines: &[ReservationLine],
    ) -> Result<Vec<crate::error::Shortage>, InventoryError> {
        self.asked.fetch_add(1, Ordering::SeqCst);
        self.inner.shortages(lines).await
    }
    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<crate::inventory::Reservation, InventoryError> {
        self.inner.reserve(order, lines, ttl).await
    }
    async fn commit(
        &self,
        order: OrderId,
    ) -> Result<crate::inventory::Reservation, InventoryError> {
        self.inner.commit(order).await
    }
    async fn release(
        &self,
        order: OrderId,
    ) -> Result<Option<crate::inventory::Reservation>, InventoryError> {
        self.inner.release(order).await
    }
    async fn return_stock(
        &self,
        order: OrderId,
    ) -> Result<crate::inventory::Reservation, InventoryError> {
        self.inner.return_stock(order).await
    }
    async fn reservation(
        &self,
        order: OrderId,
    ) -> Result<Option<crate::inventory::Reservation>, InventoryError> {
        self.inner.reservation(order).await
    }
    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError> {
        self.inner.release_expired(limit).await
    }
    async fn ledger(
        &self,
        sku: &Sku,
    ) -> Result<Vec<crate::inventory::StockMovement>, InventoryError> {
        self.inner.ledger(sku).await
    }
}

#[tokio::test]
async fn a_sku_with_plenty_of_stock_is_not_asked_about_again_at_once() {
    let inventory = Arc::new(CountingHints::default());
    let shop = Storefront::builder()
        .catalog(Arc::new(MemoryCatalog::new()))
        .carts(Arc::new(MemoryCartStore::new()))
        .inventory(inventory.clone())
        .orders(Arc::new(MemoryOrderStore::new()))
        .payments(Arc::new(TestGateway::default()))
        .with_memory_defaults()
        .build()
        .unwrap();
    let (plenty, scarce) = (Sku::new("PLENTY-1").unwrap(), Sku::new("SCARCE-1").unwrap());
    stocked(
        &shop,
        "Hint tester",
        &[(&plenty, 1_000, 150), (&scarce, 1_000, 3)],
    )
    .await;
    let buy = |sku: Sku, quantity: u32| {
        let shop = shop.clone();
        async move {
            let cart = shop.create_guest_cart().await.unwrap();
            shop.add_item(cart.id, &sku, quantity).await.unwrap();
            shop.place_order(CheckoutRequest::new(
                cart.id,
                customer(),
                crate::payment::PaymentMethod::new("tok_approve").unwrap(),
                IdempotencyKey::new(uuid::Uuid::new_v4().to_string()).unwrap(),
            ))
            .await
        }
    };
    let asked = || inventory.asked.load(Ordering::SeqCst);

    assert!(buy(plenty.clone(), 1).await.unwrap().is_confirmed());
    assert!(buy(plenty.clone(), 1).await.unwrap().is_confirmed());
    assert_eq!(asked(), 1, "150 units: not asked again at once");

    assert!(buy(scarce.clone(), 1).await.unwrap().is_confirmed());
    assert!(buy(scarce.clone(), 1).await.unwrap().is_confirmed());
    assert_eq!(asked(), 3, "a scarce SKU is asked about every time");
    match buy(scarce.clone(), 2).await {
        Err(CheckoutError::OutOfStock {
            order: None,
            shortages,
        }) => {
            assert_eq!(shortages.len(), 1);
            assert_eq!(
                (shortages[0].requested, shortages[0].available),
                (2, 1),
                "the shortage is of the order's own quantity"
            );
        }
        other => panic!("turned away before any order: {other:?}"),
    }
    assert_eq!(asked(), 4);
}

/// Orders in memory, counting the reads by idempotency key.
#[derive(Debug, Default)]
struct CountingKeys {
    inner: Arc<MemoryOrderStore>,
    looked_up: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl OrderStore for CountingKeys {
    async fn create(
        &self,
        order: Order,
        events: Vec<DomainEvent>,
    ) -> Result<crate::order::Created, OrderError> {
        self.inner.create(order, events).await
    }
    async fn get(&self, id: OrderId) -> Result<Option<Order>, OrderError> {
        self.inner.get(id).await
    }
    async fn by_idempotency_key(
        &self,
        customer: CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, OrderError> {
        self.looked_up.fetch_add(1, Ordering::SeqCst);
        self.inner.by_idempotency_key(customer, key).await
    }
    async fn update(
        &self,
        id: OrderId,
        expected_version: u64,
        patch: crate::order::OrderPatch,
        events: Vec<DomainEvent>,
    ) -> Result<Order, OrderError> {
        self.inner.update(id, expected_version, patch, events).await
    }
    async fn history(
        &self,
        customer: CustomerId,
        before: Option<crate::order::HistoryCursor>,
        limit: usize,
    ) -> Result<crate::catalog::Page<Order, crate::order::HistoryCursor>, OrderError> {
        self.inner.history(customer, before, limit).await
    }
    async fn pending_before(
        &self,
        cutoff: chrono::DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Order>, OrderError> {
        self.inner.pending_before(cutoff, limit).await
    }
}

/// A buyer turned away from a cart no checkout ever claimed costs no read of the
/// idempotency key; a retry from the cart a paid checkout claimed still finds its order.
#[tokio::test]
async fn a_buyer_turned_away_from_a_fresh_cart_does_not_look_up_the_key() {
    let orders = Arc::new(CountingKeys::default());
    let shop = Storefront::builder()
        .catalog(Arc::new(MemoryCatalog::new()))
        .carts(Arc::new(MemoryCartStore::new()))
        .inventory(Arc::new(MemoryInventory::new()))
        .orders_and_outbox(orders.clone(), orders.inner.clone())
        .payments(Arc::new(TestGateway::default()))
        .with_memory_defaults()
        .build()
        .unwrap();
    let last = Sku::new("LAST-1").unwrap();
    stocked(&shop, "The last one", &[(&last, 1_000, 1)]).await;
    let pay = |cart: CartId, key: &str| {
        CheckoutRequest::new(
            cart,
            customer(),
            crate::payment::PaymentMethod::new("tok_approve").unwrap(),
            IdempotencyKey::new(key).unwrap(),
        )
    };
    let looked_up = || orders.looked_up.load(Ordering::SeqCst);

    let paid_cart = shop.create_guest_cart().await.unwrap();
    shop.add_item(paid_cart.id, &last, 1).await.unwrap();
    let paid = shop.place_order(pay(paid_cart.id, "paid")).await.unwrap();
    assert!(paid.is_confirmed());
    assert_eq!(looked_up(), 0, "a new order costs no read of its key");

    let fresh = shop.create_guest_cart().await.unwrap();
    shop.add_item(fresh.id, &last, 1).await.unwrap();
    assert!(matches!(
        shop.place_order(pay(fresh.id, "late")).await,
        Err(CheckoutError::OutOfStock { order: None, .. })
    ));
    assert_eq!(looked_up(), 0, "a fresh cart turned away reads no key");

    // The paid cart, refilled with the sold-out SKU: its retry is answered with its order.
    shop.add_item(paid_cart.id, &last, 1).await.unwrap();
    let again = shop.place_order(pay(paid_cart.id, "paid")).await.unwrap();
    assert_eq!(again.order().id, paid.order().id);
    assert_eq!(looked_up(), 1);
}

/// The effects of a confirmation come from its event alone: the cart the order claimed and
/// the units it bought travel in `OrderConfirmed`, so delivering it reads no order (here an
/// order store that must not be asked) and still empties the cart and counts the pair.
#[tokio::test]
async fn a_confirmation_is_delivered_without_reading_its_order() {
    let orders = Arc::new(MemoryOrderStore::new());
    let carts = Arc::new(MemoryCartStore::new());
    let shop = Storefront::builder()
        .catalog(Arc::new(MemoryCatalog::new()))
        .carts(carts.clone())
        .inventory(Arc::new(MemoryInventory::new()))
        .orders_and_outbox(orders.clone(), orders.clone())
        .payments(Arc::new(TestGateway::default()))
        .with_memory_defaults()
        .build()
        .unwrap();
    let (lamp, shade) = (Sku::new("LAMP-1").unwrap(), Sku::new("SHADE-1").unwrap());
    stocked(&shop, "Lamp", &[(&lamp, 3_000, 5), (&shade, 1_000, 5)]).await;
    let cart = shop.create_guest_cart_with(&lamp, 1).await.unwrap();
    shop.add_item(cart.id, &shade, 1).await.unwrap();
    let placed = shop
        .place_order(request(cart.id, "tok_approve"))
        .await
        .unwrap();
    assert!(placed.is_confirmed());

    let confirmed = crate::events::Outbox::pending(orders.as_ref(), 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.envelope().unwrap())
        .find(|e| matches!(e.event, DomainEvent::OrderConfirmed { .. }))
        .expect("the confirmation is in the outbox");
    let mut no_reads = MockOrderStore::new();
    no_reads.expect_get().never();
    let recommendations = Arc::new(MemoryRecommendations::new());
    let effects = CheckoutEffects {
        orders: Arc::new(no_reads),
        carts: carts.clone(),
        recommendations: recommendations.clone(),
    };
    effects.deliver(&confirmed).await.unwrap();
    let also = recommendations.also_bought(&lamp, 5).await.unwrap();
    assert_eq!(
        also.iter().map(|a| a.sku.clone()).collect::<Vec<_>>(),
        vec![shade],
        "the pair is counted"
    );
    let left = shop.cart(cart.id).await.unwrap().unwrap();
    assert!(left.lines.is_empty() && left.checkout.is_none());
}

/// "Buy now" checks out the cart it has just stored without reading it back: one cart read
/// fewer than a cart made with the same item and then paid (here counted at the cart
/// store), for the same order.
#[tokio::test]
async fn a_buy_now_does_not_read_back_the_cart_it_made() {
    let memory = Arc::new(MemoryCartStore::new());
    let orders = Arc::new(MemoryOrderStore::new());
    let loads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut carts = MockCartStore::new();
    let (store, counted) = (memory.clone(), loads.clone());
    carts.expect_load().returning(move |id| {
        counted.fetch_add(1, Ordering::SeqCst);
        block_on(store.load(id))
    });
    let store = memory.clone();
    carts
        .expect_save()
        .returning(move |c| block_on(store.save(c)));
    let store = memory.clone();
    carts
        .expect_delete()
        .returning(move |id| block_on(store.delete(id)));
    let shop = Storefront::builder()
        .catalog(Arc::new(MemoryCatalog::new()))
        .carts(Arc::new(carts))
        .inventory(Arc::new(MemoryInventory::new()))
        .orders_and_outbox(orders.clone(), orders)
        .payments(Arc::new(TestGateway::default()))
        .with_memory_defaults()
        .build()
        .unwrap();
    let lamp = Sku::new("LAMP-1").unwrap();
    stocked(&shop, "Lamp", &[(&lamp, 3_000, 5)]).await;

    let before = loads.load(Ordering::SeqCst);
    let cart = shop.create_guest_cart_with(&lamp, 1).await.unwrap();
    let paid = shop
        .place_order(request(cart.id, "tok_approve"))
        .await
        .unwrap();
    assert!(paid.is_confirmed());
    let made_then_paid = loads.load(Ordering::SeqCst) - before;

    let before = loads.load(Ordering::SeqCst);
    let bought = shop
        .place_order(CheckoutRequest::buy_now(
            lamp.clone(),
            1,
            customer(),
            PaymentMethod::new("tok_approve").unwrap(),
            IdempotencyKey::new("buy-now").unwrap(),
        ))
        .await
        .unwrap();
    assert!(bought.is_confirmed());
    assert_eq!(bought.order().lines, paid.order().lines);
    assert_eq!(
        loads.load(Ordering::SeqCst) - before,
        made_then_paid - 1,
        "a Buy now reads its cart once fewer"
    );
}
