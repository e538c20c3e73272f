//! Run with: `cargo run -p shop` (then open http://127.0.0.1:3000)
//!
//! The reference shop: an axum server with pages for people and a JSON API for programs, over
//! the SDK's stores. On its embedded default it needs no server: SQLite and a tantivy index in
//! `./shop-data` (beside the test payment provider's `test-gateway.json`), with a demo catalog
//! seeded on the first run. Point it elsewhere with flags or environment variables:
//!
//! ```text
//! cargo run -p shop -- --database-url postgres://postgres@127.0.0.1:5432/test
//! SHOP_DATABASE_URL=mysql://root@127.0.0.1:3306/test SHOP_REDIS_URL=redis://127.0.0.1:6379 \
//!     cargo run -p shop
//! ```
//!
//! Read it in this order: `backend.rs` (composing the stores), `app.rs` (the routes and the
//! layers every request passes), `serve.rs` (connections and their timeouts), `session.rs`
//! (who is shopping), `api.rs` and `pages.rs` (the flows), `promotions.rs` (the
//! promotions and coupon codes), `payments.rs` (webhooks), `error.rs` (what a shopper sees
//! when something fails).

mod api;
mod app;
mod backend;
mod checkout;
mod error;
mod html;
mod pages;
mod payments;
mod promotions;
mod serve;
mod session;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use ecommerce::Storefront;
use ecommerce::event_stream::nats::{EventConsumer, EventStream, JetStreamPublisher};
use ecommerce::events::OutboxRelay;
use ecommerce::payment::WebhookVerifier;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::app::{AppState, Timeouts};
use crate::backend::BackendConfig;
use crate::session::SqlSessionStore;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The reference shop of the ecommerce SDK.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "SHOP_ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Folder for the SQLite file, the search index, the secret key and the test payment
    /// provider's charges.
    #[arg(long, env = "SHOP_DATA_DIR", default_value = "shop-data")]
    data_dir: PathBuf,
    /// SQL database: postgres://..., mysql://... or sqlite://... [default: SQLite in the data
    /// folder]
    #[arg(long, env = "SHOP_DATABASE_URL")]
    database_url: Option<String>,
    /// Redis for carts, a stock gate and a catalog cache, e.g. redis://127.0.0.1:6379
    #[arg(long, env = "SHOP_REDIS_URL")]
    redis_url: Option<String>,
    /// NATS with JetStream to publish the shop's events to (stream `SHOP`, subjects
    /// `shop.>`), e.g. nats://127.0.0.1:4222 [default: events stay in the process]
    #[arg(long, env = "SHOP_NATS_URL")]
    nats_url: Option<String>,
    /// Demo products to create when the catalog is empty.
    #[arg(long, env = "SHOP_DEMO_PRODUCTS", default_value_t = 2000)]
    demo_products: usize,
}

/// The secret behind webhook signatures: `SHOP_SECRET`, or a random one kept
/// in the data folder so the test provider's webhooks verify after a restart.
fn secret(data_dir: &Path) -> Result<Vec<u8>, BoxError> {
    if let Ok(secret) = std::env::var("SHOP_SECRET") {
        if secret.len() < 32 {
            return Err("SHOP_SECRET must be at least 32 characters".into());
        }
        return Ok(secret.into_bytes());
    }
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join("secret.key");
    match std::fs::read(&path) {
        Ok(secret) if secret.len() >= 32 => Ok(secret),
        _ => {
            let secret = hex::encode(rand::random::<[u8; 32]>()).into_bytes();
            std::fs::write(&path, &secret)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            Ok(secret)
        }
    }
}

/// A key for one purpose, derived from the secret.
fn derive(secret: &[u8], purpose: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Opens the stores and makes the state every handler shares.
async fn build(config: &BackendConfig, secret: &[u8]) -> Result<AppState, BoxError> {
    let webhook_secret = derive(secret, "webhook");
    let gateway = Arc::new(backend::open_gateway(config, webhook_secret.clone())?);
    let (shop, db) = backend::open(config, gateway.clone()).await?;
    let sessions = SqlSessionStore::open(db)
        .await
        .map_err(|e| format!("opening the session store: {e}"))?;
    Ok(AppState {
        shop: Arc::new(shop),
        gateway,
        verifier: WebhookVerifier::new(Some(webhook_secret)),
        sessions,
        timeouts: Timeouts::default(),
    })
}

/// How long an order may stay PENDING before recovery takes its checkout for interrupted (the
/// process died, or the provider's answer was lost) and asks the provider what happened.
///
/// It must be longer than a live checkout can take between creating its order and recording
/// the provider's answer, a span bounded by the payment call's timeout: a shorter deadline
/// would fail orders whose charge is still under way (still correct, since a charge that lands
/// on a failed order is refunded, but the shopper's payment is undone). The test provider
/// answers in-process at once; an integrator whose provider client waits longer must raise
/// this above that client's timeout. Ten seconds keeps that margin and still settles a checkout
/// cut off by a crash within seconds of the shop coming back. Orders waiting for 3-D Secure
/// are not affected: the provider says they are still pending, and recovery leaves them.
const RECOVERY_DEADLINE: Duration = Duration::from_secs(10);

/// How often recovery runs after the pass at startup: an interrupted checkout is settled at
/// most `RECOVERY_DEADLINE + RECOVERY_INTERVAL` after its order was created.
const RECOVERY_INTERVAL: Duration = Duration::from_secs(5);

/// One recovery pass: finishes the checkouts a crash or a silent provider left PENDING for
/// longer than [`RECOVERY_DEADLINE`].
async fn recover(shop: &Storefront) {
    match shop.recover(RECOVERY_DEADLINE).await {
        Ok(report) if !report.errors.is_empty() => {
            tracing::warn!(
                orders = report.errors.len(),
                "recovery left orders for the next pass"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "recovery failed"),
    }
}

/// How often the outbox is looked at when it was empty.
const RELAY_INTERVAL: Duration = Duration::from_secs(1);

/// Delivers the outbox, at least once and in order per order, for as long as the shop runs;
/// delivered events leave the outbox, so it holds only what is still to deliver.
///
/// Without NATS the events go to the checkout's effects in the process (a paid order's units
/// leave its cart, its co-purchases are counted). With NATS (`--nats-url`) they are published
/// to the shop's JetStream stream, and the effects consume `OrderConfirmed` from it with the
/// durable consumer `shop-effects`, like any other service (the shipping service, analytics).
fn spawn_relay(state: &AppState, events: Option<EventStream>) -> tokio::task::JoinHandle<()> {
    let outbox = state.shop.outbox().clone();
    let relay = match &events {
        Some(stream) => {
            OutboxRelay::publishing(outbox, Arc::new(JetStreamPublisher::new(stream.clone())))
        }
        None => OutboxRelay::new(outbox, Arc::new(state.shop.effects())),
    }
    .poll_interval(RELAY_INTERVAL);
    let relaying = tokio::spawn(async move { relay.run().await });
    if let Some(stream) = events {
        let effects = state.shop.effects();
        tokio::spawn(async move {
            let filter = stream.subject("order", "order_confirmed");
            loop {
                match EventConsumer::durable(&stream, "shop-effects", &filter).await {
                    Ok(consumer) => consumer.run(&effects).await,
                    Err(e) => {
                        tracing::warn!(error = %e, "the effects consumer could not start; retrying");
                        tokio::time::sleep(RELAY_INTERVAL).await;
                    }
                }
            }
        });
    }
    relaying
}

/// Runs `task` at `first`, then every `period` (a late run delays the next ones rather than
/// bunching them up), in a task of its own for as long as the shop runs.
fn every<F, Fut>(first: tokio::time::Instant, period: Duration, mut task: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(first, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            task().await;
        }
    });
}

/// Runs recovery every [`RECOVERY_INTERVAL`] (the first pass runs before serving, in `run`).
fn spawn_recovery(state: &AppState) {
    let shop = state.shop.clone();
    let first = tokio::time::Instant::now() + RECOVERY_INTERVAL;
    every(first, RECOVERY_INTERVAL, move || {
        let shop = shop.clone();
        async move { recover(&shop).await }
    });
}

/// How often expired sessions are swept from the session store.
const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Sweeps expired sessions now and every [`SESSION_SWEEP_INTERVAL`] (they are never served
/// anyway).
fn spawn_session_sweep(state: &AppState) {
    let sessions = state.sessions.clone();
    every(
        tokio::time::Instant::now(),
        SESSION_SWEEP_INTERVAL,
        move || {
            let sessions = sessions.clone();
            async move {
                if let Err(e) = sessions.delete_expired().await {
                    tracing::warn!(error = %e, "sweeping expired sessions failed");
                }
            }
        },
    );
}

/// How often the search index is rebuilt from the catalog, so that equal matches rank by
/// what sells now (and in-stock flags follow sales).
const SEARCH_REFRESH_INTERVAL: Duration = Duration::from_secs(600);

/// Rebuilds the search index every [`SEARCH_REFRESH_INTERVAL`].
fn spawn_search_refresh(state: &AppState) {
    let shop = state.shop.clone();
    let first = tokio::time::Instant::now() + SEARCH_REFRESH_INTERVAL;
    every(first, SEARCH_REFRESH_INTERVAL, move || {
        let shop = shop.clone();
        async move {
            if let Err(e) = shop.rebuild_search_index().await {
                tracing::warn!(error = %e, "refreshing the search index failed");
            }
        }
    });
}

/// What a shop does before it takes orders, and keeps doing: settle what the last run left
/// unfinished, then run recovery, the outbox relay, the session sweep and the search refresh in
/// the background.
async fn open_for_business(state: &AppState, events: Option<EventStream>) {
    recover(&state.shop).await;
    spawn_recovery(state);
    let _relay = spawn_relay(state, events);
    spawn_session_sweep(state);
    spawn_search_refresh(state);
}

async fn run(args: Args) -> Result<(), BoxError> {
    let config = BackendConfig {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url,
        redis_url: args.redis_url,
        redis_prefix: "shop".to_owned(),
        catalog_freshness: Duration::from_secs(30),
        demo_products: args.demo_products,
        progress: true,
    };
    println!("Opening the shop: {}", config.describe());
    let state = build(&config, &secret(&args.data_dir)?).await?;
    let events = match &args.nats_url {
        Some(url) => {
            let stream = EventStream::connect(url, "SHOP", "shop").await?;
            println!("Events go to NATS at {url}, stream SHOP, subjects shop.>");
            Some(stream)
        }
        None => None,
    };
    open_for_business(&state, events).await;
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("listening on {}: {e}", args.addr))?;
    println!(
        "The shop is open at http://{}/ (Ctrl-C to stop)",
        listener.local_addr()?
    );
    let timeouts = state.timeouts;
    serve::serve(listener, app::router(state), timeouts, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}

/// The shop allocates per request (JSON, HTML, session records) on every worker thread;
/// mimalloc's thread-local free lists serve that with less work than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // One line per request and whatever the shop reports; `RUST_LOG` says more or less
    // (`RUST_LOG=debug`, `RUST_LOG=warn`, `RUST_LOG=shop=debug,tower_http=warn`).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
