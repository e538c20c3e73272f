//! The storefront: one store of each kind composed behind the API applications call.
//!
//! ```
//! use std::sync::Arc;
//! use ecommerce_core::payment::TestGateway;
//! use ecommerce_core::Storefront;
//!
//! let shop = Storefront::in_memory(Arc::new(TestGateway::default()));
//! # let _ = shop;
//! ```
//!
//! Build one from other stores with [`Storefront::builder`]. The checkout saga, payment
//! callbacks, recovery and cancellation are in [`crate::checkout`].

use crate::address::Address;
use crate::address_book::{AddressBook, SavedAddress};
use crate::error::AddressBookError;
use crate::id::AddressId;
use crate::memory::{MemoryAddressBook, MemoryPromotions};
use crate::promotion::PromotionStore;
use crate::shipping::ShippingRates;
use crate::tax::{TaxProvider, TaxSettings};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::breaker::{BreakerConfig, CircuitBreaker, Permit};
use crate::cart::{Cart, CartLimits, CartStore};
use crate::catalog::{CatalogStore, Category, Offer, Page, Product, ProductCursor};
use crate::error::{
    CartError, CatalogError, Error, InventoryError, OrderError, SearchError, StoreError,
    ValidationError,
};
use crate::events::{DomainEvent, Outbox};
use crate::id::{CartId, CategoryId, CustomerId, OrderId, ProductId, Sku};
use crate::inventory::{InventoryStore, StockLevel};
use crate::memory::{
    MemoryCartStore, MemoryCatalog, MemoryInventory, MemoryOrderStore, MemoryRecommendations,
    MemorySearch,
};
use crate::order::{HistoryCursor, Order, OrderPatch, OrderStatus, OrderStore};
use crate::payment::PaymentGateway;
use crate::recommend::{AlsoBought, RecommendationStore};
use crate::search::{ProductSearch, SearchDocument, SearchQuery, SearchResults};
use crate::unit::UnitOfWork;

/// How many times a cart change is retried when a concurrent change wins the compare-and-set.
const CART_RETRIES: usize = 8;

/// How long a cart nobody touches stays remembered for its checkout
/// ([`StorefrontConfig::recent_carts`]).
const RECENT_CART_FOR: Duration = Duration::from_secs(60 * 60);

/// Settings of a storefront.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorefrontConfig {
    /// Per-line and per-cart limits.
    pub cart_limits: CartLimits,
    /// How long checkout holds stock for an order awaiting payment. Must be longer than the
    /// payment provider's timeout; a payment that succeeds after it re-takes the stock or is
    /// refunded. Default 5 minutes: long enough for a shopper to pass 3-D Secure, short
    /// enough that stock held by payments nobody finishes comes back soon.
    pub reservation_ttl: Duration,
    /// How many PENDING orders one `recover()` pass looks at.
    pub recovery_batch: usize,
    /// The longest a charge call to the gateway may take; a call still unanswered then is
    /// abandoned as a timeout (outcome unknown). An order whose charge was sent is failed on
    /// the shop's own grounds (stock, a lost cart claim) only once this has passed and the
    /// gateway knows no charge for it, so a failure never races a charge in flight.
    pub payment_timeout: Duration,
    /// Whether catalog prices include tax, and where taxes are rounded.
    pub tax: TaxSettings,
    /// How long a price quote holds (never longer than its shipping quote). Default 15
    /// minutes.
    pub quote_ttl: Duration,
    /// How long the automatic promotions' definitions read for a quote or a checkout are
    /// kept in memory and used again. Default zero: read every time. Their limits are not
    /// cached (a checkout reserves its uses in the store, exactly); a promotion saved through
    /// this storefront is seen at once, one saved elsewhere (another process) within this
    /// time.
    pub promotion_cache_ttl: Duration,
    /// How many carts, each as this storefront last stored or read it, a checkout may start
    /// from without reading its cart again. Used only when the unit of work claims the carts
    /// ([`crate::unit::UnitOfWork::claims_carts`]): the claim is a compare-and-set on the
    /// version the checkout started from, so a cart changed since (by another process)
    /// rolls the claim back, and the cart is read and checked out as stored. A refusal of a
    /// remembered cart is checked against the cart as stored too. Default 10,000; zero: every
    /// checkout reads its cart.
    pub recent_carts: u64,
}

impl Default for StorefrontConfig {
    fn default() -> Self {
        StorefrontConfig {
            cart_limits: CartLimits::default(),
            reservation_ttl: Duration::from_secs(5 * 60),
            recovery_batch: 500,
            payment_timeout: Duration::from_secs(30),
            tax: TaxSettings::default(),
            quote_ttl: Duration::from_secs(15 * 60),
            promotion_cache_ttl: Duration::ZERO,
            recent_carts: 10_000,
        }
    }
}

impl StorefrontConfig {
    /// Sets the per-line and per-cart limits.
    pub fn with_cart_limits(mut self, cart_limits: CartLimits) -> Self {
        self.cart_limits = cart_limits;
        self
    }

    /// Sets how long checkout holds stock for an order awaiting payment.
    pub fn with_reservation_ttl(mut self, reservation_ttl: Duration) -> Self {
        self.reservation_ttl = reservation_ttl;
        self
    }

    /// Sets how many PENDING orders one `recover()` pass looks at.
    pub fn with_recovery_batch(mut self, recovery_batch: usize) -> Self {
        self.recovery_batch = recovery_batch;
        self
    }

    /// Sets the longest a charge call to the gateway may take.
    pub fn with_payment_timeout(mut self, payment_timeout: Duration) -> Self {
        self.payment_timeout = payment_timeout;
        self
    }

    /// Sets whether catalog prices include tax, and where taxes are rounded.
    pub fn with_tax(mut self, tax: TaxSettings) -> Self {
        self.tax = tax;
        self
    }

    /// Sets how long a price quote holds.
    pub fn with_quote_ttl(mut self, quote_ttl: Duration) -> Self {
        self.quote_ttl = quote_ttl;
        self
    }

    /// Sets how long the automatic promotions' definitions are kept in memory (see
    /// [`StorefrontConfig::promotion_cache_ttl`]).
    pub fn with_promotion_cache_ttl(mut self, ttl: Duration) -> Self {
        self.promotion_cache_ttl = ttl;
        self
    }

    /// Sets how many carts a checkout may start from as this storefront last saw them (see
    /// [`StorefrontConfig::recent_carts`]).
    pub fn with_recent_carts(mut self, carts: u64) -> Self {
        self.recent_carts = carts;
        self
    }
}

/// The stores of one shop. Cheap to clone (every store is an `Arc`).
#[derive(Clone)]
pub struct Storefront {
    pub(crate) catalog: Arc<dyn CatalogStore>,
    pub(crate) carts: Arc<dyn CartStore>,
    pub(crate) inventory: Arc<dyn InventoryStore>,
    pub(crate) orders: Arc<dyn OrderStore>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) payments: Arc<dyn PaymentGateway>,
    pub(crate) recommendations: Arc<dyn RecommendationStore>,
    pub(crate) search: Arc<dyn ProductSearch>,
    /// Customers' saved addresses.
    pub(crate) address_book: Arc<dyn AddressBook>,
    /// Shipping methods and rates; `None`: nothing is shipped.
    pub(crate) shipping: Option<Arc<dyn ShippingRates>>,
    /// Tax rates; `None`: nothing is taxed.
    pub(crate) tax: Option<Arc<dyn TaxProvider>>,
    /// Orders and stock changed together, when they share a database.
    pub(crate) unit: Option<Arc<dyn UnitOfWork>>,
    /// Whether the unit also claims the cart store's carts.
    pub(crate) unit_claims_carts: bool,
    /// Promotions, codes and their usage.
    pub(crate) promotions: Arc<dyn PromotionStore>,
    /// Whether the unit also reserves promotion uses.
    pub(crate) unit_holds_promotions: bool,
    /// The automatic promotions as last read, for [`StorefrontConfig::promotion_cache_ttl`].
    pub(crate) automatic_promotions: Arc<crate::checkout::PromotionCache>,
    /// SKUs the checkout's stock hint recently saw with plenty of stock (see
    /// `checkout::PLENTY`): not asked about again for a second.
    pub(crate) plenty: moka::sync::Cache<crate::id::Sku, ()>,
    /// Carts as this storefront last stored or read them, for their checkout to start from
    /// (see [`StorefrontConfig::recent_carts`]); empty unless the unit claims the carts.
    pub(crate) recent_carts: moka::sync::Cache<CartId, Cart>,
    pub(crate) config: StorefrontConfig,
    /// Watches the inventory for the reads a page can do without (stock levels).
    pub(crate) inventory_breaker: Arc<CircuitBreaker>,
    /// Watches the recommendations store.
    pub(crate) recommendations_breaker: Arc<CircuitBreaker>,
}

impl fmt::Debug for Storefront {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storefront")
            .field("catalog", &self.catalog)
            .field("carts", &self.carts)
            .field("inventory", &self.inventory)
            .field("orders", &self.orders)
            .field("payments", &self.payments)
            .field("unit", &self.unit)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Products written and indexed per search index write by [`Storefront::import`] (and read
/// per page by [`Storefront::rebuild_search_index`]).
const IMPORT_BATCH: usize = 500;

/// A product to import with [`Storefront::import`], and the units its variants receive.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ImportItem {
    /// The product.
    pub product: Product,
    /// Units received per SKU of the product (variants not named receive none).
    pub stock: Vec<(Sku, u32)>,
}

impl ImportItem {
    /// The product, with no stock.
    pub fn new(product: Product) -> Self {
        ImportItem {
            product,
            stock: Vec::new(),
        }
    }

    /// Adds units of one of the product's SKUs.
    pub fn with_stock(mut self, sku: Sku, units: u32) -> Self {
        self.stock.push((sku, units));
        self
    }
}

/// What [`Storefront::import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImportReport {
    /// Products written to the catalog and indexed.
    pub products: usize,
    /// Units received into stock.
    pub units: u64,
}

/// The result of merging a guest cart on login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedCart {
    /// The customer's cart after the merge.
    pub cart: Cart,
    /// SKUs that did not fit in full (per-line or per-cart limit, or another currency).
    pub clipped: Vec<Sku>,
}

/// Builds a [`Storefront`] from one store of each kind. Cloning it shares the stores: two
/// storefronts built from clones work on the same data.
#[derive(Clone, Default)]
pub struct StorefrontBuilder {
    catalog: Option<Arc<dyn CatalogStore>>,
    carts: Option<Arc<dyn CartStore>>,
    inventory: Option<Arc<dyn InventoryStore>>,
    orders: Option<(Arc<dyn OrderStore>, Arc<dyn Outbox>)>,
    payments: Option<Arc<dyn PaymentGateway>>,
    recommendations: Option<Arc<dyn RecommendationStore>>,
    search: Option<Arc<dyn ProductSearch>>,
    address_book: Option<Arc<dyn AddressBook>>,
    shipping: Option<Arc<dyn ShippingRates>>,
    tax: Option<Arc<dyn TaxProvider>>,
    unit: Option<Arc<dyn UnitOfWork>>,
    unit_claims_carts: bool,
    promotions: Option<Arc<dyn PromotionStore>>,
    unit_holds_promotions: bool,
    memory_defaults: bool,
    config: StorefrontConfig,
    inventory_breaker: Option<Arc<CircuitBreaker>>,
    recommendations_breaker: Option<Arc<CircuitBreaker>>,
}

impl fmt::Debug for StorefrontBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorefrontBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl StorefrontBuilder {
    /// The catalog store (required).
    pub fn catalog(mut self, store: Arc<dyn CatalogStore>) -> Self {
        self.catalog = Some(store);
        self
    }

    /// The cart store (required).
    ///
    /// Set after a [`StorefrontBuilder::unit_of_work`], the unit keeps placing orders with
    /// their stock but no longer claims carts: those are in this store.
    pub fn carts(mut self, store: Arc<dyn CartStore>) -> Self {
        self.carts = Some(store);
        self.unit_claims_carts = false;
        self
    }

    /// The inventory store (required).
    ///
    /// Drops a [`StorefrontBuilder::unit_of_work`] given before: it spans the stores it was
    /// made for.
    pub fn inventory(mut self, store: Arc<dyn InventoryStore>) -> Self {
        self.inventory = Some(store);
        self.unit = None;
        self
    }

    /// The order store (required), which keeps its own outbox: the events of an order are
    /// written with it. Every store of this workspace is one.
    ///
    /// Drops a [`StorefrontBuilder::unit_of_work`] given before: it spans the stores it was
    /// made for.
    pub fn orders<S: OrderStore + Outbox>(self, store: Arc<S>) -> Self {
        let outbox: Arc<dyn Outbox> = store.clone();
        self.orders_and_outbox(store, outbox)
    }

    /// The order store and the outbox as two objects (instead of
    /// [`StorefrontBuilder::orders`]): a wrapper around the order store, say, that leaves the
    /// outbox as it is.
    ///
    /// Drops a [`StorefrontBuilder::unit_of_work`] given before.
    pub fn orders_and_outbox(
        mut self,
        store: Arc<dyn OrderStore>,
        outbox: Arc<dyn Outbox>,
    ) -> Self {
        self.orders = Some((store, outbox));
        self.unit = None;
        self
    }

    /// The payment gateway (required).
    pub fn payments(mut self, gateway: Arc<dyn PaymentGateway>) -> Self {
        self.payments = Some(gateway);
        self
    }

    /// The recommendation store (required, or see [`StorefrontBuilder::with_memory_defaults`]).
    pub fn recommendations(mut self, store: Arc<dyn RecommendationStore>) -> Self {
        self.recommendations = Some(store);
        self
    }

    /// The search engine (required, or see [`StorefrontBuilder::with_memory_defaults`]).
    pub fn search(mut self, engine: Arc<dyn ProductSearch>) -> Self {
        self.search = Some(engine);
        self
    }

    /// The customers' address books (required, or see
    /// [`StorefrontBuilder::with_memory_defaults`]).
    pub fn address_book(mut self, book: Arc<dyn AddressBook>) -> Self {
        self.address_book = Some(book);
        self
    }

    /// Shipping rates ([`crate::shipping::ZoneTable`] or an adapter of your own). With them
    /// every checkout needs a [`crate::checkout::Delivery`] with a chosen
    /// [`crate::shipping::ShippingQuote`] (see [`Storefront::shipping_quotes`]).
    pub fn shipping(mut self, rates: Arc<dyn ShippingRates>) -> Self {
        self.shipping = Some(rates);
        self
    }

    /// Tax rates ([`crate::tax::TaxTable`] or a tax service's adapter); set the price mode
    /// and rounding in [`StorefrontConfig::tax`]. With them every checkout needs a
    /// [`crate::checkout::Delivery`]: tax goes by the shipping address.
    pub fn tax(mut self, provider: Arc<dyn TaxProvider>) -> Self {
        self.tax = Some(provider);
        self
    }

    /// Promotions, coupon codes and their usage (required, unless a
    /// [unit of work](UnitOfWork::promotions) brings its own; or see
    /// [`StorefrontBuilder::with_memory_defaults`]). Set after a unit of work, the unit keeps placing orders and this store reserves their
    /// uses, a step of its own.
    pub fn promotions(mut self, store: Arc<dyn PromotionStore>) -> Self {
        self.promotions = Some(store);
        self.unit_holds_promotions = false;
        self
    }

    /// Orders and stock in one database, changed together: the checkout then places an
    /// order and takes its stock in one transaction, and confirms it and sells the stock in
    /// another (see [`crate::unit`]). Give the unit of the same database as the order store
    /// and the inventory given to this builder, after them: setting either store again drops
    /// the unit (stock behind a Redis gate must not be taken around the gate). Without one
    /// the checkout runs step by step.
    ///
    /// A unit that [claims carts](UnitOfWork::claims_carts) also claims the cart in the first
    /// transaction and records there that the charge is about to be sent; give it after the
    /// cart store of the same database.
    ///
    /// A unit with [a promotion store](UnitOfWork::promotions) brings it: the storefront
    /// keeps its promotions there, and the unit reserves an order's uses in the transaction
    /// that places it (a promotion store given before is replaced).
    pub fn unit_of_work(mut self, unit: Arc<dyn UnitOfWork>) -> Self {
        self.unit_claims_carts = unit.claims_carts();
        if let Some(store) = unit.promotions() {
            self.promotions = Some(store);
            self.unit_holds_promotions = true;
        } else {
            self.unit_holds_promotions = false;
        }
        self.unit = Some(unit);
        self
    }

    /// Keeps in memory the search index, the recommendations, the address books and the
    /// promotions when no store is given for them: what they hold is lost when the process
    /// ends. For tests, demos and shops that index and count elsewhere; without it `build`
    /// asks for each of them, so a persistent shop never falls back to memory by omission.
    pub fn with_memory_defaults(mut self) -> Self {
        self.memory_defaults = true;
        self
    }

    /// Settings.
    pub fn config(mut self, config: StorefrontConfig) -> Self {
        self.config = config;
        self
    }

    /// Watches the inventory and the recommendations store with this breaker (for
    /// [`Storefront::stock`] and [`Storefront::also_bought`]), shared with other stores on
    /// the same database (see [`crate::catalog_cache::CachingCatalog::with_shared_breaker`]).
    /// Without it each has a breaker of its own.
    pub fn breaker(mut self, breaker: Arc<CircuitBreaker>) -> Self {
        self.inventory_breaker = Some(breaker.clone());
        self.recommendations_breaker = Some(breaker);
        self
    }

    /// The storefront.
    ///
    /// # Errors
    /// [`ValidationError::Invalid`] naming the first required store that is missing.
    pub fn build(self) -> Result<Storefront, ValidationError> {
        fn required<T>(v: Option<T>, field: &'static str) -> Result<T, ValidationError> {
            v.ok_or(ValidationError::Invalid {
                field,
                reason: "no store given to the builder".into(),
            })
        }
        let memory = self.memory_defaults;
        fn or_memory<T: ?Sized>(
            v: Option<Arc<T>>,
            memory: bool,
            field: &'static str,
            make: impl FnOnce() -> Arc<T>,
        ) -> Result<Arc<T>, ValidationError> {
            match v {
                Some(v) => Ok(v),
                None if memory => Ok(make()),
                None => Err(ValidationError::Invalid {
                    field,
                    reason:
                        "no store given to the builder (with_memory_defaults keeps it in memory)"
                            .into(),
                }),
            }
        }
        let (orders, outbox) = required(self.orders, "orders")?;
        Ok(Storefront {
            catalog: required(self.catalog, "catalog")?,
            carts: required(self.carts, "carts")?,
            inventory: required(self.inventory, "inventory")?,
            orders,
            outbox,
            payments: required(self.payments, "payments")?,
            recommendations: or_memory(self.recommendations, memory, "recommendations", || {
                Arc::new(MemoryRecommendations::new()) as Arc<dyn RecommendationStore>
            })?,
            search: or_memory(self.search, memory, "search", || {
                Arc::new(MemorySearch::new()) as Arc<dyn ProductSearch>
            })?,
            address_book: or_memory(self.address_book, memory, "address_book", || {
                Arc::new(MemoryAddressBook::new()) as Arc<dyn AddressBook>
            })?,
            shipping: self.shipping,
            tax: self.tax,
            unit_claims_carts: self.unit.is_some() && self.unit_claims_carts,
            unit_holds_promotions: self.unit.is_some() && self.unit_holds_promotions,
            promotions: or_memory(self.promotions, memory, "promotions", || {
                Arc::new(MemoryPromotions::new()) as Arc<dyn PromotionStore>
            })?,
            unit: self.unit,
            automatic_promotions: Arc::new(crate::checkout::PromotionCache::new(
                self.config.promotion_cache_ttl,
            )),
            plenty: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(crate::checkout::PLENTY_FOR)
                .build(),
            recent_carts: moka::sync::Cache::builder()
                .max_capacity(self.config.recent_carts)
                .time_to_idle(RECENT_CART_FOR)
                .build(),
            config: self.config,
            inventory_breaker: self.inventory_breaker.unwrap_or_else(|| {
                Arc::new(CircuitBreaker::new("inventory", BreakerConfig::default()))
            }),
            recommendations_breaker: self.recommendations_breaker.unwrap_or_else(|| {
                Arc::new(CircuitBreaker::new(
                    "recommendations",
                    BreakerConfig::default(),
                ))
            }),
        })
    }
}

impl Storefront {
    /// A builder.
    pub fn builder() -> StorefrontBuilder {
        StorefrontBuilder::default()
    }

    /// A shop with every store in memory and this payment gateway.
    pub fn in_memory(payments: Arc<dyn PaymentGateway>) -> Storefront {
        Storefront::builder()
            .catalog(Arc::new(MemoryCatalog::new()))
            .carts(Arc::new(MemoryCartStore::new()))
            .inventory(Arc::new(MemoryInventory::new()))
            .orders(Arc::new(MemoryOrderStore::new()))
            .payments(payments)
            .with_memory_defaults()
            .build()
            .expect("every store is given")
    }

    /// The catalog store.
    pub fn catalog(&self) -> &Arc<dyn CatalogStore> {
        &self.catalog
    }

    /// The cart store.
    pub fn carts(&self) -> &Arc<dyn CartStore> {
        &self.carts
    }

    /// The inventory store.
    pub fn inventory(&self) -> &Arc<dyn InventoryStore> {
        &self.inventory
    }

    /// The order store.
    pub fn orders(&self) -> &Arc<dyn OrderStore> {
        &self.orders
    }

    /// The outbox of the order store (give it to an [`crate::events::OutboxRelay`]).
    pub fn outbox(&self) -> &Arc<dyn Outbox> {
        &self.outbox
    }

    /// The payment gateway.
    pub fn payments(&self) -> &Arc<dyn PaymentGateway> {
        &self.payments
    }

    /// The settings.
    pub fn config(&self) -> &StorefrontConfig {
        &self.config
    }

    // ----- catalog -----

    /// Creates or replaces a category.
    ///
    /// # Errors
    /// [`CatalogError`].
    pub async fn upsert_category(&self, category: Category) -> Result<(), CatalogError> {
        self.catalog.upsert_category(category).await
    }

    /// Creates or replaces a product and (re)indexes it for search; an unpublished product is
    /// removed from the index.
    ///
    /// # Errors
    /// [`CatalogError`]; a search index failure is reported as [`CatalogError::Store`] after
    /// the catalog was written (index again with [`Storefront::reindex_product`]).
    pub async fn upsert_product(&self, product: Product) -> Result<(), CatalogError> {
        let id = product.id;
        self.catalog.upsert_product(product).await?;
        self.reindex_product(id).await
    }

    /// Imports products with their stock: writes each product to the catalog, receives its
    /// units, and indexes the products for search a batch at a time (rather than one index
    /// write per product, as [`Storefront::upsert_product`] and
    /// [`Storefront::receive_stock`] do). A product already in the catalog is replaced and
    /// its stock grows by the units given. `progress` is called with the number of products
    /// imported so far after each one.
    ///
    /// # Errors
    /// [`Error::Validation`] for an item whose stock names a SKU the product does not have
    /// (nothing of it is written; the items before it are imported),
    /// [`Error::Catalog`] (an invalid product, a store failure), [`Error::Inventory`],
    /// [`Error::Search`]. Importing again after a failure is safe for the catalog and the
    /// index; stock is received again for the items that were imported.
    pub async fn import<I>(
        &self,
        items: I,
        mut progress: impl FnMut(usize) + Send,
    ) -> Result<ImportReport, Error>
    where
        I: IntoIterator<Item = ImportItem>,
        I::IntoIter: Send,
    {
        let mut report = ImportReport::default();
        let mut batch = Vec::with_capacity(IMPORT_BATCH);
        for item in items {
            for (sku, _) in &item.stock {
                if !item.product.variants.iter().any(|v| &v.sku == sku) {
                    return Err(ValidationError::Invalid {
                        field: "stock",
                        reason: format!("{sku} is not a variant of product {}", item.product.id),
                    }
                    .into());
                }
            }
            self.catalog.upsert_product(item.product.clone()).await?;
            for (sku, units) in &item.stock {
                if *units > 0 {
                    self.inventory.receive(sku, *units).await?;
                    report.units += u64::from(*units);
                }
            }
            let (in_stock, sales) = self.stock_of(&item.product).await?;
            let in_stock = in_stock || item.stock.iter().any(|(_, units)| *units > 0);
            batch.extend(
                SearchDocument::from_product(&item.product, in_stock).map(|d| d.with_sales(sales)),
            );
            report.products += 1;
            progress(report.products);
            if batch.len() >= IMPORT_BATCH {
                self.search.index(std::mem::take(&mut batch)).await?;
            }
        }
        if !batch.is_empty() {
            self.search.index(batch).await?;
        }
        Ok(report)
    }

    /// Rebuilds the search index from the catalog: every published product with its in-stock
    /// flag, and nothing else (products no longer in the catalog leave the index). For a new
    /// or lost index; returns how many products it holds.
    ///
    /// # Errors
    /// [`Error::Catalog`], [`Error::Search`].
    pub async fn rebuild_search_index(&self) -> Result<usize, Error> {
        let mut documents = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .catalog
                .list_products(None, after, IMPORT_BATCH)
                .await?;
            for product in &page.items {
                let (in_stock, sales) = self.stock_of(product).await?;
                documents.extend(
                    SearchDocument::from_product(product, in_stock).map(|d| d.with_sales(sales)),
                );
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let indexed = documents.len();
        self.search.replace_all(documents).await?;
        Ok(indexed)
    }

    /// Whether any variant of the product has units on hand, and the units sold of all of
    /// them (the search engine ranks equal matches by sales).
    async fn stock_of(&self, product: &Product) -> Result<(bool, u64), CatalogError> {
        let (mut in_stock, mut sold) = (false, 0u64);
        for v in &product.variants {
            match self.inventory.level(&v.sku).await {
                Ok(level) => {
                    in_stock |= level.on_hand > 0;
                    sold += u64::from(level.sold);
                }
                Err(InventoryError::UnknownSku(_)) => {}
                Err(InventoryError::Store(e)) => return Err(e.into()),
                Err(other) => return Err(search_store_error(other)),
            }
        }
        Ok((in_stock, sold))
    }

    /// Re-reads a product and its stock and updates the search index.
    ///
    /// # Errors
    /// [`CatalogError::ProductNotFound`], [`CatalogError::Store`].
    pub async fn reindex_product(&self, id: ProductId) -> Result<(), CatalogError> {
        let product = self
            .catalog
            .product(id)
            .await?
            .ok_or(CatalogError::ProductNotFound(id))?;
        let (in_stock, sales) = self.stock_of(&product).await?;
        let result = match SearchDocument::from_product(&product, in_stock) {
            Some(doc) => self.search.index(vec![doc.with_sales(sales)]).await,
            None => self.search.remove(id).await,
        };
        result.map_err(search_store_error)
    }

    /// A product, or `Ok(None)`.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    pub async fn product(&self, id: ProductId) -> Result<Option<Product>, CatalogError> {
        self.catalog.product(id).await
    }

    /// The product one of whose variants has this SKU, or `Ok(None)`.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    pub async fn product_by_sku(&self, sku: &Sku) -> Result<Option<Product>, CatalogError> {
        let offers = self.catalog.offers(std::slice::from_ref(sku)).await?;
        match offers.get(sku) {
            Some(offer) => self.catalog.product(offer.product).await,
            None => Ok(None),
        }
    }

    /// Published products, optionally of one category, by page.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    pub async fn products(
        &self,
        category: Option<CategoryId>,
        after: Option<ProductCursor>,
        limit: usize,
    ) -> Result<Page<Product, ProductCursor>, CatalogError> {
        self.catalog
            .list_products(category, after, limit.clamp(1, 100))
            .await
    }

    /// Since when the catalog has been served from stale data because its store fails
    /// (with a [`crate::catalog_cache::CachingCatalog`]), or `None` when it is fresh. Show it
    /// ("prices may have changed") rather than hiding the catalog.
    pub fn catalog_stale_since(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.catalog.stale_since()
    }

    /// Every category.
    ///
    /// # Errors
    /// [`CatalogError::Store`].
    pub async fn categories(&self) -> Result<Vec<Category>, CatalogError> {
        self.catalog.categories().await
    }

    /// Searches the catalog.
    ///
    /// # Errors
    /// [`SearchError`].
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchResults, SearchError> {
        self.search.search(query).await
    }

    /// "Customers who bought this also bought": the `k` SKUs most often bought with `sku`.
    /// Once the recommendations store is seen down, this fails at once (a circuit breaker)
    /// until a probe finds it back, so a page can leave the box out without waiting.
    ///
    /// # Errors
    /// [`StoreError`]; [`StoreError::Unavailable`] at once while the store is down.
    pub async fn also_bought(&self, sku: &Sku, k: usize) -> Result<Vec<AlsoBought>, StoreError> {
        match self.recommendations_breaker.permit() {
            Permit::Call => {}
            Permit::Probe => {
                let (store, sku) = (self.recommendations.clone(), sku.clone());
                self.recommendations_breaker.probe_in_background(
                    async move { store.also_bought(&sku, k).await },
                    StoreError::is_transient,
                );
                return Err(down("recommendations"));
            }
            Permit::Refused => return Err(down("recommendations")),
        }
        let result = self.recommendations.also_bought(sku, k).await;
        self.recommendations_breaker
            .record(&result, StoreError::is_transient);
        result
    }

    // ----- stock -----

    /// Receives units of a SKU into stock and refreshes the product's in-stock flag in search.
    ///
    /// # Errors
    /// [`InventoryError`].
    pub async fn receive_stock(
        &self,
        sku: &Sku,
        quantity: u32,
    ) -> Result<StockLevel, InventoryError> {
        let level = self.inventory.receive(sku, quantity).await?;
        if let Ok(offers) = self.catalog.offers(std::slice::from_ref(sku)).await {
            if let Some(offer) = offers.get(sku) {
                // The stock is received either way; a stale in-stock flag is refreshed by the
                // next reindex.
                let _ = self.reindex_product(offer.product).await;
            }
        }
        Ok(level)
    }

    /// The stock of a SKU. Once the inventory is seen down, this fails at once (a circuit
    /// breaker) until a probe finds it back, so a product page can show "availability
    /// unknown" without waiting.
    ///
    /// # Errors
    /// [`InventoryError`]; a transient [`InventoryError::Store`] at once while the inventory
    /// is down.
    pub async fn stock(&self, sku: &Sku) -> Result<StockLevel, InventoryError> {
        match self.inventory_breaker.permit() {
            Permit::Call => {}
            Permit::Probe => {
                let (store, sku) = (self.inventory.clone(), sku.clone());
                self.inventory_breaker.probe_in_background(
                    async move { store.level(&sku).await },
                    InventoryError::is_transient,
                );
                return Err(down("inventory").into());
            }
            Permit::Refused => return Err(down("inventory").into()),
        }
        let result = self.inventory.level(sku).await;
        self.inventory_breaker
            .record(&result, InventoryError::is_transient);
        result
    }

    // ----- carts -----

    /// Creates an empty guest cart; its id is the guest's cart token.
    ///
    /// # Errors
    /// [`CartError::Store`].
    pub async fn create_guest_cart(&self) -> Result<Cart, CartError> {
        self.remembered(self.carts.save(&Cart::new_guest()).await)
    }

    /// Creates a guest cart holding `quantity` units of a SKU at its catalog price, in one
    /// write: a shopper's first add to cart, without the empty cart's own write and the
    /// read and write of [`Storefront::add_item`].
    ///
    /// # Errors
    /// As [`Storefront::add_item`] (but [`CartError::NotFound`]); nothing is stored on error.
    pub async fn create_guest_cart_with(
        &self,
        sku: &Sku,
        quantity: u32,
    ) -> Result<Cart, CartError> {
        let (cart, _offer) = self
            .create_guest_cart_as(CartId::new(), sku, quantity)
            .await?;
        self.remember_cart(&cart);
        Ok(cart)
    }

    /// [`Storefront::create_guest_cart_with`] under a given id, with the offer its line was
    /// priced at: [`CartError::VersionConflict`] when a cart of that id exists.
    pub(crate) async fn create_guest_cart_as(
        &self,
        id: CartId,
        sku: &Sku,
        quantity: u32,
    ) -> Result<(Cart, Offer), CartError> {
        let offer = self.offer(sku).await?;
        let mut cart = Cart::new_guest_as(id);
        cart.add(&offer, quantity, &self.config.cart_limits)?;
        Ok((self.carts.save(&cart).await?, offer))
    }

    /// The persistent cart of a customer, created empty if it does not exist.
    ///
    /// # Errors
    /// [`CartError::Store`].
    pub async fn customer_cart(&self, customer: CustomerId) -> Result<Cart, CartError> {
        let id = CartId::for_customer(customer);
        for _ in 0..CART_RETRIES {
            if let Some(cart) = self.carts.load(id).await? {
                self.remember_cart(&cart);
                return Ok(cart);
            }
            match self.carts.save(&Cart::new_for_customer(customer)).await {
                Err(CartError::VersionConflict { .. }) => continue,
                other => return self.remembered(other),
            }
        }
        Err(CartError::VersionConflict { cart: id })
    }

    /// A cart, or `Ok(None)`.
    ///
    /// # Errors
    /// [`CartError::Store`].
    pub async fn cart(&self, id: CartId) -> Result<Option<Cart>, CartError> {
        let cart = self.carts.load(id).await?;
        if let Some(cart) = &cart {
            self.remember_cart(cart);
        }
        Ok(cart)
    }

    /// Adds units of a SKU at its catalog price.
    ///
    /// # Errors
    /// [`CartError::NotFound`], [`CartError::UnknownSku`], [`CartError::Unavailable`],
    /// [`CartError::InvalidQuantity`], [`CartError::TooManyLines`],
    /// [`CartError::CurrencyMismatch`]; nothing changes on error.
    pub async fn add_item(
        &self,
        cart: CartId,
        sku: &Sku,
        quantity: u32,
    ) -> Result<Cart, CartError> {
        let offer = self.offer(sku).await?;
        let limits = self.config.cart_limits;
        self.change_cart(cart, |c| c.add(&offer, quantity, &limits))
            .await
    }

    /// Sets the units of a SKU; 0 removes the line.
    ///
    /// # Errors
    /// As [`Storefront::add_item`].
    pub async fn set_quantity(
        &self,
        cart: CartId,
        sku: &Sku,
        quantity: u32,
    ) -> Result<Cart, CartError> {
        let limits = self.config.cart_limits;
        if quantity == 0 {
            return self.remove_item(cart, sku).await;
        }
        let offer = self.offer(sku).await?;
        self.change_cart(cart, |c| c.set_quantity(&offer, quantity, &limits))
            .await
    }

    /// Removes the line of a SKU.
    ///
    /// # Errors
    /// [`CartError::NotFound`], [`CartError::LineNotFound`].
    pub async fn remove_item(&self, cart: CartId, sku: &Sku) -> Result<Cart, CartError> {
        self.change_cart(cart, |c| c.remove(sku)).await
    }

    /// On login: merges the guest cart into the customer's persistent cart (same SKU adds up,
    /// capped by the per-line limit) and deletes the guest cart, atomically. Calling it again
    /// with the same guest cart finds it gone and returns the customer's cart unchanged.
    ///
    /// # Errors
    /// [`CartError::NotAGuestCart`], [`CartError::Store`].
    pub async fn merge_guest_cart(
        &self,
        guest: CartId,
        customer: CustomerId,
    ) -> Result<MergedCart, CartError> {
        let limits = self.config.cart_limits;
        for _ in 0..CART_RETRIES {
            let Some(guest_cart) = self.carts.load(guest).await? else {
                return Ok(MergedCart {
                    cart: self.customer_cart(customer).await?,
                    clipped: Vec::new(),
                });
            };
            if guest_cart.customer.is_some() {
                return Err(CartError::NotAGuestCart(guest));
            }
            let mut mine = self
                .carts
                .load(CartId::for_customer(customer))
                .await?
                .unwrap_or_else(|| Cart::new_for_customer(customer));
            if mine.has_merged(guest) {
                // A merge that was interrupted after the customer's cart was written: finish
                // it by removing the guest cart, without adding its lines again.
                self.carts.delete(guest).await?;
                self.recent_carts.invalidate(&guest);
                return Ok(MergedCart {
                    cart: mine,
                    clipped: Vec::new(),
                });
            }
            let clipped = mine.merge_from(&guest_cart, &limits);
            match self
                .carts
                .save_merged(&mine, guest_cart.id, guest_cart.version)
                .await
            {
                Ok(cart) => {
                    self.recent_carts.invalidate(&guest);
                    self.remember_cart(&cart);
                    return Ok(MergedCart { cart, clipped });
                }
                Err(CartError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(CartError::VersionConflict { cart: guest })
    }

    async fn offer(&self, sku: &Sku) -> Result<Offer, CartError> {
        self.catalog
            .offers(std::slice::from_ref(sku))
            .await?
            .remove(sku)
            .ok_or_else(|| CartError::UnknownSku(sku.clone()))
    }

    /// Applies a rule to a cart with compare-and-set, retrying when a concurrent change won.
    pub(crate) async fn change_cart(
        &self,
        id: CartId,
        rule: impl Fn(&mut Cart) -> Result<(), CartError>,
    ) -> Result<Cart, CartError> {
        for _ in 0..CART_RETRIES {
            let mut cart = self.carts.load(id).await?.ok_or(CartError::NotFound(id))?;
            rule(&mut cart)?;
            match self.carts.save(&cart).await {
                Err(CartError::VersionConflict { .. }) => continue,
                other => return self.remembered(other),
            }
        }
        Err(CartError::VersionConflict { cart: id })
    }

    /// Remembers a cart as this storefront just stored or read it, for its checkout to
    /// start from (see [`StorefrontConfig::recent_carts`]).
    pub(crate) fn remember_cart(&self, cart: &Cart) {
        if self.unit_claims_carts && self.config.recent_carts > 0 {
            self.recent_carts.insert(cart.id, cart.clone());
        }
    }

    /// [`Storefront::remember_cart`] of a cart just stored.
    fn remembered(&self, stored: Result<Cart, CartError>) -> Result<Cart, CartError> {
        if let Ok(cart) = &stored {
            self.remember_cart(cart);
        }
        stored
    }

    // ----- orders -----

    /// An order, or `Ok(None)`.
    ///
    /// # Errors
    /// [`OrderError::Store`].
    pub async fn order(&self, id: OrderId) -> Result<Option<Order>, OrderError> {
        self.orders.get(id).await
    }

    /// A customer's orders, newest first, by page.
    ///
    /// # Errors
    /// [`OrderError::Store`].
    pub async fn order_history(
        &self,
        customer: CustomerId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Page<Order, HistoryCursor>, OrderError> {
        self.orders.history(customer, before, limit).await
    }

    // ----- address book -----

    /// Saves an address in the customer's book (an equal address already there is returned
    /// as it is).
    ///
    /// # Errors
    /// [`AddressBookError::Full`] past [`crate::address_book::MAX_SAVED_ADDRESSES`] (nothing
    /// saved), [`AddressBookError::Store`].
    pub async fn save_address(
        &self,
        customer: CustomerId,
        address: Address,
    ) -> Result<SavedAddress, AddressBookError> {
        self.address_book.save(customer, address).await
    }

    /// The customer's saved addresses, newest first.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn addresses(&self, customer: CustomerId) -> Result<Vec<SavedAddress>, StoreError> {
        self.address_book.list(customer).await
    }

    /// Removes one of the customer's saved addresses; `false` when the customer has no such
    /// entry.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn remove_address(
        &self,
        customer: CustomerId,
        id: AddressId,
    ) -> Result<bool, StoreError> {
        self.address_book.remove(customer, id).await
    }

    /// CONFIRMED to SHIPPED.
    ///
    /// # Errors
    /// [`OrderError::NotFound`], [`OrderError::InvalidTransition`],
    /// [`OrderError::VersionConflict`] when the order changed since `expected_version`.
    pub async fn ship(&self, id: OrderId, expected_version: u64) -> Result<Order, OrderError> {
        self.orders
            .update(
                id,
                expected_version,
                OrderPatch::status(OrderStatus::Shipped),
                vec![DomainEvent::OrderShipped { order: id }],
            )
            .await
    }

    /// SHIPPED to DELIVERED.
    ///
    /// # Errors
    /// As [`Storefront::ship`].
    pub async fn deliver(&self, id: OrderId, expected_version: u64) -> Result<Order, OrderError> {
        self.orders
            .update(
                id,
                expected_version,
                OrderPatch::status(OrderStatus::Delivered),
                vec![DomainEvent::OrderDelivered { order: id }],
            )
            .await
    }
}

fn search_store_error(e: impl std::error::Error + Send + Sync + 'static) -> CatalogError {
    CatalogError::Store(StoreError::backend("updating the search index", e))
}

/// The answer of a read refused because its store is known to be down.
fn down(store: &str) -> StoreError {
    StoreError::Unavailable {
        message: format!("the {store} store is down (circuit open)"),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;
    use crate::memory::{MemoryCartStore, MemoryCatalog, MemoryInventory, MemoryOrderStore};
    use crate::payment::TestGateway;

    fn required_only() -> StorefrontBuilder {
        Storefront::builder()
            .catalog(Arc::new(MemoryCatalog::new()))
            .carts(Arc::new(MemoryCartStore::new()))
            .inventory(Arc::new(MemoryInventory::new()))
            .orders(Arc::new(MemoryOrderStore::new()))
            .payments(Arc::new(TestGateway::default()))
    }

    #[test]
    fn a_store_left_out_is_named_unless_memory_is_asked_for() {
        let missing = required_only().build().unwrap_err();
        assert!(
            matches!(
                &missing,
                ValidationError::Invalid {
                    field: "recommendations",
                    ..
                }
            ),
            "{missing}"
        );
        let missing = required_only()
            .recommendations(Arc::new(MemoryRecommendations::new()))
            .address_book(Arc::new(MemoryAddressBook::new()))
            .promotions(Arc::new(MemoryPromotions::new()))
            .build()
            .unwrap_err();
        assert!(
            matches!(
                &missing,
                ValidationError::Invalid {
                    field: "search",
                    ..
                }
            ),
            "{missing}"
        );
        assert!(required_only().with_memory_defaults().build().is_ok());
    }

    fn demo_items(n: usize) -> Vec<ImportItem> {
        demo::catalog(n, 7).map(ImportItem::from).collect()
    }

    #[tokio::test]
    async fn import_writes_stock_and_search_and_a_product_is_found_by_sku() {
        let shop = Storefront::in_memory(Arc::new(TestGateway::default()));
        for category in demo::categories() {
            shop.upsert_category(category).await.unwrap();
        }
        let items = demo_items(1_200);
        let expected_units: u64 = items
            .iter()
            .flat_map(|i| i.stock.iter().map(|(_, u)| u64::from(*u)))
            .sum();
        let mut seen = 0;
        let report = shop.import(items.clone(), |n| seen = n).await.unwrap();
        assert_eq!(report.products, 1_200);
        assert_eq!(seen, 1_200);
        assert_eq!(report.units, expected_units);

        let item = &items[1_100];
        let (sku, units) = item.stock[0].clone();
        assert_eq!(shop.stock(&sku).await.unwrap().on_hand, units);
        let found = shop.product_by_sku(&sku).await.unwrap().unwrap();
        assert_eq!(found.id, item.product.id);
        let unknown = Sku::new("NO-SUCH-SKU").unwrap();
        assert_eq!(shop.product_by_sku(&unknown).await.unwrap(), None);

        let published = items.iter().filter(|i| i.product.published).count();
        let all = SearchQuery {
            limit: 1,
            ..SearchQuery::default()
        };
        assert_eq!(shop.search(&all).await.unwrap().total, published as u64);

        // A SKU of another product refuses the item and writes nothing of it.
        let mut stray = demo_items(1).remove(0);
        stray.product.id = ProductId::new();
        stray.product.variants[0].sku = Sku::new("STRAY-1").unwrap();
        stray.stock = vec![(sku.clone(), 5)];
        let refused = shop.import(vec![stray.clone()], |_| {}).await.unwrap_err();
        assert!(matches!(refused, Error::Validation(_)), "{refused}");
        assert_eq!(shop.product(stray.product.id).await.unwrap(), None);
        assert_eq!(shop.stock(&sku).await.unwrap().on_hand, units);
    }

    #[tokio::test]
    async fn the_search_index_is_rebuilt_from_the_catalog() {
        let shop = Storefront::in_memory(Arc::new(TestGateway::default()));
        let items = demo_items(50);
        for item in &items {
            shop.catalog()
                .upsert_product(item.product.clone())
                .await
                .unwrap();
        }
        // A product the catalog no longer has, still in the index.
        let gone = demo_items(51).pop().unwrap().product;
        shop.search
            .index(
                SearchDocument::from_product(&gone, true)
                    .into_iter()
                    .collect(),
            )
            .await
            .unwrap();
        let published = items.iter().filter(|i| i.product.published).count();
        assert_eq!(shop.rebuild_search_index().await.unwrap(), published);
        let all = SearchQuery {
            limit: 100,
            ..SearchQuery::default()
        };
        let hits = shop.search(&all).await.unwrap().hits;
        assert_eq!(hits.len(), published);
        assert!(hits.iter().all(|h| h.product != gone.id));
    }
}
