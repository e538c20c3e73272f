//! Run with: `cargo run --example custom_payment_adapter`
//!
//! How an integrator connects their payment provider: implement [`PaymentGateway`] over the
//! provider's HTTP API, and receive its signed webhooks. To run on its own, this example also
//! starts a small stand-in for the provider ("AcmePay") and a webhook endpoint for the shop,
//! both on loopback.
//!
//! The rules the adapter keeps (see [`PaymentGateway`]):
//! - send the request's idempotency key to the provider, so a retried charge is one charge;
//! - a decline is an answer (`Ok` with a failed status), not an error;
//! - when the outcome is unknown (timeout, connection lost) say so ([`PaymentError::Timeout`],
//!   [`PaymentError::Unavailable`]) and let `lookup` find out later: the saga keeps the stock
//!   held and `Storefront::recover` settles the order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use chrono::Utc;
use ecommerce::catalog::{Category, Product, Variant};
use ecommerce::error::PaymentError;
use ecommerce::id::{CategoryId, CustomerId, IdempotencyKey, OrderId, ProductId, Sku};
use ecommerce::payment::{
    Charge, ChargeRequest, PaymentEvent, PaymentGateway, PaymentId, PaymentMethod, PaymentStatus,
    Refund, RefundRequest, WebhookVerifier, sign_webhook,
};
use ecommerce::{CheckoutRequest, Currency, Money, Storefront};
use serde::{Deserialize, Serialize};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

// ---------------------------------------------------------------------------------------------
// The adapter: what an integrator writes.
// ---------------------------------------------------------------------------------------------

/// The provider's charge, as its API returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AcmeCharge {
    id: String,
    /// `succeeded`, `failed` or `requires_action`.
    status: String,
    amount: Money,
    failure_message: Option<String>,
    redirect_url: Option<String>,
}

/// The provider's error body.
#[derive(Debug, Deserialize)]
struct AcmeError {
    message: String,
}

/// A [`PaymentGateway`] for AcmePay's HTTP API.
#[derive(Debug, Clone)]
struct AcmePayGateway {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
}

impl AcmePayGateway {
    fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> Self {
        AcmePayGateway {
            // A bounded wait: past it the outcome is unknown, and the saga handles that.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a client without TLS builds"),
            base_url: base_url.into(),
            api_key: api_key.into(),
        }
    }

    /// Transport errors: a timeout or a dropped connection leaves the outcome unknown.
    fn transport(e: reqwest::Error) -> PaymentError {
        if e.is_timeout() {
            PaymentError::Timeout
        } else {
            PaymentError::Unavailable {
                message: "AcmePay unreachable".into(),
                source: Some(Arc::new(e)),
            }
        }
    }

    /// Reads an answer: 2xx is a charge, 4xx a refusal of the request, 5xx unknown outcome.
    async fn read<T: serde::de::DeserializeOwned>(
        res: reqwest::Response,
    ) -> std::result::Result<T, PaymentError> {
        let status = res.status();
        if status.is_success() {
            return res.json().await.map_err(|e| PaymentError::Protocol {
                message: e.to_string(),
            });
        }
        let message = res
            .json::<AcmeError>()
            .await
            .map(|e| e.message)
            .unwrap_or_else(|_| status.to_string());
        if status.is_server_error() {
            Err(PaymentError::Unavailable {
                message,
                source: None,
            })
        } else {
            Err(PaymentError::Rejected { message })
        }
    }

    /// Sends a request for one charge (authenticated): `None` when Acme answers 404.
    async fn find(
        &self,
        request: reqwest::RequestBuilder,
    ) -> std::result::Result<Option<Charge>, PaymentError> {
        let res = request
            .bearer_auth(&self.api_key)
            .send()
            .await
            .map_err(Self::transport)?;
        if res.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Self::charge_of(Self::read(res).await?).map(Some)
    }

    fn charge_of(c: AcmeCharge) -> std::result::Result<Charge, PaymentError> {
        let status = match c.status.as_str() {
            "succeeded" => PaymentStatus::Succeeded,
            "failed" => PaymentStatus::Failed,
            "requires_action" => PaymentStatus::Pending,
            other => {
                return Err(PaymentError::Protocol {
                    message: format!("unknown charge status {other}"),
                });
            }
        };
        Ok(Charge {
            payment_id: PaymentId(c.id),
            status,
            amount: c.amount,
            failure_reason: c.failure_message,
            next_action: c.redirect_url,
        })
    }
}

#[async_trait]
impl PaymentGateway for AcmePayGateway {
    async fn charge(&self, request: &ChargeRequest) -> std::result::Result<Charge, PaymentError> {
        let res = self
            .http
            .post(format!("{}/v1/charges", self.base_url))
            .bearer_auth(&self.api_key)
            .header("idempotency-key", &request.idempotency_key)
            .json(&serde_json::json!({
                "amount": request.amount,
                "source": request.method.as_str(),
                "metadata": { "order": request.order },
            }))
            .send()
            .await
            .map_err(Self::transport)?;
        Self::charge_of(Self::read(res).await?)
    }

    async fn lookup(
        &self,
        idempotency_key: &str,
    ) -> std::result::Result<Option<Charge>, PaymentError> {
        self.find(
            self.http
                .get(format!("{}/v1/charges", self.base_url))
                .query(&[("idempotency_key", idempotency_key)]),
        )
        .await
    }

    async fn payment(&self, id: &PaymentId) -> std::result::Result<Option<Charge>, PaymentError> {
        self.find(self.http.get(format!("{}/v1/charges/{id}", self.base_url)))
            .await
    }

    async fn refund(&self, request: &RefundRequest) -> std::result::Result<Refund, PaymentError> {
        let res = self
            .http
            .post(format!(
                "{}/v1/charges/{}/refunds",
                self.base_url, request.payment_id
            ))
            .bearer_auth(&self.api_key)
            .header("idempotency-key", &request.idempotency_key)
            .json(&serde_json::json!({ "amount": request.amount }))
            .send()
            .await
            .map_err(Self::transport)?;
        let _: serde_json::Value = Self::read(res).await?;
        Ok(Refund {
            payment_id: request.payment_id.clone(),
            amount: request.amount,
        })
    }
}

/// The shop's webhook endpoint: verify, then hand the event to the saga.
async fn webhook(
    State((shop, verifier)): State<(Arc<Storefront>, WebhookVerifier)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let signature = headers
        .get("acme-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let event = match verifier.payment_event(signature, &body, Utc::now()) {
        Ok(event) => event,
        Err(e) => {
            println!("  shop: webhook refused ({e})");
            return StatusCode::UNAUTHORIZED;
        }
    };
    match shop.handle_payment_event(event).await {
        Ok(order) => {
            println!(
                "  shop: webhook applied, order {} is {:?}",
                order.id, order.status
            );
            StatusCode::OK
        }
        // The provider retries anything but 2xx.
        Err(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

// ---------------------------------------------------------------------------------------------
// A stand-in for the provider, so the example runs on its own.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct Provider {
    by_key: Mutex<HashMap<String, (AcmeCharge, OrderId)>>,
    webhook_url: Mutex<Option<String>>,
    secret: Vec<u8>,
}

#[derive(Debug, Deserialize)]
struct NewCharge {
    amount: Money,
    source: String,
    metadata: HashMap<String, OrderId>,
}

async fn create_charge(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<NewCharge>,
) -> std::result::Result<axum::Json<AcmeCharge>, (StatusCode, axum::Json<serde_json::Value>)> {
    let refuse = |message: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "message": message })),
        )
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| refuse("idempotency-key header required"))?
        .to_owned();
    let order = *body
        .metadata
        .get("order")
        .ok_or_else(|| refuse("metadata.order required"))?;
    let mut charges = provider.by_key.lock().unwrap();
    let n = charges.len() + 1;
    let (charge, _) = charges.entry(key).or_insert_with(|| {
        let id = format!("ch_{n}");
        let (status, failure, redirect) = match body.source.as_str() {
            "card_ok" => ("succeeded", None, None),
            "card_3ds" => (
                "requires_action",
                None,
                Some(format!("https://acme.example/3ds/{id}")),
            ),
            _ => ("failed", Some("card declined".to_owned()), None),
        };
        let charge = AcmeCharge {
            id,
            status: status.into(),
            amount: body.amount,
            failure_message: failure,
            redirect_url: redirect,
        };
        (charge, order)
    });
    Ok(axum::Json(charge.clone()))
}

async fn find_charge(
    State(provider): State<Arc<Provider>>,
    Query(q): Query<HashMap<String, String>>,
) -> std::result::Result<axum::Json<AcmeCharge>, StatusCode> {
    let key = q.get("idempotency_key").ok_or(StatusCode::BAD_REQUEST)?;
    let charges = provider.by_key.lock().unwrap();
    charges
        .get(key)
        .map(|(c, _)| axum::Json(c.clone()))
        .ok_or(StatusCode::NOT_FOUND)
}

async fn get_charge(
    State(provider): State<Arc<Provider>>,
    Path(id): Path<String>,
) -> std::result::Result<axum::Json<AcmeCharge>, StatusCode> {
    let charges = provider.by_key.lock().unwrap();
    charges
        .values()
        .find(|(c, _)| c.id == id)
        .map(|(c, _)| axum::Json(c.clone()))
        .ok_or(StatusCode::NOT_FOUND)
}

async fn refund_charge(Path(id): Path<String>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "id": format!("re_{id}"), "status": "succeeded" }))
}

impl Provider {
    /// The customer passes 3-D Secure: the charge succeeds and the provider sends a signed
    /// webhook to the shop.
    async fn complete_3ds(&self, charge_id: &str) -> Result<StatusCode> {
        let event = {
            let mut charges = self.by_key.lock().unwrap();
            let (charge, order) = charges
                .values_mut()
                .find(|(c, _)| c.id == charge_id)
                .ok_or("unknown charge")?;
            charge.status = "succeeded".into();
            PaymentEvent {
                order: *order,
                payment_id: PaymentId(charge.id.clone()),
                status: PaymentStatus::Succeeded,
                failure_reason: None,
            }
        };
        let payload = serde_json::to_vec(&event)?;
        let signature = sign_webhook(&self.secret, Utc::now().timestamp(), &payload);
        let url = self
            .webhook_url
            .lock()
            .unwrap()
            .clone()
            .ok_or("no webhook url")?;
        let res = reqwest::Client::new()
            .post(url)
            .header("acme-signature", signature)
            .body(payload)
            .send()
            .await?;
        Ok(res.status())
    }
}

async fn serve(router: Router) -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

// ---------------------------------------------------------------------------------------------

async fn pay(shop: &Storefront, sku: &Sku, source: &str) -> Result<ecommerce::order::Order> {
    let cart = shop.create_guest_cart().await?;
    shop.add_item(cart.id, sku, 1).await?;
    Ok(shop
        .place_order(CheckoutRequest::new(
            cart.id,
            CustomerId::new(),
            PaymentMethod::new(source)?,
            IdempotencyKey::new(uuid::Uuid::new_v4().to_string())?,
        ))
        .await?
        .into_order())
}

#[tokio::main]
async fn main() -> Result<()> {
    let webhook_secret = b"whsec_example_only".to_vec();

    // The provider, somewhere on the internet.
    let provider = Arc::new(Provider {
        secret: webhook_secret.clone(),
        ..Provider::default()
    });
    let provider_url = serve(
        Router::new()
            .route("/v1/charges", post(create_charge).get(find_charge))
            .route("/v1/charges/{id}", get(get_charge))
            .route("/v1/charges/{id}/refunds", post(refund_charge))
            .with_state(provider.clone()),
    )
    .await?;

    // The shop, with the adapter as its gateway and a webhook endpoint.
    let gateway = Arc::new(AcmePayGateway::new(&provider_url, "sk_test_example"));
    let shop = Arc::new(Storefront::in_memory(gateway));
    let verifier = WebhookVerifier::new(Some(webhook_secret));
    let shop_url = serve(
        Router::new()
            .route("/webhooks/acme", post(webhook))
            .route("/health", get(|| async { "ok" }))
            .with_state((shop.clone(), verifier)),
    )
    .await?;
    *provider.webhook_url.lock().unwrap() = Some(format!("{shop_url}/webhooks/acme"));

    let category = CategoryId::new("books")?;
    shop.upsert_category(Category::new(category.clone(), "Books"))
        .await?;
    let sku = Sku::new("BOOK-RUST")?;
    shop.upsert_product(
        Product::new(ProductId::new(), "The Rust Programming Language", category)
            .with_description("The book.")
            .with_brand("No Starch")
            .with_variants([Variant::new(
                sku.clone(),
                Money::from_minor(3_999, Currency::USD),
            )]),
    )
    .await?;
    shop.receive_stock(&sku, 10).await?;
    println!("AcmePay stand-in at {provider_url}, shop webhooks at {shop_url}/webhooks/acme");

    let paid = pay(&shop, &sku, "card_ok").await?;
    println!("card_ok:  order {} is {:?}", paid.id, paid.status);

    match pay(&shop, &sku, "card_declined").await {
        Err(e) => println!("card_declined: {e}"),
        Ok(order) => return Err(format!("a declined card placed {order:?}").into()),
    }

    let pending = pay(&shop, &sku, "card_3ds").await?;
    let payment = pending
        .payment
        .clone()
        .ok_or("a pending order has a payment")?;
    println!(
        "card_3ds: order {} is {:?}, the customer authenticates...",
        pending.id, pending.status
    );

    // A forged webhook is refused before it reaches the order.
    let forged = reqwest::Client::new()
        .post(format!("{shop_url}/webhooks/acme"))
        .header(
            "acme-signature",
            sign_webhook(b"guessed", Utc::now().timestamp(), b"{}"),
        )
        .body("{}")
        .send()
        .await?;
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);

    let delivered = provider.complete_3ds(&payment.id.0).await?;
    let settled = shop.order(pending.id).await?.ok_or("order exists")?;
    println!(
        "card_3ds: webhook answered {delivered}, order {} is {:?}",
        settled.id, settled.status
    );

    let stock = shop.stock(&sku).await?;
    println!("stock: {} on hand, {} sold", stock.on_hand, stock.sold);
    if settled.status != ecommerce::order::OrderStatus::Confirmed || stock.sold != 2 {
        return Err("the 3-D Secure payment did not settle".into());
    }
    Ok(())
}
