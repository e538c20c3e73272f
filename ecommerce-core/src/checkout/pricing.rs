//! Delivery details, shipping quotes and the price quote of a cart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::address::{Address, Email};
use crate::cart::Cart;
use crate::error::{CheckoutError, ShippingQuoteProblem};
use crate::id::CartId;
use crate::money::Money;
use crate::order::OrderLine;
use crate::promotion::PromotionUse;
use crate::quote::{Quote, QuoteInput};
use crate::shipping::{ShippedItem, ShippingQuote, ShippingRequest, checked_offers};
use crate::storefront::Storefront;

use super::promotions::{Exhausted, order_customer_key};
use crate::tax::{TaxItem, TaxRequest, TaxableItem, checked_rates};

/// Where an order goes and whom to tell, given with a checkout
/// ([`crate::CheckoutRequest::delivery`]). Required when the shop ships or taxes.
///
/// ```no_run
/// use std::sync::Arc;
/// use ecommerce_core::address::{Address, AddressInput};
/// use ecommerce_core::checkout::Delivery;
/// use ecommerce_core::money::{Currency, Decimal, Money};
/// use ecommerce_core::shipping::{RateRule, ShippingMethod, Zone, ZoneTable};
/// use ecommerce_core::tax::{TaxClass, TaxTable};
///
/// # async fn run(builder: ecommerce_core::storefront::StorefrontBuilder, cart: ecommerce_core::id::CartId) -> Result<(), Box<dyn std::error::Error>> {
/// let usd = |cents| Money::from_minor(cents, Currency::USD);
/// let shop = builder
///     .shipping(Arc::new(ZoneTable::new(vec![Zone::new("US", &["US"]).method(
///         ShippingMethod::new("ground", "Ground", RateRule::Flat(usd(799))).taxed_as(None),
///     )])))
///     .tax(Arc::new(TaxTable::new().rate(
///         "US", Some("US-TX"), TaxClass::standard(), Decimal::new(825, 4), "Texas sales tax",
///     )))
///     .build()?;
/// let home = Address::new(AddressInput {
///     name: "Grace Hopper".into(), line1: "1 Congress Ave".into(), city: "Austin".into(),
///     region: Some("TX".into()), postal_code: "78701".into(), country: "US".into(),
///     ..AddressInput::default()
/// })?;
/// let ground = shop.shipping_quotes(cart, &home).await?.remove(0);
/// let delivery = Delivery::new("grace@example.com".parse()?, home).with_shipping(ground);
/// let quote = shop.quote(cart, Some(&delivery)).await?; // show it; pass it back at Pay
/// # let _ = quote;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delivery {
    /// The contact e-mail (a guest's too).
    pub email: Email,
    /// Where the goods go; tax goes by it.
    pub shipping_address: Address,
    /// Where the payment is billed, when elsewhere.
    #[serde(default)]
    pub billing_address: Option<Address>,
    /// The chosen shipping method, from [`Storefront::shipping_quotes`].
    #[serde(default)]
    pub shipping: Option<ShippingQuote>,
}

impl Delivery {
    /// A delivery billed at the shipping address, with no shipping method chosen yet.
    pub fn new(email: Email, shipping_address: Address) -> Self {
        Delivery {
            email,
            shipping_address,
            billing_address: None,
            shipping: None,
        }
    }

    /// Sets where the payment is billed, when elsewhere.
    pub fn with_billing_address(mut self, billing_address: Address) -> Self {
        self.billing_address = Some(billing_address);
        self
    }

    /// Sets the chosen shipping method, from [`Storefront::shipping_quotes`].
    pub fn with_shipping(mut self, shipping: ShippingQuote) -> Self {
        self.shipping = Some(shipping);
        self
    }
}

impl Storefront {
    /// The shipping methods for a cart to an address, each a [`ShippingQuote`] bound to the
    /// cart and the address until it expires. Empty when the shop ships nothing.
    ///
    /// # Errors
    /// [`CheckoutError::CartNotFound`], [`CheckoutError::EmptyCart`],
    /// [`CheckoutError::ItemUnavailable`], [`CheckoutError::PricesChanged`] (as at Pay),
    /// [`CheckoutError::Shipping`] (no zone serves the address, the adapter failed).
    pub async fn shipping_quotes(
        &self,
        cart: CartId,
        destination: &Address,
    ) -> Result<Vec<ShippingQuote>, CheckoutError> {
        let Some(rates) = &self.shipping else {
            return Ok(Vec::new());
        };
        let cart = self.cart_to_price(cart).await?;
        let lines = self.price_lines(&cart).await?;
        let request = shipping_request(&cart, &lines, destination)?;
        let offers = checked_offers(&request, rates.offers(&request).await?)?;
        let now = Utc::now();
        Ok(offers
            .into_iter()
            .map(|offer| ShippingQuote::new(cart.id, destination, offer, now))
            .collect())
    }

    /// The price quote of a cart: catalog prices, the chosen shipping and the tax at the
    /// delivery address, every amount to the minor unit (see [`crate::quote`]). Show it for
    /// review and pass it back as [`crate::CheckoutRequest::accepted_quote`]: Pay charges it
    /// or answers what changed.
    ///
    /// # Errors
    /// As [`Storefront::shipping_quotes`], and [`CheckoutError::DeliveryRequired`],
    /// [`CheckoutError::ShippingRequired`], [`CheckoutError::ShippingQuote`],
    /// [`CheckoutError::Tax`] (no rate for an item's class at the address, the provider
    /// failed or answered nonsense).
    pub async fn quote(
        &self,
        cart: CartId,
        delivery: Option<&Delivery>,
    ) -> Result<Quote, CheckoutError> {
        let cart = self.cart_to_price(cart).await?;
        let lines = self.price_lines(&cart).await?;
        // A quote reserves nothing: the key only names who would use the promotions.
        let email = delivery.map(|d| d.email.as_str());
        let key = match cart.customer {
            Some(customer) => order_customer_key(&cart, customer, email),
            None => crate::promotion::customer_key(
                crate::id::CustomerId::new(),
                false,
                Some(email.unwrap_or("guest")),
            ),
        };
        let (quote, _) = self
            .price(&cart, &lines, delivery, &key, &[], Utc::now())
            .await?;
        Ok(quote)
    }

    pub(super) async fn cart_to_price(&self, id: CartId) -> Result<Cart, CheckoutError> {
        match self.carts.load(id).await? {
            Some(cart) if !cart.is_empty() => {
                self.remember_cart(&cart);
                Ok(cart)
            }
            Some(_) => Err(CheckoutError::EmptyCart(id)),
            None => Err(CheckoutError::CartNotFound(id)),
        }
    }

    /// The quote of priced lines: shipping re-checked with the adapter, the promotions'
    /// discounts (less the `exhausted` ones), tax asked of the provider on the discounted
    /// amounts, both answers checked, then the pure pipeline. Also the promotion uses an
    /// order of this quote reserves, for the customer `key`.
    pub(crate) async fn price(
        &self,
        cart: &Cart,
        lines: &[OrderLine],
        delivery: Option<&Delivery>,
        key: &str,
        exhausted: &[Exhausted],
        now: DateTime<Utc>,
    ) -> Result<(Quote, Vec<PromotionUse>), CheckoutError> {
        let delivery = match delivery {
            Some(d) => Some(d),
            None if self.shipping.is_some() || self.tax.is_some() => {
                return Err(CheckoutError::DeliveryRequired);
            }
            None => None,
        };
        let shipping = match (&self.shipping, delivery) {
            (Some(rates), Some(delivery)) => {
                let chosen = delivery
                    .shipping
                    .as_ref()
                    .ok_or(CheckoutError::ShippingRequired)?;
                let problem = if !chosen.is_intact() {
                    Some(ShippingQuoteProblem::Altered)
                } else if chosen.cart != cart.id {
                    Some(ShippingQuoteProblem::AnotherCart)
                } else if !chosen.is_for(&delivery.shipping_address) {
                    Some(ShippingQuoteProblem::AnotherAddress)
                } else if now >= chosen.expires_at {
                    Some(ShippingQuoteProblem::Expired)
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(CheckoutError::ShippingQuote(problem));
                }
                let request = shipping_request(cart, lines, &delivery.shipping_address)?;
                let offers = checked_offers(&request, rates.offers(&request).await?)?;
                let offer = offers
                    .into_iter()
                    .find(|o| o.method == chosen.method)
                    .ok_or_else(|| {
                        CheckoutError::ShippingQuote(ShippingQuoteProblem::NoLongerOffered(
                            chosen.method.clone(),
                        ))
                    })?;
                if offer.amount != chosen.amount || offer.tax_class != chosen.tax_class {
                    return Err(CheckoutError::ShippingQuote(
                        ShippingQuoteProblem::AmountChanged {
                            was: chosen.amount,
                            now: offer.amount,
                        },
                    ));
                }
                Some(chosen)
            }
            _ => None,
        };
        let discounts = self
            .discounts(
                cart,
                lines,
                shipping.map(|s| s.amount.round()),
                key,
                exhausted,
                now,
            )
            .await?;
        let rates = match (&self.tax, delivery) {
            (Some(provider), Some(delivery)) => {
                let mut items = Vec::with_capacity(lines.len() + 1);
                for (i, (line, discount)) in
                    lines.iter().zip(&discounts.evaluation.lines).enumerate()
                {
                    items.push(TaxableItem {
                        item: TaxItem::Line(i),
                        class: line.profile.tax_class.clone(),
                        amount: line
                            .unit_price
                            .checked_mul(line.quantity)?
                            .round()
                            .checked_sub(*discount)?,
                        quantity: line.quantity,
                    });
                }
                if let Some((shipping, class)) =
                    shipping.and_then(|s| s.tax_class.clone().map(|c| (s, c)))
                {
                    items.push(TaxableItem {
                        item: TaxItem::Shipping,
                        class,
                        amount: shipping
                            .amount
                            .round()
                            .checked_sub(discounts.evaluation.shipping)?,
                        quantity: 1,
                    });
                }
                let request = TaxRequest {
                    destination: delivery.shipping_address.clone(),
                    price_mode: self.config.tax.price_mode,
                    items,
                };
                Some(checked_rates(&request, provider.rates(&request).await?)?)
            }
            _ => None,
        };
        let mut quote = Quote::compute(QuoteInput {
            lines,
            shipping,
            discounts: Some(&discounts.evaluation),
            rates: rates.as_deref(),
            settings: self.config.tax,
            now,
            valid_for: self.config.quote_ttl,
        })?;
        quote.holds_promotion_uses = Some(!discounts.uses.is_empty());
        Ok((quote, discounts.uses))
    }
}

fn shipping_request(
    cart: &Cart,
    lines: &[OrderLine],
    destination: &Address,
) -> Result<ShippingRequest, CheckoutError> {
    let currency = lines
        .first()
        .map(|l| l.unit_price.currency)
        .ok_or(CheckoutError::EmptyCart(cart.id))?;
    let mut items = Vec::with_capacity(lines.len());
    for line in lines {
        items.push(ShippedItem {
            sku: line.sku.clone(),
            quantity: line.quantity,
            weight_grams: line.profile.weight_grams,
            shipping_class: line.profile.shipping_class.clone(),
            amount: line.unit_price.checked_mul(line.quantity)?.round(),
        });
    }
    let subtotal = Money::sum(currency, items.iter().map(|i| i.amount))?;
    Ok(ShippingRequest {
        cart: cart.id,
        destination: destination.clone(),
        items,
        subtotal,
    })
}
