//! Typed identifiers.
//!
//! Every id is a newtype so a cart id cannot be passed where an order id is expected.
//! UUID ids parse from their hyphenated text form and reject anything else
//! ([`IdError::Malformed`]); [`OrderId`], [`ReservationId`], [`EventId`] and [`AddressId`] are
//! UUID v7, so they sort by creation time. Text ids ([`Sku`], [`CategoryId`], [`IdempotencyKey`]) are validated on
//! construction: a value of the type is always well formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A malformed identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The text is not a valid id of this kind.
    #[error("malformed {kind}: {reason}")]
    Malformed {
        /// The kind of id (`"order id"`, `"sku"`...).
        kind: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $new:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, random id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                $name($new)
            }

            /// Wraps an existing UUID.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                $name(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                if s.len() != 36 {
                    return Err(IdError::Malformed { kind: $kind, reason: "expected a hyphenated UUID" });
                }
                Uuid::parse_str(s)
                    .map($name)
                    .map_err(|_| IdError::Malformed { kind: $kind, reason: "expected a hyphenated UUID" })
            }
        }
    };
}

uuid_id!(
    /// A product (the thing shoppers see); it sells through one or more [`Sku`]s.
    ProductId,
    "product id",
    Uuid::new_v4()
);
uuid_id!(
    /// A cart. A guest's cart id is the guest's cart token; a customer's is derived from the
    /// customer id ([`CartId::for_customer`]).
    CartId,
    "cart id",
    Uuid::new_v4()
);
uuid_id!(
    /// A customer.
    CustomerId,
    "customer id",
    Uuid::new_v4()
);
uuid_id!(
    /// An order (UUID v7: ids sort by creation time).
    OrderId,
    "order id",
    Uuid::now_v7()
);
uuid_id!(
    /// A stock reservation (UUID v7).
    ReservationId,
    "reservation id",
    Uuid::now_v7()
);
uuid_id!(
    /// An event in the outbox (UUID v7: ids sort by creation time).
    EventId,
    "event id",
    Uuid::now_v7()
);
uuid_id!(
    /// An address a customer saved in their address book (UUID v7: ids sort by creation
    /// time).
    AddressId,
    "address id",
    Uuid::now_v7()
);

const CUSTOMER_CART_NAMESPACE: Uuid = Uuid::from_u128(0x6ec0_33e2_c0de_4ca7_a3b1_5e7f_0c2a_11d4);
const BUY_NOW_CART_NAMESPACE: Uuid = Uuid::from_u128(0x0b4c_7a1e_5d2f_4e83_9a60_c1f8_27d3_b905);

impl CartId {
    /// The persistent cart of a customer: the same id on every device, so a cart started on
    /// mobile shows on desktop.
    pub fn for_customer(customer: CustomerId) -> Self {
        CartId(Uuid::new_v5(
            &CUSTOMER_CART_NAMESPACE,
            customer.0.as_bytes(),
        ))
    }

    /// The cart of a "Buy now" request
    /// ([`CheckoutRequest::buy_now`](crate::checkout::CheckoutRequest::buy_now)): derived from
    /// the customer, the idempotency key and the item, so a retry of the request finds the
    /// cart (and the order) of its first try, and the same key with another item names
    /// another cart.
    pub fn buy_now(customer: CustomerId, key: &IdempotencyKey, sku: &Sku, quantity: u32) -> Self {
        let mut name = Vec::with_capacity(16 + key.as_str().len() + sku.as_str().len() + 6);
        name.extend_from_slice(customer.0.as_bytes());
        // Keys and SKUs never hold a NUL: the separators keep the parts apart.
        for part in [key.as_str(), sku.as_str()] {
            name.extend_from_slice(part.as_bytes());
            name.push(0);
        }
        name.extend_from_slice(&quantity.to_be_bytes());
        CartId(Uuid::new_v5(&BUY_NOW_CART_NAMESPACE, &name))
    }
}

fn validate_token(
    s: &str,
    kind: &'static str,
    max: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Malformed {
            kind,
            reason: "empty",
        });
    }
    if s.len() > max {
        return Err(IdError::Malformed {
            kind,
            reason: "too long",
        });
    }
    if !s.chars().all(allowed) {
        return Err(IdError::Malformed {
            kind,
            reason: "contains a character that is not allowed",
        });
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allowed:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value, in bytes.
            pub const MAX_LEN: usize = $max;

            /// Validates and wraps `value`.
            ///
            /// # Errors
            /// [`IdError::Malformed`] when it is empty, too long, or has a character outside
            /// the allowed set.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate_token(&value, $kind, $max, $allowed)?;
                Ok($name(value))
            }

            /// The text of the id.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

text_id!(
    /// A stock keeping unit: the one purchasable variant of a product (`TSHIRT-RED-M`).
    /// 1 to 64 ASCII letters, digits, `-`, `_` or `.`.
    Sku,
    "sku",
    64,
    |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
);
text_id!(
    /// A category slug (`audio`, `running-shoes`): 1 to 64 lowercase ASCII letters, digits or `-`.
    CategoryId,
    "category id",
    64,
    |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
);
text_id!(
    /// A client-chosen key that makes a request safe to retry (as Stripe's API treats them):
    /// the same key with the same request returns the first result. 1 to 255 printable ASCII
    /// characters.
    IdempotencyKey,
    "idempotency key",
    255,
    |c: char| c.is_ascii_graphic()
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buy_now_cart_is_named_by_its_request_and_item() {
        let customer = CustomerId::new();
        let key = IdempotencyKey::new("k1").unwrap();
        let sku = Sku::new("TEE").unwrap();
        let cart = CartId::buy_now(customer, &key, &sku, 2);
        assert_eq!(cart, CartId::buy_now(customer, &key, &sku, 2), "a retry");
        for other in [
            CartId::buy_now(CustomerId::new(), &key, &sku, 2),
            CartId::buy_now(customer, &IdempotencyKey::new("k2").unwrap(), &sku, 2),
            CartId::buy_now(customer, &key, &Sku::new("TEE2").unwrap(), 2),
            CartId::buy_now(customer, &key, &sku, 3),
            // The parts are kept apart: the key's end cannot become the SKU's start.
            CartId::buy_now(
                customer,
                &IdempotencyKey::new("k1T").unwrap(),
                &Sku::new("EE").unwrap(),
                2,
            ),
            CartId::for_customer(customer),
        ] {
            assert_ne!(cart, other);
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        assert!("not-a-uuid".parse::<OrderId>().is_err());
        assert!(
            "{67e55044-10b1-426f-9247-bb680e5fe0c8}"
                .parse::<OrderId>()
                .is_err()
        );
        let id = OrderId::new();
        assert_eq!(id.to_string().parse::<OrderId>(), Ok(id));
        assert!(Sku::new("").is_err());
        assert!(Sku::new("a b").is_err());
        assert!(Sku::new("x".repeat(65)).is_err());
        assert!(Sku::new("TSHIRT-RED_M.2").is_ok());
        assert!(CategoryId::new("Audio").is_err());
        assert!(IdempotencyKey::new("key with space").is_err());
        assert!(serde_json::from_str::<Sku>("\"bad sku\"").is_err());
    }

    #[test]
    fn order_ids_sort_by_creation() {
        let a = OrderId::new();
        let b = OrderId::new();
        assert!(a < b);
    }

    #[test]
    fn customer_cart_id_is_stable() {
        let c = CustomerId::new();
        assert_eq!(CartId::for_customer(c), CartId::for_customer(c));
        assert_ne!(
            CartId::for_customer(c),
            CartId::for_customer(CustomerId::new())
        );
    }
}
