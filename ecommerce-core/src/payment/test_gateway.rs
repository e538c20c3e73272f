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

/// The version of the journal a persistent [`TestGateway`] keeps, named by its first line.
const JOURNAL_VERSION: u32 = 2;

/// The version of the earlier file: one JSON document of every charge and refund, rewritten
/// whole on every change. Read, and converted to a journal, on open.
const DOCUMENT_VERSION: u32 = 1;

/// The first line of a persistent [`TestGateway`]'s journal.
#[derive(Serialize, Deserialize)]
struct JournalHeader {
    test_gateway_journal: u32,
}

/// One line of the journal after its header (JSON lines), in the order of the changes.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry<'a> {
    /// A charge as it now stands: new, or completed after a 3-D Secure challenge (a later
    /// line for the same key replaces the earlier one).
    Charge(#[serde(borrow)] StoredCharge<'a>),
    /// A refund: its payment is refunded.
    Refund(#[serde(borrow)] StoredRefund<'a>),
}

/// The earlier file of a persistent [`TestGateway`]: every charge with its key and order,
/// and every refund with its key.
#[derive(Deserialize)]
struct LedgerDocument<'a> {
    version: u32,
    #[serde(borrow)]
    charges: Vec<StoredCharge<'a>>,
    #[serde(borrow)]
    refunds: Vec<StoredRefund<'a>>,
}

#[derive(Serialize, Deserialize)]
struct StoredCharge<'a> {
    #[serde(borrow)]
    idempotency_key: Cow<'a, str>,
    order: OrderId,
    charge: Cow<'a, Charge>,
}

#[derive(Serialize, Deserialize)]
struct StoredRefund<'a> {
    #[serde(borrow)]
    idempotency_key: Cow<'a, str>,
    refund: Cow<'a, Refund>,
}

impl TestLedger {
    /// The entries that rebuild this ledger: every charge, then every refund, each sorted by
    /// key so equal ledgers write equal files.
    fn entries(&self) -> Vec<Entry<'_>> {
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
        charges
            .into_iter()
            .map(Entry::Charge)
            .chain(refunds.into_iter().map(Entry::Refund))
            .collect()
    }

    /// Applies one entry read back, refusing one that does not fit what came before (so the
    /// gateway never meets a payment without its charge, or a key naming two payments).
    fn apply(&mut self, entry: Entry<'_>) -> Result<(), String> {
        match entry {
            Entry::Charge(stored) => {
                let key = stored.idempotency_key.into_owned();
                let charge = stored.charge.into_owned();
                if let Some((known, _)) = self.order_of.get(&charge.payment_id) {
                    if *known != key {
                        return Err(format!("payment {} appears twice", charge.payment_id));
                    }
                }
                if let Some(known) = self.by_key.get(&key) {
                    if known.payment_id != charge.payment_id {
                        return Err(format!("charge key {key:?} appears twice"));
                    }
                }
                self.order_of
                    .insert(charge.payment_id.clone(), (key.clone(), stored.order));
                self.by_key.insert(key, charge);
            }
            Entry::Refund(stored) => {
                let key = stored.idempotency_key.into_owned();
                let refund = stored.refund.into_owned();
                let Some((charge_key, _)) = self.order_of.get(&refund.payment_id) else {
                    return Err(format!("refund of unknown payment {}", refund.payment_id));
                };
                if let Some(charge) = self.by_key.get_mut(charge_key) {
                    charge.status = PaymentStatus::Refunded;
                }
                if self.refunds.insert(key.clone(), refund).is_some() {
                    return Err(format!("refund key {key:?} appears twice"));
                }
            }
        }
        Ok(())
    }

    /// Reads a gateway's file: a journal, or a document of the earlier layout.
    fn read(bytes: &[u8]) -> Result<(TestLedger, Layout), String> {
        let header = bytes
            .iter()
            .position(|b| *b == b'\n')
            .and_then(|end| serde_json::from_slice::<JournalHeader>(&bytes[..end]).ok());
        match header {
            Some(header) => TestLedger::read_journal(bytes, header),
            None => {
                let document: LedgerDocument<'_> =
                    serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
                if document.version != DOCUMENT_VERSION {
                    return Err(format!(
                        "unsupported version {} (expected {DOCUMENT_VERSION})",
                        document.version
                    ));
                }
                let mut ledger = TestLedger::default();
                for stored in document.charges {
                    ledger.apply(Entry::Charge(stored))?;
                }
                for stored in document.refunds {
                    ledger.apply(Entry::Refund(stored))?;
                }
                Ok((ledger, Layout::Document))
            }
        }
    }

    /// Replays a journal's lines. A last line without its line end is a change torn by a
    /// crash, never answered: it is left out, and [`Layout::Journal`] says where the whole
    /// lines end. Any other line that does not read is an error.
    fn read_journal(bytes: &[u8], header: JournalHeader) -> Result<(TestLedger, Layout), String> {
        if header.test_gateway_journal != JOURNAL_VERSION {
            return Err(format!(
                "unsupported journal version {} (expected {JOURNAL_VERSION})",
                header.test_gateway_journal
            ));
        }
        let mut ledger = TestLedger::default();
        let mut whole = 0;
        for (number, line) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
            let Some(line) = line.strip_suffix(b"\n") else {
                break;
            };
            if number > 0 {
                let entry: Entry<'_> = serde_json::from_slice(line)
                    .map_err(|e| format!("line {}: {e}", number + 1))?;
                ledger
                    .apply(entry)
                    .map_err(|e| format!("line {}: {e}", number + 1))?;
            }
            whole += line.len() + 1;
        }
        Ok((ledger, Layout::Journal { whole }))
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

/// What a gateway's file held when it was read.
enum Layout {
    /// A journal whose whole lines end at byte `whole` (a torn line may follow).
    Journal { whole: usize },
    /// A document of the earlier layout.
    Document,
}

/// The open journal of a persistent [`TestGateway`]: every change is appended as one line
/// and flushed to disk before it is answered.
#[derive(Debug)]
struct Journal {
    file: File,
    /// The length of the whole lines written: a failed append is cut back to it.
    len: u64,
    /// An append failed and could not be cut back: nothing more is written.
    broken: bool,
}

impl Journal {
    /// Opens the journal at `path` for appending, cutting a torn last line off at `whole`.
    fn open(path: &Path, whole: u64) -> io::Result<Journal> {
        let file = fs::OpenOptions::new().append(true).open(path)?;
        if file.metadata()?.len() > whole {
            file.set_len(whole)?;
            file.sync_data()?;
        }
        Ok(Journal {
            file,
            len: whole,
            broken: false,
        })
    }

    /// Appends one entry and flushes it to disk. On failure the file is cut back to the
    /// lines before, so the entry is not there when the gateway is opened again.
    fn append(&mut self, entry: &Entry<'_>) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(
                "an earlier change could not be undone in the file",
            ));
        }
        let mut line = serde_json::to_vec(entry).map_err(io::Error::other)?;
        line.push(b'\n');
        match self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
        {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                self.broken = self.file.set_len(self.len).is_err();
                Err(e)
            }
        }
    }
}

/// Writes a journal of `ledger` to `path` so that a crash at any moment leaves either the
/// previous file or the new one: the bytes go to a temporary file in the same folder, which is
/// flushed to disk and then renamed over `path` (a rename within one folder is atomic).
fn write_journal(path: &Path, ledger: &TestLedger) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(&JournalHeader {
        test_gateway_journal: JOURNAL_VERSION,
    })
    .map_err(io::Error::other)?;
    bytes.push(b'\n');
    for entry in ledger.entries() {
        serde_json::to_writer(&mut bytes, &entry).map_err(io::Error::other)?;
        bytes.push(b'\n');
    }
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
    /// Its open journal, locked after the ledger (changes are appended in their order).
    journal: Option<Mutex<Journal>>,
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
            journal: None,
        }
    }

    /// A gateway that keeps its charges and refunds in the file at `path` and signs its
    /// webhooks with `webhook_secret`.
    ///
    /// Loads the file if it exists, and otherwise creates it at once, so a folder that
    /// cannot be written is reported here rather than at the first charge; the folder itself
    /// must exist. The file is a journal of JSON lines: a header line, then one line per
    /// change (a charge, a completed 3-D Secure challenge, a refund), appended and flushed to
    /// disk before the change is answered. A change costs the bytes of that change, however
    /// many the file holds. A crash can only tear the last line, a change never answered:
    /// the next open drops it. A change that cannot be written is undone (cut off the file)
    /// and answered with [`PaymentError::Unavailable`] (outcome unknown; a lookup then says
    /// it never happened). A file of the earlier layout (one JSON document, `"version": 1`)
    /// is read and rewritten as a journal, atomically (a temporary file renamed over it).
    ///
    /// Writing is synchronous, one change at a time: right for tests, a demo shop and its
    /// load tests. One gateway per file: two gateways (or processes) sharing a file mix
    /// their lines.
    ///
    /// # Errors
    /// The file cannot be read or created (missing folder, permissions), or
    /// [`io::ErrorKind::InvalidData`] when it does not hold a test gateway's state (a line
    /// before the last that does not read, a refund of no charge); such a file is left as
    /// it is.
    pub fn open(path: impl AsRef<Path>, webhook_secret: Vec<u8>) -> Result<TestGateway, io::Error> {
        let path = path.as_ref();
        if path.file_name().is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a file path", path.display()),
            ));
        }
        let (ledger, whole) = match fs::read(path) {
            Ok(bytes) => match TestLedger::read(&bytes) {
                Ok((ledger, Layout::Journal { whole })) => (ledger, Some(whole)),
                Ok((ledger, Layout::Document)) => (ledger, None),
                Err(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{} is not a test gateway file: {e}", path.display()),
                    ));
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => (TestLedger::default(), None),
            Err(e) => return Err(e),
        };
        let whole = match whole {
            Some(whole) => whole as u64,
            None => {
                write_journal(path, &ledger)?;
                fs::metadata(path)?.len()
            }
        };
        Ok(TestGateway {
            ledger: Mutex::new(ledger),
            webhook_secret,
            file: Some(path.to_path_buf()),
            journal: Some(Mutex::new(Journal::open(path, whole)?)),
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

    /// Appends a change to the gateway's journal, if it has one. Called with the ledger's
    /// lock held, so changes are written in the order they were made.
    fn record(&self, entry: &Entry<'_>) -> Result<(), PaymentError> {
        let (Some(path), Some(journal)) = (&self.file, &self.journal) else {
            return Ok(());
        };
        let mut journal = journal.lock().unwrap_or_else(|e| e.into_inner());
        journal
            .append(entry)
            .map_err(|e| PaymentError::Unavailable {
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
                    let entry = Entry::Charge(StoredCharge {
                        idempotency_key: Cow::Borrowed(&key),
                        order,
                        charge: Cow::Borrowed(charge),
                    });
                    if let Err(e) = self.record(&entry) {
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
        let entry = Entry::Charge(StoredCharge {
            idempotency_key: Cow::Borrowed(&request.idempotency_key),
            order: request.order,
            charge: Cow::Borrowed(&charge),
        });
        if let Err(e) = self.record(&entry) {
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
        let entry = Entry::Refund(StoredRefund {
            idempotency_key: Cow::Borrowed(&request.idempotency_key),
            refund: Cow::Borrowed(&refund),
        });
        if let Err(e) = self.record(&entry) {
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

    /// A refund of the whole of `charge` with key `key`.
    fn refund_request(charge: &Charge, key: &str) -> RefundRequest {
        RefundRequest {
            payment_id: charge.payment_id.clone(),
            amount: charge.amount,
            idempotency_key: key.into(),
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
                .refund(&refund_request(&charge, "refund-a"))
                .await
                .unwrap();
            (charge, refund)
        };

        let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
        let again = gateway
            .refund(&refund_request(&charge, "refund-a"))
            .await
            .unwrap();
        assert_eq!(again, refund, "the same key answers the first refund");
        let second = gateway.refund(&refund_request(&charge, "refund-b")).await;
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

    /// Every change is appended to the file: what was written before stays as it was, so a
    /// change costs the bytes of that change, however many charges the file holds.
    #[tokio::test]
    async fn a_change_is_appended_to_the_file_not_rewritten() {
        let dir = TempDir::new();
        let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
        let mut before = fs::read(dir.file()).unwrap();
        let mut grew = |what: &str| {
            let now = fs::read(dir.file()).unwrap();
            assert!(
                now.len() > before.len() && now.starts_with(&before),
                "{what}: the file was rewritten, not appended to"
            );
            before = now;
        };
        let approved = gateway
            .charge(&charge_request(OrderId::new(), "tok_approve", "charge-a"))
            .await
            .unwrap();
        grew("a charge");
        let pending = gateway
            .charge(&charge_request(OrderId::new(), "tok_pending", "charge-b"))
            .await
            .unwrap();
        grew("a second charge");
        gateway.complete(&pending.payment_id, true).unwrap();
        grew("a completed challenge");
        gateway
            .refund(&refund_request(&approved, "refund-a"))
            .await
            .unwrap();
        grew("a refund");
        // Answers that change nothing write nothing.
        gateway
            .charge(&charge_request(OrderId::new(), "tok_approve", "charge-a"))
            .await
            .unwrap();
        gateway.complete(&pending.payment_id, true).unwrap();
        assert_eq!(fs::read(dir.file()).unwrap(), before);
    }

    /// A crash while a change is written can only tear the file's last line; that change was
    /// never answered, so the next open drops it and goes on from the ones before.
    #[tokio::test]
    async fn a_torn_last_line_is_dropped_and_the_file_goes_on() {
        let dir = TempDir::new();
        let approved = {
            let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
            gateway
                .charge(&charge_request(OrderId::new(), "tok_approve", "charge-a"))
                .await
                .unwrap()
        };
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(dir.file())
            .unwrap();
        file.write_all(br#"{"charge":{"idempotency_key":"charge-b","ord"#)
            .unwrap();
        drop(file);

        let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
        assert_eq!(gateway.lookup("charge-a").await.unwrap(), Some(approved));
        assert_eq!(gateway.lookup("charge-b").await.unwrap(), None);
        let second = gateway
            .charge(&charge_request(OrderId::new(), "tok_approve", "charge-b"))
            .await
            .unwrap();
        drop(gateway);
        let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
        assert_eq!(gateway.lookup("charge-b").await.unwrap(), Some(second));
        assert_eq!(gateway.charges().len(), 2);

        // A damaged line before the last is not a crash's doing: the file is refused.
        let mut bytes = fs::read(dir.file()).unwrap();
        let damaged = bytes.len() - 10;
        bytes[damaged] = b'#';
        bytes.extend_from_slice(b"{}\n");
        fs::write(dir.file(), &bytes).unwrap();
        let err = TestGateway::open(dir.file(), b"s".to_vec()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(fs::read(dir.file()).unwrap(), bytes, "left as it was");
    }

    /// A file written by the earlier layout (one JSON document of every charge and refund)
    /// is read, and from then on appended to.
    #[tokio::test]
    async fn a_file_of_the_earlier_layout_is_read() {
        let dir = TempDir::new();
        let charge = Charge {
            payment_id: PaymentId("pay_test_0123456789abcdef0123456789abcdef".into()),
            status: PaymentStatus::Succeeded,
            amount: Money::from_minor(4_500, Currency::USD),
            failure_reason: None,
            next_action: None,
        };
        let order = OrderId::new();
        let earlier = serde_json::json!({
            "version": 1,
            "charges": [{"idempotency_key": "charge-a", "order": order, "charge": charge}],
            "refunds": [],
        });
        fs::write(dir.file(), serde_json::to_vec_pretty(&earlier).unwrap()).unwrap();

        let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
        assert_eq!(
            gateway.lookup("charge-a").await.unwrap(),
            Some(charge.clone())
        );
        assert_eq!(gateway.order_of(&charge.payment_id), Some(order));
        gateway
            .refund(&refund_request(&charge, "refund-a"))
            .await
            .unwrap();
        drop(gateway);
        let gateway = TestGateway::open(dir.file(), b"s".to_vec()).unwrap();
        assert_eq!(
            gateway.lookup("charge-a").await.unwrap().unwrap().status,
            PaymentStatus::Refunded
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
