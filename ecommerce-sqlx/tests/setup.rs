//! Connecting and migrating: bad input gets a typed error, and a database that goes away
//! fails calls cleanly without writing half an order.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Server, fresh_db};
use ecommerce_core::error::{CartError, StoreError};
use ecommerce_core::payment::TestGateway;
use ecommerce_sqlx::{Db, DbOptions, SqlError, SqlStores};
use sqlx::Executor;

#[tokio::test]
async fn urls_that_do_not_parse_or_name_no_database_are_refused() {
    assert!(matches!(
        SqlStores::connect("oracle://scott@tiger/db").await,
        Err(SqlError::UnsupportedScheme(s)) if s == "oracle"
    ));
    assert!(matches!(
        SqlStores::connect("not a url").await,
        Err(SqlError::UnsupportedScheme(_))
    ));
    assert!(matches!(
        SqlStores::connect("postgres://user@host:notaport/db").await,
        Err(SqlError::InvalidUrl(_))
    ));
}

#[tokio::test]
async fn a_database_that_is_down_is_a_clear_error() {
    let options = DbOptions {
        max_connections: 1,
        acquire_timeout: Duration::from_secs(2),
        ..DbOptions::default()
    };
    for url in [
        "postgres://postgres@127.0.0.1:1/test",
        "mysql://root@127.0.0.1:1/test",
    ] {
        match Db::connect_with(url, options, &[]).await {
            Err(SqlError::Unreachable(_)) => {}
            other => panic!("{url}: expected unreachable, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_version_is_refused() {
    let (db, _cleanup) = fresh_db(Server::Sqlite, 1).await.expect("sqlite");
    db.pool()
        .execute(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'from the future', 1, X'00', 0)",
        )
        .await
        .expect("insert");
    match db.migrate().await {
        Err(SqlError::Migrate(e)) => assert!(e.to_string().contains("99999"), "{e}"),
        other => panic!("expected a migration error, got {other:?}"),
    }
}

#[tokio::test]
async fn migrations_are_idempotent() {
    let (db, _cleanup) = fresh_db(Server::Sqlite, 1).await.expect("sqlite");
    db.migrate().await.expect("again");
    db.migrate().await.expect("and again");
}

#[tokio::test]
async fn a_closed_database_fails_calls_and_writes_nothing() {
    let (db, _cleanup) = fresh_db(Server::Sqlite, 4).await.expect("sqlite");
    let stores = SqlStores::new(db.clone());
    let shop = stores
        .storefront(Arc::new(TestGateway::default()))
        .expect("storefront");
    let cart = shop.create_guest_cart().await.expect("cart");
    db.close().await;
    match shop.cart(cart.id).await {
        Err(CartError::Store(e)) => {
            assert!(e.is_transient(), "{e}");
            assert!(matches!(e, StoreError::Unavailable { .. }), "{e}");
        }
        other => panic!("expected an unavailable store, got {other:?}"),
    }
}
