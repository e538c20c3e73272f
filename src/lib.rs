//! # ecommerce
//!
//! A storefront SDK for Rust: browse and search a catalog, keep carts, check out and pay
//! without ever overselling, and show order history and "customers also bought".
//!
//! The library owns the rules (pricing authority, the oversell-safe stock reservation, the
//! checkout saga, the order lifecycle, cart merge); storage is pluggable through small async
//! store traits, so each shop composes the stores it wants.
//!
//! | feature | what it adds |
//! | --- | --- |
//! | *(default)* | the core: domain types, store traits, the checkout saga, in-memory stores |
//! | `postgres`, `mysql`, `sqlite` | [`sql`]: the SQL stores (`ecommerce-sqlx`) for those databases |
//! | `redis` | [`redis_stores`]: carts, stock, recommendations and the catalog cache on Redis (`ecommerce-redis`) |
//! | `search` | [`search_engine`]: product search on tantivy (`ecommerce-search`) |
//! | `testkit` | [`testkit`]: the conformance suite a custom store runs against itself |
//!
//! ```
//! use std::sync::Arc;
//! use ecommerce::payment::TestGateway;
//! use ecommerce::Storefront;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ecommerce::Error> {
//! let shop = Storefront::in_memory(Arc::new(TestGateway::default()));
//! let cart = shop.create_guest_cart().await?;
//! assert!(cart.is_empty());
//! # Ok(())
//! # }
//! ```
//!
//! See `examples/quickstart.rs` for a whole browse, cart, checkout, history and also-bought
//! run.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[doc(inline)]
pub use ecommerce_core::*;

/// The SQL stores: PostgreSQL, MySQL/MariaDB and SQLite (features `postgres`, `mysql`,
/// `sqlite`).
#[cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "postgres", feature = "mysql", feature = "sqlite")))
)]
#[doc(inline)]
pub use ecommerce_sqlx as sql;

/// Product search on tantivy (feature `search`).
#[cfg(feature = "search")]
#[cfg_attr(docsrs, doc(cfg(feature = "search")))]
#[doc(inline)]
pub use ecommerce_search as search_engine;

/// Carts, stock, recommendations and the catalog cache on Redis and Redis Cluster (feature
/// `redis`).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
#[doc(inline)]
pub use ecommerce_redis as redis_stores;

/// Events out of the process (feature `events`): the outbox relayed to NATS JetStream,
/// durable consumers, the shipping consumer and the event history in Parquet.
#[cfg(feature = "events")]
#[cfg_attr(docsrs, doc(cfg(feature = "events")))]
#[doc(inline)]
pub use ecommerce_events as event_stream;
