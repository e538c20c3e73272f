//! Payments: the gateway trait integrators implement, payment status as a state machine,
//! webhook signatures, and [`TestGateway`], the reference adapter.
//!
//! # Writing an adapter
//!
//! An adapter maps one provider's API to [`PaymentGateway`]:
//! - [`PaymentGateway::charge`] must pass [`ChargeRequest::idempotency_key`] to the provider,
//!   so a retried charge never charges twice. A decline is `Ok` with
//!   [`PaymentStatus::Failed`]; an `Err` means the outcome is unknown (timeout, network).
//! - [`PaymentGateway::lookup`] answers "what happened to the charge with this key?", which
//!   is how `recover()` finishes checkouts interrupted by a crash or a timeout.
//! - [`PaymentGateway::refund`] is idempotent by its key too.
//! - Provider callbacks are verified ([`WebhookVerifier`]) and turned into [`PaymentEvent`]s
//!   for [`crate::Storefront::handle_payment_event`].
//!
//! Convert amounts in one place: [`Money::to_minor`] gives the minor units most providers take.
//!
//! # Modules
//!
//! | module | what it holds |
//! | --- | --- |
//! | this one | the domain types ([`ChargeRequest`], [`Charge`], [`PaymentStatus`], [`PaymentEvent`], ...) and [`PaymentGateway`], the trait an adapter implements |
//! | [`webhook`] | signed provider callbacks: [`sign_webhook`] signs a payload, [`WebhookVerifier`] checks one and decodes its [`PaymentEvent`] |
//! | [`test_gateway`] | [`TestGateway`], the in-process reference adapter for tests and demos, with its file persistence and [`TestBehavior`] tokens |
//!
//! An integrator starts here, from [`PaymentGateway`] and the types it takes and returns; an
//! adapter that receives callbacks adds [`webhook`], and [`test_gateway`] is a complete
//! adapter to read alongside. Every public item of the submodules is re-exported here, so
//! `payment::TestGateway` and `payment::test_gateway::TestGateway` name the same type.

use std::fmt::{self, Debug};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{PaymentError, ValidationError};
use crate::id::OrderId;
use crate::money::Money;

pub mod test_gateway;
pub mod webhook;

pub use test_gateway::{TestBehavior, TestGateway};
pub use webhook::{
    MAX_SIGNATURE_HEADER, MAX_SIGNATURES, SignedWebhook, WebhookError, WebhookVerifier,
    sign_webhook,
};

/// The provider's id of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaymentId(pub String);

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The status of a payment: an explicit state machine.
///
/// ```text
/// pending -> succeeded -> refunded
/// pending -> failed
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Waiting for the customer (3-D Secure, a redirect) or the provider; a callback follows.
    Pending,
    /// Money taken.
    Succeeded,
    /// Declined or abandoned; no money taken.
    Failed,
    /// Money given back.
    Refunded,
}

impl PaymentStatus {
    /// Whether no further change can happen.
    pub fn is_terminal(self) -> bool {
        match self {
            PaymentStatus::Failed | PaymentStatus::Refunded => true,
            PaymentStatus::Pending | PaymentStatus::Succeeded => false,
        }
    }

    /// Whether a payment may go from `self` to `next`.
    pub fn can_become(self, next: PaymentStatus) -> bool {
        matches!(
            (self, next),
            (PaymentStatus::Pending, PaymentStatus::Succeeded)
                | (PaymentStatus::Pending, PaymentStatus::Failed)
                | (PaymentStatus::Succeeded, PaymentStatus::Refunded)
        )
    }
}

/// A tokenized payment method (a card token, a wallet id): never raw card data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PaymentMethod(String);

impl PaymentMethod {
    /// Validates a token: 1 to 255 printable ASCII characters.
    ///
    /// # Errors
    /// [`ValidationError`] for an empty, overlong or non-printable token.
    pub fn new(token: impl Into<String>) -> Result<Self, ValidationError> {
        let token = token.into();
        if token.is_empty() {
            return Err(ValidationError::Empty {
                field: "payment method",
            });
        }
        if token.len() > 255 {
            return Err(ValidationError::TooLong {
                field: "payment method",
                max: 255,
            });
        }
        if !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ValidationError::Invalid {
                field: "payment method",
                reason: "only printable ASCII".into(),
            });
        }
        Ok(PaymentMethod(token))
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PaymentMethod {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PaymentMethod::new(value)
    }
}

impl From<PaymentMethod> for String {
    fn from(m: PaymentMethod) -> String {
        m.0
    }
}

/// A request to take money for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRequest {
    /// The order.
    pub order: OrderId,
    /// The amount.
    pub amount: Money,
    /// How to pay.
    pub method: PaymentMethod,
    /// Derived from the order: the same order always charges with the same key.
    pub idempotency_key: String,
}

/// What the provider said about a charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The provider's payment id.
    pub payment_id: PaymentId,
    /// Status.
    pub status: PaymentStatus,
    /// Amount.
    pub amount: Money,
    /// Why it failed, for a failed charge.
    pub failure_reason: Option<String>,
    /// Where to send the customer for a pending charge (3-D Secure page).
    pub next_action: Option<String>,
}

/// A request to give money back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundRequest {
    /// The payment.
    pub payment_id: PaymentId,
    /// How much.
    pub amount: Money,
    /// Derived from the order: refunding twice refunds once.
    pub idempotency_key: String,
}

/// A completed refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// How much.
    pub amount: Money,
}

/// A payment provider.
///
/// Every implementation must:
/// - be idempotent by the request's `idempotency_key` (same key: same charge or refund, never
///   a second one);
/// - return `Ok` for every answer the provider gave (including declines) and `Err` only when
///   the outcome is unknown or the request was refused as malformed.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait PaymentGateway: Debug + Send + Sync + 'static {
    /// Takes money, or starts a payment that completes later ([`PaymentStatus::Pending`]).
    ///
    /// # Errors
    /// [`PaymentError::Timeout`] / [`PaymentError::Unavailable`]: outcome unknown (look it up
    /// later); [`PaymentError::Rejected`]: nothing happened.
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError>;

    /// The charge made with this idempotency key, or `Ok(None)` if the provider never saw it.
    ///
    /// # Errors
    /// [`PaymentError::Timeout`] / [`PaymentError::Unavailable`].
    async fn lookup(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError>;

    /// The charge with this payment id as the provider sees it now, or `Ok(None)` if it knows
    /// no such payment. Providers keep idempotency keys for a limited time (Stripe: 24 hours)
    /// but payments for good: once an order knows its payment id, the storefront asks by id.
    ///
    /// # Errors
    /// [`PaymentError::Timeout`] / [`PaymentError::Unavailable`].
    async fn payment(&self, id: &PaymentId) -> Result<Option<Charge>, PaymentError>;

    /// Gives money back for a succeeded payment.
    ///
    /// # Errors
    /// [`PaymentError::Rejected`] for a payment that cannot be refunded, or unknown outcome.
    async fn refund(&self, request: &RefundRequest) -> Result<Refund, PaymentError>;
}

/// A provider callback about a payment, after its signature was verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentEvent {
    /// The order the payment is for.
    pub order: OrderId,
    /// The provider's payment id.
    pub payment_id: PaymentId,
    /// The new status: `succeeded` or `failed`.
    pub status: PaymentStatus,
    /// Why it failed.
    pub failure_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_status_is_a_state_machine() {
        use PaymentStatus::*;
        assert!(Pending.can_become(Succeeded));
        assert!(Succeeded.can_become(Refunded));
        assert!(!Failed.can_become(Succeeded));
        assert!(!Refunded.can_become(Succeeded));
        assert!(Failed.is_terminal() && Refunded.is_terminal());
        assert!(!Succeeded.is_terminal());
    }
}
