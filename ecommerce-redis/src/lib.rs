//! Hot, ephemeral state on Redis for the ecommerce SDK: active carts, stock, co-purchase
//! counts and the shared catalog cache, on a single Redis or a Redis Cluster.
//!
//! | store | what it keeps | key layout |
//! | --- | --- | --- |
//! | [`RedisCartStore`] | carts, one hash per cart, expiring | `{prefix:cart:ID}` |
//! | [`RedisInventory`] | stock levels, reservations, the ledger | `{prefix:inv}:...` |
//! | [`RedisRecommendations`] | co-purchase counts, sorted sets | `{prefix:rec}:...` |
//! | [`RedisCatalogCache`] | the catalog's last good answers | `{prefix:cat}:...` |
//! | [`GatedInventory`] | flash-sale counters in front of the SQL inventory | `{prefix:gate}:...` |
//!
//! Every multi-key operation is one Lua script (the `.lua` files of this crate), so it is
//! atomic. The part of a key in braces is its hash tag: on a cluster, the keys one script
//! touches share a slot. One cart's keys share a slot; the whole inventory shares one slot, so
//! a multi-SKU reservation stays one atomic script (its throughput is that of one shard).
//!
//! # Durability
//!
//! Redis acknowledges before it writes to disk (and some deployments never do): a crash or a
//! failover can lose the last writes. Carts lost that way are an inconvenience; stock is not.
//! Use [`RedisInventory`] for stock only where that is acceptable (with `appendfsync always`,
//! or for a flash sale's counters rebuilt from SQL), and keep SQL as the source of truth for
//! orders.

mod cart;
mod catalog_cache;
mod gate;
mod inventory;
mod recommend;

use std::sync::Arc;

use ecommerce_core::error::StoreError;
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

pub use cart::RedisCartStore;
pub use catalog_cache::RedisCatalogCache;
pub use gate::GatedInventory;
pub use inventory::RedisInventory;
pub use recommend::RedisRecommendations;

/// A connection to a single Redis (reconnecting by itself) or to a Redis Cluster.
#[derive(Clone)]
pub enum RedisConnection {
    /// A single server.
    Single(ConnectionManager),
    /// A cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RedisConnection::Single(_) => "RedisConnection::Single",
            RedisConnection::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConnection::Single(c) => c.req_packed_command(cmd),
            RedisConnection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConnection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConnection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConnection::Single(c) => c.get_db(),
            RedisConnection::Cluster(c) => c.get_db(),
        }
    }
}

/// A Redis (single or cluster) and the key prefix of one shop. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    connection: RedisConnection,
    prefix: Arc<str>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("connection", &self.connection)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Why connecting failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// The URL does not parse, or the prefix has a brace.
    #[error("invalid redis configuration: {0}")]
    Invalid(String),
    /// The server cannot be reached.
    #[error("redis unreachable: {0}")]
    Unreachable(#[source] RedisError),
}

impl Redis {
    /// Connects to a single Redis (`redis://host:6379`); every key starts with `prefix`.
    ///
    /// # Errors
    /// [`RedisSetupError`].
    pub async fn connect(url: &str, prefix: &str) -> Result<Redis, RedisSetupError> {
        check_prefix(prefix)?;
        let client =
            redis::Client::open(url).map_err(|e| RedisSetupError::Invalid(e.to_string()))?;
        let manager = client
            .get_connection_manager()
            .await
            .map_err(RedisSetupError::Unreachable)?;
        Ok(Redis {
            connection: RedisConnection::Single(manager),
            prefix: prefix.into(),
        })
    }

    /// Connects to a Redis Cluster through some of its nodes.
    ///
    /// # Errors
    /// [`RedisSetupError`].
    pub async fn connect_cluster(nodes: &[String], prefix: &str) -> Result<Redis, RedisSetupError> {
        check_prefix(prefix)?;
        let client = redis::cluster::ClusterClient::new(nodes.to_vec())
            .map_err(|e| RedisSetupError::Invalid(e.to_string()))?;
        let connection = client
            .get_async_connection()
            .await
            .map_err(RedisSetupError::Unreachable)?;
        Ok(Redis {
            connection: RedisConnection::Cluster(connection),
            prefix: prefix.into(),
        })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// A connection handle (clones share the underlying connection).
    pub fn connection(&self) -> RedisConnection {
        self.connection.clone()
    }
}

fn check_prefix(prefix: &str) -> Result<(), RedisSetupError> {
    if prefix.is_empty() || prefix.contains(['{', '}']) || prefix.len() > 64 {
        return Err(RedisSetupError::Invalid(
            "the key prefix must be 1 to 64 characters without braces".into(),
        ));
    }
    Ok(())
}

/// Maps a Redis error to the store error callers branch on.
pub(crate) fn store_error(what: &str, e: RedisError) -> StoreError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
        return StoreError::unavailable(what.to_owned(), e);
    }
    if e.kind() == redis::ErrorKind::UnexpectedReturnType || e.to_string().contains("WRONGTYPE") {
        return StoreError::Corrupt {
            message: format!("{what}: {e}"),
        };
    }
    StoreError::backend(what.to_owned(), e)
}

/// Decodes a JSON value read from Redis.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        message: format!("{what}: {e}"),
    })
}
