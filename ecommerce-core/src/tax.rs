//! Tax: classes, rates, who answers them, and how amounts are rounded.
//!
//! A [`TaxProvider`] answers one rate per taxed item (each cart line, and the shipping) for a
//! destination; the library computes the amounts itself ([`crate::quote`]), with the shop's
//! [`TaxSettings`]: whether catalog prices include tax ([`PriceMode`]) and where amounts are
//! rounded ([`RoundingPolicy`]). A provider's answer is checked before it is used
//! ([`TaxError::InvalidAnswer`]): one rate per item asked, each between 0 and 100 %.
//!
//! [`TaxTable`] is the built-in provider: rates by country, optionally by region, and tax
//! class. Plug in a tax service by implementing [`TaxProvider`].
//!
//! ```
//! use rust_decimal_macros::dec;
//! use ecommerce_core::tax::{TaxClass, TaxTable};
//!
//! let table = TaxTable::new()
//!     .rate("US", Some("US-TX"), TaxClass::standard(), dec!(0.0825), "Texas sales tax")
//!     .rate("DE", None, TaxClass::standard(), dec!(0.19), "USt 19%")
//!     .rate("DE", None, TaxClass::new("reduced")?, dec!(0.07), "USt 7%");
//! # let _ = table;
//! # Ok::<(), ecommerce_core::error::ValidationError>(())
//! ```

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::address::{Address, CountryCode};
use crate::error::ValidationError;
use crate::money::Money;

/// A tax class: which rate applies to an item (`standard`, `reduced`, `zero`...). Lower case
/// letters, digits, `-` and `_`, 1 to 32 of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TaxClass(String);

impl TaxClass {
    /// A tax class.
    ///
    /// # Errors
    /// [`ValidationError::Invalid`] for an empty or malformed name.
    pub fn new(name: &str) -> Result<TaxClass, ValidationError> {
        let ok = (1..=32).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(TaxClass(name.to_owned()))
        } else {
            Err(ValidationError::Invalid {
                field: "tax class",
                reason: "1-32 lower case letters, digits, - or _".into(),
            })
        }
    }

    /// The `standard` class, every item's unless it says otherwise.
    pub fn standard() -> TaxClass {
        TaxClass("standard".to_owned())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TaxClass {
    fn default() -> Self {
        TaxClass::standard()
    }
}

impl TryFrom<String> for TaxClass {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        TaxClass::new(&value)
    }
}

impl From<TaxClass> for String {
    fn from(value: TaxClass) -> Self {
        value.0
    }
}

impl fmt::Display for TaxClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether catalog prices (and shipping amounts) include tax.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriceMode {
    /// Prices are net; tax is added on top (the United States, Canada).
    #[default]
    Exclusive,
    /// Prices are gross; the tax inside is backed out of them (the European Union, the
    /// United Kingdom, Australia). The shopper pays the price shown.
    Inclusive,
}

/// Where tax amounts are rounded to the currency's minor unit. Whatever the policy, the lines'
/// taxes (and the shipping's) sum exactly to the document's tax.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoundingPolicy {
    /// Each unit's tax is rounded, then multiplied by the quantity.
    PerUnit,
    /// Each line's tax is rounded.
    #[default]
    PerLine,
    /// The tax of all items at one rate is computed on their sum and rounded once; it is then
    /// shared over the items by largest remainder (the EU VAT invoice rule).
    PerDocument,
}

/// How a shop's prices and taxes work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSettings {
    /// Whether prices include tax.
    pub price_mode: PriceMode,
    /// Where amounts are rounded.
    pub rounding: RoundingPolicy,
}

/// What is taxed: a cart line (by its position) or the shipping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxItem {
    /// The line at this position in the cart.
    Line(usize),
    /// The shipping.
    Shipping,
}

/// One item a provider is asked to rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxableItem {
    /// Which item.
    pub item: TaxItem,
    /// Its tax class.
    pub class: TaxClass,
    /// Its amount (after discounts), in the shop's [`PriceMode`].
    pub amount: Money,
    /// Units (1 for shipping).
    pub quantity: u32,
}

/// What a provider is asked: the rates of these items shipped to this destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRequest {
    /// Where the goods go.
    pub destination: Address,
    /// Whether the amounts include tax.
    pub price_mode: PriceMode,
    /// The items.
    pub items: Vec<TaxableItem>,
}

/// A provider's answer for one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxRate {
    /// Which item.
    pub item: TaxItem,
    /// The rate, a fraction: `0.19` is 19 %. Between 0 and 1.
    pub rate: Decimal,
    /// The tax's name on the invoice (`USt 19%`, `Texas sales tax`).
    pub name: String,
}

/// What can go wrong computing tax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaxError {
    /// No rate is known for this class at this destination.
    #[error("no {class} tax rate for {country}{}", region.as_ref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NoRate {
        /// The country.
        country: CountryCode,
        /// The region, if the destination has one.
        region: Option<String>,
        /// The class.
        class: TaxClass,
    },
    /// The provider answered something unusable (a missing, repeated or unknown item, a
    /// rate out of range); nothing was computed from it.
    #[error("the tax provider's answer is invalid: {0}")]
    InvalidAnswer(String),
    /// The provider could not answer (down, timed out); worth retrying.
    #[error("the tax provider is unavailable: {0}")]
    Unavailable(String),
}

/// Answers tax rates. Implement it for a tax service; [`TaxTable`] is the built-in one.
#[async_trait]
pub trait TaxProvider: Send + Sync + 'static {
    /// One rate for every item of the request.
    ///
    /// # Errors
    /// [`TaxError::NoRate`] for an item no rate applies to, [`TaxError::Unavailable`] when
    /// the service cannot answer.
    async fn rates(&self, request: &TaxRequest) -> Result<Vec<TaxRate>, TaxError>;
}

/// Checks a provider's answer against its request and puts the rates in the items' order.
///
/// # Errors
/// [`TaxError::InvalidAnswer`]: an item missing, answered twice or not asked, a rate below 0
/// or above 1, an empty or overlong name.
pub fn checked_rates(request: &TaxRequest, answer: Vec<TaxRate>) -> Result<Vec<TaxRate>, TaxError> {
    let mut by_item: HashMap<TaxItem, TaxRate> = HashMap::with_capacity(answer.len());
    for rate in answer {
        if !request.items.iter().any(|i| i.item == rate.item) {
            return Err(TaxError::InvalidAnswer(format!(
                "{:?} was not asked for",
                rate.item
            )));
        }
        if rate.rate < Decimal::ZERO || rate.rate > Decimal::ONE {
            return Err(TaxError::InvalidAnswer(format!(
                "rate {} for {:?} is not between 0 and 1",
                rate.rate, rate.item
            )));
        }
        if rate.name.trim().is_empty() || rate.name.chars().count() > 64 {
            return Err(TaxError::InvalidAnswer(format!(
                "the name of {:?} is empty or longer than 64 characters",
                rate.item
            )));
        }
        let item = rate.item;
        if by_item.insert(item, rate).is_some() {
            return Err(TaxError::InvalidAnswer(format!(
                "{item:?} was answered twice"
            )));
        }
    }
    request
        .items
        .iter()
        .map(|i| {
            by_item
                .remove(&i.item)
                .ok_or_else(|| TaxError::InvalidAnswer(format!("{:?} has no rate", i.item)))
        })
        .collect()
}

/// The built-in provider: rates by country, optionally narrowed to a region, and class. A
/// region's rate wins over its country's.
#[derive(Debug, Clone, Default)]
pub struct TaxTable {
    rates: HashMap<(CountryCode, Option<String>, TaxClass), (Decimal, String)>,
}

impl TaxTable {
    /// An empty table.
    pub fn new() -> TaxTable {
        TaxTable::default()
    }

    /// Adds a rate (a fraction, `0.19` for 19 %) for a class in a country, or only in one of
    /// its regions (an ISO 3166-2 code such as `US-TX`).
    ///
    /// # Panics
    /// On a country that is not ISO 3166-1, a region that does not start with the country's
    /// code, or a rate outside 0..=1: a table is configuration, written once.
    #[must_use]
    pub fn rate(
        mut self,
        country: &str,
        region: Option<&str>,
        class: TaxClass,
        rate: Decimal,
        name: &str,
    ) -> TaxTable {
        let country: CountryCode = country.parse().expect("an ISO 3166-1 alpha-2 country");
        if let Some(region) = region {
            assert!(
                region.starts_with(&format!("{country}-")),
                "region {region} is not in {country}"
            );
        }
        assert!(
            (Decimal::ZERO..=Decimal::ONE).contains(&rate),
            "a tax rate is a fraction between 0 and 1"
        );
        self.rates.insert(
            (country, region.map(str::to_owned), class),
            (rate, name.to_owned()),
        );
        self
    }

    /// The rate of a class at a destination.
    ///
    /// # Errors
    /// [`TaxError::NoRate`].
    pub fn lookup(&self, destination: &Address, class: &TaxClass) -> Result<TaxRate, TaxError> {
        let country = destination.country();
        let region = destination.region().map(str::to_owned);
        let found = region
            .as_ref()
            .and_then(|r| self.rates.get(&(country, Some(r.clone()), class.clone())))
            .or_else(|| self.rates.get(&(country, None, class.clone())));
        match found {
            Some((rate, name)) => Ok(TaxRate {
                item: TaxItem::Shipping,
                rate: *rate,
                name: name.clone(),
            }),
            None => Err(TaxError::NoRate {
                country,
                region,
                class: class.clone(),
            }),
        }
    }
}

#[async_trait]
impl TaxProvider for TaxTable {
    async fn rates(&self, request: &TaxRequest) -> Result<Vec<TaxRate>, TaxError> {
        request
            .items
            .iter()
            .map(|i| {
                self.lookup(&request.destination, &i.class)
                    .map(|rate| TaxRate {
                        item: i.item,
                        ..rate
                    })
            })
            .collect()
    }
}
