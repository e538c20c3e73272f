//! Domain events, the outbox they are written to, and their at-least-once delivery.
//!
//! Order stores append events to their outbox in the same atomic step as the change that
//! caused them ([`crate::order::OrderStore`]). An [`OutboxRelay`] reads the outbox in order
//! and hands each event to an [`EventSink`] (shipping, analytics, a search indexer); an event
//! is removed from the outbox only after the sink accepted it, so a crash or a failing sink
//! means the event is delivered again, never lost. Sinks must therefore be idempotent: use
//! [`EventEnvelope::id`] to drop duplicates.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{EventError, StoreError};
use crate::id::{CustomerId, EventId, OrderId, ProductId, Sku};
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
    async fn pending(&self, limit: usize) -> Result<Vec<EventEnvelope>, StoreError>;

    /// Marks events delivered; unknown ids are ignored (acknowledging twice is fine).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn acknowledge(&self, ids: &[EventId]) -> Result<(), StoreError>;
}

/// Where events are delivered: shipping, analytics, search indexing.
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

/// Moves events from an outbox to a sink, at least once, in order.
#[derive(Debug, Clone)]
pub struct OutboxRelay {
    outbox: Arc<dyn Outbox>,
    sink: Arc<dyn EventSink>,
    batch: usize,
}

impl OutboxRelay {
    /// A relay delivering up to 100 events per round.
    pub fn new(outbox: Arc<dyn Outbox>, sink: Arc<dyn EventSink>) -> Self {
        OutboxRelay {
            outbox,
            sink,
            batch: 100,
        }
    }

    /// Sets how many events one round reads.
    pub fn batch_size(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Delivers one batch in order, stopping at the first event the sink refuses (it is
    /// retried next round, keeping the order). Returns how many were delivered.
    ///
    /// # Errors
    /// [`EventError::Store`] when the outbox fails, [`EventError::Delivery`] when the sink
    /// refused an event (the ones before it were delivered and acknowledged).
    pub async fn run_once(&self) -> Result<usize, EventError> {
        let events = self.outbox.pending(self.batch).await?;
        let mut delivered = Vec::with_capacity(events.len());
        let mut failure = None;
        for envelope in &events {
            match self.sink.deliver(envelope).await {
                Ok(()) => delivered.push(envelope.id),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if !delivered.is_empty() {
            self.outbox.acknowledge(&delivered).await?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(delivered.len()),
        }
    }

    /// Runs rounds until the outbox is empty. Returns how many events were delivered.
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
}
