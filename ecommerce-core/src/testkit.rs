//! The conformance suite: one async check per guarantee, run by every store implementation.
//!
//! A guarantee is written once, here, and every backend is held to it. A backend provides a
//! [`BackendFactory`] that makes a fresh, isolated [`Backend`] (its own schema, database or key
//! prefix, so checks run in parallel), and expands a suite macro to get one `#[tokio::test]`
//! per check. The checks are grouped by the store they hold to account, one module and one
//! macro per kind, so an adapter runs only the checks that concern it:
//!
//! | Kind | Macro | Guarantees of |
//! |------|-------|---------------|
//! | catalog | [`catalog_suite!`](crate::catalog_suite) | [`CatalogStore`] |
//! | carts | [`cart_suite!`](crate::cart_suite) | [`CartStore`] |
//! | inventory | [`inventory_suite!`](crate::inventory_suite) | [`InventoryStore`] |
//! | orders | [`order_suite!`](crate::order_suite) | [`OrderStore`], [`Outbox`], [`RecommendationStore`], [`AddressBook`] |
//! | search | [`search_suite!`](crate::search_suite) | [`ProductSearch`] |
//! | checkout | [`checkout_suite!`](crate::checkout_suite) | the saga over all stores: stock, money, fault injection |
//!
//! [`conformance_suite!`](crate::conformance_suite) runs every kind; a backend that implements
//! every store uses it:
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
//! Every check takes a whole [`Backend`] (many go through a [`Storefront`] over all of its
//! stores), so an adapter that implements one kind puts its store in that field, keeps the
//! in-memory stores for the rest, and runs that kind's suite only. A search adapter:
//!
//! ```ignore
//! struct MySearchFactory;
//!
//! #[async_trait::async_trait]
//! impl ecommerce_core::testkit::BackendFactory for MySearchFactory {
//!     async fn backend(&self) -> Option<ecommerce_core::testkit::Backend> {
//!         Some(ecommerce_core::testkit::Backend {
//!             search: std::sync::Arc::new(MySearch::new()),
//!             ..ecommerce_core::testkit::Backend::memory()
//!         })
//!     }
//! }
//!
//! ecommerce_core::search_suite!(MySearchFactory);
//! ```
//!
//! A factory returns `None` to skip (a server it needs is not configured); it prints why.
//! Each check panics with a message naming the broken guarantee.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;

use crate::address_book::AddressBook;
use crate::cart::{CartLimits, CartStore};
use crate::catalog::{CatalogStore, Product, Variant};
use crate::checkout::CheckoutRequest;
use crate::error::CheckoutError;
use crate::events::Outbox;
use crate::id::{CartId, CategoryId, CustomerId, IdempotencyKey, OrderId, ProductId, Sku};
use crate::inventory::{InventoryStore, ReservationLine};
use crate::memory::{
    MemoryAddressBook, MemoryCartStore, MemoryCatalog, MemoryInventory, MemoryOrderStore,
    MemoryPromotions, MemoryRecommendations, MemorySearch,
};
use crate::money::{Currency, Money};
use crate::order::{Order, OrderStatus, OrderStore};
use crate::payment::{PaymentMethod, TestGateway};
use crate::promotion::PromotionStore;
use crate::recommend::RecommendationStore;
use crate::search::ProductSearch;
use crate::storefront::{Storefront, StorefrontBuilder, StorefrontConfig};
use crate::unit::UnitOfWork;

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
    /// Customers' address books.
    pub address_book: Arc<dyn AddressBook>,
    /// Promotions, codes and their usage.
    pub promotions: Arc<dyn PromotionStore>,
    /// The unit of work of the orders and the inventory, when they share a database: the
    /// checkout then runs in two transactions (see [`crate::unit`]).
    pub unit: Option<Arc<dyn UnitOfWork>>,
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
            address_book: Arc::new(MemoryAddressBook::new()),
            promotions: Arc::new(MemoryPromotions::new()),
            unit: None,
            histories: 1_000,
            simulated_histories: 10_000,
            guard: None,
        }
    }

    /// A storefront over these stores and a fresh [`TestGateway`].
    pub fn storefront(&self, config: StorefrontConfig) -> (Storefront, Arc<TestGateway>) {
        let (builder, gateway) = self.builder(config);
        (builder.build().expect("every store is given"), gateway)
    }

    /// A storefront builder over these stores (and their unit of work) with a fresh
    /// [`TestGateway`], to add shipping, tax or search before building.
    pub fn builder(&self, config: StorefrontConfig) -> (StorefrontBuilder, Arc<TestGateway>) {
        let gateway = Arc::new(TestGateway::default());
        let mut builder = Storefront::builder()
            .catalog(self.catalog.clone())
            .carts(self.carts.clone())
            .inventory(self.inventory.clone())
            .orders_and_outbox(self.orders.clone(), self.outbox.clone())
            .payments(gateway.clone())
            .recommendations(self.recommendations.clone())
            .address_book(self.address_book.clone())
            .promotions(self.promotions.clone())
            .search(self.search.clone())
            .config(config);
        if let Some(unit) = &self.unit {
            builder = builder.unit_of_work(unit.clone());
        }
        (builder, gateway)
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

/// Expands to one test per check of the whole suite (every kind: catalog, carts,
/// inventory, orders, search and checkout), each with a fresh backend from the factory
/// expression. The calling crate needs `tokio` (macros, rt-multi-thread) as a dev-dependency.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::catalog_suite!($factory);
        $crate::cart_suite!($factory);
        $crate::inventory_suite!($factory);
        $crate::order_suite!($factory);
        $crate::search_suite!($factory);
        $crate::checkout_suite!($factory);
    };
    (@checks $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                $crate::testkit::run_check(async {
                    let factory = $factory;
                    match $crate::testkit::BackendFactory::backend(&factory).await {
                        Some(backend) => Some($crate::testkit::$check(backend)),
                        None => {
                            eprintln!("skipped: {}", stringify!($check));
                            None
                        }
                    }
                });
            }
        )*
    };
}

/// Runs one check of the suite: on four worker threads with 16 MiB stacks (debug builds keep
/// every future of a saga whole, and the checks drive hundreds of them at once), the check
/// itself on a worker. `setup` makes the backend and the check, or `None` to skip.
#[doc(hidden)]
pub fn run_check<S, C>(setup: S)
where
    S: std::future::Future<Output = Option<C>>,
    C: std::future::Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .thread_stack_size(16 * 1024 * 1024)
        .enable_all()
        .build()
        .expect("a test runtime");
    runtime.block_on(async {
        if let Some(check) = setup.await {
            if let Err(e) = tokio::spawn(check).await {
                match e.try_into_panic() {
                    Ok(panic) => std::panic::resume_unwind(panic),
                    Err(e) => panic!("the check did not finish: {e}"),
                }
            }
        }
    });
}

/// Expands to one test per catalog check (the [`CatalogStore`] guarantees), each
/// with a fresh backend from the factory expression. Needs `tokio` like
/// [`conformance_suite!`](crate::conformance_suite).
///
/// [`CatalogStore`]: crate::catalog::CatalogStore
#[macro_export]
macro_rules! catalog_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@checks $factory;
            catalog_rejects_invalid_products_and_changes_nothing,
            catalog_keeps_skus_unique,
            catalog_lists_published_products_by_page,
        );
    };
}

/// Expands to one test per cart check (the [`CartStore`] guarantees), each with a
/// fresh backend from the factory expression. Needs `tokio` like
/// [`conformance_suite!`](crate::conformance_suite).
///
/// [`CartStore`]: crate::cart::CartStore
#[macro_export]
macro_rules! cart_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@checks $factory;
            cart_save_is_compare_and_set,
            a_first_item_makes_its_guest_cart_in_one_write,
            cart_rules_reject_bad_input_and_change_nothing,
            cart_merge_adds_up_capped_and_happens_once,
        );
    };
}

/// Expands to one test per inventory check (the [`InventoryStore`] guarantees:
/// reservations, the ledger, no oversell under concurrency), each with a fresh backend from
/// the factory expression. Needs `tokio` like [`conformance_suite!`](crate::conformance_suite).
///
/// [`InventoryStore`]: crate::inventory::InventoryStore
#[macro_export]
macro_rules! inventory_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@checks $factory;
            reserve_is_all_or_nothing,
            shortages_hint_names_what_reserve_would_refuse,
            reserve_is_idempotent_per_order,
            commit_release_and_return_are_idempotent,
            expired_reservations_are_released,
            ledger_proves_stock_is_conserved,
            concurrent_reservations_never_oversell,
            bucketed_reservation_storm_never_deadlocks,
        );
    };
}

/// Expands to one test per order check: the [`OrderStore`], its [`Outbox`], the
/// [`RecommendationStore`] fed by placed orders and customers' [`AddressBook`]s; each with a
/// fresh backend from the factory expression. Needs `tokio` like
/// [`conformance_suite!`](crate::conformance_suite).
///
/// [`OrderStore`]: crate::order::OrderStore
/// [`Outbox`]: crate::events::Outbox
/// [`RecommendationStore`]: crate::recommend::RecommendationStore
/// [`AddressBook`]: crate::address_book::AddressBook
#[macro_export]
macro_rules! order_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@checks $factory;
            one_order_per_idempotency_key,
            order_update_is_compare_and_set,
            history_is_newest_first_with_cursor,
            outbox_delivers_every_event_at_least_once,
            co_purchases_count_once_per_order,
            address_book_keeps_each_customers_addresses,
        );
    };
}

/// Expands to one test per search check (the [`ProductSearch`] guarantees), each
/// with a fresh backend from the factory expression. Needs `tokio` like
/// [`conformance_suite!`](crate::conformance_suite).
///
/// [`ProductSearch`]: crate::search::ProductSearch
#[macro_export]
macro_rules! search_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@checks $factory;
            search_tolerates_typos_prefixes_and_counts_facets,
            search_follows_catalog_changes_and_facets_agree_with_filters,
            search_index_imports_and_rebuilds_from_the_catalog,
        );
    };
}

/// Expands to one test per checkout check: the saga over every store, exact
/// money, the oversell histories and the fault-injection simulation (sized by
/// [`Backend::histories`](crate::testkit::Backend::histories) and
/// [`Backend::simulated_histories`](crate::testkit::Backend::simulated_histories)); each with
/// a fresh backend from the factory expression. Needs `tokio` like
/// [`conformance_suite!`](crate::conformance_suite).
#[macro_export]
macro_rules! checkout_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@checks $factory;
            checkout_confirms_sells_stock_and_records,
            checkout_out_of_stock_names_skus_and_stores_nothing,
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
            payments_are_looked_up_by_id_once_known,
            simulation_stock_and_money_survive_faults,
            checkout_ships_and_taxes_to_an_address_and_charges_the_quote,
            checkout_refuses_bad_delivery_and_changes_nothing,
            promotion_uses_never_exceed_their_limit,
            promotion_limits_per_customer_code_and_budget,
            failed_and_cancelled_orders_give_their_uses_back,
            coupon_codes_refuse_bad_input_and_change_nothing,
            discounts_stack_and_are_recorded_per_line,
            recovery_reaches_uses_behind_pending_orders,
            a_sale_clears_its_claimed_cart_in_its_transaction,
            a_retry_answers_its_order_whatever_the_cart_holds_now,
            a_sale_commits_its_promotion_uses_in_its_transaction,
            buy_now_orders_one_item_once_beside_the_cart,
            a_cart_changed_elsewhere_is_checked_out_as_stored,
        );
    };
}

mod addresses;
mod carts;
mod catalog;
mod checkout;
mod inventory;
mod money;
mod orders;
mod pricing;
mod promotions;
pub mod proxy;
mod recommendations;
mod search;
mod simulation;

pub use addresses::*;
pub use carts::*;
pub use catalog::*;
pub use checkout::*;
pub use inventory::*;
pub use money::*;
pub use orders::*;
pub use pricing::*;
pub use promotions::*;
pub use recommendations::*;
pub use search::*;
pub use simulation::*;

// ----- fixtures -----

/// `place_order` with the placed order unwrapped: most checks read its fields.
trait Place {
    async fn place(&self, request: CheckoutRequest) -> Result<Order, CheckoutError>;
}

impl Place for Storefront {
    async fn place(&self, request: CheckoutRequest) -> Result<Order, CheckoutError> {
        // Boxed: a check awaits many checkouts, and debug builds keep each future whole.
        Box::pin(self.place_order(request))
            .await
            .map(crate::checkout::Placed::into_order)
    }
}

fn sku(s: &str) -> Sku {
    Sku::new(s).expect("valid test sku")
}

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
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
    Product::new(ProductId::new(), title, category())
        .with_description(format!("The {title}, built to last."))
        .with_brand("Acme")
        .with_variants(
            variants
                .iter()
                .map(|(s, price)| Variant::new(sku(s), usd(*price))),
        )
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
    CheckoutRequest::new(cart, customer, method(token), key(k))
}

fn shop(backend: &Backend) -> (Storefront, Arc<TestGateway>) {
    backend.storefront(StorefrontConfig::default())
}

fn shop_with_limits(backend: &Backend, max_line_quantity: u32, max_lines: usize) -> Storefront {
    let config = StorefrontConfig::default().with_cart_limits(
        CartLimits::default()
            .with_max_line_quantity(max_line_quantity)
            .with_max_lines(max_lines),
    );
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
            profile: Default::default(),
        }],
        total: usd(500),
        payment: None,
        failure: None,
        payment_method: None,
        money: Vec::new(),
        charge_started_at: None,
        contact: None,
        shipping_address: None,
        billing_address: None,
        quote: None,
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
