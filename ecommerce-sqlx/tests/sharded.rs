//! Orders sharded by customer over two PostgreSQL databases: the order guarantees of the
//! conformance suite hold through the router, and a customer's history reads one shard.

mod common;

use std::sync::Arc;

use ecommerce_core::id::{CustomerId, IdempotencyKey, Sku};
use ecommerce_core::order::OrderStore;
use ecommerce_core::payment::{PaymentMethod, TestGateway};
use ecommerce_core::testkit::{self, Backend};
use ecommerce_core::{CheckoutRequest, Storefront};
use ecommerce_sqlx::{ShardedOrderStore, SqlOrderStore, SqlStores};

struct Shards {
    stores: SqlStores,
    shards: Vec<Arc<SqlOrderStore>>,
    router: Arc<ShardedOrderStore>,
    _guards: Vec<Arc<common::Cleanup>>,
}

async fn shards() -> Option<Shards> {
    let (a, _, guard_a) = common::fresh_postgres_database().await?;
    let (b, _, guard_b) = common::fresh_postgres_database().await?;
    let shards = vec![
        Arc::new(SqlOrderStore::new(a.clone())),
        Arc::new(SqlOrderStore::new(b)),
    ];
    Some(Shards {
        stores: SqlStores::new(a),
        router: Arc::new(ShardedOrderStore::new(shards.clone())),
        shards,
        _guards: vec![guard_a, guard_b],
    })
}

fn backend(s: &Shards) -> Backend {
    let memory = Backend::memory();
    Backend {
        catalog: s.stores.catalog.clone(),
        carts: s.stores.carts.clone(),
        inventory: s.stores.inventory.clone(),
        orders: s.router.clone(),
        outbox: s.router.clone(),
        recommendations: s.stores.recommendations.clone(),
        search: memory.search,
        address_book: s.stores.address_book.clone(),
        // Promotions on the first shard's database, with the catalog and the stock.
        promotions: s.stores.promotions.clone(),
        // The orders live on other databases than the stock.
        unit: None,
        histories: 5,
        simulated_histories: 50,
        guard: None,
    }
}

/// Runs one check of the suite with fresh shards.
macro_rules! through_the_router {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                let Some(s) = shards().await else { return };
                testkit::$check(backend(&s)).await;
            }
        )*
    };
}

through_the_router!(
    one_order_per_idempotency_key,
    order_update_is_compare_and_set,
    history_is_newest_first_with_cursor,
    outbox_delivers_every_event_at_least_once,
    recover_finishes_interrupted_checkouts,
    oversell_concurrent_checkouts,
    oversell_randomized_histories,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_customer_lives_in_one_shard() {
    let Some(s) = shards().await else { return };
    let gateway = Arc::new(TestGateway::default());
    // Not `SqlStores::builder`: its unit of work would write the orders to the stores'
    // database, not to their shards.
    let shop: Storefront = Storefront::builder()
        .catalog(s.stores.catalog.clone())
        .carts(s.stores.carts.clone())
        .inventory(s.stores.inventory.clone())
        .orders(s.router.clone())
        .recommendations(s.stores.recommendations.clone())
        .payments(gateway)
        .with_memory_defaults()
        .build()
        .expect("storefront");
    let sku = Sku::new("SHARD-1").expect("sku");
    let product = ecommerce_core::catalog::Product::new(
        ecommerce_core::id::ProductId::new(),
        "Sharded thing",
        ecommerce_core::id::CategoryId::new("things").expect("slug"),
    )
    .with_brand("Acme")
    .with_variants([ecommerce_core::catalog::Variant::new(
        sku.clone(),
        ecommerce_core::Money::from_minor(100, ecommerce_core::Currency::USD),
    )]);
    shop.upsert_product(product).await.expect("product");
    shop.receive_stock(&sku, 1_000).await.expect("stock");

    let customers: Vec<CustomerId> = (0..16).map(|_| CustomerId::new()).collect();
    for (i, customer) in customers.iter().enumerate() {
        for n in 0..2 {
            let cart = shop.customer_cart(*customer).await.expect("cart");
            shop.add_item(cart.id, &sku, 1).await.expect("add");
            shop.place_order(CheckoutRequest::new(
                cart.id,
                *customer,
                PaymentMethod::new("tok_approve").expect("token"),
                IdempotencyKey::new(format!("shard-{i}-{n}")).expect("key"),
            ))
            .await
            .expect("order");
        }
    }
    let mut used = [0usize; 2];
    for customer in &customers {
        let home = s.router.shard_of(*customer);
        assert_eq!(home, s.router.shard_of(*customer), "the hash is stable");
        used[home] += 1;
        for (i, shard) in s.shards.iter().enumerate() {
            let history = shard.history(*customer, None, 10).await.expect("history");
            let expected = if i == home { 2 } else { 0 };
            assert_eq!(
                history.items.len(),
                expected,
                "orders live in the home shard only"
            );
        }
        let routed = s
            .router
            .history(*customer, None, 10)
            .await
            .expect("history");
        assert_eq!(routed.items.len(), 2);
        assert!(routed.items[0].id > routed.items[1].id, "newest first");
    }
    assert!(
        used.iter().all(|n| *n > 0),
        "both shards hold customers: {used:?}"
    );
}
