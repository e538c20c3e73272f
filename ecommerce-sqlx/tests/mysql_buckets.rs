//! The whole conformance suite on mysql with every SKU spread over four buckets (the hot-SKU
//! strategy): the same guarantees hold.

mod common;

ecommerce_core::conformance_suite!(common::Factory::mysql().bucketed());
