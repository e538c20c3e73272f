//! `reserve` is idempotent per order: a retry of an order that already has its reservation
//! gets that reservation back without taking stock again, even when fewer units are on hand
//! than the order's own quantity. Run on SQLite, and on PostgreSQL and MySQL/MariaDB when
//! their URLs are set; single-row and bucketed stock; the memory store states the expectation.
//! A SKU spread over buckets by another process is taken where its units are.

mod common;

use std::sync::Arc;

use common::{Cleanup, Server, TTL, fresh_db, level, lines};
use ecommerce_core::error::InventoryError;
use ecommerce_core::id::{OrderId, Sku};
use ecommerce_core::inventory::{InventoryStore, ReservationState};
use ecommerce_core::memory::MemoryInventory;
use ecommerce_sqlx::SqlInventory;

/// Held, then committed: every retry returns the order's reservation and moves nothing, with
/// fewer units on hand than the order holds. A released reservation takes its stock again,
/// or is out of stock like any new one.
async fn retries_return_the_existing_reservation(inventory: &dyn InventoryStore) {
    let sku = Sku::new("RETRY-1").expect("sku");
    inventory.receive(&sku, 3).await.expect("receive");
    let a = OrderId::new();
    let held = inventory
        .reserve(a, &lines(&sku, 2), TTL)
        .await
        .expect("first reserve of A");
    assert_eq!(held.state, ReservationState::Held);
    // Another buyer takes the last unit: nothing is on hand, A holds 2.
    let b = OrderId::new();
    inventory
        .reserve(b, &lines(&sku, 1), TTL)
        .await
        .expect("reserve of B");
    assert_eq!(inventory.level(&sku).await.expect("level"), level(0, 3, 0));

    let retry = inventory.reserve(a, &lines(&sku, 2), TTL).await;
    assert_eq!(
        retry.as_ref().ok(),
        Some(&held),
        "a retry of a held order returns its reservation: {retry:?}"
    );
    assert_eq!(
        inventory.level(&sku).await.expect("level"),
        level(0, 3, 0),
        "a retry takes nothing"
    );

    // B lets its unit go: one unit on hand, fewer than A's 2.
    inventory.release(b).await.expect("release B");
    assert_eq!(inventory.level(&sku).await.expect("level"), level(1, 2, 0));
    let retry = inventory.reserve(a, &lines(&sku, 2), TTL).await;
    assert_eq!(retry.as_ref().ok(), Some(&held), "{retry:?}");
    assert_eq!(inventory.level(&sku).await.expect("level"), level(1, 2, 0));

    // Committed: the retry returns the committed reservation, still taking nothing.
    let committed = inventory.commit(a).await.expect("commit A");
    let retry = inventory.reserve(a, &lines(&sku, 2), TTL).await;
    assert_eq!(retry.as_ref().ok(), Some(&committed), "{retry:?}");
    assert_eq!(inventory.level(&sku).await.expect("level"), level(1, 0, 2));

    // Released: B takes its stock again (one unit is there), keeping its reservation id.
    let again = inventory
        .reserve(b, &lines(&sku, 1), TTL)
        .await
        .expect("a released reservation takes its stock again");
    assert_eq!(again.state, ReservationState::Held);
    assert_eq!(inventory.level(&sku).await.expect("level"), level(0, 1, 2));
    // ... and a released one that cannot get its stock back is out of stock.
    inventory.release(b).await.expect("release B");
    let c = OrderId::new();
    inventory
        .reserve(c, &lines(&sku, 1), TTL)
        .await
        .expect("reserve of C");
    let refused = inventory.reserve(b, &lines(&sku, 1), TTL).await;
    assert!(
        matches!(refused, Err(InventoryError::OutOfStock { .. })),
        "{refused:?}"
    );
    assert_eq!(inventory.level(&sku).await.expect("level"), level(0, 1, 2));
}

/// Two concurrent first reserves of one order, with stock for it once: both get the one
/// reservation, neither is out of stock, and the stock is taken once.
async fn concurrent_first_reserves_share_one_reservation(inventory: Arc<dyn InventoryStore>) {
    let mut tasks = Vec::new();
    let mut skus = Vec::new();
    for i in 0..16 {
        let sku = Sku::new(format!("RACE-{i}")).expect("sku");
        inventory.receive(&sku, 2).await.expect("receive");
        skus.push(sku.clone());
        let order = OrderId::new();
        for _ in 0..2 {
            let (inventory, sku) = (inventory.clone(), sku.clone());
            tasks.push(tokio::spawn(async move {
                inventory.reserve(order, &lines(&sku, 2), TTL).await
            }));
        }
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("task"));
    }
    for (pair, sku) in results.chunks(2).zip(&skus) {
        match pair {
            [Ok(first), Ok(second)] => assert_eq!(first.id, second.id, "one reservation"),
            other => panic!("both reserves of one order succeed: {other:?}"),
        }
        assert_eq!(inventory.level(sku).await.expect("level"), level(0, 2, 0));
    }
}

/// A SKU another process spread over buckets, reserved by an inventory that still takes it
/// for a one-bucket SKU: the units come from the buckets that have them, the reservation
/// records those, and a release and a commit move them back and on in the right rows.
async fn a_sku_spread_elsewhere_is_taken_where_its_units_are(server: Server) {
    let Some((db, _guard)) = fresh_db(server, 8).await else {
        return;
    };
    let spreader = SqlInventory::new(db.clone());
    let sku = Sku::new("SPREAD-1").expect("sku");
    spreader.receive(&sku, 4).await.expect("receive");
    // One unit in each of 4 buckets.
    spreader.set_buckets(&sku, 4).await.expect("spread");
    let unaware = SqlInventory::new(db);
    let (first, second) = (OrderId::new(), OrderId::new());
    for order in [first, second] {
        let held = unaware
            .reserve(order, &lines(&sku, 2), TTL)
            .await
            .expect("two of the four units");
        assert_eq!(held.state, ReservationState::Held);
    }
    assert_eq!(unaware.level(&sku).await.expect("level"), level(0, 4, 0));
    unaware.release(first).await.expect("release");
    assert_eq!(unaware.level(&sku).await.expect("level"), level(2, 2, 0));
    unaware.commit(second).await.expect("commit");
    assert_eq!(unaware.level(&sku).await.expect("level"), level(2, 0, 2));
    let ledger = unaware.ledger(&sku).await.expect("ledger");
    assert!(level(2, 0, 2).conserved(&ledger));
    // Each bucket still counts what it holds: the released units can be taken again.
    unaware
        .reserve(OrderId::new(), &lines(&sku, 2), TTL)
        .await
        .expect("the released units");
}

/// A fresh SQL inventory, with the guard that removes its database.
async fn sql(server: Server, buckets: u32) -> Option<(Arc<dyn InventoryStore>, Arc<Cleanup>)> {
    let (db, cleanup) = fresh_db(server, 8).await?;
    let inventory = SqlInventory::new(db).with_default_buckets(buckets);
    Some((Arc::new(inventory), cleanup))
}

async fn check(server: Server, buckets: u32) {
    let Some((inventory, _guard)) = sql(server, buckets).await else {
        return;
    };
    retries_return_the_existing_reservation(inventory.as_ref()).await;
    let Some((inventory, _guard)) = sql(server, buckets).await else {
        return;
    };
    concurrent_first_reserves_share_one_reservation(inventory).await;
}

#[tokio::test]
async fn a_sku_spread_elsewhere_is_taken_where_its_units_are_on_sqlite() {
    a_sku_spread_elsewhere_is_taken_where_its_units_are(Server::Sqlite).await;
}

#[tokio::test]
async fn a_sku_spread_elsewhere_is_taken_where_its_units_are_on_postgres() {
    a_sku_spread_elsewhere_is_taken_where_its_units_are(Server::Postgres).await;
}

#[tokio::test]
async fn a_sku_spread_elsewhere_is_taken_where_its_units_are_on_mysql() {
    a_sku_spread_elsewhere_is_taken_where_its_units_are(Server::MySql).await;
}

#[tokio::test]
async fn memory_states_the_expectation() {
    retries_return_the_existing_reservation(&MemoryInventory::new()).await;
    concurrent_first_reserves_share_one_reservation(Arc::new(MemoryInventory::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite() {
    check(Server::Sqlite, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_bucketed() {
    check(Server::Sqlite, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres() {
    check(Server::Postgres, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_bucketed() {
    check(Server::Postgres, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql() {
    check(Server::MySql, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mysql_bucketed() {
    check(Server::MySql, 4).await;
}
