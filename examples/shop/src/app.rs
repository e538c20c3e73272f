//! The router: pages for people, `/api` for programs, `/webhooks` for the payment provider,
//! and the layers every request passes: a log line (tower-http's `TraceLayer`), response
//! compression, security headers, a deadline on reading the body, the cross-site check and
//! the session.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::header::{CONTENT_TYPE, HOST, ORIGIN, REFERER};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use ecommerce::Storefront;
use ecommerce::payment::{TestGateway, WebhookVerifier};
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::map_request_body::MapRequestBodyLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::RequestBodyDeadlineLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::error::{ApiError, PageError, Problem};
use crate::session::SqlSessionStore;
use crate::{api, checkout, html, pages, payments, session};

/// The largest request body the shop reads: a cart change or a webhook is far smaller.
pub(crate) const MAX_BODY_BYTES: usize = 16 * 1024;

/// How long a client may take to send its request's headers (and how long an idle
/// keep-alive connection stays open), and then its body. A client slower than that is cut
/// off: trickled requests cannot hold connections open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// From the connection (or the end of the last response) to the end of the headers.
    pub(crate) headers: Duration,
    /// From the end of the headers to the end of the body.
    pub(crate) body: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            headers: Duration::from_secs(10),
            body: Duration::from_secs(10),
        }
    }
}

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
    /// Where sessions are kept.
    pub(crate) sessions: SqlSessionStore,
    /// How long a client may take to send a request.
    pub(crate) timeouts: Timeouts,
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
        .route("/images/products/{file}", get(pages::product_image))
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
        .layer(
            ServiceBuilder::new()
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                        .on_response(DefaultOnResponse::new().level(Level::INFO)),
                )
                .layer(CompressionLayer::new())
                .layer(security_header("x-content-type-options", "nosniff"))
                .layer(security_header("x-frame-options", "DENY"))
                .layer(security_header("referrer-policy", "same-origin"))
                .layer(security_header(
                    "content-security-policy",
                    "default-src 'self'; style-src 'self' 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
                ))
                .layer(middleware::from_fn(method_not_allowed))
                .layer(middleware::from_fn(same_origin_only))
                .layer(session::layer(state.sessions.clone()))
                .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
                .layer(RequestBodyDeadlineLayer::new(state.timeouts.body))
                .layer(MapRequestBodyLayer::new(axum::body::Body::new))
                .layer(middleware::from_fn(utf8_only)),
        )
        .with_state(state)
}

async fn script() -> Response {
    (
        [(CONTENT_TYPE, "text/javascript; charset=utf-8")],
        html::SCRIPT,
    )
        .into_response()
}

/// A header every response carries: no framing, no sniffing, scripts only from the shop.
fn security_header(name: &'static str, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

/// axum answers a wrong method with an empty body; say what happened in the shop's words.
async fn method_not_allowed(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if response.status() != StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    ApiError(Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "This address does not accept that method.",
    ))
    .into_response()
}

/// Refuses, with 400, a query string or a submitted form whose percent-encoded text is not
/// UTF-8 (decoding would silently replace the bytes). JSON bodies are checked by their parser,
/// paths by axum's.
async fn utf8_only(request: Request, next: Next) -> Response {
    let refuse = |path: &str| {
        let problem = Problem::new(
            StatusCode::BAD_REQUEST,
            "invalid_utf8",
            "The request's text is not valid UTF-8.",
        );
        if path.starts_with("/api/") {
            ApiError(problem).into_response()
        } else {
            PageError(problem).into_response()
        }
    };
    let path = request.uri().path().to_owned();
    if !is_utf8_form(request.uri().query().unwrap_or_default().as_bytes()) {
        return refuse(&path);
    }
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return PageError(Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "The request is too large, or was sent too slowly.",
            ))
            .into_response();
        }
    };
    if !is_utf8_form(&bytes) {
        return refuse(&path);
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Whether `application/x-www-form-urlencoded` text decodes to UTF-8.
fn is_utf8_form(encoded: &[u8]) -> bool {
    percent_encoding::percent_decode(encoded)
        .decode_utf8()
        .is_ok()
}

/// Refuses a request that changes something (any method but GET, HEAD and OPTIONS) when a
/// browser says it comes from another origin: another site, and also another port or
/// subdomain of this one. The browser's `Sec-Fetch-Site` must be `same-origin` (or `none`,
/// typed by the user), and its `Origin` (or, without one, its `Referer`) must name this host
/// and port. A request carrying none of these is not a browser's (an API client, a script)
/// and is served: a cross-site attack needs the victim's browser. The payment provider's
/// webhooks are checked by their signature instead.
async fn same_origin_only(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if safe || request.uri().path().starts_with("/webhooks/") || is_same_origin(&request) {
        return next.run(request).await;
    }
    ApiError(Problem::new(
        StatusCode::FORBIDDEN,
        "cross_site_request",
        "This request came from another site and was refused. Please use the shop's own pages.",
    ))
    .into_response()
}

fn is_same_origin(request: &Request) -> bool {
    let headers = request.headers();
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(HeaderName::from_static("sec-fetch-site")) {
        if site != "same-origin" && site != "none" {
            return false;
        }
    }
    let Some(source) = text(ORIGIN).or_else(|| text(REFERER)) else {
        return true;
    };
    // `scheme://host[:port][/path]`: the authority must be the one this request was sent to.
    let authority = source
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or_default());
    authority.is_some_and(|a| Some(a) == text(HOST))
}
