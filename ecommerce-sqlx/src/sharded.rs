//! Orders sharded by customer across several order stores.
//!
//! A customer's orders all live in one shard, picked by a stable hash of the customer id
//! (FNV-1a over its bytes, modulo the shard count), so a customer's history reads one shard.
//! Lookups by order id or idempotency key ask the shards in turn; the outbox drains every
//! shard. Changing the number of shards moves customers: reshard offline.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ecommerce_core::catalog::Page;
use ecommerce_core::error::{OrderError, StoreError};
use ecommerce_core::events::{DomainEvent, Outbox, OutboxRecord};
use ecommerce_core::id::{CustomerId, EventId, IdempotencyKey, OrderId};
use ecommerce_core::order::{Created, HistoryCursor, Order, OrderPatch, OrderStore};

use crate::SqlOrderStore;

/// Orders spread over several stores by customer.
#[derive(Debug, Clone)]
pub struct ShardedOrderStore {
    shards: Vec<Arc<SqlOrderStore>>,
}

impl ShardedOrderStore {
    /// Orders over these shards, in a fixed order (the order is part of the hash).
    ///
    /// # Panics
    /// With no shard.
    pub fn new(shards: Vec<Arc<SqlOrderStore>>) -> Self {
        assert!(!shards.is_empty(), "a sharded order store needs a shard");
        ShardedOrderStore { shards }
    }

    /// The index of the shard that holds a customer's orders.
    pub fn shard_of(&self, customer: CustomerId) -> usize {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in customer.as_uuid().as_bytes() {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        (hash % self.shards.len() as u64) as usize
    }

    fn shard(&self, customer: CustomerId) -> &SqlOrderStore {
        &self.shards[self.shard_of(customer)]
    }

    async fn find(&self, id: OrderId) -> Result<Option<(usize, Order)>, OrderError> {
        for (i, shard) in self.shards.iter().enumerate() {
            if let Some(order) = shard.get(id).await? {
                return Ok(Some((i, order)));
            }
        }
        Ok(None)
    }
}

#[async_trait]
impl OrderStore for ShardedOrderStore {
    async fn create(&self, order: Order, events: Vec<DomainEvent>) -> Result<Created, OrderError> {
        self.shard(order.customer).create(order, events).await
    }

    async fn get(&self, id: OrderId) -> Result<Option<Order>, OrderError> {
        Ok(self.find(id).await?.map(|(_, o)| o))
    }

    async fn by_idempotency_key(
        &self,
        customer: CustomerId,
        key: &IdempotencyKey,
    ) -> Result<Option<Order>, OrderError> {
        self.shard(customer).by_idempotency_key(customer, key).await
    }

    async fn update(
        &self,
        id: OrderId,
        expected_version: u64,
        patch: OrderPatch,
        events: Vec<DomainEvent>,
    ) -> Result<Order, OrderError> {
        let (i, _) = self.find(id).await?.ok_or(OrderError::NotFound(id))?;
        self.shards[i]
            .update(id, expected_version, patch, events)
            .await
    }

    async fn history(
        &self,
        customer: CustomerId,
        before: Option<HistoryCursor>,
        limit: usize,
    ) -> Result<Page<Order, HistoryCursor>, OrderError> {
        self.shard(customer).history(customer, before, limit).await
    }

    async fn pending_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Order>, OrderError> {
        let mut all = Vec::new();
        for shard in &self.shards {
            all.extend(shard.pending_before(cutoff, limit).await?);
        }
        all.sort_by_key(|o| o.id);
        all.truncate(limit);
        Ok(all)
    }
}

#[async_trait]
impl Outbox for ShardedOrderStore {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxRecord>, StoreError> {
        let mut all = Vec::new();
        for shard in &self.shards {
            if all.len() >= limit {
                break;
            }
            all.extend(shard.pending(limit - all.len()).await?);
        }
        Ok(all)
    }

    async fn acknowledge(&self, ids: &[EventId]) -> Result<(), StoreError> {
        for shard in &self.shards {
            shard.acknowledge(ids).await?;
        }
        Ok(())
    }
}
