//! The whole conformance suite on SQLite with every SKU spread over four buckets (the hot-SKU
//! strategy): the same guarantees hold, the bucketed reservation storm included.

mod common;

ecommerce_core::conformance_suite!(common::Factory::sqlite().bucketed());
