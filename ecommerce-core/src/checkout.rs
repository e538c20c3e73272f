//! The checkout saga, payment callbacks, recovery of interrupted checkouts, and cancellation.
//!
//! [`Storefront::place_order`] runs:
//!
//! 1. ask the inventory whether it counts enough units
//!    ([`crate::inventory::InventoryStore::shortages`], a hint): if not, the buyer is turned
//!    away ([`CheckoutError::OutOfStock`]) and nothing is stored, no order and no event (a
//!    `tracing` record says who was turned away), so a sold out flash sale costs the database
//!    reads only: the stock hint, and the idempotency key when the cart was ever claimed
//!    ([`crate::cart::Cart::ever_claimed`]);
//! 2. create the order PENDING (the same customer and idempotency key return the same order);
//! 3. claim the cart ([`crate::cart::CheckoutClaim`]): a second "Pay" on the same cart, with
//!    any key, is answered with the first order ([`CheckoutError::CartInCheckout`]);
//! 4. reserve every line's stock in one all-or-nothing step; if stock is short the order
//!    becomes FAILED naming the short SKUs;
//! 5. charge the payment with a key derived from the order;
//! 6. on success sell the stock and mark the order CONFIRMED, recording the capture in its
//!    money ledger and an `OrderConfirmed` event in the same step; on decline release the
//!    stock and mark it FAILED. A gateway may answer pending: the order waits for
//!    [`Storefront::handle_payment_event`].
//!
//! With a [`crate::unit::UnitOfWork`] (orders and stock in one database) steps 2 and 4 are
//! one transaction, together with step 3 and the record that the charge is sent when the
//! carts are there too, and step 6's sale and confirmation are another (with the ordered
//! units taken out of the cart, when the carts are there too).
//!
//! When the unit claims the carts too, a checkout of a cart this storefront just stored or
//! read starts from the cart as it remembers it, without reading it again
//! ([`crate::StorefrontConfig::recent_carts`]): the claim is a compare-and-set on that
//! version, so a cart changed since (by another process) rolls the first transaction back,
//! and the checkout goes on from the cart as stored; a refusal of a remembered cart is
//! checked against the cart as stored too.
//!
//! Nothing runs between the charge and the confirmation but what records them. The side
//! effects of a confirmation run off its path: the ordered units leave the cart right after
//! it (unless they left in its transaction) and again from the `OrderConfirmed` event, from
//! which co-purchases are counted too, through [`CheckoutEffects`]; they are idempotent, and
//! their failure never undoes or delays a confirmation.
//!
//! The gateway is the source of truth for a payment: retries, callbacks and recovery ask it
//! ([`crate::payment::PaymentGateway::lookup`]) and act on its answer, never on a callback's
//! status alone. For every order, captured - refunded equals its total once it is paid
//! ([`Order::net_paid`]) and zero otherwise; a charge key and a refund key per order make a
//! second charge or refund impossible.
//!
//! The stores are pluggable, so no transaction spans them. The saga is correct because every
//! step is idempotent and keyed by the order (claim, reserve, commit, release, charge, refund,
//! and each status change is a compare-and-set on the order's version), and every side effect
//! of a status change happens *before* the compare-and-set that records it. A process may die
//! between any two steps: [`Storefront::recover`] finds PENDING orders older than a deadline,
//! asks the gateway what happened to their charge, and finishes them by re-running the steps.
//! No payment call happens while a store holds a lock or transaction: each store call returns
//! before the next step starts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cart::{Cart, CartStore, CheckoutClaim};
use crate::catalog::Offer;
use crate::error::{
    CartError, CheckoutError, EventError, InventoryError, OrderError, PaymentError, PriceChange,
    Shortage,
};
use crate::events::{DomainEvent, EventEnvelope, EventSink};
use crate::id::{CartId, CustomerId, IdempotencyKey, OrderId, Sku};
use crate::inventory::{MAX_QUANTITY, ReservationLine, ReservationState};
use crate::money::Money;
use crate::order::{
    FailureReason, MoneyMovement, MoneyMovementKind, Order, OrderLine, OrderPatch, OrderPayment,
    OrderStatus, OrderStore,
};
use crate::payment::{
    Charge, ChargeRequest, PaymentEvent, PaymentId, PaymentMethod, PaymentStatus, RefundRequest,
};
use crate::promotion::{PromotionError, PromotionUse};
use crate::recommend::RecommendationStore;
use crate::storefront::Storefront;
use crate::unit::{Sold, UnitError};
/// What the shopper asked for when pressing "Pay".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CheckoutRequest {
    /// The cart to order.
    pub cart: CartId,
    /// Who orders (for a guest, an id the application keeps for them).
    pub customer: CustomerId,
    /// How to pay.
    pub payment_method: PaymentMethod,
    /// The client's key for this attempt: a retry with the same key returns the same order.
    pub idempotency_key: IdempotencyKey,
    /// Contact, addresses and the chosen shipping; required when the shop ships or taxes.
    #[serde(default)]
    pub delivery: Option<Delivery>,
    /// The quote the shopper accepted ([`Storefront::quote`]): if the price is no longer
    /// that one, nothing is charged and the answer is [`CheckoutError::QuoteChanged`].
    /// Without it the current quote is charged.
    #[serde(default)]
    pub accepted_quote: Option<crate::quote::Quote>,
    /// When a promotion's limit is reached at Pay (another order took the last use): `false`
    /// (the default) stops with [`PromotionError::Exhausted`], nothing stored or charged;
    /// `true` goes on without that promotion, at the price without it (its quote's trace
    /// says [`crate::promotion::NotApplied::Exhausted`]). An accepted quote still binds: a
    /// higher price is answered with [`CheckoutError::QuoteChanged`], never charged.
    #[serde(default)]
    pub without_exhausted_promotions: bool,
    /// "Buy now": the one item this request orders, in a cart of its own
    /// ([`CheckoutRequest::buy_now`]); the shopper's cart is left alone.
    #[serde(default)]
    pub buy_now: Option<BuyNow>,
}

/// The item of a "Buy now" request ([`CheckoutRequest::buy_now`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuyNow {
    /// The SKU ordered.
    pub sku: Sku,
    /// How many units.
    pub quantity: u32,
}

impl CheckoutRequest {
    /// A request with no delivery and no accepted quote, stopping if a promotion's limit is
    /// reached at Pay.
    pub fn new(
        cart: CartId,
        customer: CustomerId,
        payment_method: PaymentMethod,
        idempotency_key: IdempotencyKey,
    ) -> Self {
        CheckoutRequest {
            cart,
            customer,
            payment_method,
            idempotency_key,
            delivery: None,
            accepted_quote: None,
            without_exhausted_promotions: false,
            buy_now: None,
        }
    }

    /// A "Buy now" request: `quantity` units of `sku` ordered at once, without the shopper's
    /// cart (which it leaves alone). [`Storefront::place_order`] puts the item at its catalog
    /// price in a cart of its own, [`CartId::buy_now`] of the customer, the key and the item,
    /// and checks that cart out in the same call, without reading it back. A retry with the
    /// same key and item returns the first try's order; the same key with another item or
    /// payment method is [`CheckoutError::IdempotencyConflict`].
    pub fn buy_now(
        sku: Sku,
        quantity: u32,
        customer: CustomerId,
        payment_method: PaymentMethod,
        idempotency_key: IdempotencyKey,
    ) -> Self {
        let cart = CartId::buy_now(customer, &idempotency_key, &sku, quantity);
        CheckoutRequest {
            buy_now: Some(BuyNow { sku, quantity }),
            ..CheckoutRequest::new(cart, customer, payment_method, idempotency_key)
        }
    }

    /// Sets the contact, addresses and chosen shipping.
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// Sets the quote the shopper accepted, the price Pay must charge.
    pub fn with_accepted_quote(mut self, quote: crate::quote::Quote) -> Self {
        self.accepted_quote = Some(quote);
        self
    }

    /// Sets whether Pay goes on without a promotion whose limit is reached instead of stopping.
    pub fn without_exhausted_promotions(mut self, without: bool) -> Self {
        self.without_exhausted_promotions = without;
        self
    }

    /// A fingerprint of the request: the same key with another fingerprint is a conflict.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.cart.as_uuid().as_bytes());
        hasher.update(self.customer.as_uuid().as_bytes());
        hasher.update(self.payment_method.as_str().as_bytes());
        if let Some(delivery) = &self.delivery {
            hasher.update(serde_json::to_vec(delivery).expect("deliveries serialize"));
        }
        hex::encode(hasher.finalize())
    }
}

/// What one [`Storefront::recover`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Held reservations that had expired and were released.
    pub expired_reservations: Vec<OrderId>,
    /// Orders confirmed (their payment had succeeded).
    pub confirmed: Vec<OrderId>,
    /// Orders failed (payment failed or never happened).
    pub failed: Vec<OrderId>,
    /// Orders still waiting for the customer or the provider.
    pub still_pending: Vec<OrderId>,
    /// Orders that could not be finished this time, with why; the next pass tries again.
    pub errors: Vec<(OrderId, String)>,
    /// Orders whose held promotion uses were committed (the order was confirmed).
    pub uses_committed: Vec<OrderId>,
    /// Orders whose held promotion uses were given back (the order failed, was cancelled,
    /// or was never stored).
    pub uses_released: Vec<OrderId>,
}

/// The key of the charge of an order: the same for every attempt.
pub fn charge_key(order: OrderId) -> String {
    format!("order-{order}-charge")
}

/// The key of the refund of an order.
pub fn refund_key(order: OrderId) -> String {
    format!("order-{order}-refund")
}

fn reservation_lines(order: &Order) -> Vec<ReservationLine> {
    order
        .lines
        .iter()
        .map(|l| ReservationLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect()
}

/// Where a placed order stands. Every other outcome (out of stock, declined, another
/// checkout of the cart in flight...) is a [`CheckoutError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Paid and its stock sold (or later in its life: shipped, delivered).
    Confirmed(Order),
    /// The gateway waits for the customer (3-D Secure, a redirect): the order is PENDING with
    /// its stock held, and [`Storefront::handle_payment_event`] finishes it.
    AwaitingPayment(Order),
}

impl Placed {
    /// The order.
    pub fn order(&self) -> &Order {
        match self {
            Placed::Confirmed(order) | Placed::AwaitingPayment(order) => order,
        }
    }

    /// The order, by value.
    pub fn into_order(self) -> Order {
        match self {
            Placed::Confirmed(order) | Placed::AwaitingPayment(order) => order,
        }
    }

    /// Whether the order is paid.
    pub fn is_confirmed(&self) -> bool {
        matches!(self, Placed::Confirmed(_))
    }
}

/// The result an order stands for: what the first call returned, returned again to every
/// retry with the same key.
fn outcome(order: Order) -> Result<Placed, CheckoutError> {
    match order.status {
        OrderStatus::Confirmed | OrderStatus::Shipped | OrderStatus::Delivered => {
            Ok(Placed::Confirmed(order))
        }
        OrderStatus::Pending => Ok(Placed::AwaitingPayment(order)),
        OrderStatus::Cancelled => Err(CheckoutError::OrderCancelled(order.id)),
        OrderStatus::Failed => Err(failure_error(order)),
    }
}

fn failure_error(order: Order) -> CheckoutError {
    match order.failure {
        Some(FailureReason::OutOfStock { shortages }) => CheckoutError::OutOfStock {
            order: Some(order.id),
            shortages,
        },
        Some(FailureReason::PaymentDeclined { reason }) => CheckoutError::PaymentDeclined {
            order: order.id,
            reason,
        },
        Some(FailureReason::StockLostAfterPayment { shortages }) => {
            CheckoutError::StockLostAfterPayment {
                order: order.id,
                shortages,
            }
        }
        Some(FailureReason::CartClaimed { by }) => CheckoutError::CartInCheckout { order: by },
        Some(FailureReason::CartChanged) => CheckoutError::CartChanged { order: order.id },
        Some(FailureReason::PaymentNotCompleted) | None => {
            CheckoutError::PaymentNotCompleted { order: order.id }
        }
    }
}

/// The units an order takes, per SKU, in the order of its lines.
fn ordered_units(order: &Order) -> Vec<(crate::id::Sku, u32)> {
    order
        .lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity))
        .collect()
}

/// Whether the cart still holds every unit the order takes.
fn covers(cart: &Cart, order: &Order) -> bool {
    order
        .lines
        .iter()
        .all(|l| cart.line(&l.sku).is_some_and(|c| c.quantity >= l.quantity))
}

/// The units in a cart, per SKU, in the order of its lines.
fn cart_units(cart: &Cart) -> Vec<(crate::id::Sku, u32)> {
    cart.lines
        .iter()
        .map(|l| (l.sku.clone(), l.quantity))
        .collect()
}

fn captured(order: OrderId, payment: &PaymentId, amount: Money) -> MoneyMovement {
    MoneyMovement {
        kind: MoneyMovementKind::Captured,
        payment: payment.clone(),
        amount,
        key: charge_key(order),
    }
}

fn refunded(order: OrderId, payment: &PaymentId, amount: Money) -> MoneyMovement {
    MoneyMovement {
        kind: MoneyMovementKind::Refunded,
        payment: payment.clone(),
        amount,
        key: refund_key(order),
    }
}

/// The cart with the order's claim on it.
fn with_claim(cart: &Cart, order: &Order) -> Cart {
    let mut claimed = cart.clone();
    claimed.checkout = Some(CheckoutClaim {
        order: order.id,
        lines: ordered_units(order),
    });
    claimed.ever_claimed = true;
    claimed
}

/// A new PENDING order of a request, its cart's priced lines and their quote.
fn new_order(
    request: &CheckoutRequest,
    cart: &Cart,
    lines: Vec<OrderLine>,
    quote: crate::quote::Quote,
    fingerprint: &str,
    now: chrono::DateTime<Utc>,
) -> Order {
    let delivery = request.delivery.clone();
    Order {
        id: OrderId::new(),
        customer: request.customer,
        cart: cart.id,
        idempotency_key: request.idempotency_key.clone(),
        request_fingerprint: fingerprint.to_owned(),
        status: OrderStatus::Pending,
        version: 1,
        lines,
        total: quote.total,
        payment: None,
        failure: None,
        payment_method: Some(request.payment_method.clone()),
        money: Vec::new(),
        charge_started_at: None,
        contact: delivery.as_ref().map(|d| d.email.clone()),
        shipping_address: delivery.as_ref().map(|d| d.shipping_address.clone()),
        billing_address: delivery.and_then(|d| d.billing_address),
        quote: Some(quote),
        created_at: now,
        updated_at: now,
    }
}

/// Turns a buyer away for stock with nothing stored (a concurrent retry of this very request
/// may have placed its order, which holds the units: [`Storefront::place_order`] looks it up).
fn sold_out(shortages: Vec<Shortage>, request: &CheckoutRequest) -> CheckoutError {
    tracing::info!(
        customer = %request.customer,
        cart = %request.cart,
        "checkout turned away: out of stock"
    );
    CheckoutError::OutOfStock {
        order: None,
        shortages,
    }
}

/// How [`Storefront::place_order`] goes on once its order is stored, or found stored.
enum Prepared {
    /// The cart is claimed by this very request's order: its result.
    Resume(Order),
    /// The order as stored (or the key's earlier order), whether its stock is held (a unit
    /// of work took it), and the cart it pays for (as stored with its claim, when claimed).
    Created(crate::order::Created, bool, Cart),
}

/// Why [`Storefront::prepare`] stored no order.
struct Refused {
    error: CheckoutError,
    /// The cart was never claimed by a checkout: no earlier order of the request's key can
    /// be answered with instead.
    fresh_cart: bool,
}

/// The cart a checkout starts from when it does not read it: as this call stored it (a
/// "Buy now" cart, with the offers its line was priced at), or as this storefront last
/// stored or read it ([`crate::StorefrontConfig::recent_carts`]).
struct Seen {
    cart: Cart,
    offers: Option<HashMap<Sku, Offer>>,
    /// Remembered, not stored by this call: it may have changed since (in another
    /// process), which its claim's compare-and-set finds out.
    remembered: bool,
}

/// Units beyond an order's quantity that make its SKU's stock plenty: the checkout's stock
/// hint does not ask about such a SKU again for [`PLENTY_FOR`].
const PLENTY: u32 = 100;

/// How long a SKU seen with plenty of stock is not asked about by the stock hint.
pub(crate) const PLENTY_FOR: Duration = Duration::from_secs(1);

/// How often a compare-and-set that keeps losing is tried before giving up.
const CAS_ATTEMPTS: usize = 16;

impl Storefront {
    /// Places an order from a cart and pays for it (the saga above).
    ///
    /// Returns [`Placed::Confirmed`] when paid, or [`Placed::AwaitingPayment`] when the gateway
    /// waits for the customer (3-D Secure; see [`Storefront::handle_payment_event`]). Retrying
    /// with the same customer, key and request returns the same result; concurrent retries
    /// make one order; another key for the same cart content makes no second charge. A
    /// "Buy now" request ([`CheckoutRequest::buy_now`]) first stores its item's own cart,
    /// then checks it out without reading it back.
    ///
    /// # Errors
    /// - before an order exists, nothing changed: [`CheckoutError::Cart`] (a "Buy now" item
    ///   refused as [`Storefront::add_item`] refuses one; no cart is stored),
    ///   [`CheckoutError::CartNotFound`],
    ///   [`CheckoutError::EmptyCart`], [`CheckoutError::ItemUnavailable`],
    ///   [`CheckoutError::PricesChanged`] (the cart was re-priced; ask the shopper again),
    ///   [`CheckoutError::IdempotencyConflict`], [`CheckoutError::CartInCheckout`] (another
    ///   checkout of this cart is being paid or was paid: show that order),
    ///   [`CheckoutError::OutOfStock`] with no order (the inventory counted too few units
    ///   before an order was stored; a retry with the same key tries again),
    ///   [`CheckoutError::Promotion`] with [`PromotionError::Exhausted`] (a promotion's limit
    ///   was reached; see [`CheckoutRequest::without_exhausted_promotions`]);
    /// - the order FAILED, holding no stock and no money: [`CheckoutError::OutOfStock`]
    ///   naming it (the units went between the count and the reservation),
    ///   [`CheckoutError::PaymentDeclined`], [`CheckoutError::StockLostAfterPayment`] (the
    ///   payment was refunded), [`CheckoutError::PaymentNotCompleted`];
    /// - the order stays PENDING and a retry with the same key or [`Storefront::recover`]
    ///   finishes it (the charge may have been taken: never tell the shopper otherwise):
    ///   [`CheckoutError::Payment`] (outcome unknown), [`CheckoutError::Inventory`],
    ///   [`CheckoutError::Order`] and other store errors.
    #[tracing::instrument(
        name = "place_order",
        skip_all,
        fields(cart = %request.cart, customer = %request.customer, order = tracing::field::Empty)
    )]
    pub async fn place_order(&self, mut request: CheckoutRequest) -> Result<Placed, CheckoutError> {
        let seen = match request.buy_now.clone() {
            Some(item) => {
                request.cart = CartId::buy_now(
                    request.customer,
                    &request.idempotency_key,
                    &item.sku,
                    item.quantity,
                );
                self.buy_now_cart(request.cart, &item).await?
            }
            None => self.remembered_cart(request.cart),
        };
        let remembered = seen
            .as_ref()
            .filter(|s| s.remembered)
            .map(|s| s.cart.version);
        let fingerprint = request.fingerprint();
        // The key is not looked up first: storing the order finds an earlier order of the
        // key (and the cart's claim names it), so a new order costs no read for it. A
        // refusal before the order is stored looks it up instead, unless the cart was never
        // claimed: a retry of a request that placed its order is answered with that order,
        // whatever the cart holds now, and a buyer turned away from a fresh cart (every
        // buyer after the last unit of a flash sale) costs no read for it.
        let prepared = match (
            Box::pin(self.prepare(&request, &fingerprint, seen)).await,
            remembered,
        ) {
            (Err(refused), Some(remembered)) => {
                Box::pin(self.prepare_as_stored(&request, &fingerprint, refused, remembered)).await
            }
            (prepared, _) => prepared,
        };
        let created = match prepared {
            Ok(created) => created,
            Err(Refused {
                error,
                fresh_cart: true,
            }) => return Err(error),
            Err(Refused { error, .. }) => {
                return match self
                    .orders
                    .by_idempotency_key(request.customer, &request.idempotency_key)
                    .await
                {
                    Ok(Some(existing)) => {
                        Box::pin(self.resume(existing, &request, &fingerprint)).await
                    }
                    // The refusal stands (and is the clearer error should the lookup fail).
                    Ok(None) | Err(_) => Err(error),
                };
            }
        };
        match created {
            Prepared::Resume(order) => Box::pin(self.resume(order, &request, &fingerprint)).await,
            Prepared::Created(crate::order::Created::New(order), reserved, cart) => {
                outcome(Box::pin(self.drive(order, Some(cart), reserved)).await?)
            }
            Prepared::Created(crate::order::Created::Existing(order), _, _) => {
                Box::pin(self.resume(order, &request, &fingerprint)).await
            }
        }
    }

    /// The cart of a "Buy now" request, made with its item: `Some` with the offer it was
    /// priced at when this call made it (the checkout takes both as they are, without reading
    /// them again), `None` when it exists already (an earlier try of the request made it: it
    /// is read as any cart is, and answers with that try's order, whatever the item's state
    /// now).
    async fn buy_now_cart(&self, id: CartId, item: &BuyNow) -> Result<Option<Seen>, CheckoutError> {
        match self
            .create_guest_cart_as(id, &item.sku, item.quantity)
            .await
        {
            Ok((cart, offer)) => Ok(Some(Seen {
                cart,
                offers: Some(HashMap::from([(item.sku.clone(), offer)])),
                remembered: false,
            })),
            Err(CartError::VersionConflict { .. }) => Ok(None),
            Err(e) => match self.carts.load(id).await {
                Ok(Some(_)) => Ok(None),
                // Never made: the item's own error (an unknown SKU, a bad quantity) stands.
                Ok(None) | Err(_) => Err(e.into()),
            },
        }
    }

    /// The cart as this storefront last stored or read it, taken for a checkout that
    /// starts from it (see [`crate::StorefrontConfig::recent_carts`]): a cart is checked out
    /// from its memory once at most; a checkout after that reads it.
    fn remembered_cart(&self, id: CartId) -> Option<Seen> {
        if !self.unit_claims_carts {
            return None;
        }
        self.recent_carts.remove(&id).map(|cart| Seen {
            cart,
            offers: None,
            remembered: true,
        })
    }

    /// A refusal of a cart as this storefront remembered it, at version `remembered`: it
    /// stands when the cart is stored at that version (or, for changed prices, the repricing
    /// was written at that version); otherwise the cart changed since (another process
    /// wrote it), and the checkout goes on from the cart as stored.
    async fn prepare_as_stored(
        &self,
        request: &CheckoutRequest,
        fingerprint: &str,
        refused: Refused,
        remembered: u64,
    ) -> Result<Prepared, Refused> {
        if matches!(refused.error, CheckoutError::PricesChanged { .. }) {
            return Err(refused);
        }
        let cart = match self.carts.load(request.cart).await {
            Ok(Some(cart)) if cart.version != remembered => cart,
            Ok(None) => {
                return Err(Refused {
                    error: CheckoutError::CartNotFound(request.cart),
                    fresh_cart: false,
                });
            }
            Ok(Some(_)) | Err(_) => return Err(refused),
        };
        let seen = Seen {
            cart,
            offers: None,
            remembered: false,
        };
        Box::pin(self.prepare(request, fingerprint, Some(seen))).await
    }

    /// The part of [`Storefront::place_order`] up to the stored order: the cart claimed by
    /// this very request's order, or the order created (with its stock when the unit of work
    /// takes it, see [`Storefront::create_order`]), or why none could be. Nothing is stored
    /// on error. `seen` is the request's cart when it is not to be read (see [`Seen`]).
    async fn prepare(
        &self,
        request: &CheckoutRequest,
        fingerprint: &str,
        seen: Option<Seen>,
    ) -> Result<Prepared, Refused> {
        let refused = |error: CheckoutError| Refused {
            error,
            fresh_cart: false,
        };
        let (cart, offers, remembered) = match seen {
            Some(Seen {
                cart,
                offers,
                remembered,
            }) => (Some(cart), offers, remembered),
            None => (
                self.carts
                    .load(request.cart)
                    .await
                    .map_err(|e| refused(e.into()))?,
                None,
                false,
            ),
        };
        let cart = cart.filter(|c| c.customer.is_none_or(|owner| owner == request.customer));
        let cart = match cart {
            Some(cart) if !cart.is_empty() => {
                match Box::pin(self.unclaimed(cart, request))
                    .await
                    .map_err(refused)?
                {
                    Ok(cart) => cart,
                    // This very request (an earlier try, or a concurrent retry) created the order
                    // and claimed the cart.
                    Err(own) => return Ok(Prepared::Resume(own)),
                }
            }
            // Perhaps cleared by this very request's paid order: the caller looks it up.
            Some(_) => return Err(refused(CheckoutError::EmptyCart(request.cart))),
            None => return Err(refused(CheckoutError::CartNotFound(request.cart))),
        };
        let fresh_cart = !cart.ever_claimed;
        Box::pin(self.prepare_cart(request, fingerprint, cart, offers, remembered))
            .await
            .map_err(|error| Refused { error, fresh_cart })
    }

    /// [`Storefront::prepare`] once the cart is loaded and free to check out.
    async fn prepare_cart(
        &self,
        request: &CheckoutRequest,
        fingerprint: &str,
        cart: Cart,
        offers: Option<HashMap<Sku, Offer>>,
        remembered: bool,
    ) -> Result<Prepared, CheckoutError> {
        let lines = match offers {
            Some(offers) => self.lines_at(&cart, &offers, remembered).await?,
            None => Box::pin(self.reprice(&cart, remembered)).await?,
        };
        Box::pin(self.turned_away(&lines, request)).await?;
        let now = Utc::now();
        let key = order_customer_key(
            &cart,
            request.customer,
            request.delivery.as_ref().map(|d| d.email.as_str()),
        );
        // Promotions whose uses ran out meanwhile, left out when the request allows it.
        let mut exhausted: Vec<Exhausted> = Vec::new();
        let (created, reserved, cart) = loop {
            // Boxed: the saga's future stays small enough for a task's stack.
            let (quote, uses) = Box::pin(self.price(
                &cart,
                &lines,
                request.delivery.as_ref(),
                &key,
                &exhausted,
                now,
            ))
            .await?;
            if !request.without_exhausted_promotions {
                // The quote left out a promotion already used up: the request says stop.
                let used_up = quote
                    .promotion_trace
                    .iter()
                    .find_map(|t| match &t.not_applied {
                        Some(crate::promotion::NotApplied::Exhausted { limit }) => {
                            Some((t.promotion.clone(), t.code.clone(), *limit))
                        }
                        _ => None,
                    });
                if let Some((promotion, code, limit)) = used_up {
                    return Err(PromotionError::Exhausted {
                        promotion,
                        code,
                        limit,
                    }
                    .into());
                }
            }
            if let Some(accepted) = &request.accepted_quote {
                if accepted.hash != quote.hash {
                    return Err(CheckoutError::QuoteChanged {
                        changes: quote.changes_since(accepted),
                        quote: Box::new(quote),
                    });
                }
            }
            let order = new_order(request, &cart, lines.clone(), quote, fingerprint, now);
            match Box::pin(self.create_order(order, &uses, cart.clone(), remembered)).await {
                Ok(Ok(created)) => break created,
                Ok(Err(shortages)) => return Err(sold_out(shortages, request)),
                Err(CheckoutError::Promotion(PromotionError::Exhausted {
                    promotion,
                    limit,
                    ..
                })) if request.without_exhausted_promotions
                    && !exhausted.iter().any(|(p, _)| *p == promotion) =>
                {
                    exhausted.push((promotion, limit));
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Prepared::Created(created, reserved, cart))
    }

    /// Stores a new order: with a unit of work, with its stock (and its cart claim and charge
    /// start when the unit holds the carts, and its promotion uses when it holds those) in
    /// one transaction; without, the order alone. Uses the unit does not hold are reserved
    /// first, a step of their own, and given back when their order is known not to be
    /// stored (an error may come after the order was written: recovery settles those uses
    /// by the order, or gives them back if there is none).
    /// `Ok(Err(shortages))`: turned away for stock, nothing stored. A `remembered` cart
    /// that changed since is [`CartError::VersionConflict`], nothing stored (see
    /// [`Storefront::store_order`]).
    async fn create_order(
        &self,
        order: Order,
        uses: &[PromotionUse],
        cart: Cart,
        remembered: bool,
    ) -> Result<Result<(crate::order::Created, bool, Cart), Vec<Shortage>>, CheckoutError> {
        let id = order.id;
        tracing::Span::current().record("order", tracing::field::display(id));
        let in_unit = self.unit.is_some() && self.unit_holds_promotions;
        let reserved_apart = !in_unit && !uses.is_empty();
        if reserved_apart {
            self.promotions.reserve(id, uses).await?;
        }
        let created =
            Box::pin(self.store_order(order, if in_unit { uses } else { &[] }, cart, remembered))
                .await;
        let not_stored = match &created {
            // The key's order is another one: this id was never stored.
            Ok(Ok((crate::order::Created::Existing(_), _, _))) => true,
            // Turned away for stock, or the claim of a remembered cart that changed since:
            // the transaction rolled back.
            Ok(Err(_)) | Err(CheckoutError::Cart(CartError::VersionConflict { .. })) => true,
            // Stored, or maybe stored (an error may come after the write).
            Ok(Ok((crate::order::Created::New(_), _, _))) | Err(_) => false,
        };
        if reserved_apart && not_stored {
            // No order of these uses exists; recovery gives them back should this fail.
            if let Err(e) = self.promotions.release(id).await {
                tracing::warn!(order = %id, error = %e, "promotion uses left for recovery");
            }
        }
        created
    }

    /// Stores a new order (see [`Storefront::create_order`]). When the unit claims the
    /// carts and the cart changed since it was read, the order is placed without the claim
    /// and the claim step sees what changed; a `remembered` cart that changed since is
    /// [`CartError::VersionConflict`] instead, nothing stored, for the checkout to go on
    /// from the cart as stored.
    async fn store_order(
        &self,
        order: Order,
        uses: &[PromotionUse],
        cart: Cart,
        remembered: bool,
    ) -> Result<Result<(crate::order::Created, bool, Cart), Vec<Shortage>>, CheckoutError> {
        let placed = DomainEvent::OrderPlaced {
            order: order.id,
            customer: order.customer,
            total: order.total,
        };
        let Some(unit) = &self.unit else {
            return Ok(Ok((
                self.orders.create(order, vec![placed]).await?,
                false,
                cart,
            )));
        };
        let lines = reservation_lines(&order);
        let ttl = self.config.reservation_ttl;
        let claimed = self.unit_claims_carts.then(|| with_claim(&cart, &order));
        let placed_with_claim = match &claimed {
            Some(claimed) => {
                let mut starting = order.clone();
                starting.charge_started_at = Some(Utc::now());
                let events = vec![placed.clone()];
                match unit
                    .place(starting, events, &lines, ttl, Some(claimed), uses)
                    .await
                {
                    // The cart changed since it was read: place without the claim, and let
                    // the claim step see what changed.
                    Err(UnitError::Cart(CartError::VersionConflict { .. })) if !remembered => None,
                    other => Some(other),
                }
            }
            None => None,
        };
        let (result, cart) = match placed_with_claim {
            // The cart as the transaction stored it, with the claim (its next version).
            Some(result) => (result, claimed.map_or(cart, |c| c.next_version())),
            None => (
                unit.place(order, vec![placed], &lines, ttl, None, uses)
                    .await,
                cart,
            ),
        };
        match result {
            Ok(created) => Ok(Ok((created, true, cart))),
            Err(UnitError::Inventory(InventoryError::OutOfStock { shortages })) => {
                Ok(Err(shortages))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Commits the promotion uses of a confirmed order (recovery does it should this fail:
    /// the confirmation stands either way).
    async fn commit_uses(&self, order: &Order) {
        if order
            .quote
            .as_ref()
            .is_some_and(crate::quote::Quote::may_hold_promotion_uses)
        {
            if let Err(e) = self.promotions.commit(order.id).await {
                tracing::warn!(order = %order.id, error = %e, "promotion uses left for recovery");
            }
        }
    }

    /// Gives back the promotion uses of an order that FAILED or was CANCELLED (terminal:
    /// it will never be confirmed).
    async fn release_uses(&self, order: &Order) -> Result<(), CheckoutError> {
        if order
            .quote
            .as_ref()
            .is_some_and(crate::quote::Quote::may_hold_promotion_uses)
        {
            self.promotions.release(order.id).await?;
        }
        Ok(())
    }

    /// Turns a buyer away before anything is stored when the inventory already counts too
    /// few units ([`crate::inventory::InventoryStore::shortages`], a hint: the reservation
    /// decides): [`CheckoutError::OutOfStock`] with no order. A concurrent retry of this very
    /// request may hold the units: that order exists before its reservation does, and
    /// [`Storefront::place_order`] finds it by its key on this refusal.
    async fn turned_away(
        &self,
        lines: &[OrderLine],
        request: &CheckoutRequest,
    ) -> Result<(), CheckoutError> {
        // Asked for PLENTY more units than the order takes: a SKU that has them is not asked
        // about again for PLENTY_FOR (a hot SKU with stock to spare costs no read per
        // checkout), and the answer still says which SKUs are short of the order itself.
        let wanted: Vec<ReservationLine> = lines
            .iter()
            .filter(|l| !self.plenty.contains_key(&l.sku))
            .map(|l| ReservationLine {
                sku: l.sku.clone(),
                quantity: l.quantity.saturating_add(PLENTY).min(MAX_QUANTITY),
            })
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let short = match self.inventory.shortages(&wanted).await {
            Ok(short) => short,
            // Only a hint: the reservation answers for sure.
            Err(e) => {
                tracing::debug!(error = %e, "stock hint unavailable");
                return Ok(());
            }
        };
        for w in &wanted {
            if !short.iter().any(|s| s.sku == w.sku) {
                self.plenty.insert(w.sku.clone(), ());
            }
        }
        let shortages: Vec<Shortage> = short
            .into_iter()
            .filter_map(|s| {
                let line = lines.iter().find(|l| l.sku == s.sku)?;
                (s.available < line.quantity).then_some(Shortage {
                    requested: line.quantity,
                    ..s
                })
            })
            .collect();
        if shortages.is_empty() {
            Ok(())
        } else {
            Err(sold_out(shortages, request))
        }
    }

    /// The cart as a new checkout may take it: a claim by a checkout in flight or paid for
    /// the same content is answered with that order; a paid claim on a cart that has grown
    /// since is cleared first, leaving the items added after it; a failed one is void. A
    /// claim by the order of this very request (a concurrent retry placed it) is that order,
    /// as `Ok(Err(order))`.
    async fn unclaimed(
        &self,
        cart: Cart,
        request: &CheckoutRequest,
    ) -> Result<Result<Cart, Order>, CheckoutError> {
        let Some(claim) = cart.checkout.clone() else {
            return Ok(Ok(cart));
        };
        let Some(claimant) = self.orders.get(claim.order).await? else {
            return Ok(Ok(cart));
        };
        if claimant.customer == request.customer
            && claimant.idempotency_key == request.idempotency_key
        {
            return Ok(Err(claimant));
        }
        match claimant.status {
            OrderStatus::Failed => Ok(Ok(cart)),
            OrderStatus::Pending => Err(CheckoutError::CartInCheckout { order: claimant.id }),
            OrderStatus::Confirmed
            | OrderStatus::Shipped
            | OrderStatus::Delivered
            | OrderStatus::Cancelled => {
                if cart_units(&cart) == claim.lines {
                    return Err(CheckoutError::CartInCheckout { order: claimant.id });
                }
                clear_claimed_units(self.carts.as_ref(), claimant.id, claimant.cart).await?;
                Ok(Ok(self.carts.load(cart.id).await?.unwrap_or(cart)))
            }
        }
    }

    /// Re-prices every line from the catalog. Changed prices are written to the cart and
    /// reported instead of charged.
    async fn price_lines(&self, cart: &Cart) -> Result<Vec<OrderLine>, CheckoutError> {
        self.reprice(cart, false).await
    }

    /// [`Storefront::price_lines`] of a cart that may be `remembered` (see
    /// [`Storefront::lines_at`]).
    async fn reprice(
        &self,
        cart: &Cart,
        remembered: bool,
    ) -> Result<Vec<OrderLine>, CheckoutError> {
        let skus: Vec<_> = cart.lines.iter().map(|l| l.sku.clone()).collect();
        let offers = self.catalog.offers(&skus).await?;
        self.lines_at(cart, &offers, remembered).await
    }

    /// [`Storefront::price_lines`] at offers already read. The repricing of a `remembered`
    /// cart that changed since is [`CartError::VersionConflict`], for the checkout to go
    /// on from the cart as stored.
    async fn lines_at(
        &self,
        cart: &Cart,
        offers: &HashMap<Sku, Offer>,
        remembered: bool,
    ) -> Result<Vec<OrderLine>, CheckoutError> {
        let mut changes = Vec::new();
        let mut lines = Vec::with_capacity(cart.lines.len());
        for line in &cart.lines {
            let offer = offers
                .get(&line.sku)
                .filter(|o| o.available)
                .ok_or_else(|| CheckoutError::ItemUnavailable(line.sku.clone()))?;
            if offer.price != line.unit_price {
                changes.push(PriceChange {
                    sku: line.sku.clone(),
                    was: line.unit_price,
                    now: offer.price,
                });
            }
            lines.push(OrderLine {
                sku: line.sku.clone(),
                title: offer.title.clone(),
                quantity: line.quantity,
                unit_price: offer.price,
                profile: offer.profile.clone(),
            });
        }
        if changes.is_empty() {
            return Ok(lines);
        }
        let mut repriced = cart.clone();
        for line in &mut repriced.lines {
            if let Some(change) = changes.iter().find(|c| c.sku == line.sku) {
                line.unit_price = change.now;
            }
        }
        // A concurrent change to the cart wins; the shopper sees its prices on the next try.
        match self.carts.save(&repriced).await {
            Ok(stored) => self.remember_cart(&stored),
            Err(e @ CartError::VersionConflict { .. }) if remembered => return Err(e.into()),
            Err(CartError::VersionConflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Err(CheckoutError::PricesChanged { changes })
    }

    /// A retry of a placed order: the first result, or the rest of an interrupted saga. A
    /// PENDING order is finished by what the gateway says of its charge, never by a guess.
    async fn resume(
        &self,
        order: Order,
        request: &CheckoutRequest,
        fingerprint: &str,
    ) -> Result<Placed, CheckoutError> {
        if order.request_fingerprint != fingerprint {
            return Err(CheckoutError::IdempotencyConflict(
                request.idempotency_key.clone(),
            ));
        }
        if order.status == OrderStatus::Pending {
            return outcome(Box::pin(self.finish(order)).await?);
        }
        outcome(order)
    }

    /// What the gateway says of an order's charge now: asked by payment id once the order
    /// knows it (providers forget idempotency keys after a while, never payments), else by
    /// the order's charge key.
    async fn charge_of(&self, order: &Order) -> Result<Option<Charge>, PaymentError> {
        if let Some(payment) = &order.payment {
            if let Some(charge) = self.payments.payment(&payment.id).await? {
                return Ok(Some(charge));
            }
        }
        self.payments.lookup(&charge_key(order.id)).await
    }

    /// Finishes a PENDING order: by its charge if the gateway has one, or by running the
    /// steps again (each is idempotent, the charge too).
    async fn finish(&self, order: Order) -> Result<Order, CheckoutError> {
        match self.charge_of(&order).await? {
            Some(charge) => self.settle(order, charge).await,
            None => Box::pin(self.drive(order, None, false)).await,
        }
    }

    /// Claim, reserve and charge for a PENDING order, then settle it by the gateway's answer.
    /// Returns the order as it stands (FAILED for stock, a decline or a lost cart claim).
    /// `reserved`: the order was placed with its stock (a unit of work).
    async fn drive(
        &self,
        order: Order,
        cart: Option<Cart>,
        reserved: bool,
    ) -> Result<Order, CheckoutError> {
        let (order, cart) = self.claim_cart(order, cart).await?;
        if order.status != OrderStatus::Pending {
            return Ok(order);
        }
        let reservation = if reserved {
            Ok(())
        } else {
            self.inventory
                .reserve(
                    order.id,
                    &reservation_lines(&order),
                    self.config.reservation_ttl,
                )
                .await
                .map(|_| ())
        };
        match reservation {
            Ok(()) => {}
            Err(InventoryError::OutOfStock { shortages }) => {
                return self
                    .fail_unpaid(order, FailureReason::OutOfStock { shortages })
                    .await;
            }
            Err(e) => return Err(e.into()),
        }
        let Some(method) = order.payment_method.clone() else {
            return self
                .fail_unpaid(order, FailureReason::PaymentNotCompleted)
                .await;
        };
        let order = self.start_charge(order).await?;
        if order.status != OrderStatus::Pending {
            return Ok(order);
        }
        let request = ChargeRequest {
            order: order.id,
            amount: order.total,
            method,
            idempotency_key: charge_key(order.id),
        };
        let answer =
            tokio::time::timeout(self.config.payment_timeout, self.payments.charge(&request))
                .await
                .unwrap_or(Err(PaymentError::Timeout));
        match answer {
            Ok(charge) => self.settle_with(order, charge, cart).await,
            Err(PaymentError::Rejected { message }) => {
                let reason = FailureReason::declined(message);
                self.fail(order, reason, None, vec![]).await
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records that the charge is about to be sent (a compare-and-set), so that a concurrent
    /// attempt failing the order on the shop's own grounds either wins before it (and this
    /// one sees the order FAILED and charges nothing) or sees the charge started and leaves
    /// the order to the gateway's answer ([`Storefront::fail_unpaid`]).
    async fn start_charge(&self, order: Order) -> Result<Order, CheckoutError> {
        self.update_until(
            order,
            |o| o.charge_started_at.is_some() || o.status != OrderStatus::Pending,
            || OrderPatch::charge_started(Utc::now()),
        )
        .await
    }

    /// Applies `patch` to the order by compare-and-set until `done` holds, reloading it after
    /// every conflict (a bounded number of times).
    async fn update_until(
        &self,
        mut order: Order,
        done: impl Fn(&Order) -> bool,
        patch: impl Fn() -> OrderPatch,
    ) -> Result<Order, CheckoutError> {
        for _ in 0..CAS_ATTEMPTS {
            if done(&order) {
                return Ok(order);
            }
            match self
                .orders
                .update(order.id, order.version, patch(), Vec::new())
                .await
            {
                Ok(updated) => order = updated,
                Err(OrderError::VersionConflict { .. }) => order = self.current(order.id).await?,
                Err(e) => return Err(e.into()),
            }
        }
        if done(&order) {
            return Ok(order);
        }
        Err(OrderError::VersionConflict {
            order: order.id,
            expected: order.version,
            actual: order.version,
        }
        .into())
    }

    /// Fails an order on the shop's own grounds (stock, the cart), never racing a charge: an
    /// order whose charge was sent is settled by the gateway's answer instead, or left
    /// PENDING while a charge may still be in flight (`recover()` comes back to it).
    async fn fail_unpaid(
        &self,
        order: Order,
        reason: FailureReason,
    ) -> Result<Order, CheckoutError> {
        if let Some(started) = order.charge_started_at {
            if let Some(charge) = self.charge_of(&order).await? {
                return self.settle(order, charge).await;
            }
            let in_flight = chrono::Duration::from_std(self.config.payment_timeout)
                .unwrap_or(chrono::Duration::MAX);
            if Utc::now() - started < in_flight {
                return Ok(order);
            }
        }
        self.fail(order, reason, None, vec![]).await
    }

    /// Claims the order's cart (compare-and-set), unless a live claim of another checkout is
    /// there, or the cart no longer holds the order's units (another order paid for them):
    /// then the order FAILED, never charged. A cart that is gone cannot be paid twice and is
    /// not claimed. Returns the order and its cart as last stored with the claim, if known.
    async fn claim_cart(
        &self,
        order: Order,
        cart: Option<Cart>,
    ) -> Result<(Order, Option<Cart>), CheckoutError> {
        let mut cart = match cart {
            Some(cart) => cart,
            None => match self.carts.load(order.cart).await? {
                Some(cart) => cart,
                None => return Ok((order, None)),
            },
        };
        for _ in 0..CAS_ATTEMPTS {
            match &cart.checkout {
                Some(claim) if claim.order == order.id => return Ok((order, Some(cart))),
                // The units were paid by another order and left the cart, or the shopper
                // took them out: this order is no longer what the cart holds.
                _ if !covers(&cart, &order) => {
                    let order = self.fail_unpaid(order, FailureReason::CartChanged).await?;
                    return Ok((order, None));
                }
                Some(claim) => {
                    let live = self
                        .orders
                        .get(claim.order)
                        .await?
                        .is_some_and(|o| o.status != OrderStatus::Failed);
                    if live {
                        let reason = FailureReason::CartClaimed { by: claim.order };
                        let order = self.fail_unpaid(order, reason).await?;
                        return Ok((order, None));
                    }
                }
                None => {}
            }
            match self.carts.save(&with_claim(&cart, &order)).await {
                Ok(stored) => return Ok((order, Some(stored))),
                Err(CartError::VersionConflict { .. }) => match self.carts.load(cart.id).await? {
                    Some(current) => cart = current,
                    None => return Ok((order, None)),
                },
                Err(e) => return Err(e.into()),
            }
        }
        Err(CartError::VersionConflict { cart: cart.id }.into())
    }

    /// Moves an order on by what the gateway says of its charge.
    async fn settle(&self, order: Order, charge: Charge) -> Result<Order, CheckoutError> {
        self.settle_with(order, charge, None).await
    }

    /// Moves an order on by what the gateway says of its charge; `cart` is the order's cart
    /// as last stored with its claim, when known (a confirmation clears it in its own
    /// transaction then, see [`Storefront::confirm`]).
    #[tracing::instrument(name = "settle", skip_all, fields(order = %order.id, payment = %charge.payment_id, status = ?charge.status))]
    async fn settle_with(
        &self,
        order: Order,
        charge: Charge,
        cart: Option<Cart>,
    ) -> Result<Order, CheckoutError> {
        let payment = OrderPayment {
            id: charge.payment_id.clone(),
            status: charge.status,
        };
        match (order.status, charge.status) {
            // Paid, but a concurrent attempt found the stock gone and decided to refund.
            (OrderStatus::Pending, PaymentStatus::Succeeded)
                if matches!(
                    order.failure,
                    Some(FailureReason::StockLostAfterPayment { .. })
                ) =>
            {
                let reason = order.failure.clone().expect("matched above");
                self.refund_lost_sale(order, charge, reason).await
            }
            (OrderStatus::Pending, PaymentStatus::Succeeded) => {
                self.confirm(order, charge, cart).await
            }
            (OrderStatus::Pending, PaymentStatus::Failed) => {
                let reason = FailureReason::declined(
                    charge
                        .failure_reason
                        .unwrap_or_else(|| "payment failed".into()),
                );
                self.fail(order, reason, Some(payment), vec![]).await
            }
            (OrderStatus::Pending | OrderStatus::Failed, PaymentStatus::Refunded) => {
                // Taken and given back (the saga refunded it and stopped before recording).
                let money = vec![
                    captured(order.id, &charge.payment_id, charge.amount),
                    refunded(order.id, &charge.payment_id, charge.amount),
                ];
                if order.status == OrderStatus::Pending {
                    self.fail(
                        order,
                        FailureReason::PaymentNotCompleted,
                        Some(payment),
                        money,
                    )
                    .await
                } else {
                    self.record_payment(order, payment, money).await
                }
            }
            (OrderStatus::Pending, PaymentStatus::Pending) => {
                if order.payment.as_ref() == Some(&payment) {
                    return Ok(order);
                }
                let patch = OrderPatch::default().with_payment(payment);
                match self
                    .orders
                    .update(order.id, order.version, patch, Vec::new())
                    .await
                {
                    Ok(order) => Ok(order),
                    Err(OrderError::VersionConflict { .. }) => self.current(order.id).await,
                    Err(e) => Err(e.into()),
                }
            }
            // The order failed while this payment succeeded: give the money back.
            (OrderStatus::Failed, PaymentStatus::Succeeded) => {
                self.undo_sale(&order).await?;
                self.refund_and_record(order, &charge.payment_id, charge.amount)
                    .await
            }
            _ => Ok(order),
        }
    }

    /// Paid: sell the stock and mark the order CONFIRMED with its capture (one transaction with
    /// a unit of work; otherwise the sale, then the compare-and-set). A reservation released
    /// meanwhile takes its stock again; if the stock is gone, refund. The confirmation's side
    /// effects run after it, and cannot undo it. `cart`, the order's cart as last stored with
    /// its claim, is cleared in the same transaction when the unit holds the carts, else
    /// right after, without reading it again (either falls back to reading it when it moved).
    #[tracing::instrument(name = "confirm", skip_all, fields(order = %order.id, lines = order.lines.len()))]
    async fn confirm(
        &self,
        order: Order,
        charge: Charge,
        cart: Option<Cart>,
    ) -> Result<Order, CheckoutError> {
        let payment = OrderPayment {
            id: charge.payment_id.clone(),
            status: PaymentStatus::Succeeded,
        };
        let event = DomainEvent::OrderConfirmed {
            order: order.id,
            customer: order.customer,
            lines: ordered_units(&order),
            total: order.total,
            cart: Some(order.cart),
        };
        let patch = OrderPatch::status(OrderStatus::Confirmed)
            .with_payment(payment)
            .with_money([captured(order.id, &charge.payment_id, charge.amount)]);
        // Only a cart this order claimed, in the unit's database, goes into its transaction.
        let in_unit = cart.as_ref().filter(|c| {
            self.unit_claims_carts && c.checkout.as_ref().is_some_and(|k| k.order == order.id)
        });
        let sold = match &self.unit {
            Some(unit) => unit.sell(&order, patch, vec![event], in_unit).await,
            None => match self.inventory.commit(order.id).await {
                Ok(_) => self
                    .orders
                    .update(order.id, order.version, patch, vec![event])
                    .await
                    .map(Sold::order)
                    .map_err(UnitError::from),
                Err(e) => Err(e.into()),
            },
        };
        match sold {
            Ok(Sold {
                order,
                cart_cleared,
                promotion_uses_committed,
                ..
            }) => {
                tracing::debug!(total = %order.total, "order confirmed");
                if !promotion_uses_committed {
                    self.commit_uses(&order).await;
                }
                // The shopper sees the ordered units leave the cart at once; the outbox
                // delivery does it again if this fails, and counts the co-purchases.
                if !cart_cleared {
                    if let Err(e) = clear_sold_units(self.carts.as_ref(), &order, cart).await {
                        tracing::warn!(error = %e, "clearing the cart failed; the outbox will retry");
                    }
                }
                Ok(order)
            }
            Err(UnitError::Inventory(
                InventoryError::Released(_) | InventoryError::NoReservation(_),
            )) => {
                // Taking the stock again sells it: only for an order still PENDING (one that
                // failed meanwhile is settled as such, its payment refunded).
                let current = self.current(order.id).await?;
                if current.status != OrderStatus::Pending || current.failure.is_some() {
                    return Box::pin(self.settle(current, charge)).await;
                }
                let lines = reservation_lines(&order);
                match self
                    .inventory
                    .reserve(order.id, &lines, self.config.reservation_ttl)
                    .await
                {
                    // Held again: sell it, from the top (should it expire again before the
                    // sale under a very short TTL, it is taken once more).
                    Ok(_) => Box::pin(self.confirm(current, charge, None)).await,
                    Err(InventoryError::OutOfStock { shortages }) => {
                        let reason = FailureReason::StockLostAfterPayment { shortages };
                        self.refund_lost_sale(current, charge, reason).await
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Err(UnitError::Order(OrderError::VersionConflict { .. })) => {
                let current = self.current(order.id).await?;
                match current.status {
                    // Another call recorded the pending payment, is confirming, or decided
                    // to refund: settle again from the current version (every step above is
                    // idempotent).
                    OrderStatus::Pending | OrderStatus::Failed => {
                        Box::pin(self.settle(current, charge)).await
                    }
                    _ => Ok(current),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Paid, but the stock is gone: the decision to refund is recorded first (the order stays
    /// PENDING with its failure set, so a concurrent confirmation's compare-and-set loses and
    /// `recover()` finishes a refund cut short), then whatever the order holds goes back, the
    /// payment is refunded, and the order is FAILED with both movements in its ledger.
    async fn refund_lost_sale(
        &self,
        order: Order,
        charge: Charge,
        reason: FailureReason,
    ) -> Result<Order, CheckoutError> {
        let order = if order.failure.is_some() {
            order
        } else {
            let patch = OrderPatch::default().with_failure(reason.clone());
            match self
                .orders
                .update(order.id, order.version, patch, Vec::new())
                .await
            {
                Ok(decided) => decided,
                Err(OrderError::VersionConflict { .. }) => {
                    let current = self.current(order.id).await?;
                    return Box::pin(self.settle(current, charge)).await;
                }
                Err(e) => return Err(e.into()),
            }
        };
        self.undo_sale(&order).await?;
        let refund = self
            .refund(&order, &charge.payment_id, charge.amount)
            .await?;
        let money = vec![
            captured(order.id, &charge.payment_id, charge.amount),
            refunded(order.id, &charge.payment_id, charge.amount),
        ];
        self.mark_failed(order, reason, Some(refund), money).await
    }

    /// Not paid: put the stock back, then FAILED (with the payment and money movements seen).
    async fn fail(
        &self,
        order: Order,
        reason: FailureReason,
        payment: Option<OrderPayment>,
        money: Vec<MoneyMovement>,
    ) -> Result<Order, CheckoutError> {
        match self.inventory.release(order.id).await {
            Ok(_) | Err(InventoryError::NoReservation(_)) => {}
            // A concurrent confirmation sold the stock: it saw a successful payment, so this
            // failure is stale. Leave the order to it (or to `recover()`).
            Err(InventoryError::Committed(_)) => return self.current(order.id).await,
            Err(e) => return Err(e.into()),
        }
        self.mark_failed(order, reason, payment, money).await
    }

    /// The compare-and-set that makes an order FAILED, once what it held was given back.
    async fn mark_failed(
        &self,
        order: Order,
        reason: FailureReason,
        payment: Option<OrderPayment>,
        money: Vec<MoneyMovement>,
    ) -> Result<Order, CheckoutError> {
        let event = DomainEvent::OrderFailed {
            order: order.id,
            reason: reason.clone(),
        };
        let mut patch = OrderPatch::status(OrderStatus::Failed)
            .with_failure(reason.clone())
            .with_money(money.clone());
        patch.payment = payment.clone();
        match self
            .orders
            .update(order.id, order.version, patch, vec![event])
            .await
        {
            Ok(order) => {
                // FAILED is final: its promotion uses go back (recovery does it should this
                // fail).
                if let Err(e) = self.release_uses(&order).await {
                    tracing::warn!(order = %order.id, error = %e, "promotion uses left for recovery");
                }
                Ok(order)
            }
            Err(OrderError::VersionConflict { .. }) => {
                let current = self.current(order.id).await?;
                match (current.status, payment) {
                    // A failure on the shop's own grounds, and the charge started meanwhile.
                    (OrderStatus::Pending, None) if money.is_empty() => {
                        Box::pin(self.fail_unpaid(current, reason)).await
                    }
                    // A refunded payment: its stock was given back already.
                    (OrderStatus::Pending, payment) if !money.is_empty() => {
                        Box::pin(self.mark_failed(current, reason, payment, money)).await
                    }
                    // Only the payment details changed meanwhile: fail from the new version.
                    (OrderStatus::Pending, payment) => {
                        Box::pin(self.fail(current, reason, payment, money)).await
                    }
                    (OrderStatus::Failed, Some(payment)) if !money.is_empty() => {
                        self.record_payment(current, payment, money).await
                    }
                    _ => Ok(current),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn current(&self, id: OrderId) -> Result<Order, CheckoutError> {
        Ok(self.orders.get(id).await?.ok_or(OrderError::NotFound(id))?)
    }

    /// Refunds the order's payment at the gateway (once: the key is the order's).
    async fn refund(
        &self,
        order: &Order,
        payment: &PaymentId,
        amount: Money,
    ) -> Result<OrderPayment, CheckoutError> {
        self.payments
            .refund(&RefundRequest {
                payment_id: payment.clone(),
                amount,
                idempotency_key: refund_key(order.id),
            })
            .await?;
        Ok(OrderPayment {
            id: payment.clone(),
            status: PaymentStatus::Refunded,
        })
    }

    /// Refunds a captured payment of an order that is not paid for, and records both
    /// movements.
    async fn refund_and_record(
        &self,
        order: Order,
        payment: &PaymentId,
        amount: Money,
    ) -> Result<Order, CheckoutError> {
        let refund = self.refund(&order, payment, amount).await?;
        let money = vec![
            captured(order.id, payment, amount),
            refunded(order.id, payment, amount),
        ];
        self.record_payment(order, refund, money).await
    }

    /// Puts an order's stock back whether it is held or sold.
    async fn undo_sale(&self, order: &Order) -> Result<(), CheckoutError> {
        match self.inventory.reservation(order.id).await? {
            Some(r) if r.state == ReservationState::Committed => {
                self.inventory.return_stock(order.id).await?;
            }
            Some(r) if r.state == ReservationState::Held => {
                self.inventory.release(order.id).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a payment change and money movements on an order without changing its status,
    /// retrying on conflicts (the status is terminal, so only payment details race).
    async fn record_payment(
        &self,
        order: Order,
        payment: OrderPayment,
        money: Vec<MoneyMovement>,
    ) -> Result<Order, CheckoutError> {
        self.update_until(
            order,
            |o| {
                o.payment.as_ref() == Some(&payment)
                    && money.iter().all(|m| o.money.iter().any(|r| r.key == m.key))
            },
            || {
                OrderPatch::default()
                    .with_payment(payment.clone())
                    .with_money(money.clone())
            },
        )
        .await
    }

    /// Handles a verified provider callback. Callbacks may come twice, late, out of order, or
    /// name another payment: the event only says *which* order to look at. The gateway is
    /// asked for the order's charge, and the order is moved on by the gateway's answer:
    /// - a succeeded charge confirms a PENDING order (as the saga would), and is refunded for
    ///   a FAILED one;
    /// - a failed charge fails a PENDING order and releases its stock;
    /// - an event naming a payment that is not the order's charge changes nothing, nor does a
    ///   duplicate.
    ///
    /// Returns the order as it stands after the event.
    ///
    /// # Errors
    /// [`CheckoutError::Order`] with [`OrderError::NotFound`] for an unknown order (answer the
    /// provider as handled: retrying will not help); store and gateway errors (the callback
    /// should be retried: handling it again is safe).
    #[tracing::instrument(name = "payment_event", skip_all, fields(order = %event.order, status = ?event.status))]
    pub async fn handle_payment_event(&self, event: PaymentEvent) -> Result<Order, CheckoutError> {
        let order = match self.current(event.order).await {
            Ok(order) => order,
            Err(e @ CheckoutError::Order(OrderError::NotFound(_))) => {
                tracing::info!(
                    order = %event.order,
                    payment = %event.payment_id,
                    "payment event ignored: no such order"
                );
                return Err(e);
            }
            Err(e) => return Err(e),
        };
        let crossed = order
            .payment
            .as_ref()
            .is_some_and(|p| p.id != event.payment_id);
        let charge = if crossed {
            None
        } else {
            self.charge_of(&order).await?
        };
        match charge {
            Some(charge) if charge.payment_id == event.payment_id => {
                self.settle(order, charge).await
            }
            _ => {
                tracing::warn!(
                    order = %order.id,
                    payment = %event.payment_id,
                    "payment event ignored: the gateway has no such charge for this order"
                );
                Ok(order)
            }
        }
    }

    /// Finishes interrupted checkouts: releases expired reservations, then for each PENDING
    /// order created more than `older_than` ago asks the gateway what happened to its charge
    /// and settles it by the answer (confirmed, failed, or still waiting for the customer);
    /// an order the gateway never saw is driven on from where it stopped, with the same
    /// idempotent charge the shopper asked for. `older_than` should be longer than a
    /// gateway call takes, so a checkout still talking to the gateway is left to finish
    /// itself (finishing it twice is harmless, only wasted work).
    ///
    /// Safe to run at any time and from several processes: every step is idempotent.
    ///
    /// # Errors
    /// Store errors while listing; errors of single orders are in
    /// [`RecoveryReport::errors`].
    #[tracing::instrument(name = "recover", skip_all, fields(older_than = ?older_than))]
    pub async fn recover(&self, older_than: Duration) -> Result<RecoveryReport, CheckoutError> {
        let mut report = RecoveryReport {
            expired_reservations: self
                .inventory
                .release_expired(self.config.recovery_batch)
                .await?,
            ..RecoveryReport::default()
        };
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let pending = self
            .orders
            .pending_before(cutoff, self.config.recovery_batch)
            .await?;
        for order in pending {
            let id = order.id;
            match self.finish(order).await {
                Ok(o) => match o.status {
                    OrderStatus::Pending => report.still_pending.push(id),
                    OrderStatus::Failed => report.failed.push(id),
                    _ => report.confirmed.push(id),
                },
                Err(e) => report.errors.push((id, e.to_string())),
            }
        }
        self.settle_uses(cutoff, &mut report).await?;
        Ok(report)
    }

    /// Settles promotion uses held since before `cutoff` by their order: committed for a
    /// confirmed one, given back for one that failed or was cancelled, left for a PENDING
    /// one. Uses whose order was never stored are given back once they are older than the
    /// reservation time too (an order is stored right after its uses are reserved: one
    /// younger may be on its way).
    async fn settle_uses(
        &self,
        cutoff: chrono::DateTime<Utc>,
        report: &mut RecoveryReport,
    ) -> Result<(), CheckoutError> {
        let ttl = chrono::Duration::from_std(self.config.reservation_ttl)
            .unwrap_or(chrono::Duration::MAX);
        let orphan_cutoff = cutoff.min(Utc::now() - ttl);
        // Page by page: uses of orders still PENDING stay held and must not hide the rest.
        let mut after = None;
        loop {
            let held = self
                .promotions
                .held_before(cutoff, after, self.config.recovery_batch)
                .await?;
            let Some(last) = held.last() else {
                return Ok(());
            };
            after = Some(*last);
            for (at, id) in held {
                self.settle_use(id, at < orphan_cutoff, report).await;
            }
        }
    }

    /// Settles one order's held uses by the order (see [`Storefront::settle_uses`]);
    /// `orphan_age`: old enough to be released if the order was never stored.
    async fn settle_use(&self, id: OrderId, orphan_age: bool, report: &mut RecoveryReport) {
        let settled = match self.orders.get(id).await {
            Ok(None) if orphan_age => self.promotions.release(id).await.map(|()| false),
            // Young: its order may be on its way.
            Ok(None) => return,
            Ok(Some(order)) => match order.status {
                OrderStatus::Pending => return,
                OrderStatus::Failed | OrderStatus::Cancelled => {
                    self.promotions.release(id).await.map(|()| false)
                }
                OrderStatus::Confirmed | OrderStatus::Shipped | OrderStatus::Delivered => {
                    self.promotions.commit(id).await.map(|()| true)
                }
            },
            Err(e) => {
                report.errors.push((id, e.to_string()));
                return;
            }
        };
        match settled {
            Ok(true) => report.uses_committed.push(id),
            Ok(false) => report.uses_released.push(id),
            Err(e) => report.errors.push((id, e.to_string())),
        }
    }

    /// Cancels a CONFIRMED order: marks it CANCELLED (winning any race with shipping), then
    /// refunds the payment and returns the stock. Idempotent: after an error, call again to
    /// finish the refund and restock.
    ///
    /// # Errors
    /// [`OrderError::InvalidTransition`] for an order that is not CONFIRMED (or already
    /// CANCELLED), [`OrderError::NotFound`], gateway and store errors.
    #[tracing::instrument(name = "cancel", skip_all, fields(order = %id))]
    pub async fn cancel(&self, id: OrderId) -> Result<Order, CheckoutError> {
        let mut order = self.current(id).await?;
        if order.status != OrderStatus::Cancelled {
            order = self
                .orders
                .update(
                    id,
                    order.version,
                    OrderPatch::status(OrderStatus::Cancelled),
                    vec![DomainEvent::OrderCancelled { order: id }],
                )
                .await?;
        }
        self.undo_sale(&order).await?;
        self.release_uses(&order).await?;
        match order.payment.clone() {
            Some(payment) if payment.status != PaymentStatus::Pending => {
                let refund = self.refund(&order, &payment.id, order.total).await?;
                let money = vec![refunded(order.id, &payment.id, order.total)];
                self.record_payment(order, refund, money).await
            }
            _ => Ok(order),
        }
    }

    /// The side effects of confirmed orders, as an [`EventSink`] for the outbox relay.
    pub fn effects(&self) -> CheckoutEffects {
        CheckoutEffects {
            orders: self.orders.clone(),
            carts: self.carts.clone(),
            recommendations: self.recommendations.clone(),
        }
    }
}

/// Takes the units a confirmed order bought out of its cart and drops the cart's claim, once:
/// from `cart`, the cart as last stored with the order's claim, when it is still at that
/// version, else from the cart as it is now.
async fn clear_sold_units(
    carts: &dyn CartStore,
    order: &Order,
    cart: Option<Cart>,
) -> Result<(), CartError> {
    let cleared = cart
        .filter(|c| c.id == order.cart && c.version > 0)
        .and_then(|c| c.cleared_of(order.id));
    if let Some(cleared) = cleared {
        match carts.save(&cleared).await {
            Ok(_) => return Ok(()),
            Err(CartError::VersionConflict { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    clear_claimed_units(carts, order.id, order.cart).await
}

/// Takes the units order `order` bought out of `cart` and drops the cart's claim, once.
async fn clear_claimed_units(
    carts: &dyn CartStore,
    order: OrderId,
    cart: CartId,
) -> Result<(), CartError> {
    for _ in 0..CAS_ATTEMPTS {
        let Some(mut stored) = carts.load(cart).await? else {
            return Ok(());
        };
        if !stored.clear_checkout(order) {
            return Ok(());
        }
        match carts.save(&stored).await {
            Ok(_) => return Ok(()),
            Err(CartError::VersionConflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CartError::VersionConflict { cart })
}

/// What follows a confirmation: the ordered units leave the cart (items added since stay)
/// and the order's co-purchases are counted ("customers also bought"). Both are idempotent.
///
/// The saga clears the cart itself right after it confirms an order (a failure there is
/// only logged: it never undoes or delays a confirmation). Co-purchases are counted from the
/// events: deliver the outbox to this sink ([`crate::events::OutboxRelay`]; combine it with
/// your own sinks with [`crate::events::FanOut`]), or consume `OrderConfirmed` from a broker
/// and call [`CheckoutEffects::deliver`]. It acts on `OrderConfirmed` and ignores every other
/// event, so both effects happen at least once whatever failed, off the checkout's path.
#[derive(Debug, Clone)]
pub struct CheckoutEffects {
    orders: Arc<dyn OrderStore>,
    carts: Arc<dyn CartStore>,
    recommendations: Arc<dyn RecommendationStore>,
}

impl CheckoutEffects {
    /// Runs the effects of a confirmed order.
    ///
    /// # Errors
    /// [`EventError::Delivery`] naming the step that failed; running again is safe.
    pub async fn apply(&self, order: &Order) -> Result<(), EventError> {
        let skus: Vec<_> = order.lines.iter().map(|l| l.sku.clone()).collect();
        self.apply_to(order.id, order.cart, &skus).await
    }

    /// The effects of order `order`, placed from `cart`, that bought `skus`.
    async fn apply_to(
        &self,
        order: OrderId,
        cart: CartId,
        skus: &[crate::id::Sku],
    ) -> Result<(), EventError> {
        clear_claimed_units(self.carts.as_ref(), order, cart)
            .await
            .map_err(|e| delivery("clearing the cart", e))?;
        self.recommendations
            .record_order(order, skus)
            .await
            .map_err(|e| delivery("counting co-purchases", e))?;
        Ok(())
    }
}

fn delivery(step: &str, e: impl std::error::Error + Send + Sync + 'static) -> EventError {
    EventError::Delivery {
        message: format!("{step}: {e}"),
        source: Some(Arc::new(e)),
    }
}

#[async_trait]
impl EventSink for CheckoutEffects {
    async fn deliver(&self, envelope: &EventEnvelope) -> Result<(), EventError> {
        let DomainEvent::OrderConfirmed {
            order, lines, cart, ..
        } = &envelope.event
        else {
            return Ok(());
        };
        if let Some(cart) = cart {
            let skus: Vec<_> = lines.iter().map(|(sku, _)| sku.clone()).collect();
            return self.apply_to(*order, *cart, &skus).await;
        }
        let order = self
            .orders
            .get(*order)
            .await
            .map_err(|e| delivery("reading the order", e))?;
        match order {
            Some(order) => self.apply(&order).await,
            None => Ok(()),
        }
    }
}

mod pricing;
mod promotions;
#[cfg(test)]
mod tests;

pub use pricing::Delivery;
pub(crate) use promotions::PromotionCache;
use promotions::{Exhausted, order_customer_key};
