//! The core of the ecommerce SDK: domain types, store traits, the checkout saga, in-memory
//! stores and the conformance testkit.
//!
//! Most applications use the facade crate `ecommerce`, which re-exports this crate and the
//! storage backends behind features.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`money`], [`id`] | amounts and currencies, typed ids |
//! | [`catalog`], [`cart`], [`inventory`], [`order`], [`payment`], [`recommend`], [`search`], [`events`] | each concept's types and its store trait |
//! | [`catalog_cache`], [`breaker`] | the caching catalog that stays visible when its store fails, and the circuit breaker that stops waiting on a dependency that is down |
//! | [`address`], [`shipping`], [`tax`], [`quote`] | where an order goes, what shipping and tax it costs, and the frozen price quote checkout charges |
//! | [`promotion`] | promotions and coupon codes, their stacking, and usage limits kept as exactly as stock |
//! | [`address_book`] | the addresses each customer saved, and their store trait |
//! | [`checkout`] | the checkout saga, payment callbacks, recovery, cancellation |
//! | [`storefront`] | [`Storefront`], the API applications call |
//! | [`mod@unit`] | the unit of work of orders and stock in one database (a checkout in two transactions) |
//! | [`demo`] | a deterministic demo catalog of any size |
//! | [`memory`] | an in-memory implementation of every store trait |
//! | `testkit` (feature `testkit`) | the conformance suite every store runs |
//! | [`error`] | one error enum per area, and [`Error`] |

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod address;
pub mod address_book;
pub mod breaker;
pub mod cart;
pub mod catalog;
pub mod catalog_cache;
pub mod checkout;
pub mod demo;
pub mod error;
pub mod events;
pub mod id;
pub mod inventory;
pub mod memory;
pub mod money;
pub mod order;
pub mod payment;
pub mod promotion;
pub mod quote;
pub mod recommend;
pub mod search;
pub mod shipping;
pub mod storefront;
pub mod tax;
#[cfg(feature = "testkit")]
#[cfg_attr(docsrs, doc(cfg(feature = "testkit")))]
pub mod testkit;
pub mod unit;

pub use checkout::{BuyNow, CheckoutEffects, CheckoutRequest, Placed, RecoveryReport};
pub use error::Error;
pub use money::{Currency, Money};
pub use storefront::{ImportItem, ImportReport, Storefront, StorefrontConfig};
