//! The conformance suite: one async check per guarantee, run by every store implementation.
//!
//! A guarantee is written once, here, and every backend is held to it. A backend provides a
//! [`BackendFactory`] that makes a fresh, isolated [`Backend`] (its own schema, database or key
//! prefix, so checks run in parallel), and expands [`conformance_suite!`](crate::conformance_suite)
//! to get one `#[tokio::test]` per check:
//!
//! ```ignore
//! struct MyFactory;
//!
//! #[async_trait::async_trait]
//! impl ecommerce_core::testkit::BackendFactory for MyFactory {
//!     async fn backend(&self) -> Option<ecommerce_core::testkit::Backend> {
//!         Some(ecommerce_core::testkit::Backend::memory())
//!     }
//! }
//!
//! ecommerce_core::conformance_suite!(MyFactory);
//! ```
//!
//! A factory returns `None` to skip (a server it needs is not configured); it prints why.
//! Each check panics with a message naming the broken guarantee.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::Decimal;

use crate::cart::{Cart, CartLimits, CartStore};
use crate::catalog::{CatalogStore, Category, Product, Variant};
use crate::checkout::{CheckoutRequest, charge_key};
use crate::error::{CartError, CatalogError, CheckoutError, InventoryError, OrderError};
use crate::events::{DomainEvent, EventSink, Outbox, OutboxRelay};
use crate::id::{CartId, CategoryId, CustomerId, IdempotencyKey, OrderId, ProductId, Sku};
use crate::inventory::{InventoryStore, ReservationLine, ReservationState};
use crate::memory::{
    MemoryCartStore, MemoryCatalog, MemoryInventory, MemoryOrderStore, MemoryRecommendations,
    MemorySearch, RecordingSink,
};
use crate::money::{Currency, Money};
use crate::order::{Created, Order, OrderPatch, OrderStatus, OrderStore};
use crate::payment::{PaymentGateway, PaymentMethod, PaymentStatus, TestGateway};
use crate::recommend::RecommendationStore;
use crate::search::{ProductSearch, SearchFilters, SearchQuery, SortOrder};
use crate::storefront::{Storefront, StorefrontConfig};

/// One store of each kind, fresh and isolated from every other backend made by the factory.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Catalog.
    pub catalog: Arc<dyn CatalogStore>,
    /// Carts.
    pub carts: Arc<dyn CartStore>,
    /// Inventory.
    pub inventory: Arc<dyn InventoryStore>,
    /// Orders.
    pub orders: Arc<dyn OrderStore>,
    /// The orders' outbox.
    pub outbox: Arc<dyn Outbox>,
    /// Recommendations.
    pub recommendations: Arc<dyn RecommendationStore>,
    /// Search.
    pub search: Arc<dyn ProductSearch>,
    /// How many randomized histories [`oversell_randomized_histories`] runs on this backend.
    pub histories: usize,
    /// How many fault-injected histories [`simulation_stock_and_money_survive_faults`] runs
    /// on this backend.
    pub simulated_histories: usize,
    /// Whatever must live as long as the backend (dropping it removes the backend's schema,
    /// database or files).
    pub guard: Option<Arc<dyn std::fmt::Debug + Send + Sync>>,
}

impl Backend {
    /// Every store in memory; 1,000 randomized histories.
    pub fn memory() -> Backend {
        let orders = Arc::new(MemoryOrderStore::new());
        Backend {
            catalog: Arc::new(MemoryCatalog::new()),
            carts: Arc::new(MemoryCartStore::new()),
            inventory: Arc::new(MemoryInventory::new()),
            orders: orders.clone(),
            outbox: orders,
            recommendations: Arc::new(MemoryRecommendations::new()),
            search: Arc::new(MemorySearch::new()),
            histories: 1_000,
            simulated_histories: 10_000,
            guard: None,
        }
    }

    /// A storefront over these stores and a fresh [`TestGateway`].
    pub fn storefront(&self, config: StorefrontConfig) -> (Storefront, Arc<TestGateway>) {
        let gateway = Arc::new(TestGateway::default());
        let shop = Storefront::builder()
            .catalog(self.catalog.clone())
            .carts(self.carts.clone())
            .inventory(self.inventory.clone())
            .orders(self.orders.clone(), self.outbox.clone())
            .payments(gateway.clone())
            .recommendations(self.recommendations.clone())
            .search(self.search.clone())
            .config(config)
            .build()
            .expect("every store is given");
        (shop, gateway)
    }
}

/// Makes fresh, isolated backends for the checks.
#[async_trait]
pub trait BackendFactory: Send + Sync {
    /// A new backend, or `None` to skip the check (print why).
    async fn backend(&self) -> Option<Backend>;
}

/// The factory of the in-memory stores.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryFactory;

#[async_trait]
impl BackendFactory for MemoryFactory {
    async fn backend(&self) -> Option<Backend> {
        Some(Backend::memory())
    }
}

/// Expands to one `#[tokio::test]` per check of the suite, each with a fresh backend from the
/// factory expression. The calling crate needs `tokio` (macros, rt-multi-thread) as a
/// dev-dependency.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@checks $factory;
            catalog_rejects_invalid_products_and_changes_nothing,
            catalog_keeps_skus_unique,
            catalog_lists_published_products_by_page,
            cart_save_is_compare_and_set,
            cart_rules_reject_bad_input_and_change_nothing,
            cart_merge_adds_up_capped_and_happens_once,
            reserve_is_all_or_nothing,
            reserve_is_idempotent_per_order,
            commit_release_and_return_are_idempotent,
            expired_reservations_are_released,
            ledger_proves_stock_is_conserved,
            concurrent_reservations_never_oversell,
            one_order_per_idempotency_key,
            order_update_is_compare_and_set,
            history_is_newest_first_with_cursor,
            outbox_delivers_every_event_at_least_once,
            co_purchases_count_once_per_order,
            search_tolerates_typos_prefixes_and_counts_facets,
            search_follows_catalog_changes_and_facets_agree_with_filters,
            checkout_confirms_sells_stock_and_records,
            checkout_out_of_stock_fails_naming_skus,
            checkout_decline_releases_stock,
            checkout_reprices_changed_lines,
            checkout_rejects_bad_input_and_changes_nothing,
            concurrent_checkout_retries_make_one_order,
            pending_payment_completes_by_callback,
            late_success_after_failure_is_refunded,
            recover_finishes_interrupted_checkouts,
            lifecycle_ship_deliver_cancel,
            oversell_concurrent_checkouts,
            oversell_randomized_histories,
            retry_after_a_lost_charge_answer_confirms,
            stock_lost_after_payment_is_a_typed_refunded_failure,
            one_cart_is_paid_once_whatever_the_keys,
            items_added_during_checkout_stay_in_the_cart,
            payment_events_are_checked_with_the_gateway,
            idempotency_keys_are_scoped_per_customer,
            cancellation_refunds_once_in_the_ledger,
            simulation_stock_and_money_survive_faults,
        );
    };
    (@checks $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let factory = $factory;
                match $crate::testkit::BackendFactory::backend(&factory).await {
                    Some(backend) => $crate::testkit::$check(backend).await,
                    None => eprintln!("skipped: {}", stringify!($check)),
                }
            }
        )*
    };
}

mod money;
mod simulation;

pub use money::*;
pub use simulation::*;

// ----- fixtures -----

/// `place_order` with the placed order unwrapped: most checks read its fields.
trait Place {
    async fn place(&self, request: CheckoutRequest) -> Result<Order, CheckoutError>;
}

impl Place for Storefront {
    async fn place(&self, request: CheckoutRequest) -> Result<Order, CheckoutError> {
        self.place_order(request)
            .await
            .map(crate::checkout::Placed::into_order)
    }
}

fn sku(s: &str) -> Sku {
    Sku::new(s).expect("valid test sku")
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::Usd)
}

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::new(s).expect("valid test key")
}

fn method(token: &str) -> PaymentMethod {
    PaymentMethod::new(token).expect("valid test token")
}

fn category() -> CategoryId {
    CategoryId::new("gear").expect("valid slug")
}

/// A published product with one variant per `(sku, price in cents)`.
fn product(title: &str, variants: &[(&str, i64)]) -> Product {
    Product {
        id: ProductId::new(),
        title: title.into(),
        description: format!("The {title}, built to last."),
        brand: "Acme".into(),
        category: category(),
        attributes: BTreeMap::new(),
        variants: variants
            .iter()
            .map(|(s, price)| Variant {
                sku: sku(s),
                options: BTreeMap::new(),
                price: usd(*price),
                published: true,
            })
            .collect(),
        published: true,
        created_at: Utc::now(),
    }
}

/// Adds a product and receives stock for each `(sku, price, stock)`.
async fn stocked(shop: &Storefront, title: &str, items: &[(&str, i64, u32)]) -> Product {
    let variants: Vec<(&str, i64)> = items.iter().map(|(s, p, _)| (*s, *p)).collect();
    let p = product(title, &variants);
    shop.upsert_product(p.clone())
        .await
        .expect("product is valid");
    for (s, _, stock) in items {
        if *stock > 0 {
            shop.receive_stock(&sku(s), *stock).await.expect("receive");
        }
    }
    p
}

async fn cart_with(shop: &Storefront, items: &[(&str, u32)]) -> CartId {
    let cart = shop.create_guest_cart().await.expect("create cart");
    for (s, q) in items {
        shop.add_item(cart.id, &sku(s), *q)
            .await
            .expect("add to cart");
    }
    cart.id
}

fn request(cart: CartId, customer: CustomerId, token: &str, k: &str) -> CheckoutRequest {
    CheckoutRequest {
        cart,
        customer,
        payment_method: method(token),
        idempotency_key: key(k),
    }
}

fn shop(backend: &Backend) -> (Storefront, Arc<TestGateway>) {
    backend.storefront(StorefrontConfig::default())
}

fn shop_with_limits(backend: &Backend, max_line_quantity: u32, max_lines: usize) -> Storefront {
    let config = StorefrontConfig {
        cart_limits: CartLimits {
            max_line_quantity,
            max_lines,
        },
        ..StorefrontConfig::default()
    };
    backend.storefront(config).0
}

/// Completes a pending payment at the gateway and returns the verified callback it sends.
fn complete(
    gateway: &TestGateway,
    payment: &crate::payment::PaymentId,
    succeed: bool,
) -> crate::payment::PaymentEvent {
    let webhook = gateway.complete(payment, succeed).expect("complete");
    gateway
        .verifier()
        .payment_event(&webhook.signature, &webhook.payload, Utc::now())
        .expect("signed by the gateway")
}

async fn assert_conserved(inventory: &dyn InventoryStore, s: &Sku, received: u32) {
    let level = inventory.level(s).await.expect("level");
    let ledger = inventory.ledger(s).await.expect("ledger");
    assert_eq!(
        level.total(),
        u64::from(received),
        "stock + reserved + sold must equal the units received for {s}: {level:?}"
    );
    assert!(
        level.conserved(&ledger),
        "the ledger of {s} must replay to its level {level:?}"
    );
}

fn new_order(customer: CustomerId, k: &str) -> Order {
    let now = Utc::now();
    Order {
        id: OrderId::new(),
        customer,
        cart: CartId::new(),
        idempotency_key: key(k),
        request_fingerprint: format!("fp-{k}"),
        status: OrderStatus::Pending,
        version: 1,
        lines: vec![crate::order::OrderLine {
            sku: sku("ORD-1"),
            title: "Thing".into(),
            quantity: 1,
            unit_price: usd(500),
        }],
        total: usd(500),
        payment: None,
        failure: None,
        payment_method: None,
        money: Vec::new(),
        charge_started_at: None,
        created_at: now,
        updated_at: now,
    }
}

fn line(s: &str, quantity: u32) -> ReservationLine {
    ReservationLine {
        sku: sku(s),
        quantity,
    }
}

const TTL: Duration = Duration::from_secs(600);

// ----- catalog -----

/// Invalid products get a typed error and write nothing.
pub async fn catalog_rejects_invalid_products_and_changes_nothing(backend: Backend) {
    let catalog = &backend.catalog;
    let mut bad = Vec::new();
    let mut p = product("", &[("CAT-1", 100)]);
    bad.push(p.clone());
    p.title = "x".repeat(201);
    bad.push(p.clone());
    bad.push(product("No variants", &[]));
    bad.push(product("Negative", &[("CAT-2", -1)]));
    bad.push(product("Twice", &[("CAT-3", 1), ("CAT-3", 2)]));
    let mut mixed = product("Mixed", &[("CAT-4", 1), ("CAT-5", 1)]);
    mixed.variants[1].price.currency = Currency::Eur;
    bad.push(mixed);
    for p in bad {
        let id = p.id;
        let result = catalog.upsert_product(p).await;
        assert!(
            matches!(result, Err(CatalogError::Invalid(_))),
            "invalid product must be refused, got {result:?}"
        );
        assert_eq!(catalog.product(id).await.expect("read"), None);
    }
    let offers = catalog
        .offers(&[sku("CAT-1"), sku("CAT-2"), sku("CAT-3"), sku("CAT-4")])
        .await
        .expect("offers");
    assert!(offers.is_empty(), "refused products must leave no offers");
    let empty_name = Category {
        id: category(),
        name: " ".into(),
        parent: None,
    };
    assert!(matches!(
        catalog.upsert_category(empty_name).await,
        Err(CatalogError::Invalid(_))
    ));
    assert!(catalog.categories().await.expect("categories").is_empty());
}

/// A SKU belongs to one product; replacing a product replaces its variants.
pub async fn catalog_keeps_skus_unique(backend: Backend) {
    let catalog = &backend.catalog;
    let mut first = product("First", &[("UNQ-1", 100), ("UNQ-2", 200)]);
    catalog.upsert_product(first.clone()).await.expect("first");
    let second = product("Second", &[("UNQ-2", 300)]);
    match catalog.upsert_product(second.clone()).await {
        Err(CatalogError::DuplicateSku { sku: s, owner }) => {
            assert_eq!(s, sku("UNQ-2"));
            assert_eq!(owner, first.id);
        }
        other => panic!("a SKU of another product must be refused, got {other:?}"),
    }
    assert_eq!(catalog.product(second.id).await.expect("read"), None);
    // Replacing the first product without UNQ-2 frees the SKU.
    first.variants.truncate(1);
    first.title = "First, renamed".into();
    catalog
        .upsert_product(first.clone())
        .await
        .expect("replace");
    assert_eq!(
        catalog.product(first.id).await.expect("read"),
        Some(first.clone())
    );
    catalog
        .upsert_product(second.clone())
        .await
        .expect("now free");
    let offers = catalog
        .offers(&[sku("UNQ-1"), sku("UNQ-2"), sku("UNQ-9")])
        .await
        .expect("offers");
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[&sku("UNQ-2")].product, second.id);
    assert_eq!(offers[&sku("UNQ-2")].price, usd(300));
    assert_eq!(offers[&sku("UNQ-1")].title, "First, renamed");
}

/// Listings show published products only, paged by cursor without gaps or repeats.
pub async fn catalog_lists_published_products_by_page(backend: Backend) {
    let catalog = &backend.catalog;
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut p = product(&format!("Listed {i}"), &[(&format!("LST-{i}"), 100)]);
        if i == 3 {
            p.published = false;
        } else {
            ids.push(p.id);
        }
        if i == 5 {
            p.category = CategoryId::new("other").expect("slug");
        }
        catalog.upsert_product(p).await.expect("upsert");
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = catalog.list_products(None, after, 2).await.expect("page");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|p| p.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "pages must cover every published product once, in id order"
    );
    let gear = catalog
        .list_products(Some(category()), None, 100)
        .await
        .expect("by category");
    assert_eq!(gear.items.len(), 5);
    assert!(gear.next.is_none());
}

// ----- carts -----

/// A save from a stale version fails and writes nothing.
pub async fn cart_save_is_compare_and_set(backend: Backend) {
    let carts = &backend.carts;
    let cart = Cart::new_guest();
    let saved = carts.save(&cart).await.expect("first save");
    assert_eq!(saved.version, 1);
    assert!(
        matches!(
            carts.save(&cart).await,
            Err(CartError::VersionConflict { .. })
        ),
        "saving a new cart over an existing one must conflict"
    );
    let mut a = saved.clone();
    a.lines.push(crate::cart::CartLine {
        sku: sku("CAS-1"),
        title: "A".into(),
        quantity: 1,
        unit_price: usd(100),
    });
    let mut b = saved.clone();
    b.lines.push(crate::cart::CartLine {
        sku: sku("CAS-2"),
        title: "B".into(),
        quantity: 2,
        unit_price: usd(100),
    });
    let (ra, rb) = tokio::join!(carts.save(&a), carts.save(&b));
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one of two saves from one version wins: {ra:?} {rb:?}"
    );
    let stored = carts.load(cart.id).await.expect("load").expect("exists");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.lines.len(), 1);
    carts.delete(cart.id).await.expect("delete");
    carts.delete(cart.id).await.expect("delete twice");
    assert_eq!(carts.load(cart.id).await.expect("load"), None);
}

/// Cart rules refuse bad input with a typed error and leave the cart as it was.
pub async fn cart_rules_reject_bad_input_and_change_nothing(backend: Backend) {
    let shop = shop_with_limits(&backend, 5, 2);
    stocked(
        &shop,
        "Mug",
        &[("BAD-1", 900, 10), ("BAD-2", 900, 10), ("BAD-3", 900, 10)],
    )
    .await;
    let mut hidden = product("Hidden", &[("BAD-H", 100)]);
    hidden.published = false;
    shop.upsert_product(hidden).await.expect("upsert");
    let mut euro = product("Euro", &[("BAD-E", 100)]);
    euro.variants[0].price.currency = Currency::Eur;
    shop.upsert_product(euro).await.expect("upsert");

    let cart = cart_with(&shop, &[("BAD-1", 2)]).await;
    let before = shop.cart(cart).await.expect("load").expect("exists");
    let attempts: Vec<(&str, u32)> = vec![
        ("BAD-1", 0),
        ("BAD-1", 4),
        ("BAD-2", 6),
        ("BAD-2", u32::MAX),
    ];
    for (s, q) in attempts {
        let r = shop.add_item(cart, &sku(s), q).await;
        assert!(
            matches!(r, Err(CartError::InvalidQuantity { .. })),
            "{s} x{q}: {r:?}"
        );
    }
    assert!(matches!(
        shop.add_item(cart, &sku("NOPE-1"), 1).await,
        Err(CartError::UnknownSku(_))
    ));
    assert!(matches!(
        shop.add_item(cart, &sku("BAD-H"), 1).await,
        Err(CartError::Unavailable(_))
    ));
    assert!(matches!(
        shop.add_item(cart, &sku("BAD-E"), 1).await,
        Err(CartError::CurrencyMismatch { .. })
    ));
    assert!(matches!(
        shop.remove_item(cart, &sku("BAD-3")).await,
        Err(CartError::LineNotFound(_))
    ));
    assert_eq!(shop.cart(cart).await.expect("load"), Some(before));
    shop.add_item(cart, &sku("BAD-2"), 1)
        .await
        .expect("second line");
    assert!(matches!(
        shop.add_item(cart, &sku("BAD-3"), 1).await,
        Err(CartError::TooManyLines { max: 2 })
    ));
    let unknown = CartId::new();
    assert!(matches!(
        shop.add_item(unknown, &sku("BAD-1"), 1).await,
        Err(CartError::NotFound(_))
    ));
    assert_eq!(shop.cart(unknown).await.expect("load"), None);
    let cart = shop
        .set_quantity(cart, &sku("BAD-1"), 5)
        .await
        .expect("set");
    assert_eq!(cart.line(&sku("BAD-1")).map(|l| l.quantity), Some(5));
    let cart = shop
        .set_quantity(cart.id, &sku("BAD-1"), 0)
        .await
        .expect("remove");
    assert!(cart.line(&sku("BAD-1")).is_none());
}

/// On login the guest cart merges into the customer's: quantities add up, capped; the guest
/// cart is gone; a repeated login merges nothing twice.
pub async fn cart_merge_adds_up_capped_and_happens_once(backend: Backend) {
    let shop = shop_with_limits(&backend, 5, 10);
    stocked(
        &shop,
        "Sock",
        &[("MRG-1", 300, 0), ("MRG-2", 400, 0), ("MRG-3", 500, 0)],
    )
    .await;
    let customer = CustomerId::new();
    let mine = shop.customer_cart(customer).await.expect("customer cart");
    assert_eq!(mine.id, CartId::for_customer(customer));
    shop.add_item(mine.id, &sku("MRG-1"), 4).await.expect("add");
    shop.add_item(mine.id, &sku("MRG-2"), 1).await.expect("add");
    let guest = cart_with(&shop, &[("MRG-1", 3), ("MRG-3", 2)]).await;

    let merged = shop.merge_guest_cart(guest, customer).await.expect("merge");
    let qty = |c: &Cart, s: &str| c.line(&sku(s)).map(|l| l.quantity);
    assert_eq!(qty(&merged.cart, "MRG-1"), Some(5), "4 + 3 capped at 5");
    assert_eq!(qty(&merged.cart, "MRG-2"), Some(1));
    assert_eq!(qty(&merged.cart, "MRG-3"), Some(2));
    assert_eq!(merged.clipped, vec![sku("MRG-1")]);
    assert_eq!(
        shop.cart(guest).await.expect("load"),
        None,
        "guest cart is consumed"
    );

    let again = shop
        .merge_guest_cart(guest, customer)
        .await
        .expect("merge again");
    assert_eq!(
        again.cart.lines, merged.cart.lines,
        "a repeated login changes nothing"
    );
    // The same cart on another device: it is the customer's cart id.
    let desktop = shop.customer_cart(customer).await.expect("cart");
    assert_eq!(desktop.lines, merged.cart.lines);
    assert!(matches!(
        shop.merge_guest_cart(desktop.id, CustomerId::new()).await,
        Err(CartError::NotAGuestCart(_))
    ));
}

// ----- inventory -----

/// A reservation takes every line or nothing, and names every short SKU; lines of one SKU
/// are summed.
pub async fn reserve_is_all_or_nothing(backend: Backend) {
    let inv = &backend.inventory;
    inv.receive(&sku("AON-1"), 5).await.expect("receive");
    inv.receive(&sku("AON-2"), 1).await.expect("receive");
    let order = OrderId::new();
    let r = inv
        .reserve(
            order,
            &[line("AON-1", 2), line("AON-2", 2), line("AON-9", 1)],
            TTL,
        )
        .await;
    match r {
        Err(InventoryError::OutOfStock { shortages }) => {
            let named: Vec<(Sku, u32, u32)> = shortages
                .into_iter()
                .map(|s| (s.sku, s.requested, s.available))
                .collect();
            assert_eq!(named, vec![(sku("AON-2"), 2, 1), (sku("AON-9"), 1, 0)]);
        }
        other => panic!("a short line must fail the reservation, got {other:?}"),
    }
    assert_eq!(
        inv.level(&sku("AON-1")).await.expect("level").on_hand,
        5,
        "nothing taken"
    );
    assert_eq!(inv.reservation(order).await.expect("read"), None);
    // Two lines of one SKU: 3 + 3 > 5 is short even though each line alone fits.
    let r = inv
        .reserve(order, &[line("AON-1", 3), line("AON-1", 3)], TTL)
        .await;
    assert!(matches!(r, Err(InventoryError::OutOfStock { .. })), "{r:?}");
    let r = inv
        .reserve(
            order,
            &[line("AON-1", 2), line("AON-2", 1), line("AON-1", 3)],
            TTL,
        )
        .await
        .expect("fits exactly");
    assert_eq!(r.lines, vec![line("AON-1", 5), line("AON-2", 1)]);
    assert_eq!(r.state, ReservationState::Held);
    let level = inv.level(&sku("AON-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved), (0, 5));
    for bad in [vec![], vec![line("AON-1", 0)]] {
        let r = inv.reserve(OrderId::new(), &bad, TTL).await;
        assert!(
            matches!(
                r,
                Err(InventoryError::EmptyReservation | InventoryError::InvalidQuantity { .. })
            ),
            "{r:?}"
        );
    }
    assert!(matches!(
        inv.receive(&sku("AON-1"), 0).await,
        Err(InventoryError::InvalidQuantity { .. })
    ));
    assert!(matches!(
        inv.level(&sku("AON-404")).await,
        Err(InventoryError::UnknownSku(_))
    ));
    assert_conserved(inv.as_ref(), &sku("AON-1"), 5).await;
}

/// Reserving twice for one order takes stock once.
pub async fn reserve_is_idempotent_per_order(backend: Backend) {
    let inv = &backend.inventory;
    inv.receive(&sku("IDM-1"), 10).await.expect("receive");
    let order = OrderId::new();
    let first = inv
        .reserve(order, &[line("IDM-1", 3)], TTL)
        .await
        .expect("reserve");
    let again = inv
        .reserve(order, &[line("IDM-1", 3)], TTL)
        .await
        .expect("again");
    assert_eq!(first.id, again.id);
    let lines = [line("IDM-1", 3)];
    let results = futures::future::join_all((0..16).map(|_| inv.reserve(order, &lines, TTL))).await;
    assert!(results.iter().all(Result::is_ok));
    let level = inv.level(&sku("IDM-1")).await.expect("level");
    assert_eq!(
        (level.on_hand, level.reserved),
        (7, 3),
        "one order takes once"
    );
    assert_conserved(inv.as_ref(), &sku("IDM-1"), 10).await;
}

/// Commit, release and return move stock once each, however often they are called.
pub async fn commit_release_and_return_are_idempotent(backend: Backend) {
    let inv = &backend.inventory;
    let s = sku("CRR-1");
    inv.receive(&s, 10).await.expect("receive");
    let sold = OrderId::new();
    let dropped = OrderId::new();
    inv.reserve(sold, &[line("CRR-1", 2)], TTL)
        .await
        .expect("reserve");
    inv.reserve(dropped, &[line("CRR-1", 3)], TTL)
        .await
        .expect("reserve");
    for _ in 0..3 {
        let r = inv.commit(sold).await.expect("commit");
        assert_eq!(r.state, ReservationState::Committed);
        let r = inv
            .release(dropped)
            .await
            .expect("release")
            .expect("exists");
        assert_eq!(r.state, ReservationState::Released);
    }
    let level = inv.level(&s).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (8, 0, 2));
    assert!(matches!(
        inv.release(sold).await,
        Err(InventoryError::Committed(_))
    ));
    assert!(matches!(
        inv.commit(dropped).await,
        Err(InventoryError::Released(_))
    ));
    assert!(matches!(
        inv.return_stock(dropped).await,
        Err(InventoryError::Released(_))
    ));
    assert_eq!(inv.release(OrderId::new()).await.expect("absent"), None);
    assert!(matches!(
        inv.commit(OrderId::new()).await,
        Err(InventoryError::NoReservation(_))
    ));
    // Re-reserving a released order takes stock again (a late payment).
    let r = inv
        .reserve(dropped, &[line("CRR-1", 3)], TTL)
        .await
        .expect("again");
    assert_eq!(r.state, ReservationState::Held);
    assert!(matches!(
        inv.return_stock(dropped).await,
        Err(InventoryError::NotCommitted(_))
    ));
    for _ in 0..3 {
        let r = inv.return_stock(sold).await.expect("return");
        assert_eq!(r.state, ReservationState::Returned);
    }
    let level = inv.level(&s).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (7, 3, 0));
    assert_conserved(inv.as_ref(), &s, 10).await;
}

/// Held reservations past their expiry are released once; committed ones are never touched.
pub async fn expired_reservations_are_released(backend: Backend) {
    let inv = &backend.inventory;
    let s = sku("EXP-1");
    inv.receive(&s, 10).await.expect("receive");
    let short = OrderId::new();
    let long = OrderId::new();
    let sold = OrderId::new();
    inv.reserve(short, &[line("EXP-1", 2)], Duration::from_millis(1))
        .await
        .expect("reserve");
    inv.reserve(sold, &[line("EXP-1", 1)], Duration::from_millis(1))
        .await
        .expect("reserve");
    inv.commit(sold).await.expect("commit");
    inv.reserve(long, &[line("EXP-1", 3)], TTL)
        .await
        .expect("reserve");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let released = inv.release_expired(100).await.expect("expire");
    assert_eq!(released, vec![short]);
    assert_eq!(
        inv.release_expired(100).await.expect("expire again"),
        Vec::<OrderId>::new()
    );
    let level = inv.level(&s).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (6, 3, 1));
    assert_conserved(inv.as_ref(), &s, 10).await;
}

/// Every movement is in the ledger, and replaying it gives the level.
pub async fn ledger_proves_stock_is_conserved(backend: Backend) {
    let inv = &backend.inventory;
    let s = sku("LED-1");
    inv.receive(&s, 4).await.expect("receive");
    inv.receive(&s, 6).await.expect("receive");
    let orders: Vec<OrderId> = (0..4).map(|_| OrderId::new()).collect();
    for o in &orders {
        inv.reserve(*o, &[line("LED-1", 2)], TTL)
            .await
            .expect("reserve");
    }
    inv.commit(orders[0]).await.expect("commit");
    inv.release(orders[1]).await.expect("release");
    inv.commit(orders[2]).await.expect("commit");
    inv.return_stock(orders[2]).await.expect("return");
    let ledger = inv.ledger(&s).await.expect("ledger");
    let kinds: Vec<_> = ledger.iter().map(|m| m.kind).collect();
    use crate::inventory::MovementKind::*;
    assert_eq!(
        kinds,
        vec![
            Received, Received, Reserved, Reserved, Reserved, Reserved, Committed, Released,
            Committed, Returned
        ]
    );
    assert!(ledger.iter().skip(2).all(|m| m.order.is_some()));
    let level = inv.level(&s).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (6, 2, 2));
    assert_conserved(inv.as_ref(), &s, 10).await;
}

/// 64 concurrent reservations of one unit each against S units: exactly S succeed.
pub async fn concurrent_reservations_never_oversell(backend: Backend) {
    let inv = backend.inventory.clone();
    let stock = 17;
    inv.receive(&sku("HOT-1"), stock).await.expect("receive");
    inv.receive(&sku("HOT-2"), 100).await.expect("receive");
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let inv = inv.clone();
            tokio::spawn(async move {
                // Half the orders take a second SKU too, in the opposite line order.
                let lines = if i % 2 == 0 {
                    vec![line("HOT-2", 1), line("HOT-1", 1)]
                } else {
                    vec![line("HOT-1", 1)]
                };
                inv.reserve(OrderId::new(), &lines, TTL).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(InventoryError::OutOfStock { shortages }) => {
                assert_eq!(shortages[0].sku, sku("HOT-1"));
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, stock, "exactly the stock is reserved");
    let level = inv.level(&sku("HOT-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved), (0, stock));
    assert_conserved(inv.as_ref(), &sku("HOT-1"), stock).await;
    assert_conserved(inv.as_ref(), &sku("HOT-2"), 100).await;
}

// ----- orders -----

/// Concurrent creates with one idempotency key make one order.
pub async fn one_order_per_idempotency_key(backend: Backend) {
    let orders = backend.orders.clone();
    let customer = CustomerId::new();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let orders = orders.clone();
            tokio::spawn(
                async move { orders.create(new_order(customer, "same-key"), vec![]).await },
            )
        })
        .collect();
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.expect("task").expect("create") {
            Created::New(o) => created.push(o),
            Created::Existing(o) => existing.push(o),
        }
    }
    assert_eq!(created.len(), 1, "exactly one create wins");
    assert!(existing.iter().all(|o| o.id == created[0].id));
    let by_key = orders
        .by_idempotency_key(customer, &key("same-key"))
        .await
        .expect("read");
    assert_eq!(by_key.map(|o| o.id), Some(created[0].id));
    let history = orders.history(customer, None, 100).await.expect("history");
    assert_eq!(history.items.len(), 1);
    let dup = Order {
        idempotency_key: key("other-key"),
        ..created[0].clone()
    };
    assert!(matches!(
        orders.create(dup, vec![]).await,
        Err(OrderError::Duplicate(_))
    ));
}

/// Status changes are compare-and-set on the version; invalid transitions change nothing.
pub async fn order_update_is_compare_and_set(backend: Backend) {
    let orders = backend.orders.clone();
    let order = orders
        .create(new_order(CustomerId::new(), "cas"), vec![])
        .await
        .expect("create")
        .into_order();
    let confirm = orders.update(
        order.id,
        1,
        OrderPatch::status(OrderStatus::Confirmed),
        vec![],
    );
    let fail = orders.update(order.id, 1, OrderPatch::status(OrderStatus::Failed), vec![]);
    let (a, b) = tokio::join!(confirm, fail);
    let winner = match (a, b) {
        (
            Ok(o),
            Err(OrderError::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }),
        )
        | (
            Err(OrderError::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }),
            Ok(o),
        ) => o,
        other => panic!("exactly one update from one version wins: {other:?}"),
    };
    assert_eq!(winner.version, 2);
    let stored = orders.get(order.id).await.expect("read").expect("exists");
    assert_eq!(stored, winner);
    let invalid = orders
        .update(
            order.id,
            2,
            OrderPatch::status(OrderStatus::Pending),
            vec![],
        )
        .await;
    assert!(
        matches!(
            invalid,
            Err(OrderError::InvalidTransition {
                to: OrderStatus::Pending,
                ..
            })
        ),
        "{invalid:?}"
    );
    if winner.status == OrderStatus::Failed {
        let r = orders
            .update(
                order.id,
                2,
                OrderPatch::status(OrderStatus::Shipped),
                vec![],
            )
            .await;
        assert!(
            matches!(r, Err(OrderError::InvalidTransition { .. })),
            "{r:?}"
        );
    }
    assert_eq!(orders.get(order.id).await.expect("read"), Some(stored));
    assert!(matches!(
        orders
            .update(
                OrderId::new(),
                1,
                OrderPatch::status(OrderStatus::Failed),
                vec![]
            )
            .await,
        Err(OrderError::NotFound(_))
    ));
}

/// History lists one customer's orders, newest first, by cursor, without gaps or repeats.
pub async fn history_is_newest_first_with_cursor(backend: Backend) {
    let orders = backend.orders.clone();
    let customer = CustomerId::new();
    let mut ids = Vec::new();
    for i in 0..7 {
        let o = orders
            .create(new_order(customer, &format!("hist-{i}")), vec![])
            .await
            .expect("create")
            .into_order();
        ids.push(o.id);
        orders
            .create(new_order(CustomerId::new(), &format!("other-{i}")), vec![])
            .await
            .expect("create");
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = orders.history(customer, before, 3).await.expect("page");
        assert!(page.items.len() <= 3);
        assert!(page.items.iter().all(|o| o.customer == customer));
        seen.extend(page.items.iter().map(|o| o.id));
        match page.next {
            Some(c) => before = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids, "newest first, every order once");
    let empty = orders
        .history(CustomerId::new(), None, 3)
        .await
        .expect("page");
    assert!(empty.items.is_empty() && empty.next.is_none());
}

/// Events written with changes reach the sink at least once, in order, even when the sink
/// fails for a while.
pub async fn outbox_delivers_every_event_at_least_once(backend: Backend) {
    let orders = backend.orders.clone();
    let customer = CustomerId::new();
    let order = orders
        .create(
            new_order(customer, "outbox"),
            vec![DomainEvent::OrderPlaced {
                order: OrderId::new(),
                customer,
                total: usd(1),
            }],
        )
        .await
        .expect("create")
        .into_order();
    orders
        .update(
            order.id,
            1,
            OrderPatch::status(OrderStatus::Confirmed),
            vec![DomainEvent::OrderShipped { order: order.id }],
        )
        .await
        .expect("update");
    // A refused change writes no event.
    let _ = orders
        .update(
            order.id,
            1,
            OrderPatch::status(OrderStatus::Failed),
            vec![DomainEvent::OrderDelivered { order: order.id }],
        )
        .await;
    let sink = Arc::new(RecordingSink::new());
    let relay = OutboxRelay::new(backend.outbox.clone(), sink.clone()).batch_size(1);
    sink.fail_next(1);
    assert!(
        relay.run_once().await.is_err(),
        "a failing sink is reported"
    );
    assert_eq!(relay.drain().await.expect("drain"), 2);
    assert_eq!(relay.drain().await.expect("drain again"), 0);
    let kinds: Vec<&'static str> = sink
        .events()
        .iter()
        .map(|e| match e.event {
            DomainEvent::OrderPlaced { .. } => "placed",
            DomainEvent::OrderShipped { .. } => "shipped",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["placed", "shipped"]);
    assert!(
        backend
            .outbox
            .pending(10)
            .await
            .expect("pending")
            .is_empty()
    );
    // Delivered twice (ack lost): the sink sees the same id and drops it.
    let again = sink.events()[0].clone();
    sink.deliver(&again).await.expect("redeliver");
    assert_eq!(sink.events().len(), 2);
}

/// Each order counts its pairs once, however often it is recorded.
pub async fn co_purchases_count_once_per_order(backend: Backend) {
    let rec = &backend.recommendations;
    let a = OrderId::new();
    assert!(
        rec.record_order(a, &[sku("REC-A"), sku("REC-B"), sku("REC-A")])
            .await
            .expect("record")
    );
    assert!(
        !rec.record_order(a, &[sku("REC-A"), sku("REC-B")])
            .await
            .expect("record")
    );
    rec.record_order(OrderId::new(), &[sku("REC-A"), sku("REC-C")])
        .await
        .expect("record");
    rec.record_order(OrderId::new(), &[sku("REC-A"), sku("REC-C"), sku("REC-D")])
        .await
        .expect("record");
    assert!(
        !rec.record_order(OrderId::new(), &[sku("REC-A"), sku("REC-A")])
            .await
            .expect("record"),
        "an order of one SKU has no pair to count"
    );
    let top = rec.also_bought(&sku("REC-A"), 10).await.expect("top");
    let top: Vec<(Sku, u64)> = top.into_iter().map(|a| (a.sku, a.count)).collect();
    assert_eq!(
        top,
        vec![(sku("REC-C"), 2), (sku("REC-B"), 1), (sku("REC-D"), 1)]
    );
    assert_eq!(
        rec.also_bought(&sku("REC-A"), 1).await.expect("top").len(),
        1
    );
    let b = rec.also_bought(&sku("REC-B"), 10).await.expect("top");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].count, 1);
    assert!(
        rec.also_bought(&sku("REC-Z"), 10)
            .await
            .expect("none")
            .is_empty()
    );
}

/// Search finds products by misspelt and half-typed words, filters, sorts and counts facets.
pub async fn search_tolerates_typos_prefixes_and_counts_facets(backend: Backend) {
    let (shop, _) = shop(&backend);
    let mut headphones = product("Wireless Headphones", &[("SRCH-1", 19_900)]);
    headphones.brand = "Sonic".into();
    headphones.attributes.insert("color".into(), "black".into());
    let mut speaker = product("Bluetooth Speaker", &[("SRCH-2", 4_900)]);
    speaker.brand = "Sonic".into();
    speaker.category = CategoryId::new("audio").expect("slug");
    let mut kettle = product("Electric Kettle", &[("SRCH-3", 2_900)]);
    kettle.category = CategoryId::new("kitchen").expect("slug");
    let mut hidden = product("Wireless Prototype", &[("SRCH-4", 100)]);
    hidden.published = false;
    for p in [&headphones, &speaker, &kettle, &hidden] {
        shop.upsert_product(p.clone()).await.expect("upsert");
    }
    shop.receive_stock(&sku("SRCH-1"), 3).await.expect("stock");
    let ids =
        |r: &crate::search::SearchResults| r.hits.iter().map(|h| h.product).collect::<Vec<_>>();

    let exact = shop
        .search(&SearchQuery::text("headphones"))
        .await
        .expect("search");
    assert_eq!(ids(&exact), vec![headphones.id]);
    let typo = shop
        .search(&SearchQuery::text("wireles headphnoes"))
        .await
        .expect("search");
    assert_eq!(
        ids(&typo),
        vec![headphones.id],
        "typos within the allowed distance match"
    );
    let prefix = shop
        .search(&SearchQuery::text("blueto"))
        .await
        .expect("search");
    assert_eq!(
        ids(&prefix),
        vec![speaker.id],
        "the last term matches as a prefix"
    );
    let none = shop
        .search(&SearchQuery::text("wireless xylophone"))
        .await
        .expect("search");
    assert_eq!(none.total, 0, "every term must match");
    let weird = shop
        .search(&SearchQuery::text(format!(
            "\"(AND OR*:~ {}",
            "z".repeat(5000)
        )))
        .await
        .expect("any text is a valid query");
    assert_eq!(weird.total, 0);

    let mut q = SearchQuery {
        facets: true,
        sort: SortOrder::PriceAscending,
        ..SearchQuery::default()
    };
    let all = shop.search(&q).await.expect("search");
    assert_eq!(ids(&all), vec![kettle.id, speaker.id, headphones.id]);
    let facets = all.facets.expect("facets asked for");
    let brand: Vec<(String, u64)> = facets
        .brand
        .iter()
        .map(|f| (f.value.clone(), f.count))
        .collect();
    assert_eq!(brand, vec![("Sonic".into(), 2), ("Acme".into(), 1)]);
    let stock: Vec<(String, u64)> = facets
        .in_stock
        .iter()
        .map(|f| (f.value.clone(), f.count))
        .collect();
    assert_eq!(stock, vec![("false".into(), 2), ("true".into(), 1)]);
    let price: Vec<(String, u64)> = facets
        .price
        .iter()
        .map(|f| (f.value.clone(), f.count))
        .collect();
    assert_eq!(price, vec![("25-50".into(), 2), ("100-250".into(), 1)]);

    q.filters = SearchFilters {
        brand: Some("sonic".into()),
        max_price: Some(Decimal::from(100)),
        ..SearchFilters::default()
    };
    let filtered = shop.search(&q).await.expect("search");
    assert_eq!(ids(&filtered), vec![speaker.id]);
    let facets = filtered.facets.expect("facets");
    assert_eq!(facets.category.len(), 1, "facets count the filtered hits");
    q.filters = SearchFilters {
        in_stock_only: true,
        ..SearchFilters::default()
    };
    assert_eq!(
        ids(&shop.search(&q).await.expect("search")),
        vec![headphones.id]
    );
    q.filters = SearchFilters::default();
    q.limit = 1;
    q.offset = 1;
    let page = shop.search(&q).await.expect("search");
    assert_eq!((ids(&page), page.total), (vec![speaker.id], 3));
    q.limit = 0;
    assert!(
        shop.search(&q).await.is_err(),
        "a zero page size is refused"
    );
}

/// A changed product is found by its new words and not its old ones, an unpublished one is
/// gone, and every facet count equals the total of the search filtered on that value.
pub async fn search_follows_catalog_changes_and_facets_agree_with_filters(backend: Backend) {
    let (shop, _) = shop(&backend);
    let brands = ["Boreal", "Kestrel", "Lumen"];
    let mut products = Vec::new();
    for i in 0..12 {
        let mut p = product(
            &format!("Trail Lantern {i}"),
            &[(&format!("LNT-{i}"), 1_000 + 700 * i)],
        );
        p.brand = brands[i as usize % 3].into();
        if i % 4 == 0 {
            p.category = CategoryId::new("camping").expect("slug");
        }
        shop.upsert_product(p.clone()).await.expect("upsert");
        products.push(p);
    }
    let all = SearchQuery {
        text: "lantern".into(),
        facets: true,
        limit: 100,
        ..SearchQuery::default()
    };
    let results = shop.search(&all).await.expect("search");
    assert_eq!(results.total, 12);
    let facets = results.facets.expect("facets");
    for f in &facets.brand {
        let filtered = SearchQuery {
            filters: SearchFilters {
                brand: Some(f.value.clone()),
                ..SearchFilters::default()
            },
            ..all.clone()
        };
        assert_eq!(
            shop.search(&filtered).await.expect("search").total,
            f.count,
            "brand {}",
            f.value
        );
    }
    for f in &facets.category {
        let filtered = SearchQuery {
            filters: SearchFilters {
                category: Some(CategoryId::new(f.value.clone()).expect("slug")),
                ..SearchFilters::default()
            },
            ..all.clone()
        };
        assert_eq!(
            shop.search(&filtered).await.expect("search").total,
            f.count,
            "category {}",
            f.value
        );
    }
    assert_eq!(facets.price.iter().map(|f| f.count).sum::<u64>(), 12);

    let mut renamed = products[1].clone();
    renamed.title = "Summit Headlamp".into();
    renamed.description = "Bright and light.".into();
    shop.upsert_product(renamed.clone()).await.expect("rename");
    let found = shop
        .search(&SearchQuery::text("headlamp"))
        .await
        .expect("search");
    assert_eq!(
        found.hits.iter().map(|h| h.product).collect::<Vec<_>>(),
        vec![renamed.id]
    );
    let lanterns = shop
        .search(&SearchQuery::text("lantern"))
        .await
        .expect("search");
    assert_eq!(lanterns.total, 11, "the old title is gone");
    let mut hidden = products[2].clone();
    hidden.published = false;
    shop.upsert_product(hidden.clone())
        .await
        .expect("unpublish");
    let lanterns = shop
        .search(&SearchQuery::text("lantern"))
        .await
        .expect("search");
    assert_eq!(lanterns.total, 10);
    assert!(lanterns.hits.iter().all(|h| h.product != hidden.id));
}

// ----- checkout saga -----

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
    let also = shop
        .also_bought(&sku("SAGA-1"), 5)
        .await
        .expect("also bought");
    assert_eq!(also.first().map(|a| a.sku.clone()), Some(sku("SAGA-2")));
    let history = shop
        .order_history(customer, None, 10)
        .await
        .expect("history");
    assert_eq!(history.items, vec![order.clone()]);
    let events = backend.outbox.pending(100).await.expect("outbox");
    assert!(events.iter().any(|e| matches!(
        &e.event,
        DomainEvent::OrderConfirmed { order: o, lines, .. } if *o == order.id && lines.len() == 2
    )));
    // The same key again returns the same order and charges nothing more.
    let again = shop
        .place(request(cart, customer, "tok_approve", "happy"))
        .await
        .expect("retry");
    assert_eq!(again.id, order.id);
    assert_eq!(gateway.charges().len(), 1);
}

/// Stock that is short fails the order, names every short SKU, and charges nothing.
pub async fn checkout_out_of_stock_fails_naming_skus(backend: Backend) {
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
    let order = match result {
        Err(CheckoutError::OutOfStock { order, shortages }) => {
            let named: Vec<Sku> = shortages.into_iter().map(|s| s.sku).collect();
            assert_eq!(named, vec![sku("OOS-1"), sku("OOS-3")]);
            order
        }
        other => panic!("expected out of stock, got {other:?}"),
    };
    let stored = shop.order(order).await.expect("read").expect("exists");
    assert_eq!(stored.status, OrderStatus::Failed);
    assert!(gateway.charges().is_empty(), "nothing is charged");
    assert_eq!(shop.stock(&sku("OOS-2")).await.expect("level").on_hand, 5);
    assert!(
        shop.cart(cart).await.expect("load").is_some(),
        "the cart stays"
    );
    let again = shop
        .place(request(cart, customer, "tok_approve", "oos"))
        .await;
    assert!(
        matches!(again, Err(CheckoutError::OutOfStock { order: o, .. }) if o == order),
        "a retry with the key returns the first result"
    );
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
    let (shop, gateway) = backend.storefront(StorefrontConfig {
        reservation_ttl: Duration::from_millis(1),
        ..StorefrontConfig::default()
    });
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
        Money::zero(Currency::Usd),
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
                        Ok(o) => return o.id,
                        Err(
                            CheckoutError::OutOfStock { order, .. }
                            | CheckoutError::PaymentDeclined { order, .. },
                        ) => {
                            return order;
                        }
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
                    order.id
                })
            },
        )
        .collect();
    let mut order_ids = Vec::new();
    for t in tasks {
        order_ids.push(
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
