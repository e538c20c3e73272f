//! Promotion checks: usage limits held exactly under concurrency, released by failed and
//! cancelled orders, settled by recovery; bad codes refused with the cart unchanged; the
//! discounts on the order to the cent.

use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use rust_decimal::Decimal;

use super::{Backend, Place, cart_with, request, shop, sku, stocked, usd};
use crate::address::{Address, AddressInput};
use crate::checkout::Delivery;
use crate::error::CheckoutError;
use crate::id::{CartId, CustomerId};
use crate::money::{Currency, Money};
use crate::order::OrderStatus;
use crate::promotion::{
    Action, Coupon, CouponCode, CouponProblem, Limit, NotApplied, Promotion, PromotionError,
    PromotionId, Target, Usage,
};
use crate::storefront::Storefront;

fn code(c: &str) -> CouponCode {
    CouponCode::new(c).expect("valid test code")
}

fn pid(p: &str) -> PromotionId {
    PromotionId::new(p).expect("valid test promotion id")
}

/// A code-only promotion of `off` cents off the order, with code `code`.
async fn coupon(
    shop: &Storefront,
    id: &str,
    c: &str,
    off: i64,
    promotion: impl Fn(Promotion) -> Promotion,
) {
    let p = Promotion::new(
        id,
        &format!("{id} off"),
        Currency::USD,
        Action::AmountOff {
            amount: usd(off),
            target: Target::Order,
        },
    )
    .expect("valid promotion")
    .with_code_only();
    shop.save_promotion(&promotion(p))
        .await
        .expect("save promotion");
    shop.save_coupon(&Coupon::new(code(c), pid(id)))
        .await
        .expect("save coupon");
}

async fn usage(shop: &Storefront, id: &str) -> Usage {
    shop.promotion_usage(&pid(id)).await.expect("usage")
}

/// A cart of `items` with code `c` applied.
async fn coded_cart(shop: &Storefront, items: &[(&str, u32)], c: &str) -> CartId {
    let cart = cart_with(shop, items).await;
    shop.apply_coupon(cart, c).await.expect("code applies");
    cart
}

/// Applying each code to the cart is refused with its problem, the cart unchanged.
async fn assert_refused(shop: &Storefront, cart: CartId, refusals: &[(&str, CouponProblem)]) {
    let before = shop.cart(cart).await.expect("load").expect("cart");
    for (c, want) in refusals {
        match shop.apply_coupon(cart, c).await {
            Err(CheckoutError::Promotion(PromotionError::Coupon { problem, .. })) => {
                assert_eq!(&problem, want, "code {c}");
            }
            other => panic!("code {c}: expected {want:?}, got {other:?}"),
        }
    }
    assert_eq!(
        shop.cart(cart).await.expect("load").expect("cart"),
        before,
        "unchanged"
    );
}

/// Holds a use of `promotion` with `code` for an order that is never stored (as a process
/// that died between the reservation and the order leaves it).
async fn orphan_use(shop: &Storefront, promotion: &str, c: &str) -> crate::id::OrderId {
    let orphan = crate::id::OrderId::new();
    shop.promotions
        .reserve(
            orphan,
            &[crate::promotion::PromotionUse {
                promotion: pid(promotion),
                code: Some(code(c)),
                customer: format!("customer:{orphan}"),
                amount: usd(100),
            }],
        )
        .await
        .expect("reserve");
    orphan
}

fn is_exhausted(e: &CheckoutError, want: Limit) -> bool {
    matches!(
        e,
        CheckoutError::Promotion(PromotionError::Exhausted { limit, .. }) if *limit == want
    )
}

/// Orders confirmed with the promotion in their quote.
async fn confirmed_with(shop: &Storefront, orders: &[crate::order::Order], id: &str) -> usize {
    let mut n = 0;
    for o in orders {
        let o = shop.order(o.id).await.expect("get").expect("stored");
        let used = o
            .quote
            .as_ref()
            .is_some_and(|q| q.promotions.iter().any(|a| a.promotion.as_str() == id));
        if used && o.status == OrderStatus::Confirmed {
            n += 1;
        }
    }
    n
}

/// 200 concurrent checkouts, each its own shopper with the same code limited to 10 uses:
/// exactly 10 orders get the discount; the others are told it is used up and, as each
/// request says, stop (nothing stored, nothing charged) or pay the full price. After
/// recovery the committed uses equal the confirmed orders that used the code.
pub async fn promotion_uses_never_exceed_their_limit(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Lamp", &[("PRO-1", 4_000, 500)]).await;
    coupon(&shop, "ten-only", "TEN-OFF", 1_000, |p| {
        p.limited_to(Some(10), None, None)
    })
    .await;
    let mut carts = Vec::new();
    for _ in 0..200 {
        carts.push(coded_cart(&shop, &[("PRO-1", 1)], "ten-off").await);
    }
    let results: Vec<_> = futures::stream::iter(carts.into_iter().enumerate())
        .map(|(i, cart)| {
            let shop = shop.clone();
            async move {
                let mut r = request(cart, CustomerId::new(), "tok_approve", &format!("lim-{i}"));
                r.without_exhausted_promotions = i % 2 == 0;
                (i, shop.place(r).await)
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let mut discounted = Vec::new();
    let mut full_price: u32 = 0;
    let mut stopped: u32 = 0;
    for (i, result) in results {
        match result {
            Ok(order) if order.total == usd(3_000) => discounted.push(order),
            Ok(order) => {
                assert_eq!(
                    order.total,
                    usd(4_000),
                    "full price or the discount, nothing else"
                );
                assert_eq!(
                    i % 2,
                    0,
                    "only a request that allows it pays the full price"
                );
                let q = order.quote.as_ref().expect("a quote");
                assert!(q.promotions.is_empty(), "no discount on a full-price order");
                assert!(
                    q.promotion_trace.iter().any(|t| matches!(
                        t.not_applied,
                        Some(NotApplied::Exhausted {
                            limit: Limit::Total
                        })
                    )),
                    "the trace says the code was used up: {:?}",
                    q.promotion_trace
                );
                full_price += 1;
            }
            Err(e) => {
                assert!(
                    is_exhausted(&e, Limit::Total),
                    "a stopped checkout is told why: {e}"
                );
                assert_eq!(i % 2, 1, "a request that allows full price does not stop");
                stopped += 1;
            }
        }
    }
    assert_eq!(
        discounted.len(),
        10,
        "exactly the limit's orders get the discount"
    );
    assert_eq!(10 + full_price + stopped, 200);
    assert!(
        discounted
            .iter()
            .all(|o| o.status == OrderStatus::Confirmed)
    );
    let charged: i64 = gateway
        .charges()
        .iter()
        .map(|c| c.amount.to_minor().expect("minor"))
        .sum();
    assert_eq!(
        charged,
        10 * 3_000 + i64::from(full_price) * 4_000,
        "stopped checkouts charge nothing"
    );
    shop.recover(Duration::ZERO).await.expect("recover");
    let used = usage(&shop, "ten-only").await;
    assert_eq!((used.held, used.committed), (0, 10), "{used:?}");
    assert_eq!(used.spent, usd(10_000));
    assert_eq!(confirmed_with(&shop, &discounted, "ten-only").await, 10);
    assert_eq!(
        shop.stock(&sku("PRO-1")).await.expect("stock").sold,
        10 + full_price
    );
}

fn guest_delivery(email: &str) -> Delivery {
    Delivery::new(
        email.parse().expect("valid email"),
        Address::new(AddressInput {
            name: "Ada Lovelace".into(),
            line1: "1 Main St".into(),
            city: "Austin".into(),
            region: Some("TX".into()),
            postal_code: "78701".into(),
            country: "US".into(),
            ..AddressInput::default()
        })
        .expect("valid address"),
    )
}

/// Per-customer limits count a signed-in customer by id and a guest by normalised e-mail; a
/// single-use code serves one order; a budget is never overspent. Each refusal is typed and
/// stores and charges nothing.
pub async fn promotion_limits_per_customer_code_and_budget(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Mug", &[("PRO-2", 2_000, 100)]).await;

    // One per customer: a signed-in customer's second order is refused.
    coupon(&shop, "once-each", "ONCE", 500, |p| {
        p.limited_to(None, Some(1), None)
    })
    .await;
    let ada = CustomerId::new();
    for (n, expect_ok) in [(0, true), (1, false)] {
        let cart = shop.customer_cart(ada).await.expect("cart").id;
        shop.add_item(cart, &sku("PRO-2"), 1).await.expect("add");
        shop.apply_coupon(cart, "once").await.expect("applies");
        let result = shop
            .place(request(cart, ada, "tok_approve", &format!("ada-{n}")))
            .await;
        match (expect_ok, result) {
            (true, Ok(o)) => assert_eq!(o.total, usd(1_500)),
            (false, Err(e)) => assert!(is_exhausted(&e, Limit::PerCustomer), "{e}"),
            (_, other) => panic!("customer use {n}: unexpected {other:?}"),
        }
        if !expect_ok {
            shop.remove_coupon(cart, "ONCE").await.expect("remove");
            shop.place(request(cart, ada, "tok_approve", "ada-full"))
                .await
                .expect("without the code");
        }
    }
    // Guests by e-mail: `Grace+shop@Example.com` is `grace@example.com`.
    for (n, email, expect_ok) in [
        (0, "grace@example.com", true),
        (1, "Grace+shop@Example.com", false),
        (2, "hopper@example.com", true),
    ] {
        let cart = coded_cart(&shop, &[("PRO-2", 1)], "ONCE").await;
        let mut r = request(
            cart,
            CustomerId::new(),
            "tok_approve",
            &format!("guest-{n}"),
        );
        r.delivery = Some(guest_delivery(email));
        match (expect_ok, shop.place(r).await) {
            (true, Ok(o)) => assert_eq!(o.total, usd(1_500)),
            (false, Err(e)) => assert!(is_exhausted(&e, Limit::PerCustomer), "{e}"),
            (_, other) => panic!("guest {email}: unexpected {other:?}"),
        }
    }
    assert_eq!(usage(&shop, "once-each").await.committed, 3);

    // A single-use code: the second order is refused.
    coupon(&shop, "gift", "GIFT-AAAA", 700, |p| p).await;
    shop.save_coupon(&Coupon::single_use(code("GIFT-BBBB"), pid("gift")))
        .await
        .expect("single use");
    let first = coded_cart(&shop, &[("PRO-2", 1)], "gift-bbbb").await;
    let second = coded_cart(&shop, &[("PRO-2", 1)], "gift-bbbb").await;
    let o = shop
        .place(request(first, CustomerId::new(), "tok_approve", "gift-1"))
        .await
        .expect("first use");
    assert_eq!(o.total, usd(1_300));
    let e = shop
        .place(request(second, CustomerId::new(), "tok_approve", "gift-2"))
        .await
        .expect_err("used");
    assert!(is_exhausted(&e, Limit::Code), "{e}");
    assert_eq!(
        shop.promotions
            .code_uses(&code("GIFT-BBBB"))
            .await
            .expect("uses"),
        1
    );
    // The code says so before Pay, too.
    let third = cart_with(&shop, &[("PRO-2", 1)]).await;
    assert_refused(&shop, third, &[("GIFT-BBBB", CouponProblem::Exhausted)]).await;

    // A budget of $25.00 at $10.00 a use: two orders, not three.
    coupon(&shop, "budget", "BUDGET", 1_000, |p| {
        p.limited_to(None, None, Some(usd(2_500)))
    })
    .await;
    let mut results = Vec::new();
    for n in 0..3 {
        let cart = coded_cart(&shop, &[("PRO-2", 1)], "BUDGET").await;
        results.push(
            shop.place(request(
                cart,
                CustomerId::new(),
                "tok_approve",
                &format!("budget-{n}"),
            ))
            .await,
        );
    }
    assert!(results[0].is_ok() && results[1].is_ok());
    assert!(is_exhausted(
        results[2].as_ref().expect_err("over budget"),
        Limit::Budget
    ));
    let spent = usage(&shop, "budget").await;
    assert_eq!((spent.committed, spent.spent), (2, usd(2_000)));
    let charges_before = gateway.charges().len();
    assert_eq!(
        charges_before,
        2 + 2 + 1 + 2,
        "refused checkouts charged nothing"
    );
}

/// A declined order gives its use back at once, a cancelled one too (the shopper may use
/// the code again), and a use whose order was never stored is given back by recovery.
pub async fn failed_and_cancelled_orders_give_their_uses_back(backend: Backend) {
    let (shop, _) = shop(&backend);
    stocked(&shop, "Kettle", &[("PRO-3", 3_000, 50)]).await;
    coupon(&shop, "one-use", "ONE-USE", 500, |p| {
        p.limited_to(Some(1), None, None)
    })
    .await;

    let declined = coded_cart(&shop, &[("PRO-3", 1)], "ONE-USE").await;
    let e = shop
        .place(request(declined, CustomerId::new(), "tok_decline", "dec-1"))
        .await
        .expect_err("declined");
    assert!(matches!(e, CheckoutError::PaymentDeclined { .. }), "{e}");
    let after = usage(&shop, "one-use").await;
    assert_eq!(
        (after.held, after.committed),
        (0, 0),
        "a failed order holds no use"
    );

    let cart = coded_cart(&shop, &[("PRO-3", 1)], "ONE-USE").await;
    let other = coded_cart(&shop, &[("PRO-3", 1)], "one-use").await;
    let paid = shop
        .place(request(cart, CustomerId::new(), "tok_approve", "paid-1"))
        .await
        .expect("confirmed");
    assert_eq!(usage(&shop, "one-use").await.committed, 1);
    let e = shop
        .place(request(other, CustomerId::new(), "tok_approve", "paid-2"))
        .await
        .expect_err("used up");
    assert!(is_exhausted(&e, Limit::Total), "{e}");
    shop.cancel(paid.id).await.expect("cancel");
    shop.cancel(paid.id).await.expect("cancel is idempotent");
    let after = usage(&shop, "one-use").await;
    assert_eq!(
        (after.held, after.committed),
        (0, 0),
        "a cancelled order gives its use back"
    );
    let again = shop
        .place(request(other, CustomerId::new(), "tok_approve", "paid-3"))
        .await
        .expect("the code is usable again");
    assert_eq!(again.total, usd(2_500));

    // A use held for an order that was never stored (the process died in between): given
    // back by recovery, once older than the reservation time (an order may be on its way).
    let (short, _) = backend.storefront(
        crate::storefront::StorefrontConfig::default()
            .with_reservation_ttl(Duration::from_millis(200)),
    );
    coupon(&short, "orphan", "ORPHAN", 100, |p| {
        p.limited_to(Some(1), None, None)
    })
    .await;
    let orphan = orphan_use(&short, "orphan", "ORPHAN").await;
    let report = short.recover(Duration::ZERO).await.expect("recover");
    assert!(
        report.uses_released.is_empty(),
        "too young to be an orphan: {report:?}"
    );
    assert_eq!(usage(&short, "orphan").await.held, 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = short.recover(Duration::ZERO).await.expect("recover");
    assert!(report.uses_released.contains(&orphan), "{report:?}");
    assert_eq!(usage(&short, "orphan").await.held, 0);
    // Settled: a second pass finds nothing.
    let report = short.recover(Duration::ZERO).await.expect("recover");
    assert!(report.uses_released.is_empty() && report.uses_committed.is_empty());
}

/// Bad codes are typed errors that leave the cart as it was: unknown, malformed, expired,
/// not yet valid, for another currency, applied twice, over the per-cart maximum.
pub async fn coupon_codes_refuse_bad_input_and_change_nothing(backend: Backend) {
    let (shop, _) = shop(&backend);
    stocked(&shop, "Pen", &[("PRO-4", 300, 10)]).await;
    let now = Utc::now();
    coupon(&shop, "past", "PAST", 100, |p| {
        p.between(
            Some(now - chrono::Duration::days(10)),
            Some(now - chrono::Duration::days(1)),
        )
    })
    .await;
    coupon(&shop, "future", "FUTURE", 100, |p| {
        p.between(Some(now + chrono::Duration::days(1)), None)
    })
    .await;
    let euro = Promotion::new(
        "euro",
        "Euro off",
        Currency::EUR,
        Action::AmountOff {
            amount: Money::from_minor(100, Currency::EUR),
            target: Target::Order,
        },
    )
    .expect("valid")
    .with_code_only();
    shop.save_promotion(&euro).await.expect("save");
    // A name with a NUL character, which no PostgreSQL text column holds, is refused.
    let mut nul = euro.clone();
    nul.id = pid("nul");
    nul.name = "Euro\0off".into();
    assert!(matches!(
        shop.save_promotion(&nul).await,
        Err(PromotionError::Invalid(_))
    ));
    assert_eq!(
        backend
            .promotions
            .promotion(&pid("nul"))
            .await
            .expect("read"),
        None
    );
    shop.save_coupon(&Coupon::new(code("EURO"), pid("euro")))
        .await
        .expect("save");
    for (c, id) in [("A-1", "a1"), ("B-2", "b2"), ("C-3", "c3"), ("D-4", "d4")] {
        coupon(&shop, id, c, 10, |p| p).await;
    }
    let cart = cart_with(&shop, &[("PRO-4", 1)]).await;
    assert_refused(
        &shop,
        cart,
        &[
            ("NOPE", CouponProblem::Unknown),
            ("x", CouponProblem::Unknown),
            ("bad code!", CouponProblem::Unknown),
            ("PAST", CouponProblem::Expired),
            ("future", CouponProblem::NotYetValid),
            ("EURO", CouponProblem::OtherCurrency),
        ],
    )
    .await;
    for c in ["A-1", "b-2", "C-3"] {
        shop.apply_coupon(cart, c).await.expect("applies");
    }
    assert_refused(
        &shop,
        cart,
        &[
            ("a-1", CouponProblem::AlreadyApplied),
            ("D-4", CouponProblem::TooMany),
        ],
    )
    .await;
    let full = shop.cart(cart).await.expect("load").expect("cart");
    assert_eq!(
        full.coupons,
        vec![code("A-1"), code("B-2"), code("C-3")],
        "normalised, in the order given"
    );
}

/// Discounts stack in their documented order and land on the order to the cent: a 10 %
/// line discount, then $5.00 off the order shared over the lines by largest remainder;
/// every line's share is recorded, and the parts sum to the whole. The confirmed order
/// empties the cart's codes.
pub async fn discounts_stack_and_are_recorded_per_line(backend: Backend) {
    let (shop, gateway) = shop(&backend);
    stocked(&shop, "Set", &[("PRO-5", 1_999, 10), ("PRO-6", 1_001, 10)]).await;
    let lines = Promotion::new(
        "tenth",
        "10 % off lamps",
        Currency::USD,
        Action::PercentOff {
            percent: Decimal::from(10),
            target: Target::Lines(crate::promotion::ItemFilter::skus([sku("PRO-5")])),
        },
    )
    .expect("valid");
    shop.save_promotion(&lines).await.expect("save");
    coupon(&shop, "five", "FIVE", 500, |p| p).await;
    let cart = coded_cart(&shop, &[("PRO-5", 3), ("PRO-6", 1)], "FIVE").await;
    let order = shop
        .place(request(cart, CustomerId::new(), "tok_approve", "stack-1"))
        .await
        .expect("confirmed");
    let q = order.quote.as_ref().expect("a quote");
    // Lines 59.97 and 10.01; 10 % of 59.97 = 6.00 (5.997 rounded); left 53.97 + 10.01 =
    // 63.98; 5.00 shared: 500 x 5397 / 6398 = 421.77, 500 x 1001 / 6398 = 78.23 -> 421 + 78
    // = 499, the cent left to the larger remainder (the first line): 4.22 and 0.78.
    let ids: Vec<&str> = q.promotions.iter().map(|a| a.promotion.as_str()).collect();
    assert_eq!(
        ids,
        vec!["tenth", "five"],
        "line discounts first, then the order's"
    );
    assert_eq!(q.promotions[0].lines, vec![usd(600), usd(0)]);
    assert_eq!(q.promotions[1].lines, vec![usd(422), usd(78)]);
    let discounts: Vec<Money> = q.lines.iter().map(|l| l.discount).collect();
    assert_eq!(discounts, vec![usd(1_022), usd(78)]);
    assert_eq!(q.discount_total, usd(1_100));
    assert_eq!(order.total, usd(5_997 + 1_001 - 1_100));
    assert_eq!(
        q.holds_promotion_uses,
        Some(false),
        "neither promotion has a limit: the order holds no use"
    );
    assert_eq!(shop.promotions.uses_of(order.id).await.expect("uses"), None);
    assert_eq!(
        gateway.charges().last().expect("charged").amount,
        order.total,
        "the discounted total is what is charged"
    );
    let left = shop.cart(cart).await.expect("load").expect("cart");
    assert!(left.coupons.is_empty(), "the order used the cart's codes");
}

/// Recovery reaches every held use, page by page: uses of orders still waiting for the
/// customer (3-D Secure) stay held and do not hide a newer use whose order was never stored.
pub async fn recovery_reaches_uses_behind_pending_orders(backend: Backend) {
    let (shop, _) = backend.storefront(
        crate::storefront::StorefrontConfig::default()
            .with_reservation_ttl(Duration::from_millis(200))
            .with_recovery_batch(2),
    );
    stocked(&shop, "Lamp", &[("PRO-7", 1_000, 10)]).await;
    coupon(&shop, "waiting", "WAITING", 100, |p| {
        p.limited_to(Some(10), None, None)
    })
    .await;
    for n in 0..3 {
        let cart = coded_cart(&shop, &[("PRO-7", 1)], "WAITING").await;
        let order = shop
            .place(request(
                cart,
                CustomerId::new(),
                "tok_pending",
                &format!("wait-{n}"),
            ))
            .await
            .expect("placed");
        assert_eq!(order.status, OrderStatus::Pending);
    }
    let orphan = orphan_use(&shop, "waiting", "WAITING").await;
    assert_eq!(usage(&shop, "waiting").await.held, 4);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let report = shop.recover(Duration::ZERO).await.expect("recover");
    assert_eq!(report.uses_released, vec![orphan], "{report:?}");
    assert_eq!(
        usage(&shop, "waiting").await.held,
        3,
        "the waiting orders keep theirs"
    );
}

/// With a unit of work that holds the promotions, the sale commits the order's promotion
/// uses in its own transaction: the uses are committed although the checkout never asks the
/// promotion store to (here its `commit` does nothing), and an order whose promotions hold
/// no use (an unlimited one) is sold with nothing left to commit either. Backends without
/// such a unit pass trivially.
pub async fn a_sale_commits_its_promotion_uses_in_its_transaction(backend: Backend) {
    let Some(unit) = backend.unit.clone().filter(|u| u.promotions().is_some()) else {
        return;
    };
    let commits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let backend = Backend {
        unit: Some(std::sync::Arc::new(CommitsNothing {
            unit,
            commits: commits.clone(),
        })),
        ..backend
    };
    let (shop, _) = shop(&backend);
    stocked(&shop, "Vase", &[("SCU-1", 3_000, 5)]).await;
    coupon(&shop, "scu-limited", "SCU10", 500, |p| {
        p.limited_to(Some(10), None, None)
    })
    .await;
    coupon(&shop, "scu-open", "SCUOPEN", 200, |p| p).await;

    let cart = coded_cart(&shop, &[("SCU-1", 1)], "SCU10").await;
    let order = shop
        .place(request(cart, CustomerId::new(), "tok_approve", "scu-1"))
        .await
        .expect("confirmed");
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert_eq!(
        shop.promotions.uses_of(order.id).await.expect("uses"),
        Some(crate::promotion::UseState::Committed),
        "the sale committed the use"
    );
    let used = usage(&shop, "scu-limited").await;
    assert_eq!((used.held, used.committed), (0, 1));
    assert_eq!(
        order.quote.as_ref().and_then(|q| q.holds_promotion_uses),
        Some(true),
        "the quote says the order holds a use"
    );

    let cart = coded_cart(&shop, &[("SCU-1", 1)], "SCUOPEN").await;
    let order = shop
        .place(request(cart, CustomerId::new(), "tok_approve", "scu-2"))
        .await
        .expect("confirmed");
    assert_eq!(order.status, OrderStatus::Confirmed);
    assert!(
        order
            .quote
            .as_ref()
            .is_some_and(|q| q.promotions.iter().any(|a| a.promotion == pid("scu-open"))),
        "the unlimited promotion applied"
    );
    assert_eq!(shop.promotions.uses_of(order.id).await.expect("uses"), None);
    assert_eq!(
        commits.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the checkout left the uses to the sale"
    );
}

/// A unit of work whose promotion store commits nothing (and counts the calls).
#[derive(Debug)]
struct CommitsNothing {
    unit: std::sync::Arc<dyn crate::unit::UnitOfWork>,
    commits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl crate::unit::UnitOfWork for CommitsNothing {
    fn claims_carts(&self) -> bool {
        self.unit.claims_carts()
    }
    fn promotions(&self) -> Option<std::sync::Arc<dyn crate::promotion::PromotionStore>> {
        Some(std::sync::Arc::new(NoCommit {
            store: self.unit.promotions()?,
            commits: self.commits.clone(),
        }))
    }
    async fn place(
        &self,
        order: crate::order::Order,
        events: Vec<crate::events::DomainEvent>,
        lines: &[crate::inventory::ReservationLine],
        ttl: Duration,
        claim: Option<&crate::cart::Cart>,
        uses: &[crate::promotion::PromotionUse],
    ) -> Result<crate::order::Created, crate::unit::UnitError> {
        self.unit
            .place(order, events, lines, ttl, claim, uses)
            .await
    }
    async fn sell(
        &self,
        order: &crate::order::Order,
        patch: crate::order::OrderPatch,
        events: Vec<crate::events::DomainEvent>,
        cart: Option<&crate::cart::Cart>,
    ) -> Result<crate::unit::Sold, crate::unit::UnitError> {
        self.unit.sell(order, patch, events, cart).await
    }
}

/// A promotion store whose `commit` does nothing but count.
#[derive(Debug)]
struct NoCommit {
    store: std::sync::Arc<dyn crate::promotion::PromotionStore>,
    commits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait::async_trait]
impl crate::promotion::PromotionStore for NoCommit {
    async fn save_promotion(&self, promotion: &Promotion) -> Result<(), PromotionError> {
        self.store.save_promotion(promotion).await
    }
    async fn promotions(&self) -> Result<Vec<Promotion>, PromotionError> {
        self.store.promotions().await
    }
    async fn automatic(&self) -> Result<Vec<Promotion>, PromotionError> {
        self.store.automatic().await
    }
    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>, PromotionError> {
        self.store.promotion(id).await
    }
    async fn save_coupon(&self, coupon: &Coupon) -> Result<(), PromotionError> {
        self.store.save_coupon(coupon).await
    }
    async fn coupon(&self, code: &CouponCode) -> Result<Option<Coupon>, PromotionError> {
        self.store.coupon(code).await
    }
    async fn reserve(
        &self,
        order: crate::id::OrderId,
        uses: &[crate::promotion::PromotionUse],
    ) -> Result<(), PromotionError> {
        self.store.reserve(order, uses).await
    }
    async fn commit(&self, _order: crate::id::OrderId) -> Result<(), PromotionError> {
        self.commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
    async fn release(&self, order: crate::id::OrderId) -> Result<(), PromotionError> {
        self.store.release(order).await
    }
    async fn uses_of(
        &self,
        order: crate::id::OrderId,
    ) -> Result<Option<crate::promotion::UseState>, PromotionError> {
        self.store.uses_of(order).await
    }
    async fn usage(&self, promotion: &PromotionId) -> Result<Usage, PromotionError> {
        self.store.usage(promotion).await
    }
    async fn taken(
        &self,
        promotion: &PromotionId,
    ) -> Result<crate::promotion::Taken, PromotionError> {
        self.store.taken(promotion).await
    }
    async fn code_uses(&self, code: &CouponCode) -> Result<u32, PromotionError> {
        self.store.code_uses(code).await
    }
    async fn held_before(
        &self,
        cutoff: chrono::DateTime<Utc>,
        after: Option<(chrono::DateTime<Utc>, crate::id::OrderId)>,
        limit: usize,
    ) -> Result<Vec<(chrono::DateTime<Utc>, crate::id::OrderId)>, PromotionError> {
        self.store.held_before(cutoff, after, limit).await
    }
}
