//! Errors: one enum per area, and [`Error`] over all of them.
//!
//! Variants carry what the caller needs to act on: which SKU is short and by how much, which
//! version an order was really at, which prices changed. Messages are lowercase without a
//! trailing period. Backend failures keep their `source` chain ([`StoreError`]).

use crate::quote::{Quote, QuoteChange, QuoteError};
use crate::shipping::ShippingError;
use crate::tax::TaxError;
use std::error::Error as StdError;
use std::sync::Arc;

use crate::id::{CartId, IdError, IdempotencyKey, OrderId, ProductId, Sku};
use crate::money::{Currency, Money, MoneyError};
use crate::order::OrderStatus;

/// A boxed error from a storage driver, shareable so errors stay `Clone`.
pub type BoxError = Arc<dyn StdError + Send + Sync + 'static>;

/// A storage backend failed. The operation did not happen, or (for [`StoreError::Unavailable`]
/// on a write) its outcome is unknown; every store operation is idempotent so it is safe to retry.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached (connection refused, pool timed out, server restarting).
    #[error("storage backend unavailable: {message}")]
    Unavailable {
        /// What was being done.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A transient conflict (deadlock, serialization failure) that survived the store's retries.
    #[error("storage conflict: {message}")]
    Conflict {
        /// What was being done.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
    /// Data in the backend could not be decoded (a foreign or corrupted value).
    #[error("corrupt data in storage: {message}")]
    Corrupt {
        /// What could not be decoded.
        message: String,
    },
    /// Any other backend failure.
    #[error("storage backend failed: {message}")]
    Backend {
        /// What was being done.
        message: String,
        /// The driver's error.
        #[source]
        source: Option<BoxError>,
    },
}

impl StoreError {
    /// A backend failure with its driver error as the source.
    pub fn backend(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// An unreachable backend with its driver error as the source.
    pub fn unavailable(
        message: impl Into<String>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        StoreError::Unavailable {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }
}

/// Input that breaks a rule of the domain (not a backend failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A required text field is empty.
    #[error("{field} must not be empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A text field is longer than allowed.
    #[error("{field} is longer than {max} characters")]
    TooLong {
        /// The field.
        field: &'static str,
        /// The limit, in characters.
        max: usize,
    },
    /// An amount that must not be negative is negative.
    #[error("{field} must not be negative")]
    Negative {
        /// The field.
        field: &'static str,
    },
    /// Any other broken rule.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A malformed id.
    #[error(transparent)]
    Id(#[from] IdError),
}

/// Errors of the catalog.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The product or category breaks a rule; nothing was written.
    #[error("invalid catalog entry: {0}")]
    Invalid(#[from] ValidationError),
    /// The SKU already belongs to another product.
    #[error("sku {sku} already belongs to product {owner}")]
    DuplicateSku {
        /// The SKU.
        sku: Sku,
        /// The product that has it.
        owner: ProductId,
    },
    /// No such product.
    #[error("product {0} not found")]
    ProductNotFound(ProductId),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of carts.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CartError {
    /// No cart with this id (it never existed, was checked out, or expired).
    #[error("cart {0} not found")]
    NotFound(CartId),
    /// The SKU is not in the catalog.
    #[error("unknown sku {0}")]
    UnknownSku(Sku),
    /// The SKU exists but is not for sale (unpublished).
    #[error("sku {0} is not available")]
    Unavailable(Sku),
    /// The quantity is zero, negative, or above the per-line limit.
    #[error("invalid quantity {requested} for sku {sku}: must be between 1 and {max}")]
    InvalidQuantity {
        /// The SKU.
        sku: Sku,
        /// What was asked for.
        requested: i64,
        /// The per-line limit.
        max: u32,
    },
    /// The cart already has the most lines it may have.
    #[error("cart cannot hold more than {max} lines")]
    TooManyLines {
        /// The per-cart limit.
        max: usize,
    },
    /// The item is priced in another currency than the cart.
    #[error("cart is in {cart}, item is in {item}")]
    CurrencyMismatch {
        /// The cart's currency.
        cart: Currency,
        /// The item's currency.
        item: Currency,
    },
    /// The SKU is not in the cart.
    #[error("sku {0} is not in the cart")]
    LineNotFound(Sku),
    /// The cart was changed concurrently (compare-and-set on its version failed).
    #[error("cart {cart} was changed concurrently")]
    VersionConflict {
        /// The cart.
        cart: CartId,
    },
    /// The cart belongs to a customer and cannot be merged as a guest cart.
    #[error("cart {0} is not a guest cart")]
    NotAGuestCart(CartId),
    /// The catalog could not be read.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// A money rule was broken.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One SKU that could not be taken in full.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shortage {
    /// The SKU.
    pub sku: Sku,
    /// How many the order needs (lines of the same SKU summed).
    pub requested: u32,
    /// How many were available when the order was refused.
    pub available: u32,
}

/// Errors of inventory.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// Not enough stock for these SKUs; nothing was taken.
    #[error("out of stock: {}", shortages.iter().map(|s| format!("{} (requested {}, available {})", s.sku, s.requested, s.available)).collect::<Vec<_>>().join(", "))]
    OutOfStock {
        /// Every SKU that was short.
        shortages: Vec<Shortage>,
    },
    /// The SKU has no stock record.
    #[error("unknown sku {0}")]
    UnknownSku(Sku),
    /// A zero or oversized quantity.
    #[error("invalid quantity {quantity} for sku {sku}")]
    InvalidQuantity {
        /// The SKU.
        sku: Sku,
        /// The quantity given.
        quantity: u32,
    },
    /// A reservation with no lines.
    #[error("a reservation needs at least one line")]
    EmptyReservation,
    /// The order has no reservation.
    #[error("order {0} has no reservation")]
    NoReservation(OrderId),
    /// The reservation was released (payment failed or it expired) and cannot be committed.
    #[error("reservation of order {0} was released")]
    Released(OrderId),
    /// The reservation is held, not sold, so there is nothing to return; release it instead.
    #[error("reservation of order {0} was never committed")]
    NotCommitted(OrderId),
    /// The reservation was committed (stock sold) and cannot be released; use a return.
    #[error("reservation of order {0} was already committed")]
    Committed(OrderId),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of orders.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OrderError {
    /// No such order.
    #[error("order {0} not found")]
    NotFound(OrderId),
    /// The order was not at the expected version (a concurrent change won); nothing was written.
    #[error("order {order} is at version {actual}, expected {expected}")]
    VersionConflict {
        /// The order.
        order: OrderId,
        /// The version the caller read.
        expected: u64,
        /// The version the order is at.
        actual: u64,
    },
    /// The order lifecycle does not allow this change.
    #[error("order cannot go from {from} to {to}")]
    InvalidTransition {
        /// Current status.
        from: OrderStatus,
        /// Requested status.
        to: OrderStatus,
    },
    /// The idempotency key was already used for a different request.
    #[error("idempotency key {0} was used for a different request")]
    IdempotencyConflict(IdempotencyKey),
    /// The order id already exists.
    #[error("order {0} already exists")]
    Duplicate(OrderId),
    /// An order that breaks a rule (no lines, mixed currencies).
    #[error("invalid order: {0}")]
    Invalid(#[from] ValidationError),
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors talking to a payment provider. A decline is not an error: it is a
/// [`crate::payment::PaymentStatus::Failed`] outcome.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The provider did not answer in time: the charge may or may not have happened.
    #[error("payment provider timed out")]
    Timeout,
    /// The provider could not be reached: the charge may or may not have happened.
    #[error("payment provider unavailable: {message}")]
    Unavailable {
        /// Details.
        message: String,
        /// The transport error.
        #[source]
        source: Option<BoxError>,
    },
    /// The provider refused the request itself (bad amount, unknown payment).
    #[error("payment request rejected: {message}")]
    Rejected {
        /// The provider's reason.
        message: String,
    },
    /// The provider answered something this adapter cannot understand.
    #[error("unexpected provider response: {message}")]
    Protocol {
        /// Details.
        message: String,
    },
}

impl PaymentError {
    /// Whether the charge may have happened despite the error (ask the provider later).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(
            self,
            PaymentError::Timeout
                | PaymentError::Unavailable { .. }
                | PaymentError::Protocol { .. }
        )
    }
}

/// A cart line whose price changed since it was added.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PriceChange {
    /// The SKU.
    pub sku: Sku,
    /// The price the line was added at.
    pub was: Money,
    /// The catalog price now.
    pub now: Money,
}

/// Why a chosen shipping quote cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShippingQuoteProblem {
    /// Its fields no longer match its id: it was edited.
    #[error("it was altered")]
    Altered,
    /// It was quoted for another cart.
    #[error("it belongs to another cart")]
    AnotherCart,
    /// It was quoted for another address.
    #[error("it was quoted for another address")]
    AnotherAddress,
    /// It expired.
    #[error("it expired")]
    Expired,
    /// The method now costs another amount.
    #[error("the method now costs {now} (was {was})")]
    AmountChanged {
        /// The quoted amount.
        was: Money,
        /// The amount now.
        now: Money,
    },
    /// The method is no longer offered for this cart and address.
    #[error("method `{0}` is no longer offered")]
    NoLongerOffered(String),
}

/// Errors of the checkout saga.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CheckoutError {
    /// There is no cart with this id.
    #[error("cart {0} not found")]
    CartNotFound(CartId),
    /// The cart has no lines.
    #[error("cart {0} is empty")]
    EmptyCart(CartId),
    /// Catalog prices changed since the lines were added; the cart now holds the new prices and
    /// no order was placed. Show the changes and let the shopper confirm again.
    #[error("{} price(s) changed since the items were added", changes.len())]
    PricesChanged {
        /// Each changed line.
        changes: Vec<PriceChange>,
    },
    /// An item in the cart is no longer for sale; no order was placed.
    #[error("sku {0} is no longer available")]
    ItemUnavailable(Sku),
    /// Stock ran out and nothing was charged. A new checkout turned away for stock stores
    /// nothing (`order` is `None`); an order placed earlier whose stock ran out before it
    /// was paid (its reservation expired) is FAILED.
    #[error("out of stock{}", order.map(|o| format!(" (order {o} failed)")).unwrap_or_default())]
    OutOfStock {
        /// The failed order, when one had been placed.
        order: Option<OrderId>,
        /// Every SKU that was short.
        shortages: Vec<Shortage>,
    },
    /// The payment was declined; the order is FAILED and its stock released.
    #[error("order {order} failed: payment declined ({reason})")]
    PaymentDeclined {
        /// The failed order.
        order: OrderId,
        /// The provider's reason.
        reason: String,
    },
    /// The payment succeeded after the order's stock was released, and the stock could not
    /// be taken again: the order is FAILED and the payment was refunded.
    #[error("order {order} failed: stock ran out before the payment completed; refunded")]
    StockLostAfterPayment {
        /// The failed order.
        order: OrderId,
        /// Every SKU that was short.
        shortages: Vec<Shortage>,
    },
    /// The payment was never completed (abandoned, or refunded by the provider); the order is
    /// FAILED and holds no money.
    #[error("order {order} failed: the payment was not completed")]
    PaymentNotCompleted {
        /// The failed order.
        order: OrderId,
    },
    /// Another checkout of this cart is being paid or was paid: no second charge was made.
    /// Show the shopper that order.
    #[error("the cart is being paid by order {order}")]
    CartInCheckout {
        /// The order that claimed the cart.
        order: OrderId,
    },
    /// The cart changed while the order was being placed (another checkout paid for its
    /// units, or they were taken out): the order FAILED and nothing was charged.
    #[error("order {order} failed: the cart changed during checkout; nothing was charged")]
    CartChanged {
        /// The failed order.
        order: OrderId,
    },
    /// The order placed with this key was confirmed, then cancelled and refunded.
    #[error("order {0} was cancelled")]
    OrderCancelled(OrderId),
    /// The idempotency key was already used for a different request; nothing was done.
    #[error("idempotency key {0} was used for a different request")]
    IdempotencyConflict(IdempotencyKey),
    /// The shop ships or taxes, and the request has no [`crate::checkout::Delivery`]
    /// (contact and shipping address); nothing was done.
    #[error("a contact e-mail and a shipping address are required")]
    DeliveryRequired,
    /// The shop ships, and no shipping method was chosen; nothing was done.
    #[error("choose a shipping method")]
    ShippingRequired,
    /// The chosen shipping quote cannot be used; nothing was done. Quote shipping again.
    #[error("the shipping quote cannot be used: {0}")]
    ShippingQuote(ShippingQuoteProblem),
    /// Shipping could not be quoted.
    #[error(transparent)]
    Shipping(#[from] ShippingError),
    /// Tax could not be computed.
    #[error(transparent)]
    Tax(#[from] TaxError),
    /// The price quote could not be computed.
    #[error(transparent)]
    Quote(#[from] QuoteError),
    /// The price is no longer the one the shopper accepted (a price, the shipping or the
    /// tax changed); nothing was done. Show the changes and the new quote, and ask again.
    #[error("the price changed since it was accepted ({} change(s))", changes.len())]
    QuoteChanged {
        /// What changed.
        changes: Vec<QuoteChange>,
        /// The quote now.
        quote: Box<Quote>,
    },

    /// A coupon code cannot be used ([`crate::promotion::PromotionError::Coupon`]), or a
    /// promotion's limit was reached at Pay ([`crate::promotion::PromotionError::Exhausted`]:
    /// nothing was stored or charged; ask again, or set
    /// [`crate::CheckoutRequest::without_exhausted_promotions`]), or the promotion store
    /// failed.
    #[error(transparent)]
    Promotion(#[from] crate::promotion::PromotionError),
    /// A cart rule or the cart store failed.
    #[error(transparent)]
    Cart(#[from] CartError),
    /// The catalog failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// The inventory failed. The order stays PENDING; `recover()` finishes it.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// The order store failed. An order that exists stays PENDING; `recover()` finishes it.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// Money arithmetic failed (mixed currencies in one cart).
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The payment provider failed before answering. The order stays PENDING with its stock
    /// held; `recover()` asks the provider and finishes it.
    #[error(transparent)]
    Payment(#[from] PaymentError),
}

/// Errors of event delivery.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The sink could not take the event; it stays in the outbox and is delivered again.
    #[error("event delivery failed: {message}")]
    Delivery {
        /// Details.
        message: String,
        /// The sink's error.
        #[source]
        source: Option<BoxError>,
    },
    /// The destination refuses this event for good (too large, not allowed, not
    /// understood): the relay tries it a few times and then sets it aside as a dead letter.
    #[error("event rejected: {message}")]
    Rejected {
        /// Why.
        message: String,
    },
    /// An outbox row that is not an event: its payload does not decode.
    #[error("corrupt outbox event {seq}: {message}")]
    Corrupt {
        /// Its place in the outbox.
        seq: u64,
        /// What the decoder said.
        message: String,
    },
    /// The outbox failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of product search.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    /// The query breaks a limit (page size, filter range).
    #[error("invalid search query: {0}")]
    InvalidQuery(String),
    /// The index failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of recommendation stores.
pub type RecommendationError = StoreError;

/// Errors of saving to an address book ([`crate::address_book::AddressBook`]).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum AddressBookError {
    /// The customer already has the most addresses they may save; nothing was saved.
    #[error("address book cannot hold more than {max} addresses")]
    Full {
        /// The per-customer limit.
        max: usize,
    },
    /// The backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Any error of the library.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A validation rule.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// Catalog.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Carts.
    #[error(transparent)]
    Cart(#[from] CartError),
    /// Inventory.
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    /// Orders.
    #[error(transparent)]
    Order(#[from] OrderError),
    /// Payments.
    #[error(transparent)]
    Payment(#[from] PaymentError),
    /// Checkout.
    #[error(transparent)]
    Checkout(#[from] CheckoutError),
    /// Events.
    #[error(transparent)]
    Event(#[from] EventError),
    /// Search.
    #[error(transparent)]
    Search(#[from] SearchError),
    /// Address books.
    #[error(transparent)]
    AddressBook(#[from] AddressBookError),
    /// Promotions and coupon codes.
    #[error(transparent)]
    Promotion(#[from] crate::promotion::PromotionError),
    /// Money.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// A malformed id.
    #[error(transparent)]
    Id(#[from] IdError),
    /// A storage backend.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A webhook that failed verification.
    #[error(transparent)]
    Webhook(#[from] crate::payment::WebhookError),
}

/// What kind of failure an error is, so an application can branch in one line (map to an
/// HTTP status, decide to retry) without matching every variant of every area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input: the same request fails the same way; nothing was changed.
    Invalid,
    /// What was asked for does not exist.
    NotFound,
    /// The request collides with the current state (a concurrent change, a key reused for
    /// another request, a cart already being paid): reload and decide again.
    Conflict,
    /// The shop said no: out of stock, a declined payment, an order that cannot be finished.
    Rejected,
    /// A dependency failed or did not answer, and the outcome may be unknown: retrying the
    /// same request is safe (every operation is idempotent) and may succeed.
    Transient,
    /// Stored data cannot be read, or a dependency answered nonsense: an operator must look.
    Internal,
}

/// The predicates every error of the library offers, from its [`ErrorKind`].
macro_rules! kind_predicates {
    ($($error:ty),* $(,)?) => {
        $(
            impl $error {
                /// Whether retrying the same request later may succeed ([`ErrorKind::Transient`]).
                pub fn is_transient(&self) -> bool {
                    self.kind() == ErrorKind::Transient
                }

                /// Whether the request collides with the current state ([`ErrorKind::Conflict`]).
                pub fn is_conflict(&self) -> bool {
                    self.kind() == ErrorKind::Conflict
                }

                /// Whether what was asked for does not exist ([`ErrorKind::NotFound`]).
                pub fn is_not_found(&self) -> bool {
                    self.kind() == ErrorKind::NotFound
                }

                /// Whether the input is bad ([`ErrorKind::Invalid`]).
                pub fn is_invalid(&self) -> bool {
                    self.kind() == ErrorKind::Invalid
                }
            }
        )*
    };
}

kind_predicates!(
    StoreError,
    ValidationError,
    MoneyError,
    IdError,
    crate::address::AddressError,
    crate::shipping::ShippingError,
    crate::tax::TaxError,
    crate::quote::QuoteError,
    ShippingQuoteProblem,
    crate::payment::WebhookError,
    CatalogError,
    CartError,
    InventoryError,
    OrderError,
    PaymentError,
    CheckoutError,
    EventError,
    SearchError,
    AddressBookError,
    crate::promotion::PromotionError,
    crate::promotion::CouponProblem,
    Error,
);

impl ValidationError {
    /// The kind of failure: always [`ErrorKind::Invalid`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl MoneyError {
    /// The kind of failure: always [`ErrorKind::Invalid`] (amounts that cannot be combined).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl IdError {
    /// The kind of failure: always [`ErrorKind::Invalid`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl crate::address::AddressError {
    /// The kind of failure: always [`ErrorKind::Invalid`].
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Invalid
    }
}

impl ShippingError {
    /// The kind of failure: no zone is bad input, an adapter down is transient, an adapter
    /// answering nonsense is for an operator.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShippingError::NoZone(_) => ErrorKind::Invalid,
            ShippingError::Unavailable(_) => ErrorKind::Transient,
            ShippingError::InvalidAnswer(_) => ErrorKind::Internal,
        }
    }
}

impl TaxError {
    /// The kind of failure: no rate is bad input (the address or the class), a provider down
    /// is transient, a provider answering nonsense is for an operator.
    pub fn kind(&self) -> ErrorKind {
        match self {
            TaxError::NoRate { .. } => ErrorKind::Invalid,
            TaxError::Unavailable(_) => ErrorKind::Transient,
            TaxError::InvalidAnswer(_) => ErrorKind::Internal,
        }
    }
}

impl QuoteError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            QuoteError::Empty | QuoteError::Money(_) => ErrorKind::Invalid,
            QuoteError::Rates(_) | QuoteError::Discounts(_) => ErrorKind::Internal,
        }
    }
}

impl ShippingQuoteProblem {
    /// The kind of failure: an expired or re-priced quote collides with the present
    /// (quote again); the others are bad input.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ShippingQuoteProblem::Expired | ShippingQuoteProblem::AmountChanged { .. } => {
                ErrorKind::Conflict
            }
            _ => ErrorKind::Invalid,
        }
    }
}

impl crate::payment::WebhookError {
    /// The kind of failure: no secret configured is for an operator; anything else is a
    /// request to refuse.
    pub fn kind(&self) -> ErrorKind {
        match self {
            crate::payment::WebhookError::NotConfigured => ErrorKind::Internal,
            _ => ErrorKind::Invalid,
        }
    }
}

impl StoreError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable { .. } | StoreError::Conflict { .. } => ErrorKind::Transient,
            StoreError::Corrupt { .. } | StoreError::Backend { .. } => ErrorKind::Internal,
        }
    }
}

impl CatalogError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CatalogError::Invalid(_) => ErrorKind::Invalid,
            CatalogError::DuplicateSku { .. } => ErrorKind::Conflict,
            CatalogError::ProductNotFound(_) => ErrorKind::NotFound,
            CatalogError::Store(e) => e.kind(),
        }
    }
}

impl CartError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CartError::NotFound(_) | CartError::LineNotFound(_) => ErrorKind::NotFound,
            CartError::UnknownSku(_)
            | CartError::Unavailable(_)
            | CartError::InvalidQuantity { .. }
            | CartError::TooManyLines { .. }
            | CartError::CurrencyMismatch { .. }
            | CartError::NotAGuestCart(_) => ErrorKind::Invalid,
            CartError::VersionConflict { .. } => ErrorKind::Conflict,
            CartError::Catalog(e) => e.kind(),
            CartError::Money(_) => ErrorKind::Invalid,
            CartError::Store(e) => e.kind(),
        }
    }
}

impl InventoryError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            InventoryError::OutOfStock { .. } => ErrorKind::Rejected,
            InventoryError::UnknownSku(_) | InventoryError::NoReservation(_) => ErrorKind::NotFound,
            InventoryError::InvalidQuantity { .. } | InventoryError::EmptyReservation => {
                ErrorKind::Invalid
            }
            InventoryError::Released(_)
            | InventoryError::NotCommitted(_)
            | InventoryError::Committed(_) => ErrorKind::Conflict,
            InventoryError::Store(e) => e.kind(),
        }
    }
}

impl OrderError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OrderError::NotFound(_) => ErrorKind::NotFound,
            OrderError::VersionConflict { .. }
            | OrderError::InvalidTransition { .. }
            | OrderError::IdempotencyConflict(_)
            | OrderError::Duplicate(_) => ErrorKind::Conflict,
            OrderError::Invalid(_) => ErrorKind::Invalid,
            OrderError::Store(e) => e.kind(),
        }
    }
}

impl PaymentError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PaymentError::Timeout | PaymentError::Unavailable { .. } => ErrorKind::Transient,
            PaymentError::Rejected { .. } => ErrorKind::Rejected,
            PaymentError::Protocol { .. } => ErrorKind::Internal,
        }
    }
}

impl CheckoutError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CheckoutError::CartNotFound(_) => ErrorKind::NotFound,
            CheckoutError::EmptyCart(_) | CheckoutError::ItemUnavailable(_) => ErrorKind::Invalid,
            CheckoutError::PricesChanged { .. }
            | CheckoutError::IdempotencyConflict(_)
            | CheckoutError::CartInCheckout { .. }
            | CheckoutError::CartChanged { .. } => ErrorKind::Conflict,
            CheckoutError::OutOfStock { .. }
            | CheckoutError::PaymentDeclined { .. }
            | CheckoutError::StockLostAfterPayment { .. }
            | CheckoutError::PaymentNotCompleted { .. }
            | CheckoutError::OrderCancelled(_) => ErrorKind::Rejected,
            CheckoutError::Cart(e) => e.kind(),
            CheckoutError::Catalog(e) => e.kind(),
            CheckoutError::Inventory(e) => e.kind(),
            CheckoutError::Order(e) => e.kind(),
            CheckoutError::Money(_) => ErrorKind::Invalid,
            CheckoutError::DeliveryRequired | CheckoutError::ShippingRequired => ErrorKind::Invalid,
            CheckoutError::ShippingQuote(problem) => problem.kind(),
            CheckoutError::QuoteChanged { .. } => ErrorKind::Conflict,
            CheckoutError::Shipping(e) => e.kind(),
            CheckoutError::Tax(e) => e.kind(),
            CheckoutError::Quote(e) => e.kind(),
            CheckoutError::Promotion(e) => e.kind(),
            // A protocol error leaves the charge's outcome unknown too: finish it later.
            CheckoutError::Payment(e) if e.is_outcome_unknown() => ErrorKind::Transient,
            CheckoutError::Payment(e) => e.kind(),
        }
    }
}

impl EventError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EventError::Delivery { .. } => ErrorKind::Transient,
            EventError::Rejected { .. } => ErrorKind::Rejected,
            EventError::Corrupt { .. } => ErrorKind::Internal,
            EventError::Store(e) => e.kind(),
        }
    }
}

impl SearchError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SearchError::InvalidQuery(_) => ErrorKind::Invalid,
            SearchError::Store(e) => e.kind(),
        }
    }
}

impl AddressBookError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            AddressBookError::Full { .. } => ErrorKind::Invalid,
            AddressBookError::Store(e) => e.kind(),
        }
    }
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Validation(_) | Error::Money(_) | Error::Id(_) => ErrorKind::Invalid,
            Error::Catalog(e) => e.kind(),
            Error::Cart(e) => e.kind(),
            Error::Inventory(e) => e.kind(),
            Error::Order(e) => e.kind(),
            Error::Payment(e) => e.kind(),
            Error::Checkout(e) => e.kind(),
            Error::Event(e) => e.kind(),
            Error::Search(e) => e.kind(),
            Error::AddressBook(e) => e.kind(),
            Error::Promotion(e) => e.kind(),
            Error::Store(e) => e.kind(),
            Error::Webhook(_) => ErrorKind::Invalid,
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn kinds_follow_the_cause_through_every_wrapper() {
        let down = StoreError::Unavailable {
            message: "down".into(),
            source: None,
        };
        let checkout = CheckoutError::Inventory(InventoryError::Store(down.clone()));
        assert!(checkout.is_transient());
        assert!(Error::from(checkout).is_transient());
        assert!(CheckoutError::Payment(PaymentError::Timeout).is_transient());
        assert!(
            CheckoutError::CartInCheckout {
                order: OrderId::new()
            }
            .is_conflict()
        );
        assert!(CheckoutError::CartNotFound(CartId::new()).is_not_found());
        assert!(CartError::TooManyLines { max: 1 }.is_invalid());
        assert_eq!(
            CheckoutError::PaymentDeclined {
                order: OrderId::new(),
                reason: "no".into()
            }
            .kind(),
            ErrorKind::Rejected
        );
        let corrupt = StoreError::Corrupt {
            message: "bad json".into(),
        };
        assert_eq!(OrderError::Store(corrupt).kind(), ErrorKind::Internal);
        assert!(!OrderError::NotFound(OrderId::new()).is_transient());
        assert!(AddressBookError::Full { max: 20 }.is_invalid());
        assert!(CheckoutError::Tax(TaxError::Unavailable("down".into())).is_transient());
        assert!(CheckoutError::ShippingQuote(ShippingQuoteProblem::Expired).is_conflict());
        assert!(CheckoutError::ShippingQuote(ShippingQuoteProblem::Altered).is_invalid());
        assert_eq!(
            CheckoutError::Shipping(ShippingError::InvalidAnswer("?".into())).kind(),
            ErrorKind::Internal
        );
        assert!(crate::address::AddressError::Email.is_invalid());
        assert!(MoneyError::Overflow.is_invalid());
        assert!(down.is_transient() && !down.is_invalid());
        assert!(Error::from(AddressBookError::Store(down)).is_transient());
    }
}
