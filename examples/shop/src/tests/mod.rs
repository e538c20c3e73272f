//! The shop end to end: a real server on a free port, over the embedded default stores
//! (SQLite and a tantivy index in a temporary folder), driven through HTTP by the JSON API
//! tests and by headless Chromium.

mod api;
mod browser;
mod hardening;
mod money;
mod outage;
mod pages;

use std::path::PathBuf;

use ecommerce::catalog::{Product, Variant};
use ecommerce::id::{ProductId, Sku};
use tokio::task::JoinHandle;

use crate::app::{self, AppState};
use crate::backend::BackendConfig;

/// A running shop and the folder it keeps its data in (removed on drop).
pub(crate) struct TestShop {
    pub(crate) url: String,
    pub(crate) state: AppState,
    /// The prefix of the shop's Redis keys.
    pub(crate) redis_prefix: String,
    dir: PathBuf,
    server: JoinHandle<()>,
    /// The outbox relay, as the shop runs it (co-purchases are counted from its events).
    relay: JoinHandle<()>,
}

impl TestShop {
    pub(crate) async fn start() -> TestShop {
        let dir = std::env::temp_dir().join(format!("ecommerce-shop-{}", uuid::Uuid::new_v4()));
        TestShop::open(dir).await
    }

    /// A shop on these stores, with its data folder in a new temporary folder.
    pub(crate) async fn start_on(
        database_url: Option<String>,
        redis_url: Option<String>,
    ) -> TestShop {
        let dir = std::env::temp_dir().join(format!("ecommerce-shop-{}", uuid::Uuid::new_v4()));
        TestShop::open_with(dir, database_url, redis_url).await
    }

    /// Stops the server and opens the shop again on the same data, as a process that died
    /// and was started again would: with the startup recovery pass, and recovery and the
    /// outbox relay running in the background.
    pub(crate) async fn restart(mut self) -> TestShop {
        self.server.abort();
        let _ = (&mut self.server).await;
        let dir = std::mem::take(&mut self.dir);
        drop(self);
        let shop = TestShop::open(dir).await;
        // What a starting shop runs, its own relay among it.
        shop.relay.abort();
        crate::open_for_business(&shop.state, None).await;
        shop
    }

    async fn open(dir: PathBuf) -> TestShop {
        TestShop::open_with(dir, None, None).await
    }

    async fn open_with(
        dir: PathBuf,
        database_url: Option<String>,
        redis_url: Option<String>,
    ) -> TestShop {
        let redis_prefix = format!("shop-test-{}", uuid::Uuid::new_v4().simple());
        let config = BackendConfig {
            data_dir: dir.clone(),
            database_url,
            redis_url,
            redis_prefix: redis_prefix.clone(),
            // Every read asks the database, so an outage shows at once.
            catalog_freshness: std::time::Duration::ZERO,
            demo_products: 120,
            progress: false,
        };
        let mut state = crate::build(&config, b"a test secret of at least thirty-two bytes")
            .await
            .expect("the shop opens on its embedded default");
        // Short enough that the slow-client tests wait a moment, long enough for a loaded
        // machine's honest requests.
        state.timeouts = app::Timeouts {
            headers: std::time::Duration::from_secs(2),
            body: std::time::Duration::from_secs(2),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = app::router(state.clone());
        let timeouts = state.timeouts;
        let server = tokio::spawn(crate::serve::serve(
            listener,
            router,
            timeouts,
            std::future::pending(),
        ));
        let relay = crate::spawn_relay(&state, None);
        TestShop {
            url,
            state,
            redis_prefix,
            dir,
            server,
            relay,
        }
    }

    /// A shopper: a client with its own cookie jar.
    pub(crate) fn shopper(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    pub(crate) fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// A published product with a variant that has at least `units` on hand.
    pub(crate) async fn in_stock(&self, units: u32) -> (ProductId, Sku, u32, String) {
        self.in_stock_where(units, |_, _| true).await
    }

    /// A published product with a variant that has at least `units` on hand and that `keep`
    /// accepts.
    pub(crate) async fn in_stock_where(
        &self,
        units: u32,
        keep: impl Fn(&Product, &Variant) -> bool,
    ) -> (ProductId, Sku, u32, String) {
        let shop = &self.state.shop;
        let mut after = None;
        loop {
            let page = shop.products(None, after, 100).await.unwrap();
            for product in &page.items {
                for variant in &product.variants {
                    let on_hand = shop
                        .stock(&variant.sku)
                        .await
                        .map(|s| s.on_hand)
                        .unwrap_or(0);
                    if variant.published && on_hand >= units && keep(product, variant) {
                        return (
                            product.id,
                            variant.sku.clone(),
                            on_hand,
                            product.title.clone(),
                        );
                    }
                }
            }
            after = Some(page.next.expect("the demo catalog has such stock"));
        }
    }
}

impl Drop for TestShop {
    fn drop(&mut self) {
        self.server.abort();
        self.relay.abort();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
