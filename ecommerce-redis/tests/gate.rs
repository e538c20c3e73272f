//! The flash-sale gate: the conformance suite through it, buyers turned away without touching
//! the inventory behind it, and reservations falling through when Redis is down.

mod common;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ecommerce_core::error::InventoryError;
use ecommerce_core::id::{OrderId, Sku};
use ecommerce_core::inventory::{
    InventoryStore, Reservation, ReservationLine, StockLevel, StockMovement,
};
use ecommerce_core::memory::MemoryInventory;
use ecommerce_core::testkit::{Backend, BackendFactory};
use ecommerce_redis::{GatedInventory, Redis};

struct Gated;

#[async_trait]
impl BackendFactory for Gated {
    async fn backend(&self) -> Option<Backend> {
        let (redis, cleanup) = common::fresh().await?;
        Some(Backend {
            inventory: Arc::new(GatedInventory::new(redis, Arc::new(MemoryInventory::new()))),
            histories: 50,
            simulated_histories: 1_000,
            guard: Some(cleanup),
            ..Backend::memory()
        })
    }
}

ecommerce_core::conformance_suite!(Gated);

/// An inventory that counts the reservations that reach it.
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryInventory,
    reserves: AtomicUsize,
}

#[async_trait]
impl InventoryStore for Counting {
    async fn receive(&self, sku: &Sku, n: u32) -> Result<StockLevel, InventoryError> {
        self.inner.receive(sku, n).await
    }
    async fn level(&self, sku: &Sku) -> Result<StockLevel, InventoryError> {
        self.inner.level(sku).await
    }
    async fn reserve(
        &self,
        order: OrderId,
        lines: &[ReservationLine],
        ttl: Duration,
    ) -> Result<Reservation, InventoryError> {
        self.reserves.fetch_add(1, Ordering::SeqCst);
        self.inner.reserve(order, lines, ttl).await
    }
    async fn commit(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.inner.commit(order).await
    }
    async fn release(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        self.inner.release(order).await
    }
    async fn return_stock(&self, order: OrderId) -> Result<Reservation, InventoryError> {
        self.inner.return_stock(order).await
    }
    async fn reservation(&self, order: OrderId) -> Result<Option<Reservation>, InventoryError> {
        self.inner.reservation(order).await
    }
    async fn release_expired(&self, limit: usize) -> Result<Vec<OrderId>, InventoryError> {
        self.inner.release_expired(limit).await
    }
    async fn ledger(&self, sku: &Sku) -> Result<Vec<StockMovement>, InventoryError> {
        self.inner.ledger(sku).await
    }
}

fn line(sku: &Sku) -> Vec<ReservationLine> {
    vec![ReservationLine {
        sku: sku.clone(),
        quantity: 1,
    }]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_gate_turns_buyers_away_without_touching_the_inventory() {
    let Some((redis, _cleanup)) = common::fresh().await else {
        return;
    };
    let counting = Arc::new(Counting::default());
    let sku = Sku::new("GATE-1").expect("sku");
    counting
        .receive(&sku, 5)
        .await
        .expect("stock before the gate");
    let gate = Arc::new(GatedInventory::new(redis, counting.clone()));
    gate.rebuild(std::slice::from_ref(&sku))
        .await
        .expect("rebuild from the inventory");
    assert_eq!(gate.counter(&sku).await.expect("counter"), Some(5));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (gate, sku) = (gate.clone(), sku.clone());
            tokio::spawn(async move {
                gate.reserve(OrderId::new(), &line(&sku), Duration::from_secs(60))
                    .await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if t.await.expect("task").is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 5, "exactly the stock is reserved");
    assert_eq!(
        counting.reserves.load(Ordering::SeqCst),
        5,
        "the 95 buyers without stock never reached the inventory"
    );
    // A released reservation puts its unit back on the gate.
    let order = OrderId::new();
    gate.receive(&sku, 1).await.expect("receive");
    gate.reserve(order, &line(&sku), Duration::from_secs(60))
        .await
        .expect("reserve");
    gate.release(order).await.expect("release");
    gate.release(order).await.expect("release twice");
    assert_eq!(gate.counter(&sku).await.expect("counter"), Some(1));
    assert_eq!(gate.reconcile().await.expect("reconcile"), 1);
    assert_eq!(gate.counter(&sku).await.expect("counter"), Some(1));

    // Stock received before the gate knew the SKU: the first receipt through the gate starts
    // the counter at everything on hand, not at the receipt.
    let old = Sku::new("GATE-OLD").expect("sku");
    counting
        .receive(&old, 40)
        .await
        .expect("stock before the gate");
    gate.receive(&old, 2).await.expect("receive");
    assert_eq!(gate.counter(&old).await.expect("counter"), Some(42));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_is_down_reservations_fall_through_to_the_inventory() {
    if common::redis_url().is_none() {
        return;
    }
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        listener.local_addr().expect("addr").port()
    };
    let mut server = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let redis = loop {
        match Redis::connect(&url, "down").await {
            Ok(redis) => break redis,
            Err(e) => {
                assert!(started.elapsed() < Duration::from_secs(10), "no redis: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let inventory = Arc::new(MemoryInventory::new());
    let gate = GatedInventory::new(redis, inventory.clone());
    let sku = Sku::new("DOWN-1").expect("sku");
    gate.receive(&sku, 2).await.expect("receive");
    gate.reserve(OrderId::new(), &line(&sku), Duration::from_secs(60))
        .await
        .expect("through the gate");

    server.kill().expect("stop redis");
    server.wait().expect("stopped");
    gate.reserve(OrderId::new(), &line(&sku), Duration::from_secs(60))
        .await
        .expect("falls through to the inventory");
    let refused = gate
        .reserve(OrderId::new(), &line(&sku), Duration::from_secs(60))
        .await;
    assert!(
        matches!(refused, Err(InventoryError::OutOfStock { .. })),
        "{refused:?}"
    );
    let level = inventory.level(&sku).await.expect("level");
    assert_eq!(
        (level.on_hand, level.reserved),
        (0, 2),
        "the inventory decided; no oversell"
    );
}
