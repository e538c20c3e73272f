//! A store call whose future is dropped part-way (a client that went away, a timeout around
//! the call) leaves nothing behind on the connection it used: no transaction stays open on a
//! pooled connection, so a write acknowledged afterwards is committed and seen by everyone.
//! Run on SQLite, and on PostgreSQL and MySQL/MariaDB when their URLs are set.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{Server, fresh_db};
use ecommerce_core::catalog::{CatalogStore, Category, Product, Variant};
use ecommerce_core::id::{CategoryId, ProductId, Sku};
use ecommerce_core::money::{Currency, Money};
use ecommerce_sqlx::{Db, DbOptions, SqlCatalog};

fn product(n: usize) -> Product {
    Product::new(
        ProductId::new(),
        format!("Cancelled {n}"),
        CategoryId::new("cancel").expect("category"),
    )
    .with_variants([Variant::new(
        Sku::new(format!("CANCEL-{n}")).expect("sku"),
        Money::from_minor(1_000, Currency::USD),
    )])
}

fn category(n: usize) -> Category {
    Category::new(
        CategoryId::new(format!("after-{n}")).expect("category"),
        format!("After {n}"),
    )
}

/// Drops a future when it would wait for the `waits + 1`-th time (or returns its output).
struct DroppedAfter<F> {
    future: Pin<Box<F>>,
    waits: usize,
}

impl<F: Future> DroppedAfter<F> {
    fn new(future: F, waits: usize) -> Self {
        DroppedAfter {
            future: Box::pin(future),
            waits,
        }
    }
}

impl<F: Future> Future for DroppedAfter<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.future.as_mut().poll(cx) {
            Poll::Ready(output) => Poll::Ready(Some(output)),
            Poll::Pending if self.waits == 0 => Poll::Ready(None),
            Poll::Pending => {
                self.waits -= 1;
                Poll::Pending
            }
        }
    }
}

async fn cancelled_calls_leave_no_open_transaction(server: Server) {
    // One connection, so every call after a cancelled one runs on the connection it used.
    let Some((db, cleanup)) = fresh_db(server, 1).await else {
        return;
    };
    let observer = Db::connect_with(
        &cleanup.database_url,
        DbOptions {
            max_connections: 1,
            ..DbOptions::default()
        },
        &cleanup.setup,
    )
    .await
    .expect("a second pool onto the test database");
    let catalog = SqlCatalog::new(db.clone());
    let seen = SqlCatalog::new(observer.clone());
    for n in 0..400 {
        // Dropped at each of its waits in turn: before its first statement, between any two,
        // after its commit.
        let waits = n % 40;
        if n < 100 {
            let _ = DroppedAfter::new(catalog.product(ProductId::new()), waits).await;
        } else if n < 200 {
            let _ = DroppedAfter::new(catalog.upsert_product(product(n)), waits).await;
        } else {
            let after = Duration::from_micros(10 + (n as u64 * 37) % 1_500);
            let _ = tokio::time::timeout(after, catalog.upsert_product(product(n))).await;
        }
        catalog
            .upsert_category(category(n))
            .await
            .expect("a write after a cancelled call");
        let categories = seen.categories().await.expect("observer reads");
        assert!(
            categories.iter().any(|c| c.id == category(n).id),
            "{server:?}: a write acknowledged after a call dropped at its wait {waits} (round {n}) \
             is not committed: the cancelled call left a transaction open on its connection"
        );
    }
    observer.close().await;
    db.close().await;
}

#[tokio::test]
async fn sqlite_cancelled_calls_leave_no_open_transaction() {
    cancelled_calls_leave_no_open_transaction(Server::Sqlite).await;
}

#[tokio::test]
async fn postgres_cancelled_calls_leave_no_open_transaction() {
    cancelled_calls_leave_no_open_transaction(Server::Postgres).await;
}

#[tokio::test]
async fn mysql_cancelled_calls_leave_no_open_transaction() {
    cancelled_calls_leave_no_open_transaction(Server::MySql).await;
}
