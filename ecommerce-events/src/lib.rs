//! The ecommerce SDK's events out of the process.
//!
//! Order stores write their events to an outbox in the same transaction as the change
//! ([`ecommerce_core::events`]); this crate takes them further:
//!
//! - `nats` (feature `nats`): an [`EventPublisher`](ecommerce_core::events::EventPublisher)
//!   on NATS JetStream for the outbox relay, durable consumers that act on each event once, and
//!   replay from any stream sequence;
//! - `analytics` (feature `parquet`): the event history in date-partitioned Parquet files,
//!   each event exported exactly once across restarts, and queries over them (daily revenue,
//!   top SKUs).
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "parquet")]
#[cfg_attr(docsrs, doc(cfg(feature = "parquet")))]
pub mod analytics;

pub mod fulfilment;

#[cfg(feature = "nats")]
#[cfg_attr(docsrs, doc(cfg(feature = "nats")))]
pub mod nats;
