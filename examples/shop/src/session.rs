//! The shopper's session: who they are and which cart is theirs. The cookie carries only a
//! random session id (tower-sessions); what it names is kept server-side in the shop's SQL
//! database ([`SqlSessionStore`]), so signing out ends the session everywhere (an old copy
//! of the cookie names nothing any more) and a session ends a week after it last changed.
//! The server trusts nothing else from the client: a cart or order id in a URL is only served
//! when it belongs to the session's customer.
//!
//! The sign-in is the simplest that shows the cart merge: an e-mail address names the
//! customer. A real shop puts its identity provider here and keeps the rest.

use std::collections::HashMap;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use ecommerce::Storefront;
use ecommerce::cart::Cart;
use ecommerce::error::CartError;
use ecommerce::id::{CartId, CustomerId, OrderId, Sku};
use ecommerce::sql::{Db, Dialect, Pool};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions::{Expiry, SessionManagerLayer};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, Problem};

/// The cookie's name.
pub(crate) const COOKIE_NAME: &str = "shop_session";

/// How long a session lasts after it last changed (signing in, a new cart).
pub(crate) const SESSION_LIFETIME: time::Duration = time::Duration::days(7);

/// Where the shopper is kept inside the session.
const SHOPPER: &str = "shopper";

const CUSTOMER_NAMESPACE: Uuid = Uuid::from_u128(0x5b0f_4a5e_77c3_4f0e_9a61_2d7e_8c41_0b9a);

/// The session layer: an `HttpOnly`, `SameSite=Lax` cookie `shop_session` that expires
/// [`SESSION_LIFETIME`] after the session last changed, over the shop's session store.
pub(crate) fn layer(store: SqlSessionStore) -> SessionManagerLayer<SqlSessionStore> {
    SessionManagerLayer::new(store)
        .with_name(COOKIE_NAME)
        .with_secure(false)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(SESSION_LIFETIME))
}

/// What the session remembers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Shopper {
    customer: CustomerId,
    email: Option<String>,
    cart: Option<CartId>,
    #[serde(default)]
    waiting: Option<OrderId>,
}

/// Who is shopping.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The customer the orders are placed for: a random id for a guest, derived from the e-mail
    /// address once signed in.
    pub(crate) customer: CustomerId,
    /// The signed-in address, `None` for a guest.
    pub(crate) email: Option<String>,
    /// The cart, once the shopper has one.
    pub(crate) cart: Option<CartId>,
    /// The last order this session paid with a payment that waited for the bank.
    pub(crate) waiting: Option<OrderId>,
    /// The server-side session this shopper is kept in.
    handle: tower_sessions::Session,
}

impl Session {
    fn guest(handle: tower_sessions::Session) -> Self {
        Session {
            customer: CustomerId::new(),
            email: None,
            cart: None,
            waiting: None,
            handle,
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

    /// Keeps the shopper in the session: the response (re)sends the cookie.
    async fn save(&self) -> Result<(), Problem> {
        let shopper = Shopper {
            customer: self.customer,
            email: self.email.clone(),
            cart: self.cart,
            waiting: self.waiting,
        };
        self.handle
            .insert(SHOPPER, shopper)
            .await
            .map_err(|e| session_unavailable(&e))
    }

    /// The session after signing in as `email`: the customer's persistent cart, with the guest
    /// cart merged into it. The session gets a new id, so an id known before the sign-in (a
    /// planted cookie) does not name the signed-in session.
    pub(crate) async fn sign_in(
        mut self,
        shop: &Storefront,
        email: String,
    ) -> Result<Session, Problem> {
        let customer = Session::customer_of(&email);
        let cart = match self.cart.filter(|_| self.email.is_none()) {
            Some(guest) => shop.merge_guest_cart(guest, customer).await?.cart,
            None => shop.customer_cart(customer).await?,
        };
        self.customer = customer;
        self.email = Some(email);
        self.cart = Some(cart.id);
        self.handle
            .cycle_id()
            .await
            .map_err(|e| session_unavailable(&e))?;
        self.save().await?;
        Ok(self)
    }

    /// Remembers that this session's payment for `order` waits for the bank.
    pub(crate) async fn await_payment(&mut self, order: OrderId) -> Result<(), Problem> {
        self.waiting = Some(order);
        self.save().await
    }

    /// Ends the session: it is deleted from the store (every copy of its cookie names nothing
    /// any more) and the cookie is removed.
    pub(crate) async fn sign_out(self) -> Result<(), Problem> {
        self.handle
            .flush()
            .await
            .map_err(|e| session_unavailable(&e))
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
            Some(_) => {
                let cart = shop.customer_cart(self.customer).await?;
                shop.add_item(cart.id, sku, quantity).await?
            }
            // A guest's first item makes the cart, in one write.
            None => shop.create_guest_cart_with(sku, quantity).await?,
        };
        self.cart = Some(cart.id);
        self.save().await?;
        Ok(cart)
    }
}

fn session_unavailable(e: &tower_sessions::session::Error) -> Problem {
    tracing::warn!(error = %e, "the session store failed");
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "sessions_unavailable",
        "Your session cannot be saved just now. Please try again in a moment.",
    )
}

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    /// The request's session. One the store cannot read (it is down) is served as a guest, so
    /// catalog pages stay up; a change to it then fails with `sessions_unavailable`.
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let handle = tower_sessions::Session::from_request_parts(parts, state)
            .await
            .map_err(|(status, message)| ApiError(Problem::new(status, "session", message)))?;
        match handle.get::<Shopper>(SHOPPER).await {
            Ok(Some(shopper)) => Ok(Session {
                customer: shopper.customer,
                email: shopper.email,
                cart: shopper.cart,
                waiting: shopper.waiting,
                handle,
            }),
            Ok(None) => Ok(Session::guest(handle)),
            Err(e) => {
                tracing::warn!(error = %e, "reading the session failed; serving a guest");
                Ok(Session::guest(handle))
            }
        }
    }
}

/// Runs `$body` with `$pool` bound to the shop database's pool of its own driver (the body
/// is compiled once per driver).
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db.pool() {
            Pool::Postgres($pool) => $body,
            Pool::MySql($pool) => $body,
            Pool::Sqlite($pool) => $body,
            _ => Err(sqlx::Error::Configuration(
                "sessions are kept in PostgreSQL, MySQL or SQLite".into(),
            )),
        }
    };
}

/// Sessions in the shop's SQL database: one row per session (`shop_sessions`: the id, the
/// session's data as JSON, and when it expires in Unix seconds). Expired rows are never
/// served and are swept by [`SqlSessionStore::delete_expired`].
#[derive(Debug, Clone)]
pub(crate) struct SqlSessionStore {
    db: Db,
}

impl SqlSessionStore {
    /// The store over `db`, creating its table when it is missing.
    ///
    /// # Errors
    /// The database refuses the table.
    pub(crate) async fn open(db: Db) -> Result<SqlSessionStore, sqlx::Error> {
        db.execute(
            "CREATE TABLE IF NOT EXISTS shop_sessions (
                id VARCHAR(32) NOT NULL PRIMARY KEY,
                data TEXT NOT NULL,
                expires_at BIGINT NOT NULL
            )",
        )
        .await?;
        Ok(SqlSessionStore { db })
    }

    /// `$n` placeholders as the dialect writes them.
    fn sql(&self, postgres: &'static str) -> String {
        match self.db.dialect() {
            Dialect::MySql => {
                let mut out = postgres.to_owned();
                for n in (1..=3).rev() {
                    out = out.replace(&format!("${n}"), "?");
                }
                out
            }
            _ => postgres.to_owned(),
        }
    }

    /// Removes the sessions that expired; returns how many.
    ///
    /// # Errors
    /// The database is unreachable.
    pub(crate) async fn delete_expired(&self) -> Result<u64, sqlx::Error> {
        let sql = self.sql("DELETE FROM shop_sessions WHERE expires_at < $1");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        on_pool!(self.db, |pool| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
    }

    async fn insert(&self, record: &Record) -> Result<bool, session_store::Error> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let sql = self.sql("INSERT INTO shop_sessions (id, data, expires_at) VALUES ($1, $2, $3)");
        let inserted = on_pool!(self.db, |pool| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(record.id.to_string())
            .bind(data)
            .bind(record.expiry_date.unix_timestamp())
            .execute(pool)
            .await
            .map(drop));
        match inserted {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }
}

fn backend(e: sqlx::Error) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        while !self.insert(record).await? {
            record.id = Id::default();
        }
        Ok(())
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let data = serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?;
        let sql = self.sql("UPDATE shop_sessions SET data = $1, expires_at = $2 WHERE id = $3");
        let updated = on_pool!(self.db, |pool| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(data)
            .bind(record.expiry_date.unix_timestamp())
            .bind(record.id.to_string())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .map_err(backend)?;
        if updated == 0 {
            // Not there (swept, or saved for the first time under a cycled id): keep it.
            self.insert(record).await?;
        }
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let sql = self
            .sql("SELECT data, expires_at FROM shop_sessions WHERE id = $1 AND expires_at > $2");
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let row: Option<(String, i64)> =
            on_pool!(self.db, |pool| sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(id.to_string())
                .bind(now)
                .fetch_optional(pool)
                .await)
            .map_err(backend)?;
        let Some((data, expires_at)) = row else {
            return Ok(None);
        };
        let data: HashMap<String, serde_json::Value> =
            serde_json::from_str(&data).map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp(expires_at)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let sql = self.sql("DELETE FROM shop_sessions WHERE id = $1");
        on_pool!(self.db, |pool| sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.to_string())
            .execute(pool)
            .await
            .map(drop))
        .map_err(backend)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn the_store_keeps_sessions_until_they_expire_or_are_deleted() {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        let store = SqlSessionStore::open(db).await.unwrap();
        let mut record = Record {
            id: Id::default(),
            data: HashMap::from([("shopper".to_owned(), serde_json::json!({"a": 1}))]),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        let data = |r: Option<Record>| r.map(|r| (r.id, r.data, r.expiry_date.unix_timestamp()));
        store.create(&mut record).await.unwrap();
        let expected = (
            record.id,
            record.data.clone(),
            record.expiry_date.unix_timestamp(),
        );
        assert_eq!(data(store.load(&record.id).await.unwrap()), Some(expected));

        record.data.insert("more".to_owned(), serde_json::json!(2));
        store.save(&record).await.unwrap();
        let expected = (
            record.id,
            record.data.clone(),
            record.expiry_date.unix_timestamp(),
        );
        assert_eq!(data(store.load(&record.id).await.unwrap()), Some(expected));

        // Expired: never served, and swept.
        record.expiry_date = OffsetDateTime::now_utc() - time::Duration::seconds(1);
        store.save(&record).await.unwrap();
        assert!(store.load(&record.id).await.unwrap().is_none());
        assert_eq!(store.delete_expired().await.unwrap(), 1);

        let mut other = Record {
            id: Id::default(),
            data: HashMap::new(),
            expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
        };
        store.create(&mut other).await.unwrap();
        store.delete(&other.id).await.unwrap();
        assert!(store.load(&other.id).await.unwrap().is_none());
    }
}
