//! Promotions and coupon codes: what they give, when they apply, how they stack, and usage
//! limits kept as exactly as stock.
//!
//! A [`Promotion`] has [`Condition`]s (a minimum subtotal or quantity, items in the cart, the
//! customer, a first order, a date window) and one [`Action`] (a percentage or an amount off
//! lines, the order or the shipping, or buy X get Y). It is automatic, or applies only with
//! one of its [`Coupon`] codes (many codes per promotion, single-use codes too).
//!
//! [`evaluate`] is a pure function of the cart, the promotions and the time. It returns the
//! discounts and a [`Trace`] that says why each promotion applied or not, in a deterministic
//! stacking order:
//!
//! 1. by [`DiscountClass`]: line discounts first, then order discounts (on what the lines cost
//!    after theirs), then shipping discounts;
//! 2. within a class, by priority (higher first), then by id;
//! 3. a promotion applies only if it and every promotion applied before it combine
//!    ([`Promotion::combines_with`] names the classes a promotion stacks with, both ways);
//! 4. a promotion with [`Promotion::stop_after`] ends the evaluation once it applies.
//!
//! There is no search for the best deal among promotions that do not combine: the stacking
//! order decides, so give the better deal the higher priority.
//!
//! No line or shipping goes below zero; an order discount is shared over the lines by
//! largest remainder ([`crate::quote::allocate`]), so the parts sum exactly to the whole.
//! The quote ([`crate::quote`]) takes the discounts before tax, and the order keeps each
//! promotion's share of each line ([`crate::quote::Quote::promotions`]).
//!
//! # Usage limits
//!
//! A promotion may limit its uses in total, per customer (a signed-in customer by id, a guest
//! by normalised e-mail, see [`customer_key`]) and by a budget in money; a code may limit its
//! own uses (a single-use code allows one). The checkout reserves an order's uses like its
//! stock, with a conditional increment (`used + 1 <= limit`) in the
//! [`PromotionStore`], in the same transaction as the order and its stock when the stores
//! share a database ([`crate::unit::UnitOfWork`]). The policy:
//!
//! - a use counts from the moment the order is placed: a held use is a use;
//! - confirmation commits it;
//! - a failed order (declined, out of stock, abandoned) releases it;
//! - a cancelled order releases it (the shopper may use the code again);
//! - a use held for an order that was never stored (the process died in between) is
//!   released by [`crate::Storefront::recover`] once it is older than the reservation time.
//!
//! So under any concurrency or fault no promotion or code is used more than its limit, no
//! budget is overspent, and once recovery has run the committed uses are exactly the
//! confirmed orders that used them. Only promotions and codes with a limit record uses.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, StoreError, ValidationError};
use crate::id::{CategoryId, CustomerId, OrderId, Sku};
use crate::money::{Currency, Money, MoneyError};
use crate::quote::allocate;

/// The most codes one cart may carry.
pub const MAX_CODES_PER_CART: usize = 3;

/// A promotion's id: 1 to 64 characters of letters, digits, `-`, `_` and `.`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PromotionId(String);

impl PromotionId {
    /// A checked id.
    ///
    /// # Errors
    /// [`ValidationError`] when empty, too long or with other characters.
    pub fn new(id: impl Into<String>) -> Result<Self, ValidationError> {
        let id = id.into();
        if id.is_empty() {
            return Err(ValidationError::Empty {
                field: "promotion id",
            });
        }
        if id.len() > 64 {
            return Err(ValidationError::TooLong {
                field: "promotion id",
                max: 64,
            });
        }
        if !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ValidationError::Invalid {
                field: "promotion id",
                reason: "letters, digits, '-', '_' and '.' only".into(),
            });
        }
        Ok(PromotionId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PromotionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PromotionId {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PromotionId::new(value)
    }
}

impl From<PromotionId> for String {
    fn from(id: PromotionId) -> String {
        id.0
    }
}

/// A coupon code as shoppers type it, normalised: surrounding spaces trimmed, upper case.
/// 3 to 32 characters of letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CouponCode(String);

impl CouponCode {
    /// A normalised, checked code: `" summer-10 "` is `SUMMER-10`.
    ///
    /// # Errors
    /// [`ValidationError`] when too short, too long or with other characters.
    pub fn new(code: &str) -> Result<Self, ValidationError> {
        let code = code.trim().to_ascii_uppercase();
        if code.len() < 3 {
            return Err(ValidationError::Invalid {
                field: "coupon code",
                reason: "at least 3 characters".into(),
            });
        }
        if code.len() > 32 {
            return Err(ValidationError::TooLong {
                field: "coupon code",
                max: 32,
            });
        }
        if !code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        {
            return Err(ValidationError::Invalid {
                field: "coupon code",
                reason: "letters, digits, '-' and '_' only".into(),
            });
        }
        Ok(CouponCode(code))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CouponCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CouponCode {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CouponCode::new(s)
    }
}

impl TryFrom<String> for CouponCode {
    type Error = ValidationError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CouponCode::new(&value)
    }
}

impl From<CouponCode> for String {
    fn from(code: CouponCode) -> String {
        code.0
    }
}

/// What a discount is taken off; the first key of the stacking order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscountClass {
    /// Lines (percentage or amount off items, buy X get Y).
    Line,
    /// The order's subtotal after line discounts, shared over the lines.
    Order,
    /// The shipping.
    Shipping,
}

impl DiscountClass {
    /// Every class.
    pub const ALL: [DiscountClass; 3] = [
        DiscountClass::Line,
        DiscountClass::Order,
        DiscountClass::Shipping,
    ];
}

/// Which items: by SKU or by category. Empty lists match every item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFilter {
    /// These SKUs.
    #[serde(default)]
    pub skus: Vec<Sku>,
    /// Items of products in these categories.
    #[serde(default)]
    pub categories: Vec<CategoryId>,
}

impl ItemFilter {
    /// Every item.
    pub fn all() -> Self {
        ItemFilter::default()
    }

    /// These SKUs.
    pub fn skus(skus: impl IntoIterator<Item = Sku>) -> Self {
        ItemFilter {
            skus: skus.into_iter().collect(),
            categories: Vec::new(),
        }
    }

    /// Items in these categories.
    pub fn categories(categories: impl IntoIterator<Item = CategoryId>) -> Self {
        ItemFilter {
            skus: Vec::new(),
            categories: categories.into_iter().collect(),
        }
    }

    /// Whether the item is one of these.
    pub fn matches(&self, item: &PricedItem) -> bool {
        if self.skus.is_empty() && self.categories.is_empty() {
            return true;
        }
        self.skus.contains(&item.sku) || item.categories.iter().any(|c| self.categories.contains(c))
    }
}

/// When a promotion may apply (all of its conditions must hold).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Condition {
    /// The lines cost at least this much, as priced.
    MinSubtotal(Money),
    /// At least this many units in the cart.
    MinQuantity(u32),
    /// At least one of these items is in the cart.
    Items(ItemFilter),
    /// Only these customers.
    Customers(Vec<CustomerId>),
    /// The customer has no confirmed order yet.
    FirstOrder,
}

/// What a percentage or an amount is taken off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The matching lines: a percentage of each, or an amount off each unit.
    Lines(ItemFilter),
    /// The lines' total after line discounts, shared over them.
    Order,
    /// The shipping.
    Shipping,
}

/// What a promotion gives. One of each, with conditions and stacking:
///
/// ```
/// use ecommerce_core::id::{CategoryId, Sku};
/// use ecommerce_core::money::{Currency, Decimal, Money};
/// use ecommerce_core::promotion::{Action, Condition, DiscountClass, ItemFilter, Promotion, Target};
///
/// # fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let usd = |cents| Money::from_minor(cents, Currency::USD);
/// // 15 % off every lamp (a line discount).
/// let lamps = Promotion::new("lamps-15", "15 % off lamps", Currency::USD, Action::PercentOff {
///     percent: Decimal::from(15),
///     target: Target::Lines(ItemFilter::categories([CategoryId::new("lamps")?])),
/// })?;
/// // $2.00 off each unit of one SKU.
/// let mugs = Promotion::new("mug-2", "$2 off each mug", Currency::USD, Action::AmountOff {
///     amount: usd(200),
///     target: Target::Lines(ItemFilter::skus([Sku::new("MUG-1")?])),
/// })?;
/// // $10.00 off an order over $50.00, with a code, 100 uses in all, one per customer.
/// let welcome = Promotion::new("welcome", "$10 off", Currency::USD, Action::AmountOff {
///     amount: usd(1_000),
///     target: Target::Order,
/// })?
/// .with_code_only()
/// .when(Condition::MinSubtotal(usd(5_000)))
/// .limited_to(Some(100), Some(1), None);
/// // Free shipping over $100.00, automatic, that stacks with line discounts only.
/// let shipping = Promotion::new("free-ship", "Free shipping", Currency::USD, Action::PercentOff {
///     percent: Decimal::ONE_HUNDRED,
///     target: Target::Shipping,
/// })?
/// .when(Condition::MinSubtotal(usd(10_000)))
/// .combining_with(&[DiscountClass::Line]);
/// // Buy 2 get 1 free on books, the cheapest unit of each three; ends the evaluation.
/// let books = Promotion::new("books-3for2", "3 for 2", Currency::USD, Action::BuyXGetY {
///     buy: 2,
///     get: 1,
///     items: ItemFilter::categories([CategoryId::new("books")?]),
///     percent: Decimal::ONE_HUNDRED,
/// })?
/// .priority(10)
/// .stopping();
/// # let _ = (lamps, mugs, welcome, shipping, books);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// A percentage (0 to 100) off the target.
    PercentOff {
        /// The percentage, e.g. `10` for 10 %.
        percent: Decimal,
        /// Off what.
        target: Target,
    },
    /// An amount off: each matching unit, the order, or the shipping (never below zero).
    AmountOff {
        /// The amount, in the promotion's currency.
        amount: Money,
        /// Off what.
        target: Target,
    },
    /// Of the matching units, for every `buy + get` of them the `get` cheapest of each group
    /// (units ranked by price, highest first; ties by line order) are `percent` off (100:
    /// free), at their catalog price, capped at what their line still costs after the line
    /// discounts before it.
    BuyXGetY {
        /// Units bought at full price per group.
        buy: u32,
        /// Units discounted per group.
        get: u32,
        /// Which units count.
        items: ItemFilter,
        /// The percentage off the discounted units.
        percent: Decimal,
    },
}

impl Action {
    /// The class of the discount.
    pub fn class(&self) -> DiscountClass {
        match self {
            Action::PercentOff { target, .. } | Action::AmountOff { target, .. } => match target {
                Target::Lines(_) => DiscountClass::Line,
                Target::Order => DiscountClass::Order,
                Target::Shipping => DiscountClass::Shipping,
            },
            Action::BuyXGetY { .. } => DiscountClass::Line,
        }
    }
}

/// How often a promotion may be used; `None`: no limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageLimits {
    /// Orders in all.
    #[serde(default)]
    pub total: Option<u32>,
    /// Orders per customer (a guest by normalised e-mail).
    #[serde(default)]
    pub per_customer: Option<u32>,
    /// The discount given in all, in the promotion's currency.
    #[serde(default)]
    pub budget: Option<Money>,
}

impl UsageLimits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.total.is_some() || self.per_customer.is_some() || self.budget.is_some()
    }
}

/// A promotion (see the [module documentation](self)).
///
/// ```
/// use ecommerce_core::money::{Currency, Decimal, Money};
/// use ecommerce_core::promotion::{Action, Condition, ItemFilter, Promotion, Target};
///
/// // 10 % off the order over 50.00, with a code, 100 uses in all, one per customer.
/// let welcome = Promotion::new(
///     "welcome10",
///     "10 % off your order",
///     Currency::USD,
///     Action::PercentOff { percent: Decimal::from(10), target: Target::Order },
/// )?
/// .with_code_only()
/// .when(Condition::MinSubtotal(Money::from_minor(5_000, Currency::USD)))
/// .limited_to(Some(100), Some(1), None);
/// # let _ = welcome;
/// # Ok::<(), ecommerce_core::error::ValidationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// Its id.
    pub id: PromotionId,
    /// What shoppers see.
    pub name: String,
    /// The currency of carts it applies to (and of its amounts).
    pub currency: Currency,
    /// `true`: only with one of its codes; `false`: automatic.
    pub code_only: bool,
    /// All must hold.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// What it gives.
    pub action: Action,
    /// The classes of the other promotions it may be applied together with.
    pub combines_with: BTreeSet<DiscountClass>,
    /// Higher first, within a class.
    #[serde(default)]
    pub priority: i32,
    /// Once it applies, no promotion after it does.
    #[serde(default)]
    pub stop_after: bool,
    /// Its usage limits.
    #[serde(default)]
    pub limits: UsageLimits,
    /// Not before.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Not from then on.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
}

impl Promotion {
    /// An automatic promotion without conditions or limits that combines with every class.
    ///
    /// # Errors
    /// [`ValidationError`] for a bad id, an empty name, or an action out of range (see
    /// [`Promotion::validate`]).
    pub fn new(
        id: &str,
        name: &str,
        currency: Currency,
        action: Action,
    ) -> Result<Self, ValidationError> {
        let promotion = Promotion {
            id: PromotionId::new(id)?,
            name: name.to_owned(),
            currency,
            code_only: false,
            conditions: Vec::new(),
            action,
            combines_with: DiscountClass::ALL.into_iter().collect(),
            priority: 0,
            stop_after: false,
            limits: UsageLimits::default(),
            starts_at: None,
            ends_at: None,
        };
        promotion.validate()?;
        Ok(promotion)
    }

    /// Applies only with one of its codes.
    pub fn with_code_only(mut self) -> Self {
        self.code_only = true;
        self
    }

    /// Adds a condition.
    pub fn when(mut self, condition: Condition) -> Self {
        self.conditions.push(condition);
        self
    }

    /// Sets the classes it combines with.
    pub fn combining_with(mut self, classes: &[DiscountClass]) -> Self {
        self.combines_with = classes.iter().copied().collect();
        self
    }

    /// Sets the priority within its class.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Stops the evaluation once it applies.
    pub fn stopping(mut self) -> Self {
        self.stop_after = true;
        self
    }

    /// Sets the usage limits: in total, per customer, and the budget.
    pub fn limited_to(
        mut self,
        total: Option<u32>,
        per_customer: Option<u32>,
        budget: Option<Money>,
    ) -> Self {
        self.limits = UsageLimits {
            total,
            per_customer,
            budget,
        };
        self
    }

    /// Sets the date window.
    pub fn between(
        mut self,
        starts_at: Option<DateTime<Utc>>,
        ends_at: Option<DateTime<Utc>>,
    ) -> Self {
        self.starts_at = starts_at;
        self.ends_at = ends_at;
        self
    }

    /// The class of its discount.
    pub fn class(&self) -> DiscountClass {
        self.action.class()
    }

    /// Checks the name (not empty, at most 200 characters, no NUL), the amounts (in the promotion's currency, not negative), the
    /// percentages (0 to 100), buy X get Y counts (at least 1 each) and the window.
    ///
    /// # Errors
    /// The first [`ValidationError`] found.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.name.trim().is_empty() {
            return Err(ValidationError::Empty {
                field: "promotion name",
            });
        }
        if self.name.chars().count() > 200 {
            return Err(ValidationError::TooLong {
                field: "promotion name",
                max: 200,
            });
        }
        crate::catalog::refuse_nul("promotion name", &self.name)?;
        let money = |m: &Money, field: &'static str| {
            if m.currency != self.currency {
                Err(ValidationError::Invalid {
                    field,
                    reason: format!("must be in {}", self.currency.code()),
                })
            } else if m.is_negative() {
                Err(ValidationError::Negative { field })
            } else {
                Ok(())
            }
        };
        let percent = |p: &Decimal| {
            if *p < Decimal::ZERO || *p > Decimal::ONE_HUNDRED {
                Err(ValidationError::Invalid {
                    field: "percent",
                    reason: "from 0 to 100".into(),
                })
            } else {
                Ok(())
            }
        };
        match &self.action {
            Action::PercentOff { percent: p, .. } => percent(p)?,
            Action::AmountOff { amount, .. } => money(amount, "amount")?,
            Action::BuyXGetY {
                buy,
                get,
                percent: p,
                ..
            } => {
                percent(p)?;
                if !(1..=1_000).contains(buy) || !(1..=1_000).contains(get) {
                    return Err(ValidationError::Invalid {
                        field: "buy x get y",
                        reason: "buy and get are from 1 to 1000".into(),
                    });
                }
            }
        }
        for condition in &self.conditions {
            if let Condition::MinSubtotal(m) = condition {
                money(m, "minimum subtotal")?;
            }
        }
        if let Some(budget) = &self.limits.budget {
            money(budget, "budget")?;
        }
        if let (Some(start), Some(end)) = (self.starts_at, self.ends_at) {
            if end <= start {
                return Err(ValidationError::Invalid {
                    field: "window",
                    reason: "ends before it starts".into(),
                });
            }
        }
        Ok(())
    }

    /// Whether it is running at `now`: `Err` says why not.
    pub fn window(&self, now: DateTime<Utc>) -> Result<(), CouponProblem> {
        if self.starts_at.is_some_and(|s| now < s) {
            return Err(CouponProblem::NotYetValid);
        }
        if self.ends_at.is_some_and(|e| now >= e) {
            return Err(CouponProblem::Expired);
        }
        Ok(())
    }
}

/// A code that applies a promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coupon {
    /// The code.
    pub code: CouponCode,
    /// The promotion it applies.
    pub promotion: PromotionId,
    /// How many orders may use this code (`Some(1)`: single use); `None`: the promotion's
    /// limits only.
    #[serde(default)]
    pub max_uses: Option<u32>,
}

impl Coupon {
    /// A code with no limit of its own.
    pub fn new(code: CouponCode, promotion: PromotionId) -> Self {
        Coupon {
            code,
            promotion,
            max_uses: None,
        }
    }

    /// A code one order may use.
    pub fn single_use(code: CouponCode, promotion: PromotionId) -> Self {
        Coupon {
            code,
            promotion,
            max_uses: Some(1),
        }
    }
}

/// Why a code cannot be used (the cart is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CouponProblem {
    /// No such code.
    #[error("no such code")]
    Unknown,
    /// Its promotion has ended.
    #[error("the code has expired")]
    Expired,
    /// Its promotion has not started.
    #[error("the code is not valid yet")]
    NotYetValid,
    /// Every use of the code or its promotion is taken.
    #[error("the code has been used up")]
    Exhausted,
    /// Its promotion is for carts in another currency.
    #[error("the code is for another currency")]
    OtherCurrency,
    /// The cart carries the most codes it may.
    #[error("at most {MAX_CODES_PER_CART} codes per cart")]
    TooMany,
    /// The cart already carries it.
    #[error("the code is already applied")]
    AlreadyApplied,
}

impl CouponProblem {
    /// The kind of failure: [`ErrorKind::NotFound`] for an unknown code,
    /// [`ErrorKind::Rejected`] for a used up one, [`ErrorKind::Invalid`] otherwise.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CouponProblem::Unknown => ErrorKind::NotFound,
            CouponProblem::Exhausted => ErrorKind::Rejected,
            _ => ErrorKind::Invalid,
        }
    }
}

/// Which limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Limit {
    /// The promotion's uses in total.
    Total,
    /// The customer's uses.
    PerCustomer,
    /// The promotion's budget.
    Budget,
    /// The code's own uses.
    Code,
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::Total => "uses",
            Limit::PerCustomer => "uses per customer",
            Limit::Budget => "budget",
            Limit::Code => "code uses",
        })
    }
}

/// Errors of promotions, codes and their usage.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PromotionError {
    /// A code cannot be used; nothing changed.
    #[error("code {code}: {problem}")]
    Coupon {
        /// The code as given.
        code: String,
        /// Why.
        problem: CouponProblem,
    },
    /// A limit is reached: no use was reserved.
    #[error("promotion {promotion} has no {limit} left")]
    Exhausted {
        /// The promotion.
        promotion: PromotionId,
        /// The code it came with.
        code: Option<CouponCode>,
        /// The limit reached.
        limit: Limit,
    },
    /// No such promotion.
    #[error("promotion {0} not found")]
    NotFound(PromotionId),
    /// The code belongs to another promotion.
    #[error("code {0} belongs to another promotion")]
    CodeTaken(CouponCode),
    /// A promotion or code is malformed; nothing was saved.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PromotionError {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PromotionError::Coupon { problem, .. } => problem.kind(),
            PromotionError::Exhausted { .. } => ErrorKind::Rejected,
            PromotionError::NotFound(_) => ErrorKind::NotFound,
            PromotionError::CodeTaken(_) => ErrorKind::Conflict,
            PromotionError::Invalid(_) => ErrorKind::Invalid,
            PromotionError::Store(e) => e.kind(),
        }
    }
}

/// One use of a promotion by an order, as reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionUse {
    /// The promotion.
    pub promotion: PromotionId,
    /// The code it came with.
    pub code: Option<CouponCode>,
    /// Who uses it ([`customer_key`]).
    pub customer: String,
    /// The discount it gives this order (counts against the budget).
    pub amount: Money,
}

/// The key a per-customer limit counts by: `customer:<id>` for a signed-in customer, or
/// `email:<address>` for a guest, lower case, without a `+tag` (so `Ada+1@Example.com` and
/// `ada@example.com` are one guest). A guest who gives no e-mail (a shop that neither ships
/// nor taxes needs none) counts by the customer id the application gave the checkout: ask
/// guests for an e-mail to hold them to a per-customer limit.
pub fn customer_key(customer: CustomerId, signed_in: bool, email: Option<&str>) -> String {
    match (signed_in, email) {
        (false, Some(email)) => {
            let email = email.trim().to_lowercase();
            match email.split_once('@') {
                Some((local, domain)) => {
                    let local = local.split('+').next().unwrap_or(local);
                    format!("email:{local}@{domain}")
                }
                None => format!("email:{email}"),
            }
        }
        _ => format!("customer:{customer}"),
    }
}

/// Where an order's uses stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UseState {
    /// Reserved by a placed order.
    Held,
    /// The order was confirmed.
    Committed,
    /// Given back (the order failed or was cancelled).
    Released,
}

/// How much of a promotion is used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Uses held by placed orders.
    pub held: u32,
    /// Uses of confirmed orders.
    pub committed: u32,
    /// The discount given by held and committed uses.
    pub spent: Money,
}

/// What a promotion's limits count: its uses held or committed, and the discount they gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    /// Uses held by placed orders or committed by confirmed ones.
    pub uses: u32,
    /// The discount given by those uses.
    pub spent: Money,
}

impl From<Usage> for Taken {
    fn from(usage: Usage) -> Self {
        Taken {
            uses: usage.held.saturating_add(usage.committed),
            spent: usage.spent,
        }
    }
}

/// Promotions, codes and their usage: a store every backend implements.
///
/// Every use is keyed by its order, so reserving, committing and releasing are idempotent.
#[async_trait]
pub trait PromotionStore: fmt::Debug + Send + Sync + 'static {
    /// Saves a promotion (a new one, or new terms for an existing one; its usage is kept).
    ///
    /// # Errors
    /// [`PromotionError::Invalid`], [`PromotionError::Store`].
    async fn save_promotion(&self, promotion: &Promotion) -> Result<(), PromotionError>;

    /// Every promotion, by id.
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn promotions(&self) -> Result<Vec<Promotion>, PromotionError>;

    /// The automatic promotions (not [`Promotion::code_only`]), by id: what every quote
    /// evaluates. The default filters [`PromotionStore::promotions`]; a store with many
    /// code-only promotions should answer from an index.
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn automatic(&self) -> Result<Vec<Promotion>, PromotionError> {
        let mut all = self.promotions().await?;
        all.retain(|p| !p.code_only);
        Ok(all)
    }

    /// One promotion. The default searches [`PromotionStore::promotions`].
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn promotion(&self, id: &PromotionId) -> Result<Option<Promotion>, PromotionError> {
        Ok(self.promotions().await?.into_iter().find(|p| &p.id == id))
    }

    /// Saves a code (a new one, or a new limit for an existing one of the same promotion).
    ///
    /// # Errors
    /// [`PromotionError::NotFound`] (no such promotion), [`PromotionError::CodeTaken`] (the
    /// code applies another promotion), [`PromotionError::Store`].
    async fn save_coupon(&self, coupon: &Coupon) -> Result<(), PromotionError>;

    /// A code, if it exists.
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn coupon(&self, code: &CouponCode) -> Result<Option<Coupon>, PromotionError>;

    /// Reserves an order's uses, all or nothing, each with a conditional increment of every
    /// limit it is under (the promotion's total, per-customer and budget, the code's). An
    /// order that already has uses gets nothing more (a retry).
    ///
    /// # Errors
    /// [`PromotionError::Exhausted`] naming the first limit reached (nothing reserved),
    /// [`PromotionError::NotFound`], [`PromotionError::Store`].
    async fn reserve(&self, order: OrderId, uses: &[PromotionUse]) -> Result<(), PromotionError>;

    /// Commits an order's held uses (the order is confirmed). Idempotent.
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn commit(&self, order: OrderId) -> Result<(), PromotionError>;

    /// Gives back an order's held or committed uses. Idempotent.
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn release(&self, order: OrderId) -> Result<(), PromotionError>;

    /// The state of an order's uses (`None`: it has none).
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn uses_of(&self, order: OrderId) -> Result<Option<UseState>, PromotionError>;

    /// How much of a promotion is used.
    ///
    /// # Errors
    /// [`PromotionError::NotFound`], [`PromotionError::Store`].
    async fn usage(&self, promotion: &PromotionId) -> Result<Usage, PromotionError>;

    /// What a promotion's limits count now: what a quote checks a limited promotion against
    /// before Pay (a hint: the reservation decides). The default reads [`usage`](Self::usage);
    /// a store that counts committed uses apart from the limits' own counter (the SQL store
    /// counts them from its use rows) answers it from that counter alone.
    ///
    /// # Errors
    /// [`PromotionError::NotFound`], [`PromotionError::Store`].
    async fn taken(&self, promotion: &PromotionId) -> Result<Taken, PromotionError> {
        Ok(self.usage(promotion).await?.into())
    }

    /// How many held and committed uses a code has.
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn code_uses(&self, code: &CouponCode) -> Result<u32, PromotionError>;

    /// Orders whose uses are held since before `cutoff`, with since when, oldest first
    /// (then by order id), after the `after` entry of an earlier page, at most `limit`: what
    /// recovery settles.
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    async fn held_before(
        &self,
        cutoff: DateTime<Utc>,
        after: Option<(DateTime<Utc>, OrderId)>,
        limit: usize,
    ) -> Result<Vec<(DateTime<Utc>, OrderId)>, PromotionError>;
}

// ----- evaluation -----

/// A cart line as promotions see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedItem {
    /// The SKU.
    pub sku: Sku,
    /// Units.
    pub quantity: u32,
    /// The catalog's unit price.
    pub unit_price: Money,
    /// `unit_price x quantity`, rounded to the minor unit.
    pub amount: Money,
    /// Its product's categories.
    pub categories: Vec<CategoryId>,
}

/// The cart, as [`evaluate`] sees it.
#[derive(Debug, Clone)]
pub struct PromotionCart<'a> {
    /// The currency of the lines.
    pub currency: Currency,
    /// The lines.
    pub items: &'a [PricedItem],
    /// The shipping's price, when chosen.
    pub shipping: Option<Money>,
    /// The signed-in customer (`None`: a guest).
    pub customer: Option<CustomerId>,
    /// Whether the customer has no confirmed order yet (a guest's order counts as a first
    /// one: limit such a promotion per customer, and guests count by e-mail).
    pub first_order: bool,
    /// Now.
    pub now: DateTime<Utc>,
}

/// A promotion offered to the evaluation: automatic, or with the code that brought it.
#[derive(Debug, Clone, Copy)]
pub struct Offered<'a> {
    /// The promotion.
    pub promotion: &'a Promotion,
    /// The code (for a code-only promotion, without one it does not apply).
    pub code: Option<&'a CouponCode>,
}

/// A promotion that applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// The promotion.
    pub promotion: PromotionId,
    /// Its name.
    pub name: String,
    /// The code it came with.
    pub code: Option<CouponCode>,
    /// Its class.
    pub class: DiscountClass,
    /// The discount it gives.
    pub amount: Money,
    /// Its share of each line, in the cart's order (zeros for a shipping discount).
    pub lines: Vec<Money>,
    /// Its share of the shipping.
    pub shipping: Money,
}

/// Why a promotion did not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
#[non_exhaustive]
pub enum NotApplied {
    /// It needs one of its codes.
    CodeRequired,
    /// Before its window.
    NotStarted,
    /// After its window.
    Ended,
    /// For carts in another currency.
    OtherCurrency,
    /// The subtotal is below its minimum.
    BelowMinimum {
        /// The minimum.
        minimum: Money,
    },
    /// Too few units.
    TooFewUnits {
        /// The minimum.
        minimum: u32,
    },
    /// None of its items is in the cart.
    NoMatchingItems,
    /// Not for this customer.
    OtherCustomer,
    /// Only for a first order.
    NotFirstOrder,
    /// It does not combine with a promotion applied before it.
    DoesNotCombine {
        /// That promotion.
        with: PromotionId,
    },
    /// A promotion applied before it stops the evaluation.
    StoppedBy {
        /// That promotion.
        by: PromotionId,
    },
    /// Nothing was left to discount.
    NothingToDiscount,
    /// Its uses are taken (the checkout went on without it, as asked).
    Exhausted {
        /// The limit reached.
        limit: Limit,
    },
}

/// What the evaluation decided about one promotion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trace {
    /// The promotion.
    pub promotion: PromotionId,
    /// Its name.
    pub name: String,
    /// The code it came with.
    pub code: Option<CouponCode>,
    /// `None`: it applied (see [`Evaluation::applied`]); else why not.
    pub not_applied: Option<NotApplied>,
}

/// What [`evaluate`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The promotions that applied, in the order they were applied.
    pub applied: Vec<Applied>,
    /// Every promotion offered, in the stacking order, with why it applied or not.
    pub trace: Vec<Trace>,
    /// Each line's discount, in the cart's order.
    pub lines: Vec<Money>,
    /// The shipping's discount.
    pub shipping: Money,
}

impl Evaluation {
    /// No discount on `lines` lines.
    pub fn none(currency: Currency, lines: usize) -> Self {
        Evaluation {
            applied: Vec::new(),
            trace: Vec::new(),
            lines: vec![Money::zero(currency); lines],
            shipping: Money::zero(currency),
        }
    }

    /// Every discount.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`].
    pub fn total(&self) -> Result<Money, MoneyError> {
        let currency = self.shipping.currency;
        Money::sum(currency, self.lines.iter().copied())?.checked_add(self.shipping)
    }
}

fn minor(m: Money) -> Result<i64, MoneyError> {
    m.round().to_minor()
}

/// `percent` % of `amount` minor units, rounded half away from zero.
fn percent_of(amount: i64, percent: Decimal) -> Result<i64, MoneyError> {
    let exact = Decimal::from(amount)
        .checked_mul(percent)
        .ok_or(MoneyError::Overflow)?
        / Decimal::ONE_HUNDRED;
    i64::try_from(exact.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero))
        .map_err(|_| MoneyError::Overflow)
}

/// Why a promotion does not apply to this cart at all (before stacking).
fn ineligible(
    cart: &PromotionCart<'_>,
    offered: &Offered<'_>,
    subtotal: i64,
) -> Result<Option<NotApplied>, MoneyError> {
    let p = offered.promotion;
    if p.code_only && offered.code.is_none() {
        return Ok(Some(NotApplied::CodeRequired));
    }
    if p.currency != cart.currency {
        return Ok(Some(NotApplied::OtherCurrency));
    }
    match p.window(cart.now) {
        Err(CouponProblem::NotYetValid) => return Ok(Some(NotApplied::NotStarted)),
        Err(_) => return Ok(Some(NotApplied::Ended)),
        Ok(()) => {}
    }
    for condition in &p.conditions {
        let failed = match condition {
            Condition::MinSubtotal(m) => {
                (subtotal < minor(*m)?).then_some(NotApplied::BelowMinimum { minimum: *m })
            }
            Condition::MinQuantity(n) => {
                let units: u64 = cart.items.iter().map(|i| u64::from(i.quantity)).sum();
                (units < u64::from(*n)).then_some(NotApplied::TooFewUnits { minimum: *n })
            }
            Condition::Items(filter) => (!cart.items.iter().any(|i| filter.matches(i)))
                .then_some(NotApplied::NoMatchingItems),
            Condition::Customers(customers) => {
                (!cart.customer.is_some_and(|c| customers.contains(&c)))
                    .then_some(NotApplied::OtherCustomer)
            }
            Condition::FirstOrder => (!cart.first_order).then_some(NotApplied::NotFirstOrder),
        };
        if failed.is_some() {
            return Ok(failed);
        }
    }
    Ok(None)
}

/// The discount of one line-class action on each line, given what each line still costs.
fn line_discounts(
    action: &Action,
    items: &[PricedItem],
    left: &[i64],
) -> Result<Vec<i64>, MoneyError> {
    let mut out = vec![0; items.len()];
    match action {
        Action::PercentOff {
            percent,
            target: Target::Lines(filter),
        } => {
            for (i, item) in items.iter().enumerate() {
                if filter.matches(item) {
                    out[i] = percent_of(left[i], *percent)?;
                }
            }
        }
        Action::AmountOff {
            amount,
            target: Target::Lines(filter),
        } => {
            let each = minor(*amount)?;
            for (i, item) in items.iter().enumerate() {
                if filter.matches(item) {
                    out[i] = each
                        .checked_mul(i64::from(item.quantity))
                        .ok_or(MoneyError::Overflow)?;
                }
            }
        }
        Action::BuyXGetY {
            buy,
            get,
            items: filter,
            percent,
        } => {
            // Every matching unit, by price (highest first), ties by line order.
            let mut units: Vec<(i64, usize)> = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if filter.matches(item) {
                    let price = minor(item.unit_price)?;
                    units.extend(std::iter::repeat_n((price, i), item.quantity as usize));
                }
            }
            units.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let group = buy.saturating_add(*get) as usize;
            for chunk in units.chunks(group) {
                if chunk.len() < group {
                    break;
                }
                for (price, i) in &chunk[*buy as usize..] {
                    out[*i] += percent_of(*price, *percent)?;
                }
            }
        }
        _ => {}
    }
    // Never below zero.
    for (d, l) in out.iter_mut().zip(left) {
        *d = (*d).clamp(0, (*l).max(0));
    }
    Ok(out)
}

/// Evaluates promotions on a cart: the discounts and why each promotion applied or not, in
/// the stacking order of the [module documentation](self). Pure and deterministic.
///
/// # Errors
/// [`MoneyError`] when amounts overflow or the cart mixes currencies.
pub fn evaluate(
    cart: &PromotionCart<'_>,
    offered: &[Offered<'_>],
) -> Result<Evaluation, MoneyError> {
    let currency = cart.currency;
    let money = |m: i64| Money::from_minor(m, currency);
    let mut left: Vec<i64> = Vec::with_capacity(cart.items.len());
    for item in cart.items {
        if item.amount.currency != currency {
            return Err(MoneyError::CurrencyMismatch {
                left: currency,
                right: item.amount.currency,
            });
        }
        left.push(minor(item.amount)?);
    }
    let subtotal: i64 = left.iter().sum();
    let mut shipping_left = match cart.shipping {
        Some(s) => minor(s)?,
        None => 0,
    };

    // The stacking order; a promotion offered twice (automatic and by a code, or by two
    // codes) is evaluated once, with its first code.
    let mut order: Vec<&Offered<'_>> = offered.iter().collect();
    order.sort_by(|a, b| {
        (
            a.promotion.class(),
            -i64::from(a.promotion.priority),
            &a.promotion.id,
        )
            .cmp(&(
                b.promotion.class(),
                -i64::from(b.promotion.priority),
                &b.promotion.id,
            ))
            // With a code before without one, then by code: the same promotion offered
            // twice is evaluated once, whatever the order it was offered in.
            .then_with(|| match (a.code, b.code) {
                (Some(x), Some(y)) => x.cmp(y),
                (x, y) => y.is_some().cmp(&x.is_some()),
            })
    });
    let mut seen = BTreeSet::new();
    order.retain(|o| seen.insert(o.promotion.id.clone()));

    let mut evaluation = Evaluation::none(currency, cart.items.len());
    let mut line_totals = vec![0i64; cart.items.len()];
    let mut shipping_total = 0i64;
    let mut applied: Vec<&Promotion> = Vec::new();
    let mut stopped_by: Option<PromotionId> = None;
    for o in order {
        let p = o.promotion;
        let mut trace = Trace {
            promotion: p.id.clone(),
            name: p.name.clone(),
            code: o.code.cloned(),
            not_applied: None,
        };
        let refused = if let Some(by) = &stopped_by {
            Some(NotApplied::StoppedBy { by: by.clone() })
        } else if let Some(reason) = ineligible(cart, o, subtotal)? {
            Some(reason)
        } else {
            applied
                .iter()
                .find(|a| {
                    !a.combines_with.contains(&p.class()) || !p.combines_with.contains(&a.class())
                })
                .map(|a| NotApplied::DoesNotCombine { with: a.id.clone() })
        };
        if let Some(reason) = refused {
            trace.not_applied = Some(reason);
            evaluation.trace.push(trace);
            continue;
        }
        let mut lines = vec![0i64; cart.items.len()];
        let mut shipping = 0i64;
        match p.class() {
            DiscountClass::Line => lines = line_discounts(&p.action, cart.items, &left)?,
            DiscountClass::Order => {
                let base: i64 = left.iter().sum();
                let whole = match &p.action {
                    Action::PercentOff { percent, .. } => percent_of(base, *percent)?,
                    Action::AmountOff { amount, .. } => minor(*amount)?,
                    Action::BuyXGetY { .. } => 0,
                }
                .clamp(0, base.max(0));
                let weights: Vec<Money> = left.iter().map(|l| money(*l)).collect();
                for (share, part) in lines.iter_mut().zip(allocate(money(whole), &weights)?) {
                    *share = part.to_minor()?;
                }
            }
            DiscountClass::Shipping => {
                shipping = match &p.action {
                    Action::PercentOff { percent, .. } => percent_of(shipping_left, *percent)?,
                    Action::AmountOff { amount, .. } => minor(*amount)?,
                    Action::BuyXGetY { .. } => 0,
                }
                .clamp(0, shipping_left.max(0));
            }
        }
        let amount: i64 = lines.iter().sum::<i64>() + shipping;
        if amount == 0 {
            trace.not_applied = Some(NotApplied::NothingToDiscount);
            evaluation.trace.push(trace);
            continue;
        }
        for ((l, d), t) in left.iter_mut().zip(&lines).zip(&mut line_totals) {
            *l -= d;
            *t += d;
        }
        shipping_left -= shipping;
        shipping_total += shipping;
        evaluation.applied.push(Applied {
            promotion: p.id.clone(),
            name: p.name.clone(),
            code: o.code.cloned(),
            class: p.class(),
            amount: money(amount),
            lines: lines.into_iter().map(money).collect(),
            shipping: money(shipping),
        });
        evaluation.trace.push(trace);
        applied.push(p);
        if p.stop_after {
            stopped_by = Some(p.id.clone());
        }
    }
    evaluation.lines = line_totals.into_iter().map(money).collect();
    evaluation.shipping = money(shipping_total);
    Ok(evaluation)
}

/// The uses an evaluation reserves: one per applied promotion that is limited (by its own
/// limits or its code's).
pub fn uses_of(
    evaluation: &Evaluation,
    promotions: &BTreeMap<PromotionId, Promotion>,
    coupons: &BTreeMap<CouponCode, Coupon>,
    customer: &str,
) -> Vec<PromotionUse> {
    evaluation
        .applied
        .iter()
        .filter(|a| {
            promotions.get(&a.promotion).is_some_and(|p| p.limits.any())
                || a.code
                    .as_ref()
                    .and_then(|c| coupons.get(c))
                    .is_some_and(|c| c.max_uses.is_some())
        })
        .map(|a| PromotionUse {
            promotion: a.promotion.clone(),
            code: a.code.clone(),
            customer: customer.to_owned(),
            amount: a.amount,
        })
        .collect()
}

#[cfg(test)]
mod tests;
