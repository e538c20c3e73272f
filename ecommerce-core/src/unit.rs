//! Orders and stock in one database, changed together.
//!
//! The checkout saga works over any stores, so each of its steps is a store call of its own
//! and made safe by idempotency and compare-and-set (see [`crate::checkout`]). When the
//! orders and the inventory live in one database, a [`UnitOfWork`] lets the saga do the two
//! steps that touch both in one transaction each:
//!
//! - [`UnitOfWork::place`] creates the order with its events and takes its stock (and, when
//!   the carts live there too, claims the cart and records that the charge is about to be
//!   sent): a buyer turned away for stock leaves nothing stored, and an order never exists
//!   without its stock;
//! - [`UnitOfWork::sell`] records the confirmation (status, payment, money, events) and sells
//!   the order's held stock (and, when the carts live there too, takes the ordered units out
//!   of the cart): a sale without its confirmation, or the reverse, cannot happen.
//!
//! Give one to
//! [`StorefrontBuilder::unit_of_work`](crate::storefront::StorefrontBuilder::unit_of_work).
//! Without one (stock behind a Redis gate and orders in SQL, say) the saga runs step by step;
//! the conformance suite and the fault-injection simulation hold both paths to the same
//! guarantees.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::cart::Cart;
use crate::error::{CartError, ErrorKind, InventoryError, OrderError};
use crate::events::DomainEvent;
use crate::inventory::ReservationLine;
use crate::order::{Created, Order, OrderPatch};
use crate::promotion::{PromotionError, PromotionUse};

/// What a [`UnitOfWork`] refuses or fails with: the error of the order or of the stock half.
/// Whatever the error, the transaction changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum UnitError {
    /// The order half: [`OrderError::VersionConflict`], [`OrderError::NotFound`],
    /// [`OrderError::InvalidTransition`], a store error.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// The stock half: [`InventoryError::OutOfStock`], [`InventoryError::Released`],
    /// [`InventoryError::NoReservation`], a store error.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The cart claim of [`UnitOfWork::place`]: [`CartError::VersionConflict`] when the cart
    /// changed since it was read.
    #[error(transparent)]
    Cart(#[from] CartError),
    /// The promotion uses of [`UnitOfWork::place`]: [`PromotionError::Exhausted`] when a
    /// limit is reached.
    #[error(transparent)]
    Promotion(#[from] PromotionError),
}

impl UnitError {
    /// What kind of failure this is (see [`ErrorKind`]).
    pub fn kind(&self) -> ErrorKind {
        match self {
            UnitError::Order(e) => e.kind(),
            UnitError::Inventory(e) => e.kind(),
            UnitError::Cart(e) => e.kind(),
            UnitError::Promotion(e) => e.kind(),
        }
    }

    /// Whether the same call may succeed later (see [`ErrorKind::Transient`]).
    pub fn is_transient(&self) -> bool {
        self.kind() == ErrorKind::Transient
    }
}

/// The order store and the inventory of one database, changed in one transaction (see the
/// [module documentation](self)).
#[async_trait]
pub trait UnitOfWork: Debug + Send + Sync + 'static {
    /// Whether [`UnitOfWork::place`] can also save the order's claim on its cart (the carts
    /// live in the same database). Default: no.
    fn claims_carts(&self) -> bool {
        false
    }

    /// The promotion store of the unit's database, when [`UnitOfWork::place`] can also
    /// reserve an order's promotion uses there. The storefront then keeps its promotions in
    /// this store (see [`StorefrontBuilder::unit_of_work`]). Default: none.
    ///
    /// [`StorefrontBuilder::unit_of_work`]: crate::storefront::StorefrontBuilder::unit_of_work
    fn promotions(&self) -> Option<std::sync::Arc<dyn crate::promotion::PromotionStore>> {
        None
    }

    /// In one transaction: creates the order with its events, as
    /// [`OrderStore::create`](crate::order::OrderStore::create), and takes `lines` for it
    /// (all or nothing, held until `ttl` has passed), as
    /// [`InventoryStore::reserve`](crate::inventory::InventoryStore::reserve) does for a new
    /// order; with `claim` (only when [`UnitOfWork::claims_carts`]), also saves that cart,
    /// the one the order pays with its claim set, at its version, as
    /// [`CartStore::save`](crate::cart::CartStore::save). When the customer's idempotency key
    /// already has an order, returns [`Created::Existing`] and changes nothing. With `uses`
    /// (only when the unit has [its promotion store](UnitOfWork::promotions)), also reserves
    /// them there, as
    /// [`PromotionStore::reserve`](crate::promotion::PromotionStore::reserve).
    ///
    /// # Errors
    /// [`InventoryError::OutOfStock`] naming every short SKU, [`CartError::VersionConflict`]
    /// when the cart changed, [`PromotionError::Exhausted`], the other errors of the stores.
    /// Nothing is stored on error.
    async fn place(
        &self,
        order: Order,
        events: Vec<DomainEvent>,
        lines: &[ReservationLine],
        ttl: Duration,
        claim: Option<&Cart>,
        uses: &[PromotionUse],
    ) -> Result<Created, UnitError>;

    /// In one transaction: applies `patch` to `order`, the order as the caller last read it,
    /// with its events, as [`OrderStore::update`](crate::order::OrderStore::update) does at
    /// `order.version` (a stored order at another version is a
    /// [`OrderError::VersionConflict`]; at that version it is the caller's order, which the
    /// unit need not read again), and sells the
    /// order's held stock, as [`InventoryStore::commit`](crate::inventory::InventoryStore::commit)
    /// (stock already sold stays sold). With `cart` (only when [`UnitOfWork::claims_carts`]),
    /// the order's cart as stored with its claim, also takes the ordered units out of it
    /// ([`Cart::clear_checkout`]) if it is still at that version; a cart changed since is left
    /// as it is, and [`Sold::cart_cleared`] says so. A unit with [its promotion
    /// store](UnitOfWork::promotions) may also commit the order's held promotion uses, as
    /// [`PromotionStore::commit`](crate::promotion::PromotionStore::commit), and says so in
    /// [`Sold::promotion_uses_committed`] (the checkout then leaves them be). Returns the
    /// order as written.
    ///
    /// # Errors
    /// [`OrderError::VersionConflict`], [`InventoryError::Released`] (the hold expired: reserve
    /// again first), [`InventoryError::NoReservation`], the other errors of both stores.
    /// Nothing changes on error.
    async fn sell(
        &self,
        order: &Order,
        patch: OrderPatch,
        events: Vec<DomainEvent>,
        cart: Option<&Cart>,
    ) -> Result<Sold, UnitError>;
}

/// What [`UnitOfWork::sell`] wrote.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Sold {
    /// The order as written.
    pub order: Order,
    /// Whether the cart given to [`UnitOfWork::sell`] was cleared of the ordered units in
    /// the same transaction (false without a cart, or when it changed since it was read).
    pub cart_cleared: bool,
    /// Whether the order's promotion uses were settled in the same transaction: committed,
    /// or found to be none or committed already. False: the checkout commits them through
    /// the promotion store.
    pub promotion_uses_committed: bool,
}

impl Sold {
    /// The order as written, its cart left as it is, its promotion uses not committed.
    pub fn order(order: Order) -> Self {
        Sold {
            order,
            cart_cleared: false,
            promotion_uses_committed: false,
        }
    }

    /// The order as written and whether its cart was cleared.
    pub fn with_cart_cleared(order: Order, cleared: bool) -> Self {
        Sold {
            cart_cleared: cleared,
            ..Sold::order(order)
        }
    }

    /// The same, saying whether the order's promotion uses were committed with it.
    #[must_use]
    pub fn with_promotion_uses_committed(self, committed: bool) -> Self {
        Sold {
            promotion_uses_committed: committed,
            ..self
        }
    }
}

impl From<crate::error::StoreError> for UnitError {
    fn from(e: crate::error::StoreError) -> Self {
        UnitError::Order(OrderError::Store(e))
    }
}

impl From<UnitError> for crate::error::CheckoutError {
    fn from(e: UnitError) -> Self {
        match e {
            UnitError::Order(e) => e.into(),
            UnitError::Inventory(e) => e.into(),
            UnitError::Cart(e) => e.into(),
            UnitError::Promotion(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::memory::{MemoryInventory, MemoryOrderStore};
    use crate::payment::TestGateway;
    use crate::storefront::Storefront;

    /// A unit that only says it is there, whether it claims carts, and its promotion store.
    #[derive(Debug, Default)]
    struct Marker {
        carts: bool,
        promotions: Option<Arc<dyn crate::promotion::PromotionStore>>,
    }

    #[async_trait]
    impl UnitOfWork for Marker {
        fn claims_carts(&self) -> bool {
            self.carts
        }
        fn promotions(&self) -> Option<Arc<dyn crate::promotion::PromotionStore>> {
            self.promotions.clone()
        }
        async fn place(
            &self,
            _: Order,
            _: Vec<DomainEvent>,
            _: &[ReservationLine],
            _: Duration,
            _: Option<&Cart>,
            _: &[PromotionUse],
        ) -> Result<Created, UnitError> {
            unreachable!("not called")
        }
        async fn sell(
            &self,
            _: &Order,
            _: OrderPatch,
            _: Vec<DomainEvent>,
            _: Option<&Cart>,
        ) -> Result<Sold, UnitError> {
            unreachable!("not called")
        }
    }

    #[test]
    fn setting_the_stores_it_spans_again_drops_the_unit() {
        let shop = Storefront::in_memory(Arc::new(TestGateway::default()));
        let orders = Arc::new(MemoryOrderStore::new());
        let builder = || {
            Storefront::builder()
                .with_memory_defaults()
                .catalog(shop.catalog().clone())
                .carts(Arc::new(crate::memory::MemoryCartStore::new()))
                .payments(Arc::new(TestGateway::default()))
                .orders(orders.clone())
                .inventory(Arc::new(MemoryInventory::new()))
        };
        let kept = builder()
            .unit_of_work(Arc::new(Marker::default()))
            .build()
            .unwrap();
        assert!(
            kept.unit.is_some(),
            "given after its stores, the unit is used"
        );
        let swapped = builder()
            .unit_of_work(Arc::new(Marker::default()))
            .inventory(Arc::new(MemoryInventory::new()))
            .build()
            .unwrap();
        assert!(swapped.unit.is_none(), "another inventory drops the unit");
        let swapped = builder()
            .unit_of_work(Arc::new(Marker::default()))
            .orders(orders.clone())
            .build()
            .unwrap();
        assert!(swapped.unit.is_none(), "other orders drop the unit");
    }

    #[test]
    fn a_unit_brings_its_promotion_store_unless_another_is_set_after_it() {
        let orders = Arc::new(MemoryOrderStore::new());
        let builder = || {
            Storefront::builder()
                .with_memory_defaults()
                .catalog(Arc::new(crate::memory::MemoryCatalog::new()))
                .payments(Arc::new(TestGateway::default()))
                .orders(orders.clone())
                .inventory(Arc::new(MemoryInventory::new()))
                .carts(Arc::new(crate::memory::MemoryCartStore::new()))
        };
        let its: Arc<dyn crate::promotion::PromotionStore> =
            Arc::new(crate::memory::MemoryPromotions::new());
        let other: Arc<dyn crate::promotion::PromotionStore> =
            Arc::new(crate::memory::MemoryPromotions::new());
        let unit = || {
            Arc::new(Marker {
                promotions: Some(its.clone()),
                ..Marker::default()
            })
        };
        let shop = builder()
            .promotions(other.clone())
            .unit_of_work(unit())
            .build()
            .unwrap();
        assert!(Arc::ptr_eq(&shop.promotions, &its) && shop.unit_holds_promotions);
        let shop = builder()
            .unit_of_work(unit())
            .promotions(other.clone())
            .build()
            .unwrap();
        assert!(Arc::ptr_eq(&shop.promotions, &other) && !shop.unit_holds_promotions);
        let shop = builder()
            .promotions(other.clone())
            .unit_of_work(Arc::new(Marker::default()))
            .build()
            .unwrap();
        assert!(Arc::ptr_eq(&shop.promotions, &other) && !shop.unit_holds_promotions);
    }

    #[test]
    fn another_cart_store_keeps_the_unit_but_not_its_cart_claims() {
        let orders = Arc::new(MemoryOrderStore::new());
        let builder = || {
            Storefront::builder()
                .with_memory_defaults()
                .catalog(Arc::new(crate::memory::MemoryCatalog::new()))
                .payments(Arc::new(TestGateway::default()))
                .orders(orders.clone())
                .inventory(Arc::new(MemoryInventory::new()))
                .carts(Arc::new(crate::memory::MemoryCartStore::new()))
        };
        let shop = builder()
            .unit_of_work(Arc::new(Marker {
                carts: true,
                ..Marker::default()
            }))
            .build()
            .unwrap();
        assert!(shop.unit.is_some() && shop.unit_claims_carts);
        let shop = builder()
            .unit_of_work(Arc::new(Marker {
                carts: true,
                ..Marker::default()
            }))
            .carts(Arc::new(crate::memory::MemoryCartStore::new()))
            .build()
            .unwrap();
        assert!(shop.unit.is_some(), "orders and stock still go together");
        assert!(!shop.unit_claims_carts, "the carts are elsewhere now");
        let shop = builder()
            .unit_of_work(Arc::new(Marker::default()))
            .build()
            .unwrap();
        assert!(!shop.unit_claims_carts, "a unit without carts claims none");
    }
}
