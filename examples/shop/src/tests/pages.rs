//! The pages as a shopper's browser gets them: product images on every card, on the product
//! page and in the cart, served as SVG; text from the catalog escaped on pages and in
//! images; category names in the search facets; and a product page that always suggests
//! other products.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ecommerce::catalog::{Category, Product, Variant};
use ecommerce::error::EventError;
use ecommerce::event_stream::fulfilment::{Carrier, Fulfilment, Handled, Shipment};
use ecommerce::events::{DomainEvent, EventEnvelope};
use ecommerce::id::{CategoryId, OrderId, ProductId, Sku};
use ecommerce::money::{Currency, Money};
use ecommerce::order::Order;
use reqwest::StatusCode;

use super::TestShop;
use super::api::{add, pay};

/// A page's status, `Content-Type` and text.
async fn fetch(client: &reqwest::Client, url: String) -> (StatusCode, String, String) {
    let res = client.get(url).send().await.unwrap();
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, res.text().await.unwrap())
}

/// The "also bought" section of a product page.
fn also_bought(page: &str) -> &str {
    let start = page
        .find(r#"<section id="also-bought""#)
        .unwrap_or_else(|| panic!("no also-bought section: {page}"));
    let end = start + page[start..].find("</section>").expect("the section ends");
    &page[start..end]
}

/// The products a page section links to.
fn linked_products(html: &str) -> Vec<ProductId> {
    html.split(r#"href="/product/"#)
        .skip(1)
        .map(|rest| rest[..36].parse().expect("a product id"))
        .collect()
}

/// A product alone in a new category, whose title, brand and category name are made of
/// markup.
async fn markup_product(shop: &TestShop) -> Product {
    let category = Category::new(
        CategoryId::new("lamps-and-lights").unwrap(),
        "Lamps & Lights",
    );
    shop.state
        .shop
        .upsert_category(category.clone())
        .await
        .unwrap();
    let product = Product::new(
        ProductId::new(),
        r#"<script>alert("pwned")</script> Quokkalight lantern"#,
        category.id,
    )
    .with_description("A lantern <b>not</b> in bold.")
    .with_brand("Glow & <i>Co</i>")
    .with_variants([Variant::new(
        Sku::new("QUOKKA-LANTERN").unwrap(),
        Money::from_minor(2_500, Currency::USD),
    )
    .with_option("color", "<red>")]);
    shop.state
        .shop
        .upsert_product(product.clone())
        .await
        .unwrap();
    product
}

#[tokio::test]
async fn product_images_show_on_cards_product_pages_and_cart_lines() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (product, sku, _, title) = shop.in_stock(1).await;
    let image = format!("/images/products/{product}.svg");

    let (status, _, page) = fetch(&ann, shop.at(&format!("/product/{product}"))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!(r#"<img class="product-image" src="{image}""#)),
        "{page}"
    );

    let res = ann.get(shop.at(&image)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let cache = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cache.contains("max-age="), "{cache}");
    let svg = res.text().await.unwrap();
    assert!(
        svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#),
        "{svg}"
    );
    assert!(svg.ends_with("</svg>"), "{svg}");
    assert!(svg.contains(&title.replace('&', "&amp;")), "{svg}");
    let (_, _, again) = fetch(&ann, shop.at(&image)).await;
    assert_eq!(again, svg, "the same product, the same image");

    // Cards: the home page, the product's category, its search hit.
    let category = shop
        .state
        .shop
        .product(product)
        .await
        .unwrap()
        .unwrap()
        .category;
    let (_, _, home) = fetch(&ann, shop.at("/")).await;
    assert!(
        home.contains(r#"<img class="thumb" src="/images/products/"#),
        "{home}"
    );
    let (_, _, listing) = fetch(&ann, shop.at(&format!("/category/{category}"))).await;
    assert!(
        listing.contains(r#"<img class="thumb" src="/images/products/"#),
        "{listing}"
    );
    let query = crate::html::encoded(&title).to_string();
    let (_, _, results) = fetch(&ann, shop.at(&format!("/search?q={query}"))).await;
    assert!(results.contains(&format!(r#"src="{image}""#)), "{results}");

    // The cart line shows the product's image and links to its page.
    add(&shop, &ann, &sku, 1).await;
    let (_, _, cart) = fetch(&ann, shop.at("/cart")).await;
    assert!(cart.contains(&format!(r#"src="{image}""#)), "{cart}");
    assert!(
        cart.contains(&format!(r#"href="/product/{product}""#)),
        "{cart}"
    );
}

#[tokio::test]
async fn images_of_unknown_or_unlisted_products_are_not_found() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (product, _, _, _) = shop.in_stock(1).await;
    for path in [
        format!("/images/products/{}.svg", ProductId::new()),
        "/images/products/not-an-id.svg".to_owned(),
        format!("/images/products/{product}.png"),
        format!("/images/products/{product}"),
    ] {
        let (status, content_type, body) = fetch(&ann, shop.at(&path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(content_type.starts_with("text/html"), "{path}");
        assert!(body.contains(r#"data-code="not_found""#), "{body}");
        assert!(body.contains("image not found"), "{body}");
    }

    // A product taken off sale has no image either.
    let mut unlisted = shop.state.shop.product(product).await.unwrap().unwrap();
    unlisted.published = false;
    shop.state.shop.upsert_product(unlisted).await.unwrap();
    let (status, _, _) = fetch(&ann, shop.at(&format!("/images/products/{product}.svg"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn catalog_text_is_escaped_on_the_product_page_and_in_its_image() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let product = markup_product(&shop).await;

    let (status, _, page) = fetch(&ann, shop.at(&format!("/product/{}", product.id))).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        page.matches("<script").count(),
        1,
        "only the shop's own script: {page}"
    );
    assert!(!page.contains("<b>") && !page.contains("<i>") && !page.contains("<red>"));
    let title = "&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; Quokkalight lantern";
    assert!(
        page.contains(&format!(r#"<h1 id="product-title">{title}</h1>"#)),
        "{page}"
    );
    assert!(page.contains(&format!(r#"alt="{title}""#)), "{page}");
    assert!(page.contains("Glow &amp; &lt;i&gt;Co&lt;/i&gt;"), "{page}");
    assert!(
        page.contains("A lantern &lt;b&gt;not&lt;/b&gt; in bold."),
        "{page}"
    );
    assert!(page.contains("color: &lt;red&gt;"), "{page}");
    // The product page names the category and links to it by id.
    assert!(
        page.contains(r#"<a href="/category/lamps-and-lights">Lamps &amp; Lights</a>"#),
        "{page}"
    );
    assert!(
        page.contains(&format!("<title>{title} · Demo Shop</title>")),
        "{page}"
    );

    let (status, content_type, svg) = fetch(
        &ann,
        shop.at(&format!("/images/products/{}.svg", product.id)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "image/svg+xml");
    assert_eq!(svg.matches('<').count(), svg.matches('>').count());
    assert!(!svg.contains("<script") && !svg.contains("<i>"), "{svg}");
    assert!(svg.contains(&format!("{title}</title>")), "{svg}");
    assert!(
        svg.contains(">Glow &amp; &lt;i&gt;Co&lt;/i&gt;</text>"),
        "{svg}"
    );
}

#[tokio::test]
async fn search_facets_show_category_names_and_filter_by_id() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    markup_product(&shop).await;

    // The index takes the new product in shortly.
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let (status, _, page) = fetch(&ann, shop.at("/search?q=Quokkalight")).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        if page.contains(r#"<p id="result-count">1 products</p>"#) {
            break page;
        }
        assert!(Instant::now() < deadline, "not found by search: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let facet = r#"<a class="facet" href="/search?q=Quokkalight&amp;category=lamps-and-lights">Lamps &amp; Lights</a>"#;
    assert!(page.contains(facet), "{page}");
    assert!(!page.contains(">lamps-and-lights</a>"), "{page}");

    // The link filters by the category's id.
    let (status, _, filtered) = fetch(
        &ann,
        shop.at("/search?q=Quokkalight&category=lamps-and-lights"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        filtered.contains(r#"<p id="result-count">1 products</p>"#),
        "{filtered}"
    );

    // The demo catalog's categories are named too.
    let (_, _, audio) = fetch(&ann, shop.at("/search?q=headphones")).await;
    assert!(audio.contains("&amp;category=audio\">Audio</a>"), "{audio}");
}

#[tokio::test]
async fn every_product_page_suggests_other_products() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();

    // A fresh shop has no co-purchases: every page suggests products of its category.
    let mut after = None;
    let mut pages = 0;
    loop {
        let listing = shop.state.shop.products(None, after, 100).await.unwrap();
        for product in &listing.items {
            let (status, _, page) = fetch(&ann, shop.at(&format!("/product/{}", product.id))).await;
            assert_eq!(status, StatusCode::OK, "{page}");
            let section = also_bought(&page);
            let linked = linked_products(section);
            assert!(!linked.is_empty(), "{section}");
            assert!(!linked.contains(&product.id), "{section}");
            pages += 1;
        }
        match listing.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert!(pages >= 100, "{pages} product pages");

    // A product alone in its category suggests others of the catalog.
    let alone = markup_product(&shop).await;
    let (_, _, page) = fetch(&ann, shop.at(&format!("/product/{}", alone.id))).await;
    let section = also_bought(&page);
    assert!(section.contains(r#"data-source="similar""#), "{section}");
    assert!(!linked_products(section).is_empty(), "{section}");

    // Once bought together, a product suggests what was bought with it.
    let (first, first_sku, _, _) = shop
        .in_stock_where(1, |p, v| p.variants[0].sku == v.sku)
        .await;
    let (second, second_sku, _, _) = shop
        .in_stock_where(1, |p, v| p.id != first && p.variants[0].sku == v.sku)
        .await;
    add(&shop, &ann, &first_sku, 1).await;
    add(&shop, &ann, &second_sku, 1).await;
    let (status, order) = pay(&shop, &ann, "tok_approve").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, _, page) = fetch(&ann, shop.at(&format!("/product/{first}"))).await;
        let section = also_bought(&page);
        if section.contains(r#"data-source="also_bought""#) {
            assert!(section.contains("Customers also bought"), "{section}");
            assert_eq!(linked_products(section), vec![second], "{section}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no co-purchases shown: {section}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A carrier for the test: every order's parcel has the same tracking number.
#[derive(Debug)]
struct Courier;

#[async_trait::async_trait]
impl Carrier for Courier {
    async fn shipment(&self, order: &Order) -> Result<Shipment, EventError> {
        Ok(Shipment {
            order: order.id,
            tracking: "TRK-1".into(),
        })
    }
}

#[tokio::test]
async fn an_order_shipped_by_the_shipping_service_shows_as_shipped() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    let (_, sku, _, _) = shop.in_stock(1).await;
    add(&shop, &ann, &sku, 1).await;
    let (status, order) = pay(&shop, &ann, "tok_approve").await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let id: OrderId = order["id"].as_str().unwrap().parse().unwrap();
    let page = shop.at(&format!("/orders/{id}"));
    let (_, _, before) = fetch(&ann, page.clone()).await;
    assert!(
        before.contains(r#"<strong id="order-status">Confirmed</strong>"#),
        "{before}"
    );

    // What the shipping service does with the order's OrderConfirmed event, twice (a
    // redelivery): shipped once, and the shopper sees it.
    let placed = shop.state.shop.order(id).await.unwrap().unwrap();
    let confirmed = EventEnvelope::new(DomainEvent::OrderConfirmed {
        order: id,
        customer: placed.customer,
        lines: vec![(sku.clone(), 1)],
        total: placed.total,
        cart: Some(placed.cart),
    });
    let shipping = Fulfilment::new((*shop.state.shop).clone(), Arc::new(Courier));
    assert!(matches!(
        shipping.handle(&confirmed).await.unwrap(),
        Handled::Shipped(_)
    ));
    assert_eq!(
        shipping.handle(&confirmed).await.unwrap(),
        Handled::AlreadyShipped
    );
    let (_, _, after) = fetch(&ann, page).await;
    assert!(
        after.contains(r#"<strong id="order-status">Shipped</strong>"#),
        "{after}"
    );
    let (_, _, history) = fetch(&ann, shop.at("/orders")).await;
    assert!(history.contains("Shipped"), "{history}");
}

#[tokio::test]
async fn a_search_that_finds_nothing_offers_one_that_does() {
    let shop = TestShop::start().await;
    let ann = shop.shopper();
    // A title word of seven or eight letters, typed with two letters missing: beyond the
    // typo allowance of a six-letter word, within reach of a suggestion.
    let listing = shop.state.shop.products(None, None, 100).await.unwrap();
    let word = listing
        .items
        .iter()
        .flat_map(|p| p.title.split(' '))
        .find(|w| (7..=8).contains(&w.len()) && w.chars().all(|c| c.is_ascii_lowercase()))
        .expect("a lowercase title word of seven or eight letters")
        .to_owned();
    let typed: String = word
        .chars()
        .enumerate()
        .filter(|(i, _)| *i != 1 && *i != 3)
        .map(|(_, c)| c)
        .collect();
    let (status, _, page) = fetch(&ann, shop.at(&format!("/search?q={typed}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains(r#"<p id="result-count">0 products</p>"#),
        "{typed} ({word}) found something: {page}"
    );
    let at = page
        .find(r#"id="did-you-mean""#)
        .unwrap_or_else(|| panic!("no suggestion for {typed}: {page}"));
    let href = page[at..]
        .split(r#"href=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link");
    let (status, _, results) = fetch(&ann, shop.at(href)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !results.contains(r#"<p id="result-count">0 products</p>"#),
        "{results}"
    );
    // A query that finds something offers nothing.
    let (_, _, found) = fetch(&ann, shop.at(&format!("/search?q={word}"))).await;
    assert!(!found.contains("did-you-mean"), "{found}");
}
