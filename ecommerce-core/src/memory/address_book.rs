use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::address::Address;
use crate::address_book::{AddressBook, MAX_SAVED_ADDRESSES, SavedAddress};
use crate::error::{AddressBookError, StoreError};
use crate::id::{AddressId, CustomerId};

/// Address books in memory: each customer's entries under one lock, so the limit and the
/// one-entry-per-address rule hold under concurrent saves.
#[derive(Debug, Default)]
pub struct MemoryAddressBook {
    books: Mutex<HashMap<CustomerId, Vec<SavedAddress>>>,
}

impl MemoryAddressBook {
    /// No addresses yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AddressBook for MemoryAddressBook {
    async fn save(
        &self,
        customer: CustomerId,
        address: Address,
    ) -> Result<SavedAddress, AddressBookError> {
        let mut books = lock(&self.books);
        let book = books.entry(customer).or_default();
        if let Some(existing) = book.iter().find(|s| s.address == address) {
            return Ok(existing.clone());
        }
        if book.len() >= MAX_SAVED_ADDRESSES {
            return Err(AddressBookError::Full {
                max: MAX_SAVED_ADDRESSES,
            });
        }
        let saved = SavedAddress::new(customer, address);
        book.push(saved.clone());
        Ok(saved)
    }

    async fn list(&self, customer: CustomerId) -> Result<Vec<SavedAddress>, StoreError> {
        let mut list = lock(&self.books)
            .get(&customer)
            .cloned()
            .unwrap_or_default();
        list.sort_by(SavedAddress::newest_first);
        Ok(list)
    }

    async fn remove(&self, customer: CustomerId, id: AddressId) -> Result<bool, StoreError> {
        let mut books = lock(&self.books);
        let Some(book) = books.get_mut(&customer) else {
            return Ok(false);
        };
        let before = book.len();
        book.retain(|s| s.id != id);
        let removed = book.len() < before;
        if book.is_empty() {
            books.remove(&customer);
        }
        Ok(removed)
    }
}
