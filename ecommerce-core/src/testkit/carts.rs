//! Cart checks: saves are compare-and-set, cart rules refuse bad input and change nothing,
//! and a guest cart merges into the customer's once, with quantities capped.

use super::{Backend, cart_with, product, shop_with_limits, sku, stocked, usd};
use crate::cart::Cart;
use crate::error::CartError;
use crate::id::{CartId, CustomerId};
use crate::money::Currency;

/// A save from a stale version fails and writes nothing.
pub async fn cart_save_is_compare_and_set(backend: Backend) {
    let carts = &backend.carts;
    let cart = Cart::new_guest();
    let saved = carts.save(&cart).await.expect("first save");
    assert_eq!(saved.version, 1);
    assert!(
        matches!(
            carts.save(&cart).await,
            Err(CartError::VersionConflict { .. })
        ),
        "saving a new cart over an existing one must conflict"
    );
    let mut a = saved.clone();
    a.lines.push(crate::cart::CartLine {
        sku: sku("CAS-1"),
        title: "A".into(),
        quantity: 1,
        unit_price: usd(100),
    });
    let mut b = saved.clone();
    b.lines.push(crate::cart::CartLine {
        sku: sku("CAS-2"),
        title: "B".into(),
        quantity: 2,
        unit_price: usd(100),
    });
    let (ra, rb) = tokio::join!(carts.save(&a), carts.save(&b));
    assert!(
        ra.is_ok() != rb.is_ok(),
        "exactly one of two saves from one version wins: {ra:?} {rb:?}"
    );
    let stored = carts.load(cart.id).await.expect("load").expect("exists");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.lines.len(), 1);
    carts.delete(cart.id).await.expect("delete");
    carts.delete(cart.id).await.expect("delete twice");
    assert_eq!(carts.load(cart.id).await.expect("load"), None);
}

/// Cart rules refuse bad input with a typed error and leave the cart as it was.
pub async fn cart_rules_reject_bad_input_and_change_nothing(backend: Backend) {
    let shop = shop_with_limits(&backend, 5, 2);
    stocked(
        &shop,
        "Mug",
        &[("BAD-1", 900, 10), ("BAD-2", 900, 10), ("BAD-3", 900, 10)],
    )
    .await;
    let mut hidden = product("Hidden", &[("BAD-H", 100)]);
    hidden.published = false;
    shop.upsert_product(hidden).await.expect("upsert");
    let mut euro = product("Euro", &[("BAD-E", 100)]);
    euro.variants[0].price.currency = Currency::EUR;
    shop.upsert_product(euro).await.expect("upsert");

    let cart = cart_with(&shop, &[("BAD-1", 2)]).await;
    let before = shop.cart(cart).await.expect("load").expect("exists");
    let attempts: Vec<(&str, u32)> = vec![
        ("BAD-1", 0),
        ("BAD-1", 4),
        ("BAD-2", 6),
        ("BAD-2", u32::MAX),
    ];
    for (s, q) in attempts {
        let r = shop.add_item(cart, &sku(s), q).await;
        assert!(
            matches!(r, Err(CartError::InvalidQuantity { .. })),
            "{s} x{q}: {r:?}"
        );
    }
    assert!(matches!(
        shop.add_item(cart, &sku("NOPE-1"), 1).await,
        Err(CartError::UnknownSku(_))
    ));
    assert!(matches!(
        shop.add_item(cart, &sku("BAD-H"), 1).await,
        Err(CartError::Unavailable(_))
    ));
    assert!(matches!(
        shop.add_item(cart, &sku("BAD-E"), 1).await,
        Err(CartError::CurrencyMismatch { .. })
    ));
    assert!(matches!(
        shop.remove_item(cart, &sku("BAD-3")).await,
        Err(CartError::LineNotFound(_))
    ));
    assert_eq!(shop.cart(cart).await.expect("load"), Some(before));
    shop.add_item(cart, &sku("BAD-2"), 1)
        .await
        .expect("second line");
    assert!(matches!(
        shop.add_item(cart, &sku("BAD-3"), 1).await,
        Err(CartError::TooManyLines { max: 2 })
    ));
    let unknown = CartId::new();
    assert!(matches!(
        shop.add_item(unknown, &sku("BAD-1"), 1).await,
        Err(CartError::NotFound(_))
    ));
    assert_eq!(shop.cart(unknown).await.expect("load"), None);
    let cart = shop
        .set_quantity(cart, &sku("BAD-1"), 5)
        .await
        .expect("set");
    assert_eq!(cart.line(&sku("BAD-1")).map(|l| l.quantity), Some(5));
    let cart = shop
        .set_quantity(cart.id, &sku("BAD-1"), 0)
        .await
        .expect("remove");
    assert!(cart.line(&sku("BAD-1")).is_none());
}

/// A shopper's first add to cart makes the guest cart with the item in one write (the
/// stored cart is at version 1), refuses bad input as [`Storefront::add_item`] does, and the
/// cart's discounts are the same whether the cart is read again or given as it is.
///
/// [`Storefront::add_item`]: crate::storefront::Storefront::add_item
pub async fn a_first_item_makes_its_guest_cart_in_one_write(backend: Backend) {
    let shop = shop_with_limits(&backend, 5, 2);
    stocked(&shop, "Cup", &[("FIR-1", 700, 10)]).await;
    let mut hidden = product("Hidden", &[("FIR-H", 100)]);
    hidden.published = false;
    shop.upsert_product(hidden).await.expect("upsert");

    let cart = shop
        .create_guest_cart_with(&sku("FIR-1"), 2)
        .await
        .expect("created");
    assert_eq!(cart.version, 1, "one write");
    assert_eq!(cart.customer, None);
    assert_eq!(
        cart.line(&sku("FIR-1")).map(|l| (l.quantity, l.unit_price)),
        Some((2, usd(700)))
    );
    assert_eq!(shop.cart(cart.id).await.expect("load"), Some(cart.clone()));
    assert_eq!(
        shop.discounts_of(&cart).await.expect("discounts at hand"),
        shop.cart_discounts(cart.id).await.expect("discounts read"),
    );
    assert!(matches!(
        shop.discounts_of(&Cart::new_guest()).await,
        Err(crate::error::CheckoutError::EmptyCart(_))
    ));

    for q in [0, 6, u32::MAX] {
        let r = shop.create_guest_cart_with(&sku("FIR-1"), q).await;
        assert!(
            matches!(r, Err(CartError::InvalidQuantity { .. })),
            "x{q}: {r:?}"
        );
    }
    assert!(matches!(
        shop.create_guest_cart_with(&sku("NOPE-1"), 1).await,
        Err(CartError::UnknownSku(_))
    ));
    assert!(matches!(
        shop.create_guest_cart_with(&sku("FIR-H"), 1).await,
        Err(CartError::Unavailable(_))
    ));
}

/// On login the guest cart merges into the customer's: quantities add up, capped; the guest
/// cart is gone; a repeated login merges nothing twice.
pub async fn cart_merge_adds_up_capped_and_happens_once(backend: Backend) {
    let shop = shop_with_limits(&backend, 5, 10);
    stocked(
        &shop,
        "Sock",
        &[("MRG-1", 300, 0), ("MRG-2", 400, 0), ("MRG-3", 500, 0)],
    )
    .await;
    let customer = CustomerId::new();
    let mine = shop.customer_cart(customer).await.expect("customer cart");
    assert_eq!(mine.id, CartId::for_customer(customer));
    shop.add_item(mine.id, &sku("MRG-1"), 4).await.expect("add");
    shop.add_item(mine.id, &sku("MRG-2"), 1).await.expect("add");
    let guest = cart_with(&shop, &[("MRG-1", 3), ("MRG-3", 2)]).await;

    let merged = shop.merge_guest_cart(guest, customer).await.expect("merge");
    let qty = |c: &Cart, s: &str| c.line(&sku(s)).map(|l| l.quantity);
    assert_eq!(qty(&merged.cart, "MRG-1"), Some(5), "4 + 3 capped at 5");
    assert_eq!(qty(&merged.cart, "MRG-2"), Some(1));
    assert_eq!(qty(&merged.cart, "MRG-3"), Some(2));
    assert_eq!(merged.clipped, vec![sku("MRG-1")]);
    assert_eq!(
        shop.cart(guest).await.expect("load"),
        None,
        "guest cart is consumed"
    );

    let again = shop
        .merge_guest_cart(guest, customer)
        .await
        .expect("merge again");
    assert_eq!(
        again.cart.lines, merged.cart.lines,
        "a repeated login changes nothing"
    );
    // The same cart on another device: it is the customer's cart id.
    let desktop = shop.customer_cart(customer).await.expect("cart");
    assert_eq!(desktop.lines, merged.cart.lines);
    assert!(matches!(
        shop.merge_guest_cart(desktop.id, CustomerId::new()).await,
        Err(CartError::NotAGuestCart(_))
    ));
}
