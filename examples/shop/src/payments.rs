//! Payment callbacks. `/webhooks/payments` is where the provider tells the shop how a pending
//! payment ended; nothing is believed without a valid signature.
//!
//! `/test-provider/3ds/{payment}` plays the customer's bank for the test gateway: the shopper
//! passes or fails 3-D Secure there, and the provider sends its signed webhook. Only the
//! shopper whose order the payment pays sees that page; anyone else is told it does not
//! exist. With a real provider that page is the bank's and the webhook comes over the
//! internet.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Redirect;
use chrono::Utc;
use ecommerce::order::OrderStatus;
use ecommerce::payment::{PaymentId, PaymentStatus, SignedWebhook, WebhookError};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::{ApiError, PageError, PageForm, PagePath, Problem};
use crate::html;
use crate::session::Session;

/// The header that carries the webhook signature (`t=<unix seconds>,v1=<hex HMAC-SHA256>`).
pub(crate) const SIGNATURE_HEADER: &str = "webhook-signature";

/// What the shop answers the provider.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct WebhookAck {
    pub(crate) order: ecommerce::id::OrderId,
    pub(crate) status: OrderStatus,
}

/// Verifies a webhook and applies it to its order. Repeated deliveries are harmless. The
/// signature is checked on the blocking pool, off the threads that serve requests.
pub(crate) async fn receive(
    state: &AppState,
    signature: &str,
    payload: &[u8],
) -> Result<WebhookAck, Problem> {
    let verifier = state.verifier.clone();
    let (signature, payload) = (signature.to_owned(), payload.to_vec());
    let event = tokio::task::spawn_blocking(move || {
        verifier.payment_event(&signature, &payload, Utc::now())
    })
    .await
    .map_err(|_| Problem::bad_request("the webhook could not be verified"))??;
    let order = state.shop.handle_payment_event(event).await?;
    Ok(WebhookAck {
        order: order.id,
        status: order.status,
    })
}

pub(crate) async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAck>, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or(WebhookError::MalformedHeader)?;
    Ok(Json(receive(&state, signature, &body).await?))
}

/// The payment, when it pays one of the session customer's orders; anyone else's (or one that
/// does not exist) is `not_found`.
async fn own_payment(
    state: &AppState,
    session: &Session,
    payment: String,
) -> Result<PaymentId, Problem> {
    let payment = PaymentId(payment);
    let order = state
        .gateway
        .order_of(&payment)
        .ok_or_else(|| Problem::not_found("payment"))?;
    crate::api::own_order(&state.shop, session, order)
        .await
        .map_err(|p| match p.code {
            "not_found" => Problem::not_found("payment"),
            _ => p,
        })?;
    Ok(payment)
}

/// The test bank's page for a pending payment.
pub(crate) async fn challenge(
    State(state): State<AppState>,
    session: Session,
    PagePath(payment): PagePath<String>,
) -> Result<Markup, PageError> {
    let payment = own_payment(&state, &session, payment).await?;
    let charge = state
        .gateway
        .charge_of(&payment)
        .ok_or_else(|| Problem::not_found("payment"))?;
    let body = html! {
        section.card {
            @if charge.status == PaymentStatus::Pending {
                h1 { "Test bank: 3-D Secure" }
                p { "Confirm the payment of " span.price { (charge.amount) } "." }
                form method="post" {
                    input type="hidden" name="outcome" value="approve";
                    button #approve-3ds { "Approve" }
                }
                form method="post" {
                    input type="hidden" name="outcome" value="fail";
                    button #fail-3ds { "Fail authentication" }
                }
            } @else {
                h1 { "Test bank" }
                p { "This payment is already " (format!("{:?}", charge.status).to_lowercase()) "." }
                p { a href="/orders" { "Your orders" } }
            }
        }
    };
    Ok(html::bare_page("Test bank", body))
}

/// The shopper's answer at the test bank.
#[derive(Debug, Deserialize)]
pub(crate) struct Outcome {
    pub(crate) outcome: String,
}

/// Completes the payment at the test provider, which then sends its signed webhook to the shop.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    session: Session,
    PagePath(payment): PagePath<String>,
    PageForm(form): PageForm<Outcome>,
) -> Result<Redirect, PageError> {
    let payment = own_payment(&state, &session, payment).await?;
    let succeed = match form.outcome.as_str() {
        "approve" => true,
        "fail" => false,
        _ => return Err(Problem::bad_request("outcome must be approve or fail").into()),
    };
    let SignedWebhook { signature, payload } = state
        .gateway
        .complete(&payment, succeed)
        .map_err(|_| Problem::not_found("payment"))?;
    let ack = receive(&state, &signature, &payload).await?;
    Ok(Redirect::to(&format!("/orders/{}", ack.order)))
}
