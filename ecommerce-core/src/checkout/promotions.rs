//! Promotions through the storefront: codes on carts, the discounts of a quote, and the uses
//! an order reserves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::cart::Cart;
use crate::error::CheckoutError;
use crate::id::CartId;
use crate::money::Money;
use crate::order::{OrderLine, OrderStatus};
use crate::promotion::{
    Coupon, CouponCode, CouponProblem, Evaluation, Limit, MAX_CODES_PER_CART, NotApplied, Offered,
    PricedItem, Promotion, PromotionCart, PromotionError, PromotionId, PromotionStore,
    PromotionUse, Trace, Usage, customer_key, evaluate, uses_of,
};
use crate::storefront::Storefront;

/// The automatic promotions as last read from the store, used again for a time to live
/// ([`crate::StorefrontConfig::promotion_cache_ttl`]; zero reads every time). A save through
/// the storefront forgets them, and a read that began before the save is not kept.
#[derive(Debug)]
pub(crate) struct PromotionCache {
    ttl: Duration,
    /// The number of saves so far, and the promotions last read with when they were read.
    state: Mutex<(u64, Option<Kept>)>,
}

/// Promotions as read, and when.
type Kept = (Instant, Arc<Vec<Promotion>>);

impl PromotionCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        PromotionCache {
            ttl,
            state: Mutex::new((0, None)),
        }
    }

    /// The automatic promotions: kept ones younger than the time to live, else the store's.
    pub(crate) async fn get(
        &self,
        store: &dyn PromotionStore,
    ) -> Result<Arc<Vec<Promotion>>, PromotionError> {
        if self.ttl.is_zero() {
            return Ok(Arc::new(store.automatic().await?));
        }
        let saves = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((read_at, promotions)) = &state.1 {
                if read_at.elapsed() < self.ttl {
                    return Ok(promotions.clone());
                }
            }
            state.0
        };
        let read_at = Instant::now();
        let promotions = Arc::new(store.automatic().await?);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.0 == saves {
            state.1 = Some((read_at, promotions.clone()));
        }
        Ok(promotions)
    }

    /// Forgets the kept promotions (one was saved).
    pub(crate) fn forget(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 += 1;
        state.1 = None;
    }
}

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
        let saved = self.promotions.save_promotion(promotion).await;
        self.automatic_promotions.forget();
        saved
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
        let taken = self.promotions.taken(&promotion.id).await?;
        let code_full = match coupon.max_uses {
            Some(max) => self.promotions.code_uses(&normal).await? >= max,
            None => false,
        };
        if code_full
            || promotion.limits.total.is_some_and(|max| taken.uses >= max)
            || promotion
                .limits
                .budget
                .is_some_and(|b| taken.spent.amount >= b.amount)
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
                Ok(stored) => {
                    self.remember_cart(&stored);
                    return Ok(stored);
                }
                Err(crate::error::CartError::VersionConflict { .. }) => {
                    current = self
                        .carts
                        .load(cart)
                        .await?
                        .ok_or(CheckoutError::CartNotFound(cart))?;
                }
                Err(e) => return Err(e.into()),
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
        self.discounts_of(&cart).await
    }

    /// [`Storefront::cart_discounts`] of a cart already at hand (as a cart change returned
    /// it), without reading it again. A line whose catalog price moved is repriced in the
    /// stored cart and reported, as there.
    ///
    /// # Errors
    /// [`CheckoutError::EmptyCart`], [`CheckoutError::ItemUnavailable`],
    /// [`CheckoutError::PricesChanged`], store errors.
    pub async fn discounts_of(&self, cart: &Cart) -> Result<Evaluation, CheckoutError> {
        if cart.is_empty() {
            return Err(CheckoutError::EmptyCart(cart.id));
        }
        let lines = self.price_lines(cart).await?;
        let key = customer_key(
            cart.customer.unwrap_or_else(crate::id::CustomerId::new),
            cart.customer.is_some(),
            None,
        );
        Ok(self
            .discounts(cart, &lines, None, &key, &[], Utc::now())
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
            .automatic_promotions
            .get(self.promotions.as_ref())
            .await?
            .iter()
            .map(|p| (p.id.clone(), p.clone()))
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
                let taken = self.promotions.taken(&p.id).await?;
                if p.limits.total.is_some_and(|max| taken.uses >= max) {
                    limit = Some(Limit::Total);
                } else if p
                    .limits
                    .budget
                    .is_some_and(|b| taken.spent.amount >= b.amount)
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::catalog::{Product, Variant};
    use crate::id::{CategoryId, ProductId, Sku};
    use crate::memory::{
        MemoryCartStore, MemoryCatalog, MemoryInventory, MemoryOrderStore, MemoryPromotions,
    };
    use crate::money::{Currency, Money};
    use crate::payment::TestGateway;
    use crate::promotion::{Action, Promotion, PromotionStore, Target};
    use crate::storefront::{Storefront, StorefrontConfig};

    fn off(id: &str, minor: i64) -> Promotion {
        Promotion::new(
            id,
            id,
            Currency::USD,
            Action::AmountOff {
                amount: Money::from_minor(minor, Currency::USD),
                target: Target::Order,
            },
        )
        .expect("valid promotion")
    }

    #[tokio::test]
    async fn kept_promotions_are_used_again_until_one_is_saved_through_the_storefront() {
        let store = Arc::new(MemoryPromotions::new());
        let shop = Storefront::builder()
            .catalog(Arc::new(MemoryCatalog::new()))
            .carts(Arc::new(MemoryCartStore::new()))
            .inventory(Arc::new(MemoryInventory::new()))
            .orders(Arc::new(MemoryOrderStore::new()))
            .payments(Arc::new(TestGateway::default()))
            .promotions(store.clone())
            .with_memory_defaults()
            .config(StorefrontConfig::default().with_promotion_cache_ttl(Duration::from_secs(3600)))
            .build()
            .expect("every store is given");
        let sku = Sku::new("KEPT-1").expect("sku");
        shop.upsert_product(
            Product::new(
                ProductId::new(),
                "Mug",
                CategoryId::new("home").expect("slug"),
            )
            .with_variants([Variant::new(
                sku.clone(),
                Money::from_minor(1_000, Currency::USD),
            )]),
        )
        .await
        .expect("product");
        let cart = shop.create_guest_cart().await.expect("cart");
        shop.add_item(cart.id, &sku, 1).await.expect("add");
        let discount = || async {
            shop.quote(cart.id, None)
                .await
                .expect("quote")
                .discount_total
        };

        assert_eq!(discount().await, Money::from_minor(0, Currency::USD));
        shop.save_promotion(&off("one", 100)).await.expect("save");
        assert_eq!(
            discount().await,
            Money::from_minor(100, Currency::USD),
            "a promotion saved through the storefront is seen at once"
        );
        // Saved behind the storefront's back: the kept definitions stand for their time.
        store.save_promotion(&off("two", 200)).await.expect("save");
        assert_eq!(discount().await, Money::from_minor(100, Currency::USD));
        shop.save_promotion(&off("three", 300)).await.expect("save");
        assert_eq!(
            discount().await,
            Money::from_minor(600, Currency::USD),
            "every save through the storefront reads them all again"
        );
    }

    #[tokio::test]
    async fn without_a_time_to_live_every_read_asks_the_store() {
        let store = MemoryPromotions::new();
        let cache = super::PromotionCache::new(Duration::ZERO);
        assert!(cache.get(&store).await.expect("read").is_empty());
        store.save_promotion(&off("one", 100)).await.expect("save");
        assert_eq!(cache.get(&store).await.expect("read").len(), 1);
    }
}
