//! Delivery, shipping and tax checks: an order shipped to an address is charged exactly its
//! quote and keeps every amount; bad delivery details, stale shipping quotes and changed
//! prices are typed errors that store and charge nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use rust_decimal::Decimal;

use super::{Backend, Place, cart_with, key, product, request, sku, usd};
use crate::address::{Address, AddressInput, Email};
use crate::catalog::Product;
use crate::checkout::Delivery;
use crate::error::{CheckoutError, ShippingQuoteProblem};
use crate::id::{CartId, CustomerId};
use crate::order::OrderStatus;
use crate::payment::TestGateway;
use crate::quote::QuoteItem;
use crate::shipping::{
    Bracket, RateRule, ShippingMethod, ShippingOffer, ShippingQuote, Zone, ZoneTable,
};
use crate::storefront::{Storefront, StorefrontConfig};
use crate::tax::{TaxClass, TaxTable};

/// Texas: 8.25 % on standard goods, groceries untaxed, shipping untaxed. Ground by weight
/// (free from $200), express flat but not for bulky items. California ships but has no
/// rates in the table.
fn pricing_shop(backend: &Backend) -> (Storefront, Arc<TestGateway>) {
    let zones = ZoneTable::new(vec![
        Zone::new("Contiguous US", &["US"])
            .method(
                ShippingMethod::new(
                    "ground",
                    "Ground",
                    RateRule::ByWeight(vec![
                        Bracket {
                            up_to: 1_000,
                            amount: usd(599),
                        },
                        Bracket {
                            up_to: 5_000,
                            amount: usd(799),
                        },
                        Bracket {
                            up_to: 20_000,
                            amount: usd(1_299),
                        },
                    ]),
                )
                .free_over(usd(20_000))
                .taxed_as(None),
            )
            .method(
                ShippingMethod::new("express", "Express", RateRule::Flat(usd(2_499)))
                    .excluding("bulky")
                    .taxed_as(None),
            ),
    ]);
    let food = TaxClass::new("food").expect("class");
    let taxes = TaxTable::new()
        .rate(
            "US",
            Some("US-TX"),
            TaxClass::standard(),
            Decimal::new(825, 4),
            "Texas sales tax",
        )
        .rate("US", Some("US-TX"), food, Decimal::ZERO, "Texas food");
    let (builder, gateway) = backend.builder(StorefrontConfig::default());
    let shop = builder
        .shipping(Arc::new(zones))
        .tax(Arc::new(taxes))
        .build()
        .expect("every store is given");
    (shop, gateway)
}

/// `PRC-1` $19.99, 1.2 kg, standard; `PRC-2` $5.00, 500 g, food; `PRC-3` $50.00, 15 kg,
/// bulky. Ten of each.
async fn pricing_catalog(shop: &Storefront) -> Product {
    let mut p = product(
        "Kettle",
        &[("PRC-1", 1_999), ("PRC-2", 500), ("PRC-3", 5_000)],
    );
    p.variants[0].profile.weight_grams = 1_200;
    p.variants[1].profile.weight_grams = 500;
    p.variants[1].profile.tax_class = TaxClass::new("food").expect("class");
    p.variants[2].profile.weight_grams = 15_000;
    p.variants[2].profile.shipping_class = Some("bulky".into());
    shop.upsert_product(p.clone()).await.expect("product");
    for s in ["PRC-1", "PRC-2", "PRC-3"] {
        shop.receive_stock(&sku(s), 10).await.expect("receive");
    }
    p
}

fn texas(line1: &str) -> Address {
    Address::new(AddressInput {
        name: "Grace Hopper".into(),
        line1: line1.into(),
        city: "Austin".into(),
        region: Some("TX".into()),
        postal_code: "78701".into(),
        country: "US".into(),
        ..AddressInput::default()
    })
    .expect("valid address")
}

fn delivery(address: Address, shipping: Option<ShippingQuote>) -> Delivery {
    Delivery {
        email: "grace@example.com".parse::<Email>().expect("email"),
        shipping_address: address,
        billing_address: None,
        shipping,
    }
}

async fn quote_of(
    shop: &Storefront,
    cart: CartId,
    address: &Address,
    method: &str,
) -> ShippingQuote {
    shop.shipping_quotes(cart, address)
        .await
        .expect("shipping quotes")
        .into_iter()
        .find(|q| q.method == method)
        .expect("method offered")
}

/// The US worked example, to the cent, through every store: 2 x $19.99 (8.25 % Texas tax)
/// and $5.00 of groceries (untaxed), 2.9 kg by ground ($7.99, untaxed):
///
/// | item | amount | tax | total |
/// | --- | --- | --- | --- |
/// | 2 x PRC-1 | 39.98 | 39.98 x 0.0825 = 3.29835 -> 3.30 | 43.28 |
/// | 1 x PRC-2 | 5.00 | 0.00 | 5.00 |
/// | ground | 7.99 | 0.00 | 7.99 |
/// | order | | 3.30 | 56.27 |
///
/// The gateway is charged $56.27, and the order read back keeps the contact, the address
/// and every amount.
pub async fn checkout_ships_and_taxes_to_an_address_and_charges_the_quote(backend: Backend) {
    let (shop, gateway) = pricing_shop(&backend);
    pricing_catalog(&shop).await;
    let offers = shop
        .catalog()
        .offers(&[sku("PRC-2")])
        .await
        .expect("offers");
    assert_eq!(
        offers[&sku("PRC-2")].profile.tax_class.as_str(),
        "food",
        "the catalog keeps how an item is taxed and shipped"
    );
    let cart = cart_with(&shop, &[("PRC-1", 2), ("PRC-2", 1)]).await;
    let home = texas("1 Congress Ave");
    let quotes = shop.shipping_quotes(cart, &home).await.expect("quotes");
    let amounts: Vec<(&str, _)> = quotes
        .iter()
        .map(|q| (q.method.as_str(), q.amount))
        .collect();
    assert_eq!(amounts, vec![("ground", usd(799)), ("express", usd(2_499))]);
    let ground = quotes
        .into_iter()
        .find(|q| q.method == "ground")
        .expect("ground");
    let delivery = delivery(home.clone(), Some(ground));
    let quote = shop.quote(cart, Some(&delivery)).await.expect("quote");
    let lines: Vec<_> = quote
        .lines
        .iter()
        .map(|l| (l.net, l.tax, l.total))
        .collect();
    assert_eq!(
        lines,
        vec![
            (usd(3_998), usd(330), usd(4_328)),
            (usd(500), usd(0), usd(500))
        ]
    );
    let shipping = quote.shipping.as_ref().expect("shipping");
    assert_eq!(
        (shipping.net, shipping.tax, shipping.total),
        (usd(799), usd(0), usd(799))
    );
    assert_eq!(
        (quote.subtotal, quote.tax_total, quote.total),
        (usd(4_498), usd(330), usd(5_627))
    );

    let customer = CustomerId::new();
    let mut pay = request(cart, customer, "tok_approve", "ship-tax");
    pay.delivery = Some(delivery);
    pay.accepted_quote = Some(quote.clone());
    let order = shop.place(pay).await.expect("checkout");
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(order.total, usd(5_627));
    assert_eq!(gateway.charges().len(), 1);
    assert_eq!(gateway.charges()[0].amount, usd(5_627));
    let stored = shop.order(order.id).await.expect("read").expect("order");
    assert_eq!(
        stored.contact.as_ref().map(Email::as_str),
        Some("grace@example.com")
    );
    assert_eq!(stored.shipping_address.as_ref(), Some(&home));
    let kept = stored.quote.as_ref().expect("the order keeps its quote");
    assert_eq!(kept.hash, quote.hash, "every amount is stored as quoted");
    assert_eq!((&kept.lines, &kept.taxes), (&quote.lines, &quote.taxes));
    let history = shop
        .order_history(customer, None, 10)
        .await
        .expect("history");
    assert_eq!(
        history.items[0].quote.as_ref().map(|q| q.total),
        Some(usd(5_627))
    );
}

/// Missing details, a shipping quote of another cart or address, edited, expired or no
/// longer offered, a class without a tax rate, and a price that changed since the quote was
/// accepted: each is its typed error, and nothing is stored, reserved or charged.
pub async fn checkout_refuses_bad_delivery_and_changes_nothing(backend: Backend) {
    let (shop, gateway) = pricing_shop(&backend);
    let mut p = pricing_catalog(&shop).await;
    let customer = CustomerId::new();
    let cart = cart_with(&shop, &[("PRC-1", 1)]).await;
    let home = texas("1 Congress Ave");
    let ground = quote_of(&shop, cart, &home, "ground").await;
    let attempt = |name: &str, delivery: Option<Delivery>| {
        let mut r = request(cart, customer, "tok_approve", name);
        r.delivery = delivery;
        r
    };

    let refused = shop.place(attempt("no-delivery", None)).await;
    assert!(
        matches!(refused, Err(CheckoutError::DeliveryRequired)),
        "{refused:?}"
    );
    let refused = shop
        .place(attempt("no-method", Some(delivery(home.clone(), None))))
        .await;
    assert!(
        matches!(refused, Err(CheckoutError::ShippingRequired)),
        "{refused:?}"
    );

    let other_cart = cart_with(&shop, &[("PRC-1", 1)]).await;
    let theirs = quote_of(&shop, other_cart, &home, "ground").await;
    let mut edited = ground.clone();
    edited.amount = usd(1);
    let elsewhere = texas("2 Congress Ave");
    let expired = ShippingQuote::new(
        cart,
        &home,
        ShippingOffer {
            method: "ground".into(),
            name: "Ground".into(),
            amount: usd(599),
            tax_class: None,
            valid_for: Duration::from_secs(60),
        },
        Utc::now() - chrono::Duration::hours(1),
    );
    let express = quote_of(&shop, cart, &home, "express").await;
    let cases = [
        (
            "another-cart",
            home.clone(),
            theirs,
            ShippingQuoteProblem::AnotherCart,
        ),
        (
            "edited",
            home.clone(),
            edited,
            ShippingQuoteProblem::Altered,
        ),
        (
            "elsewhere",
            elsewhere,
            ground.clone(),
            ShippingQuoteProblem::AnotherAddress,
        ),
        (
            "expired",
            home.clone(),
            expired,
            ShippingQuoteProblem::Expired,
        ),
    ];
    for (name, address, quote, problem) in cases {
        let refused = shop
            .place(attempt(name, Some(delivery(address, Some(quote)))))
            .await;
        assert!(
            matches!(&refused, Err(CheckoutError::ShippingQuote(p)) if *p == problem),
            "{name}: {refused:?}"
        );
    }

    // California ships, but the table has no rate there.
    let california = Address::new(AddressInput {
        city: "San Francisco".into(),
        region: Some("CA".into()),
        postal_code: "94103".into(),
        ..home.to_input()
    })
    .expect("address");
    let west = quote_of(&shop, cart, &california, "ground").await;
    let refused = shop
        .place(attempt("no-rate", Some(delivery(california, Some(west)))))
        .await;
    assert!(matches!(refused, Err(CheckoutError::Tax(_))), "{refused:?}");

    // A bulky item added since express was quoted: express is no longer offered.
    shop.add_item(cart, &sku("PRC-3"), 1).await.expect("add");
    let refused = shop
        .place(attempt(
            "express",
            Some(delivery(home.clone(), Some(express))),
        ))
        .await;
    assert!(
        matches!(&refused, Err(CheckoutError::ShippingQuote(ShippingQuoteProblem::NoLongerOffered(m))) if m == "express"),
        "{refused:?}"
    );
    // And ground now weighs into another bracket: its amount changed.
    let refused = shop
        .place(attempt(
            "heavier",
            Some(delivery(home.clone(), Some(ground))),
        ))
        .await;
    assert!(
        matches!(&refused, Err(CheckoutError::ShippingQuote(ShippingQuoteProblem::AmountChanged { was, now })) if *was == usd(799) && *now == usd(1_299)),
        "{refused:?}"
    );

    // The shopper accepts a quote; the price changes before Pay.
    let ground = quote_of(&shop, cart, &home, "ground").await;
    let details = delivery(home.clone(), Some(ground));
    let accepted = shop.quote(cart, Some(&details)).await.expect("quote");
    p.variants[0].price = usd(2_199);
    shop.upsert_product(p).await.expect("reprice");
    let mut pay = attempt("changed", Some(details.clone()));
    pay.accepted_quote = Some(accepted.clone());
    assert!(matches!(
        shop.place(pay.clone()).await,
        Err(CheckoutError::PricesChanged { .. })
    ));
    // The cart now holds the new price; the accepted quote does not.
    let refused = shop.place(pay).await;
    let Err(CheckoutError::QuoteChanged { changes, quote }) = refused else {
        panic!("expected QuoteChanged, got {refused:?}");
    };
    let items: Vec<&QuoteItem> = changes.iter().map(|c| &c.item).collect();
    assert_eq!(
        items,
        vec![
            &QuoteItem::Line(sku("PRC-1")),
            &QuoteItem::Tax,
            &QuoteItem::Total
        ]
    );
    assert_ne!(quote.hash, accepted.hash);

    for name in [
        "no-delivery",
        "no-method",
        "another-cart",
        "edited",
        "elsewhere",
        "expired",
        "no-rate",
        "express",
        "heavier",
        "changed",
    ] {
        assert_eq!(
            backend
                .orders
                .by_idempotency_key(customer, &key(name))
                .await
                .expect("read"),
            None,
            "{name}: nothing is stored"
        );
    }
    for s in ["PRC-1", "PRC-2", "PRC-3"] {
        let level = shop.stock(&sku(s)).await.expect("level");
        assert_eq!(
            (level.on_hand, level.reserved, level.sold),
            (10, 0, 0),
            "{s}"
        );
    }
    assert!(gateway.charges().is_empty(), "nothing is charged");

    // The new quote, accepted, is charged.
    let mut pay = attempt("accepted", Some(details));
    pay.accepted_quote = Some(*quote.clone());
    let order = shop.place(pay).await.expect("checkout");
    assert_eq!(order.total, quote.total);
    assert_eq!(gateway.charges()[0].amount, quote.total);
}
