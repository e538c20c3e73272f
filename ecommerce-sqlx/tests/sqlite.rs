//! The whole conformance suite on sqlite.

mod common;

ecommerce_core::conformance_suite!(common::Factory::sqlite());
