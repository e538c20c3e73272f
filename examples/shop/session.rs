//! The shopper's session: who they are and which cart is theirs, in a cookie signed with
//! HMAC-SHA256. The server trusts nothing else from the client: a cart or order id in a URL is
//! only served when it belongs to the session's customer, and a cookie that was edited fails
//! its signature and starts a fresh guest session.
//!
//! The sign-in is the simplest that shows the cart merge: an e-mail address names the
//! customer. A real shop puts its identity provider here and keeps the rest.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponseParts, ResponseParts};
use ecommerce::Storefront;
use ecommerce::cart::Cart;
use ecommerce::error::CartError;
use ecommerce::id::{CartId, CustomerId, Sku};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

use crate::app::AppState;
use crate::error::Problem;

/// The cookie's name.
pub(crate) const COOKIE_NAME: &str = "shop_session";

const CUSTOMER_NAMESPACE: Uuid = Uuid::from_u128(0x5b0f_4a5e_77c3_4f0e_9a61_2d7e_8c41_0b9a);

/// The key that signs session cookies.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SessionKey(Arc<[u8]>);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(<redacted>)")
    }
}

impl SessionKey {
    pub(crate) fn new(secret: &[u8]) -> Self {
        SessionKey(secret.into())
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(payload.as_bytes());
        mac
    }
}

/// Who is shopping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Session {
    /// The customer the orders are placed for: a random id for a guest, derived from the e-mail
    /// address once signed in.
    pub(crate) customer: CustomerId,
    /// The signed-in address, `None` for a guest.
    pub(crate) email: Option<String>,
    /// The cart, once the shopper has one.
    pub(crate) cart: Option<CartId>,
    /// Where the cookie is sent, for `Set-Cookie`.
    key: SessionKey,
}

impl Session {
    fn guest(key: SessionKey) -> Self {
        Session {
            customer: CustomerId::new(),
            email: None,
            cart: None,
            key,
        }
    }

    /// The customer an e-mail address names.
    pub(crate) fn customer_of(email: &str) -> CustomerId {
        CustomerId::from_uuid(Uuid::new_v5(&CUSTOMER_NAMESPACE, email.as_bytes()))
    }

    /// Normalizes an e-mail address, or says why it is not one.
    pub(crate) fn parse_email(email: &str) -> Result<String, Problem> {
        let email = email.trim().to_lowercase();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty() && domain.contains('.') && !domain.starts_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(email)
        } else {
            Err(Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_email",
                "Please enter an e-mail address like you@example.com.",
            ))
        }
    }

    /// The session after signing in as `email`: the customer's persistent cart, with the guest
    /// cart merged into it.
    pub(crate) async fn sign_in(
        self,
        shop: &Storefront,
        email: String,
    ) -> Result<Session, Problem> {
        let customer = Session::customer_of(&email);
        let cart = match self.cart.filter(|_| self.email.is_none()) {
            Some(guest) => shop.merge_guest_cart(guest, customer).await?.cart,
            None => shop.customer_cart(customer).await?,
        };
        Ok(Session {
            customer,
            email: Some(email),
            cart: Some(cart.id),
            key: self.key,
        })
    }

    /// A fresh guest session.
    pub(crate) fn sign_out(self) -> Session {
        Session::guest(self.key)
    }

    /// Adds units to the session's cart, making the cart first when the session has none or
    /// its cart is gone (a confirmed checkout deletes it).
    pub(crate) async fn add_item(
        &mut self,
        shop: &Storefront,
        sku: &Sku,
        quantity: u32,
    ) -> Result<Cart, Problem> {
        if let Some(cart) = self.cart {
            match shop.add_item(cart, sku, quantity).await {
                Err(CartError::NotFound(_)) => {}
                added => return Ok(added?),
            }
        }
        let cart = match self.email {
            Some(_) => shop.customer_cart(self.customer).await?,
            None => shop.create_guest_cart().await?,
        };
        self.cart = Some(cart.id);
        Ok(shop.add_item(cart.id, sku, quantity).await?)
    }

    fn encode(&self) -> String {
        let payload = format!(
            "{}.{}.{}",
            self.customer,
            self.cart.map(|c| c.to_string()).unwrap_or_default(),
            hex::encode(self.email.as_deref().unwrap_or_default())
        );
        let signature = hex::encode(self.key.mac(&payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    fn decode(value: &str, key: &SessionKey) -> Option<Session> {
        let (payload, signature) = value.rsplit_once('.')?;
        key.mac(payload)
            .verify_slice(&hex::decode(signature).ok()?)
            .ok()?;
        let mut parts = payload.split('.');
        let customer = parts.next()?.parse().ok()?;
        let cart = match parts.next()? {
            "" => None,
            id => Some(id.parse().ok()?),
        };
        let email = match parts.next()? {
            "" => None,
            hex_email => Some(String::from_utf8(hex::decode(hex_email).ok()?).ok()?),
        };
        Some(Session {
            customer,
            email,
            cart,
            key: key.clone(),
        })
    }
}

impl FromRequestParts<AppState> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let found = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .filter(|(name, _)| *name == COOKIE_NAME)
            .find_map(|(_, value)| Session::decode(value, &state.session_key));
        Ok(found.unwrap_or_else(|| Session::guest(state.session_key.clone())))
    }
}

/// Returning the session from a handler (re)sends its cookie.
impl IntoResponseParts for Session {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut res: ResponseParts) -> Result<ResponseParts, Self::Error> {
        let cookie = format!(
            "{COOKIE_NAME}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000",
            self.encode()
        );
        let value = HeaderValue::from_str(&cookie).expect("session cookies are ASCII");
        res.headers_mut().append(SET_COOKIE, value);
        Ok(res)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_round_trips_and_an_edited_one_is_refused() {
        let key = SessionKey::new(b"k");
        let session = Session {
            customer: CustomerId::new(),
            email: Some("ann@example.com".into()),
            cart: Some(CartId::new()),
            key: key.clone(),
        };
        let cookie = session.encode();
        assert_eq!(Session::decode(&cookie, &key), Some(session.clone()));

        let other_cart = cookie.replacen(
            &session.cart.unwrap().to_string(),
            &CartId::new().to_string(),
            1,
        );
        assert_eq!(Session::decode(&other_cart, &key), None);
        assert_eq!(Session::decode(&cookie, &SessionKey::new(b"other")), None);
        assert_eq!(Session::decode("garbage", &key), None);
    }

    #[test]
    fn emails_are_normalized_or_refused() {
        assert_eq!(
            Session::parse_email(" Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@localhost",
            "a b@example.com",
            &"x".repeat(300),
        ] {
            assert!(Session::parse_email(bad).is_err(), "{bad}");
        }
    }
}
