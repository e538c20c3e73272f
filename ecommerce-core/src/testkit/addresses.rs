//! Address book checks: one entry per address, newest first, each customer's book apart from
//! every other, and never more than [`MAX_SAVED_ADDRESSES`] entries, even under concurrent
//! saves.

use std::collections::HashSet;

use super::Backend;
use crate::address::{Address, AddressInput};
use crate::address_book::{MAX_SAVED_ADDRESSES, SavedAddress};
use crate::error::AddressBookError;
use crate::id::{AddressId, CustomerId};

/// A valid address, a different one for each `n`.
fn address(n: usize) -> Address {
    Address::new(AddressInput {
        name: "Ada Lovelace".into(),
        line1: format!("{n} Example Street"),
        city: "Berlin".into(),
        postal_code: "10115".into(),
        country: "DE".into(),
        ..AddressInput::default()
    })
    .expect("valid test address")
}

fn ids(list: &[SavedAddress]) -> Vec<AddressId> {
    list.iter().map(|s| s.id).collect()
}

/// Saving is idempotent per address, listing is newest first, customers never see or remove
/// each other's entries, and a book never holds more than [`MAX_SAVED_ADDRESSES`], even under
/// concurrent saves.
pub async fn address_book_keeps_each_customers_addresses(backend: Backend) {
    let book = backend.address_book.clone();
    let ada = CustomerId::new();
    let bob = CustomerId::new();
    assert!(
        book.list(ada).await.expect("list").is_empty(),
        "a new customer's book is empty"
    );

    // One entry per address.
    let first = book.save(ada, address(1)).await.expect("save");
    assert_eq!(first.customer, ada);
    assert_eq!(first.address, address(1));
    assert_eq!(
        book.save(ada, address(1)).await.expect("save again"),
        first,
        "saving an equal address returns the existing entry unchanged"
    );
    assert_eq!(book.list(ada).await.expect("list"), vec![first.clone()]);

    // Newest first.
    let second = book.save(ada, address(2)).await.expect("save");
    let third = book.save(ada, address(3)).await.expect("save");
    let listed = book.list(ada).await.expect("list");
    assert_eq!(
        listed,
        vec![third.clone(), second.clone(), first.clone()],
        "the book lists newest first, each entry as save returned it"
    );
    assert!(listed.is_sorted_by(|a, b| SavedAddress::newest_first(a, b).is_le()));

    // Isolation between customers.
    assert!(book.list(bob).await.expect("list").is_empty());
    let bobs = book.save(bob, address(1)).await.expect("save");
    assert_ne!(
        bobs.id, first.id,
        "an address saved by two customers is two entries"
    );
    assert_eq!(book.list(bob).await.expect("list"), vec![bobs.clone()]);
    assert!(
        !book.remove(bob, first.id).await.expect("remove"),
        "a customer cannot remove another customer's entry"
    );
    assert!(!book.remove(ada, bobs.id).await.expect("remove"));
    assert_eq!(book.list(ada).await.expect("list").len(), 3);
    assert_eq!(book.list(bob).await.expect("list"), vec![bobs.clone()]);

    // Remove.
    assert!(book.remove(ada, second.id).await.expect("remove"));
    assert!(
        !book.remove(ada, second.id).await.expect("remove again"),
        "a removed entry is gone"
    );
    assert!(!book.remove(ada, AddressId::new()).await.expect("remove"));
    assert_eq!(
        ids(&book.list(ada).await.expect("list")),
        vec![third.id, first.id]
    );
    let again = book.save(ada, address(2)).await.expect("save again");
    assert_ne!(again.id, second.id, "a removed address saved again is new");

    // Full at the limit, and nothing changes.
    for n in 4..=MAX_SAVED_ADDRESSES {
        book.save(ada, address(n))
            .await
            .expect("save below the limit");
    }
    let full = book.list(ada).await.expect("list");
    assert_eq!(full.len(), MAX_SAVED_ADDRESSES);
    match book.save(ada, address(1_000)).await {
        Err(AddressBookError::Full { max }) => assert_eq!(max, MAX_SAVED_ADDRESSES),
        other => panic!("a new address in a full book is Full, got {other:?}"),
    }
    assert_eq!(
        book.list(ada).await.expect("list"),
        full,
        "a refused save changes nothing"
    );
    assert_eq!(
        book.save(ada, address(1))
            .await
            .expect("save a saved address"),
        first,
        "an address already saved is returned even when the book is full"
    );
    assert_eq!(book.list(bob).await.expect("list"), vec![bobs.clone()]);
    assert!(book.remove(ada, third.id).await.expect("remove"));
    book.save(ada, address(1_000))
        .await
        .expect("a removal makes room");

    // Concurrent saves never exceed the limit.
    let cid = CustomerId::new();
    let already = MAX_SAVED_ADDRESSES - 5;
    for n in 0..already {
        book.save(cid, address(n)).await.expect("save");
    }
    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let book = book.clone();
            tokio::spawn(async move { book.save(cid, address(100 + i)).await })
        })
        .collect();
    let (mut saved, mut refused) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => saved += 1,
            Err(AddressBookError::Full { .. }) => refused += 1,
            Err(e) => panic!("concurrent save failed: {e}"),
        }
    }
    assert_eq!(
        (saved, refused),
        (
            MAX_SAVED_ADDRESSES - already,
            12 - (MAX_SAVED_ADDRESSES - already)
        ),
        "exactly the room left is saved"
    );
    let listed = book.list(cid).await.expect("list");
    assert_eq!(
        listed.len(),
        MAX_SAVED_ADDRESSES,
        "never more than the limit"
    );
    let distinct: HashSet<_> = listed.iter().map(|s| s.address.clone()).collect();
    assert_eq!(distinct.len(), listed.len(), "no address is saved twice");

    // Concurrent saves of one address make one entry.
    let cid = CustomerId::new();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let book = book.clone();
            tokio::spawn(async move { book.save(cid, address(7)).await })
        })
        .collect();
    let mut entries = HashSet::new();
    for t in tasks {
        entries.insert(t.await.expect("task").expect("save").id);
    }
    assert_eq!(entries.len(), 1, "one address, one entry");
    assert_eq!(
        ids(&book.list(cid).await.expect("list")),
        Vec::from_iter(entries)
    );
}
