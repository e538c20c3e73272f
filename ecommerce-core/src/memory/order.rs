use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::lock;
use crate::catalog::Page;
use crate::error::{EventError, OrderError, StoreError};
use crate::events::{DomainEvent, EventEnvelope, EventSink, Outbox, OutboxRecord};
use crate::id::{CustomerId, EventId, IdempotencyKey, OrderId};
use crate::order::{
    Created, HistoryCursor, MAX_HISTORY_PAGE, Order, OrderPatch, OrderStatus, OrderStore,
};

#[derive(Debug, Default)]
struct State {
    orders: HashMap<OrderId, Order>,
    by_key: HashMap<(CustomerId, IdempotencyKey), OrderId>,
    by_customer: HashMap<CustomerId, BTreeSet<OrderId>>,
    outbox: BTreeMap<u64, EventEnvelope>,
    outbox_seq: HashMap<EventId, u64>,
    next_seq: u64,
}

impl State {
    fn append(&mut self, events: Vec<DomainEvent>) {
        for event in events {
            let envelope = EventEnvelope::new(event);
            self.next_seq += 1;
            self.outbox_seq.insert(envelope.id, self.next_seq);
            self.outbox.insert(self.next_seq, envelope);
        }
    }
}

/// Orders and their outbox in memory: a change and its events are written under one lock.
#[derive(Debug, Default)]
pub struct MemoryOrderStore {
    state: Mutex<State>,
}

impl MemoryOrderStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl OrderStore for MemoryOrderStore {
    async fn create(&self, order: Order, events: Vec<DomainEvent>) -> Result<Created, OrderError> {
        let mut state = lock(&self.state);
        let scoped = (order.customer, order.idempotency_key.clone());
        if let Some(id) = state.by_key.get(&scoped) {
            return Ok(Created::Existing(state.orders[id].clone()));
        }
        if state.orders.contains_key(&order.id) {
            return Err(OrderError::Duplicate(order.id));
        }
        state.by_key.insert(scoped, order.id);
        state
            .by_customer
            .entry(order.customer)
            .or_default()
            .insert(order.id);
        state.orders.insert(order.id, order.clone());
        state.append(events);
        Ok(Created::New(order))
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>, OrderError> {
        Ok(lock(&self.state).orders.get(&id).cloned())
    }

    async fn by_idempotency_key(
        &self,
        customer: CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, OrderError> {
        let state = lock(&self.state);
        let scoped = (customer, key.clone());
        Ok(state.by_key.get(&scoped).map(|id| state.orders[id].clone()))
    }

    async fn update(
        &self,
        id: OrderId,
        expected_version: u64,
        patch: OrderPatch,
        events: Vec<DomainEvent>,
    ) -> Result<Order, OrderError> {
        let mut state = lock(&self.state);
        let current = state.orders.get(&id).ok_or(OrderError::NotFound(id))?;
        let next = current.apply(expected_version, &patch, Utc::now())?;
        state.orders.insert(id, next.clone());
        state.append(events);
        Ok(next)
    }

    async fn history(
        &self,
        customer: CustomerId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Page<Order, HistoryCursor>, OrderError> {
        let limit = limit.clamp(1, MAX_HISTORY_PAGE);
        let state = lock(&self.state);
        let Some(ids) = state.by_customer.get(&customer) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let upper = match before {
            Some(id) => std::ops::Bound::Excluded(id),
            None => std::ops::Bound::Unbounded,
        };
        let items: Vec<Order> = ids
            .range((std::ops::Bound::Unbounded, upper))
            .rev()
            .take(limit + 1)
            .map(|id| state.orders[id].clone())
            .collect();
        Ok(Page::from_probe(items, limit, |o| o.id))
    }

    async fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Order>, OrderError> {
        let state = lock(&self.state);
        let mut pending: Vec<Order> = state
            .orders
            .values()
            .filter(|o| o.status == OrderStatus::Pending && o.created_at < cutoff)
            .cloned()
            .collect();
        pending.sort_by_key(|o| o.id);
        pending.truncate(limit);
        Ok(pending)
    }
}

#[async_trait]
impl Outbox for MemoryOrderStore {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        Ok(lock(&self.state)
            .outbox
            .iter()
            .take(limit)
            .map(|(seq, envelope)| OutboxRecord::new(*seq, envelope))
            .collect())
    }

    async fn acknowledge(&self, ids: &[EventId]) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        for id in ids {
            if let Some(seq) = state.outbox_seq.remove(id) {
                state.outbox.remove(&seq);
            }
        }
        Ok(())
    }
}

/// An [`EventSink`] that keeps what it receives (dropping repeated event ids), for tests and
/// demos. It can be told to refuse the next deliveries, to exercise redelivery.
#[derive(Debug, Default)]
pub struct RecordingSink {
    state: Mutex<(Vec<EventEnvelope>, HashSet<EventId>, usize)>,
}

impl RecordingSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` deliveries fail.
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).2 = n;
    }

    /// The distinct events received, in delivery order.
    pub fn events(&self) -> Vec<EventEnvelope> {
        lock(&self.state).0.clone()
    }
}

#[async_trait]
impl EventSink for RecordingSink {
    async fn deliver(&self, event: &EventEnvelope) -> Result<(), EventError> {
        let mut state = lock(&self.state);
        if state.2 > 0 {
            state.2 -= 1;
            return Err(EventError::Delivery {
                message: "sink told to fail".into(),
                source: None,
            });
        }
        if state.1.insert(event.id) {
            state.0.push(event.clone());
        }
        Ok(())
    }
}
