//! Carts: guest carts (by token) and customer carts, and the rules that change them.
//!
//! The rules live here, in plain functions on [`Cart`], so every store applies the same ones;
//! a [`CartStore`] only loads and saves whole carts with a compare-and-set on
//! [`Cart::version`]. Adding to a cart reserves no stock: stock is taken at checkout.

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Offer;
use crate::error::CartError;
use crate::id::{CartId, CustomerId, Sku};
use crate::money::{Currency, Money, MoneyError};

/// Per-line and per-cart limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CartLimits {
    /// Most units of one SKU in a cart.
    pub max_line_quantity: u32,
    /// Most distinct SKUs in a cart.
    pub max_lines: usize,
}

impl Default for CartLimits {
    fn default() -> Self {
        CartLimits {
            max_line_quantity: 99,
            max_lines: 100,
        }
    }
}

impl CartLimits {
    /// Sets the most units of one SKU in a cart.
    pub fn with_max_line_quantity(mut self, max_line_quantity: u32) -> Self {
        self.max_line_quantity = max_line_quantity;
        self
    }

    /// Sets the most distinct SKUs in a cart.
    pub fn with_max_lines(mut self, max_lines: usize) -> Self {
        self.max_lines = max_lines;
        self
    }
}

/// One SKU in a cart, at the price it was added at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartLine {
    /// The SKU.
    pub sku: Sku,
    /// Display title when added.
    pub title: String,
    /// How many.
    pub quantity: u32,
    /// Catalog price when the line was added or last re-priced.
    pub unit_price: Money,
}

impl CartLine {
    /// `unit_price * quantity`.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`].
    pub fn total(&self) -> Result<Money, MoneyError> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// A cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// Id: the guest's token, or [`CartId::for_customer`].
    pub id: CartId,
    /// The customer, for a customer's persistent cart; `None` for a guest cart.
    pub customer: Option<CustomerId>,
    /// Lines, at most one per SKU, in the order they were first added.
    pub lines: Vec<CartLine>,
    /// Version for compare-and-set: 0 for a cart never saved, bumped by every save.
    pub version: u64,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Guest carts already merged into this one (the most recent [`MAX_MERGED_MARKS`]), so a
    /// merge retried after a crash does not add the same lines twice.
    #[serde(default)]
    pub merged_guest_carts: Vec<CartId>,
    /// The checkout that claimed this cart, if one is in flight or paid and not yet cleared
    /// from the cart (see [`CheckoutClaim`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<CheckoutClaim>,
    /// Coupon codes applied to the cart
    /// ([`Storefront::apply_coupon`](crate::Storefront::apply_coupon)), in the order given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coupons: Vec<crate::promotion::CouponCode>,
    /// Whether a checkout ever claimed this cart. A checkout turned away before it stores an
    /// order looks its idempotency key up only then: a retry of a paid checkout is answered
    /// with its order, and a cart never claimed has no order to answer with.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ever_claimed: bool,
}

/// A checkout's claim on a cart: the order being paid for it and the units it ordered.
///
/// A checkout claims its cart (a compare-and-set save) before it charges, so a second "Pay"
/// on the same cart, whatever idempotency key it carries, finds the claim and is answered
/// with the first order instead of charging again. Once the order is confirmed, the ordered
/// units are taken out of the cart and the claim is dropped ([`Cart::clear_checkout`]);
/// items added after the checkout started stay. A claim whose order failed is void.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutClaim {
    /// The order.
    pub order: crate::id::OrderId,
    /// What it ordered: units per SKU.
    pub lines: Vec<(Sku, u32)>,
}

/// How many merged guest cart ids a cart remembers.
pub const MAX_MERGED_MARKS: usize = 16;

impl Cart {
    /// An empty guest cart with a new token.
    pub fn new_guest() -> Self {
        Cart::empty(CartId::new(), None)
    }

    /// An empty guest cart under a given id (a "Buy now" cart, [`CartId::buy_now`]).
    pub(crate) fn new_guest_as(id: CartId) -> Self {
        Cart::empty(id, None)
    }

    /// The empty persistent cart of a customer.
    pub fn new_for_customer(customer: CustomerId) -> Self {
        Cart::empty(CartId::for_customer(customer), Some(customer))
    }

    fn empty(id: CartId, customer: Option<CustomerId>) -> Self {
        Cart {
            id,
            customer,
            lines: Vec::new(),
            version: 0,
            updated_at: Utc::now(),
            merged_guest_carts: Vec::new(),
            checkout: None,
            coupons: Vec::new(),
            ever_claimed: false,
        }
    }

    /// Takes the units ordered by the claiming checkout `order` out of the cart, drops its
    /// claim and the cart's coupon codes (the order used them). Returns `false`, changing
    /// nothing, when the cart is not claimed by `order` (it was cleared already, or another
    /// checkout claimed it since): clearing is idempotent.
    pub fn clear_checkout(&mut self, order: crate::id::OrderId) -> bool {
        let Some(claim) = self.checkout.take_if(|c| c.order == order) else {
            return false;
        };
        for (sku, ordered) in &claim.lines {
            if let Some(line) = self.lines.iter_mut().find(|l| &l.sku == sku) {
                line.quantity = line.quantity.saturating_sub(*ordered);
            }
        }
        self.lines.retain(|l| l.quantity > 0);
        // The codes went with the order that used them.
        self.coupons.clear();
        true
    }

    /// A copy of the cart cleared of `order` ([`Cart::clear_checkout`]), or `None` when the
    /// cart is not claimed by `order`.
    pub fn cleared_of(&self, order: crate::id::OrderId) -> Option<Cart> {
        let mut cleared = self.clone();
        cleared.clear_checkout(order).then_some(cleared)
    }

    /// The cart as a store writes it on a successful compare-and-set: the next version,
    /// updated now.
    pub fn next_version(&self) -> Cart {
        let mut stored = self.clone();
        stored.version += 1;
        stored.updated_at = Utc::now();
        stored
    }

    /// The currency of the cart: that of its first line.
    pub fn currency(&self) -> Option<Currency> {
        self.lines.first().map(|l| l.unit_price.currency)
    }

    /// Whether the cart has no lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Total units over all lines.
    pub fn item_count(&self) -> u64 {
        self.lines.iter().map(|l| u64::from(l.quantity)).sum()
    }

    /// Sum of line totals at the cart's prices, `None` for an empty cart.
    ///
    /// # Errors
    /// [`MoneyError`] on overflow or mixed currencies.
    pub fn subtotal(&self) -> Result<Option<Money>, MoneyError> {
        let Some(currency) = self.currency() else {
            return Ok(None);
        };
        let totals = self
            .lines
            .iter()
            .map(CartLine::total)
            .collect::<Result<Vec<_>, _>>()?;
        Money::sum(currency, totals).map(Some)
    }

    /// Whether the guest cart `guest` was already merged into this one.
    pub fn has_merged(&self, guest: CartId) -> bool {
        self.merged_guest_carts.contains(&guest)
    }

    /// The line of this SKU.
    pub fn line(&self, sku: &Sku) -> Option<&CartLine> {
        self.lines.iter().find(|l| &l.sku == sku)
    }

    /// Adds `quantity` units of the offer: an existing line grows, a new line takes the
    /// offer's price. Changes nothing on error.
    ///
    /// # Errors
    /// [`CartError::Unavailable`], [`CartError::InvalidQuantity`] (zero, or the line would pass
    /// the limit), [`CartError::TooManyLines`], [`CartError::CurrencyMismatch`].
    pub fn add(
        &mut self,
        offer: &Offer,
        quantity: u32,
        limits: &CartLimits,
    ) -> Result<(), CartError> {
        check_offer(self, offer)?;
        let existing = self.line(&offer.sku).map_or(0, |l| l.quantity);
        let wanted = u64::from(existing) + u64::from(quantity);
        if quantity == 0 || wanted > u64::from(limits.max_line_quantity) {
            return Err(CartError::InvalidQuantity {
                sku: offer.sku.clone(),
                requested: i64::try_from(wanted).unwrap_or(i64::MAX),
                max: limits.max_line_quantity,
            });
        }
        self.put(offer, wanted as u32, limits)
    }

    /// Sets the quantity of a SKU; 0 removes the line. Changes nothing on error.
    ///
    /// # Errors
    /// As [`Cart::add`].
    pub fn set_quantity(
        &mut self,
        offer: &Offer,
        quantity: u32,
        limits: &CartLimits,
    ) -> Result<(), CartError> {
        if quantity == 0 {
            self.lines.retain(|l| l.sku != offer.sku);
            return Ok(());
        }
        check_offer(self, offer)?;
        if quantity > limits.max_line_quantity {
            return Err(CartError::InvalidQuantity {
                sku: offer.sku.clone(),
                requested: i64::from(quantity),
                max: limits.max_line_quantity,
            });
        }
        self.put(offer, quantity, limits)
    }

    /// Removes the line of a SKU.
    ///
    /// # Errors
    /// [`CartError::LineNotFound`].
    pub fn remove(&mut self, sku: &Sku) -> Result<(), CartError> {
        let before = self.lines.len();
        self.lines.retain(|l| &l.sku != sku);
        if self.lines.len() == before {
            return Err(CartError::LineNotFound(sku.clone()));
        }
        Ok(())
    }

    /// Merges another cart's lines into this one (guest into customer on login): the same SKU
    /// adds up, capped at the per-line limit; new SKUs are appended while there is room; lines
    /// in another currency than this cart's are dropped; the other cart's coupon codes are
    /// added while there is room. Returns the SKUs that could not be merged in full.
    pub fn merge_from(&mut self, other: &Cart, limits: &CartLimits) -> Vec<Sku> {
        let mut clipped = Vec::new();
        if self.has_merged(other.id) {
            return clipped;
        }
        self.merged_guest_carts.push(other.id);
        if self.merged_guest_carts.len() > MAX_MERGED_MARKS {
            self.merged_guest_carts.remove(0);
        }
        for line in &other.lines {
            if let Some(currency) = self.currency() {
                if currency != line.unit_price.currency {
                    clipped.push(line.sku.clone());
                    continue;
                }
            }
            let room = self.lines.len() < limits.max_lines;
            match self.lines.iter_mut().find(|l| l.sku == line.sku) {
                Some(mine) => {
                    let sum = mine.quantity.saturating_add(line.quantity);
                    if sum > limits.max_line_quantity {
                        clipped.push(line.sku.clone());
                    }
                    mine.quantity = sum.min(limits.max_line_quantity);
                }
                None if room => {
                    let mut line = line.clone();
                    if line.quantity > limits.max_line_quantity {
                        clipped.push(line.sku.clone());
                        line.quantity = limits.max_line_quantity;
                    }
                    self.lines.push(line);
                }
                None => clipped.push(line.sku.clone()),
            }
        }
        // The guest's codes come along, while there is room.
        for code in &other.coupons {
            if !self.coupons.contains(code)
                && self.coupons.len() < crate::promotion::MAX_CODES_PER_CART
            {
                self.coupons.push(code.clone());
            }
        }
        clipped
    }

    fn put(&mut self, offer: &Offer, quantity: u32, limits: &CartLimits) -> Result<(), CartError> {
        match self.lines.iter_mut().find(|l| l.sku == offer.sku) {
            Some(line) => {
                line.quantity = quantity;
            }
            None => {
                if self.lines.len() >= limits.max_lines {
                    return Err(CartError::TooManyLines {
                        max: limits.max_lines,
                    });
                }
                self.lines.push(CartLine {
                    sku: offer.sku.clone(),
                    title: offer.title.clone(),
                    quantity,
                    unit_price: offer.price,
                });
            }
        }
        Ok(())
    }
}

fn check_offer(cart: &Cart, offer: &Offer) -> Result<(), CartError> {
    if !offer.available {
        return Err(CartError::Unavailable(offer.sku.clone()));
    }
    let other_currency = cart
        .lines
        .iter()
        .find(|l| l.sku != offer.sku)
        .map(|l| l.unit_price.currency);
    match other_currency {
        Some(cart_currency) if cart_currency != offer.price.currency => {
            Err(CartError::CurrencyMismatch {
                cart: cart_currency,
                item: offer.price.currency,
            })
        }
        _ => Ok(()),
    }
}

/// Where carts are kept.
///
/// A store keeps whole carts and knows nothing of the rules. Every implementation must:
/// - make [`CartStore::save`] a compare-and-set: it writes only if the stored version equals
///   `cart.version` (or the cart is absent and `cart.version == 0`), stores the cart with
///   `version + 1`, and returns the stored cart; otherwise it fails with
///   [`CartError::VersionConflict`] and writes nothing;
/// - make [`CartStore::save_merged`] atomic: both the save and the delete happen, or neither;
/// - make deletes idempotent.
///
/// A store may expire carts (a TTL refreshed by every save); an expired cart reads as absent.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait CartStore: Debug + Send + Sync + 'static {
    /// The cart, or `Ok(None)`.
    ///
    /// # Errors
    /// [`CartError::Store`], and for stored data that cannot be decoded a
    /// [`crate::error::StoreError::Corrupt`] inside it.
    async fn load(&self, id: CartId) -> Result<Option<Cart>, CartError>;

    /// Compare-and-set write of a whole cart (see the trait docs).
    ///
    /// # Errors
    /// [`CartError::VersionConflict`], [`CartError::Store`].
    async fn save(&self, cart: &Cart) -> Result<Cart, CartError>;

    /// Deletes the cart; absent is fine.
    ///
    /// # Errors
    /// [`CartError::Store`].
    async fn delete(&self, id: CartId) -> Result<(), CartError>;

    /// Atomically saves `merged` (compare-and-set as [`CartStore::save`]) and deletes the cart
    /// `consumed` if it is still at `consumed_version`, so a merge happens once even when login
    /// is retried.
    ///
    /// # Errors
    /// [`CartError::VersionConflict`] when either cart changed, [`CartError::Store`].
    async fn save_merged(
        &self,
        merged: &Cart,
        consumed: CartId,
        consumed_version: u64,
    ) -> Result<Cart, CartError>;
}

/// Two cart stores as one: an active store (fast, expiring: Redis, or
/// [`crate::memory::MemoryCartStore::with_ttl`]) for guest carts, and a persistent store
/// (durable: SQL) for customer carts, so a cart started on mobile shows on desktop.
///
/// - Guest carts (no customer) are read and written in the active store; customer carts in
///   the persistent store. A read looks in the active store first and falls back to the
///   persistent one, also when the active store fails.
/// - On login, [`crate::Storefront::merge_guest_cart`] merges the guest's active cart into the
///   customer's persistent cart: the merged cart is written first (carrying the guest cart's
///   id, [`Cart::merged_guest_carts`]), then the guest cart is deleted, so a merge interrupted
///   between the two is finished, not repeated, by the next login.
///
/// A circuit breaker watches the active store: once it is seen down, customer carts are read
/// from the persistent store at once, and guest carts fail fast with a transient error,
/// without waiting out the active store's timeout, until a probe finds it back.
#[derive(Debug, Clone)]
pub struct TieredCartStore {
    active: std::sync::Arc<dyn CartStore>,
    persistent: std::sync::Arc<dyn CartStore>,
    breaker: std::sync::Arc<crate::breaker::CircuitBreaker>,
}

impl TieredCartStore {
    /// Guest carts in `active`, customer carts in `persistent`.
    pub fn new(
        active: std::sync::Arc<dyn CartStore>,
        persistent: std::sync::Arc<dyn CartStore>,
    ) -> Self {
        TieredCartStore {
            active,
            persistent,
            breaker: std::sync::Arc::new(crate::breaker::CircuitBreaker::new(
                "active carts",
                crate::breaker::BreakerConfig::default(),
            )),
        }
    }

    /// Runs a call on the active store unless it is known to be down.
    async fn on_active<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, CartError>>,
    ) -> Result<T, CartError> {
        if !self.breaker.permit().allowed() {
            return Err(CartError::Store(crate::error::StoreError::Unavailable {
                message: "the active cart store is down (circuit open)".into(),
                source: None,
            }));
        }
        let result = call.await;
        self.breaker.record(&result, CartError::is_transient);
        result
    }

    fn home(&self, cart: &Cart) -> &dyn CartStore {
        if cart.customer.is_some() {
            self.persistent.as_ref()
        } else {
            self.active.as_ref()
        }
    }
}

#[async_trait]
impl CartStore for TieredCartStore {
    async fn load(&self, id: CartId) -> Result<Option<Cart>, CartError> {
        match self.on_active(self.active.load(id)).await {
            Ok(Some(cart)) => Ok(Some(cart)),
            Ok(None) => self.persistent.load(id).await,
            Err(active_error) => match self.persistent.load(id).await? {
                Some(cart) => Ok(Some(cart)),
                None => Err(active_error),
            },
        }
    }

    async fn save(&self, cart: &Cart) -> Result<Cart, CartError> {
        if cart.customer.is_some() {
            self.persistent.save(cart).await
        } else {
            self.on_active(self.active.save(cart)).await
        }
    }

    async fn delete(&self, id: CartId) -> Result<(), CartError> {
        self.on_active(self.active.delete(id)).await?;
        self.persistent.delete(id).await
    }

    async fn save_merged(
        &self,
        merged: &Cart,
        consumed: CartId,
        consumed_version: u64,
    ) -> Result<Cart, CartError> {
        let current = self.active.load(consumed).await?.map_or(0, |c| c.version);
        if current != consumed_version {
            return Err(CartError::VersionConflict { cart: consumed });
        }
        let stored = self.home(merged).save(merged).await?;
        self.active.delete(consumed).await?;
        Ok(stored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::ProductId;

    fn offer(sku: &str, minor: i64) -> Offer {
        Offer {
            sku: Sku::new(sku).unwrap(),
            product: ProductId::new(),
            title: sku.into(),
            price: Money::from_minor(minor, Currency::USD),
            available: true,
            profile: Default::default(),
        }
    }

    #[test]
    fn add_caps_and_validates() {
        let limits = CartLimits {
            max_line_quantity: 5,
            max_lines: 2,
        };
        let mut cart = Cart::new_guest();
        cart.add(&offer("A", 100), 3, &limits).unwrap();
        let before = cart.clone();
        assert!(matches!(
            cart.add(&offer("A", 100), 3, &limits),
            Err(CartError::InvalidQuantity {
                requested: 6,
                max: 5,
                ..
            })
        ));
        assert!(matches!(
            cart.add(&offer("A", 100), 0, &limits),
            Err(CartError::InvalidQuantity { .. })
        ));
        assert_eq!(cart, before);
        cart.add(&offer("B", 100), 1, &limits).unwrap();
        assert!(matches!(
            cart.add(&offer("C", 100), 1, &limits),
            Err(CartError::TooManyLines { max: 2 })
        ));
        let mut eur = offer("B", 100);
        eur.price.currency = Currency::EUR;
        assert!(matches!(
            cart.add(&eur, 1, &limits),
            Err(CartError::CurrencyMismatch { .. })
        ));
        let mut hidden = offer("D", 1);
        hidden.available = false;
        assert!(matches!(
            cart.add(&hidden, 1, &limits),
            Err(CartError::Unavailable(_))
        ));
        assert_eq!(cart.item_count(), 4);
        assert_eq!(
            cart.subtotal().unwrap(),
            Some(Money::from_minor(400, Currency::USD))
        );
    }

    #[test]
    fn the_limit_and_config_builders_build_what_the_literals_built() {
        let limits = CartLimits::default()
            .with_max_line_quantity(5)
            .with_max_lines(2);
        assert_eq!(
            limits,
            CartLimits {
                max_line_quantity: 5,
                max_lines: 2,
            }
        );
        let tax = crate::tax::TaxSettings {
            price_mode: crate::tax::PriceMode::Inclusive,
            ..Default::default()
        };
        let config = crate::storefront::StorefrontConfig::default()
            .with_cart_limits(limits)
            .with_reservation_ttl(std::time::Duration::from_secs(60))
            .with_recovery_batch(10)
            .with_payment_timeout(std::time::Duration::from_secs(5))
            .with_tax(tax)
            .with_quote_ttl(std::time::Duration::from_secs(120))
            .with_promotion_cache_ttl(std::time::Duration::from_secs(3))
            .with_recent_carts(5);
        assert_eq!(
            config,
            crate::storefront::StorefrontConfig {
                cart_limits: limits,
                reservation_ttl: std::time::Duration::from_secs(60),
                recovery_batch: 10,
                payment_timeout: std::time::Duration::from_secs(5),
                tax,
                quote_ttl: std::time::Duration::from_secs(120),
                promotion_cache_ttl: std::time::Duration::from_secs(3),
                recent_carts: 5,
            }
        );
    }

    #[test]
    fn merge_adds_up_and_caps() {
        let limits = CartLimits {
            max_line_quantity: 5,
            max_lines: 10,
        };
        let mut guest = Cart::new_guest();
        guest.add(&offer("A", 100), 4, &limits).unwrap();
        guest.add(&offer("B", 100), 1, &limits).unwrap();
        let mut mine = Cart::new_for_customer(CustomerId::new());
        mine.add(&offer("A", 100), 3, &limits).unwrap();
        let clipped = mine.merge_from(&guest, &limits);
        assert_eq!(clipped, vec![Sku::new("A").unwrap()]);
        assert_eq!(mine.line(&Sku::new("A").unwrap()).unwrap().quantity, 5);
        assert_eq!(mine.line(&Sku::new("B").unwrap()).unwrap().quantity, 1);
    }

    #[test]
    fn merge_brings_the_guests_codes_while_there_is_room() {
        use crate::promotion::{CouponCode, MAX_CODES_PER_CART};
        let code = |c: &str| CouponCode::new(c).unwrap();
        let limits = CartLimits::default();
        let mut guest = Cart::new_guest();
        guest.coupons = vec![code("SAME"), code("NEW-1"), code("NEW-2"), code("NEW-3")];
        let mut mine = Cart::new_for_customer(CustomerId::new());
        mine.coupons = vec![code("SAME")];
        mine.merge_from(&guest, &limits);
        assert_eq!(mine.coupons.len(), MAX_CODES_PER_CART);
        assert_eq!(
            mine.coupons,
            vec![code("SAME"), code("NEW-1"), code("NEW-2")]
        );
    }

    fn unavailable() -> CartError {
        CartError::Store(crate::error::StoreError::Unavailable {
            message: "active store down".into(),
            source: None,
        })
    }

    #[tokio::test]
    async fn a_failing_active_store_falls_back_to_the_persistent_one() {
        use crate::memory::MemoryCartStore;
        use std::sync::Arc;
        let persistent = Arc::new(MemoryCartStore::new());
        let customer = CustomerId::new();
        let saved = persistent
            .save(&Cart::new_for_customer(customer))
            .await
            .unwrap();
        let mut down = MockCartStore::new();
        down.expect_load().returning(|_| Err(unavailable()));
        let tiered = TieredCartStore::new(Arc::new(down), persistent);
        assert_eq!(tiered.load(saved.id).await.unwrap(), Some(saved));
        assert!(
            matches!(tiered.load(CartId::new()).await, Err(CartError::Store(_))),
            "a guest cart that cannot be read is an error, not an empty cart"
        );
    }

    #[tokio::test]
    async fn an_interrupted_merge_is_finished_not_repeated() {
        use crate::memory::MemoryCartStore;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let active = Arc::new(MemoryCartStore::new());
        let persistent = Arc::new(MemoryCartStore::new());
        let limits = CartLimits::default();
        let mut guest = Cart::new_guest();
        guest.add(&offer("A", 100), 2, &limits).unwrap();
        let guest = active.save(&guest).await.unwrap();

        // The active store fails the first delete: the process "dies" after the merged cart
        // was written.
        let mut flaky = MockCartStore::new();
        let crashed = Arc::new(AtomicBool::new(false));
        let (a, c) = (active.clone(), crashed.clone());
        flaky.expect_delete().returning(move |id| {
            if !c.swap(true, Ordering::SeqCst) {
                return Err(unavailable());
            }
            futures::executor::block_on(a.delete(id))
        });
        let a = active.clone();
        flaky
            .expect_load()
            .returning(move |id| futures::executor::block_on(a.load(id)));
        let tiered = TieredCartStore::new(Arc::new(flaky), persistent.clone());

        let customer = CustomerId::new();
        let mut mine = Cart::new_for_customer(customer);
        mine.merge_from(&guest, &limits);
        assert!(
            tiered
                .save_merged(&mine, guest.id, guest.version)
                .await
                .is_err()
        );
        let stored = persistent.load(mine.id).await.unwrap().unwrap();
        assert!(stored.has_merged(guest.id));
        // Merging again finds the mark and adds nothing.
        let mut again = stored.clone();
        assert!(again.merge_from(&guest, &limits).is_empty());
        assert_eq!(again.lines, stored.lines);
        assert_eq!(again.line(&Sku::new("A").unwrap()).unwrap().quantity, 2);
        tiered.delete(guest.id).await.unwrap();
        assert_eq!(active.load(guest.id).await.unwrap(), None);
    }
}
