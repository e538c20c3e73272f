//! The fault-injection simulation: seeded randomized histories of concurrent shoppers in a
//! world where anything may fail, after which stock and money must both add up.
//!
//! Each history stocks a few SKUs and lets a handful of shoppers loose at once. Every store
//! and gateway call a shopper makes goes through a fault layer that, by the shopper's own
//! seeded generator, may:
//! - fail before the call reaches the store or the provider (a refused connection);
//! - fail *after* the call took effect (the answer is lost: a timeout after the commit, a
//!   charge taken whose answer never came);
//! - fail every call of one store kind for a while (a database or Redis outage), while a
//!   background task flips outages on and off.
//!
//! Shoppers press "Pay" once or several times at once with new keys (two tabs), retry with
//! the same key after an error or give up (the process died there), pay with cards that
//! approve, decline, wait for 3-D Secure or lose their answer, and some are cancelled at a
//! random await point by a timeout. Webhooks are delivered late, twice, out of order, and
//! preceded by a forged stale "failed" event; a recovery pass runs concurrently with the
//! shoppers. Finally faults stop, pending payments complete, every webhook is delivered
//! again in a shuffled order, `recover()` runs, the outbox is drained into
//! [`crate::checkout::CheckoutEffects`], and every invariant is checked:
//!
//! - stock: no SKU sold more than it received; sold units equal the confirmed orders' units;
//!   nothing stays reserved; on hand + reserved + sold is conserved and the ledger replays;
//! - money: for every order, the gateway's charge is succeeded for exactly the total when the
//!   order is paid, and absent, failed or refunded otherwise; the order's money ledger
//!   (captured - refunded) equals the total when paid and zero otherwise, and agrees with the
//!   gateway; no charge exists at the gateway without an order; no cart is paid twice;
//! - promotions: each history's code, limited to 0-3 uses and one per customer, is never
//!   used more than its limit, no use stays held, and its committed uses and the discount
//!   they gave are exactly those of the paid orders that used it;
//! - every order is settled (none stays PENDING once the gateway has answered), and every
//!   confirmed order's units left its cart.
//!
//! The seed is printed; `ECOMMERCE_TEST_SEED=<seed>` replays the same histories with the
//! same fault decisions per shopper (on the memory backend the whole history replays; on a
//! server the interleaving of concurrent shoppers may differ).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use super::{Backend, request, sku, stocked};
use crate::cart::{Cart, CartStore};
use crate::catalog::Page;
use crate::checkout::{Placed, charge_key};
use crate::error::{
    CartError, CheckoutError, InventoryError, OrderError, PaymentError, StoreError,
};
use crate::events::{DomainEvent, OutboxRelay};
use crate::id::{CartId, CustomerId, IdempotencyKey, OrderId, Sku};
use crate::inventory::{InventoryStore, Reservation, ReservationLine, StockLevel, StockMovement};
use crate::order::{Created, HistoryCursor, Order, OrderPatch, OrderStatus, OrderStore};
use crate::payment::{
    Charge, ChargeRequest, PaymentEvent, PaymentGateway, PaymentStatus, Refund, RefundRequest,
    TestGateway,
};
use crate::promotion::{
    Action, Coupon, CouponCode, Promotion, PromotionError, PromotionId, PromotionStore,
    PromotionUse, Taken, Target, Usage, UseState,
};
use crate::recommend::{AlsoBought, RecommendationStore};
use crate::storefront::{Storefront, StorefrontConfig};
use crate::unit::{Sold, UnitError, UnitOfWork};

tokio::task_local! {
    /// The faults of the shopper whose task is running; calls outside a shopper never fail.
    static FAULTS: Arc<ShopperFaults>;
}

/// What the fault layer does to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Fails without reaching the store.
    Before,
    /// Reaches the store, then loses the answer.
    After,
}

/// One shopper's fault generator.
#[derive(Debug)]
struct ShopperFaults {
    rng: Mutex<StdRng>,
    /// Chance, in percent, that a call fails.
    rate: u32,
}

impl ShopperFaults {
    fn draw(&self) -> Fault {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        if rng.random_range(0..100) >= self.rate {
            return Fault::None;
        }
        if rng.random_bool(0.5) {
            Fault::Before
        } else {
            Fault::After
        }
    }
}

/// The kinds of dependency an outage can take away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Carts,
    Inventory,
    Orders,
    Gateway,
}

/// Which dependencies are down now.
#[derive(Debug, Default)]
struct Outages {
    carts: AtomicBool,
    inventory: AtomicBool,
    orders: AtomicBool,
    gateway: AtomicBool,
}

impl Outages {
    fn flag(&self, kind: Kind) -> &AtomicBool {
        match kind {
            Kind::Carts => &self.carts,
            Kind::Inventory => &self.inventory,
            Kind::Orders => &self.orders,
            Kind::Gateway => &self.gateway,
        }
    }

    /// The fault for a call of `kind` made now (only shoppers' calls fail).
    fn fault(&self, kind: Kind) -> Fault {
        FAULTS
            .try_with(|faults| {
                if self.flag(kind).load(Ordering::SeqCst) {
                    Fault::Before
                } else {
                    faults.draw()
                }
            })
            .unwrap_or(Fault::None)
    }
}

fn injected(kind: Kind) -> StoreError {
    StoreError::Unavailable {
        message: format!("injected fault in {kind:?}"),
        source: None,
    }
}

/// Runs `call` through the fault layer.
async fn inject<T, E: From<StoreError>>(
    outages: &Outages,
    kind: Kind,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match outages.fault(kind) {
        Fault::None => call.await,
        Fault::Before => Err(injected(kind).into()),
        Fault::After => {
            let _ = call.await;
            Err(injected(kind).into())
        }
    }
}

#[derive(Debug)]
struct FaultyCarts(Arc<dyn CartStore>, Arc<Outages>);

#[async_trait]
impl CartStore for FaultyCarts {
    async fn load(&self, id: CartId) -> Result<Option<Cart>, CartError> {
        inject(&self.1, Kind::Carts, self.0.load(id)).await
    }
    async fn save(&self, cart: &Cart) -> Result<Cart, CartError> {
        inject(&self.1, Kind::Carts, self.0.save(cart)).await
    }
    async fn delete(&self, id: CartId) -> Result<(), CartError> {
        inject(&self.1, Kind::Carts, self.0.delete(id)).await
    }
    async fn save_merged(
        &self,
        merged: &Cart,
        consumed: CartId,
        consumed_version: u64,
    ) -> Result<Cart, CartError> {
        inject(
            &self.1,
            Kind::Carts,
            self.0.save_merged(merged, consumed, consumed_version),
        )
        .await
    }
}

/// A unit of work fails when either store it spans is down.
#[derive(Debug)]
struct FaultyUnit(Arc<dyn UnitOfWork>, Arc<Outages>);

#[async_trait]
impl UnitOfWork for FaultyUnit {
    fn claims_carts(&self) -> bool {
        self.0.claims_carts()
    }
    fn promotions(&self) -> Option<Arc<dyn PromotionStore>> {
        let store = self.0.promotions()?;
        Some(Arc::new(FaultyPromotions(store, self.1.clone())))
    }
    async fn place(
        &self,
        order: Order,
        events: Vec<DomainEvent>,
        lines: &[ReservationLine],
        ttl: Duration,
        claim: Option<&Cart>,
        uses: &[PromotionUse],
    ) -> Result<Created, UnitError> {
        let carts_too = claim.is_some();
        let call = self.0.place(order, events, lines, ttl, claim, uses);
        let call = inject(&self.1, Kind::Inventory, call);
        if carts_too {
            let call = inject(&self.1, Kind::Orders, call);
            return inject(&self.1, Kind::Carts, call).await;
        }
        inject(&self.1, Kind::Orders, call).await
    }
    async fn sell(
        &self,
        order: &Order,
        patch: OrderPatch,
        events: Vec<DomainEvent>,
        cart: Option<&Cart>,
    ) -> Result<Sold, UnitError> {
        let carts_too = cart.is_some();
        let call = self.0.sell(order, patch, events, cart);
        let call = inject(&self.1, Kind::Inventory, call);
        if carts_too {
            let call = inject(&self.1, Kind::Orders, call);
            return inject(&self.1, Kind::Carts, call).await;
        }
        inject(&self.1, Kind::Orders, call).await
    }
}

#[derive(Debug)]
struct FaultyInventory(Arc<dyn InventoryStore>, Arc<Outages>);

#[async_trait]
impl InventoryStore for FaultyInventory {
    async fn receive(&self, sku: &Sku, quantity: u32) -> Result<StockLevel, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.receive(sku, quantity)).await
    }
    async fn level(&self, sku: &Sku) -> Result<StockLevel, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.level(sku)).await
    }
    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<Reservation, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.reserve(order, lines, ttl)).await
    }
    async fn commit(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.commit(order)).await
    }
    async fn release(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.release(order)).await
    }
    async fn return_stock(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.return_stock(order)).await
    }
    async fn reservation(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.reservation(order)).await
    }
    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.release_expired(limit)).await
    }
    async fn ledger(&self, sku: &Sku) -> Result<Vec<StockMovement>, InventoryError> {
        inject(&self.1, Kind::Inventory, self.0.ledger(sku)).await
    }
}

#[derive(Debug)]
struct FaultyOrders(Arc<dyn OrderStore>, Arc<Outages>);

#[async_trait]
impl OrderStore for FaultyOrders {
    async fn create(&self, order: Order, events: Vec<DomainEvent>) -> Result<Created, OrderError> {
        inject(&self.1, Kind::Orders, self.0.create(order, events)).await
    }
    async fn get(&self, id: OrderId) -> Result<Option<Order>, OrderError> {
        inject(&self.1, Kind::Orders, self.0.get(id)).await
    }
    async fn by_idempotency_key(
        &self,
        customer: CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, OrderError> {
        inject(
            &self.1,
            Kind::Orders,
            self.0.by_idempotency_key(customer, key),
        )
        .await
    }
    async fn update(
        &self,
        id: OrderId,
        expected_version: u64,
        patch: OrderPatch,
        events: Vec<DomainEvent>,
    ) -> Result<Order, OrderError> {
        inject(
            &self.1,
            Kind::Orders,
            self.0.update(id, expected_version, patch, events),
        )
        .await
    }
    async fn history(
        &self,
        customer: CustomerId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Page<Order, HistoryCursor>, OrderError> {
        inject(
            &self.1,
            Kind::Orders,
            self.0.history(customer, before, limit),
        )
        .await
    }
    async fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Order>, OrderError> {
        inject(&self.1, Kind::Orders, self.0.pending_before(cutoff, limit)).await
    }
}

/// Promotions fail with the orders (one database).
#[derive(Debug)]
struct FaultyPromotions(Arc<dyn PromotionStore>, Arc<Outages>);

#[async_trait]
impl PromotionStore for FaultyPromotions {
    async fn save_promotion(&self, promotion: &Promotion) -> Result<(), PromotionError> {
        self.0.save_promotion(promotion).await
    }
    async fn promotions(&self) -> Result<Vec<Promotion>, PromotionError> {
        inject(&self.1, Kind::Orders, self.0.promotions()).await
    }
    async fn automatic(&self) -> Result<Vec<Promotion>, PromotionError> {
        inject(&self.1, Kind::Orders, self.0.automatic()).await
    }
    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>, PromotionError> {
        inject(&self.1, Kind::Orders, self.0.promotion(id)).await
    }
    async fn save_coupon(&self, coupon: &Coupon) -> Result<(), PromotionError> {
        self.0.save_coupon(coupon).await
    }
    async fn coupon(&self, code: &CouponCode) -> Result<Option<Coupon>, PromotionError> {
        inject(&self.1, Kind::Orders, self.0.coupon(code)).await
    }
    async fn reserve(&self, order: OrderId, uses: &[PromotionUse]) -> Result<(), PromotionError> {
        inject(&self.1, Kind::Orders, self.0.reserve(order, uses)).await
    }
    async fn commit(&self, order: OrderId) -> Result<(), PromotionError> {
        inject(&self.1, Kind::Orders, self.0.commit(order)).await
    }
    async fn release(&self, order: OrderId) -> Result<(), PromotionError> {
        inject(&self.1, Kind::Orders, self.0.release(order)).await
    }
    async fn uses_of(&self, order: OrderId) -> Result<Option<UseState>, PromotionError> {
        inject(&self.1, Kind::Orders, self.0.uses_of(order)).await
    }
    async fn usage(&self, promotion: &PromotionId) -> Result<Usage, PromotionError> {
        inject(&self.1, Kind::Orders, self.0.usage(promotion)).await
    }
    async fn taken(&self, promotion: &PromotionId) -> Result<Taken, PromotionError> {
        inject(&self.1, Kind::Orders, self.0.taken(promotion)).await
    }
    async fn code_uses(&self, code: &CouponCode) -> Result<u32, PromotionError> {
        inject(&self.1, Kind::Orders, self.0.code_uses(code)).await
    }
    async fn held_before(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, OrderId)>, PromotionError> {
        inject(
            &self.1,
            Kind::Orders,
            self.0.held_before(cutoff, after, limit),
        )
        .await
    }
}

#[derive(Debug)]
struct FaultyRecommendations(Arc<dyn RecommendationStore>, Arc<Outages>);

#[async_trait]
impl RecommendationStore for FaultyRecommendations {
    async fn record_order(&self, order: OrderId, skus: &[Sku]) -> Result<bool, StoreError> {
        inject(&self.1, Kind::Orders, self.0.record_order(order, skus)).await
    }
    async fn also_bought(&self, sku: &Sku, k: usize) -> Result<Vec<AlsoBought>, StoreError> {
        inject(&self.1, Kind::Orders, self.0.also_bought(sku, k)).await
    }
}

/// The test gateway behind the fault layer: a charge or refund may be refused before it
/// reaches the provider ([`PaymentError::Unavailable`]) or time out after it was made
/// ([`PaymentError::Timeout`]). Every charge that reached the provider is remembered.
#[derive(Debug)]
struct FaultyGateway {
    inner: Arc<TestGateway>,
    outages: Arc<Outages>,
    charged: Arc<Mutex<HashSet<OrderId>>>,
}

impl FaultyGateway {
    fn fault(&self) -> Fault {
        self.outages.fault(Kind::Gateway)
    }
}

fn unreachable_provider() -> PaymentError {
    PaymentError::Unavailable {
        message: "injected fault in the gateway".into(),
        source: None,
    }
}

#[async_trait]
impl PaymentGateway for FaultyGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        let fault = self.fault();
        if fault == Fault::Before {
            return Err(unreachable_provider());
        }
        self.charged
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(request.order);
        let charge = self.inner.charge(request).await;
        if fault == Fault::After {
            return Err(PaymentError::Timeout);
        }
        charge
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError> {
        match self.fault() {
            Fault::None => self.inner.lookup(idempotency_key).await,
            Fault::Before | Fault::After => Err(PaymentError::Timeout),
        }
    }

    async fn payment(
        &self,
        id: &crate::payment::PaymentId,
    ) -> Result<Option<Charge>, PaymentError> {
        match self.fault() {
            Fault::None => self.inner.payment(id).await,
            Fault::Before | Fault::After => Err(PaymentError::Timeout),
        }
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refund, PaymentError> {
        match self.fault() {
            Fault::None => self.inner.refund(request).await,
            Fault::Before => Err(unreachable_provider()),
            Fault::After => {
                let _ = self.inner.refund(request).await;
                Err(PaymentError::Timeout)
            }
        }
    }
}

/// What one shopper does.
#[derive(Debug, Clone)]
struct Plan {
    /// SKU index and units per line.
    lines: Vec<(usize, u32)>,
    token: &'static str,
    /// "Pay" pressed this many times at once, each with its own key.
    presses: usize,
    /// Retries with the same key after an error, before giving up.
    retries: usize,
    /// How a 3-D Secure payment ends.
    pending_succeeds: bool,
    /// A forged stale "failed" event precedes the real webhook.
    stale_failed_first: bool,
    /// The webhook is delivered twice.
    webhook_twice: bool,
    /// Cancelled at whatever await point it reached after this long.
    crash_after: Option<Duration>,
    /// Chance, in percent, that a call fails.
    fault_rate: u32,
    /// Applies the history's code.
    coupon: bool,
    /// The history's code.
    code: Option<CouponCode>,
    /// Goes on without the code when it is used up.
    without_exhausted: bool,
    seed: u64,
}

fn plan(rng: &mut StdRng, skus: usize) -> Plan {
    let lines = (0..rng.random_range(1..=2))
        .map(|_| (rng.random_range(0..skus), rng.random_range(1..=2)))
        .collect();
    let token = match rng.random_range(0..100) {
        0..55 => "tok_approve",
        55..70 => "tok_decline",
        70..85 => "tok_pending",
        _ => "tok_timeout",
    };
    Plan {
        lines,
        token,
        presses: if rng.random_bool(0.25) {
            rng.random_range(2..=3)
        } else {
            1
        },
        retries: rng.random_range(0..=2),
        pending_succeeds: rng.random_bool(0.7),
        stale_failed_first: rng.random_bool(0.3),
        webhook_twice: rng.random_bool(0.3),
        crash_after: rng
            .random_bool(0.1)
            .then(|| Duration::from_micros(rng.random_range(0..3_000))),
        fault_rate: *[0, 5, 15, 30].get(rng.random_range(0..4)).unwrap_or(&0),
        coupon: rng.random_bool(0.6),
        code: None,
        without_exhausted: rng.random_bool(0.5),
        seed: rng.random(),
    }
}

/// What the world learned from one shopper.
#[derive(Debug, Default)]
struct Trace {
    /// Webhooks the provider sent (delivered again at the end, late and shuffled).
    webhooks: Vec<PaymentEvent>,
}

/// Is this an answer a shopper may get in a world with faults?
fn expected(result: &Result<Placed, CheckoutError>) -> bool {
    !matches!(
        result,
        Err(CheckoutError::IdempotencyConflict(_)
            | CheckoutError::PricesChanged { .. }
            | CheckoutError::ItemUnavailable(_))
    )
}

async fn shop_as(
    shop: &Storefront,
    gateway: &TestGateway,
    customer: CustomerId,
    skus: &[Sku],
    plan: &Plan,
    label: &str,
    trace: &Mutex<Trace>,
) {
    let Ok(cart) = shop.create_guest_cart().await else {
        return;
    };
    for (i, q) in &plan.lines {
        if shop.add_item(cart.id, &skus[*i], *q).await.is_err() {
            return;
        }
    }
    if let Some(code) = &plan.code {
        // Refused when used up already, or by a fault: then shop without it.
        let _ = shop.apply_coupon(cart.id, code.as_str()).await;
    }
    let presses = (0..plan.presses).map(|press| async move {
        let mut req = request(
            cart.id,
            customer,
            plan.token,
            &format!("{label}-press-{press}"),
        );
        req.without_exhausted_promotions = plan.without_exhausted;
        let mut result = shop.place_order(req.clone()).await;
        for _ in 0..plan.retries {
            match &result {
                Err(e) if e.is_transient() => result = shop.place_order(req.clone()).await,
                _ => break,
            }
        }
        result
    });
    for result in futures::future::join_all(presses).await {
        assert!(expected(&result), "{label}: unexpected answer {result:?}");
        let Ok(Placed::AwaitingPayment(order)) = result else {
            continue;
        };
        let Some(payment) = order.payment.clone() else {
            continue;
        };
        // The customer at the bank; then the provider's webhooks.
        let Ok(hook) = gateway.complete(&payment.id, plan.pending_succeeds) else {
            continue;
        };
        let event: PaymentEvent = serde_json::from_slice(&hook.payload).expect("event");
        if plan.stale_failed_first {
            let stale = PaymentEvent {
                status: PaymentStatus::Failed,
                failure_reason: Some("stale".into()),
                ..event.clone()
            };
            let _ = shop.handle_payment_event(stale).await;
        }
        for _ in 0..if plan.webhook_twice { 2 } else { 1 } {
            let _ = shop.handle_payment_event(event.clone()).await;
        }
        trace
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .webhooks
            .push(event);
    }
}

/// Money and stock survive randomized histories of concurrent shoppers under injected faults
/// (see the module docs for the faults and the invariants). Runs
/// [`Backend::simulated_histories`] histories; the seed is printed and
/// `ECOMMERCE_TEST_SEED` replays it.
pub async fn simulation_stock_and_money_survive_faults(backend: Backend) {
    let seed: u64 = std::env::var("ECOMMERCE_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!(
        "simulation_stock_and_money_survive_faults: {} histories, seed {seed} \
         (ECOMMERCE_TEST_SEED={seed} replays)",
        backend.simulated_histories
    );
    // One provider for every history, as in production: a recovery pass of one history may
    // finish another's orders. Histories have their own SKUs and customers: 16 run at a time.
    let gateway = Arc::new(TestGateway::default());
    let charged = Arc::new(Mutex::new(HashSet::new()));
    let ended = futures::stream::iter(0..backend.simulated_histories)
        .map(|history| simulate(&backend, &gateway, &charged, seed, history))
        .buffer_unordered(16)
        .collect::<Vec<Ended>>()
        .await;
    settle_and_check(&backend, &gateway, ended).await;
    // No charge at the provider without an order.
    let charged = charged.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for order in &charged {
        let exists = backend.orders.get(*order).await.expect("read").is_some();
        assert!(
            exists,
            "seed {seed}: a charge was made for {order}, which is no order"
        );
    }
    assert!(
        gateway.charges().len() <= charged.len(),
        "seed {seed}: more charges at the gateway than charged orders"
    );
}

async fn simulate(
    backend: &Backend,
    gateway: &Arc<TestGateway>,
    charged: &Arc<Mutex<HashSet<OrderId>>>,
    seed: u64,
    history: usize,
) -> Ended {
    let mut rng =
        StdRng::seed_from_u64(seed ^ (history as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let context = format!("seed {seed}, history {history}");
    let outages = Arc::new(Outages::default());
    let faulty_gateway = Arc::new(FaultyGateway {
        inner: gateway.clone(),
        outages: outages.clone(),
        charged: charged.clone(),
    });
    // Reservations expire within the history, so expiry is exercised (late payments take the
    // stock again or are refunded) and so is its guarantee: whatever a crash left held is
    // back on hand once the reservation expired.
    let ttl = Duration::from_millis(rng.random_range(100..=1_000));
    let config = StorefrontConfig::default()
        .with_reservation_ttl(ttl)
        .with_payment_timeout(PAYMENT_TIMEOUT);
    let mut builder = Storefront::builder()
        .with_memory_defaults()
        .catalog(backend.catalog.clone())
        .carts(Arc::new(FaultyCarts(
            backend.carts.clone(),
            outages.clone(),
        )))
        .inventory(Arc::new(FaultyInventory(
            backend.inventory.clone(),
            outages.clone(),
        )))
        .orders_and_outbox(
            Arc::new(FaultyOrders(backend.orders.clone(), outages.clone())),
            backend.outbox.clone(),
        )
        .payments(faulty_gateway)
        .recommendations(Arc::new(FaultyRecommendations(
            backend.recommendations.clone(),
            outages.clone(),
        )))
        .search(backend.search.clone())
        .promotions(Arc::new(FaultyPromotions(
            backend.promotions.clone(),
            outages.clone(),
        )))
        .config(config);
    if let Some(unit) = &backend.unit {
        builder = builder.unit_of_work(Arc::new(FaultyUnit(unit.clone(), outages.clone())));
    }
    let shop = builder.build().expect("every store is given");

    let sku_names: Vec<String> = (0..rng.random_range(1..=3))
        .map(|i| format!("SIM{history}-{i}"))
        .collect();
    let stocks: Vec<u32> = sku_names.iter().map(|_| rng.random_range(0..=6)).collect();
    let items: Vec<(&str, i64, u32)> = sku_names
        .iter()
        .zip(&stocks)
        .enumerate()
        .map(|(i, (s, stock))| (s.as_str(), 1_000 + 250 * i as i64, *stock))
        .collect();
    stocked(&shop, &format!("Simulated {history}"), &items).await;
    let skus: Vec<Sku> = sku_names.iter().map(|s| sku(s)).collect();
    // A code of $1.00 off, for 0 to 3 orders, one per customer.
    let promotion = PromotionId::new(format!("sim-{history}")).expect("id");
    let code = CouponCode::new(&format!("SIM-{history}")).expect("code");
    let limit = rng.random_range(0..=3);
    let offer = Promotion::new(
        promotion.as_str(),
        "Simulated",
        crate::money::Currency::USD,
        Action::AmountOff {
            amount: crate::money::Money::from_minor(100, crate::money::Currency::USD),
            target: Target::Order,
        },
    )
    .expect("valid")
    .with_code_only()
    .limited_to(Some(limit), Some(1), None);
    shop.save_promotion(&offer).await.expect("promotion");
    shop.save_coupon(&Coupon::new(code.clone(), promotion.clone()))
        .await
        .expect("coupon");

    let shoppers: Vec<(CustomerId, Plan)> = (0..rng.random_range(2..=8))
        .map(|_| (CustomerId::new(), plan(&mut rng, skus.len())))
        .collect();
    let trace = Arc::new(Mutex::new(Trace::default()));

    // Outages come and go while the shoppers shop.
    let chaos = {
        let outages = outages.clone();
        let mut chaos_rng = StdRng::seed_from_u64(rng.random());
        tokio::spawn(async move {
            for _ in 0..chaos_rng.random_range(0..4) {
                let kind = [Kind::Carts, Kind::Inventory, Kind::Orders, Kind::Gateway]
                    [chaos_rng.random_range(0..4)];
                tokio::time::sleep(Duration::from_micros(chaos_rng.random_range(0..2_000))).await;
                outages.flag(kind).store(true, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_micros(chaos_rng.random_range(0..3_000))).await;
                outages.flag(kind).store(false, Ordering::SeqCst);
            }
        })
    };
    // A recovery pass races the shoppers, with faults of its own.
    let racing_recovery = {
        let shop = shop.clone();
        let faults = Arc::new(ShopperFaults {
            rng: Mutex::new(StdRng::seed_from_u64(rng.random())),
            rate: 10,
        });
        tokio::spawn(FAULTS.scope(faults, async move {
            for _ in 0..2 {
                tokio::task::yield_now().await;
                let _ = shop.recover(Duration::ZERO).await;
            }
        }))
    };
    let tasks: Vec<_> = shoppers
        .iter()
        .enumerate()
        .map(|(n, (customer, plan))| {
            let shop = shop.clone();
            let gateway = gateway.clone();
            let skus = skus.clone();
            let trace = trace.clone();
            let mut plan = plan.clone();
            plan.code = plan.coupon.then(|| code.clone());
            let customer = *customer;
            let label = format!("h{history}-s{n}");
            let faults = Arc::new(ShopperFaults {
                rng: Mutex::new(StdRng::seed_from_u64(plan.seed)),
                rate: plan.fault_rate,
            });
            tokio::spawn(FAULTS.scope(faults, async move {
                let shopping = shop_as(&shop, &gateway, customer, &skus, &plan, &label, &trace);
                match plan.crash_after {
                    Some(after) => {
                        let _ = tokio::time::timeout(after, shopping).await;
                    }
                    None => shopping.await,
                }
            }))
        })
        .collect();
    for task in tasks {
        task.await
            .unwrap_or_else(|e| panic!("{context}: a shopper panicked: {e}"));
    }
    chaos.await.expect("chaos task");
    racing_recovery.await.expect("recovery task");
    for flag in [Kind::Carts, Kind::Inventory, Kind::Orders, Kind::Gateway] {
        outages.flag(flag).store(false, Ordering::SeqCst);
    }

    // Faults stop. Payments still waiting complete, webhooks arrive late and shuffled, and
    // recovery finishes what the shoppers left. Three rounds: recovery may start a payment
    // that then waits for the customer, or whose answer is lost (`tok_timeout`).
    for _ in 0..3 {
        let pending: Vec<_> = gateway
            .charges()
            .into_iter()
            .filter(|c| c.status == PaymentStatus::Pending)
            .collect();
        let mut webhooks =
            std::mem::take(&mut trace.lock().unwrap_or_else(|e| e.into_inner()).webhooks);
        for charge in pending {
            let hook = gateway
                .complete(&charge.payment_id, rng.random_bool(0.6))
                .expect("complete");
            webhooks.push(serde_json::from_slice(&hook.payload).expect("event"));
        }
        webhooks.shuffle(&mut rng);
        for event in webhooks {
            shop.handle_payment_event(event)
                .await
                .unwrap_or_else(|e| panic!("{context}: a late webhook failed: {e}"));
        }
        // Errors are left for the next round (a charge whose answer is lost again); what
        // stays unsettled after the last one fails the money check below.
        shop.recover(Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("{context}: recover failed: {e}"));
    }
    Ended {
        context,
        skus,
        stocks,
        customers: shoppers.into_iter().map(|(c, _)| c).collect(),
        promotion: (promotion, limit),
    }
}

/// How long a charge may be in flight in the simulation.
const PAYMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// What is checked of a history once every history has ended.
#[derive(Debug)]
struct Ended {
    context: String,
    skus: Vec<Sku>,
    stocks: Vec<u32>,
    customers: Vec<CustomerId>,
    /// The history's promotion and its limit.
    promotion: (PromotionId, u32),
}

/// Once every history has ended: reservations a crash left held expire, the outbox is
/// drained into the checkout's effects, and every invariant is checked.
async fn settle_and_check(backend: &Backend, gateway: &Arc<TestGateway>, ended: Vec<Ended>) {
    let mut builder = Storefront::builder()
        .with_memory_defaults()
        .catalog(backend.catalog.clone())
        .carts(backend.carts.clone())
        .inventory(backend.inventory.clone())
        .orders_and_outbox(backend.orders.clone(), backend.outbox.clone())
        .payments(gateway.clone())
        .recommendations(backend.recommendations.clone())
        .search(backend.search.clone())
        .promotions(backend.promotions.clone())
        .config(
            StorefrontConfig::default()
                .with_payment_timeout(PAYMENT_TIMEOUT)
                // Every history's reservations and uses live at most 1 s.
                .with_reservation_ttl(Duration::from_secs(1)),
        );
    if let Some(unit) = &backend.unit {
        builder = builder.unit_of_work(unit.clone());
    }
    let shop = builder.build().expect("every store is given");
    // Every history's reservations live at most 1 s, and no charge is in flight anymore.
    tokio::time::sleep(PAYMENT_TIMEOUT + Duration::from_millis(50)).await;
    for _ in 0..10 {
        let report = shop.recover(Duration::ZERO).await.expect("recover");
        let idle = report.expired_reservations.is_empty()
            && report.confirmed.is_empty()
            && report.failed.is_empty()
            && report.errors.is_empty()
            && report.uses_committed.is_empty()
            && report.uses_released.is_empty();
        if idle {
            break;
        }
    }
    OutboxRelay::new(backend.outbox.clone(), Arc::new(shop.effects()))
        .drain()
        .await
        .expect("the outbox relay");
    for history in ended {
        // Every order of every shopper, whether the shopper learned of it or not.
        let mut orders = Vec::new();
        for customer in &history.customers {
            let mut cursor = None;
            loop {
                let page = shop
                    .order_history(*customer, cursor, 100)
                    .await
                    .expect("history");
                orders.extend(page.items);
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
        let context = &history.context;
        check_money(context, &orders, gateway).await;
        check_stock(context, backend, &history.skus, &history.stocks, &orders).await;
        check_carts(context, &shop, &orders).await;
        check_promotion(context, backend, &history.promotion, &orders).await;
    }
}

/// No promotion used more than its limit, none left held, and its committed uses are
/// exactly the paid orders that used it, with the discount they got.
async fn check_promotion(
    context: &str,
    backend: &Backend,
    (promotion, limit): &(PromotionId, u32),
    orders: &[Order],
) {
    let using: Vec<&Order> = orders
        .iter()
        .filter(|o| o.is_paid())
        .filter(|o| {
            o.quote
                .as_ref()
                .is_some_and(|q| q.promotions.iter().any(|a| &a.promotion == promotion))
        })
        .collect();
    let usage = backend.promotions.usage(promotion).await.expect("usage");
    assert_eq!(
        usage.held, 0,
        "{context}: no use of {promotion} stays held: {usage:?}"
    );
    assert!(
        usage.committed <= *limit,
        "{context}: {promotion} used {} times, limit {limit}",
        usage.committed
    );
    assert_eq!(
        usage.committed as usize,
        using.len(),
        "{context}: committed uses of {promotion} equal the paid orders that used it"
    );
    assert_eq!(
        usage.spent.to_minor().expect("minor"),
        100 * using.len() as i64,
        "{context}: the discount given by {promotion}"
    );
}

async fn check_money(context: &str, orders: &[Order], gateway: &TestGateway) {
    let mut paid_per_cart: HashMap<CartId, Vec<OrderId>> = HashMap::new();
    for order in orders {
        let id = order.id;
        assert_ne!(
            order.status,
            OrderStatus::Pending,
            "{context}: order {id} was never settled: {order:?}"
        );
        let charge = gateway.lookup(&charge_key(id)).await.expect("lookup");
        let zero = crate::money::Money::zero(order.total.currency);
        let net = order
            .net_paid()
            .unwrap_or_else(|e| panic!("{context}: ledger of {id}: {e}"));
        if order.is_paid() {
            paid_per_cart.entry(order.cart).or_default().push(id);
            let charge = charge.unwrap_or_else(|| panic!("{context}: {id} paid, never charged"));
            assert_eq!(
                (charge.status, charge.amount),
                (PaymentStatus::Succeeded, order.total),
                "{context}: {id} is paid, so the gateway holds its total"
            );
            assert_eq!(
                net, order.total,
                "{context}: ledger of paid {id}: {:?}",
                order.money
            );
        } else {
            if let Some(charge) = &charge {
                assert!(
                    matches!(
                        charge.status,
                        PaymentStatus::Failed | PaymentStatus::Refunded
                    ),
                    "{context}: {id} is {} but the gateway kept {:?}",
                    order.status,
                    charge.status
                );
            }
            assert_eq!(
                net, zero,
                "{context}: ledger of unpaid {id}: {:?}",
                order.money
            );
        }
    }
    for (cart, paid) in paid_per_cart {
        assert_eq!(paid.len(), 1, "{context}: cart {cart} paid twice: {paid:?}");
    }
}

async fn check_stock(
    context: &str,
    backend: &Backend,
    skus: &[Sku],
    stocks: &[u32],
    orders: &[Order],
) {
    let mut sold_by_orders: HashMap<&Sku, u32> = HashMap::new();
    for order in orders.iter().filter(|o| o.is_paid()) {
        for line in &order.lines {
            *sold_by_orders.entry(&line.sku).or_default() += line.quantity;
        }
    }
    for (s, stock) in skus.iter().zip(stocks) {
        let level = match backend.inventory.level(s).await {
            Ok(level) => level,
            Err(InventoryError::UnknownSku(_)) if *stock == 0 => continue,
            Err(e) => panic!("{context}: {e}"),
        };
        let sold = sold_by_orders.get(s).copied().unwrap_or(0);
        assert!(sold <= *stock, "{context}: oversold {s}: {sold} of {stock}");
        assert_eq!(
            level.sold, sold,
            "{context}: sold units of {s} match paid orders"
        );
        assert_eq!(
            level.reserved, 0,
            "{context}: nothing stays reserved for {s}"
        );
        assert_eq!(level.total(), u64::from(*stock), "{context}: {s} conserved");
        let ledger = backend.inventory.ledger(s).await.expect("ledger");
        assert!(
            level.conserved(&ledger),
            "{context}: the ledger of {s} replays to its level"
        );
    }
}

async fn check_carts(context: &str, shop: &Storefront, orders: &[Order]) {
    for order in orders.iter().filter(|o| o.is_paid()) {
        if let Some(cart) = shop.cart(order.cart).await.expect("cart") {
            assert!(
                cart.checkout.as_ref().is_none_or(|c| c.order != order.id),
                "{context}: paid order {} still claims its cart",
                order.id
            );
        }
    }
}
