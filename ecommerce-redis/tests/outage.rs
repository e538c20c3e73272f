//! A Redis that goes away answers fast with a transient error, and the same client works again
//! when it is back. The shared Redis is never stopped: a TCP proxy between the client and the
//! server is cut ([`CutMode`]) and restored.
//!
//! The times printed are measurements; the assertions on them only detect hangs (a bound far
//! above the configured timeouts), they are not performance thresholds.

mod common;

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use ecommerce_core::error::{InventoryError, StoreError};
use ecommerce_core::id::Sku;
use ecommerce_core::inventory::InventoryStore;
use ecommerce_core::testkit::proxy::{CutMode, TcpProxy};
use ecommerce_redis::{Redis, RedisInventory, RedisOptions, RedisSetupError};

/// Far above the configured timeouts (about 1 s): only a hang gets there.
const HANG: Duration = Duration::from_secs(10);

/// The host and port of `redis://[user@]host[:port][/db]`.
fn upstream(url: &str) -> SocketAddr {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    };
    host_port
        .to_socket_addrs()
        .expect("resolve redis")
        .next()
        .expect("an address")
}

fn transient(result: &Result<impl std::fmt::Debug, InventoryError>) -> bool {
    matches!(result, Err(InventoryError::Store(e @ StoreError::Unavailable { .. })) if e.is_transient())
}

async fn cut_and_restore(mode: CutMode) {
    // A direct connection makes the fresh prefix and deletes its keys at the end.
    let Some((direct, _cleanup)) = common::fresh().await else {
        return;
    };
    let url = common::redis_url().expect("redis url");
    let proxy = TcpProxy::start(upstream(&url));
    let options = RedisOptions::default();
    let redis = Redis::connect_with(
        &format!("redis://{}", proxy.addr()),
        direct.prefix(),
        options,
    )
    .await
    .expect("connect through the proxy");
    let inventory = RedisInventory::new(redis);
    let sku = Sku::new("OUTAGE-1").expect("sku");
    inventory.receive(&sku, 5).await.expect("receive");
    assert_eq!(inventory.level(&sku).await.expect("level").on_hand, 5);

    proxy.cut(mode);

    // The first call may learn that the connection is gone, the next ones wait on the
    // reconnection: each must end fast.
    let mut took = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let read = inventory.level(&sku).await;
        let elapsed = started.elapsed();
        assert!(transient(&read), "{mode:?}: read: {read:?}");
        assert!(elapsed < HANG, "{mode:?}: read hung {elapsed:?}");
        took.push(elapsed);
    }
    let started = Instant::now();
    let write = inventory.receive(&sku, 1).await;
    let write_took = started.elapsed();
    println!(
        "Redis {mode:?}: three reads failed in {took:?}, a write in {write_took:?} \
         (bound {:?})",
        options.call_bound()
    );
    assert!(transient(&write), "{mode:?}: write: {write:?}");
    assert!(write_took < HANG, "{mode:?}: write hung {write_took:?}");

    proxy.restore();

    // The same client reconnects by itself.
    let started = Instant::now();
    let mut failures = 0;
    let level = loop {
        match inventory.level(&sku).await {
            Ok(level) => break level,
            Err(e) => {
                assert!(
                    e.is_transient() && started.elapsed() < HANG,
                    "{mode:?}: no recovery after {:?}: {e}",
                    started.elapsed()
                );
                failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    println!(
        "Redis {mode:?}: restored, a read succeeded after {:?} ({failures} failed first)",
        started.elapsed()
    );
    // A write cut off in flight may or may not have reached Redis: its outcome is unknown.
    assert!(
        (5..=6).contains(&level.on_hand),
        "stock is what was received: {level:?}"
    );
    let after = inventory.receive(&sku, 1).await.expect("writes work again");
    assert_eq!(after.on_hand, level.on_hand + 1);
    assert!(
        proxy.open_connections() >= 1,
        "the client goes through the proxy"
    );
}

#[tokio::test]
async fn refused() {
    cut_and_restore(CutMode::Refuse).await;
}

#[tokio::test]
async fn blackholed() {
    cut_and_restore(CutMode::Blackhole).await;
}

#[tokio::test]
async fn partitioned() {
    cut_and_restore(CutMode::Partition).await;
}

#[tokio::test]
async fn a_redis_that_never_answers_fails_connect_within_the_bound() {
    let Some(url) = common::redis_url() else {
        return;
    };
    let proxy = TcpProxy::start(upstream(&url));
    proxy.cut(CutMode::Blackhole);
    let options = RedisOptions::default();
    let started = Instant::now();
    let result = Redis::connect_with(&format!("redis://{}", proxy.addr()), "t", options).await;
    let took = started.elapsed();
    println!(
        "connect to a black hole failed after {took:?} (bound {:?}): {result:?}",
        options.call_bound()
    );
    assert!(
        matches!(result, Err(RedisSetupError::Unreachable(_))),
        "{result:?}"
    );
    assert!(took < HANG, "connect hung {took:?}");
}
