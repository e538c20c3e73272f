//! The whole conformance suite on postgres.

mod common;

ecommerce_core::conformance_suite!(common::Factory::postgres());
