//! Domain events, the outbox they are written to, and their at-least-once delivery.
//!
//! Order stores append events to their outbox in the same atomic step as the change that
//! caused them ([`crate::order::OrderStore`]). An [`OutboxRelay`] reads the outbox in order
//! and hands the events to an [`EventPublisher`] (a message broker: NATS JetStream in the
//! `ecommerce-events` crate) or to an [`EventSink`] in the process (the checkout's effects, a
//! search indexer). An event leaves the outbox only after it was accepted, so a crash or a
//! failing destination means the event is delivered again, never lost. Destinations must
//! therefore be idempotent: use [`EventEnvelope::id`] to drop duplicates.
//!
//! Outbox rows follow Debezium's outbox layout ([`OutboxRecord`]: id, aggregate type,
//! aggregate id, type, payload), so that a change-data-capture pipeline can take over from
//! the relay without a schema change.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{EventError, StoreError};
use crate::id::{CartId, CustomerId, EventId, OrderId, ProductId, Sku};
use crate::money::Money;
use crate::order::FailureReason;

/// Something that happened in the shop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DomainEvent {
    /// An order was created PENDING.
    OrderPlaced {
        /// The order.
        order: OrderId,
        /// Its customer.
        customer: CustomerId,
        /// Its total.
        total: Money,
    },
    /// An order was paid and its stock sold: shipping starts here.
    OrderConfirmed {
        /// The order.
        order: OrderId,
        /// Its customer.
        customer: CustomerId,
        /// SKUs and units.
        lines: Vec<(Sku, u32)>,
        /// Its total.
        total: Money,
        /// The cart it was placed from, whose ordered units the checkout's effects take
        /// out ([`crate::checkout::CheckoutEffects`]). `None` in events written before it
        /// was recorded: the effects then read the order for it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cart: Option<CartId>,
    },
    /// An order failed; nothing is charged or held.
    OrderFailed {
        /// The order.
        order: OrderId,
        /// Why.
        reason: FailureReason,
    },
    /// An order was shipped.
    OrderShipped {
        /// The order.
        order: OrderId,
    },
    /// An order was delivered.
    OrderDelivered {
        /// The order.
        order: OrderId,
    },
    /// A confirmed order was cancelled, refunded and restocked.
    OrderCancelled {
        /// The order.
        order: OrderId,
    },
    /// A product was created or changed (search indexers listen).
    ProductChanged {
        /// The product.
        product: ProductId,
    },
}

impl DomainEvent {
    /// What the event is about, as Debezium's outbox names it: `"order"` or `"product"`.
    pub fn aggregate_type(&self) -> &'static str {
        match self {
            DomainEvent::ProductChanged { .. } => "product",
            _ => "order",
        }
    }

    /// The id of what the event is about (the order or the product).
    pub fn aggregate_id(&self) -> String {
        match self {
            DomainEvent::OrderPlaced { order, .. }
            | DomainEvent::OrderConfirmed { order, .. }
            | DomainEvent::OrderFailed { order, .. }
            | DomainEvent::OrderShipped { order }
            | DomainEvent::OrderDelivered { order }
            | DomainEvent::OrderCancelled { order } => order.to_string(),
            DomainEvent::ProductChanged { product } => product.to_string(),
        }
    }

    /// The event's type as it is written in its payload: `"order_confirmed"`...
    pub fn event_type(&self) -> &'static str {
        match self {
            DomainEvent::OrderPlaced { .. } => "order_placed",
            DomainEvent::OrderConfirmed { .. } => "order_confirmed",
            DomainEvent::OrderFailed { .. } => "order_failed",
            DomainEvent::OrderShipped { .. } => "order_shipped",
            DomainEvent::OrderDelivered { .. } => "order_delivered",
            DomainEvent::OrderCancelled { .. } => "order_cancelled",
            DomainEvent::ProductChanged { .. } => "product_changed",
        }
    }
}

/// An event as stored in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// Unique id (UUID v7): sinks drop duplicates by it.
    pub id: EventId,
    /// When it was written.
    pub occurred_at: DateTime<Utc>,
    /// The event.
    pub event: DomainEvent,
}

impl EventEnvelope {
    /// Wraps an event with a new id and the current time.
    pub fn new(event: DomainEvent) -> Self {
        EventEnvelope {
            id: EventId::new(),
            occurred_at: Utc::now(),
            event,
        }
    }
}

/// An outbox row: the event's place in the outbox and Debezium's outbox columns.
///
/// The payload is the [`EventEnvelope`] as JSON, kept as stored: a publisher sends these
/// bytes as they are, and a row that does not decode is set aside as a dead letter instead of
/// stopping the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OutboxRecord {
    /// Its place in the outbox: increasing in the order the events were written (per store;
    /// a sharded store's shards number their rows each on their own).
    pub seq: u64,
    /// The event's id.
    pub id: EventId,
    /// `"order"` or `"product"` ([`DomainEvent::aggregate_type`]).
    pub aggregate_type: String,
    /// The order's or product's id ([`DomainEvent::aggregate_id`]).
    pub aggregate_id: String,
    /// The event's type ([`DomainEvent::event_type`]).
    pub event_type: String,
    /// The [`EventEnvelope`] as JSON.
    pub payload: String,
}

impl OutboxRecord {
    /// The row for an envelope at `seq`.
    pub fn new(seq: u64, envelope: &EventEnvelope) -> Self {
        OutboxRecord {
            seq,
            id: envelope.id,
            aggregate_type: envelope.event.aggregate_type().to_owned(),
            aggregate_id: envelope.event.aggregate_id(),
            event_type: envelope.event.event_type().to_owned(),
            payload: envelope.to_json(),
        }
    }

    /// A row as read from storage, columns as they are.
    pub fn from_parts(
        seq: u64,
        id: EventId,
        aggregate_type: String,
        aggregate_id: String,
        event_type: String,
        payload: String,
    ) -> Self {
        OutboxRecord {
            seq,
            id,
            aggregate_type,
            aggregate_id,
            event_type,
            payload,
        }
    }

    /// The event.
    ///
    /// # Errors
    /// [`EventError::Corrupt`] when the payload is not an event envelope.
    pub fn envelope(&self) -> Result<EventEnvelope, EventError> {
        EventEnvelope::from_json(&self.payload).map_err(|e| EventError::Corrupt {
            seq: self.seq,
            message: e.to_string(),
        })
    }
}

impl EventEnvelope {
    /// The envelope as JSON (the outbox payload).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event envelope always serializes")
    }

    /// An envelope from its JSON.
    ///
    /// # Errors
    /// When the text is not an event envelope.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// The read side of an outbox: events written by stores, waiting for delivery.
///
/// Implementations return pending events in the order they were written and delete only
/// acknowledged ones.
#[async_trait]
pub trait Outbox: Debug + Send + Sync + 'static {
    /// Up to `limit` undelivered events, oldest first.
    ///
    /// # Errors
    /// [`StoreError`].
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxRecord>, StoreError>;

    /// Marks events delivered; unknown ids are ignored (acknowledging twice is fine).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn acknowledge(&self, ids: &[EventId]) -> Result<(), StoreError>;
}

/// Where events are delivered in the process: the checkout's effects, a search indexer.
///
/// Delivery is at least once: a sink may see an event again after a crash or an error, and
/// must treat a repeated [`EventEnvelope::id`] as done.
#[async_trait]
pub trait EventSink: Debug + Send + Sync + 'static {
    /// Takes one event.
    ///
    /// # Errors
    /// [`EventError::Delivery`]: the event stays in the outbox and is delivered again.
    async fn deliver(&self, event: &EventEnvelope) -> Result<(), EventError>;
}

/// Where the relay sends outbox rows out of the process: a message broker.
///
/// The relay hands over rows of different aggregates at a time, and the next row of an
/// aggregate only once the one before it was accepted, so a publisher may send a batch
/// concurrently and still keep each order's events in order.
#[async_trait]
pub trait EventPublisher: Debug + Send + Sync + 'static {
    /// Publishes each row durably; the answer has one outcome per row, in the same order.
    /// [`EventError::Delivery`] is retried until it succeeds; [`EventError::Rejected`] a few
    /// times, then the row is a dead letter. A row published twice (its acceptance lost) must
    /// reach consumers once: use [`OutboxRecord::id`] as the message id.
    async fn publish(&self, records: &[OutboxRecord]) -> Vec<Result<(), EventError>>;

    /// Sets aside a row that cannot be published (corrupt, or rejected too often), with why.
    /// Once this succeeds the row leaves the outbox.
    ///
    /// # Errors
    /// [`EventError::Delivery`]: the row stays in the outbox and is tried again.
    async fn dead_letter(&self, record: &OutboxRecord, reason: &str) -> Result<(), EventError>;
}

/// Several sinks as one: each event goes to every sink, in order; the first refusal stops
/// the delivery, and the event comes again to every sink (they drop duplicates by id).
#[derive(Debug, Clone)]
pub struct FanOut(Vec<Arc<dyn EventSink>>);

impl FanOut {
    /// Delivers to these sinks.
    pub fn new(sinks: Vec<Arc<dyn EventSink>>) -> Self {
        FanOut(sinks)
    }
}

#[async_trait]
impl EventSink for FanOut {
    async fn deliver(&self, event: &EventEnvelope) -> Result<(), EventError> {
        for sink in &self.0 {
            sink.deliver(event).await?;
        }
        Ok(())
    }
}

/// A sink as a publisher: rows are decoded and delivered one by one; a dead letter is
/// logged at error level with its payload (a sink has nowhere else to put it).
#[derive(Debug)]
struct SinkPublisher(Arc<dyn EventSink>);

#[async_trait]
impl EventPublisher for SinkPublisher {
    async fn publish(&self, records: &[OutboxRecord]) -> Vec<Result<(), EventError>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            let outcome = match record.envelope() {
                Ok(envelope) => self.0.deliver(&envelope).await,
                Err(e) => Err(e),
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn dead_letter(&self, record: &OutboxRecord, reason: &str) -> Result<(), EventError> {
        tracing::error!(
            seq = record.seq,
            event = %record.id,
            aggregate = %record.aggregate_id,
            payload = %record.payload,
            reason,
            "dead letter: the event was set aside"
        );
        Ok(())
    }
}

/// What one round of the relay did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RelayRound {
    /// Rows published (or delivered) and removed from the outbox.
    pub delivered: usize,
    /// Rows set aside as dead letters and removed from the outbox.
    pub dead_letters: usize,
    /// Rows that failed and stay in the outbox (with the rows after them of the same
    /// aggregate).
    pub failed: usize,
    /// The first failure.
    pub error: Option<EventError>,
}

/// Moves events from an outbox to a publisher or a sink, at least once, in order per
/// aggregate (order or product).
///
/// Each round reads a batch and hands it over in waves, each wave holding at most one row
/// per aggregate, so one order's events arrive in the order they were written while the
/// rows of different orders travel together. A row that fails stays in the outbox and holds
/// back the rows of its aggregate that follow it (the other aggregates go on); a row whose
/// payload does not decode, or that the publisher rejects [`OutboxRelay::max_attempts`]
/// times, becomes a dead letter ([`EventPublisher::dead_letter`]) and the relay goes on.
/// [`OutboxRelay::run`] repeats rounds, backing off while the destination fails.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    batch: usize,
    max_attempts: u32,
    idle: Duration,
    max_backoff: Duration,
    rejections: Arc<Mutex<HashMap<EventId, u32>>>,
}

impl OutboxRelay {
    /// A relay delivering to a sink in the process, up to 100 events per round.
    pub fn new(outbox: Arc<dyn Outbox>, sink: Arc<dyn EventSink>) -> Self {
        Self::publishing(outbox, Arc::new(SinkPublisher(sink)))
    }

    /// A relay publishing to a broker, up to 100 events per round.
    pub fn publishing(outbox: Arc<dyn Outbox>, publisher: Arc<dyn EventPublisher>) -> Self {
        OutboxRelay {
            outbox,
            publisher,
            batch: 100,
            max_attempts: 5,
            idle: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            rejections: Arc::default(),
        }
    }

    /// Sets how many events one round reads.
    pub fn batch_size(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// How many times a row the publisher rejects ([`EventError::Rejected`]) is tried before
    /// it becomes a dead letter (5 by default; at least 1). Failures to reach the destination
    /// ([`EventError::Delivery`]) are retried without end: nothing is set aside because a
    /// broker is down.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// How long [`OutboxRelay::run`] waits when the outbox is empty (200 ms by default).
    pub fn poll_interval(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// The longest wait between rounds while the destination fails (30 s by default; the
    /// wait doubles from 100 ms).
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// Delivers one batch: every row, in order per aggregate, except those held back by a
    /// failure. Returns how many rows left the outbox (delivered or dead letters).
    ///
    /// # Errors
    /// [`EventError::Store`] when the outbox fails; otherwise the first failure of the round
    /// (the rows that succeeded were acknowledged).
    pub async fn run_once(&self) -> Result<usize, EventError> {
        let round = self.round().await?;
        match round.error {
            Some(e) => Err(e),
            None => Ok(round.delivered + round.dead_letters),
        }
    }

    /// One round, reported.
    ///
    /// # Errors
    /// [`EventError::Store`] when the outbox cannot be read or acknowledged.
    pub async fn round(&self) -> Result<RelayRound, EventError> {
        let records = self.outbox.pending(self.batch).await?;
        let mut round = RelayRound::default();
        let mut done = Vec::with_capacity(records.len());
        let mut held: HashSet<(&str, &str)> = HashSet::new();
        let mut remaining: Vec<&OutboxRecord> = records.iter().collect();
        while !remaining.is_empty() {
            let mut wave = Vec::new();
            let mut in_wave: HashSet<(&str, &str)> = HashSet::new();
            let mut later = Vec::new();
            for record in remaining {
                let aggregate = (record.aggregate_type.as_str(), record.aggregate_id.as_str());
                if held.contains(&aggregate) {
                    continue;
                }
                if in_wave.insert(aggregate) {
                    wave.push(record);
                } else {
                    later.push(record);
                }
            }
            remaining = later;
            let (valid, corrupt): (Vec<&OutboxRecord>, Vec<&OutboxRecord>) =
                wave.into_iter().partition(|r| r.envelope().is_ok());
            for record in corrupt {
                let reason = record.envelope().err().map(|e| e.to_string());
                let reason = reason.as_deref().unwrap_or("corrupt");
                self.set_aside(record, reason, &mut round, &mut done, &mut held)
                    .await;
            }
            let batch: Vec<OutboxRecord> = valid.iter().map(|r| (*r).clone()).collect();
            let outcomes = if batch.is_empty() {
                Vec::new()
            } else {
                self.publisher.publish(&batch).await
            };
            for (i, record) in valid.into_iter().enumerate() {
                let outcome = outcomes.get(i).cloned().unwrap_or_else(|| {
                    Err(EventError::Delivery {
                        message: "the publisher gave no outcome".into(),
                        source: None,
                    })
                });
                match outcome {
                    Ok(()) => {
                        round.delivered += 1;
                        done.push(record.id);
                        self.rejections_of(|r| r.remove(&record.id));
                    }
                    Err(EventError::Rejected { message }) => {
                        let attempts = self.rejections_of(|r| {
                            let n = r.entry(record.id).or_insert(0);
                            *n += 1;
                            *n
                        });
                        if attempts >= self.max_attempts {
                            let reason = format!("rejected {attempts} times: {message}");
                            self.set_aside(record, &reason, &mut round, &mut done, &mut held)
                                .await;
                            self.rejections_of(|r| r.remove(&record.id));
                        } else {
                            hold(
                                record,
                                EventError::Rejected { message },
                                &mut round,
                                &mut held,
                            );
                        }
                    }
                    Err(e) => hold(record, e, &mut round, &mut held),
                }
            }
        }
        if !done.is_empty() {
            self.outbox.acknowledge(&done).await?;
        }
        Ok(round)
    }

    async fn set_aside<'a>(
        &self,
        record: &'a OutboxRecord,
        reason: &str,
        round: &mut RelayRound,
        done: &mut Vec<EventId>,
        held: &mut HashSet<(&'a str, &'a str)>,
    ) {
        match self.publisher.dead_letter(record, reason).await {
            Ok(()) => {
                round.dead_letters += 1;
                done.push(record.id);
            }
            Err(e) => hold(record, e, round, held),
        }
    }

    fn rejections_of<T>(&self, f: impl FnOnce(&mut HashMap<EventId, u32>) -> T) -> T {
        f(&mut self.rejections.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Runs rounds until the outbox is empty. Returns how many events left it.
    ///
    /// # Errors
    /// As [`OutboxRelay::run_once`].
    pub async fn drain(&self) -> Result<usize, EventError> {
        let mut total = 0;
        loop {
            let n = self.run_once().await?;
            total += n;
            if n < self.batch {
                return Ok(total);
            }
        }
    }

    /// Relays for as long as the future runs: a round whenever there is something to send,
    /// a pause of [`OutboxRelay::poll_interval`] when the outbox is empty, and a doubling
    /// pause (up to [`OutboxRelay::max_backoff`]) while nothing gets through. An aggregate
    /// whose event fails does not slow the others. Failures are logged.
    /// Stop it by dropping the future (or aborting its task): what was sent but not yet
    /// acknowledged is sent again by the next relay, and dropped by the destination.
    pub async fn run(&self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let pause = match self.round().await {
                Ok(round) => {
                    let moved = round.delivered + round.dead_letters;
                    if let Some(e) = &round.error {
                        tracing::warn!(
                            error = %e,
                            failed = round.failed,
                            delivered = round.delivered,
                            "outbox delivery failed; retrying"
                        );
                    }
                    if round.error.is_some() && moved == 0 {
                        // Nothing goes through: wait longer each time.
                        Some(next_backoff(&mut backoff, self.max_backoff))
                    } else {
                        // The others flow; a failed aggregate is tried again next round.
                        backoff = Duration::from_millis(100);
                        (moved < self.batch).then_some(self.idle)
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "reading the outbox failed; retrying");
                    Some(next_backoff(&mut backoff, self.max_backoff))
                }
            };
            if let Some(pause) = pause {
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// The pause to take now, doubling the next one up to `max`.
fn next_backoff(backoff: &mut Duration, max: Duration) -> Duration {
    let now = *backoff;
    *backoff = (*backoff * 2).min(max);
    now
}

/// Keeps a failed row (and its aggregate's later rows) in the outbox for the next round.
fn hold<'a>(
    record: &'a OutboxRecord,
    error: EventError,
    round: &mut RelayRound,
    held: &mut HashSet<(&'a str, &'a str)>,
) {
    round.failed += 1;
    held.insert((record.aggregate_type.as_str(), record.aggregate_id.as_str()));
    if round.error.is_none() {
        round.error = Some(error);
    }
}
