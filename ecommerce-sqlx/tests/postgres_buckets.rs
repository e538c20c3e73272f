//! The whole conformance suite on postgres with every SKU spread over four buckets (the hot-SKU
//! strategy): the same guarantees hold.

mod common;

ecommerce_core::conformance_suite!(common::Factory::postgres().bucketed());
