//! A shopper in headless Chromium, driven over WebDriver (fantoccini) by chromedriver: browse a
//! category, search with suggestions, add to the cart, apply a discount code, give an address,
//! choose shipping, pay (once at once, once through 3-D Secure), and find the orders in the
//! history. Screenshots go to `target/shop-screenshots/`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use tokio::process::{Child, Command};

use super::TestShop;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long the browser is given to show what a step expects.
const PATIENCE: Duration = Duration::from_secs(10);

/// A WebDriver session in headless Chromium, and the chromedriver serving it.
struct Browser {
    client: Client,
    _driver: Child,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium, or `None` when they are not installed
    /// (unless the run requires every service).
    async fn start() -> Option<Browser> {
        if !std::path::Path::new(CHROMEDRIVER).exists() {
            assert!(
                std::env::var("ECOMMERCE_TEST_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "{CHROMEDRIVER} is missing and ECOMMERCE_TEST_REQUIRE_SERVICES=1 (install the chromium and chromium-driver packages)"
            );
            eprintln!("skipped: {CHROMEDRIVER} not installed");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--no-first-run", "--window-size=1280,1000"]
            }
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(client) => break client,
                Err(e) => assert!(Instant::now() < deadline, "chromedriver did not start: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        Some(Browser {
            client,
            _driver: driver,
        })
    }

    async fn go(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    async fn url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// Waits until the page's path ends with `suffix` (a click that navigates returns before
    /// the next page is there).
    async fn wait_for_path(&self, suffix: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let url = self.client.current_url().await.unwrap();
            if url.path().ends_with(suffix) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still on {url}, not on *{suffix}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The elements matching a CSS selector, once there is at least one.
    async fn all(&self, css: &str) -> Vec<Element> {
        self.find(css).await;
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    /// The first element matching `css`, waiting for it.
    async fn find(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no element {css} on {}: {e}", self.url().await),
        }
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.unwrap();
    }

    async fn clear(&self, css: &str) {
        self.find(css).await.clear().await.unwrap();
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/shop-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn quit(self) {
        let _ = self.client.close().await;
    }
}

/// Fills the checkout's address form with a Texas address and this postal code.
async fn fill_address(browser: &Browser, postal_code: &str) {
    for (field, value) in [
        ("#email", "grace@example.com"),
        ("#name", "Grace Hopper"),
        ("#line1", "1 Congress Ave"),
        ("#city", "Austin"),
        ("#region", "TX"),
        ("#postal_code", postal_code),
    ] {
        browser.type_into(field, value).await;
    }
}

#[tokio::test]
async fn a_shopper_browses_searches_pays_and_sees_the_order() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let shop = TestShop::start().await;
    let (product, _, _, title) = shop.in_stock(1).await;

    // Browse: the home page, a category, a product.
    browser.go(&shop.at("/")).await;
    browser.click("a.category").await;
    browser.find(".product a").await;
    assert!(browser.url().await.contains("/category/"));
    browser.find(".product a").await;

    // Search: suggestions appear while typing, then the results page finds the product.
    let brand = title.split(' ').next().unwrap();
    browser.type_into("#q", &brand[..brand.len().min(4)]).await;
    browser.find("#suggestions option").await;
    browser.clear("#q").await;
    browser.type_into("#q", &title).await;
    browser.click("#search-button").await;
    browser.find("#result-count").await;
    browser.screenshot("search.png").await;
    browser
        .click(&format!(r#".hit a[href="/product/{product}"]"#))
        .await;
    assert_eq!(browser.text("#product-title").await, title);
    // The product's image, and other products to look at.
    browser.find(".product-image").await;
    assert!(!browser.all("#also-bought a").await.is_empty());
    browser.screenshot("product.png").await;

    // Cart, then checkout: address, shipping method, review with shipping and tax, pay with
    // the approving test card.
    browser.click(".add-to-cart").await;
    browser.wait_for_path("/cart").await;
    assert_eq!(browser.all(".cart-line").await.len(), 1);
    // A code that does not exist is refused and says so; WELCOME10 takes 10 % off.
    browser.type_into("#coupon-code", "NOPE").await;
    browser.click("#apply-code").await;
    assert!(
        browser
            .text("[data-code=unknown_code]")
            .await
            .contains("NOPE")
    );
    browser.clear("#coupon-code").await;
    browser.type_into("#coupon-code", "welcome10").await;
    browser.click("#apply-code").await;
    assert!(browser.text(".cart-discount").await.contains("WELCOME10"));
    assert!(browser.text(".applied-code").await.contains("WELCOME10"));
    browser.screenshot("cart-with-code.png").await;
    browser.click("#checkout-button").await;
    // A postal code that is not a ZIP code is refused, and the form says so.
    fill_address(&browser, "ABCDE").await;
    browser.click("#to-shipping").await;
    assert!(
        browser
            .text("[data-code=invalid_address]")
            .await
            .contains("postal code")
    );
    browser.go(&shop.at("/checkout")).await;
    fill_address(&browser, "78701").await;
    browser.click("#to-shipping").await;
    assert!(browser.text("#ship-to").await.contains("Austin"));
    browser.click("#shipping-ground").await;
    browser.click("#to-review").await;
    assert!(browser.text("#quote-shipping").await.contains("Ground"));
    assert!(browser.text(".quote-tax").await.contains("Texas sales tax"));
    assert!(browser.text(".quote-discount").await.contains("WELCOME10"));
    let total = browser.text("#quote-total").await;
    browser.screenshot("review.png").await;
    browser.click("#pay").await;
    assert_eq!(browser.text("#order-status").await, "Confirmed");
    assert!(browser.text("#ship-to").await.contains("78701"));
    assert_eq!(
        browser.text("#quote-total").await,
        total,
        "charged what was reviewed"
    );
    assert!(browser.text(".quote-discount").await.contains("WELCOME10"));
    let order_url = browser.url().await;
    let order_id = order_url.rsplit('/').next().unwrap().to_owned();

    // Again with a card that asks for 3-D Secure: the test bank's page, then the signed
    // webhook confirms the order.
    browser.go(&shop.at(&format!("/product/{product}"))).await;
    browser.click(".add-to-cart").await;
    browser.click("#checkout-button").await;
    fill_address(&browser, "78701").await;
    browser.click("#to-shipping").await;
    browser.click("#to-review").await;
    browser.click(r#"input[value="tok_pending"]"#).await;
    browser.click("#pay").await;
    browser.click("#approve-3ds").await;
    assert_eq!(browser.text("#order-status").await, "Confirmed");

    // The history lists both, newest first.
    browser.click("#orders-link").await;
    browser.wait_for_path("/orders").await;
    let rows = browser.all(".order-row").await;
    assert_eq!(rows.len(), 2);
    let row = browser.text(".order-row:last-child").await;
    assert!(
        row.contains(&order_id) && row.contains("Confirmed"),
        "{row}"
    );
    let screenshot = browser.screenshot("order-history.png").await;
    eprintln!("screenshot: {}", screenshot.display());
    browser.quit().await;
}
