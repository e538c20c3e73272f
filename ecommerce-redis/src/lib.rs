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
//! # When Redis fails
//!
//! Every call is bounded ([`RedisOptions`]: a 500 ms reply timeout, 500 ms per connection
//! attempt, one retry): a Redis that is down, unreachable or stuck costs a call at most
//! [`RedisOptions::call_bound`] (1.7 s by default) and a
//! [`StoreError::Unavailable`](ecommerce_core::error::StoreError), which `is_transient()`. The
//! connection reopens by itself when Redis is back. `tests/outage.rs` checks this through a
//! TCP proxy (`ecommerce_core::testkit::proxy`) that is cut and restored.
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
use std::time::Duration;

use ecommerce_core::error::StoreError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
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

/// Timeouts and reconnection of a Redis connection.
///
/// Every wait is bounded: a call to a Redis that is down, unreachable or stuck fails with
/// [`StoreError::Unavailable`] (transient) after at most about
/// `connection_timeout * (connection_retries + 1)` plus a short backoff plus
/// `response_timeout` ([`RedisOptions::call_bound`]: 1.7 s with the defaults; far less when
/// the server refuses connections). The connection is reopened by itself when Redis is back: the first call after
/// a lost connection may fail, the next ones use the new connection.
///
/// ```
/// use std::time::Duration;
/// use ecommerce_redis::RedisOptions;
///
/// let options = RedisOptions {
///     response_timeout: Duration::from_millis(250),
///     ..RedisOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RedisOptions {
    /// How long a command (or a pipeline, or a script) waits for its reply once sent.
    /// Default 500 ms.
    pub response_timeout: Duration,
    /// How long one attempt to open a connection (TCP and the handshake) may take.
    /// Default 500 ms.
    pub connection_timeout: Duration,
    /// How many more attempts, after a short backoff (100 ms, doubling, at most 1 s, plus up to
    /// as much again of jitter), reopen a lost connection before the calls waiting on it fail;
    /// the next call starts over.
    /// Default 1.
    pub connection_retries: u32,
}

impl Default for RedisOptions {
    fn default() -> Self {
        RedisOptions {
            response_timeout: Duration::from_millis(500),
            connection_timeout: Duration::from_millis(500),
            connection_retries: 1,
        }
    }
}

impl RedisOptions {
    /// The longest a call can wait: every connection attempt, the backoffs between them, and
    /// the reply. Also the bound on a whole cluster request (redirections and retries
    /// included).
    pub fn call_bound(&self) -> Duration {
        let attempts = self.connection_retries.saturating_add(1);
        // Each delay doubles, is capped, and gets up to as much again of jitter.
        let backoff: Duration = (0..self.connection_retries.min(32))
            .map(|n| {
                RECONNECT_MIN_DELAY
                    .saturating_mul(2u32.saturating_pow(n))
                    .min(RECONNECT_MAX_DELAY)
                    .saturating_mul(2)
            })
            .sum();
        self.connection_timeout.saturating_mul(attempts) + backoff + self.response_timeout
    }
}

/// The first delay before reopening a lost connection.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between attempts to reopen a lost connection.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

impl Redis {
    /// Connects to a single Redis (`redis://host:6379`) with the default
    /// [`RedisOptions`]; every key starts with `prefix`.
    ///
    /// # Errors
    /// [`RedisSetupError`].
    pub async fn connect(url: &str, prefix: &str) -> Result<Redis, RedisSetupError> {
        Redis::connect_with(url, prefix, RedisOptions::default()).await
    }

    /// Connects to a single Redis (`redis://host:6379`) with these timeouts; every key starts
    /// with `prefix`. The connection reopens by itself after an outage.
    ///
    /// # Errors
    /// [`RedisSetupError`]: a bad URL or prefix, or no connection within
    /// [`RedisOptions::call_bound`].
    pub async fn connect_with(
        url: &str,
        prefix: &str,
        options: RedisOptions,
    ) -> Result<Redis, RedisSetupError> {
        check_prefix(prefix)?;
        let client =
            redis::Client::open(url).map_err(|e| RedisSetupError::Invalid(e.to_string()))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.connection_timeout))
            .set_number_of_retries(options.connection_retries as usize)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let manager = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(RedisSetupError::Unreachable)?;
        Ok(Redis {
            connection: RedisConnection::Single(manager),
            prefix: prefix.into(),
        })
    }

    /// Connects to a Redis Cluster through some of its nodes, with the default
    /// [`RedisOptions`].
    ///
    /// # Errors
    /// [`RedisSetupError`].
    pub async fn connect_cluster(nodes: &[String], prefix: &str) -> Result<Redis, RedisSetupError> {
        Redis::connect_cluster_with(nodes, prefix, RedisOptions::default()).await
    }

    /// Connects to a Redis Cluster through some of its nodes, with these timeouts. A whole
    /// request, with its redirections and retries, is bounded by
    /// [`RedisOptions::call_bound`].
    ///
    /// # Errors
    /// [`RedisSetupError`].
    pub async fn connect_cluster_with(
        nodes: &[String],
        prefix: &str,
        options: RedisOptions,
    ) -> Result<Redis, RedisSetupError> {
        check_prefix(prefix)?;
        let client = ClusterClient::builder(nodes.to_vec())
            .connection_timeout(options.connection_timeout)
            .response_timeout(options.response_timeout)
            .overall_response_timeout(Some(options.call_bound()))
            .min_retry_wait(20)
            .max_retry_wait(250)
            .build()
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
    let server_down = matches!(
        e.kind(),
        redis::ErrorKind::ClusterConnectionNotFound
            | redis::ErrorKind::Server(
                redis::ServerErrorKind::BusyLoading
                    | redis::ServerErrorKind::TryAgain
                    | redis::ServerErrorKind::ClusterDown
                    | redis::ServerErrorKind::MasterDown
            )
    );
    if e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || server_down
    {
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
