//! A sale does not lock its SKU's stock row, the row a hot SKU's buyers queue on for their
//! takes: the units sold are added to the bucket's `stock_sold` row. While another
//! transaction holds the stock row (as a buyer's take does until its commit), a sale goes
//! through and a release, which gives units back to the row, waits for it until the
//! statement timeout. PostgreSQL and MySQL/MariaDB; SQLite has a single writer and no row
//! locks.

mod common;

use common::{Server, TTL, fresh_db, level, lines};
use ecommerce_core::id::{OrderId, Sku};
use ecommerce_core::inventory::{InventoryStore, ReservationState};
use ecommerce_sqlx::SqlInventory;

async fn a_sale_does_not_wait_for_the_stock_row(server: Server, lock: &'static str) {
    let Some((db, _cleanup)) = fresh_db(server, 4).await else {
        return;
    };
    let inventory = SqlInventory::new(db.clone());
    let sku = Sku::new("HOT-ROW").expect("sku");
    inventory.receive(&sku, 5).await.expect("receive");
    let (sold, released) = (OrderId::new(), OrderId::new());
    inventory
        .reserve(sold, &lines(&sku, 2), TTL)
        .await
        .expect("reserve");
    inventory
        .reserve(released, &lines(&sku, 1), TTL)
        .await
        .expect("reserve");

    // Another transaction holds the stock row, as a buyer's take does until its commit.
    let mut holder = db.pool().begin().await.expect("begin");
    let _: Vec<(i64,)> = sqlx::query_as(lock)
        .bind(sku.as_str())
        .fetch_all(&mut *holder)
        .await
        .expect("lock the stock row");

    let committed = inventory.commit(sold).await;
    assert_eq!(
        committed.as_ref().map(|r| r.state).ok(),
        Some(ReservationState::Committed),
        "{server:?}: the sale did not wait for the stock row: {committed:?}"
    );
    let blocked = inventory.release(released).await;
    assert!(
        blocked.is_err(),
        "{server:?}: a release gives units back to the row it waits for: {blocked:?}"
    );
    holder.rollback().await.expect("rollback");

    assert_eq!(
        inventory.level(&sku).await.expect("level"),
        level(2, 1, 2),
        "{server:?}: the sale counted, the release undone"
    );
    inventory.release(released).await.expect("release");
    assert_eq!(inventory.level(&sku).await.expect("level"), level(3, 0, 2));
    // A return takes the units out of the sold row and gives them back to the stock row.
    inventory.return_stock(sold).await.expect("return");
    assert_eq!(inventory.level(&sku).await.expect("level"), level(5, 0, 0));
}

#[tokio::test]
async fn a_sale_does_not_wait_for_the_stock_row_on_postgres() {
    a_sale_does_not_wait_for_the_stock_row(
        Server::Postgres,
        "SELECT on_hand FROM stock WHERE sku = $1 FOR UPDATE",
    )
    .await;
}

#[tokio::test]
async fn a_sale_does_not_wait_for_the_stock_row_on_mysql() {
    a_sale_does_not_wait_for_the_stock_row(
        Server::MySql,
        "SELECT on_hand FROM stock WHERE sku = ? FOR UPDATE",
    )
    .await;
}
