//! A sale does not lock the rows every buyer queues on when it takes: its SKU's stock row
//! (the units sold are added to the bucket's `stock_sold` row) and a limited promotion's row
//! (a use is counted against the limit once, when it is held; its commit changes only the
//! order's own use rows). While another transaction holds such a row (as a buyer's take
//! does until its commit), a sale goes through and a release, which gives units or a use back
//! to the row, waits for it until the statement timeout. PostgreSQL and MySQL/MariaDB; SQLite
//! has a single writer and no row locks.

mod common;

use common::{Server, TTL, dollar_off, fresh_db, level, lines, on_pool, usd};
use ecommerce_core::id::{OrderId, Sku};
use ecommerce_core::inventory::{InventoryStore, ReservationState};
use ecommerce_core::promotion::{PromotionStore, PromotionUse, Usage, UseState};
use ecommerce_sqlx::{SqlInventory, SqlPromotionStore};

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
    on_pool!(db, |pool| {
        let mut holder = pool.begin().await.expect("begin");
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
    });

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

async fn a_use_commits_without_waiting_for_the_promotion_row(server: Server, lock: &'static str) {
    let Some((db, _cleanup)) = fresh_db(server, 4).await else {
        return;
    };
    let promotions = SqlPromotionStore::new(db.clone());
    let promotion = dollar_off("first-hundred").limited_to(Some(100), None, Some(usd(10_000)));
    promotions
        .save_promotion(&promotion)
        .await
        .expect("promotion");
    let one_use = |customer: &str| {
        [PromotionUse {
            promotion: promotion.id.clone(),
            code: None,
            customer: customer.to_owned(),
            amount: usd(100),
        }]
    };
    let (committed, released) = (OrderId::new(), OrderId::new());
    promotions
        .reserve(committed, &one_use("email:ada@example.com"))
        .await
        .expect("reserve");
    promotions
        .reserve(released, &one_use("email:bo@example.com"))
        .await
        .expect("reserve");
    let usage = |held, committed, spent| Usage {
        held,
        committed,
        spent: usd(spent),
    };

    // Another transaction holds the promotion's row, as a buyer's reservation does until its
    // commit.
    on_pool!(db, |pool| {
        let mut holder = pool.begin().await.expect("begin");
        let _: Vec<(String,)> = sqlx::query_as(lock)
            .bind(promotion.id.as_str())
            .fetch_all(&mut *holder)
            .await
            .expect("lock the promotion row");

        let commit = promotions.commit(committed).await;
        assert!(
            commit.is_ok(),
            "{server:?}: the commit did not wait for the promotion row: {commit:?}"
        );
        let blocked = promotions.release(released).await;
        assert!(
            blocked.is_err(),
            "{server:?}: a release gives its use back to the row it waits for: {blocked:?}"
        );
        holder.rollback().await.expect("rollback");
    });

    assert_eq!(
        promotions.uses_of(committed).await.expect("uses"),
        Some(UseState::Committed)
    );
    assert_eq!(
        promotions.usage(&promotion.id).await.expect("usage"),
        usage(1, 1, 200),
        "{server:?}: the commit counted, the release undone"
    );
    promotions.release(released).await.expect("release");
    assert_eq!(
        promotions.usage(&promotion.id).await.expect("usage"),
        usage(0, 1, 100)
    );
    // A committed use given back (a refunded order) frees its place under the limit.
    promotions.release(committed).await.expect("release");
    assert_eq!(
        promotions.usage(&promotion.id).await.expect("usage"),
        usage(0, 0, 0)
    );
}

#[tokio::test]
async fn a_use_commits_without_waiting_for_the_promotion_row_on_postgres() {
    a_use_commits_without_waiting_for_the_promotion_row(
        Server::Postgres,
        "SELECT id FROM promotions WHERE id = $1 FOR UPDATE",
    )
    .await;
}

#[tokio::test]
async fn a_use_commits_without_waiting_for_the_promotion_row_on_mysql() {
    a_use_commits_without_waiting_for_the_promotion_row(
        Server::MySql,
        "SELECT id FROM promotions WHERE id = ? FOR UPDATE",
    )
    .await;
}
