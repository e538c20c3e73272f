//! Connecting and migrating: bad input gets a typed error, and a database that goes away
//! fails calls cleanly without writing half an order.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Server, empty_db, fresh_db, on_pool};
use ecommerce_core::error::{CartError, StoreError};
use ecommerce_core::payment::TestGateway;
use ecommerce_sqlx::{Db, DbOptions, SqlError, SqlStores};

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
    db.execute(
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

/// Migrates `db` as 0.1's development builds began: a first migration named `init`.
async fn migrate_as_0_1(db: &Db) {
    let dir = std::env::temp_dir().join(format!("ecommerce-old-layout-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("a migrations directory");
    std::fs::write(
        dir.join("0001_init.sql"),
        "CREATE TABLE categories (id VARCHAR(64) PRIMARY KEY, data TEXT NOT NULL);",
    )
    .expect("the old first migration");
    let old = sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .expect("migrations");
    on_pool!(db, |pool| old.run(pool).await).expect("the old layout");
    std::fs::remove_dir_all(&dir).expect("the directory removed");
}

/// A database migrated by a development build of 0.1 (ids as text, times as integers,
/// documents as text; its first migration was `0001_init`) is refused when the stores
/// connect, with an error that says what to do, and is left as it was.
async fn a_database_in_the_old_layout_is_refused(server: Server) {
    let Some((db, cleanup)) = empty_db(server, 2).await else {
        return;
    };
    migrate_as_0_1(&db).await;

    match Db::connect_with(&cleanup.database_url, DbOptions::default(), &cleanup.setup).await {
        Err(e @ SqlError::OldLayout) => {
            assert!(e.to_string().contains("new database"), "{server:?}: {e}")
        }
        other => panic!("{server:?}: expected the old layout refused, got {other:?}"),
    }
    let applied: i64 = on_pool!(db, |pool| sqlx::query_scalar(
        "SELECT COUNT(*) FROM _sqlx_migrations"
    )
    .fetch_one(pool)
    .await)
    .expect("the migrations table");
    assert_eq!(applied, 1, "{server:?}: nothing was migrated");
}

#[tokio::test]
async fn the_old_layout_is_refused_on_postgres() {
    a_database_in_the_old_layout_is_refused(Server::Postgres).await;
}

#[tokio::test]
async fn the_old_layout_is_refused_on_mysql() {
    a_database_in_the_old_layout_is_refused(Server::MySql).await;
}

#[tokio::test]
async fn the_old_layout_is_refused_on_sqlite() {
    a_database_in_the_old_layout_is_refused(Server::Sqlite).await;
}

/// On PostgreSQL a new schema beside a schema of the old layout is new, even with the old one
/// on the search path: the stores migrate their own schema (the first of the path).
#[tokio::test]
async fn a_new_schema_beside_the_old_layout_is_accepted_on_postgres() {
    let Some((old, old_cleanup)) = empty_db(Server::Postgres, 2).await else {
        return;
    };
    migrate_as_0_1(&old).await;

    let (_new, new_cleanup) = empty_db(Server::Postgres, 2).await.expect("a new schema");
    let schema = |cleanup: &common::Cleanup| {
        cleanup.setup[0]
            .rsplit(' ')
            .next()
            .expect("SET search_path TO <schema>")
            .to_owned()
    };
    let both = vec![format!(
        "SET search_path TO {}, {}",
        schema(&new_cleanup),
        schema(&old_cleanup)
    )];
    let db = Db::connect_with(&new_cleanup.database_url, DbOptions::default(), &both)
        .await
        .expect("the new schema is accepted");
    db.migrate().await.expect("and migrated");
    db.close().await;
}
