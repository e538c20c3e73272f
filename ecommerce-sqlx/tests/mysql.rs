//! The whole conformance suite on mysql.

mod common;

ecommerce_core::conformance_suite!(common::Factory::mysql());
