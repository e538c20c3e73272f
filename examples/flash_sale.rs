//! Run with: `cargo run --release --example flash_sale [-- DATABASE_URL]`
//!
//! A flash sale: 2,000 shoppers press "Pay" at the same moment for 50 units of one product.
//! Exactly 50 orders succeed, everyone else is told it sold out, nobody is charged for stock
//! that is not there, and the stock ledger adds up. In memory by default; pass a
//! `postgres://`, `mysql://` or `sqlite://...?mode=rwc` URL to run the same sale on SQL.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use ecommerce::catalog::{Category, Product, Variant};
use ecommerce::error::CheckoutError;
use ecommerce::id::{CategoryId, CustomerId, IdempotencyKey, ProductId, Sku};
use ecommerce::order::OrderStatus;
use ecommerce::payment::{PaymentMethod, PaymentStatus, TestGateway};
use ecommerce::{CheckoutRequest, Currency, Money, Storefront};
use ecommerce_sqlx::SqlStores;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const SHOPPERS: usize = 2_000;
const UNITS: u32 = 50;

#[derive(Debug, Default)]
struct Tally {
    confirmed: usize,
    sold_out: usize,
    other: BTreeMap<String, usize>,
}

async fn shop(url: Option<&str>, gateway: Arc<TestGateway>) -> Result<Storefront> {
    Ok(match url {
        None => Storefront::in_memory(gateway),
        Some(url) => SqlStores::connect(url).await?.storefront(gateway)?,
    })
}

/// One shopper: a cart with one unit, then "Pay".
async fn buy(shop: &Storefront, sku: &Sku) -> std::result::Result<OrderStatus, CheckoutError> {
    let cart = shop.create_guest_cart().await?;
    shop.add_item(cart.id, sku, 1).await?;
    let order = shop
        .place_order(CheckoutRequest::new(
            cart.id,
            CustomerId::new(),
            PaymentMethod::new("tok_approve").expect("valid token"),
            IdempotencyKey::new(uuid::Uuid::new_v4().to_string()).expect("valid key"),
        ))
        .await?;
    Ok(order.order().status)
}

#[tokio::main]
async fn main() -> Result<()> {
    let url = std::env::args().nth(1);
    let gateway = Arc::new(TestGateway::default());
    let shop = Arc::new(shop(url.as_deref(), gateway.clone()).await?);

    // The product on sale, with a SKU of its own for each run.
    let sku = Sku::new(format!("SALE-{}", uuid::Uuid::new_v4().simple()))?;
    let category = CategoryId::new("deals")?;
    shop.upsert_category(Category::new(category.clone(), "Deals"))
        .await?;
    shop.upsert_product(
        Product::new(ProductId::new(), "Limited Edition Sneakers", category)
            .with_description("Fifty pairs, one morning.")
            .with_brand("Stride")
            .with_variants([Variant::new(
                sku.clone(),
                Money::from_minor(12_900, Currency::USD),
            )]),
    )
    .await?;
    shop.receive_stock(&sku, UNITS).await?;
    println!(
        "{SHOPPERS} shoppers, {UNITS} units of {sku}, on {}",
        url.as_deref()
            .map_or("memory", |u| u.split(':').next().unwrap_or(u))
    );

    // Everyone at once.
    let started = Instant::now();
    let buyers: Vec<_> = (0..SHOPPERS)
        .map(|_| {
            let (shop, sku) = (shop.clone(), sku.clone());
            tokio::spawn(async move { buy(&shop, &sku).await })
        })
        .collect();
    let mut tally = Tally::default();
    for buyer in buyers {
        match buyer.await? {
            Ok(OrderStatus::Confirmed) => tally.confirmed += 1,
            Err(CheckoutError::OutOfStock { .. }) => tally.sold_out += 1,
            Ok(status) => *tally.other.entry(format!("{status:?}")).or_default() += 1,
            Err(e) => *tally.other.entry(e.to_string()).or_default() += 1,
        }
    }
    let elapsed = started.elapsed();

    let stock = shop.stock(&sku).await?;
    let charged = gateway
        .charges()
        .iter()
        .filter(|c| c.status == PaymentStatus::Succeeded)
        .count();
    println!(
        "{} orders confirmed, {} shoppers told it sold out, in {:.2?} ({:.0} checkouts/s)",
        tally.confirmed,
        tally.sold_out,
        elapsed,
        SHOPPERS as f64 / elapsed.as_secs_f64()
    );
    println!(
        "stock now: {} on hand, {} reserved, {} sold; {charged} payments taken",
        stock.on_hand, stock.reserved, stock.sold
    );
    for (outcome, n) in &tally.other {
        println!("  {n} x {outcome}");
    }
    let exact = tally.confirmed == UNITS as usize
        && stock.sold == UNITS
        && stock.on_hand == 0
        && stock.reserved == 0
        && charged == tally.confirmed
        && tally.other.is_empty();
    if exact {
        println!("Exactly {UNITS} orders for {UNITS} units: no oversell.");
        Ok(())
    } else {
        Err(format!("OVERSOLD or lost: {tally:?}, stock {stock:?}, {charged} charges").into())
    }
}
