//! What the schema itself refuses on every dialect, whatever SQL reaches it: counters below
//! their floor, and variants of no product. The stores never write such rows (their
//! conditional statements keep the same rules); the schema stands behind them for SQL
//! written by hand, and a refused statement changes nothing.

mod common;

use common::{Server, fresh_db, on_pool};
use ecommerce_sqlx::Db;
use sqlx::AssertSqlSafe;

async fn run(db: &Db, sql: &str) -> Result<u64, sqlx::Error> {
    db.execute(sql).await
}

async fn count(db: &Db, sql: &str) -> i64 {
    let sql = AssertSqlSafe(sql.to_owned());
    on_pool!(db, |pool| sqlx::query_scalar(sql).fetch_one(pool).await).expect("a count")
}

async fn guards(server: Server) {
    let Some((db, _cleanup)) = fresh_db(server, 2).await else {
        return;
    };
    let refused = |what: &str, result: Result<u64, sqlx::Error>| {
        assert!(
            result.is_err(),
            "{server:?}: {what} was accepted: {result:?}"
        );
    };

    // A promotion's spent budget.
    run(&db, "INSERT INTO promotions (id, data) VALUES ('p1', '{}')")
        .await
        .expect("a promotion");
    refused(
        "a negative spent budget",
        run(
            &db,
            "UPDATE promotions SET spent_minor = -1 WHERE id = 'p1'",
        )
        .await,
    );
    refused(
        "a promotion inserted with a negative spent budget",
        run(
            &db,
            "INSERT INTO promotions (id, data, spent_minor) VALUES ('p2', '{}', -5)",
        )
        .await,
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM promotions WHERE spent_minor <> 0"
        )
        .await,
        0,
        "{server:?}: the refused changes changed nothing"
    );

    // A co-purchase pair counts at least one order.
    let column = if server == Server::MySql {
        "`count`"
    } else {
        "count"
    };
    run(
        &db,
        &format!("INSERT INTO co_purchases (sku, other, {column}) VALUES ('A', 'B', 1)"),
    )
    .await
    .expect("a pair");
    refused(
        "a pair counted zero times",
        run(
            &db,
            &format!("UPDATE co_purchases SET {column} = 0 WHERE sku = 'A'"),
        )
        .await,
    );
    refused(
        "a pair inserted with a negative count",
        run(
            &db,
            &format!("INSERT INTO co_purchases (sku, other, {column}) VALUES ('B', 'A', -1)"),
        )
        .await,
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM co_purchases").await,
        1,
        "{server:?}: a refused insert stored nothing"
    );

    // A variant belongs to a stored product, and goes with it.
    refused(
        "a variant of no product",
        run(
            &db,
            "INSERT INTO variants (sku, product_id) VALUES ('V-0', '00000000-0000-4000-8000-000000000000')",
        )
        .await,
    );
    run(
        &db,
        "INSERT INTO products (id, category, published, data) VALUES ('00000000-0000-4000-8000-000000000001', 'gear', 1, '{}')",
    )
    .await
    .expect("a product");
    run(
        &db,
        "INSERT INTO variants (sku, product_id) VALUES ('V-1', '00000000-0000-4000-8000-000000000001')",
    )
    .await
    .expect("a variant of it");
    run(
        &db,
        "DELETE FROM products WHERE id = '00000000-0000-4000-8000-000000000001'",
    )
    .await
    .expect("the product deleted");
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM variants").await,
        0,
        "{server:?}: a deleted product's variants go with it"
    );
}

#[tokio::test]
async fn sqlite_refuses_what_the_stores_never_write() {
    guards(Server::Sqlite).await;
}

#[tokio::test]
async fn postgres_refuses_what_the_stores_never_write() {
    guards(Server::Postgres).await;
}

#[tokio::test]
async fn mysql_refuses_what_the_stores_never_write() {
    guards(Server::MySql).await;
}
