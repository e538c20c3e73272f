//! Address books: the postal addresses a customer saved, to pick one at checkout instead of
//! typing it again.
//!
//! A customer keeps at most [`MAX_SAVED_ADDRESSES`]. Saving an address equal to one already
//! saved returns that entry unchanged, so a save is safe to retry and a book never holds the
//! same address twice. A customer sees and removes their own addresses only.
//!
//! ```
//! use ecommerce_core::address::{Address, AddressInput};
//! use ecommerce_core::address_book::AddressBook;
//! use ecommerce_core::id::CustomerId;
//! use ecommerce_core::memory::MemoryAddressBook;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let book = MemoryAddressBook::new();
//! let ada = CustomerId::new();
//! let home = Address::new(AddressInput {
//!     name: "Ada Lovelace".into(),
//!     line1: "1 Infinite Loop".into(),
//!     city: "Cupertino".into(),
//!     region: Some("CA".into()),
//!     postal_code: "95014".into(),
//!     country: "US".into(),
//!     ..AddressInput::default()
//! })?;
//! let saved = book.save(ada, home.clone()).await?;
//! assert_eq!(book.save(ada, home).await?, saved, "the same address is saved once");
//! assert_eq!(book.list(ada).await?, vec![saved.clone()]);
//! assert!(!book.remove(CustomerId::new(), saved.id).await?, "not another customer's");
//! assert!(book.remove(ada, saved.id).await?);
//! # Ok(())
//! # }
//! ```

use std::fmt::Debug;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::error::{AddressBookError, StoreError};
use crate::id::{AddressId, CustomerId};

/// Most addresses one customer may save.
pub const MAX_SAVED_ADDRESSES: usize = 20;

/// An address in a customer's address book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedAddress {
    /// The entry's id (UUID v7: sorts by creation time).
    pub id: AddressId,
    /// The customer whose book it is in.
    pub customer: CustomerId,
    /// The address (validated again when read back).
    pub address: Address,
    /// When it was saved, to the millisecond (what every store keeps).
    pub created_at: DateTime<Utc>,
}

impl SavedAddress {
    /// A new entry for `customer`, saved now: a fresh id, the time truncated to the
    /// millisecond so it reads back the same from every store.
    pub fn new(customer: CustomerId, address: Address) -> SavedAddress {
        let now = Utc::now();
        let created_at = DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now);
        SavedAddress {
            id: AddressId::new(),
            customer,
            address,
            created_at,
        }
    }

    /// The order of [`AddressBook::list`]: newest first, then by id descending (ids sort by
    /// creation, so entries saved in the same millisecond are newest first too).
    pub fn newest_first(a: &SavedAddress, b: &SavedAddress) -> std::cmp::Ordering {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.id.cmp(&a.id))
    }
}

/// Where customers' saved addresses are kept.
///
/// Every implementation must guarantee:
/// - **One entry per address**: saving an address equal to one the customer already saved
///   returns that entry unchanged (same id, same time), however often and however
///   concurrently it is saved.
/// - **A bounded book**: a customer never holds more than [`MAX_SAVED_ADDRESSES`] entries,
///   even under concurrent saves; a save over the limit changes nothing.
/// - **Isolation**: a customer's entries are never listed or removed through another
///   customer.
/// - **Order**: [`AddressBook::list`] is newest first ([`SavedAddress::newest_first`]).
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait AddressBook: Debug + Send + Sync + 'static {
    /// Saves an address in the customer's book and returns its entry: the existing one,
    /// unchanged, when an equal address is already saved.
    ///
    /// # Errors
    /// [`AddressBookError::Full`] when the address is new and the customer already has
    /// [`MAX_SAVED_ADDRESSES`] (nothing was saved), [`AddressBookError::Store`].
    async fn save(
        &self,
        customer: CustomerId,
        address: Address,
    ) -> Result<SavedAddress, AddressBookError>;

    /// The customer's saved addresses, newest first (ties by id, descending).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn list(&self, customer: CustomerId) -> Result<Vec<SavedAddress>, StoreError>;

    /// Removes an entry from the customer's book. Returns whether it did: `false` when there
    /// is no such entry in this customer's book (another customer's is left alone).
    ///
    /// # Errors
    /// [`StoreError`].
    async fn remove(&self, customer: CustomerId, id: AddressId) -> Result<bool, StoreError>;
}
