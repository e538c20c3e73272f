//! Run with: `cargo run --example quickstart`
//!
//! A whole shop in memory, read top to bottom: stock a catalog, browse and search it, fill a
//! guest cart, sign in (the guest cart merges into the customer's), check out, pay (once
//! directly, once through 3-D Secure and a signed webhook), see the order history and
//! "customers also bought", and watch the oversell guard turn away a buyer.

use std::sync::Arc;

use chrono::Utc;
use ecommerce::catalog::{Category, Product, Variant};
use ecommerce::error::CheckoutError;
use ecommerce::events::{FanOut, OutboxRelay};
use ecommerce::id::{CategoryId, CustomerId, IdempotencyKey, ProductId, Sku};
use ecommerce::memory::RecordingSink;
use ecommerce::payment::{PaymentMethod, TestGateway};
use ecommerce::search::{SearchQuery, SortOrder};
use ecommerce::{CheckoutRequest, Currency, Money, Placed, Storefront};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn sku(s: &str) -> Result<Sku> {
    Ok(Sku::new(s)?)
}

fn product(title: &str, brand: &str, category: &str, variants: &[(&str, i64)]) -> Result<Product> {
    let variants = variants
        .iter()
        .map(|(s, cents)| {
            Ok(Variant::new(
                sku(s)?,
                Money::from_minor(*cents, Currency::USD),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(
        Product::new(ProductId::new(), title, CategoryId::new(category)?)
            .with_description(format!("{title} by {brand}."))
            .with_brand(brand)
            .with_variants(variants),
    )
}

#[tokio::main]
async fn main() -> Result<()> {
    // 1. A shop: every store in memory, and the test payment gateway.
    let gateway = Arc::new(TestGateway::default());
    let shop = Storefront::in_memory(gateway.clone());

    // 2. A catalog with stock.
    for (id, name) in [("audio", "Audio"), ("kitchen", "Kitchen")] {
        shop.upsert_category(Category::new(CategoryId::new(id)?, name))
            .await?;
    }
    let catalog = [
        product(
            "Wireless Headphones",
            "Sonic",
            "audio",
            &[("HP-BLACK", 19_900)],
        )?,
        product("Bluetooth Speaker", "Sonic", "audio", &[("SPK-1", 4_900)])?,
        product("Headphone Stand", "Deskly", "audio", &[("STAND-1", 2_500)])?,
        product("Electric Kettle", "Boil", "kitchen", &[("KET-1", 2_900)])?,
    ];
    for p in &catalog {
        shop.upsert_product(p.clone()).await?;
    }
    for (s, units) in [("HP-BLACK", 5), ("SPK-1", 10), ("STAND-1", 8), ("KET-1", 1)] {
        shop.receive_stock(&sku(s)?, units).await?;
    }

    // 3. Browse a category, and search with a typo and a half-typed word.
    println!("== browse: audio");
    let page = shop
        .products(Some(CategoryId::new("audio")?), None, 10)
        .await?;
    for p in &page.items {
        println!(
            "  {:<22} from {}",
            p.title,
            p.min_price().map_or_else(String::new, |m| m.to_string())
        );
    }
    println!("== search: \"hedphones\" (a typo), then \"spea\" (as you type)");
    for text in ["hedphones", "spea"] {
        let results = shop.search(&SearchQuery::text(text)).await?;
        for hit in &results.hits {
            println!("  {text:>10} -> {} ({})", hit.title, hit.price);
        }
    }
    let faceted = shop
        .search(
            &SearchQuery::default()
                .with_facets(true)
                .with_sort(SortOrder::PriceAscending),
        )
        .await?;
    if let Some(facets) = faceted.facets {
        let brands: Vec<String> = facets
            .brand
            .iter()
            .map(|f| format!("{} ({})", f.value, f.count))
            .collect();
        println!("  brands: {}", brands.join(", "));
    }

    // 4. A guest fills a cart; prices come from the catalog, never from the caller.
    println!("== cart");
    let guest_cart = shop.create_guest_cart().await?;
    shop.add_item(guest_cart.id, &sku("HP-BLACK")?, 1).await?;
    shop.add_item(guest_cart.id, &sku("STAND-1")?, 1).await?;
    match shop.add_item(guest_cart.id, &sku("STAND-1")?, 500).await {
        Err(e) => println!("  refused: {e}"),
        Ok(_) => println!("  (unexpected: 500 stands accepted)"),
    }

    // 5. The guest signs in: the cart merges into the customer's persistent cart.
    let alice = CustomerId::new();
    let merged = shop.merge_guest_cart(guest_cart.id, alice).await?;
    let cart = merged.cart;
    for line in &cart.lines {
        println!("  {} x{} at {}", line.title, line.quantity, line.unit_price);
    }
    if let Some(subtotal) = cart.subtotal()? {
        println!("  subtotal {subtotal}");
    }

    // 6. Check out and pay.
    println!("== checkout");
    let placed = shop
        .place_order(CheckoutRequest::new(
            cart.id,
            alice,
            PaymentMethod::new("tok_approve")?,
            IdempotencyKey::new("alice-checkout-1")?,
        ))
        .await?;
    let Placed::Confirmed(order) = placed else {
        return Err("the approving test card confirms at once".into());
    };
    println!("  order {} is {} ({})", order.id, order.status, order.total);

    // 7. A second order paid through 3-D Secure: pending until the provider's signed webhook.
    let cart = shop.customer_cart(alice).await?;
    shop.add_item(cart.id, &sku("SPK-1")?, 2).await?;
    let Placed::AwaitingPayment(pending) = shop
        .place_order(CheckoutRequest::new(
            cart.id,
            alice,
            PaymentMethod::new("tok_pending")?,
            IdempotencyKey::new("alice-checkout-2")?,
        ))
        .await?
    else {
        return Err("the 3-D Secure test card waits for the customer".into());
    };
    println!(
        "  order {} is {} (waiting for 3-D Secure)",
        pending.id, pending.status
    );
    let payment = pending.payment.clone().ok_or("a pending payment")?;
    let webhook = gateway.complete(&payment.id, true)?;
    let event =
        gateway
            .verifier()
            .payment_event(&webhook.signature, &webhook.payload, Utc::now())?;
    let confirmed = shop.handle_payment_event(event).await?;
    println!(
        "  webhook verified: order {} is {}",
        confirmed.id, confirmed.status
    );

    // 8. Bob buys headphones and a speaker: co-purchases feed "customers also bought".
    let bob = CustomerId::new();
    let bob_cart = shop.customer_cart(bob).await?;
    shop.add_item(bob_cart.id, &sku("HP-BLACK")?, 1).await?;
    shop.add_item(bob_cart.id, &sku("SPK-1")?, 1).await?;
    shop.place_order(CheckoutRequest::new(
        bob_cart.id,
        bob,
        PaymentMethod::new("tok_approve")?,
        IdempotencyKey::new("bob-checkout-1")?,
    ))
    .await?;

    // 9. Two buyers, one kettle: the oversell guard sells it once.
    println!("== one kettle, two buyers");
    for (i, buyer) in [CustomerId::new(), CustomerId::new()]
        .into_iter()
        .enumerate()
    {
        let c = shop.customer_cart(buyer).await?;
        shop.add_item(c.id, &sku("KET-1")?, 1).await?;
        let result = shop
            .place_order(CheckoutRequest::new(
                c.id,
                buyer,
                PaymentMethod::new("tok_approve")?,
                IdempotencyKey::new(format!("kettle-{i}"))?,
            ))
            .await;
        match result {
            Ok(placed) => println!("  buyer {}: {}", i + 1, placed.order().status),
            Err(CheckoutError::OutOfStock { shortages, .. }) => println!(
                "  buyer {}: out of stock ({} requested {}, available {})",
                i + 1,
                shortages[0].sku,
                shortages[0].requested,
                shortages[0].available
            ),
            Err(e) => return Err(e.into()),
        }
    }
    let kettle = shop.stock(&sku("KET-1")?).await?;
    println!(
        "  kettle stock: on hand {}, reserved {}, sold {}",
        kettle.on_hand, kettle.reserved, kettle.sold
    );

    // 10. Order history, newest first.
    println!("== alice's orders");
    let history = shop.order_history(alice, None, 10).await?;
    for o in &history.items {
        let items: Vec<String> = o
            .lines
            .iter()
            .map(|l| format!("{} x{}", l.sku, l.quantity))
            .collect();
        println!(
            "  {} {:<9} {:>12}  {}",
            o.created_at.format("%H:%M:%S"),
            o.status,
            o.total.to_string(),
            items.join(", ")
        );
    }

    // 11. Events for shipping and analytics, delivered at least once from the outbox; the
    //     checkout's own effects (co-purchase counts) are one of the sinks.
    let sink = Arc::new(RecordingSink::new());
    let delivered = OutboxRelay::new(
        shop.outbox().clone(),
        Arc::new(FanOut::new(vec![Arc::new(shop.effects()), sink.clone()])),
    )
    .drain()
    .await?;
    println!("== {delivered} events delivered to the sink");

    // 12. Customers who bought the headphones also bought...
    println!("== customers who bought HP-BLACK also bought");
    for also in shop.also_bought(&sku("HP-BLACK")?, 3).await? {
        println!("  {} ({} orders)", also.sku, also.count);
    }
    Ok(())
}
