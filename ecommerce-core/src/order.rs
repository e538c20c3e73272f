//! Orders: the record of a checkout, its lifecycle, and where orders are kept.
//!
//! The lifecycle is an explicit state machine ([`OrderStatus::can_become`]):
//!
//! ```text
//! PENDING -> CONFIRMED -> SHIPPED -> DELIVERED
//! PENDING -> FAILED
//! CONFIRMED -> CANCELLED
//! ```
//!
//! Every change is a compare-and-set on [`Order::version`] ([`OrderStore::update`]), so of two
//! concurrent changes made from the same version exactly one wins, and a duplicate callback
//! changes nothing. The domain events of a change are written with it, atomically, to the
//! store's outbox ([`crate::events::Outbox`]).

use std::fmt::{self, Debug};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalog::Page;
use crate::error::{OrderError, Shortage};
use crate::events::DomainEvent;
use crate::id::{CartId, CustomerId, IdempotencyKey, OrderId, Sku};
use crate::money::Money;
use crate::money::MoneyError;
use crate::payment::{PaymentId, PaymentMethod, PaymentStatus};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created; stock and payment in progress.
    Pending,
    /// Paid; stock sold.
    Confirmed,
    /// Handed to the carrier.
    Shipped,
    /// Received by the customer.
    Delivered,
    /// Never completed: out of stock, or payment failed. Nothing is charged or held.
    Failed,
    /// Confirmed, then cancelled: refunded and restocked.
    Cancelled,
}

impl OrderStatus {
    /// Every status.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Pending,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Failed,
        OrderStatus::Cancelled,
    ];

    /// Whether the lifecycle allows going from `self` to `next`.
    pub fn can_become(self, next: OrderStatus) -> bool {
        use OrderStatus::*;
        matches!(
            (self, next),
            (Pending, Confirmed)
                | (Pending, Failed)
                | (Confirmed, Shipped)
                | (Confirmed, Cancelled)
                | (Shipped, Delivered)
        )
    }

    /// Whether no further change is possible. `Confirmed` and `Shipped` are settled for the
    /// checkout (the saga is done) but not terminal.
    pub fn is_terminal(self) -> bool {
        match self {
            OrderStatus::Delivered | OrderStatus::Failed | OrderStatus::Cancelled => true,
            OrderStatus::Pending | OrderStatus::Confirmed | OrderStatus::Shipped => false,
        }
    }

    /// The lowercase wire name (`pending`, `confirmed`...).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Shipped => "shipped",
            OrderStatus::Delivered => "delivered",
            OrderStatus::Failed => "failed",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an order failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureReason {
    /// Stock ran out for these SKUs.
    OutOfStock {
        /// Every short SKU.
        shortages: Vec<Shortage>,
    },
    /// The payment provider declined the payment.
    PaymentDeclined {
        /// The provider's reason.
        reason: String,
    },
    /// The payment never happened (the checkout was interrupted before the charge, or the
    /// customer abandoned it).
    PaymentNotCompleted,
    /// The payment succeeded after the stock was released and could not be taken again: the
    /// payment was refunded.
    StockLostAfterPayment {
        /// Every short SKU.
        shortages: Vec<Shortage>,
    },
    /// Another checkout claimed the same cart first; this one was never charged.
    CartClaimed {
        /// The order that claimed the cart.
        by: OrderId,
    },
    /// The cart no longer held the order's units when it was to be paid (another order paid
    /// for them, or the shopper took them out); it was never charged.
    CartChanged,
}

impl FailureReason {
    /// [`FailureReason::PaymentDeclined`] with the provider's reason as it can be stored: a
    /// NUL character (which no PostgreSQL text column holds) becomes U+FFFD, so a payment
    /// adapter's message can never keep an order from failing.
    pub fn declined(reason: impl Into<String>) -> FailureReason {
        let reason = reason.into();
        let reason = if reason.contains('\0') {
            reason.replace('\0', "\u{FFFD}")
        } else {
            reason
        };
        FailureReason::PaymentDeclined { reason }
    }
}

/// One line of an order, frozen at checkout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    /// The SKU.
    pub sku: Sku,
    /// Title at checkout.
    pub title: String,
    /// Units.
    pub quantity: u32,
    /// Catalog price at checkout.
    pub unit_price: Money,
    /// How it was taxed and shipped.
    #[serde(default)]
    pub profile: crate::catalog::ItemProfile,
}

/// The payment of an order, as last reported by the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPayment {
    /// The gateway's id of the payment.
    pub id: PaymentId,
    /// Its status.
    pub status: PaymentStatus,
}

/// Which way money moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MoneyMovementKind {
    /// The gateway took the money (a succeeded charge).
    Captured,
    /// The gateway gave it back.
    Refunded,
}

/// One movement of an order's money, as the gateway reported it: the order's money ledger.
///
/// Movements are recorded with the order change they cause, idempotently by
/// [`MoneyMovement::key`] (the charge's or the refund's idempotency key), so for every order
/// captured - refunded ([`Order::net_paid`]) equals its total when it is CONFIRMED or later
/// (but CANCELLED), and zero otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyMovement {
    /// Captured or refunded.
    pub kind: MoneyMovementKind,
    /// The gateway's payment.
    pub payment: PaymentId,
    /// How much.
    pub amount: Money,
    /// The idempotency key of the charge or refund: a movement is recorded once per key.
    pub key: String,
}

/// An order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Id (UUID v7: sorts by creation).
    pub id: OrderId,
    /// The customer.
    pub customer: CustomerId,
    /// The cart it was placed from.
    pub cart: CartId,
    /// The key the checkout was placed with.
    pub idempotency_key: IdempotencyKey,
    /// A fingerprint of the checkout request; the same key with another fingerprint is a
    /// conflict.
    pub request_fingerprint: String,
    /// Status.
    pub status: OrderStatus,
    /// Version for compare-and-set; 1 when created, bumped by every change.
    pub version: u64,
    /// Lines.
    pub lines: Vec<OrderLine>,
    /// Sum of the lines.
    pub total: Money,
    /// The payment, once the gateway answered.
    pub payment: Option<OrderPayment>,
    /// Why it failed, for FAILED orders.
    pub failure: Option<FailureReason>,
    /// How the customer pays: kept so an interrupted checkout can be finished by
    /// [`crate::Storefront::recover`] with the same (idempotent) charge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<PaymentMethod>,
    /// The money ledger: every capture and refund of this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub money: Vec<MoneyMovement>,
    /// When the charge was first sent to the gateway (the saga records it before sending):
    /// from then on the order fails only by what the gateway says, or once a charge in
    /// flight can no longer land ([`crate::StorefrontConfig::payment_timeout`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge_started_at: Option<DateTime<Utc>>,
    /// Whom to tell about the order (every order placed with a
    /// [`crate::checkout::Delivery`] has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<crate::address::Email>,
    /// Where it ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<crate::address::Address>,
    /// Where it is billed, when not the shipping address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<crate::address::Address>,
    /// What it costs, to the minor unit: each line's net, tax and total, the shipping, the
    /// taxes by rate; its [`crate::quote::Quote::total`] is [`Order::total`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<crate::quote::Quote>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// A change to an order: a new status and/or payment and failure details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPatch {
    /// The new status, if it changes.
    pub status: Option<OrderStatus>,
    /// The payment, if it changes.
    pub payment: Option<OrderPayment>,
    /// The failure reason, if it changes.
    pub failure: Option<FailureReason>,
    /// Money movements to record; one whose key is already recorded is skipped.
    #[serde(default)]
    pub money: Vec<MoneyMovement>,
    /// When the charge is being sent; kept only if none was recorded before.
    #[serde(default)]
    pub charge_started_at: Option<DateTime<Utc>>,
}

impl OrderPatch {
    /// A status change.
    pub fn status(status: OrderStatus) -> Self {
        OrderPatch {
            status: Some(status),
            ..OrderPatch::default()
        }
    }

    /// Adds the payment.
    pub fn with_payment(mut self, payment: OrderPayment) -> Self {
        self.payment = Some(payment);
        self
    }

    /// Adds the failure reason.
    pub fn with_failure(mut self, failure: FailureReason) -> Self {
        self.failure = Some(failure);
        self
    }

    /// Records that the charge is being sent now.
    pub fn charge_started(at: DateTime<Utc>) -> Self {
        OrderPatch {
            charge_started_at: Some(at),
            ..OrderPatch::default()
        }
    }

    /// Adds money movements to record.
    pub fn with_money(mut self, movements: impl IntoIterator<Item = MoneyMovement>) -> Self {
        self.money.extend(movements);
        self
    }
}

impl Order {
    /// Whether the order is paid for and its stock sold: CONFIRMED, SHIPPED or DELIVERED.
    pub fn is_paid(&self) -> bool {
        match self.status {
            OrderStatus::Confirmed | OrderStatus::Shipped | OrderStatus::Delivered => true,
            OrderStatus::Pending | OrderStatus::Failed | OrderStatus::Cancelled => false,
        }
    }

    /// Captured minus refunded, from the money ledger.
    ///
    /// # Errors
    /// [`MoneyError`] for a movement in another currency than the total.
    pub fn net_paid(&self) -> Result<Money, MoneyError> {
        self.money
            .iter()
            .try_fold(Money::zero(self.total.currency), |net, m| match m.kind {
                MoneyMovementKind::Captured => net.checked_add(m.amount),
                MoneyMovementKind::Refunded => net.checked_sub(m.amount),
            })
    }

    /// Applies a patch, as every store does inside its compare-and-set: checks the version and
    /// the transition, bumps the version and the update time.
    ///
    /// # Errors
    /// [`OrderError::VersionConflict`], [`OrderError::InvalidTransition`].
    pub fn apply(
        &self,
        expected_version: u64,
        patch: &OrderPatch,
        now: DateTime<Utc>,
    ) -> Result<Order, OrderError> {
        if self.version != expected_version {
            return Err(OrderError::VersionConflict {
                order: self.id,
                expected: expected_version,
                actual: self.version,
            });
        }
        let mut next = self.clone();
        if let Some(status) = patch.status {
            if !self.status.can_become(status) {
                return Err(OrderError::InvalidTransition {
                    from: self.status,
                    to: status,
                });
            }
            next.status = status;
        }
        if let Some(payment) = &patch.payment {
            next.payment = Some(payment.clone());
        }
        if let Some(failure) = &patch.failure {
            next.failure = Some(failure.clone());
        }
        if next.charge_started_at.is_none() {
            next.charge_started_at = patch.charge_started_at;
        }
        for movement in &patch.money {
            if !next.money.iter().any(|m| m.key == movement.key) {
                next.money.push(movement.clone());
            }
        }
        next.version += 1;
        next.updated_at = now.max(self.updated_at);
        Ok(next)
    }
}

/// What [`OrderStore::create`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The order was created.
    New(Order),
    /// An order with the same idempotency key exists; this is it, unchanged.
    Existing(Order),
}

impl Created {
    /// The order, new or existing.
    pub fn into_order(self) -> Order {
        match self {
            Created::New(o) | Created::Existing(o) => o,
        }
    }
}

/// Where order history continues: after this order (history is newest first).
pub type HistoryCursor = OrderId;

/// Most orders in one page of history.
pub const MAX_HISTORY_PAGE: usize = 100;

/// Where orders are kept, with their outbox.
///
/// Every implementation must guarantee:
/// - **One order per customer and idempotency key**, even under concurrent `create`s with the
///   same customer and key (keys are scoped per customer, as Stripe scopes them per account):
///   exactly one returns [`Created::New`], the others [`Created::Existing`] with that order.
/// - **Compare-and-set**: [`OrderStore::update`] applies the patch with [`Order::apply`]
///   against the stored order, atomically; of two updates from one version, one wins and the
///   other gets [`OrderError::VersionConflict`].
/// - **Outbox atomicity**: the events passed to `create` and `update` are appended to the
///   outbox in the same atomic step as the change, or not at all.
/// - **History** is newest first (by order id, which sorts by creation), paged by cursor.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait OrderStore: Debug + Send + Sync + 'static {
    /// Creates an order (version 1, as given) with its events, unless its idempotency key is
    /// taken.
    ///
    /// # Errors
    /// [`OrderError::Duplicate`] when the id exists under another key, [`OrderError::Store`].
    async fn create(&self, order: Order, events: Vec<DomainEvent>) -> Result<Created, OrderError>;

    /// The order, or `Ok(None)`.
    ///
    /// # Errors
    /// [`OrderError::Store`].
    async fn get(&self, id: OrderId) -> Result<Option<Order>, OrderError>;

    /// The order this customer placed with this key, or `Ok(None)`. Keys are scoped per
    /// customer: another customer's order with the same key is not returned.
    ///
    /// # Errors
    /// [`OrderError::Store`].
    async fn by_idempotency_key(
        &self,
        customer: CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, OrderError>;

    /// Compare-and-set change with its events (see the trait docs). Returns the new order.
    ///
    /// # Errors
    /// [`OrderError::NotFound`], [`OrderError::VersionConflict`],
    /// [`OrderError::InvalidTransition`], [`OrderError::Store`].
    async fn update(
        &self,
        id: OrderId,
        expected_version: u64,
        patch: OrderPatch,
        events: Vec<DomainEvent>,
    ) -> Result<Order, OrderError>;

    /// A customer's orders, newest first, at most `limit` (capped at [`MAX_HISTORY_PAGE`]),
    /// older than the cursor.
    ///
    /// # Errors
    /// [`OrderError::Store`].
    async fn history(
        &self,
        customer: CustomerId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Page<Order, HistoryCursor>, OrderError>;

    /// PENDING orders created before `cutoff`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// [`OrderError::Store`].
    async fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Order>, OrderError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_declined_reason_keeps_no_nul() {
        assert_eq!(
            FailureReason::declined("card\0declined"),
            FailureReason::PaymentDeclined {
                reason: "card\u{FFFD}declined".into()
            }
        );
        assert_eq!(
            FailureReason::declined("insufficient funds"),
            FailureReason::PaymentDeclined {
                reason: "insufficient funds".into()
            }
        );
    }

    #[test]
    fn only_the_lifecycle_transitions_are_allowed() {
        use OrderStatus::*;
        let allowed = [
            (Pending, Confirmed),
            (Pending, Failed),
            (Confirmed, Shipped),
            (Confirmed, Cancelled),
            (Shipped, Delivered),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_become(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
            if from.is_terminal() {
                assert!(OrderStatus::ALL.iter().all(|to| !from.can_become(*to)));
            }
            assert_eq!(OrderStatus::parse(from.as_str()), Some(from));
        }
    }
}
