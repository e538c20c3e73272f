//! The price quote: one pure pipeline from priced lines to what is charged.
//!
//! lines (catalog prices) -> discounts -> shipping -> tax -> totals, in the currency's minor
//! units, giving a [`Quote`]: every line's net, tax and total, the shipping's, the taxes by
//! rate, and the document's totals, with a hash of all of it and an expiry. Checkout charges
//! exactly a quote's [`Quote::total`] and stores the quote on the order; a shopper's accepted
//! quote whose hash no longer matches is answered with what changed
//! ([`Quote::changes_since`]).
//!
//! The parts always sum to the whole: the lines' and the shipping's taxes sum to
//! [`Quote::tax_total`] (and to the taxes by rate), their totals to [`Quote::total`], and
//! for each item `net + tax = total`. With tax-inclusive prices the tax inside a price is
//! backed out and the net is what remains, so the gross price is recomposed exactly. A
//! amount shared over lines is shared by largest remainder ([`allocate`]).
//!
//! [`Quote::compute`] is deterministic: the same input gives the same quote and hash.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::id::Sku;
use crate::money::{Currency, Money, MoneyError};
use crate::order::OrderLine;
use crate::promotion::{Applied, Evaluation, Trace};
use crate::shipping::ShippingQuote;
use crate::tax::{PriceMode, RoundingPolicy, TaxItem, TaxRate, TaxSettings};

/// One line of a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteLine {
    /// The SKU.
    pub sku: Sku,
    /// Units.
    pub quantity: u32,
    /// The catalog's unit price, in the shop's price mode.
    pub unit_price: Money,
    /// `unit_price x quantity`.
    pub amount: Money,
    /// The line's share of discounts (zero without any).
    pub discount: Money,
    /// The line without tax, after discounts.
    pub net: Money,
    /// The tax on the line.
    pub tax: Money,
    /// `net + tax`: what the line costs the shopper.
    pub total: Money,
    /// The rate applied (0 when untaxed).
    pub tax_rate: Decimal,
    /// The tax's name, when taxed.
    pub tax_name: Option<String>,
}

/// The shipping of a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "StoredShipping")]
pub struct QuoteShipping {
    /// The method's code.
    pub method: String,
    /// Its name.
    pub name: String,
    /// The quoted price, in the shop's price mode.
    pub amount: Money,
    /// The shipping's discount (zero without one).
    pub discount: Money,
    /// Without tax, after the discount.
    pub net: Money,
    /// The tax on the shipping.
    pub tax: Money,
    /// `net + tax`.
    pub total: Money,
    /// The rate applied.
    pub tax_rate: Decimal,
    /// The tax's name, when taxed.
    pub tax_name: Option<String>,
}

/// A [`QuoteShipping`] as stored: quotes written before discounts existed have none.
#[derive(Deserialize)]
struct StoredShipping {
    method: String,
    name: String,
    amount: Money,
    #[serde(default)]
    discount: Option<Money>,
    net: Money,
    tax: Money,
    total: Money,
    tax_rate: Decimal,
    tax_name: Option<String>,
}

impl From<StoredShipping> for QuoteShipping {
    fn from(s: StoredShipping) -> Self {
        QuoteShipping {
            discount: s.discount.unwrap_or_else(|| Money::zero(s.amount.currency)),
            method: s.method,
            name: s.name,
            amount: s.amount,
            net: s.net,
            tax: s.tax,
            total: s.total,
            tax_rate: s.tax_rate,
            tax_name: s.tax_name,
        }
    }
}

/// The tax at one rate over the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaxSummary {
    /// The tax's name.
    pub name: String,
    /// The rate.
    pub rate: Decimal,
    /// The net amounts taxed at it.
    pub base: Money,
    /// The tax.
    pub tax: Money,
}

/// A frozen price: what an order costs, to the minor unit, until it expires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// The currency of every amount.
    pub currency: Currency,
    /// How the prices were read and the taxes rounded.
    pub settings: TaxSettings,
    /// The lines, in the cart's order.
    pub lines: Vec<QuoteLine>,
    /// The shipping, if the order ships.
    pub shipping: Option<QuoteShipping>,
    /// Taxes by name and rate, in name order.
    pub taxes: Vec<TaxSummary>,
    /// The promotions applied, in the order they were, each with its share of every line
    /// and of the shipping (their sums are the lines' and the shipping's discounts).
    #[serde(default)]
    pub promotions: Vec<Applied>,
    /// Why each promotion offered applied or not (not part of the hash: it explains the
    /// amounts, which are).
    #[serde(default)]
    pub promotion_trace: Vec<Trace>,
    /// The lines' amounts as priced, before discounts.
    pub subtotal: Money,
    /// The discounts, of the lines and of the shipping.
    pub discount_total: Money,
    /// The shipping's total (zero without shipping).
    pub shipping_total: Money,
    /// Every tax.
    pub tax_total: Money,
    /// What is charged: the lines' and the shipping's totals.
    pub total: Money,
    /// A SHA-256 of everything above, hex.
    pub hash: String,
    /// Until when the quote holds.
    pub expires_at: DateTime<Utc>,
    /// Whether an order of this quote holds promotion uses: one of its promotions (or its
    /// code) has a limit, so placing the order counted a use that its confirmation commits
    /// and its failure gives back. `None` for a quote that does not say (stored before it
    /// was recorded): see [`Quote::may_hold_promotion_uses`]. Not part of the hash: it
    /// follows from the promotions applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holds_promotion_uses: Option<bool>,
}

/// What goes into a quote.
#[derive(Debug, Clone)]
pub struct QuoteInput<'a> {
    /// The priced lines (every one in one currency).
    pub lines: &'a [OrderLine],
    /// The chosen shipping.
    pub shipping: Option<&'a ShippingQuote>,
    /// The promotions' discounts ([`crate::promotion::evaluate`] on these lines and this
    /// shipping); `None`: no discount.
    pub discounts: Option<&'a Evaluation>,
    /// The rates of the lines, in their order, then of the shipping (when it is taxed), as
    /// checked by [`crate::tax::checked_rates`]; `None`: nothing is taxed.
    pub rates: Option<&'a [TaxRate]>,
    /// The shop's price mode and rounding.
    pub settings: TaxSettings,
    /// Now.
    pub now: DateTime<Utc>,
    /// How long the quote holds (no longer than its shipping quote).
    pub valid_for: Duration,
}

/// Why a quote could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QuoteError {
    /// No lines.
    #[error("nothing to quote")]
    Empty,
    /// Amounts in more than one currency, or too large.
    #[error(transparent)]
    Money(#[from] MoneyError),
    /// The rates do not match the items (see [`crate::tax::checked_rates`]).
    #[error("tax rates do not match the items: {0}")]
    Rates(String),
    /// The discounts do not match the items (not one per line, or more than an item costs).
    #[error("discounts do not match the items: {0}")]
    Discounts(String),
}

/// What changed between a quote the shopper accepted and the current one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteChange {
    /// What changed.
    pub item: QuoteItem,
    /// Its total before (`None`: it was not there).
    pub was: Option<Money>,
    /// Its total now (`None`: it is gone).
    pub now: Option<Money>,
}

/// A part of a quote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum QuoteItem {
    /// A line.
    Line(Sku),
    /// The shipping.
    Shipping,
    /// The discounts.
    Discount,
    /// The tax.
    Tax,
    /// The total.
    Total,
}

/// Shares `total` over parts in proportion to `weights`, in minor units, by largest
/// remainder: each part gets its share rounded down, and the units left go one each to the
/// parts with the largest remainders, ties to the earlier part. The parts sum exactly to
/// `total`. Zero weights everywhere share equally. Amounts must not be negative.
///
/// ```
/// use ecommerce_core::money::{Currency, Money};
/// use ecommerce_core::quote::allocate;
///
/// let usd = |c| Money::from_minor(c, Currency::USD);
/// let parts = allocate(usd(100), &[usd(1), usd(1), usd(1)])?;
/// assert_eq!(parts, vec![usd(34), usd(33), usd(33)]);
/// # Ok::<(), ecommerce_core::money::MoneyError>(())
/// ```
///
/// # Errors
/// [`MoneyError::CurrencyMismatch`], [`MoneyError::Overflow`].
pub fn allocate(total: Money, weights: &[Money]) -> Result<Vec<Money>, MoneyError> {
    let currency = total.currency;
    if weights.is_empty() {
        return Ok(Vec::new());
    }
    let mut minor = Vec::with_capacity(weights.len());
    for w in weights {
        if w.currency != currency {
            return Err(MoneyError::CurrencyMismatch {
                left: currency,
                right: w.currency,
            });
        }
        minor.push(i128::from(w.to_minor()?.max(0)));
    }
    if minor.iter().all(|w| *w == 0) {
        minor.iter_mut().for_each(|w| *w = 1);
    }
    let t = i128::from(total.to_minor()?);
    let s: i128 = minor.iter().sum();
    let mut parts: Vec<(i128, i128)> = minor
        .iter()
        .map(|w| (t * w).div_euclid(s))
        .zip(minor.iter().map(|w| (t * w).rem_euclid(s)))
        .collect();
    let left = t - parts.iter().map(|(p, _)| p).sum::<i128>();
    let mut order: Vec<usize> = (0..parts.len()).collect();
    // Stable: equal remainders keep the earlier part first.
    order.sort_by(|a, b| parts[*b].1.cmp(&parts[*a].1));
    for i in order.into_iter().take(usize::try_from(left).unwrap_or(0)) {
        parts[i].0 += 1;
    }
    parts
        .into_iter()
        .map(|(p, _)| {
            i64::try_from(p)
                .map(|p| Money::from_minor(p, currency))
                .map_err(|_| MoneyError::Overflow)
        })
        .collect()
}

fn round(amount: Decimal, currency: Currency) -> Decimal {
    amount.round_dp_with_strategy(
        currency.minor_units(),
        RoundingStrategy::MidpointAwayFromZero,
    )
}

/// The exact tax of an amount at a rate: on top of a net amount, or inside a gross one.
fn exact_tax(amount: Decimal, rate: Decimal, mode: PriceMode) -> Result<Decimal, MoneyError> {
    let tax = amount.checked_mul(rate).ok_or(MoneyError::Overflow)?;
    match mode {
        PriceMode::Exclusive => Ok(tax),
        PriceMode::Inclusive => tax
            .checked_div(Decimal::ONE + rate)
            .ok_or(MoneyError::Overflow),
    }
}

/// An item being taxed: its amount after discounts (in the price mode) and units.
struct Taxed {
    amount: Money,
    quantity: u32,
    rate: Option<TaxRate>,
}

/// The tax of each item under the rounding policy; their sum is the document's tax.
fn taxes(items: &[Taxed], settings: TaxSettings) -> Result<Vec<Money>, MoneyError> {
    let currency = items.first().map_or(Currency::USD, |i| i.amount.currency);
    let mut out = vec![Money::zero(currency); items.len()];
    match settings.rounding {
        RoundingPolicy::PerUnit | RoundingPolicy::PerLine => {
            for (item, tax) in items.iter().zip(&mut out) {
                let Some(rate) = &item.rate else { continue };
                let amount = match settings.rounding {
                    RoundingPolicy::PerUnit => {
                        let q = Decimal::from(item.quantity.max(1));
                        let unit = item
                            .amount
                            .amount
                            .checked_div(q)
                            .ok_or(MoneyError::Overflow)?;
                        round(exact_tax(unit, rate.rate, settings.price_mode)?, currency)
                            .checked_mul(q)
                            .ok_or(MoneyError::Overflow)?
                    }
                    _ => round(
                        exact_tax(item.amount.amount, rate.rate, settings.price_mode)?,
                        currency,
                    ),
                };
                *tax = Money::new(amount, currency);
            }
        }
        RoundingPolicy::PerDocument => {
            let mut groups: BTreeMap<(String, Decimal), Vec<usize>> = BTreeMap::new();
            for (i, item) in items.iter().enumerate() {
                if let Some(rate) = &item.rate {
                    groups
                        .entry((rate.name.clone(), rate.rate))
                        .or_default()
                        .push(i);
                }
            }
            for ((_, rate), members) in groups {
                let base = Money::sum(currency, members.iter().map(|i| items[*i].amount))?;
                let tax = Money::new(
                    round(exact_tax(base.amount, rate, settings.price_mode)?, currency),
                    currency,
                );
                let weights: Vec<Money> = members.iter().map(|i| items[*i].amount).collect();
                for (i, share) in members.iter().zip(allocate(tax, &weights)?) {
                    out[*i] = share;
                }
            }
        }
    }
    Ok(out)
}

/// `(net, total)` of an amount and its tax in a price mode.
fn net_and_total(amount: Money, tax: Money, mode: PriceMode) -> Result<(Money, Money), MoneyError> {
    match mode {
        PriceMode::Exclusive => Ok((amount, amount.checked_add(tax)?)),
        PriceMode::Inclusive => Ok((amount.checked_sub(tax)?, amount)),
    }
}

impl Quote {
    /// Whether an order of this quote may hold promotion uses to commit or give back: it
    /// applied a promotion, and its quote does not say that none of them is limited.
    pub fn may_hold_promotion_uses(&self) -> bool {
        !self.promotions.is_empty() && self.holds_promotion_uses != Some(false)
    }

    /// Computes a quote.
    ///
    /// # Errors
    /// [`QuoteError::Empty`], [`QuoteError::Money`] (mixed currencies, overflow),
    /// [`QuoteError::Rates`] (not one rate per item).
    pub fn compute(input: QuoteInput<'_>) -> Result<Quote, QuoteError> {
        let currency = input
            .lines
            .first()
            .ok_or(QuoteError::Empty)?
            .unit_price
            .currency;
        let mode = input.settings.price_mode;
        let none = Evaluation::none(currency, input.lines.len());
        let discounts = input.discounts.unwrap_or(&none);
        if discounts.lines.len() != input.lines.len() {
            return Err(QuoteError::Discounts("not one discount per line".into()));
        }
        if input.shipping.is_none() && discounts.shipping.amount != Decimal::ZERO {
            return Err(QuoteError::Discounts(
                "a shipping discount without shipping".into(),
            ));
        }
        let mut items = Vec::with_capacity(input.lines.len() + 1);
        for (line, discount) in input.lines.iter().zip(&discounts.lines) {
            let amount = line.unit_price.checked_mul(line.quantity)?.round();
            let discounted = amount.checked_sub(discount.round())?;
            if discount.is_negative() || discounted.is_negative() {
                return Err(QuoteError::Discounts(format!(
                    "{} on {}",
                    discount, line.sku
                )));
            }
            items.push(Taxed {
                amount: discounted,
                quantity: line.quantity,
                rate: None,
            });
        }
        if let Some(shipping) = input.shipping {
            if shipping.amount.currency != currency {
                return Err(MoneyError::CurrencyMismatch {
                    left: currency,
                    right: shipping.amount.currency,
                }
                .into());
            }
            let discounted = shipping
                .amount
                .round()
                .checked_sub(discounts.shipping.round())?;
            if discounts.shipping.is_negative() || discounted.is_negative() {
                return Err(QuoteError::Discounts(format!(
                    "{} on the shipping",
                    discounts.shipping
                )));
            }
            items.push(Taxed {
                amount: discounted,
                quantity: 1,
                rate: None,
            });
        }
        if let Some(rates) = input.rates {
            for rate in rates {
                let index = match rate.item {
                    TaxItem::Line(i) if i < input.lines.len() => i,
                    TaxItem::Shipping if input.shipping.is_some_and(|s| s.tax_class.is_some()) => {
                        input.lines.len()
                    }
                    other => return Err(QuoteError::Rates(format!("{other:?} is not an item"))),
                };
                if items[index].rate.replace(rate.clone()).is_some() {
                    return Err(QuoteError::Rates(format!("{:?} rated twice", rate.item)));
                }
            }
            let shipping_taxed = input.shipping.is_some_and(|s| s.tax_class.is_some());
            let unrated = items
                .iter()
                .enumerate()
                .any(|(i, item)| item.rate.is_none() && (i < input.lines.len() || shipping_taxed));
            if unrated {
                return Err(QuoteError::Rates("an item has no rate".into()));
            }
        }
        let tax = taxes(&items, input.settings)?;

        let mut lines = Vec::with_capacity(input.lines.len());
        for (((line, item), tax), discount) in input
            .lines
            .iter()
            .zip(&items)
            .zip(&tax)
            .zip(&discounts.lines)
        {
            let (net, total) = net_and_total(item.amount, *tax, mode)?;
            lines.push(QuoteLine {
                sku: line.sku.clone(),
                quantity: line.quantity,
                unit_price: line.unit_price,
                amount: item.amount.checked_add(discount.round())?,
                discount: discount.round(),
                net,
                tax: *tax,
                total,
                tax_rate: item.rate.as_ref().map_or(Decimal::ZERO, |r| r.rate),
                tax_name: item.rate.as_ref().map(|r| r.name.clone()),
            });
        }
        let shipping = match input.shipping {
            Some(quote) => {
                let item = &items[input.lines.len()];
                let tax = tax[input.lines.len()];
                let (net, total) = net_and_total(item.amount, tax, mode)?;
                Some(QuoteShipping {
                    method: quote.method.clone(),
                    name: quote.name.clone(),
                    amount: item.amount.checked_add(discounts.shipping.round())?,
                    discount: discounts.shipping.round(),
                    net,
                    tax,
                    total,
                    tax_rate: item.rate.as_ref().map_or(Decimal::ZERO, |r| r.rate),
                    tax_name: item.rate.as_ref().map(|r| r.name.clone()),
                })
            }
            None => None,
        };

        let mut by_rate: BTreeMap<(String, Decimal), (Money, Money)> = BTreeMap::new();
        let taxed = lines
            .iter()
            .map(|l| (&l.tax_name, l.tax_rate, l.net, l.tax))
            .chain(
                shipping
                    .iter()
                    .map(|s| (&s.tax_name, s.tax_rate, s.net, s.tax)),
            );
        for (name, rate, net, tax) in taxed {
            if let Some(name) = name {
                let entry = by_rate
                    .entry((name.clone(), rate))
                    .or_insert((Money::zero(currency), Money::zero(currency)));
                entry.0 = entry.0.checked_add(net)?;
                entry.1 = entry.1.checked_add(tax)?;
            }
        }
        let taxes = by_rate
            .into_iter()
            .map(|((name, rate), (base, tax))| TaxSummary {
                name,
                rate,
                base,
                tax,
            })
            .collect();

        let shipping_total = shipping.as_ref().map_or(Money::zero(currency), |s| s.total);
        let mut quote = Quote {
            currency,
            settings: input.settings,
            subtotal: Money::sum(currency, lines.iter().map(|l| l.amount))?,
            discount_total: Money::sum(
                currency,
                lines
                    .iter()
                    .map(|l| l.discount)
                    .chain(shipping.iter().map(|s| s.discount)),
            )?,
            tax_total: Money::sum(
                currency,
                lines
                    .iter()
                    .map(|l| l.tax)
                    .chain(shipping.iter().map(|s| s.tax)),
            )?,
            total: Money::sum(currency, lines.iter().map(|l| l.total))?
                .checked_add(shipping_total)?,
            shipping_total,
            lines,
            shipping,
            taxes,
            promotions: discounts.applied.clone(),
            promotion_trace: Vec::new(),
            holds_promotion_uses: None,
            hash: String::new(),
            expires_at: DateTime::<Utc>::MIN_UTC,
        };
        quote.fix_scale();
        quote.hash = quote.digest();
        quote.promotion_trace = discounts.trace.clone();
        let valid_for =
            chrono::Duration::from_std(input.valid_for).unwrap_or(chrono::Duration::days(1));
        quote.expires_at = input.shipping.map_or(input.now + valid_for, |s| {
            s.expires_at.min(input.now + valid_for)
        });
        Ok(quote)
    }

    /// Writes every amount with the currency's minor digits (`0.00`, not `0`), so that equal
    /// quotes serialize, and hash, the same.
    fn fix_scale(&mut self) {
        let digits = self.currency.minor_units();
        // Only ever adds digits: amounts are already rounded, a unit price may have more.
        let fix = |m: &mut Money| {
            if m.amount.scale() < digits {
                m.amount.rescale(digits);
            }
        };
        for line in &mut self.lines {
            for m in [
                &mut line.unit_price,
                &mut line.amount,
                &mut line.discount,
                &mut line.net,
                &mut line.tax,
                &mut line.total,
            ] {
                fix(m);
            }
        }
        if let Some(s) = &mut self.shipping {
            for m in [
                &mut s.amount,
                &mut s.discount,
                &mut s.net,
                &mut s.tax,
                &mut s.total,
            ] {
                fix(m);
            }
        }
        for p in &mut self.promotions {
            fix(&mut p.amount);
            fix(&mut p.shipping);
            p.lines.iter_mut().for_each(&fix);
        }
        for t in &mut self.taxes {
            fix(&mut t.base);
            fix(&mut t.tax);
        }
        for m in [
            &mut self.subtotal,
            &mut self.discount_total,
            &mut self.shipping_total,
            &mut self.tax_total,
            &mut self.total,
        ] {
            fix(m);
        }
    }

    /// The hash of every amount, line and setting, taken while the hash is empty and the
    /// expiry unset (so neither is part of it), streamed into SHA-256.
    fn digest(&self) -> String {
        struct Hasher(Sha256);
        impl std::io::Write for Hasher {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.update(bytes);
                Ok(bytes.len())
            }

            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        debug_assert!(
            self.hash.is_empty()
                && self.expires_at == DateTime::<Utc>::MIN_UTC
                && self.promotion_trace.is_empty()
                && self.holds_promotion_uses.is_none()
        );
        let mut hasher = Hasher(Sha256::new());
        serde_json::to_writer(&mut hasher, self).expect("quotes serialize");
        hex::encode(hasher.0.finalize())
    }

    /// Whether the quote no longer holds at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    /// What differs from a quote accepted earlier: each line, the shipping, the tax and the
    /// total whose amount changed (empty when the two hash the same).
    pub fn changes_since(&self, accepted: &Quote) -> Vec<QuoteChange> {
        if self.hash == accepted.hash {
            return Vec::new();
        }
        let mut changes = Vec::new();
        let mut push = |item, was: Option<Money>, now: Option<Money>| {
            if was != now {
                changes.push(QuoteChange { item, was, now });
            }
        };
        for line in &accepted.lines {
            let now = self
                .lines
                .iter()
                .find(|l| l.sku == line.sku)
                .map(|l| l.total);
            push(QuoteItem::Line(line.sku.clone()), Some(line.total), now);
        }
        for line in &self.lines {
            if !accepted.lines.iter().any(|l| l.sku == line.sku) {
                push(QuoteItem::Line(line.sku.clone()), None, Some(line.total));
            }
        }
        push(
            QuoteItem::Shipping,
            accepted.shipping.as_ref().map(|s| s.total),
            self.shipping.as_ref().map(|s| s.total),
        );
        push(
            QuoteItem::Discount,
            Some(accepted.discount_total),
            Some(self.discount_total),
        );
        push(
            QuoteItem::Tax,
            Some(accepted.tax_total),
            Some(self.tax_total),
        );
        push(QuoteItem::Total, Some(accepted.total), Some(self.total));
        if changes.is_empty() {
            // Same amounts, another breakdown (a rate's name, a method): say the total holds.
            changes.push(QuoteChange {
                item: QuoteItem::Total,
                was: Some(accepted.total),
                now: Some(self.total),
            });
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;
    use crate::address::{Address, AddressInput};
    use crate::catalog::ItemProfile;
    use crate::id::CartId;
    use crate::shipping::ShippingOffer;
    use crate::tax::TaxClass;

    fn eur(minor: i64) -> Money {
        Money::from_minor(minor, Currency::EUR)
    }

    fn line(sku: &str, quantity: u32, price: Money) -> OrderLine {
        OrderLine {
            sku: Sku::new(sku).unwrap(),
            title: sku.into(),
            quantity,
            unit_price: price,
            profile: ItemProfile::default(),
        }
    }

    fn rate(item: TaxItem, rate: Decimal, name: &str) -> TaxRate {
        TaxRate {
            item,
            rate,
            name: name.into(),
        }
    }

    fn berlin() -> Address {
        Address::new(AddressInput {
            name: "Ada".into(),
            line1: "Unter den Linden 1".into(),
            city: "Berlin".into(),
            postal_code: "10117".into(),
            country: "DE".into(),
            ..AddressInput::default()
        })
        .unwrap()
    }

    fn shipping(amount: Money, taxed: bool) -> ShippingQuote {
        ShippingQuote::new(
            CartId::new(),
            &berlin(),
            ShippingOffer {
                method: "dhl".into(),
                name: "DHL".into(),
                amount,
                tax_class: taxed.then(TaxClass::standard),
                valid_for: Duration::from_secs(600),
            },
            Utc::now(),
        )
    }

    fn input<'a>(
        lines: &'a [OrderLine],
        shipping: Option<&'a ShippingQuote>,
        rates: Option<&'a [TaxRate]>,
        price_mode: PriceMode,
        rounding: RoundingPolicy,
    ) -> QuoteInput<'a> {
        QuoteInput {
            lines,
            shipping,
            discounts: None,
            rates,
            settings: TaxSettings {
                price_mode,
                rounding,
            },
            now: DateTime::from_timestamp(1_800_000_000, 0).unwrap(),
            valid_for: Duration::from_secs(900),
        }
    }

    /// The EU worked example, by hand: VAT-inclusive prices in Germany, rounded per document
    /// per rate, shipping taxed at the standard rate.
    ///
    /// 3 x 9.99 (19 %) = 29.97, 1 x 24.90 (7 %), shipping 4.90 (19 %).
    /// - 19 %: 29.97 + 4.90 = 34.87 gross; 34.87 x 0.19 / 1.19 = 5.5674... -> 5.57, shared
    ///   by largest remainder over 2997 and 490: 557 x 2997 / 3487 = 478.73 and
    ///   557 x 490 / 3487 = 78.27 -> 478 + 78 = 556, the cent left goes to the larger
    ///   remainder (the line): 4.79 and 0.78. Nets 25.18 and 4.12.
    /// - 7 %: 24.90 x 0.07 / 1.07 = 1.6289... -> 1.63, net 23.27.
    /// - Tax 7.20; the shopper pays the prices shown: 29.97 + 24.90 + 4.90 = 59.77.
    #[test]
    fn eu_vat_inclusive_order_to_the_cent() {
        let lines = [line("MUG", 3, eur(999)), line("BOOK", 1, eur(2_490))];
        let ship = shipping(eur(490), true);
        let rates = [
            rate(TaxItem::Line(0), dec!(0.19), "USt 19%"),
            rate(TaxItem::Line(1), dec!(0.07), "USt 7%"),
            rate(TaxItem::Shipping, dec!(0.19), "USt 19%"),
        ];
        let q = Quote::compute(input(
            &lines,
            Some(&ship),
            Some(&rates),
            PriceMode::Inclusive,
            RoundingPolicy::PerDocument,
        ))
        .unwrap();
        let parts: Vec<_> = q.lines.iter().map(|l| (l.net, l.tax, l.total)).collect();
        assert_eq!(
            parts,
            vec![
                (eur(2_518), eur(479), eur(2_997)),
                (eur(2_327), eur(163), eur(2_490))
            ]
        );
        let s = q.shipping.as_ref().unwrap();
        assert_eq!((s.net, s.tax, s.total), (eur(412), eur(78), eur(490)));
        let taxes: Vec<_> = q
            .taxes
            .iter()
            .map(|t| (t.name.as_str(), t.base, t.tax))
            .collect();
        assert_eq!(
            taxes,
            vec![
                ("USt 19%", eur(2_930), eur(557)),
                ("USt 7%", eur(2_327), eur(163))
            ]
        );
        assert_eq!((q.tax_total, q.total), (eur(720), eur(5_977)));
    }

    /// A quote stored before discounts existed reads back with none on its shipping.
    #[test]
    fn a_quote_stored_without_discounts_reads_back() {
        let lines = [line("MUG", 1, eur(999))];
        let ship = shipping(eur(490), true);
        let rates = [
            rate(TaxItem::Line(0), dec!(0.19), "USt 19%"),
            rate(TaxItem::Shipping, dec!(0.19), "USt 19%"),
        ];
        let q = Quote::compute(input(
            &lines,
            Some(&ship),
            Some(&rates),
            PriceMode::Inclusive,
            RoundingPolicy::PerLine,
        ))
        .unwrap();
        let mut stored = serde_json::to_value(&q).unwrap();
        stored["shipping"]
            .as_object_mut()
            .unwrap()
            .remove("discount");
        stored.as_object_mut().unwrap().remove("promotions");
        stored.as_object_mut().unwrap().remove("promotion_trace");
        let read: Quote = serde_json::from_value(stored).unwrap();
        assert_eq!(
            read.shipping.as_ref().unwrap().discount,
            Money::zero(Currency::EUR)
        );
        assert_eq!(read.total, q.total);
        assert!(read.promotions.is_empty());
    }

    /// Whether an order holds promotion uses is read from its quote: a quote that applied a
    /// promotion and does not say (stored before it said) may hold some; one that says it
    /// holds none, or applied none, does not. The answer is not part of the hash.
    #[test]
    fn a_quote_says_whether_its_order_holds_promotion_uses() {
        let lines = [line("MUG", 1, eur(999))];
        let mut q = Quote::compute(input(
            &lines,
            None,
            None,
            PriceMode::Exclusive,
            RoundingPolicy::PerLine,
        ))
        .unwrap();
        assert!(!q.may_hold_promotion_uses(), "no promotion, no use");
        q.promotions.push(crate::promotion::Applied {
            promotion: crate::promotion::PromotionId::new("spring").unwrap(),
            name: "Spring".into(),
            code: None,
            class: crate::promotion::DiscountClass::Order,
            amount: eur(100),
            lines: vec![eur(100)],
            shipping: eur(0),
        });
        assert!(q.may_hold_promotion_uses(), "a quote that does not say may");
        let hash = q.hash.clone();
        q.holds_promotion_uses = Some(false);
        assert!(!q.may_hold_promotion_uses());
        q.holds_promotion_uses = Some(true);
        assert!(q.may_hold_promotion_uses());
        let read: Quote = serde_json::from_value(serde_json::to_value(&q).unwrap()).unwrap();
        assert_eq!((read.holds_promotion_uses, read.hash), (Some(true), hash));
        let mut stored = serde_json::to_value(&q).unwrap();
        stored
            .as_object_mut()
            .unwrap()
            .remove("holds_promotion_uses");
        let read: Quote = serde_json::from_value(stored).unwrap();
        assert_eq!(read.holds_promotion_uses, None);
    }

    /// Three 0.05 items at 19 % inclusive: per line each rounds 0.00798 up to 0.01 (0.03 in
    /// all); per document the tax is 0.15 x 0.19 / 1.19 = 0.02395 -> 0.02, shared 0.01,
    /// 0.01, 0.00 (equal remainders: the earlier lines first).
    #[test]
    fn per_document_rounding_shares_one_rounded_tax() {
        let lines = [
            line("A", 1, eur(5)),
            line("B", 1, eur(5)),
            line("C", 1, eur(5)),
        ];
        let rates: Vec<_> = (0..3)
            .map(|i| rate(TaxItem::Line(i), dec!(0.19), "VAT"))
            .collect();
        let taxes = |rounding| {
            Quote::compute(input(
                &lines,
                None,
                Some(&rates),
                PriceMode::Inclusive,
                rounding,
            ))
            .unwrap()
            .lines
            .iter()
            .map(|l| l.tax)
            .collect::<Vec<_>>()
        };
        assert_eq!(taxes(RoundingPolicy::PerLine), vec![eur(1), eur(1), eur(1)]);
        assert_eq!(
            taxes(RoundingPolicy::PerDocument),
            vec![eur(1), eur(1), eur(0)]
        );
        // Per unit: 3 x 0.333 at 20 % exclusive rounds each unit's 0.0666 to 0.07.
        let lines = [line("D", 3, Money::new(dec!(0.333), Currency::EUR))];
        let rates = [rate(TaxItem::Line(0), dec!(0.2), "VAT")];
        let q = Quote::compute(input(
            &lines,
            None,
            Some(&rates),
            PriceMode::Exclusive,
            RoundingPolicy::PerUnit,
        ))
        .unwrap();
        assert_eq!((q.lines[0].amount, q.lines[0].tax), (eur(100), eur(21)));
    }

    #[test]
    fn rates_must_match_the_items() {
        let lines = [line("A", 1, eur(100))];
        let ship = shipping(eur(490), true);
        let missing_shipping = [rate(TaxItem::Line(0), dec!(0.19), "VAT")];
        let err = Quote::compute(input(
            &lines,
            Some(&ship),
            Some(&missing_shipping),
            PriceMode::Exclusive,
            RoundingPolicy::PerLine,
        ));
        assert!(matches!(err, Err(QuoteError::Rates(_))));
        let unknown = [
            rate(TaxItem::Line(0), dec!(0.19), "VAT"),
            rate(TaxItem::Line(3), dec!(0.19), "VAT"),
        ];
        let err = Quote::compute(input(
            &lines,
            None,
            Some(&unknown),
            PriceMode::Exclusive,
            RoundingPolicy::PerLine,
        ));
        assert!(matches!(err, Err(QuoteError::Rates(_))));
        assert!(matches!(
            Quote::compute(input(
                &[],
                None,
                None,
                PriceMode::Exclusive,
                RoundingPolicy::PerLine
            )),
            Err(QuoteError::Empty)
        ));
    }

    #[test]
    fn changes_name_what_moved() {
        let before = [line("A", 1, eur(1_000)), line("B", 2, eur(500))];
        let after = [line("A", 1, eur(1_200)), line("B", 2, eur(500))];
        let q = |lines: &[OrderLine]| {
            Quote::compute(input(
                lines,
                None,
                None,
                PriceMode::Inclusive,
                RoundingPolicy::PerLine,
            ))
            .unwrap()
        };
        let (old, new) = (q(&before), q(&after));
        assert!(new.changes_since(&q(&after)).is_empty());
        let changes = new.changes_since(&old);
        assert_eq!(
            changes,
            vec![
                QuoteChange {
                    item: QuoteItem::Line(Sku::new("A").unwrap()),
                    was: Some(eur(1_000)),
                    now: Some(eur(1_200)),
                },
                QuoteChange {
                    item: QuoteItem::Total,
                    was: Some(eur(2_000)),
                    now: Some(eur(2_200)),
                },
            ]
        );
    }

    const RATES: [Decimal; 7] = [
        dec!(0),
        dec!(0.05),
        dec!(0.07),
        dec!(0.0825),
        dec!(0.19),
        dec!(0.2),
        dec!(0.25),
    ];

    /// Lines `(quantity, price, rate)`, shipping `(amount, rate if taxed)`, inclusive
    /// prices, the rounding policy, the currency.
    type Case = (
        Vec<(u32, i64, usize)>,
        Option<(i64, Option<usize>)>,
        bool,
        u8,
        Currency,
    );

    fn arb_case() -> impl Strategy<Value = Case> {
        (
            prop::collection::vec((1u32..50, 0i64..200_000, 0usize..RATES.len()), 1..8),
            prop::option::of((0i64..5_000, prop::option::of(0usize..RATES.len()))),
            any::<bool>(),
            0u8..3,
            prop::sample::select(vec![
                Currency::USD,
                Currency::EUR,
                Currency::JPY,
                Currency::KWD,
            ]),
        )
    }

    proptest! {
        /// Over random carts, discounts, rates, price modes and rounding policies: nothing is
        /// negative, every item's net + tax = total, the parts sum exactly to the document,
        /// an inclusive price less its discount is recomposed exactly, and the same input
        /// gives the same quote.
        #[test]
        fn parts_always_sum_to_the_whole(case in arb_case(), cut in 0i64..=100) {
            let (items, ship, inclusive, policy, currency) = case;
            let lines: Vec<OrderLine> = items
                .iter()
                .enumerate()
                .map(|(i, (q, p, _))| line(&format!("L{i}"), *q, Money::from_minor(*p, currency)))
                .collect();
            let ship_quote = ship.map(|(amount, r)| {
                shipping(Money::from_minor(amount, currency), r.is_some())
            });
            let mut rates: Vec<TaxRate> = items
                .iter()
                .enumerate()
                .map(|(i, (_, _, r))| rate(TaxItem::Line(i), RATES[*r], &format!("R{r}")))
                .collect();
            if let Some((_, Some(r))) = ship {
                rates.push(rate(TaxItem::Shipping, RATES[r], &format!("R{r}")));
            }
            let mode = if inclusive { PriceMode::Inclusive } else { PriceMode::Exclusive };
            let rounding = [RoundingPolicy::PerUnit, RoundingPolicy::PerLine, RoundingPolicy::PerDocument][policy as usize];
            // `cut` % off every line and the shipping, rounded down to the minor unit.
            let off = |m: Money| Money::from_minor(m.round().to_minor().unwrap() * cut / 100, currency);
            let discounts = Evaluation {
                applied: Vec::new(),
                trace: Vec::new(),
                lines: lines.iter().map(|l| off(l.unit_price.checked_mul(l.quantity).unwrap())).collect(),
                shipping: ship_quote.as_ref().map_or(Money::zero(currency), |s| off(s.amount)),
            };
            let compute = || {
                let mut i = input(&lines, ship_quote.as_ref(), Some(&rates), mode, rounding);
                i.discounts = Some(&discounts);
                Quote::compute(i).unwrap()
            };
            let q = compute();
            prop_assert_eq!(&q, &compute());
            prop_assert_eq!(q.discount_total, discounts.total().unwrap());

            let parts: Vec<(Money, Money, Money, Money)> = q
                .lines
                .iter()
                .map(|l| (l.amount.checked_sub(l.discount).unwrap(), l.net, l.tax, l.total))
                .chain(q.shipping.iter().map(|s| (s.amount.checked_sub(s.discount).unwrap(), s.net, s.tax, s.total)))
                .collect();
            for (amount, net, tax, total) in &parts {
                prop_assert!(!net.is_negative() && !tax.is_negative() && !total.is_negative());
                prop_assert_eq!(net.checked_add(*tax).unwrap(), *total);
                match mode {
                    PriceMode::Inclusive => prop_assert_eq!(total, amount),
                    PriceMode::Exclusive => prop_assert_eq!(net, amount),
                }
                prop_assert_eq!(tax.round(), *tax);
            }
            let sum = |f: fn(&(Money, Money, Money, Money)) -> Money| {
                Money::sum(currency, parts.iter().map(f)).unwrap()
            };
            prop_assert_eq!(sum(|p| p.2), q.tax_total);
            prop_assert_eq!(sum(|p| p.3), q.total);
            prop_assert_eq!(Money::sum(currency, q.taxes.iter().map(|t| t.tax)).unwrap(), q.tax_total);
            prop_assert!(!q.total.is_negative());
        }

        /// Shares sum exactly to the whole, none is negative, and each is within one minor
        /// unit of its exact proportional share.
        #[test]
        fn allocation_sums_to_the_whole(total in 0i64..10_000_000, weights in prop::collection::vec(0i64..1_000_000, 1..12)) {
            let whole = eur(total);
            let ws: Vec<Money> = weights.iter().map(|w| eur(*w)).collect();
            let parts = allocate(whole, &ws).unwrap();
            prop_assert_eq!(Money::sum(Currency::EUR, parts.iter().copied()).unwrap(), whole);
            let sum: i64 = weights.iter().sum();
            for (part, w) in parts.iter().zip(&weights) {
                let p = part.to_minor().unwrap();
                prop_assert!(p >= 0);
                let exact = if sum == 0 {
                    total as f64 / weights.len() as f64
                } else {
                    total as f64 * *w as f64 / sum as f64
                };
                prop_assert!((p as f64 - exact).abs() < 1.0 + 1e-6);
            }
        }
    }
}
