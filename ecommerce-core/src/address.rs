//! Addresses and contact: where an order goes and whom to tell.
//!
//! An [`Address`] is validated when it is made ([`Address::new`]) and when it is read back
//! (deserializing runs the same checks), so a value of the type is always one a carrier can
//! use: an ISO 3166-1 country, an ISO 3166-2 region where one is given, a postal code in the
//! country's format, a recipient and a first line. An [`Email`] is a contact address, checked
//! the same way. Text is trimmed; country and region codes and postal codes are upper-cased.
//!
//! ```
//! use ecommerce_core::address::{Address, AddressError, AddressInput, Email};
//!
//! let home = Address::new(AddressInput {
//!     name: "Ada Lovelace".into(),
//!     line1: "1 Infinite Loop".into(),
//!     city: "Cupertino".into(),
//!     region: Some("ca".into()),
//!     postal_code: "95014".into(),
//!     country: "us".into(),
//!     ..AddressInput::default()
//! })?;
//! assert_eq!(home.region(), Some("US-CA"));
//! assert_eq!(home.country().as_str(), "US");
//!
//! let wrong = Address::new(AddressInput { postal_code: "ABCDE".into(), ..home.to_input() });
//! assert!(matches!(wrong, Err(AddressError::PostalCode { .. })));
//! assert!("ada@example.com".parse::<Email>().is_ok());
//! # Ok::<(), AddressError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::Digest;

/// Why an address or an e-mail was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The country is not an ISO 3166-1 alpha-2 code.
    #[error("unknown country `{0}` (an ISO 3166-1 alpha-2 code such as US or DE)")]
    Country(String),
    /// The region is not an ISO 3166-2 subdivision of the country.
    #[error("unknown region `{region}` in {country}")]
    Region {
        /// The country.
        country: CountryCode,
        /// The region as given.
        region: String,
    },
    /// The country needs a region (state, province) and none was given.
    #[error("a region is required in {0}")]
    RegionRequired(CountryCode),
    /// The postal code does not have the country's format.
    #[error("postal code `{postal_code}` is not valid in {country}")]
    PostalCode {
        /// The country.
        country: CountryCode,
        /// The postal code as given.
        postal_code: String,
    },
    /// A required field is empty.
    #[error("{0} must not be empty")]
    Missing(&'static str),
    /// A field is longer than allowed or holds control characters.
    #[error("{field} is not acceptable: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The e-mail address does not parse.
    #[error("invalid e-mail address")]
    Email,
}

/// An ISO 3166-1 alpha-2 country code, upper case (`US`, `DE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    /// The code, upper case.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("country codes are ASCII")
    }

    /// The country's English name.
    pub fn name(&self) -> &'static str {
        rust_iso3166::from_alpha2(self.as_str()).map_or("", |c| c.name)
    }
}

impl FromStr for CountryCode {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let code = s.trim().to_ascii_uppercase();
        match (code.as_bytes(), rust_iso3166::from_alpha2(&code)) {
            ([a, b], Some(_)) => Ok(CountryCode([*a, *b])),
            _ => Err(AddressError::Country(s.chars().take(16).collect())),
        }
    }
}

impl TryFrom<String> for CountryCode {
    type Error = AddressError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<CountryCode> for String {
    fn from(value: CountryCode) -> Self {
        value.as_str().to_owned()
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A contact e-mail address, trimmed, its domain lower-cased.
///
/// [`Email::normalized`] is the form to compare two addresses by (the whole address lower
/// case), for example to count a guest's uses of a coupon.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The whole address lower case.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl FromStr for Email {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() > 254 || !email_address::EmailAddress::is_valid(s) {
            return Err(AddressError::Email);
        }
        let (local, domain) = s.rsplit_once('@').ok_or(AddressError::Email)?;
        // A shop mails to the internet: a domain needs a dot (no `user@localhost`).
        if !domain.contains('.') || domain.starts_with('[') {
            return Err(AddressError::Email);
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
}

impl TryFrom<String> for Email {
    type Error = AddressError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The fields of an address as a form or an API gives them, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AddressInput {
    /// The recipient.
    pub name: String,
    /// Company, if any.
    pub company: Option<String>,
    /// First address line (street and number).
    pub line1: String,
    /// Second line, if any.
    pub line2: Option<String>,
    /// City or town.
    pub city: String,
    /// State, province or county: an ISO 3166-2 code, with or without the country prefix
    /// (`CA` or `US-CA`).
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// Phone, for the carrier.
    pub phone: Option<String>,
}

/// A validated postal address. Make one with [`Address::new`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "AddressInput", into = "AddressInput")]
pub struct Address {
    name: String,
    company: Option<String>,
    line1: String,
    line2: Option<String>,
    city: String,
    region: Option<String>,
    postal_code: String,
    country: CountryCode,
    phone: Option<String>,
}

/// Countries whose addresses need a region (state, province): their taxes and carriers go
/// by it.
const REGION_REQUIRED: [&str; 5] = ["US", "CA", "AU", "BR", "MX"];

/// Countries without postal codes (a postal code given there is ignored).
const NO_POSTAL_CODE: [&str; 12] = [
    "AE", "AG", "BS", "BZ", "FJ", "GD", "HK", "KI", "QA", "SB", "TV", "VU",
];

/// Postal code formats: `9` a digit, `A` a letter, anything else itself; any of the
/// patterns matches. Countries not listed take 2 to 10 letters, digits, spaces and dashes.
fn postal_patterns(country: &str) -> Option<&'static [&'static str]> {
    Some(match country {
        "US" => &["99999", "99999-9999"],
        "CA" => &["A9A 9A9", "A9A9A9"],
        "GB" | "IM" | "JE" | "GG" => &[
            "A9 9AA", "A99 9AA", "AA9 9AA", "AA99 9AA", "A9A 9AA", "AA9A 9AA",
        ],
        "DE" | "FR" | "IT" | "ES" | "FI" | "EE" | "HR" | "MC" => &["99999"],
        "AT" | "BE" | "BG" | "DK" | "HU" | "LU" | "NO" | "SI" | "CH" | "AU" | "NZ" | "ZA" => {
            &["9999"]
        }
        "NL" => &["9999 AA", "9999AA"],
        "PL" => &["99-999"],
        "PT" => &["9999-999"],
        "SE" | "CZ" | "SK" | "GR" => &["999 99", "99999"],
        "IE" => &["A99 AAAA", "A99AAAA"],
        "JP" => &["999-9999"],
        "BR" => &["99999-999", "99999999"],
        "IN" => &["999999"],
        "CN" | "RU" | "SG" => &["999999"],
        "MX" => &["99999"],
        _ => return None,
    })
}

fn matches_pattern(code: &str, pattern: &str) -> bool {
    code.len() == pattern.len()
        && code.chars().zip(pattern.chars()).all(|(c, p)| match p {
            '9' => c.is_ascii_digit(),
            'A' => c.is_ascii_alphabetic(),
            other => c == other,
        })
}

fn valid_postal_code(country: &str, code: &str) -> bool {
    match postal_patterns(country) {
        Some(patterns) => patterns.iter().any(|p| matches_pattern(code, p)),
        None => {
            (2..=10).contains(&code.len())
                && code
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
        }
    }
}

/// A trimmed text field: `None` when empty, refused when too long or holding control
/// characters.
fn text(field: &'static str, value: &str, max: usize) -> Result<Option<String>, AddressError> {
    let value = value.trim();
    if value.chars().any(char::is_control) {
        return Err(AddressError::Field {
            field,
            reason: "control characters",
        });
    }
    if value.chars().count() > max {
        return Err(AddressError::Field {
            field,
            reason: "too long",
        });
    }
    Ok((!value.is_empty()).then(|| value.to_owned()))
}

fn required(field: &'static str, value: &str, max: usize) -> Result<String, AddressError> {
    text(field, value, max)?.ok_or(AddressError::Missing(field))
}

fn optional(
    field: &'static str,
    value: Option<&String>,
    max: usize,
) -> Result<Option<String>, AddressError> {
    value.map_or(Ok(None), |v| text(field, v, max))
}

impl Address {
    /// Validates and normalizes an address.
    ///
    /// # Errors
    /// [`AddressError`]: an unknown country or region, a missing region where the country
    /// needs one, a postal code not in the country's format, a missing name, first line or
    /// city, a field over its length (name, lines, city: 200 characters; phone: 32) or with
    /// control characters.
    pub fn new(input: AddressInput) -> Result<Address, AddressError> {
        let country: CountryCode = input.country.parse()?;
        let region = match optional("region", input.region.as_ref(), 16)? {
            Some(region) => {
                let region = region.to_ascii_uppercase();
                let code = if region.starts_with(&format!("{country}-")) {
                    region
                } else {
                    format!("{country}-{region}")
                };
                if rust_iso3166::iso3166_2::from_code(&code).is_none() {
                    return Err(AddressError::Region {
                        country,
                        region: input.region.unwrap_or_default().chars().take(16).collect(),
                    });
                }
                Some(code)
            }
            None if REGION_REQUIRED.contains(&country.as_str()) => {
                return Err(AddressError::RegionRequired(country));
            }
            None => None,
        };
        let postal_code = if NO_POSTAL_CODE.contains(&country.as_str()) {
            String::new()
        } else {
            let code = required("postal code", &input.postal_code, 16)?.to_ascii_uppercase();
            if !valid_postal_code(country.as_str(), &code) {
                return Err(AddressError::PostalCode {
                    country,
                    postal_code: code,
                });
            }
            code
        };
        let phone = optional("phone", input.phone.as_ref(), 32)?;
        if phone.as_ref().is_some_and(|p| {
            !p.chars()
                .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        }) {
            return Err(AddressError::Field {
                field: "phone",
                reason: "only digits, spaces and + - ( ) .",
            });
        }
        Ok(Address {
            name: required("name", &input.name, 200)?,
            company: optional("company", input.company.as_ref(), 200)?,
            line1: required("address line 1", &input.line1, 200)?,
            line2: optional("address line 2", input.line2.as_ref(), 200)?,
            city: required("city", &input.city, 200)?,
            region,
            postal_code,
            country,
            phone,
        })
    }

    /// What identifies the address: the hex SHA-256 of its JSON form. Addresses are
    /// normalized when made, so two equal addresses have one digest (an address book keeps
    /// it unique; a shipping quote names its destination by it).
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).expect("an address serializes to JSON");
        hex::encode(sha2::Sha256::digest(&json))
    }

    /// The fields again, to edit and validate anew.
    pub fn to_input(&self) -> AddressInput {
        AddressInput::from(self.clone())
    }

    /// The recipient.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The company, if any.
    pub fn company(&self) -> Option<&str> {
        self.company.as_deref()
    }

    /// The first line.
    pub fn line1(&self) -> &str {
        &self.line1
    }

    /// The second line, if any.
    pub fn line2(&self) -> Option<&str> {
        self.line2.as_deref()
    }

    /// The city.
    pub fn city(&self) -> &str {
        &self.city
    }

    /// The ISO 3166-2 region code (`US-CA`), if any.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The postal code (empty in countries without them).
    pub fn postal_code(&self) -> &str {
        &self.postal_code
    }

    /// The country.
    pub fn country(&self) -> CountryCode {
        self.country
    }

    /// The phone, if any.
    pub fn phone(&self) -> Option<&str> {
        self.phone.as_deref()
    }
}

impl TryFrom<AddressInput> for Address {
    type Error = AddressError;

    fn try_from(value: AddressInput) -> Result<Self, Self::Error> {
        Address::new(value)
    }
}

impl From<Address> for AddressInput {
    fn from(a: Address) -> Self {
        AddressInput {
            name: a.name,
            company: a.company,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country.as_str().to_owned(),
            phone: a.phone,
        }
    }
}

impl fmt::Display for Address {
    /// The address on one line per part, as a label shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.name)?;
        if let Some(company) = &self.company {
            writeln!(f, "{company}")?;
        }
        writeln!(f, "{}", self.line1)?;
        if let Some(line2) = &self.line2 {
            writeln!(f, "{line2}")?;
        }
        let region = self
            .region
            .as_deref()
            .and_then(|r| r.split_once('-'))
            .map(|(_, r)| format!(" {r}"))
            .unwrap_or_default();
        writeln!(f, "{} {}{region}", self.postal_code, self.city)?;
        write!(f, "{}", self.country.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> AddressInput {
        AddressInput {
            name: "Grace Hopper".into(),
            line1: "1 Main St".into(),
            city: "Austin".into(),
            region: Some("TX".into()),
            postal_code: "78701".into(),
            country: "US".into(),
            ..AddressInput::default()
        }
    }

    #[test]
    fn valid_addresses_are_normalized() {
        let a = Address::new(AddressInput {
            name: "  Grace Hopper ".into(),
            region: Some("us-tx".into()),
            country: " us".into(),
            postal_code: "78701-1234".into(),
            ..us()
        })
        .unwrap();
        assert_eq!(a.name(), "Grace Hopper");
        assert_eq!(a.region(), Some("US-TX"));
        assert_eq!(a.postal_code(), "78701-1234");
        let de = Address::new(AddressInput {
            region: None,
            postal_code: "10115".into(),
            city: "Berlin".into(),
            country: "DE".into(),
            ..us()
        })
        .unwrap();
        assert_eq!(de.country().name(), "Germany");
        let gb = Address::new(AddressInput {
            region: None,
            postal_code: "sw1a 1aa".into(),
            country: "GB".into(),
            ..us()
        })
        .unwrap();
        assert_eq!(gb.postal_code(), "SW1A 1AA");
    }

    #[test]
    fn bad_addresses_are_refused_by_name() {
        let refused = |input: AddressInput| Address::new(input).unwrap_err();
        assert_eq!(
            refused(AddressInput {
                country: "XX".into(),
                ..us()
            }),
            AddressError::Country("XX".into())
        );
        assert!(matches!(
            refused(AddressInput {
                region: Some("ZZ".into()),
                ..us()
            }),
            AddressError::Region { .. }
        ));
        assert!(matches!(
            refused(AddressInput {
                region: None,
                ..us()
            }),
            AddressError::RegionRequired(_)
        ));
        assert!(matches!(
            refused(AddressInput {
                postal_code: "7870".into(),
                ..us()
            }),
            AddressError::PostalCode { .. }
        ));
        assert_eq!(
            refused(AddressInput {
                line1: "   ".into(),
                ..us()
            }),
            AddressError::Missing("address line 1")
        );
        assert!(matches!(
            refused(AddressInput {
                city: "Aus\u{7}tin".into(),
                ..us()
            }),
            AddressError::Field { field: "city", .. }
        ));
        assert!(matches!(
            refused(AddressInput {
                phone: Some("call me".into()),
                ..us()
            }),
            AddressError::Field { field: "phone", .. }
        ));
    }

    #[test]
    fn deserializing_validates() {
        let json = serde_json::to_string(&Address::new(us()).unwrap()).unwrap();
        let back: Address = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Address::new(us()).unwrap());
        let broken = json.replace("78701", "ABCDE");
        assert!(serde_json::from_str::<Address>(&broken).is_err());
    }

    #[test]
    fn emails_are_checked_and_normalized() {
        let e: Email = " Ada@Example.COM ".parse().unwrap();
        assert_eq!(e.as_str(), "Ada@example.com");
        assert_eq!(e.normalized(), "ada@example.com");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@localhost",
            "a b@example.com",
        ] {
            assert_eq!(bad.parse::<Email>(), Err(AddressError::Email), "{bad}");
        }
    }
}
