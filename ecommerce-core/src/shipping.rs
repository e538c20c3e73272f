//! Shipping: methods and their rates for a cart and a destination.
//!
//! A [`ShippingRates`] adapter (the integrator's, like a payment gateway; [`ZoneTable`] is the
//! built-in one) offers methods for what is shipped where. The storefront turns each offer
//! into a [`ShippingQuote`]: the method and amount, bound to the cart and the destination, with
//! an expiry and an id that covers all of them. The shopper picks one; at Pay the quote is
//! checked again (same cart, same address, not expired, and the adapter still offers the
//! method at that amount), so what was shown is what is charged.
//!
//! ```
//! use std::time::Duration;
//! use ecommerce_core::money::{Currency, Money};
//! use ecommerce_core::shipping::{Bracket, RateRule, ShippingMethod, Zone, ZoneTable};
//!
//! let usd = |cents| Money::from_minor(cents, Currency::USD);
//! let table = ZoneTable::new(vec![Zone::new("United States", &["US"]).method(
//!     ShippingMethod::new("ground", "Ground (3-5 days)", RateRule::ByWeight(vec![
//!         Bracket { up_to: 1_000, amount: usd(599) },
//!         Bracket { up_to: 10_000, amount: usd(1_299) },
//!     ]))
//!     .free_over(usd(10_000)),
//! )]);
//! # let _ = table;
//! ```

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::address::{Address, CountryCode};
use crate::id::{CartId, Sku};
use crate::money::Money;
use crate::tax::TaxClass;

/// One line of what is shipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippedItem {
    /// The SKU.
    pub sku: Sku,
    /// Units.
    pub quantity: u32,
    /// Weight of one unit, in grams.
    pub weight_grams: u32,
    /// The item's shipping class (`bulky`, `frozen`...), if any.
    pub shipping_class: Option<String>,
    /// The line's amount as priced.
    pub amount: Money,
}

/// What an adapter is asked: the methods for these items to this destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShippingRequest {
    /// The cart.
    pub cart: CartId,
    /// Where the goods go.
    pub destination: Address,
    /// What is shipped.
    pub items: Vec<ShippedItem>,
    /// The items' amounts summed, after discounts.
    pub subtotal: Money,
}

impl ShippingRequest {
    /// The total weight, in grams.
    pub fn weight_grams(&self) -> u64 {
        self.items
            .iter()
            .map(|i| u64::from(i.weight_grams) * u64::from(i.quantity))
            .sum()
    }
}

/// A method an adapter offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingOffer {
    /// The method's code, unique among the offers (`ground`, `express`).
    pub method: String,
    /// What the shopper reads.
    pub name: String,
    /// The price, in the cart's currency and the shop's price mode.
    pub amount: Money,
    /// The tax class of the shipping; `None`: shipping is not taxed.
    pub tax_class: Option<TaxClass>,
    /// How long the offer holds.
    pub valid_for: Duration,
}

/// What can go wrong quoting shipping.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShippingError {
    /// Nothing is shipped to this destination.
    #[error("no shipping to {0}")]
    NoZone(CountryCode),
    /// The adapter answered something unusable (another currency, a negative amount, two
    /// offers with one code); nothing was quoted from it.
    #[error("the shipping adapter's answer is invalid: {0}")]
    InvalidAnswer(String),
    /// The adapter could not answer (down, timed out); worth retrying.
    #[error("shipping rates are unavailable: {0}")]
    Unavailable(String),
}

/// Quotes shipping methods. Implement it for a carrier or a rate service; [`ZoneTable`] is
/// the built-in one.
#[async_trait]
pub trait ShippingRates: Send + Sync + 'static {
    /// The methods offered for these items to this destination (none: nothing ships there).
    ///
    /// # Errors
    /// [`ShippingError`].
    async fn offers(&self, request: &ShippingRequest) -> Result<Vec<ShippingOffer>, ShippingError>;
}

/// Checks an adapter's answer against its request.
///
/// # Errors
/// [`ShippingError::InvalidAnswer`]: an amount in another currency or negative, an empty or
/// repeated method code, an empty name, a zero validity.
pub fn checked_offers(
    request: &ShippingRequest,
    offers: Vec<ShippingOffer>,
) -> Result<Vec<ShippingOffer>, ShippingError> {
    for (i, offer) in offers.iter().enumerate() {
        let problem = if offer.amount.currency != request.subtotal.currency {
            Some("an amount in another currency")
        } else if offer.amount.is_negative() {
            Some("a negative amount")
        } else if offer.method.trim().is_empty() || offer.method.len() > 64 {
            Some("an empty or overlong method code")
        } else if offers[..i].iter().any(|o| o.method == offer.method) {
            Some("a method offered twice")
        } else if offer.name.trim().is_empty() {
            Some("an empty name")
        } else if offer.valid_for.is_zero() {
            Some("an offer valid for no time")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ShippingError::InvalidAnswer(format!(
                "{problem} (method `{}`)",
                offer.method.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(offers)
}

/// A shipping method offered to one cart for one destination, until it expires. The id
/// covers every field: a quote edited by a client no longer matches it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingQuote {
    /// Covers the fields below ([`ShippingQuote::is_intact`]).
    pub id: String,
    /// The cart it was quoted for.
    pub cart: CartId,
    /// The method's code.
    pub method: String,
    /// What the shopper reads.
    pub name: String,
    /// The price.
    pub amount: Money,
    /// The shipping's tax class; `None`: not taxed.
    pub tax_class: Option<TaxClass>,
    /// A digest of the destination it was quoted for.
    pub destination: String,
    /// When it stops holding.
    pub expires_at: DateTime<Utc>,
}

impl ShippingQuote {
    /// A quote of an offer for a cart and a destination, valid from `now`.
    pub fn new(
        cart: CartId,
        destination: &Address,
        offer: ShippingOffer,
        now: DateTime<Utc>,
    ) -> ShippingQuote {
        let valid_for =
            chrono::Duration::from_std(offer.valid_for).unwrap_or(chrono::Duration::days(365));
        let mut quote = ShippingQuote {
            id: String::new(),
            cart,
            method: offer.method,
            name: offer.name,
            amount: offer.amount,
            tax_class: offer.tax_class,
            destination: destination.digest(),
            expires_at: now + valid_for,
        };
        quote.id = quote.digest();
        quote
    }

    fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.cart.as_uuid().as_bytes());
        for part in [
            self.method.as_str(),
            self.name.as_str(),
            &self.amount.to_string(),
            self.tax_class.as_ref().map_or("", |c| c.as_str()),
            &self.destination,
            &self.expires_at.timestamp_micros().to_string(),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(&h.finalize()[..16])
    }

    /// Whether the id still matches the fields (nobody edited the quote).
    pub fn is_intact(&self) -> bool {
        self.id == self.digest()
    }

    /// Whether it was quoted for this destination.
    pub fn is_for(&self, destination: &Address) -> bool {
        self.destination == destination.digest()
    }
}

/// A weight or value bracket: up to this much (grams, or minor units of the subtotal), this
/// amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bracket {
    /// The bracket's upper bound, inclusive.
    pub up_to: u64,
    /// The price in the bracket.
    pub amount: Money,
}

/// How a method's price is computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateRule {
    /// One price.
    Flat(Money),
    /// By total weight in grams, the first bracket that holds it; heavier than the last:
    /// the method is not offered.
    ByWeight(Vec<Bracket>),
    /// By the items' subtotal in minor units, the first bracket that holds it; above the
    /// last: the last bracket's price.
    ByValue(Vec<Bracket>),
}

/// A method of a zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingMethod {
    /// Code, unique in the zone.
    pub code: String,
    /// What the shopper reads.
    pub name: String,
    /// The price.
    pub rate: RateRule,
    /// Free when the subtotal is at least this.
    pub free_over: Option<Money>,
    /// Not offered when any item has one of these shipping classes.
    pub excluded_classes: Vec<String>,
    /// Tax class of the shipping; `None`: not taxed.
    pub tax_class: Option<TaxClass>,
    /// How long a quote holds. Default 30 minutes.
    pub valid_for: Duration,
}

impl ShippingMethod {
    /// A method, taxed at the standard class, quotes valid for 30 minutes.
    pub fn new(code: &str, name: &str, rate: RateRule) -> ShippingMethod {
        ShippingMethod {
            code: code.to_owned(),
            name: name.to_owned(),
            rate,
            free_over: None,
            excluded_classes: Vec::new(),
            tax_class: Some(TaxClass::standard()),
            valid_for: Duration::from_secs(30 * 60),
        }
    }

    /// Free from this subtotal on.
    #[must_use]
    pub fn free_over(mut self, threshold: Money) -> ShippingMethod {
        self.free_over = Some(threshold);
        self
    }

    /// Not offered for items of this shipping class.
    #[must_use]
    pub fn excluding(mut self, class: &str) -> ShippingMethod {
        self.excluded_classes.push(class.to_owned());
        self
    }

    /// The shipping's tax class (`None`: not taxed).
    #[must_use]
    pub fn taxed_as(mut self, class: Option<TaxClass>) -> ShippingMethod {
        self.tax_class = class;
        self
    }

    /// The price for a request, or `None` when the method does not apply.
    fn price(&self, request: &ShippingRequest) -> Option<Money> {
        let excluded = request.items.iter().any(|i| {
            i.shipping_class
                .as_ref()
                .is_some_and(|c| self.excluded_classes.contains(c))
        });
        if excluded {
            return None;
        }
        let amount = match &self.rate {
            RateRule::Flat(amount) => *amount,
            RateRule::ByWeight(brackets) => {
                let weight = request.weight_grams();
                brackets.iter().find(|b| weight <= b.up_to)?.amount
            }
            RateRule::ByValue(brackets) => {
                let value = u64::try_from(request.subtotal.to_minor().ok()?).unwrap_or(0);
                brackets
                    .iter()
                    .find(|b| value <= b.up_to)
                    .or(brackets.last())?
                    .amount
            }
        };
        if amount.currency != request.subtotal.currency {
            return None;
        }
        let free = self.free_over.is_some_and(|t| {
            t.currency == request.subtotal.currency && request.subtotal.amount >= t.amount
        });
        Some(if free {
            Money::zero(amount.currency)
        } else {
            amount
        })
    }
}

/// Where a zone ships: countries, or regions of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Zone {
    /// The zone's name.
    pub name: String,
    /// ISO 3166-1 countries (`US`) or ISO 3166-2 regions (`US-AK`).
    pub destinations: Vec<String>,
    /// Its methods.
    pub methods: Vec<ShippingMethod>,
}

impl Zone {
    /// A zone without methods yet.
    pub fn new(name: &str, destinations: &[&str]) -> Zone {
        Zone {
            name: name.to_owned(),
            destinations: destinations
                .iter()
                .map(|d| d.to_ascii_uppercase())
                .collect(),
            methods: Vec::new(),
        }
    }

    /// Adds a method.
    #[must_use]
    pub fn method(mut self, method: ShippingMethod) -> Zone {
        self.methods.push(method);
        self
    }

    fn holds(&self, destination: &Address, by_region: bool) -> bool {
        match (by_region, destination.region()) {
            (true, Some(region)) => self.destinations.iter().any(|d| d == region),
            (true, None) => false,
            (false, _) => self
                .destinations
                .iter()
                .any(|d| d == destination.country().as_str()),
        }
    }
}

/// The built-in [`ShippingRates`]: zones of countries and regions, each with its methods. A
/// destination is served by the first zone naming its region, or else the first naming its
/// country.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneTable {
    /// The zones, in order.
    pub zones: Vec<Zone>,
}

impl ZoneTable {
    /// A table of these zones.
    pub fn new(zones: Vec<Zone>) -> ZoneTable {
        ZoneTable { zones }
    }

    /// The zone serving a destination.
    pub fn zone(&self, destination: &Address) -> Option<&Zone> {
        self.zones
            .iter()
            .find(|z| z.holds(destination, true))
            .or_else(|| self.zones.iter().find(|z| z.holds(destination, false)))
    }
}

#[async_trait]
impl ShippingRates for ZoneTable {
    async fn offers(&self, request: &ShippingRequest) -> Result<Vec<ShippingOffer>, ShippingError> {
        let zone = self
            .zone(&request.destination)
            .ok_or(ShippingError::NoZone(request.destination.country()))?;
        Ok(zone
            .methods
            .iter()
            .filter_map(|m| {
                m.price(request).map(|amount| ShippingOffer {
                    method: m.code.clone(),
                    name: m.name.clone(),
                    amount,
                    tax_class: m.tax_class.clone(),
                    valid_for: m.valid_for,
                })
            })
            .collect())
    }
}
