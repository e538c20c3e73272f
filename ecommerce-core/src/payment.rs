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

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt::{self, Debug};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use uuid::Uuid;

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

/// The most `v1=` signatures a webhook header may carry (a provider rotating its secret sends
/// two); a header with more is malformed.
pub const MAX_SIGNATURES: usize = 8;

/// The longest webhook signature header accepted, in bytes.
pub const MAX_SIGNATURE_HEADER: usize = 1024;

/// Verifies webhook signatures: HMAC-SHA256 over `timestamp.payload`, compared in constant
/// time, with a tolerance window against replays. Without a secret it refuses everything.
/// A header carries at most [`MAX_SIGNATURES`] signatures and [`MAX_SIGNATURE_HEADER`] bytes,
/// and the payload is hashed once however many it carries.
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
        if header.len() > MAX_SIGNATURE_HEADER {
            return Err(WebhookError::MalformedHeader);
        }
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
                    if signatures.len() == MAX_SIGNATURES {
                        return Err(WebhookError::MalformedHeader);
                    }
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
        // One MAC over the payload, whatever the number of signatures, each compared to it in
        // constant time.
        let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        let expected = mac.finalize().into_bytes();
        let mut matched = subtle::Choice::from(0);
        for signature in &signatures {
            matched |= expected.as_slice().ct_eq(signature.as_slice());
        }
        if bool::from(matched) {
            return Ok(());
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

/// The charges and refunds the test provider knows about.
#[derive(Debug, Default)]
struct TestLedger {
    /// Charges by idempotency key.
    by_key: HashMap<String, Charge>,
    /// Payment id -> (idempotency key of its charge, order).
    order_of: HashMap<PaymentId, (String, OrderId)>,
    /// Refunds by idempotency key.
    refunds: HashMap<String, Refund>,
}

/// The version of the JSON file a persistent [`TestGateway`] keeps.
const LEDGER_FILE_VERSION: u32 = 1;

/// The JSON file of a persistent [`TestGateway`]: every charge with its key and order, and
/// every refund with its key. The payment -> order index is rebuilt from the charges on load.
#[derive(Serialize, Deserialize)]
struct LedgerFile<'a> {
    version: u32,
    charges: Vec<StoredCharge<'a>>,
    refunds: Vec<StoredRefund<'a>>,
}

#[derive(Serialize, Deserialize)]
struct StoredCharge<'a> {
    idempotency_key: Cow<'a, str>,
    order: OrderId,
    charge: Cow<'a, Charge>,
}

#[derive(Serialize, Deserialize)]
struct StoredRefund<'a> {
    idempotency_key: Cow<'a, str>,
    refund: Cow<'a, Refund>,
}

impl TestLedger {
    /// The file's view of the ledger, sorted by key so equal ledgers write equal files.
    fn to_file(&self) -> LedgerFile<'_> {
        let mut charges: Vec<StoredCharge<'_>> = self
            .order_of
            .values()
            .filter_map(|(key, order)| {
                Some(StoredCharge {
                    idempotency_key: Cow::Borrowed(key),
                    order: *order,
                    charge: Cow::Borrowed(self.by_key.get(key)?),
                })
            })
            .collect();
        charges.sort_by(|a, b| a.idempotency_key.cmp(&b.idempotency_key));
        let mut refunds: Vec<StoredRefund<'_>> = self
            .refunds
            .iter()
            .map(|(key, refund)| StoredRefund {
                idempotency_key: Cow::Borrowed(key),
                refund: Cow::Borrowed(refund),
            })
            .collect();
        refunds.sort_by(|a, b| a.idempotency_key.cmp(&b.idempotency_key));
        LedgerFile {
            version: LEDGER_FILE_VERSION,
            charges,
            refunds,
        }
    }

    /// Rebuilds a ledger from its file, refusing one whose parts do not fit together (so the
    /// gateway never meets a payment without its charge).
    fn from_file(file: LedgerFile<'_>) -> Result<TestLedger, String> {
        if file.version != LEDGER_FILE_VERSION {
            return Err(format!(
                "unsupported version {} (expected {LEDGER_FILE_VERSION})",
                file.version
            ));
        }
        let mut ledger = TestLedger::default();
        for stored in file.charges {
            let key = stored.idempotency_key.into_owned();
            let charge = stored.charge.into_owned();
            if ledger
                .order_of
                .insert(charge.payment_id.clone(), (key.clone(), stored.order))
                .is_some()
            {
                return Err(format!("payment {} appears twice", charge.payment_id));
            }
            if ledger.by_key.insert(key.clone(), charge).is_some() {
                return Err(format!("charge key {key:?} appears twice"));
            }
        }
        for stored in file.refunds {
            let key = stored.idempotency_key.into_owned();
            let refund = stored.refund.into_owned();
            if !ledger.order_of.contains_key(&refund.payment_id) {
                return Err(format!("refund of unknown payment {}", refund.payment_id));
            }
            if ledger.refunds.insert(key.clone(), refund).is_some() {
                return Err(format!("refund key {key:?} appears twice"));
            }
        }
        Ok(ledger)
    }

    /// A payment id no one can guess from another one: `pay_test_` and 128 bits (122 of
    /// them random) of a UUID v4 from the operating system's secure generator. Knowing an
    /// id is what lets someone complete a 3-D Secure challenge, so ids must not be sequential.
    fn new_payment_id(&self) -> PaymentId {
        loop {
            let id = PaymentId(format!("pay_test_{}", Uuid::new_v4().simple()));
            if !self.order_of.contains_key(&id) {
                return id;
            }
        }
    }
}

/// Writes the ledger to `path` so that a crash at any moment leaves either the previous file or
/// the new one: the bytes go to a temporary file in the same folder, which is flushed to disk
/// and then renamed over `path` (a rename within one folder is atomic).
fn write_ledger(path: &Path, ledger: &TestLedger) -> io::Result<()> {
    let bytes = serde_json::to_vec_pretty(&ledger.to_file()).map_err(io::Error::other)?;
    let temp = temp_path(path);
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    sync_folder(path);
    Ok(())
}

/// `path` with `.tmp` appended to its file name, in the same folder.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().map(OsString::from).unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Flushes the folder holding `path`, so the rename itself survives a power cut. Best effort:
/// some platforms and file systems cannot open or flush a folder.
fn sync_folder(path: &Path) {
    #[cfg(unix)]
    {
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if let Ok(folder) = File::open(folder) {
            let _ = folder.sync_all();
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// An in-process payment provider for tests, demos and as the reference adapter.
///
/// The payment method token picks the outcome ([`TestBehavior`]): `tok_approve`,
/// `tok_decline`, `tok_timeout`, `tok_unavailable`, `tok_pending`. Charges and refunds are
/// idempotent by key, as a real provider's are; pending charges are completed by
/// [`TestGateway::complete`], which returns the signed webhook the provider would send.
/// Payment ids are random (`pay_test_` and 32 hex digits), so one cannot be guessed from
/// another.
///
/// [`TestGateway::new`] keeps everything in memory, forgotten when the process ends.
/// [`TestGateway::open`] keeps it in a file too, so that after a restart the gateway still
/// answers [`PaymentGateway::lookup`] for earlier charges (which `recover()` relies on) and
/// still refuses to refund a payment twice, as a real provider would.
#[derive(Debug)]
pub struct TestGateway {
    ledger: Mutex<TestLedger>,
    webhook_secret: Vec<u8>,
    /// The file every change is written to; `None` for an in-memory gateway.
    file: Option<PathBuf>,
}

impl Default for TestGateway {
    fn default() -> Self {
        TestGateway::new(b"test-webhook-secret".to_vec())
    }
}

impl TestGateway {
    /// An in-memory gateway that signs its webhooks with `webhook_secret`. It forgets its
    /// charges when dropped; see [`TestGateway::open`] for one that remembers them.
    pub fn new(webhook_secret: Vec<u8>) -> Self {
        TestGateway {
            ledger: Mutex::new(TestLedger::default()),
            webhook_secret,
            file: None,
        }
    }

    /// A gateway that keeps its charges and refunds in the JSON file at `path` and signs its
    /// webhooks with `webhook_secret`.
    ///
    /// Loads the file if it exists, and otherwise creates it (empty) at once, so a folder that
    /// cannot be written is reported here rather than at the first charge; the folder itself
    /// must exist. Every change (a charge, a completed 3-D Secure challenge, a refund) is
    /// written before it is answered: the whole state goes to `<path>.tmp` in the same folder,
    /// is flushed to disk and renamed over `path`, so a crash leaves the old file or the new
    /// one, never a torn one. A change that cannot be written is undone and answered with
    /// [`PaymentError::Unavailable`] (outcome unknown; a lookup then says it never happened).
    ///
    /// Writing is synchronous and rewrites the whole file: right for tests and a demo shop,
    /// not for heavy traffic. One gateway per file: two gateways (or processes) sharing a
    /// file overwrite each other's changes.
    ///
    /// # Errors
    /// The file cannot be read or created (missing folder, permissions), or
    /// [`io::ErrorKind::InvalidData`] when it does not hold a test gateway's state; such a
    /// file is left as it is.
    pub fn open(path: impl AsRef<Path>, webhook_secret: Vec<u8>) -> Result<TestGateway, io::Error> {
        let path = path.as_ref();
        if path.file_name().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file path", path.display()),
            ));
        }
        let ledger = match fs::read(path) {
            Ok(bytes) => serde_json::from_slice::<LedgerFile<'_>>(&bytes)
                .map_err(|e| e.to_string())
                .and_then(TestLedger::from_file)
                .map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is not a test gateway file: {e}", path.display()),
                    )
                })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let ledger = TestLedger::default();
                write_ledger(path, &ledger)?;
                ledger
            }
            Err(e) => return Err(e),
        };
        Ok(TestGateway {
            ledger: Mutex::new(ledger),
            webhook_secret,
            file: Some(path.to_path_buf()),
        })
    }

    /// The file this gateway keeps its state in, `None` for an in-memory gateway.
    pub fn path(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// A verifier that accepts this gateway's webhooks.
    pub fn verifier(&self) -> WebhookVerifier {
        WebhookVerifier::new(Some(self.webhook_secret.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TestLedger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the ledger to the gateway's file, if it has one. Called with the lock held, so
    /// writes happen in the order of the changes.
    fn save(&self, ledger: &TestLedger) -> Result<(), PaymentError> {
        let Some(path) = &self.file else {
            return Ok(());
        };
        write_ledger(path, ledger).map_err(|e| PaymentError::Unavailable {
            message: format!(
                "test provider could not record the change in {}: {e}",
                path.display()
            ),
            source: Some(Arc::new(e)),
        })
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

    /// The order a payment id pays for.
    pub fn order_of(&self, payment_id: &PaymentId) -> Option<OrderId> {
        self.lock()
            .order_of
            .get(payment_id)
            .map(|(_, order)| *order)
    }

    /// Completes a pending charge (the customer passed or failed 3-D Secure) and returns the
    /// signed webhook the provider sends. Completing a completed charge sends its status again.
    ///
    /// # Errors
    /// [`PaymentError::Rejected`] for an unknown payment id; [`PaymentError::Unavailable`]
    /// when a persistent gateway cannot write the change (nothing changed).
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
                    let before = charge.clone();
                    if succeed {
                        charge.status = PaymentStatus::Succeeded;
                    } else {
                        charge.status = PaymentStatus::Failed;
                        charge.failure_reason = Some("authentication failed".into());
                    }
                    charge.next_action = None;
                    if let Err(e) = self.save(&ledger) {
                        ledger.by_key.insert(key, before);
                        return Err(e);
                    }
                }
                let charge = &ledger.by_key[&key];
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
        let payment_id = ledger.new_payment_id();
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
        ledger.order_of.insert(
            payment_id.clone(),
            (request.idempotency_key.clone(), request.order),
        );
        if let Err(e) = self.save(&ledger) {
            ledger.by_key.remove(&request.idempotency_key);
            ledger.order_of.remove(&payment_id);
            return Err(e);
        }
        drop(ledger);
        match behavior {
            TestBehavior::TimeoutAfterCharge => Err(PaymentError::Timeout),
            _ => Ok(charge),
        }
    }

    async fn lookup(&self, idempotency_key: &str) -> Result<Option<Charge>, PaymentError> {
        Ok(self.lock().by_key.get(idempotency_key).cloned())
    }

    async fn payment(&self, id: &PaymentId) -> Result<Option<Charge>, PaymentError> {
        Ok(self.charge_of(id))
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
        if let Err(e) = self.save(&ledger) {
            ledger.refunds.remove(&request.idempotency_key);
            if let Some(charge) = ledger.by_key.get_mut(&key) {
                charge.status = PaymentStatus::Succeeded;
            }
            return Err(e);
        }
        Ok(refund)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::money::Currency;

    /// A fresh folder under the system's temporary folder, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "ecommerce-test-gateway-{}",
                Uuid::new_v4().simple()
            ));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join("test-gateway.json")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn charge_request(order: OrderId, token: &str, key: &str) -> ChargeRequest {
        ChargeRequest {
            order,
            amount: Money::from_minor(4_500, Currency::Usd),
            method: PaymentMethod::new(token).unwrap(),
            idempotency_key: key.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_reopened_gateway_still_knows_the_charges_made_before() {
        let dir = TempDir::new();
        let secret = b"s3cret".to_vec();
        let (approved, lost, pending) = {
            let gateway = TestGateway::open(dir.file(), secret.clone()).unwrap();
            assert!(dir.file().exists(), "open creates the file");
            let approved = gateway
                .charge(&charge_request(OrderId::new(), "tok_approve", "charge-a"))
                .await
                .unwrap();
            // The provider charged, but the answer was lost: only a lookup can tell.
            assert!(matches!(
                gateway
                    .charge(&charge_request(OrderId::new(), "tok_timeout", "charge-b"))
                    .await,
                Err(PaymentError::Timeout)
            ));
            let lost = gateway.lookup("charge-b").await.unwrap().unwrap();
            let pending = gateway
                .charge(&charge_request(OrderId::new(), "tok_pending", "charge-c"))
                .await
                .unwrap();
            (approved, lost, pending)
        };

        let gateway = TestGateway::open(dir.file(), secret.clone()).unwrap();
        assert_eq!(gateway.path(), Some(dir.file().as_path()));
        assert_eq!(
            gateway.lookup("charge-a").await.unwrap(),
            Some(approved.clone())
        );
        assert_eq!(
            gateway.lookup("charge-b").await.unwrap(),
            Some(lost.clone())
        );
        assert_eq!(lost.status, PaymentStatus::Succeeded);
        assert_eq!(
            gateway.lookup("charge-c").await.unwrap(),
            Some(pending.clone())
        );
        assert_eq!(gateway.lookup("never-charged").await.unwrap(), None);
        assert_eq!(
            gateway.charge_of(&approved.payment_id),
            Some(approved.clone())
        );
        assert_eq!(gateway.charges().len(), 3);
        // A retried charge is still the same charge, not a second one.
        let again = gateway
            .charge(&charge_request(OrderId::new(), "tok_approve", "charge-a"))
            .await
            .unwrap();
        assert_eq!(again, approved);
        assert_eq!(gateway.charges().len(), 3);

        // A 3-D Secure challenge started before the restart completes after it, and that
        // completion survives the next restart.
        let webhook = gateway.complete(&pending.payment_id, true).unwrap();
        let event = gateway
            .verifier()
            .payment_event(&webhook.signature, &webhook.payload, Utc::now())
            .unwrap();
        assert_eq!(event.status, PaymentStatus::Succeeded);
        drop(gateway);
        let gateway = TestGateway::open(dir.file(), secret).unwrap();
        let completed = gateway.lookup("charge-c").await.unwrap().unwrap();
        assert_eq!(completed.status, PaymentStatus::Succeeded);
        assert_eq!(completed.next_action, None);
        assert!(
            !dir.0.join("test-gateway.json.tmp").exists(),
            "no temporary file is left behind"
        );
    }

    #[tokio::test]
    async fn refunds_stay_idempotent_across_a_reopen() {
        let dir = TempDir::new();
        let (charge, refund) = {
            let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
            let charge = gateway
                .charge(&charge_request(OrderId::new(), "tok_approve", "charge-a"))
                .await
                .unwrap();
            let refund = gateway
                .refund(&RefundRequest {
                    payment_id: charge.payment_id.clone(),
                    amount: charge.amount,
                    idempotency_key: "refund-a".into(),
                })
                .await
                .unwrap();
            (charge, refund)
        };

        let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
        let again = gateway
            .refund(&RefundRequest {
                payment_id: charge.payment_id.clone(),
                amount: charge.amount,
                idempotency_key: "refund-a".into(),
            })
            .await
            .unwrap();
        assert_eq!(again, refund, "the same key answers the first refund");
        let second = gateway
            .refund(&RefundRequest {
                payment_id: charge.payment_id.clone(),
                amount: charge.amount,
                idempotency_key: "refund-b".into(),
            })
            .await;
        assert!(
            matches!(second, Err(PaymentError::Rejected { .. })),
            "a payment is never refunded twice: {second:?}"
        );
        assert_eq!(
            gateway.lookup("charge-a").await.unwrap().unwrap().status,
            PaymentStatus::Refunded
        );
    }

    #[tokio::test]
    async fn payment_ids_are_random_not_sequential() {
        let gateway = TestGateway::default();
        let first = gateway
            .charge(&charge_request(OrderId::new(), "tok_pending", "charge-a"))
            .await
            .unwrap();
        let second = gateway
            .charge(&charge_request(OrderId::new(), "tok_pending", "charge-b"))
            .await
            .unwrap();
        assert_ne!(first.payment_id, second.payment_id);
        for id in [&first.payment_id, &second.payment_id] {
            let suffix = id.0.strip_prefix("pay_test_").expect("pay_test_ prefix");
            assert_eq!(suffix.len(), 32, "{id}");
            assert!(
                suffix
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
                "{id}"
            );
        }
        // Neither counts up from the other, and a guessed id completes nothing.
        let number = |id: &PaymentId| u128::from_str_radix(&id.0["pay_test_".len()..], 16).unwrap();
        assert!(number(&first.payment_id).abs_diff(number(&second.payment_id)) > 1_000_000);
        for guess in ["pay_test_1", "pay_test_2", "pay_test_3"] {
            assert!(matches!(
                gateway.complete(&PaymentId(guess.into()), true),
                Err(PaymentError::Rejected { .. })
            ));
        }
        assert_eq!(
            gateway.lookup("charge-a").await.unwrap().unwrap().status,
            PaymentStatus::Pending
        );
    }

    #[test]
    fn a_file_that_is_not_a_gateways_is_refused_and_left_alone() {
        let dir = TempDir::new();
        fs::write(dir.file(), b"{ torn").unwrap();
        let err = TestGateway::open(dir.file(), b"s".to_vec()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(fs::read(dir.file()).unwrap(), b"{ torn");
        let missing = dir.0.join("no-such-folder").join("test-gateway.json");
        assert!(TestGateway::open(missing, b"s".to_vec()).is_err());
    }

    #[test]
    fn a_header_with_too_many_signatures_is_malformed_and_a_rotated_secret_still_verifies() {
        let secret = b"s3cret".to_vec();
        let verifier = WebhookVerifier::new(Some(secret.clone()));
        let now = Utc::now();
        let payload = br#"{"a":1}"#;
        let wrong = format!("v1={}", "ab".repeat(32));
        let flood = format!(
            "t={},{}",
            now.timestamp(),
            vec![wrong.as_str(); 6_000].join(",")
        );
        assert_eq!(
            verifier.verify(&flood, payload, now),
            Err(WebhookError::MalformedHeader)
        );
        let nine = format!(
            "t={},{}",
            now.timestamp(),
            [wrong.as_str(); MAX_SIGNATURES + 1].join(",")
        );
        assert_eq!(
            verifier.verify(&nine, payload, now),
            Err(WebhookError::MalformedHeader)
        );
        // A provider rotating its secret signs with the old and the new one.
        let old = sign_webhook(b"old secret", now.timestamp(), payload);
        let new = sign_webhook(&secret, now.timestamp(), payload);
        let both = format!("{old},{}", new.split_once(',').unwrap().1);
        assert_eq!(verifier.verify(&both, payload, now), Ok(()));
    }

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
