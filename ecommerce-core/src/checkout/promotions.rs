//! Promotions through the storefront: codes on carts, the discounts of a quote, and the uses
//! an order reserves.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::cart::Cart;
use crate::error::CheckoutError;
use crate::id::CartId;
use crate::money::Money;
use crate::order::{OrderLine, OrderStatus};
use crate::promotion::{
    Coupon, CouponCode, CouponProblem, Evaluation, Limit, MAX_CODES_PER_CART, NotApplied, Offered,
    PricedItem, Promotion, PromotionCart, PromotionError, PromotionId, PromotionUse, Trace, Usage,
    customer_key, evaluate, uses_of,
};
use crate::storefront::Storefront;

/// A promotion left out of an evaluation because its uses are taken.
pub(crate) type Exhausted = (PromotionId, Limit);

/// What the promotions give a cart, and the uses an order of it reserves.
pub(crate) struct Discounts {
    pub(crate) evaluation: Evaluation,
    pub(crate) uses: Vec<PromotionUse>,
}

fn coupon_error(code: &str, problem: CouponProblem) -> CheckoutError {
    CheckoutError::Promotion(PromotionError::Coupon {
        code: code.to_owned(),
        problem,
    })
}

impl Storefront {
    /// Saves a promotion (new, or new terms for an existing one; its usage is kept).
    ///
    /// # Errors
    /// [`PromotionError::Invalid`], [`PromotionError::Store`].
    pub async fn save_promotion(&self, promotion: &Promotion) -> Result<(), PromotionError> {
        promotion.validate()?;
        self.promotions.save_promotion(promotion).await
    }

    /// Saves a coupon code of a saved promotion.
    ///
    /// # Errors
    /// [`PromotionError::NotFound`], [`PromotionError::CodeTaken`], [`PromotionError::Store`].
    pub async fn save_coupon(&self, coupon: &Coupon) -> Result<(), PromotionError> {
        self.promotions.save_coupon(coupon).await
    }

    /// Every promotion, by id.
    ///
    /// # Errors
    /// [`PromotionError::Store`].
    pub async fn promotions(&self) -> Result<Vec<Promotion>, PromotionError> {
        self.promotions.promotions().await
    }

    /// How much of a promotion is used.
    ///
    /// # Errors
    /// [`PromotionError::NotFound`], [`PromotionError::Store`].
    pub async fn promotion_usage(&self, id: &PromotionId) -> Result<Usage, PromotionError> {
        self.promotions.usage(id).await
    }

    /// Applies a coupon code to a cart, once it is known to be usable now: it exists, its
    /// promotion is running and for the cart's currency, it is not used up, and the cart has
    /// room for it ([`MAX_CODES_PER_CART`]). Its conditions are judged at each quote (the
    /// trace says why it does not apply to the cart as it is). The code is normalised
    /// (trimmed, upper case).
    ///
    /// # Errors
    /// [`PromotionError::Coupon`] (in [`CheckoutError::Promotion`]) naming the problem, the
    /// cart unchanged; [`CheckoutError::CartNotFound`], store errors.
    pub async fn apply_coupon(&self, cart: CartId, code: &str) -> Result<Cart, CheckoutError> {
        let Ok(normal) = CouponCode::new(code) else {
            return Err(coupon_error(code, CouponProblem::Unknown));
        };
        let current = self
            .carts
            .load(cart)
            .await?
            .ok_or(CheckoutError::CartNotFound(cart))?;
        if current.coupons.contains(&normal) {
            return Err(coupon_error(code, CouponProblem::AlreadyApplied));
        }
        if current.coupons.len() >= MAX_CODES_PER_CART {
            return Err(coupon_error(code, CouponProblem::TooMany));
        }
        let coupon = self
            .promotions
            .coupon(&normal)
            .await?
            .ok_or_else(|| coupon_error(code, CouponProblem::Unknown))?;
        let promotion = self
            .promotions
            .promotion(&coupon.promotion)
            .await?
            .ok_or_else(|| coupon_error(code, CouponProblem::Unknown))?;
        promotion
            .window(Utc::now())
            .map_err(|problem| coupon_error(code, problem))?;
        if current.currency().is_some_and(|c| c != promotion.currency) {
            return Err(coupon_error(code, CouponProblem::OtherCurrency));
        }
        let usage = self.promotions.usage(&promotion.id).await?;
        let code_full = match coupon.max_uses {
            Some(max) => self.promotions.code_uses(&normal).await? >= max,
            None => false,
        };
        if code_full
            || promotion
                .limits
                .total
                .is_some_and(|max| usage.held + usage.committed >= max)
            || promotion
                .limits
                .budget
                .is_some_and(|b| usage.spent.amount >= b.amount)
        {
            return Err(coupon_error(code, CouponProblem::Exhausted));
        }
        let mut current = current;
        for _ in 0..16 {
            if current.coupons.contains(&normal) {
                return Ok(current);
            }
            if current.coupons.len() >= MAX_CODES_PER_CART {
                return Err(coupon_error(code, CouponProblem::TooMany));
            }
            let mut changed = current.clone();
            changed.coupons.push(normal.clone());
            match self.carts.save(&changed).await {
                Err(crate::error::CartError::VersionConflict { .. }) => {
                    current = self
                        .carts
                        .load(cart)
                        .await?
                        .ok_or(CheckoutError::CartNotFound(cart))?;
                }
                other => return Ok(other?),
            }
        }
        Err(crate::error::CartError::VersionConflict { cart }.into())
    }

    /// Takes a coupon code off a cart (a code it does not carry changes nothing).
    ///
    /// # Errors
    /// [`CheckoutError::Cart`] with [`crate::error::CartError::NotFound`], store errors.
    pub async fn remove_coupon(&self, cart: CartId, code: &str) -> Result<Cart, CheckoutError> {
        let code = code.trim().to_ascii_uppercase();
        Ok(self
            .change_cart(cart, |c| {
                c.coupons.retain(|k| k.as_str() != code);
                Ok(())
            })
            .await?)
    }

    /// What the promotions give a cart as it is, before an address or shipping is chosen
    /// (shipping discounts show as nothing to discount until then): the discounts and the
    /// trace of why each promotion applies or not, to show on the cart page. The quote at
    /// review and Pay evaluates again, with the shipping.
    ///
    /// # Errors
    /// [`CheckoutError::CartNotFound`], [`CheckoutError::EmptyCart`],
    /// [`CheckoutError::ItemUnavailable`], [`CheckoutError::PricesChanged`], store errors.
    pub async fn cart_discounts(&self, cart: CartId) -> Result<Evaluation, CheckoutError> {
        let cart = self.cart_to_price(cart).await?;
        let lines = self.price_lines(&cart).await?;
        let key = customer_key(
            cart.customer.unwrap_or_else(crate::id::CustomerId::new),
            cart.customer.is_some(),
            None,
        );
        Ok(self
            .discounts(&cart, &lines, None, &key, &[], Utc::now())
            .await?
            .evaluation)
    }

    /// The promotions' discounts on priced lines: the cart's codes and the automatic
    /// promotions, less those whose uses are taken (`exhausted`), evaluated at `now`; and
    /// the uses an order would reserve, for `customer` (see [`customer_key`]).
    pub(crate) async fn discounts(
        &self,
        cart: &Cart,
        lines: &[OrderLine],
        shipping: Option<Money>,
        customer: &str,
        exhausted: &[Exhausted],
        now: DateTime<Utc>,
    ) -> Result<Discounts, CheckoutError> {
        let currency = lines
            .first()
            .map(|l| l.unit_price.currency)
            .ok_or(CheckoutError::EmptyCart(cart.id))?;
        let mut promotions: BTreeMap<PromotionId, Promotion> = self
            .promotions
            .automatic()
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        let mut coupons = BTreeMap::new();
        for code in &cart.coupons {
            if let Some(coupon) = self.promotions.coupon(code).await? {
                if !promotions.contains_key(&coupon.promotion) {
                    if let Some(p) = self.promotions.promotion(&coupon.promotion).await? {
                        promotions.insert(p.id.clone(), p);
                    }
                }
                coupons.insert(code.clone(), coupon);
            }
        }
        if promotions.is_empty() {
            return Ok(Discounts {
                evaluation: Evaluation::none(currency, lines.len()),
                uses: Vec::new(),
            });
        }
        let left_out: BTreeSet<&PromotionId> = exhausted.iter().map(|(p, _)| p).collect();
        let mut offered = Vec::new();
        for p in promotions.values() {
            if !p.code_only && !left_out.contains(&p.id) {
                offered.push(Offered {
                    promotion: p,
                    code: None,
                });
            }
        }
        for (code, coupon) in &coupons {
            if let Some(p) = promotions.get(&coupon.promotion) {
                if !left_out.contains(&p.id) {
                    offered.push(Offered {
                        promotion: p,
                        code: Some(code),
                    });
                }
            }
        }
        // Used up already (a hint: the reservation at Pay decides): left out with a trace,
        // so the quote shows the price without them rather than a Pay that cannot succeed.
        let mut used_up: Vec<(PromotionId, Option<CouponCode>, Limit)> = Vec::new();
        for o in &offered {
            let p = o.promotion;
            let mut limit = None;
            if p.limits.total.is_some() || p.limits.budget.is_some() {
                let usage = self.promotions.usage(&p.id).await?;
                if p.limits
                    .total
                    .is_some_and(|max| usage.held + usage.committed >= max)
                {
                    limit = Some(Limit::Total);
                } else if p
                    .limits
                    .budget
                    .is_some_and(|b| usage.spent.amount >= b.amount)
                {
                    limit = Some(Limit::Budget);
                }
            }
            if let (None, Some(code)) = (limit, o.code) {
                if let Some(max) = coupons.get(code).and_then(|c| c.max_uses) {
                    if self.promotions.code_uses(code).await? >= max {
                        limit = Some(Limit::Code);
                    }
                }
            }
            if let Some(limit) = limit {
                used_up.push((p.id.clone(), o.code.cloned(), limit));
            }
        }
        offered.retain(|o| {
            !used_up
                .iter()
                .any(|(id, code, _)| *id == o.promotion.id && code.as_ref() == o.code)
        });
        let by_category = offered.iter().any(|o| {
            let p = o.promotion;
            let filters = p.conditions.iter().filter_map(|c| match c {
                crate::promotion::Condition::Items(f) => Some(f),
                _ => None,
            });
            let action = match &p.action {
                crate::promotion::Action::PercentOff {
                    target: crate::promotion::Target::Lines(f),
                    ..
                }
                | crate::promotion::Action::AmountOff {
                    target: crate::promotion::Target::Lines(f),
                    ..
                }
                | crate::promotion::Action::BuyXGetY { items: f, .. } => Some(f),
                _ => None,
            };
            filters.chain(action).any(|f| !f.categories.is_empty())
        });
        let mut items = Vec::with_capacity(lines.len());
        let offers = if by_category {
            let skus: Vec<_> = lines.iter().map(|l| l.sku.clone()).collect();
            self.catalog.offers(&skus).await?
        } else {
            Default::default()
        };
        let mut categories = BTreeMap::new();
        for line in lines {
            let mut of_line = Vec::new();
            if let Some(offer) = offers.get(&line.sku) {
                if let std::collections::btree_map::Entry::Vacant(entry) =
                    categories.entry(offer.product)
                {
                    let product = self.catalog.product(offer.product).await?;
                    entry.insert(product.map(|p| vec![p.category]).unwrap_or_default());
                }
                of_line = categories[&offer.product].clone();
            }
            items.push(PricedItem {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price: line.unit_price,
                amount: line.unit_price.checked_mul(line.quantity)?.round(),
                categories: of_line,
            });
        }
        let first_order = match cart.customer {
            Some(customer)
                if offered.iter().any(|o| {
                    o.promotion
                        .conditions
                        .contains(&crate::promotion::Condition::FirstOrder)
                }) =>
            {
                !self
                    .orders
                    .history(customer, None, crate::order::MAX_HISTORY_PAGE)
                    .await?
                    .items
                    .iter()
                    .any(|o| {
                        matches!(
                            o.status,
                            OrderStatus::Confirmed | OrderStatus::Shipped | OrderStatus::Delivered
                        )
                    })
            }
            _ => true,
        };
        let mut evaluation = evaluate(
            &PromotionCart {
                currency,
                items: &items,
                shipping,
                customer: cart.customer,
                first_order,
                now,
            },
            &offered,
        )?;
        for (id, limit) in exhausted {
            if let Some(p) = promotions.get(id) {
                evaluation.trace.push(Trace {
                    promotion: id.clone(),
                    name: p.name.clone(),
                    code: cart
                        .coupons
                        .iter()
                        .find(|c| coupons.get(*c).is_some_and(|k: &Coupon| &k.promotion == id))
                        .cloned(),
                    not_applied: Some(NotApplied::Exhausted { limit: *limit }),
                });
            }
        }
        for (id, code, limit) in used_up {
            evaluation.trace.push(Trace {
                name: promotions
                    .get(&id)
                    .map(|p| p.name.clone())
                    .unwrap_or_default(),
                promotion: id,
                code,
                not_applied: Some(NotApplied::Exhausted { limit }),
            });
        }
        let uses = uses_of(&evaluation, &promotions, &coupons, customer);
        Ok(Discounts { evaluation, uses })
    }
}

/// The key an order's per-customer uses count by: the signed-in customer, or a guest's
/// contact e-mail.
pub(crate) fn order_customer_key(
    cart: &Cart,
    customer: crate::id::CustomerId,
    email: Option<&str>,
) -> String {
    customer_key(customer, cart.customer.is_some(), email)
}
