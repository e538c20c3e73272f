//! Events on NATS JetStream: the outbox publisher, durable consumers, dead letters and replay.
//!
//! One stream holds a shop's events under one subject prefix:
//!
//! - `{prefix}.{aggregate type}.{event type}`, e.g. `shop.order.order_confirmed`: the events,
//!   each message's payload the [`EventEnvelope`] as JSON, its `Nats-Msg-Id` the event's id
//!   (so JetStream drops a message the relay sends again within the stream's duplicate
//!   window), and the headers `Ecommerce-Outbox-Seq` and `Ecommerce-Aggregate-Id`;
//! - `{prefix}.dead_letter`: what could not be published or consumed, with the header
//!   `Ecommerce-Dead-Letter-Reason`.
//!
//! [`JetStreamPublisher`] is the [`EventPublisher`] an [`ecommerce_core::events::OutboxRelay`]
//! sends the outbox to. [`EventConsumer`] reads the stream with a durable consumer (each
//! service its own name, remembered by the server across restarts) or from any sequence
//! ([`EventConsumer::replay`]); a message is redelivered until it is acknowledged, so
//! handlers are idempotent, and a message that is not an event goes to the dead letters.
//!
//! ```no_run
//! # async fn run(shop: ecommerce_core::storefront::Storefront) -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ecommerce_core::events::OutboxRelay;
//! use ecommerce_events::nats::{EventStream, JetStreamPublisher};
//!
//! let stream = EventStream::connect("nats://127.0.0.1:4222", "SHOP", "shop").await?;
//! let relay = OutboxRelay::publishing(
//!     shop.outbox().clone(),
//!     Arc::new(JetStreamPublisher::new(stream.clone())),
//! );
//! tokio::spawn(async move { relay.run().await });
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::{PublishAckFuture, PublishErrorKind};
use async_nats::jetstream::stream::{Config as StreamConfig, StorageType};
use async_nats::jetstream::{self, AckKind, Context, Message};
use async_trait::async_trait;
use bytes::Bytes;
use ecommerce_core::error::EventError;
use ecommerce_core::events::{EventEnvelope, EventPublisher, EventSink, OutboxRecord};
use futures::StreamExt;

/// The header carrying the outbox sequence of an event.
pub const OUTBOX_SEQ_HEADER: &str = "Ecommerce-Outbox-Seq";
/// The header carrying the aggregate (order, product) id of an event.
pub const AGGREGATE_ID_HEADER: &str = "Ecommerce-Aggregate-Id";
/// The header saying why a dead letter was set aside.
pub const DEAD_LETTER_REASON_HEADER: &str = "Ecommerce-Dead-Letter-Reason";

/// Errors of the NATS side.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// The server could not be reached.
    #[error("cannot connect to NATS at {url}: {message}")]
    Connect {
        /// The address.
        url: String,
        /// What the client said.
        message: String,
    },
    /// A JetStream request (stream, consumer, fetch, acknowledgement) failed.
    #[error("JetStream {what} failed: {message}")]
    JetStream {
        /// What was asked.
        what: &'static str,
        /// What the client said.
        message: String,
    },
}

fn jetstream_error(what: &'static str, e: impl std::fmt::Display) -> NatsError {
    NatsError::JetStream {
        what,
        message: e.to_string(),
    }
}

/// A shop's event stream: a JetStream stream and its subject prefix.
#[derive(Debug, Clone)]
pub struct EventStream {
    context: Context,
    client: async_nats::Client,
    name: String,
    prefix: String,
}

impl EventStream {
    /// Connects and makes sure the stream `name` exists, taking `{prefix}.>`, kept on disk,
    /// with a duplicate window of 10 minutes (a relay restarted within it sends nothing
    /// twice to consumers; beyond it, consumers drop repeated event ids themselves).
    ///
    /// # Errors
    /// [`NatsError`] when the server cannot be reached or refuses the stream.
    pub async fn connect(url: &str, name: &str, prefix: &str) -> Result<Self, NatsError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .retry_on_initial_connect()
            .connect(url)
            .await
            .map_err(|e| NatsError::Connect {
                url: url.to_owned(),
                message: e.to_string(),
            })?;
        Self::with_client(client, name, prefix).await
    }

    /// As [`EventStream::connect`], on a client of your own.
    ///
    /// # Errors
    /// [`NatsError::JetStream`] when the stream cannot be made.
    pub async fn with_client(
        client: async_nats::Client,
        name: &str,
        prefix: &str,
    ) -> Result<Self, NatsError> {
        let context = jetstream::new(client.clone());
        context
            .get_or_create_stream(StreamConfig {
                name: name.to_owned(),
                subjects: vec![format!("{prefix}.>")],
                storage: StorageType::File,
                duplicate_window: Duration::from_secs(600),
                ..Default::default()
            })
            .await
            .map_err(|e| jetstream_error("creating the stream", e))?;
        Ok(EventStream {
            context,
            client,
            name: name.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The subject prefix (`{prefix}.>` is every subject of the stream).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The subject of an event type, e.g. `subject("order", "order_confirmed")`.
    pub fn subject(&self, aggregate_type: &str, event_type: &str) -> String {
        format!("{}.{aggregate_type}.{event_type}", self.prefix)
    }

    /// The dead letters' subject.
    pub fn dead_letter_subject(&self) -> String {
        format!("{}.dead_letter", self.prefix)
    }

    /// The JetStream context, for anything else.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Deletes the stream and everything in it (tests, demos).
    ///
    /// # Errors
    /// [`NatsError::JetStream`].
    pub async fn delete(&self) -> Result<(), NatsError> {
        self.context
            .delete_stream(&self.name)
            .await
            .map_err(|e| jetstream_error("deleting the stream", e))?;
        Ok(())
    }

    async fn jetstream_stream(&self) -> Result<jetstream::stream::Stream, NatsError> {
        self.context
            .get_stream(&self.name)
            .await
            .map_err(|e| jetstream_error("finding the stream", e))
    }

    async fn send(&self, subject: String, headers: HeaderMap, payload: Bytes) -> Sent {
        let payload = clip(payload, self.client.server_info().max_payload);
        match self
            .context
            .publish_with_headers(subject, headers, payload)
            .await
        {
            Ok(ack) => Sent::Waiting(ack),
            Err(e) => Sent::Failed(publish_error(e.kind(), &e)),
        }
    }
}

/// A payload cut to what the server takes (less room for headers): a dead letter of an event
/// too large to publish still goes out, marked truncated by its shorter length.
fn clip(payload: Bytes, max_payload: usize) -> Bytes {
    let room = max_payload.saturating_sub(4096);
    if max_payload == 0 || payload.len() <= room {
        payload
    } else {
        payload.slice(..room)
    }
}

enum Sent {
    Waiting(PublishAckFuture),
    Failed(EventError),
}

impl Sent {
    async fn outcome(self) -> Result<(), EventError> {
        match self {
            Sent::Waiting(ack) => match ack.await {
                Ok(_) => Ok(()),
                Err(e) => Err(publish_error(e.kind(), &e)),
            },
            Sent::Failed(e) => Err(e),
        }
    }
}

/// Too large is the event's fault (rejected, then a dead letter); everything else is the
/// broker's state (retried).
fn publish_error(kind: PublishErrorKind, e: &dyn std::fmt::Display) -> EventError {
    match kind {
        PublishErrorKind::MaxPayloadExceeded => EventError::Rejected {
            message: e.to_string(),
        },
        _ => EventError::Delivery {
            message: format!("publishing to JetStream: {e}"),
            source: None,
        },
    }
}

/// Publishes outbox rows to an [`EventStream`]: every row of a batch is sent before any
/// acknowledgement is awaited, and a row counts as published once JetStream has stored it.
#[derive(Debug, Clone)]
pub struct JetStreamPublisher {
    stream: EventStream,
}

impl JetStreamPublisher {
    /// A publisher to this stream.
    pub fn new(stream: EventStream) -> Self {
        JetStreamPublisher { stream }
    }
}

fn headers(record: &OutboxRecord) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, record.id.to_string());
    headers.insert(OUTBOX_SEQ_HEADER, record.seq.to_string());
    headers.insert(AGGREGATE_ID_HEADER, record.aggregate_id.as_str());
    headers
}

#[async_trait]
impl EventPublisher for JetStreamPublisher {
    async fn publish(&self, records: &[OutboxRecord]) -> Vec<Result<(), EventError>> {
        let mut sent = Vec::with_capacity(records.len());
        for record in records {
            let subject = self
                .stream
                .subject(&record.aggregate_type, &record.event_type);
            let payload = Bytes::from(record.payload.clone().into_bytes());
            sent.push(self.stream.send(subject, headers(record), payload).await);
        }
        let mut outcomes = Vec::with_capacity(sent.len());
        for sent in sent {
            outcomes.push(sent.outcome().await);
        }
        outcomes
    }

    async fn dead_letter(&self, record: &OutboxRecord, reason: &str) -> Result<(), EventError> {
        let mut headers = headers(record);
        headers.insert(DEAD_LETTER_REASON_HEADER, one_line(reason));
        let payload = Bytes::from(record.payload.clone().into_bytes());
        self.stream
            .send(self.stream.dead_letter_subject(), headers, payload)
            .await
            .outcome()
            .await
    }
}

/// A header value on one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(512)
        .collect()
}

/// An event read from the stream, to acknowledge once handled.
#[derive(Debug)]
pub struct Delivery {
    /// Its sequence in the stream (increasing; what [`EventConsumer::replay`] starts from).
    pub stream_seq: u64,
    /// How many times it was delivered (1 the first time).
    pub delivered: u64,
    /// The event.
    pub event: EventEnvelope,
    message: Message,
}

impl Delivery {
    /// Marks it handled: it is not delivered again.
    ///
    /// # Errors
    /// [`NatsError::JetStream`]: it may be delivered again.
    pub async fn ack(&self) -> Result<(), NatsError> {
        self.message
            .double_ack()
            .await
            .map_err(|e| jetstream_error("acknowledging", e))
    }

    /// Asks for it again after `delay` (the handler failed for now).
    ///
    /// # Errors
    /// [`NatsError::JetStream`]: it comes again after the consumer's ack wait anyway.
    pub async fn retry_later(&self, delay: Duration) -> Result<(), NatsError> {
        self.message
            .ack_with(AckKind::Nak(Some(delay)))
            .await
            .map_err(|e| jetstream_error("asking for redelivery", e))
    }
}

/// Reads events from an [`EventStream`].
#[derive(Debug, Clone)]
pub struct EventConsumer {
    stream: EventStream,
    consumer: PullConsumer,
    acknowledged: bool,
}

/// How many aggregates [`EventConsumer::run`] handles at once.
const HANDLERS: usize = 16;

/// 1 s for a second delivery, doubling up to 30 s.
fn redelivery_pause(delivered: u64) -> Duration {
    let doublings = delivered.saturating_sub(1).min(5) as u32;
    Duration::from_secs(1 << doublings).min(Duration::from_secs(30))
}

/// How long the server waits for an acknowledgement before it delivers a message again.
const ACK_WAIT: Duration = Duration::from_secs(30);

impl EventConsumer {
    /// The durable consumer `name` of the events whose subject matches `filter` (e.g.
    /// `stream.subject("order", "order_confirmed")`, or `"{prefix}.>"` for all), made if
    /// missing. The server remembers what it acknowledged across restarts of the service.
    ///
    /// # Errors
    /// [`NatsError::JetStream`].
    pub async fn durable(
        stream: &EventStream,
        name: &str,
        filter: &str,
    ) -> Result<Self, NatsError> {
        let config = pull::Config {
            durable_name: Some(name.to_owned()),
            filter_subject: filter.to_owned(),
            ack_policy: AckPolicy::Explicit,
            ack_wait: ACK_WAIT,
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        };
        let consumer = stream
            .jetstream_stream()
            .await?
            .get_or_create_consumer(name, config)
            .await
            .map_err(|e| jetstream_error("creating the consumer", e))?;
        Ok(EventConsumer {
            stream: stream.clone(),
            consumer,
            acknowledged: true,
        })
    }

    /// Every event from stream sequence `from` on whose subject matches `filter`, read
    /// without acknowledgements by a consumer that lives as long as it is used: to rebuild a
    /// read model or a history, or to look at what happened.
    ///
    /// # Errors
    /// [`NatsError::JetStream`].
    pub async fn replay(stream: &EventStream, from: u64, filter: &str) -> Result<Self, NatsError> {
        let config = pull::Config {
            filter_subject: filter.to_owned(),
            ack_policy: AckPolicy::None,
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from.max(1),
            },
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        };
        let consumer = stream
            .jetstream_stream()
            .await?
            .create_consumer(config)
            .await
            .map_err(|e| jetstream_error("creating the consumer", e))?;
        Ok(EventConsumer {
            stream: stream.clone(),
            consumer,
            acknowledged: false,
        })
    }

    /// Up to `max` events, waiting at most `wait` for the first. A message that is not an
    /// event is sent to the dead letters and dropped from this consumer (and not returned).
    ///
    /// # Errors
    /// [`NatsError::JetStream`].
    pub async fn next_batch(&self, max: usize, wait: Duration) -> Result<Vec<Delivery>, NatsError> {
        let mut messages = self
            .consumer
            .fetch()
            .max_messages(max.max(1))
            .expires(wait)
            .messages()
            .await
            .map_err(|e| jetstream_error("fetching", e))?;
        let mut batch = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| jetstream_error("fetching", e))?;
            let (stream_seq, delivered) = {
                let info = message.info().map_err(|e| jetstream_error("reading", e))?;
                (info.stream_sequence, info.delivered.max(1) as u64)
            };
            let decoded = std::str::from_utf8(&message.payload)
                .map_err(|e| e.to_string())
                .and_then(|text| EventEnvelope::from_json(text).map_err(|e| e.to_string()));
            match decoded {
                Ok(event) => batch.push(Delivery {
                    stream_seq,
                    delivered,
                    event,
                    message,
                }),
                Err(reason) => self.set_aside(message, stream_seq, &reason).await?,
            }
        }
        Ok(batch)
    }

    /// Hands every event to `sink` for as long as the future runs, the events of one
    /// aggregate (an order) in stream order and up to 16 aggregates at once: an event
    /// the sink took is acknowledged, one it refused comes again after a pause (1 s, doubling
    /// to 30 s for the same event). Stop it by dropping the future or aborting its task: what
    /// was handled but not yet acknowledged is delivered again, so the sink must be
    /// idempotent (it is handed [`EventEnvelope::id`] to drop repeats). A server that cannot
    /// be reached is waited for.
    pub async fn run(&self, sink: &dyn EventSink) {
        loop {
            let batch = match self.next_batch(100, Duration::from_secs(1)).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "reading events failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            // The events of one aggregate one after another, different aggregates at once.
            let mut groups: Vec<Vec<Delivery>> = Vec::new();
            let mut group_of: HashMap<(String, String), usize> = HashMap::new();
            for delivery in batch {
                let key = (
                    delivery.event.event.aggregate_type().to_owned(),
                    delivery.event.event.aggregate_id(),
                );
                let next = groups.len();
                let at = *group_of.entry(key).or_insert(next);
                if at == next {
                    groups.push(Vec::new());
                }
                groups[at].push(delivery);
            }
            futures::stream::iter(groups)
                .for_each_concurrent(HANDLERS, |group| self.handle_in_order(sink, group))
                .await;
        }
    }

    /// Hands one aggregate's events to the sink in order; after a refusal the rest come
    /// again with it.
    async fn handle_in_order(&self, sink: &dyn EventSink, group: Vec<Delivery>) {
        let mut refused = false;
        for delivery in group {
            let outcome = if refused {
                Err(EventError::Delivery {
                    message: "an earlier event of the same aggregate was refused".into(),
                    source: None,
                })
            } else {
                sink.deliver(&delivery.event).await
            };
            let answered = match outcome {
                Ok(()) if self.acknowledged => delivery.ack().await,
                Ok(()) => Ok(()),
                Err(e) => {
                    refused = true;
                    let pause = redelivery_pause(delivery.delivered);
                    tracing::warn!(
                        error = %e,
                        event = %delivery.event.id,
                        stream_seq = delivery.stream_seq,
                        retry_in_ms = pause.as_millis() as u64,
                        "an event was not handled; it comes again"
                    );
                    delivery.retry_later(pause).await
                }
            };
            if let Err(e) = answered {
                tracing::warn!(error = %e, "answering the server failed; the event comes again");
            }
        }
    }

    /// A message that is not an event: to the dead letters, then never delivered again (a
    /// dead letter read by a consumer of every subject is only dropped).
    async fn set_aside(&self, message: Message, seq: u64, reason: &str) -> Result<(), NatsError> {
        if message.subject.as_str() == self.stream.dead_letter_subject() {
            return self.drop_message(message).await;
        }
        if !self.acknowledged {
            // A replay reads history: the durable consumers set it aside when it came.
            tracing::warn!(stream_seq = seq, subject = %message.subject, reason, "not an event: skipped");
            return Ok(());
        }
        tracing::error!(stream_seq = seq, subject = %message.subject, reason, "not an event: dead letter");
        let mut headers = message.headers.clone().unwrap_or_default();
        headers.insert(
            DEAD_LETTER_REASON_HEADER,
            one_line(&format!("stream {seq} ({}): {reason}", message.subject)),
        );
        self.stream
            .send(
                self.stream.dead_letter_subject(),
                headers,
                message.payload.clone(),
            )
            .await
            .outcome()
            .await
            .map_err(|e| jetstream_error("sending a dead letter", e))?;
        self.drop_message(message).await
    }

    async fn drop_message(&self, message: Message) -> Result<(), NatsError> {
        if self.acknowledged {
            message
                .ack_with(AckKind::Term)
                .await
                .map_err(|e| jetstream_error("dropping a dead letter", e))?;
        }
        Ok(())
    }
}

#[cfg(feature = "parquet")]
impl EventStream {
    /// Exports the stream to a Parquet history for as long as the future runs, every event
    /// exactly once: it reads from the exporter's watermark + 1 in stream order, exports
    /// batch by batch, and after any failure (or a restart) starts again from the watermark,
    /// which the exporter moves only once a batch's files are in place. No consumer state is
    /// kept on the server: the watermark is the position. Failures of the server or the disk
    /// are logged and retried. The files are written on the calling task: run it on a task
    /// of its own.
    pub async fn export_history(&self, exporter: &mut crate::analytics::ParquetExporter) {
        let all = format!("{}.>", self.prefix);
        loop {
            let from = exporter.watermark() + 1;
            let consumer = match EventConsumer::replay(self, from, &all).await {
                Ok(consumer) => consumer,
                Err(e) => {
                    tracing::warn!(error = %e, "the history export cannot read the stream; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                let batch = match consumer.next_batch(1_000, Duration::from_secs(1)).await {
                    Ok(batch) => batch,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading the stream failed; reading again from the watermark");
                        break;
                    }
                };
                if batch.is_empty() {
                    continue;
                }
                let events: Vec<_> = batch.into_iter().map(|d| (d.stream_seq, d.event)).collect();
                if let Err(e) = exporter.export(&events) {
                    tracing::warn!(error = %e, "exporting failed; exporting again from the watermark");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}
