//! Connecting and migrating: bad input gets a typed error, and a database that goes away
//! fails calls cleanly without writing half an order.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Server, dollar_off, empty_db, fresh_db, on_pool, usd};
use ecommerce_core::error::{CartError, StoreError};
use ecommerce_core::id::OrderId;
use ecommerce_core::payment::TestGateway;
use ecommerce_core::promotion::{Limit, PromotionError, PromotionStore, PromotionUse, Usage};
use ecommerce_sqlx::{Db, DbOptions, SqlError, SqlPromotionStore, SqlStores};

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

/// A database on the layout before migration 0008, where a promotion counted its uses held
/// and committed apart, keeps its usage: the uses taken are their sum, the committed ones
/// are counted from the use rows, and the limit still holds.
async fn a_promotions_usage_carries_over_to_one_count_of_uses_taken(server: Server) {
    let Some((db, _cleanup)) = empty_db(server, 2).await else {
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(match server {
            Server::Postgres => "postgres",
            Server::MySql => "mysql",
            Server::Sqlite => "sqlite",
        });
    let mut before = sqlx::migrate::Migrator::new(dir).await.expect("migrations");
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version <= 7)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    on_pool!(db, |pool| before.run(pool).await).expect("migrations 0001 to 0007");

    let promotion = dollar_off("five-only").limited_to(Some(5), None, None);
    let data = serde_json::to_string(&promotion).expect("json");
    db.execute(&format!(
        "INSERT INTO promotions (id, data, max_uses, automatic, held, committed, spent_minor) \
             VALUES ('five-only', '{}', 5, 1, 2, 3, 500)",
        data.replace('\'', "''")
    ))
    .await
    .expect("a promotion of the old layout");
    for (seq, state) in ["committed", "committed", "committed", "held", "held"]
        .into_iter()
        .enumerate()
    {
        db.execute(&format!(
            "INSERT INTO promotion_uses (order_id, seq, promotion, code, customer_key, \
                 amount_minor, state, created_at) VALUES ('{}', 0, 'five-only', NULL, \
                 'email:{seq}@example.com', 100, '{state}', 0)",
            OrderId::new()
        ))
        .await
        .expect("a use");
    }

    db.migrate().await.expect("migration 0008");
    let promotions = SqlPromotionStore::new(db.clone());
    assert_eq!(
        promotions.usage(&promotion.id).await.expect("usage"),
        Usage {
            held: 2,
            committed: 3,
            spent: usd(500),
        },
        "{server:?}"
    );
    let sixth = promotions
        .reserve(
            OrderId::new(),
            &[PromotionUse {
                promotion: promotion.id.clone(),
                code: None,
                customer: "email:six@example.com".to_owned(),
                amount: usd(100),
            }],
        )
        .await;
    assert!(
        matches!(
            sixth,
            Err(PromotionError::Exhausted {
                limit: Limit::Total,
                ..
            })
        ),
        "{server:?}: five uses taken of five: {sixth:?}"
    );
}

#[tokio::test]
async fn a_promotions_usage_carries_over_on_postgres() {
    a_promotions_usage_carries_over_to_one_count_of_uses_taken(Server::Postgres).await;
}

#[tokio::test]
async fn a_promotions_usage_carries_over_on_mysql() {
    a_promotions_usage_carries_over_to_one_count_of_uses_taken(Server::MySql).await;
}

#[tokio::test]
async fn a_promotions_usage_carries_over_on_sqlite() {
    a_promotions_usage_carries_over_to_one_count_of_uses_taken(Server::Sqlite).await;
}
