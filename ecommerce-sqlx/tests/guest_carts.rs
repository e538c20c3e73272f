//! Guest carts expire on SQL: one unchanged for longer than the guest time to live reads as
//! absent and its row goes away (on read, or by the sweeper); customers' carts never expire.
//! Run on SQLite, and on PostgreSQL and MySQL/MariaDB when their URLs are set.

mod common;

use std::time::Duration;

use common::{Server, fresh_db};
use ecommerce_core::cart::{Cart, CartStore};
use ecommerce_core::id::CustomerId;
use ecommerce_sqlx::SqlCartStore;

async fn check(server: Server) {
    let Some((db, _cleanup)) = fresh_db(server, 4).await else {
        return;
    };
    let carts = SqlCartStore::new(db).with_guest_ttl(Duration::from_millis(200));
    let read_later = carts.save(&Cart::new_guest()).await.expect("guest cart");
    let swept = carts.save(&Cart::new_guest()).await.expect("guest cart");
    let customer = carts
        .save(&Cart::new_for_customer(CustomerId::new()))
        .await
        .expect("customer cart");
    assert!(carts.load(read_later.id).await.expect("load").is_some());

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        carts.load(read_later.id).await.expect("load"),
        None,
        "an expired guest cart reads as absent"
    );
    assert_eq!(
        carts.purge_expired_guest_carts(100).await.expect("purge"),
        1,
        "the sweeper deletes the one nobody read; the one read was deleted then"
    );
    assert_eq!(carts.load(swept.id).await.expect("load"), None);
    assert_eq!(
        carts.load(customer.id).await.expect("load"),
        Some(customer),
        "customer carts never expire"
    );
    // The token can start a new cart.
    let mut again = Cart::new_guest();
    again.id = read_later.id;
    carts
        .save(&again)
        .await
        .expect("a fresh cart under the old token");
}

#[tokio::test]
async fn sqlite() {
    check(Server::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    check(Server::Postgres).await;
}

#[tokio::test]
async fn mysql() {
    check(Server::MySql).await;
}
