//! The router: pages for people, `/api` for programs, `/webhooks` for the payment provider.

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{CONTENT_TYPE, HeaderName};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use ecommerce::Storefront;
use ecommerce::payment::{TestGateway, WebhookVerifier};

use crate::error::{ApiError, PageError, Problem};
use crate::session::SessionKey;
use crate::{api, checkout, html, pages, payments};

/// The largest request body the shop reads: a cart change or a webhook is far smaller.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// The storefront.
    pub(crate) shop: Arc<Storefront>,
    /// The payment provider. The shop uses the test gateway (kept in a file in the data
    /// folder, so it remembers its charges across restarts), which also plays the customer's
    /// bank during 3-D Secure (`/test-provider`); an integrator puts their adapter here.
    pub(crate) gateway: Arc<TestGateway>,
    /// Checks the signature of every webhook.
    pub(crate) verifier: WebhookVerifier,
    /// Signs session cookies.
    pub(crate) session_key: SessionKey,
}

/// Every route of the shop.
pub(crate) fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/categories", get(api::categories))
        .route("/products", get(api::products))
        .route("/products/{id}", get(api::product))
        .route("/search", get(api::search))
        .route("/suggest", get(api::suggest))
        .route("/cart", get(api::cart))
        .route("/cart/items", post(api::add_item))
        .route(
            "/cart/items/{sku}",
            delete(api::remove_item).put(api::set_quantity),
        )
        .route("/cart/coupons", post(api::apply_code))
        .route("/cart/coupons/{code}", delete(api::remove_code))
        .route("/carts/{id}", get(api::cart_by_id))
        .route("/checkout", post(api::checkout))
        .route(
            "/checkout/shipping-quotes",
            post(checkout::api_shipping_quotes),
        )
        .route("/checkout/quote", post(checkout::api_quote))
        .route("/addresses", get(checkout::api_addresses))
        .route("/addresses/{id}", delete(checkout::api_remove_address))
        .route("/orders", get(api::orders))
        .route("/orders/{id}", get(api::order))
        .route("/signin", post(api::sign_in))
        .route("/signout", post(api::sign_out))
        .fallback(|| async { ApiError(Problem::not_found("endpoint")) });

    Router::new()
        .route("/", get(pages::home))
        .route("/category/{id}", get(pages::category))
        .route("/search", get(pages::search))
        .route("/product/{id}", get(pages::product))
        .route("/cart", get(pages::cart))
        .route("/cart/add", post(pages::add_to_cart))
        .route("/cart/update", post(pages::update_cart))
        .route("/cart/coupons", post(pages::apply_code))
        .route("/cart/coupons/remove", post(pages::remove_code))
        .route(
            "/checkout",
            get(checkout::delivery_page).post(checkout::pay),
        )
        .route("/checkout/shipping", post(checkout::shipping_page))
        .route("/checkout/review", post(checkout::review_page))
        .route("/orders", get(pages::orders))
        .route("/orders/{id}", get(pages::order))
        .route("/signin", get(pages::sign_in_form).post(pages::sign_in))
        .route("/signout", post(pages::sign_out))
        .route(
            "/test-provider/3ds/{payment}",
            get(payments::challenge).post(payments::authenticate),
        )
        .route("/webhooks/payments", post(payments::webhook))
        .route("/static/shop.js", get(script))
        .nest("/api", api)
        .fallback(|| async { PageError(Problem::not_found("page")) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

async fn script() -> Response {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        html::SCRIPT,
    )
        .into_response()
}

/// Headers every response carries: no framing, no sniffing, scripts only from the shop.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        // axum answers with an empty body; say what happened in the shop's words.
        response = ApiError(Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This address does not accept that method.",
        ))
        .into_response();
    }
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        (
            "content-security-policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}
