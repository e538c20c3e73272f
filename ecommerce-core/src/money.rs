//! Money: a decimal amount in one currency.
//!
//! Amounts are [`Decimal`], never `f64`. Arithmetic across currencies is an error
//! ([`MoneyError::CurrencyMismatch`]), never a panic and never a silent conversion.
//! [`Money::round`] rounds to the currency's minor unit (half away from zero, as
//! receipts do).

use std::fmt;
use std::str::FromStr;

/// The exact decimal type of amounts and tax rates (from `rust_decimal`).
pub use rust_decimal::Decimal;
use rust_decimal::RoundingStrategy;
use serde::{Deserialize, Serialize};

/// An ISO 4217 currency with a minor unit: every active code of the standard (from the
/// `iso_currency` crate's table) except the few without one (gold, SDRs, "no currency").
/// Written and read as its three-letter code (`"USD"`); the most used ones are constants.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(iso_currency::Currency);

impl Currency {
    /// United States dollar.
    pub const USD: Currency = Currency(iso_currency::Currency::USD);
    /// Euro.
    pub const EUR: Currency = Currency(iso_currency::Currency::EUR);
    /// Pound sterling.
    pub const GBP: Currency = Currency(iso_currency::Currency::GBP);
    /// Swiss franc.
    pub const CHF: Currency = Currency(iso_currency::Currency::CHF);
    /// Canadian dollar.
    pub const CAD: Currency = Currency(iso_currency::Currency::CAD);
    /// Australian dollar.
    pub const AUD: Currency = Currency(iso_currency::Currency::AUD);
    /// Swedish krona.
    pub const SEK: Currency = Currency(iso_currency::Currency::SEK);
    /// Japanese yen (no minor unit).
    pub const JPY: Currency = Currency(iso_currency::Currency::JPY);
    /// Kuwaiti dinar (three decimals).
    pub const KWD: Currency = Currency(iso_currency::Currency::KWD);

    /// The currency of a three-letter code (any case), if it is one with a minor unit.
    pub fn from_code(code: &str) -> Option<Currency> {
        let iso = iso_currency::Currency::from_code(&code.to_ascii_uppercase())?;
        iso.exponent().map(|_| Currency(iso))
    }

    /// Every currency the library knows, in code order.
    pub fn all() -> impl Iterator<Item = Currency> {
        use iso_currency::IntoEnumIterator;
        iso_currency::Currency::iter()
            .filter(|c| c.exponent().is_some())
            .map(Currency)
    }

    /// The three-letter ISO 4217 code.
    pub fn code(self) -> &'static str {
        self.0.code()
    }

    /// The currency's English name ("Swiss franc").
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// Number of decimal places of the minor unit (cents: 2, yen: 0, dinar: 3).
    pub fn minor_units(self) -> u32 {
        self.0
            .exponent()
            .map(u32::from)
            .expect("a Currency is only made of codes with a minor unit")
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::from_code(s)
            .ok_or_else(|| MoneyError::UnknownCurrency(s.chars().take(16).collect()))
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

/// What can go wrong with money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: {left} and {right}")]
    CurrencyMismatch {
        /// Currency of the left operand.
        left: Currency,
        /// Currency of the right operand.
        right: Currency,
    },
    /// The result does not fit in a decimal.
    #[error("amount overflow")]
    Overflow,
    /// The code is not a currency the library knows.
    #[error("unknown currency `{0}`")]
    UnknownCurrency(String),
}

/// An amount of money in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Money {
    /// The amount, in major units (12.50 is twelve dollars fifty).
    pub amount: Decimal,
    /// The currency of the amount.
    pub currency: Currency,
}

impl Money {
    /// An amount in major units, kept as given (see [`Money::round`]).
    pub fn new(amount: Decimal, currency: Currency) -> Self {
        Money { amount, currency }
    }

    /// An amount in minor units: `Money::from_minor(1250, Currency::USD)` is 12.50 USD.
    pub fn from_minor(minor: i64, currency: Currency) -> Self {
        Money {
            amount: Decimal::new(minor, currency.minor_units()),
            currency,
        }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Self {
        Money {
            amount: Decimal::ZERO,
            currency,
        }
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.amount.is_sign_negative() && !self.amount.is_zero()
    }

    /// The amount rounded to the currency's minor unit, half away from zero.
    pub fn round(self) -> Self {
        Money {
            amount: self.amount.round_dp_with_strategy(
                self.currency.minor_units(),
                RoundingStrategy::MidpointAwayFromZero,
            ),
            currency: self.currency,
        }
    }

    /// The amount in minor units after rounding (cents for USD), as payment providers expect.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`] when the amount does not fit in an `i64`.
    pub fn to_minor(self) -> Result<i64, MoneyError> {
        let scaled = self
            .round()
            .amount
            .checked_mul(Decimal::from(10i64.pow(self.currency.minor_units())))
            .ok_or(MoneyError::Overflow)?;
        i64::try_from(scaled).map_err(|_| MoneyError::Overflow)
    }

    /// `self + other`.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] across currencies, [`MoneyError::Overflow`].
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_add(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `self - other`.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] across currencies, [`MoneyError::Overflow`].
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let amount = self
            .amount
            .checked_sub(other.amount)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// `self * quantity`, as for a line total.
    ///
    /// # Errors
    /// [`MoneyError::Overflow`].
    pub fn checked_mul(self, quantity: u32) -> Result<Money, MoneyError> {
        let amount = self
            .amount
            .checked_mul(Decimal::from(quantity))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// Sums amounts that must all be in `currency`.
    ///
    /// # Errors
    /// [`MoneyError::CurrencyMismatch`] when one amount is in another currency.
    pub fn sum<I: IntoIterator<Item = Money>>(
        currency: Currency,
        amounts: I,
    ) -> Result<Money, MoneyError> {
        amounts
            .into_iter()
            .try_fold(Money::zero(currency), Money::checked_add)
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rounded = self.round();
        write!(
            f,
            "{:.*} {}",
            self.currency.minor_units() as usize,
            rounded.amount,
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn cross_currency_arithmetic_is_an_error() {
        let usd = Money::from_minor(100, Currency::USD);
        let eur = Money::from_minor(100, Currency::EUR);
        assert_eq!(
            usd.checked_add(eur),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::USD,
                right: Currency::EUR
            })
        );
        assert!(usd.checked_sub(eur).is_err());
        assert!(Money::sum(Currency::USD, [usd, eur]).is_err());
    }

    #[test]
    fn rounds_to_the_minor_unit() {
        let m = Money::new(Decimal::new(12345, 3), Currency::USD);
        assert_eq!(m.round().amount, Decimal::new(1235, 2));
        assert_eq!(m.to_minor(), Ok(1235));
        let yen = Money::new(Decimal::new(1005, 1), Currency::JPY);
        assert_eq!(yen.to_minor(), Ok(101));
        let kwd = Money::from_minor(1234, Currency::KWD);
        assert_eq!(kwd.to_string(), "1.234 KWD");
        assert_eq!(Money::from_minor(5, Currency::USD).to_string(), "0.05 USD");
    }

    #[test]
    fn overflow_is_an_error() {
        let m = Money::new(Decimal::MAX, Currency::USD);
        assert_eq!(m.checked_add(m), Err(MoneyError::Overflow));
        assert_eq!(m.checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(m.to_minor(), Err(MoneyError::Overflow));
    }

    #[test]
    fn currency_codes_parse() {
        assert_eq!("usd".parse::<Currency>(), Ok(Currency::USD));
        assert!(matches!(
            "XYZ".parse::<Currency>(),
            Err(MoneyError::UnknownCurrency(_))
        ));
        let json = serde_json::to_string(&Money::from_minor(1999, Currency::EUR)).unwrap();
        assert_eq!(json, r#"{"amount":"19.99","currency":"EUR"}"#);
        assert_eq!(
            serde_json::from_str::<Money>(&json).unwrap().currency,
            Currency::EUR
        );
        assert!(serde_json::from_str::<Currency>(r#""XAU""#).is_err());
    }

    #[test]
    fn every_iso_4217_currency_with_a_minor_unit_is_known() {
        assert!(Currency::all().count() >= 150);
        for (code, digits) in [
            ("BRL", 2),
            ("INR", 2),
            ("CLP", 0),
            ("KRW", 0),
            ("VND", 0),
            ("BHD", 3),
            ("TND", 3),
            ("CLF", 4),
        ] {
            let currency: Currency = code.parse().unwrap();
            assert_eq!((currency.code(), currency.minor_units()), (code, digits));
            assert_eq!(Money::from_minor(1, currency).amount.scale(), digits);
        }
        // Gold, SDRs and "no currency" have no minor unit: not money a shop charges.
        for code in ["XAU", "XDR", "XXX", "US", "USDX", ""] {
            assert!(Currency::from_code(code).is_none(), "{code}");
        }
        assert_eq!(Currency::CHF.name(), "Swiss franc");
        assert_eq!(format!("{:?}", Currency::JPY), "JPY");
        assert!(Currency::all().all(|c| c.code().parse::<Currency>() == Ok(c)));
    }
}
