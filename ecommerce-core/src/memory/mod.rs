//! In-memory stores: one for every store trait, concurrent and correct.
//!
//! They pass the whole conformance suite ([`crate::testkit`]) and are the embedded default for
//! tests, demos and single-process shops. Each store keeps its state behind one mutex that is
//! never held across an `.await`, so every operation is atomic. Nothing survives a restart.

mod address_book;
mod cart;
mod catalog;
mod inventory;
mod order;
mod promotion;
mod recommend;
mod search;

use std::sync::{Mutex, MutexGuard};

pub use address_book::MemoryAddressBook;
pub use cart::MemoryCartStore;
pub use catalog::MemoryCatalog;
pub use inventory::MemoryInventory;
pub use order::{MemoryOrderStore, RecordingSink};
pub use promotion::MemoryPromotions;
pub use recommend::MemoryRecommendations;
pub use search::MemorySearch;

/// Locks a mutex, recovering the data if a panicking thread poisoned it: every mutation of
/// these stores is completed before anything that can panic, so the data stays consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
