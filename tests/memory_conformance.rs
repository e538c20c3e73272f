//! The whole conformance suite against the in-memory stores.

ecommerce::conformance_suite!(ecommerce::testkit::MemoryFactory);
