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

use std::collections::HashMap;
use std::fmt::{self, Debug};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::error::{PaymentError, ValidationError};
use crate::id::OrderId;
use crate::money::Money;

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

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// No secret is configured: every webhook is refused (fails closed).
    #[error("webhook secret not configured; refusing all webhooks")]
    NotConfigured,
    /// The signature header is missing or malformed.
    #[error("malformed signature header")]
    MalformedHeader,
    /// The timestamp is outside the tolerance window (a replay, or a skewed clock).
    #[error("webhook timestamp outside the tolerance window")]
    Expired,
    /// The signature does not match.
    #[error("webhook signature mismatch")]
    BadSignature,
    /// The payload is not a payment event.
    #[error("invalid webhook payload: {0}")]
    InvalidPayload(String),
}

type HmacSha256 = Hmac<Sha256>;

/// Signs a payload: returns the header value `t=<unix seconds>,v1=<hex HMAC-SHA256 of
/// "t.payload">`, the format [`WebhookVerifier`] checks.
pub fn sign_webhook(secret: &[u8], timestamp: i64, payload: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Verifies webhook signatures: HMAC-SHA256 over `timestamp.payload`, compared in constant
/// time, with a tolerance window against replays. Without a secret it refuses everything.
#[derive(Clone)]
pub struct WebhookVerifier {
    secret: Option<Vec<u8>>,
    tolerance: Duration,
}

impl Debug for WebhookVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl WebhookVerifier {
    /// A verifier with this secret (an empty or absent secret refuses every webhook) and a
    /// five-minute tolerance.
    pub fn new(secret: Option<Vec<u8>>) -> Self {
        WebhookVerifier {
            secret: secret.filter(|s| !s.is_empty()),
            tolerance: Duration::from_secs(300),
        }
    }

    /// Sets the tolerance window.
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Checks the signature header of a payload received at `now`.
    ///
    /// # Errors
    /// [`WebhookError::NotConfigured`], [`WebhookError::MalformedHeader`],
    /// [`WebhookError::Expired`], [`WebhookError::BadSignature`].
    pub fn verify(
        &self,
        header: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), WebhookError> {
        let secret = self.secret.as_deref().ok_or(WebhookError::NotConfigured)?;
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", v)) => {
                    timestamp = Some(
                        v.parse::<i64>()
                            .map_err(|_| WebhookError::MalformedHeader)?,
                    )
                }
                Some(("v1", v)) => {
                    signatures.push(hex::decode(v).map_err(|_| WebhookError::MalformedHeader)?)
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(WebhookError::MalformedHeader)?;
        if signatures.is_empty() {
            return Err(WebhookError::MalformedHeader);
        }
        let age = now.timestamp().abs_diff(timestamp);
        if age > self.tolerance.as_secs() {
            return Err(WebhookError::Expired);
        }
        for signature in signatures {
            let mut mac =
                HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(payload);
            if mac.verify_slice(&signature).is_ok() {
                return Ok(());
            }
        }
        Err(WebhookError::BadSignature)
    }

    /// Verifies and decodes a JSON [`PaymentEvent`].
    ///
    /// # Errors
    /// As [`WebhookVerifier::verify`], and [`WebhookError::InvalidPayload`].
    pub fn payment_event(
        &self,
        header: &str,
        payload: &[u8],
        now: DateTime<Utc>,
    ) -> Result<PaymentEvent, WebhookError> {
        self.verify(header, payload, now)?;
        serde_json::from_slice(payload).map_err(|e| WebhookError::InvalidPayload(e.to_string()))
    }
}

/// A webhook request as a provider would send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedWebhook {
    /// The value of the signature header.
    pub signature: String,
    /// The JSON body.
    pub payload: Vec<u8>,
}

/// What [`TestGateway`] does with a payment method token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBehavior {
    /// `tok_approve`: succeeds.
    Approve,
    /// `tok_decline`: fails with "card declined".
    Decline,
    /// `tok_timeout`: the charge succeeds at the provider but the answer is lost
    /// ([`PaymentError::Timeout`]).
    TimeoutAfterCharge,
    /// `tok_unavailable`: the provider is never reached ([`PaymentError::Unavailable`]).
    Unavailable,
    /// `tok_pending`: answers pending (3-D Secure); complete it with
    /// [`TestGateway::complete`].
    Pending,
}

impl TestBehavior {
    /// The behaviour of a token, `None` for tokens the test gateway does not know.
    pub fn of(method: &PaymentMethod) -> Option<TestBehavior> {
        Some(match method.as_str() {
            "tok_approve" => TestBehavior::Approve,
            "tok_decline" => TestBehavior::Decline,
            "tok_timeout" => TestBehavior::TimeoutAfterCharge,
            "tok_unavailable" => TestBehavior::Unavailable,
            "tok_pending" => TestBehavior::Pending,
            _ => return None,
        })
    }
}

#[derive(Debug, Default)]
struct TestLedger {
    by_key: HashMap<String, Charge>,
    order_of: HashMap<PaymentId, (String, OrderId)>,
    refunds: HashMap<String, Refund>,
    next: u64,
}

/// An in-process payment provider for tests, demos and as the reference adapter.
///
/// The payment method token picks the outcome ([`TestBehavior`]): `tok_approve`,
/// `tok_decline`, `tok_timeout`, `tok_unavailable`, `tok_pending`. Charges and refunds are
/// idempotent by key, as a real provider's are; pending charges are completed by
/// [`TestGateway::complete`], which returns the signed webhook the provider would send.
#[derive(Debug)]
pub struct TestGateway {
    ledger: Mutex<TestLedger>,
    webhook_secret: Vec<u8>,
}

impl Default for TestGateway {
    fn default() -> Self {
        TestGateway::new(b"test-webhook-secret".to_vec())
    }
}

impl TestGateway {
    /// A gateway that signs its webhooks with `webhook_secret`.
    pub fn new(webhook_secret: Vec<u8>) -> Self {
        TestGateway {
            ledger: Mutex::new(TestLedger::default()),
            webhook_secret,
        }
    }

    /// A verifier that accepts this gateway's webhooks.
    pub fn verifier(&self) -> WebhookVerifier {
        WebhookVerifier::new(Some(self.webhook_secret.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TestLedger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every charge made, by idempotency key.
    pub fn charges(&self) -> Vec<Charge> {
        self.lock().by_key.values().cloned().collect()
    }

    /// The charge of a payment id.
    pub fn charge_of(&self, payment_id: &PaymentId) -> Option<Charge> {
        let ledger = self.lock();
        let (key, _) = ledger.order_of.get(payment_id)?;
        ledger.by_key.get(key).cloned()
    }

    /// Completes a pending charge (the customer passed or failed 3-D Secure) and returns the
    /// signed webhook the provider sends. Completing a completed charge sends its status again.
    ///
    /// # Errors
    /// [`PaymentError::Rejected`] for an unknown payment id.
    pub fn complete(
        &self,
        payment_id: &PaymentId,
        succeed: bool,
    ) -> Result<SignedWebhook, PaymentError> {
        let event =
            {
                let mut ledger = self.lock();
                let (key, order) = ledger.order_of.get(payment_id).cloned().ok_or_else(|| {
                    PaymentError::Rejected {
                        message: format!("unknown payment {payment_id}"),
                    }
                })?;
                let charge = ledger.by_key.get_mut(&key).expect("indexed charge exists");
                if charge.status == PaymentStatus::Pending {
                    if succeed {
                        charge.status = PaymentStatus::Succeeded;
                    } else {
                        charge.status = PaymentStatus::Failed;
                        charge.failure_reason = Some("authentication failed".into());
                    }
                    charge.next_action = None;
                }
                PaymentEvent {
                    order,
                    payment_id: payment_id.clone(),
                    status: charge.status,
                    failure_reason: charge.failure_reason.clone(),
                }
            };
        Ok(self.webhook_for(&event))
    }

    /// Signs an event as this provider would, at the current time.
    pub fn webhook_for(&self, event: &PaymentEvent) -> SignedWebhook {
        let payload = serde_json::to_vec(event).expect("payment events serialize");
        SignedWebhook {
            signature: sign_webhook(&self.webhook_secret, Utc::now().timestamp(), &payload),
            payload,
        }
    }
}

#[async_trait]
impl PaymentGateway for TestGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        let behavior = TestBehavior::of(&request.method).ok_or_else(|| PaymentError::Rejected {
            message: format!("unknown test token {}", request.method.as_str()),
        })?;
        if request.amount.is_negative() {
            return Err(PaymentError::Rejected {
                message: "negative amount".into(),
            });
        }
        if behavior == TestBehavior::Unavailable {
            return Err(PaymentError::Unavailable {
                message: "test provider unreachable".into(),
                source: None,
            });
        }
        let mut ledger = self.lock();
        if let Some(existing) = ledger.by_key.get(&request.idempotency_key) {
            if existing.amount != request.amount {
                return Err(PaymentError::Rejected {
                    message: "idempotency key reused with another amount".into(),
                });
            }
            let existing = existing.clone();
            drop(ledger);
            return match behavior {
                TestBehavior::TimeoutAfterCharge => Err(PaymentError::Timeout),
                _ => Ok(existing),
            };
        }
        ledger.next += 1;
        let payment_id = PaymentId(format!("pay_test_{}", ledger.next));
        let (status, failure_reason, next_action) = match behavior {
            TestBehavior::Approve | TestBehavior::TimeoutAfterCharge => {
                (PaymentStatus::Succeeded, None, None)
            }
            TestBehavior::Decline => (PaymentStatus::Failed, Some("card declined".into()), None),
            TestBehavior::Pending | TestBehavior::Unavailable => (
                PaymentStatus::Pending,
                None,
                Some(format!("https://3ds.test/{payment_id}")),
            ),
        };
        let charge = Charge {
            payment_id: payment_id.clone(),
            status,
            amount: request.amount,
            failure_reason,
            next_action,
        };
        ledger
            .by_key
            .insert(request.idempotency_key.clone(), charge.clone());
        ledger
            .order_of
            .insert(payment_id, (request.idempotency_key.clone(), request.order));
        drop(ledger);
        match behavior {
            TestBehavior::TimeoutAfterCharge => Err(PaymentError::Timeout),
            _ => Ok(charge),
        }
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError> {
        Ok(self.lock().by_key.get(idempotency_key).cloned())
    }

    async fn refund(&self, request: &RefundRequest) -> Result<Refund, PaymentError> {
        let mut ledger = self.lock();
        if let Some(done) = ledger.refunds.get(&request.idempotency_key) {
            return Ok(done.clone());
        }
        let (key, _) = ledger
            .order_of
            .get(&request.payment_id)
            .cloned()
            .ok_or_else(|| PaymentError::Rejected {
                message: format!("unknown payment {}", request.payment_id),
            })?;
        let charge = ledger.by_key.get_mut(&key).expect("indexed charge exists");
        if charge.status != PaymentStatus::Succeeded {
            return Err(PaymentError::Rejected {
                message: format!(
                    "payment {} is {:?}, not refundable",
                    request.payment_id, charge.status
                ),
            });
        }
        if request.amount.currency != charge.amount.currency
            || request.amount.amount > charge.amount.amount
        {
            return Err(PaymentError::Rejected {
                message: "refund exceeds the payment".into(),
            });
        }
        charge.status = PaymentStatus::Refunded;
        let refund = Refund {
            payment_id: request.payment_id.clone(),
            amount: request.amount,
        };
        ledger
            .refunds
            .insert(request.idempotency_key.clone(), refund.clone());
        Ok(refund)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_webhooks_verify_and_tampered_ones_do_not() {
        let secret = b"s3cret".to_vec();
        let verifier = WebhookVerifier::new(Some(secret.clone()));
        let now = Utc::now();
        let payload = br#"{"a":1}"#;
        let header = sign_webhook(&secret, now.timestamp(), payload);
        assert_eq!(verifier.verify(&header, payload, now), Ok(()));
        assert_eq!(
            verifier.verify(&header, br#"{"a":2}"#, now),
            Err(WebhookError::BadSignature)
        );
        let other = sign_webhook(b"other", now.timestamp(), payload);
        assert_eq!(
            verifier.verify(&other, payload, now),
            Err(WebhookError::BadSignature)
        );
        let late = now + chrono::Duration::seconds(301);
        assert_eq!(
            verifier.verify(&header, payload, late),
            Err(WebhookError::Expired)
        );
        assert_eq!(
            verifier.verify("v1=abcd", payload, now),
            Err(WebhookError::MalformedHeader)
        );
        assert_eq!(
            verifier.verify("t=1,v1=zz", payload, now),
            Err(WebhookError::MalformedHeader)
        );
    }

    #[test]
    fn without_a_secret_every_webhook_is_refused() {
        let now = Utc::now();
        let header = sign_webhook(b"", now.timestamp(), b"{}");
        for verifier in [
            WebhookVerifier::new(None),
            WebhookVerifier::new(Some(Vec::new())),
        ] {
            assert_eq!(
                verifier.verify(&header, b"{}", now),
                Err(WebhookError::NotConfigured)
            );
        }
    }

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
