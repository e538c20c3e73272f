//! [`TestGateway`], the in-process reference adapter: payment method tokens pick the
//! outcome ([`TestBehavior`]), and [`TestGateway::open`] keeps its ledger in a file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::webhook::{SignedWebhook, WebhookVerifier, sign_webhook};
use super::{
    Charge, ChargeRequest, PaymentEvent, PaymentGateway, PaymentId, PaymentMethod, PaymentStatus,
    Refund, RefundRequest,
};
use crate::error::PaymentError;
use crate::id::OrderId;

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

    use crate::money::{Currency, Money};

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
            amount: Money::from_minor(4_500, Currency::USD),
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
}
