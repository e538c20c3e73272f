//! What the shop answers when something goes wrong: one [`Problem`] per failure, shown as JSON
//! to API clients ([`ApiError`]) and as a page to people ([`PageError`]). Storage failures are
//! logged with their cause and shown without it: a shopper never sees a driver message or a
//! stack trace.

use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use ecommerce::address::AddressError;
use ecommerce::error::{
    CartError, CatalogError, CheckoutError, Error, InventoryError, OrderError, PaymentError,
    StoreError,
};
use ecommerce::id::OrderId;
use ecommerce::payment::WebhookError;
use ecommerce::promotion::{CouponProblem, MAX_CODES_PER_CART, PromotionError};
use ecommerce::quote::QuoteItem;
use ecommerce::shipping::ShippingError;
use ecommerce::tax::TaxError;
use maud::html;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::html;

/// A failure as the shopper should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    /// The HTTP status.
    pub(crate) status: StatusCode,
    /// A stable, machine-readable code (`out_of_stock`, `not_found`, ...).
    pub(crate) code: &'static str,
    /// A sentence for a person.
    pub(crate) message: String,
    /// The order the shopper should look at (the one paying for their cart, one that failed).
    pub(crate) order: Option<OrderId>,
    /// More for a program to act on (the new quote when the price changed).
    pub(crate) detail: Option<serde_json::Value>,
}

impl Problem {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Problem {
            status,
            code,
            message: message.into(),
            order: None,
            detail: None,
        }
    }

    /// Adds what a program needs to act on the problem.
    pub(crate) fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Names the order the shopper should look at.
    pub(crate) fn with_order(mut self, order: OrderId) -> Self {
        self.order = Some(order);
        self
    }

    /// Something that does not exist, or that belongs to someone else: both answer the same.
    pub(crate) fn not_found(what: &str) -> Self {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// A failed change to a cart that answers with the checkout's errors (a code applied or
    /// removed): nothing was ordered, so a storage failure is "try again", never "your order
    /// is kept as pending" as it is at Pay.
    pub(crate) fn of_cart_change(e: CheckoutError) -> Self {
        match &e {
            CheckoutError::Promotion(PromotionError::Coupon { .. })
            | CheckoutError::Cart(_)
            | CheckoutError::CartNotFound(_)
            | CheckoutError::EmptyCart(_) => e.into(),
            _ => Problem::unavailable(&e),
        }
    }

    /// A code that cannot be used: its problem as a stable code, 404 for an unknown one,
    /// 409 for one used up, 422 otherwise; `detail` names the code and the problem.
    fn coupon(code: &str, problem: &CouponProblem) -> Self {
        use StatusCode as S;
        // The code as the shopper typed it, shortened: it is echoed back.
        let shown: String = code
            .trim()
            .chars()
            .take(32)
            .collect::<String>()
            .to_uppercase();
        let (status, kind, message) = match problem {
            CouponProblem::Unknown => (
                S::NOT_FOUND,
                "unknown_code",
                format!("There is no code {shown}: please check it."),
            ),
            CouponProblem::Expired => (
                S::UNPROCESSABLE_ENTITY,
                "code_expired",
                format!("The code {shown} has expired."),
            ),
            CouponProblem::NotYetValid => (
                S::UNPROCESSABLE_ENTITY,
                "code_not_yet_valid",
                format!("The code {shown} is not valid yet."),
            ),
            CouponProblem::Exhausted => (
                S::CONFLICT,
                "code_used_up",
                format!("The code {shown} has been used up."),
            ),
            CouponProblem::OtherCurrency => (
                S::UNPROCESSABLE_ENTITY,
                "code_other_currency",
                format!("The code {shown} is for prices in another currency."),
            ),
            CouponProblem::TooMany => (
                S::UNPROCESSABLE_ENTITY,
                "too_many_codes",
                format!(
                    "A cart takes at most {MAX_CODES_PER_CART} codes: remove one to use {shown}."
                ),
            ),
            CouponProblem::AlreadyApplied => (
                S::UNPROCESSABLE_ENTITY,
                "code_already_applied",
                format!("The code {shown} is already applied."),
            ),
            _ => (
                S::UNPROCESSABLE_ENTITY,
                "invalid_code",
                format!("The code {shown} cannot be used: {problem}."),
            ),
        };
        Problem::new(status, kind, message)
            .with_detail(json!({ "code": shown, "problem": problem }))
    }

    /// A promotion whose limit was reached at Pay (another order took its last use, or the
    /// customer used it before): nothing was stored or charged. `detail` names the promotion,
    /// the code and the limit; the API's client pays again without the code, or with
    /// `without_exhausted_promotions`.
    fn promotion_exhausted(e: &PromotionError) -> Self {
        let PromotionError::Exhausted {
            promotion,
            code,
            limit,
        } = e
        else {
            return Problem::unavailable(e);
        };
        let what = match code {
            Some(code) => format!("The code {code}"),
            None => format!("The offer {promotion}"),
        };
        let remedy = match code {
            Some(_) => "remove the code and pay again",
            None => "please pay again",
        };
        Problem::new(
            StatusCode::CONFLICT,
            "promotion_exhausted",
            format!(
                "{what} cannot be used: {}. Nothing was charged; {remedy}.",
                crate::promotions::limit_text(*limit)
            ),
        )
        .with_detail(json!({ "promotion": promotion, "code": code, "limit": limit }))
    }

    /// A backend failure: logged in full, shown as "try again".
    fn unavailable(cause: &dyn std::error::Error) -> Self {
        tracing::error!(error = %cause, "backend error");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The shop could not reach its storage. Nothing was lost; please try again.",
        )
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let unprocessable = |code, e: &dyn std::fmt::Display| {
            Problem::new(S::UNPROCESSABLE_ENTITY, code, e.to_string())
        };
        match &e {
            Error::Validation(v) => unprocessable("invalid", v),
            Error::Id(v) => unprocessable("invalid", v),
            Error::Money(v) => unprocessable("invalid", v),
            Error::Catalog(CatalogError::ProductNotFound(_)) => Problem::not_found("product"),
            Error::Catalog(CatalogError::Invalid(v)) => unprocessable("invalid", v),
            Error::Cart(c) | Error::Checkout(CheckoutError::Cart(c)) => match c {
                CartError::NotFound(_) => Problem::not_found("cart"),
                CartError::UnknownSku(_) | CartError::LineNotFound(_) => {
                    Problem::new(S::NOT_FOUND, "unknown_item", c.to_string())
                }
                CartError::Unavailable(_) => {
                    Problem::new(S::CONFLICT, "unavailable_item", c.to_string())
                }
                CartError::InvalidQuantity { .. } => unprocessable("invalid_quantity", c),
                CartError::TooManyLines { .. } => unprocessable("too_many_lines", c),
                CartError::CurrencyMismatch { .. } => unprocessable("currency_mismatch", c),
                CartError::VersionConflict { .. } => Problem::new(
                    S::CONFLICT,
                    "busy",
                    "The cart changed in another tab; please try again.",
                ),
                _ => Problem::unavailable(&e),
            },
            Error::Checkout(c) => match c {
                CheckoutError::CartNotFound(_) => Problem::not_found("cart"),
                CheckoutError::EmptyCart(_) => unprocessable("empty_cart", &"Your cart is empty."),
                CheckoutError::PricesChanged { changes } => Problem::new(
                    S::CONFLICT,
                    "prices_changed",
                    format!(
                        "Prices changed since you added them ({}); your cart shows the new prices. Please review it and pay again.",
                        changes
                            .iter()
                            .map(|c| format!("{}: {} now {}", c.sku, c.was, c.now))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                CheckoutError::ItemUnavailable(_) => {
                    Problem::new(S::CONFLICT, "unavailable_item", c.to_string())
                }
                CheckoutError::OutOfStock { shortages, .. } => Problem::new(
                    S::CONFLICT,
                    "out_of_stock",
                    format!(
                        "Sold out: {}. Nothing was charged.",
                        shortages
                            .iter()
                            .map(|s| format!(
                                "{} ({} wanted, {} left)",
                                s.sku, s.requested, s.available
                            ))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ),
                CheckoutError::PaymentDeclined { reason, .. } => Problem::new(
                    S::PAYMENT_REQUIRED,
                    "payment_declined",
                    format!("The payment was declined ({reason}). Nothing was charged."),
                ),
                CheckoutError::StockLostAfterPayment { order, .. } => Problem::new(
                    S::CONFLICT,
                    "sold_out_refunded",
                    "Sold out while your bank confirmed the payment: the payment was refunded in full.",
                )
                .with_order(*order),
                CheckoutError::PaymentNotCompleted { order } => Problem::new(
                    S::PAYMENT_REQUIRED,
                    "payment_not_completed",
                    "The payment was not completed; nothing is kept. Please pay again.",
                )
                .with_order(*order),
                CheckoutError::CartInCheckout { order } => Problem::new(
                    S::CONFLICT,
                    "cart_in_checkout",
                    "This cart is already being paid, or was paid, by another checkout: see that order. You were not charged twice.",
                )
                .with_order(*order),
                CheckoutError::CartChanged { .. } => Problem::new(
                    S::CONFLICT,
                    "cart_changed",
                    "Your cart changed while paying (another checkout paid for its items). Nothing was charged; please review your cart.",
                ),
                CheckoutError::OrderCancelled(order) => Problem::new(
                    S::CONFLICT,
                    "order_cancelled",
                    "This order was cancelled and refunded.",
                )
                .with_order(*order),
                CheckoutError::Order(OrderError::NotFound(_)) => Problem::not_found("order"),
                CheckoutError::DeliveryRequired => unprocessable(
                    "delivery_required",
                    &"Add a contact e-mail and a shipping address.",
                ),
                CheckoutError::ShippingRequired => {
                    unprocessable("shipping_required", &"Choose a shipping method.")
                }
                CheckoutError::ShippingQuote(problem) => Problem::new(
                    S::CONFLICT,
                    "shipping_quote_invalid",
                    format!(
                        "The shipping method you chose cannot be used ({problem}); please choose it again. Nothing was charged."
                    ),
                ),
                CheckoutError::Shipping(ShippingError::NoZone(country)) => unprocessable(
                    "no_shipping",
                    &format!("We do not ship to {}.", country.name()),
                ),
                CheckoutError::Tax(TaxError::NoRate { .. }) => {
                    unprocessable("no_tax_rate", &format!("{c}: this address cannot be taxed."))
                }
                CheckoutError::QuoteChanged { changes, quote } => Problem::new(
                    S::CONFLICT,
                    "quote_changed",
                    format!(
                        "The price changed since you accepted it ({}); the new total is {}. Nothing was charged; please review and pay again.",
                        changes
                            .iter()
                            .map(|c| format!(
                                "{}: {} now {}",
                                match &c.item {
                                    QuoteItem::Line(sku) => sku.to_string(),
                                    QuoteItem::Shipping => "shipping".to_owned(),
                                    QuoteItem::Discount => "discounts".to_owned(),
                                    QuoteItem::Tax => "tax".to_owned(),
                                    QuoteItem::Total => "total".to_owned(),
                                    _ => "price".to_owned(),
                                },
                                c.was.map_or("-".to_owned(), |m| m.to_string()),
                                c.now.map_or("-".to_owned(), |m| m.to_string())
                            ))
                            .collect::<Vec<_>>()
                            .join(", "),
                        quote.total
                    ),
                )
                .with_detail(json!({ "quote": quote })),
                CheckoutError::Promotion(PromotionError::Coupon { code, problem }) => {
                    Problem::coupon(code, problem)
                }
                CheckoutError::Promotion(p @ PromotionError::Exhausted { .. }) => {
                    Problem::promotion_exhausted(p)
                }
                CheckoutError::IdempotencyConflict(_) => Problem::new(
                    S::CONFLICT,
                    "idempotency_conflict",
                    "This checkout key was already used for another cart or payment method.",
                ),
                CheckoutError::Payment(PaymentError::Rejected { message }) => Problem::new(
                    S::UNPROCESSABLE_ENTITY,
                    "payment_rejected",
                    format!("The payment provider refused the request: {message}"),
                ),
                CheckoutError::Payment(_) => Problem::new(
                    S::BAD_GATEWAY,
                    "payment_pending",
                    "The payment provider did not answer. Your order is kept as pending and is settled as soon as the provider answers; you will not be charged twice.",
                ),
                // The order may exist, and its charge may have happened: never say otherwise.
                _ => {
                    tracing::warn!(error = %e, "checkout interrupted");
                    Problem::new(
                        S::SERVICE_UNAVAILABLE,
                        "checkout_pending",
                        "The shop could not finish your checkout. Your order, if it was placed, is kept and settled shortly; pay again with the same page and you will not be charged twice.",
                    )
                }
            },
            Error::Promotion(PromotionError::Coupon { code, problem }) => {
                Problem::coupon(code, problem)
            }
            Error::Promotion(p @ PromotionError::Exhausted { .. }) => Problem::promotion_exhausted(p),
            Error::Promotion(PromotionError::NotFound(_)) => Problem::not_found("promotion"),
            Error::Promotion(PromotionError::CodeTaken(code)) => Problem::new(
                S::CONFLICT,
                "code_taken",
                format!("The code {code} belongs to another promotion."),
            ),
            Error::Promotion(PromotionError::Invalid(v)) => unprocessable("invalid", v),
            Error::Order(OrderError::NotFound(_)) => Problem::not_found("order"),
            Error::Order(OrderError::InvalidTransition { .. }) => {
                Problem::new(S::CONFLICT, "invalid_transition", e.to_string())
            }
            Error::Inventory(InventoryError::UnknownSku(_)) => Problem::not_found("item"),
            Error::Search(ecommerce::error::SearchError::InvalidQuery(q)) => {
                Problem::bad_request(format!("invalid search: {q}"))
            }
            Error::Webhook(w) => Problem::new(
                match w {
                    WebhookError::InvalidPayload(_) => S::BAD_REQUEST,
                    _ => S::UNAUTHORIZED,
                },
                "invalid_webhook",
                w.to_string(),
            ),
            _ => Problem::unavailable(&e),
        }
    }
}

macro_rules! problem_from {
    ($($error:ty),*) => {$(
        impl From<$error> for Problem {
            fn from(e: $error) -> Self {
                Problem::from(Error::from(e))
            }
        }
    )*};
}

impl From<AddressError> for Problem {
    fn from(e: AddressError) -> Self {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_address",
            e.to_string(),
        )
    }
}

problem_from!(
    CartError,
    CatalogError,
    CheckoutError,
    InventoryError,
    OrderError,
    PromotionError,
    StoreError,
    WebhookError,
    ecommerce::error::SearchError,
    ecommerce::error::ValidationError,
    ecommerce::id::IdError
);

/// A [`Problem`] answered as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub(crate) struct ApiError(pub Problem);

impl<E: Into<Problem>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({ "code": self.0.code, "message": self.0.message });
        if let Some(order) = self.0.order {
            error["order"] = json!(order);
        }
        if let Some(detail) = self.0.detail {
            error["detail"] = detail;
        }
        let body = json!({ "error": error });
        (self.0.status, Json(body)).into_response()
    }
}

/// A [`Problem`] answered as a page of the shop.
#[derive(Debug)]
pub(crate) struct PageError(pub Problem);

impl<E: Into<Problem>> From<E> for PageError {
    fn from(e: E) -> Self {
        PageError(e.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.0.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            section.problem {
                h1 { (title) }
                p data-code=(self.0.code) { (self.0.message) }
                p { a href="/" { "Back to the shop" } }
            }
        };
        (self.0.status, html::bare_page(title, body)).into_response()
    }
}

/// Request extractors whose rejections (a malformed body, a bad query, a quantity that does not
/// fit) become the shop's own JSON or HTML errors instead of axum's plain-text ones.
macro_rules! extractor {
    ($(#[$doc:meta])* $name:ident, $inner:ident, $rejection:ty, $error:ident, parts) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name<T>(pub T);

        impl<S, T> FromRequestParts<S> for $name<T>
        where
            S: Send + Sync,
            T: DeserializeOwned + Send,
        {
            type Rejection = $error;

            async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, $error> {
                axum::extract::$inner::<T>::from_request_parts(parts, state)
                    .await
                    .map(|axum::extract::$inner(v)| $name(v))
                    .map_err(|r: $rejection| $error(rejection(r.status(), r.body_text())))
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $inner:ident, $rejection:ty, $error:ident, body) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub(crate) struct $name<T>(pub T);

        impl<S, T> FromRequest<S> for $name<T>
        where
            S: Send + Sync,
            T: DeserializeOwned,
        {
            type Rejection = $error;

            async fn from_request(req: Request, state: &S) -> Result<Self, $error> {
                axum::extract::$inner::<T>::from_request(req, state)
                    .await
                    .map(|axum::extract::$inner(v)| $name(v))
                    .map_err(|r: $rejection| $error(rejection(r.status(), r.body_text())))
            }
        }
    };
}

fn rejection(status: StatusCode, text: String) -> Problem {
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "too_large"
    } else {
        "bad_request"
    };
    Problem::new(status, code, text)
}

extractor!(
    /// A JSON body.
    ApiJson, Json, JsonRejection, ApiError, body
);
extractor!(
    /// A query string, for the API.
    ApiQuery, Query, QueryRejection, ApiError, parts
);
extractor!(
    /// Path parameters, for the API.
    ApiPath, Path, PathRejection, ApiError, parts
);
extractor!(
    /// A submitted form.
    PageForm, Form, FormRejection, PageError, body
);
extractor!(
    /// A query string, for pages.
    PageQuery, Query, QueryRejection, PageError, parts
);
extractor!(
    /// Path parameters, for pages.
    PagePath, Path, PathRejection, PageError, parts
);
