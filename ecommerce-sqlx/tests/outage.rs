//! A database that goes away answers fast with a transient error, and the same pool works
//! again when it is back. The shared servers are never stopped: a TCP proxy between the pool
//! and the server is cut ([`CutMode`]) and restored.
//!
//! The times printed are measurements; the assertions on them only detect hangs (a bound far
//! above the configured timeouts), they are not performance thresholds.

mod common;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Cleanup, Server, server_url, with_database};
use ecommerce_core::error::{InventoryError, StoreError};
use ecommerce_core::id::Sku;
use ecommerce_core::inventory::InventoryStore;
use ecommerce_core::testkit::proxy::{CutMode, TcpProxy};
use ecommerce_sqlx::{Db, DbOptions, SqlStores};

/// Far above the configured timeouts (about 1 s): only a hang gets there.
const HANG: Duration = Duration::from_secs(10);

/// The host and port of a server URL (`scheme://user@host:port/db?query`).
fn upstream(url: &str, default_port: u16) -> SocketAddr {
    let (_, authority, _) = split(url);
    let host_port = authority.rsplit('@').next().unwrap_or(authority);
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    host_port
        .to_socket_addrs()
        .expect("resolve the server")
        .next()
        .expect("an address")
}

/// `(scheme://, user@host:port, /db?query)`.
fn split(url: &str) -> (&str, &str, &str) {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| start + i);
    (&url[..start], &url[start..end], &url[end..])
}

/// The same URL, through the proxy.
fn via(url: &str, proxy: SocketAddr) -> String {
    let (scheme, authority, rest) = split(url);
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}{user}{proxy}{rest}")
}

/// A fresh schema (PostgreSQL) or database (MariaDB), created directly on the server and
/// reached through a proxy; removed by the guard.
async fn through_proxy(server: Server, options: DbOptions) -> Option<(Db, TcpProxy, Arc<Cleanup>)> {
    let url = server_url(server)?;
    let port = if server == Server::Postgres {
        5432
    } else {
        3306
    };
    let proxy = TcpProxy::start(upstream(&url, port));
    let name = format!("ecommerce_o_{}", uuid::Uuid::new_v4().simple());
    let (create, drop) = if server == Server::Postgres {
        (
            format!("CREATE SCHEMA {name}"),
            format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
        )
    } else {
        (
            format!("CREATE DATABASE {name}"),
            format!("DROP DATABASE IF EXISTS {name}"),
        )
    };
    let admin = Db::connect(&url).await.expect("the server is reachable");
    admin
        .execute(&create)
        .await
        .expect("create the test's schema or database");
    admin.close().await;
    let cleanup = Arc::new(Cleanup {
        url: url.clone(),
        drop_sql: Some(drop),
        files: Vec::new(),
        database_url: String::new(),
        setup: Vec::new(),
    });
    let proxied = via(&url, proxy.addr());
    let db = if server == Server::Postgres {
        let setup = vec![format!("SET search_path TO {name}")];
        Db::connect_with(&proxied, options, &setup).await
    } else {
        Db::connect_with(&with_database(&proxied, &name), options, &[]).await
    }
    .expect("connect through the proxy");
    db.migrate().await.expect("migrations apply");
    Some((db, proxy, cleanup))
}

fn transient(result: &Result<impl std::fmt::Debug, InventoryError>) -> bool {
    matches!(result, Err(InventoryError::Store(e @ StoreError::Unavailable { .. })) if e.is_transient())
}

async fn cut_and_restore(server: Server, mode: CutMode) {
    let options = DbOptions {
        max_connections: 4,
        ..DbOptions::default()
    };
    let Some((db, proxy, _cleanup)) = through_proxy(server, options).await else {
        return;
    };
    let stores = SqlStores::new(db.clone());
    let inventory = stores.inventory.clone();
    let sku = Sku::new("OUTAGE-1").expect("sku");
    inventory.receive(&sku, 5).await.expect("receive");
    assert_eq!(inventory.level(&sku).await.expect("level").on_hand, 5);

    proxy.cut(mode);

    let started = Instant::now();
    let read = inventory.level(&sku).await;
    let read_took = started.elapsed();
    let started = Instant::now();
    let write = inventory.receive(&sku, 1).await;
    let write_took = started.elapsed();
    println!(
        "{server:?} {mode:?}: a read failed in {read_took:?}, a write in {write_took:?} \
         (acquire timeout {:?})",
        options.acquire_timeout
    );
    assert!(transient(&read), "{server:?} {mode:?}: read: {read:?}");
    assert!(transient(&write), "{server:?} {mode:?}: write: {write:?}");
    assert!(
        read_took < HANG,
        "{server:?} {mode:?}: read hung {read_took:?}"
    );
    assert!(
        write_took < HANG,
        "{server:?} {mode:?}: write hung {write_took:?}"
    );

    proxy.restore();

    // The same pool reconnects by itself.
    let started = Instant::now();
    let mut failures = 0;
    let level = loop {
        match inventory.level(&sku).await {
            Ok(level) => break level,
            Err(e) => {
                assert!(
                    e.is_transient() && started.elapsed() < HANG,
                    "{server:?} {mode:?}: no recovery after {:?}: {e}",
                    started.elapsed()
                );
                failures += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    println!(
        "{server:?} {mode:?}: restored, a read succeeded after {:?} ({failures} failed first)",
        started.elapsed()
    );
    assert_eq!(level.on_hand, 5, "the failed write wrote nothing");
    assert_eq!(
        inventory.receive(&sku, 1).await.expect("write").on_hand,
        6,
        "writes work again"
    );
    assert!(
        proxy.open_connections() >= 1,
        "the pool goes through the proxy"
    );
    db.close().await;
}

/// A statement that runs past the statement timeout is cut short by the server.
async fn statement_timeout(server: Server) {
    let options = DbOptions {
        max_connections: 1,
        statement_timeout: Some(Duration::from_millis(300)),
        ..DbOptions::default()
    };
    let Some((db, _proxy, _cleanup)) = through_proxy(server, options).await else {
        return;
    };
    let sleep = match server {
        Server::Postgres => "SELECT pg_sleep(5)",
        _ => "SELECT SLEEP(5)",
    };
    let started = Instant::now();
    let result = db.execute(sleep).await;
    let took = started.elapsed();
    println!("{server:?}: a 5 s statement ended after {took:?}: {result:?}");
    assert!(took < Duration::from_secs(3), "{server:?}: not cut short");
    if server == Server::Postgres {
        assert!(result.is_err(), "PostgreSQL cancels it");
    }
    db.close().await;
}

#[tokio::test]
async fn postgres_refused() {
    cut_and_restore(Server::Postgres, CutMode::Refuse).await;
}

#[tokio::test]
async fn postgres_blackholed() {
    cut_and_restore(Server::Postgres, CutMode::Blackhole).await;
}

#[tokio::test]
async fn postgres_partitioned() {
    cut_and_restore(Server::Postgres, CutMode::Partition).await;
}

#[tokio::test]
async fn postgres_statement_timeout() {
    statement_timeout(Server::Postgres).await;
}

#[tokio::test]
async fn mysql_refused() {
    cut_and_restore(Server::MySql, CutMode::Refuse).await;
}

#[tokio::test]
async fn mysql_blackholed() {
    cut_and_restore(Server::MySql, CutMode::Blackhole).await;
}

#[tokio::test]
async fn mysql_partitioned() {
    cut_and_restore(Server::MySql, CutMode::Partition).await;
}

#[tokio::test]
async fn mysql_statement_timeout() {
    statement_timeout(Server::MySql).await;
}

#[tokio::test]
async fn a_database_that_never_answers_fails_connect_within_the_connect_timeout() {
    let Some(url) = server_url(Server::Postgres) else {
        return;
    };
    let proxy = TcpProxy::start(upstream(&url, 5432));
    proxy.cut(CutMode::Blackhole);
    let options = DbOptions {
        connect_timeout: Duration::from_millis(1500),
        ..DbOptions::default()
    };
    let started = Instant::now();
    let result = Db::connect_with(&via(&url, proxy.addr()), options, &[]).await;
    let took = started.elapsed();
    println!("connect to a black hole failed after {took:?}: {result:?}");
    assert!(
        matches!(result, Err(ecommerce_sqlx::SqlError::Unreachable(_))),
        "{result:?}"
    );
    assert!(took < HANG, "connect hung {took:?}");
}
