use proptest::prelude::*;
use rust_decimal_macros::dec;

use super::*;

fn usd(minor: i64) -> Money {
    Money::from_minor(minor, Currency::USD)
}

fn item(sku: &str, quantity: u32, unit: i64) -> PricedItem {
    PricedItem {
        sku: Sku::new(sku).unwrap(),
        quantity,
        unit_price: usd(unit),
        amount: usd(unit * i64::from(quantity)),
        categories: vec![CategoryId::new("kitchen").unwrap()],
    }
}

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn cart<'a>(items: &'a [PricedItem], shipping: Option<Money>) -> PromotionCart<'a> {
    PromotionCart {
        currency: Currency::USD,
        items,
        shipping,
        customer: None,
        first_order: true,
        now: at(),
    }
}

fn promo(id: &str, action: Action) -> Promotion {
    Promotion::new(id, id, Currency::USD, action).unwrap()
}

fn auto(promotions: &[Promotion]) -> Vec<Offered<'_>> {
    promotions
        .iter()
        .map(|p| Offered {
            promotion: p,
            code: None,
        })
        .collect()
}

fn percent(p: i64, target: Target) -> Action {
    Action::PercentOff {
        percent: Decimal::from(p),
        target,
    }
}

fn amount(minor: i64, target: Target) -> Action {
    Action::AmountOff {
        amount: usd(minor),
        target,
    }
}

/// An example of each action, by hand.
#[test]
fn each_action_by_hand() {
    let items = [item("A", 2, 1_000), item("B", 1, 500)];
    let shipping = Some(usd(800));
    let one = |p: Promotion| evaluate(&cart(&items, shipping), &auto(&[p])).unwrap();

    // 15 % off the lines: 20.00 -> 3.00, 5.00 -> 0.75.
    let e = one(promo("p", percent(15, Target::Lines(ItemFilter::all()))));
    assert_eq!(e.lines, vec![usd(300), usd(75)]);
    // 2.00 off each unit of A: 4.00.
    let e = one(promo(
        "a",
        amount(
            200,
            Target::Lines(ItemFilter::skus([Sku::new("A").unwrap()])),
        ),
    ));
    assert_eq!(e.lines, vec![usd(400), usd(0)]);
    // 10.00 off the order, shared 20 : 5 -> 8.00 and 2.00.
    let e = one(promo("o", amount(1_000, Target::Order)));
    assert_eq!(e.lines, vec![usd(800), usd(200)]);
    // Free shipping.
    let e = one(promo("s", percent(100, Target::Shipping)));
    assert_eq!((e.shipping, e.total().unwrap()), (usd(800), usd(800)));
    // Buy 2 get 1 free over A, A, B: ranked 10, 10, 5 -> B is free.
    let e = one(promo(
        "b",
        Action::BuyXGetY {
            buy: 2,
            get: 1,
            items: ItemFilter::all(),
            percent: Decimal::ONE_HUNDRED,
        },
    ));
    assert_eq!(e.lines, vec![usd(0), usd(500)]);
    // An amount larger than the order takes it to zero, not below.
    let e = one(promo("x", amount(1_000_000, Target::Order)));
    assert_eq!(e.lines, vec![usd(2_000), usd(500)]);
}

#[test]
fn conditions_window_and_codes_are_traced() {
    let items = [item("A", 1, 1_000)];
    let min = promo("min", amount(100, Target::Order)).when(Condition::MinSubtotal(usd(5_000)));
    let coded = promo("coded", amount(100, Target::Order)).with_code_only();
    let later = promo("later", amount(100, Target::Order))
        .between(Some(at() + chrono::Duration::days(1)), None);
    let over = promo("over", amount(100, Target::Order))
        .between(None, Some(at() - chrono::Duration::days(1)));
    let first = promo("first", amount(100, Target::Order)).when(Condition::FirstOrder);
    let all = [min, coded, later, over, first];
    let mut c = cart(&items, None);
    c.first_order = false;
    let e = evaluate(&c, &auto(&all)).unwrap();
    assert!(e.applied.is_empty());
    let why: BTreeMap<&str, NotApplied> = e
        .trace
        .iter()
        .map(|t| (t.promotion.as_str(), t.not_applied.clone().unwrap()))
        .collect();
    assert_eq!(
        why["min"],
        NotApplied::BelowMinimum {
            minimum: usd(5_000)
        }
    );
    assert_eq!(why["coded"], NotApplied::CodeRequired);
    assert_eq!(why["later"], NotApplied::NotStarted);
    assert_eq!(why["over"], NotApplied::Ended);
    assert_eq!(why["first"], NotApplied::NotFirstOrder);
}

/// Stacking: classes in order, then priority; a promotion that does not combine is
/// skipped with the one it clashes with named; stop-after ends the evaluation.
#[test]
fn stacking_follows_class_priority_combination_and_stop() {
    let items = [item("A", 1, 10_000)];
    let order_low = promo("order-low", percent(10, Target::Order)).priority(1);
    let order_high = promo("order-high", amount(1_000, Target::Order)).priority(5);
    let line_alone = promo("line-alone", percent(50, Target::Lines(ItemFilter::all())))
        .combining_with(&[DiscountClass::Shipping]);
    // Offered in any order, evaluated line first: the line promotion applies, and the order
    // ones do not combine with it.
    let all = [order_low.clone(), order_high.clone(), line_alone];
    let e = evaluate(&cart(&items, None), &auto(&all)).unwrap();
    let ids: Vec<&str> = e.trace.iter().map(|t| t.promotion.as_str()).collect();
    assert_eq!(ids, vec!["line-alone", "order-high", "order-low"]);
    assert_eq!(e.applied.len(), 1);
    assert_eq!(
        e.trace[1].not_applied,
        Some(NotApplied::DoesNotCombine {
            with: PromotionId::new("line-alone").unwrap()
        })
    );
    // Without it: the higher priority first (10.00 off 100.00), then 10 % of 90.00.
    let all = [order_low.clone(), order_high.clone()];
    let e = evaluate(&cart(&items, None), &auto(&all)).unwrap();
    assert_eq!(e.lines, vec![usd(1_900)]);
    // Stop after the first.
    let all = [order_low, order_high.stopping()];
    let e = evaluate(&cart(&items, None), &auto(&all)).unwrap();
    assert_eq!(e.lines, vec![usd(1_000)]);
    assert_eq!(
        e.trace[1].not_applied,
        Some(NotApplied::StoppedBy {
            by: PromotionId::new("order-high").unwrap()
        })
    );
}

#[test]
fn codes_normalise_and_customers_key_by_email() {
    assert_eq!(
        CouponCode::new("  summer-10 ").unwrap().as_str(),
        "SUMMER-10"
    );
    assert!(CouponCode::new("no").is_err());
    assert!(CouponCode::new("with space").is_err());
    let c = CustomerId::new();
    assert_eq!(
        customer_key(c, false, Some(" Ada+News@Example.COM ")),
        "email:ada@example.com"
    );
    assert_eq!(
        customer_key(c, true, Some("ada@example.com")),
        format!("customer:{c}")
    );
}

#[test]
fn malformed_promotions_are_refused() {
    let bad = [
        Promotion::new("x", "X", Currency::USD, percent(101, Target::Order)),
        Promotion::new(
            "x",
            "X",
            Currency::USD,
            Action::AmountOff {
                amount: Money::from_minor(100, Currency::EUR),
                target: Target::Order,
            },
        ),
        Promotion::new("x", " ", Currency::USD, percent(5, Target::Order)),
        Promotion::new("bad id!", "X", Currency::USD, percent(5, Target::Order)),
        Promotion::new(
            "x",
            "X",
            Currency::USD,
            Action::BuyXGetY {
                buy: 0,
                get: 1,
                items: ItemFilter::all(),
                percent: dec!(100),
            },
        ),
    ];
    for p in bad {
        assert!(p.is_err(), "{p:?}");
    }
}

fn arb_target() -> impl Strategy<Value = Target> {
    prop_oneof![
        Just(Target::Lines(ItemFilter::all())),
        Just(Target::Lines(ItemFilter::skus([Sku::new("S0").unwrap()]))),
        Just(Target::Order),
        Just(Target::Shipping),
    ]
}

fn arb_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0i64..=100, arb_target()).prop_map(|(p, t)| percent(p, t)),
        (0i64..50_000, arb_target()).prop_map(|(m, t)| amount(m, t)),
        (1u32..4, 1u32..3, 0i64..=100).prop_map(|(buy, get, p)| Action::BuyXGetY {
            buy,
            get,
            items: ItemFilter::all(),
            percent: Decimal::from(p),
        }),
    ]
}

fn arb_promotion() -> impl Strategy<Value = (Action, i32, bool, Vec<DiscountClass>)> {
    (
        arb_action(),
        -3i32..3,
        any::<bool>(),
        proptest::sample::subsequence(DiscountClass::ALL.to_vec(), 0..=3),
    )
}

proptest! {
    /// Whatever the promotions and the cart: the discounts are deterministic (any offered
    /// order gives the same result), no line or shipping goes below zero, each promotion's
    /// parts sum to its amount, and the lines' discounts are the sum of the promotions'.
    #[test]
    fn evaluation_is_deterministic_and_allocations_are_exact(
        lines in proptest::collection::vec((1u32..5, 1i64..100_000), 1..6),
        shipping in proptest::option::of(0i64..5_000),
        specs in proptest::collection::vec(arb_promotion(), 0..6),
        seed in any::<u64>(),
    ) {
        let items: Vec<PricedItem> = lines
            .iter()
            .enumerate()
            .map(|(i, (q, p))| item(&format!("S{i}"), *q, *p))
            .collect();
        let promotions: Vec<Promotion> = specs
            .into_iter()
            .enumerate()
            .map(|(i, (action, priority, stop, combines))| {
                let mut p = promo(&format!("p{i}"), action).priority(priority);
                p.stop_after = stop;
                p.combines_with = combines.into_iter().collect();
                p
            })
            .collect();
        let c = cart(&items, shipping.map(usd));
        let e = evaluate(&c, &auto(&promotions)).unwrap();
        let mut shuffled = auto(&promotions);
        let n = shuffled.len();
        if n > 1 {
            shuffled.rotate_left((seed as usize) % n);
            if seed % 2 == 0 { shuffled.reverse(); }
        }
        prop_assert_eq!(&evaluate(&c, &shuffled).unwrap(), &e);
        for (i, it) in items.iter().enumerate() {
            prop_assert!(!e.lines[i].is_negative());
            prop_assert!(e.lines[i].amount <= it.amount.amount, "line {} below zero", i);
            let parts = Money::sum(Currency::USD, e.applied.iter().map(|a| a.lines[i])).unwrap();
            prop_assert_eq!(parts, e.lines[i]);
        }
        prop_assert!(e.shipping.amount <= shipping.map_or(Decimal::ZERO, |s| usd(s).amount));
        prop_assert!(!e.shipping.is_negative());
        for a in &e.applied {
            let sum = Money::sum(Currency::USD, a.lines.iter().copied()).unwrap()
                .checked_add(a.shipping).unwrap();
            prop_assert_eq!(sum, a.amount);
            prop_assert!(a.amount.amount > Decimal::ZERO);
        }
        prop_assert_eq!(e.trace.len(), promotions.len());
    }
}
