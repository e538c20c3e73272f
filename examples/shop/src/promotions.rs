//! The shop's promotions and coupon codes: defined here, in one place, and saved at every
//! start (saving is an upsert: new terms replace the old, the uses taken so far are kept).
//! Copy this module and change the list to run your own.
//!
//! | id | how | what | stacking |
//! | --- | --- | --- | --- |
//! | `welcome10` | code `WELCOME10` | 10 % off the order, once per customer | one order-wide code per order |
//! | `flash50` | code `FLASH50` | $5 off the order, the first 50 orders | one order-wide code per order |
//! | `toys-3-for-2` | automatic | toys: buy 2, get the cheapest third free | not with order-wide codes |
//! | `free-shipping-100` | automatic | free shipping from $100 of items | with everything |
//!
//! The stacking, as the SDK evaluates it (line discounts first, then the order's, then the
//! shipping's; higher priority first within each):
//!
//! - the toys deal is a line discount, so it is evaluated first; it combines with line and
//!   shipping discounts only, so once it applies (three toys in the cart) WELCOME10 or
//!   FLASH50 does not (the cart page says it "does not combine with “Toys: buy 2, get 1
//!   free”"): an order gets the toys deal or an order-wide code, never both.
//! - WELCOME10 and FLASH50 are both order discounts that combine with line and shipping
//!   discounts but not with each other: with both codes on the cart, WELCOME10 (priority 10)
//!   applies and FLASH50 is traced as not combining with it.
//! - free shipping combines with everything. Its minimum counts the items as priced, before
//!   their discounts. It takes 100 % off whatever method is chosen (express and the
//!   international rate too): the SDK's shipping target has no method filter. The ground
//!   method is free from $150 of its own ([`crate::checkout::zones`]); this promotion
//!   lowers that to $100 for every method.
//!
//! Limits are kept by the SDK like stock: WELCOME10 is once per customer (a signed-in
//! customer by id, a guest by the checkout's e-mail), FLASH50 50 orders in all. A use is
//! held when the order is placed, committed when it is paid and given back when it fails or
//! is cancelled.

use ecommerce::Storefront;
use ecommerce::id::CategoryId;
use ecommerce::money::{Currency, Money};
use ecommerce::promotion::{
    Action, Condition, Coupon, CouponCode, DiscountClass, ItemFilter, Limit, NotApplied, Promotion,
    PromotionError, PromotionId, Target, Trace,
};
use rust_decimal::Decimal;

/// The welcome code's promotion.
pub(crate) const WELCOME: &str = "welcome10";
/// The flash sale's promotion.
pub(crate) const FLASH: &str = "flash50";
/// The toys deal.
pub(crate) const TOYS_DEAL: &str = "toys-3-for-2";
/// Free shipping over $100.
pub(crate) const FREE_SHIPPING: &str = "free-shipping-100";
/// The demo category of the toys deal (see `ecommerce::demo::categories`).
pub(crate) const TOYS: &str = "toys";

fn usd(cents: i64) -> Money {
    Money::from_minor(cents, Currency::USD)
}

fn code(text: &str) -> CouponCode {
    CouponCode::new(text).expect("the demo codes are valid")
}

fn id(text: &str) -> PromotionId {
    PromotionId::new(text).expect("the demo ids are valid")
}

/// The shop's promotions, each with its codes. `ships`: whether the shop charges shipping
/// (a shipping discount in a shop that does not would never have anything to discount).
pub(crate) fn demo(ships: bool) -> Vec<(Promotion, Vec<Coupon>)> {
    let order_wide = [DiscountClass::Line, DiscountClass::Shipping];
    let welcome = Promotion::new(
        WELCOME,
        "10 % off your order",
        Currency::USD,
        Action::PercentOff {
            percent: Decimal::from(10),
            target: Target::Order,
        },
    )
    .expect("a valid promotion")
    .with_code_only()
    .combining_with(&order_wide)
    .priority(10)
    .limited_to(None, Some(1), None);
    let flash = Promotion::new(
        FLASH,
        "$5 off your order",
        Currency::USD,
        Action::AmountOff {
            amount: usd(500),
            target: Target::Order,
        },
    )
    .expect("a valid promotion")
    .with_code_only()
    .combining_with(&order_wide)
    .limited_to(Some(50), None, None);
    let toys = Promotion::new(
        TOYS_DEAL,
        "Toys: buy 2, get 1 free",
        Currency::USD,
        Action::BuyXGetY {
            buy: 2,
            get: 1,
            items: ItemFilter::categories([CategoryId::new(TOYS).expect("a valid category")]),
            percent: Decimal::ONE_HUNDRED,
        },
    )
    .expect("a valid promotion")
    .combining_with(&[DiscountClass::Line, DiscountClass::Shipping])
    .priority(10);
    let mut all = vec![
        (welcome, vec![Coupon::new(code("WELCOME10"), id(WELCOME))]),
        (flash, vec![Coupon::new(code("FLASH50"), id(FLASH))]),
        (toys, Vec::new()),
    ];
    if ships {
        let free_shipping = Promotion::new(
            FREE_SHIPPING,
            "Free shipping on orders over $100",
            Currency::USD,
            Action::PercentOff {
                percent: Decimal::ONE_HUNDRED,
                target: Target::Shipping,
            },
        )
        .expect("a valid promotion")
        .when(Condition::MinSubtotal(usd(10_000)));
        all.push((free_shipping, Vec::new()));
    }
    all
}

/// Saves the demo promotions and their codes (at every start: saving is an upsert).
///
/// # Errors
/// The promotion store failed.
pub(crate) async fn seed(shop: &Storefront, ships: bool) -> Result<(), PromotionError> {
    for (promotion, coupons) in demo(ships) {
        shop.save_promotion(&promotion).await?;
        for coupon in &coupons {
            shop.save_coupon(coupon).await?;
        }
    }
    Ok(())
}

/// What a limit reached at Pay means to the shopper.
pub(crate) fn limit_text(limit: Limit) -> &'static str {
    match limit {
        Limit::PerCustomer => "you have already used it (it is once per customer)",
        Limit::Code | Limit::Total => "all its uses are taken",
        Limit::Budget => "its budget is spent",
    }
}

/// Why a promotion did not apply, in plain words. `trace` names the other promotions.
pub(crate) fn reason(not_applied: &NotApplied, trace: &[Trace]) -> String {
    let name = |id: &PromotionId| {
        trace
            .iter()
            .find(|t| &t.promotion == id)
            .map_or_else(|| id.to_string(), |t| format!("“{}”", t.name))
    };
    match not_applied {
        NotApplied::CodeRequired => "it needs its code".to_owned(),
        NotApplied::NotStarted => "it has not started yet".to_owned(),
        NotApplied::Ended => "it has ended".to_owned(),
        NotApplied::OtherCurrency => "it is for prices in another currency".to_owned(),
        NotApplied::BelowMinimum { minimum } => {
            format!("it needs at least {minimum} of items")
        }
        NotApplied::TooFewUnits { minimum } => {
            format!("it needs at least {minimum} items in the cart")
        }
        NotApplied::NoMatchingItems => "none of the items it is for is in the cart".to_owned(),
        NotApplied::OtherCustomer => "it is not for this account".to_owned(),
        NotApplied::NotFirstOrder => "it is for a first order only".to_owned(),
        NotApplied::DoesNotCombine { with } => {
            format!("it does not combine with {}", name(with))
        }
        NotApplied::StoppedBy { by } => format!("no other offer applies with {}", name(by)),
        NotApplied::NothingToDiscount => {
            "there is nothing for it to take off (yet: a shipping offer shows once shipping is chosen)"
                .to_owned()
        }
        NotApplied::Exhausted { limit } => limit_text(*limit).to_owned(),
        _ => "it does not apply".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_promotions_are_valid_and_their_codes_name_them() {
        let all = demo(true);
        assert_eq!(all.len(), 4);
        for (promotion, coupons) in &all {
            promotion.validate().unwrap();
            assert!(coupons.iter().all(|c| c.promotion == promotion.id));
        }
        assert_eq!(demo(false).len(), 3, "no shipping offer without shipping");
    }
}
