//! The whole conformance suite with carts, stock, recommendations and the catalog cache on a
//! single Redis.

mod common;

ecommerce_core::conformance_suite!(common::Single);
