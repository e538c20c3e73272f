//! Flash sale: K buyers at once for S units of one SKU; and the hot SKU held under a steady
//! stream of checkouts.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ecommerce::address::{Address, AddressInput};
use ecommerce::catalog::{Product, Variant};
use ecommerce::checkout::Delivery;
use ecommerce::error::CheckoutError;
use ecommerce::id::{CartId, CategoryId, CustomerId, IdempotencyKey, OrderId, ProductId, Sku};
use ecommerce::inventory::ReservationLine;
use ecommerce::payment::PaymentMethod;
use ecommerce::promotion::{Action, Coupon, CouponCode, Promotion, Target};
use ecommerce::shipping::{RateRule, ShippingMethod, Zone, ZoneTable};
use ecommerce::storefront::StorefrontBuilder;
use ecommerce::tax::{TaxClass, TaxTable};
use ecommerce::{CheckoutRequest, Currency, Money, Storefront};
use indicatif::ProgressBar;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::backends::{Backend, HoldMeter};
use crate::stats::{Point, Recorder, Summary, series, summarize};

const TTL: Duration = Duration::from_secs(3600);

/// The label of the raw checkout path, the floor of "SDK checkout".
pub(crate) const RAW_CHECKOUT: &str = "raw checkout (2 tx)";

/// The label of "Buy now" (the cart made with its item and paid in one call), compared with
/// the raw checkout as "SDK checkout" is.
pub(crate) const BUY_NOW: &str = "SDK buy now";

/// The label of the checkout to an address with shipping and tax, compared with "SDK
/// checkout".
pub(crate) const PRICED_CHECKOUT: &str = "SDK checkout + shipping & tax";

/// The label of the checkout with a limited coupon code, compared with "SDK checkout".
pub(crate) const COUPON_CHECKOUT: &str = "SDK checkout + limited code";

/// The code of [`coupon_checkout`] on a hot SKU: $1.00 off, 10,000,000 uses in all.
fn hot_code(sku: &Sku) -> String {
    format!("HOT{}", &sku.as_str()[4..20])
}

/// Saves the promotion and the code of [`coupon_checkout`] for a hot SKU.
pub(crate) async fn hot_promotion(shop: &Storefront, sku: &Sku) {
    let code = hot_code(sku);
    let promotion = Promotion::new(
        &code.to_lowercase(),
        "$1 off the hot SKU",
        Currency::USD,
        Action::AmountOff {
            amount: Money::from_minor(100, Currency::USD),
            target: Target::Order,
        },
    )
    .expect("promotion")
    .with_code_only()
    .limited_to(Some(10_000_000), None, None);
    shop.save_promotion(&promotion).await.expect("promotion");
    shop.save_coupon(&Coupon::new(
        CouponCode::new(&code).expect("code"),
        promotion.id.clone(),
    ))
    .await
    .expect("coupon");
}

/// One buyer's whole checkout with the hot SKU's limited code: a cart, one unit, the code,
/// "Pay" (the code's use is reserved with the order and its stock).
pub(crate) async fn coupon_checkout(shop: &Storefront, sku: &Sku) -> Result<bool, CheckoutError> {
    let cart = shop.create_guest_cart_with(sku, 1).await?;
    shop.apply_coupon(cart.id, &hot_code(sku)).await?;
    pay(shop, cart.id, None).await
}

/// A product with one SKU and `units` in stock, new for each run.
pub(crate) async fn hot_sku(backend: &Backend, units: u32, buckets: u32) -> Sku {
    let sku = Sku::new(format!("HOT-{}", uuid::Uuid::new_v4().simple())).expect("sku");
    backend
        .shop
        .catalog()
        .upsert_product(
            Product::new(
                ProductId::new(),
                "Limited sneakers",
                CategoryId::new("deals").expect("slug"),
            )
            .with_brand("Stride")
            .with_variants([Variant::new(
                sku.clone(),
                Money::from_minor(12_900, Currency::USD),
            )]),
        )
        .await
        .expect("product");
    // A receipt is at most a million units; the hot SKU gets several.
    let mut left = units;
    while left > 0 {
        let n = left.min(1_000_000);
        backend.inventory.receive(&sku, n).await.expect("stock");
        left -= n;
    }
    if let (Some(sql), true) = (&backend.sql_inventory, buckets > 1) {
        sql.set_buckets(&sku, buckets).await.expect("buckets");
    }
    sku
}

/// One buyer's whole checkout: a cart, one unit, "Pay". `Ok(true)` when the order is
/// confirmed, `Ok(false)` when it sold out.
pub(crate) async fn checkout(shop: &Storefront, sku: &Sku) -> Result<bool, CheckoutError> {
    let cart = shop.create_guest_cart_with(sku, 1).await?;
    pay(shop, cart.id, None).await
}

/// "Buy now" of one unit with the approving test card under a new key: the cart made with
/// the item and paid in one call.
pub(crate) async fn buy_now(shop: &Storefront, sku: &Sku) -> Result<bool, CheckoutError> {
    let request = CheckoutRequest::buy_now(
        sku.clone(),
        1,
        CustomerId::new(),
        PaymentMethod::new("tok_approve").expect("token"),
        IdempotencyKey::new(uuid::Uuid::new_v4().to_string()).expect("key"),
    );
    confirmed(shop, request).await
}

/// "Pay" for a cart with the approving test card under a new key: `Ok(true)` when the order
/// is confirmed, `Ok(false)` when it sold out.
async fn pay(
    shop: &Storefront,
    cart: CartId,
    delivery: Option<Delivery>,
) -> Result<bool, CheckoutError> {
    let mut request = CheckoutRequest::new(
        cart,
        CustomerId::new(),
        PaymentMethod::new("tok_approve").expect("token"),
        IdempotencyKey::new(uuid::Uuid::new_v4().to_string()).expect("key"),
    );
    request.delivery = delivery;
    confirmed(shop, request).await
}

/// Places an order: `Ok(true)` when it is confirmed, `Ok(false)` when it sold out.
async fn confirmed(shop: &Storefront, request: CheckoutRequest) -> Result<bool, CheckoutError> {
    let placed = shop.place_order(request).await;
    match placed {
        Ok(placed) => Ok(placed.is_confirmed()),
        Err(CheckoutError::OutOfStock { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The shipping and tax of [`priced_checkout`]: ground at $5.99 in the United States, Texas
/// sales tax.
pub(crate) fn pricing(builder: StorefrontBuilder) -> StorefrontBuilder {
    let ground = ShippingMethod::new(
        "ground",
        "Ground",
        RateRule::Flat(Money::from_minor(599, Currency::USD)),
    )
    .taxed_as(None);
    let taxes = TaxTable::new().rate(
        "US",
        Some("US-TX"),
        TaxClass::standard(),
        rust_decimal::Decimal::new(825, 4),
        "Texas sales tax",
    );
    builder
        .shipping(Arc::new(ZoneTable::new(vec![
            Zone::new("United States", &["US"]).method(ground),
        ])))
        .tax(Arc::new(taxes))
}

/// One buyer's whole checkout to an address: a cart, one unit, the shipping methods for the
/// address, "Pay" with the first (the quote is computed and charged).
pub(crate) async fn priced_checkout(shop: &Storefront, sku: &Sku) -> Result<bool, CheckoutError> {
    static TEXAS: std::sync::LazyLock<Address> = std::sync::LazyLock::new(|| {
        Address::new(AddressInput {
            name: "Grace Hopper".into(),
            line1: "1 Congress Ave".into(),
            city: "Austin".into(),
            region: Some("TX".into()),
            postal_code: "78701".into(),
            country: "US".into(),
            ..AddressInput::default()
        })
        .expect("address")
    });
    let cart = shop.create_guest_cart().await?;
    shop.add_item(cart.id, sku, 1).await?;
    let mut delivery = Delivery::new("grace@example.com".parse().expect("email"), TEXAS.clone());
    delivery.shipping = shop
        .shipping_quotes(cart.id, &TEXAS)
        .await?
        .into_iter()
        .next();
    pay(shop, cart.id, Some(delivery)).await
}

/// What one path did in a run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PathResult {
    pub(crate) backend: &'static str,
    /// `raw reserve`, `SDK reserve`, `raw checkout (2 tx)` or `SDK checkout`.
    pub(crate) path: &'static str,
    pub(crate) summary: Summary,
    /// Buyers who got a unit (flash sale) or confirmed orders (hot SKU).
    pub(crate) succeeded: usize,
    /// Operations that failed with an error (not "sold out").
    pub(crate) errors: usize,
    /// Mean time a checkout held a database connection, in milliseconds.
    pub(crate) hold_ms: Option<f64>,
    /// Units sold or reserved in the end, read back from the store.
    pub(crate) units_taken: Option<u32>,
    pub(crate) series: Vec<Point>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Raw,
    Reserve,
    /// The SDK checkout's durable writes by hand, in its two transactions.
    RawCheckout,
    Checkout,
    /// The cart made with its item and paid in one call ("Buy now").
    BuyNow,
    /// The SDK checkout to an address: shipping quoted, then charged with tax.
    PricedCheckout,
    /// The SDK checkout with a limited coupon code.
    CouponCheckout,
}

impl Path {
    fn label(self) -> &'static str {
        match self {
            Path::Raw => "raw reserve",
            Path::Reserve => "SDK reserve",
            Path::RawCheckout => RAW_CHECKOUT,
            Path::Checkout => "SDK checkout",
            Path::BuyNow => BUY_NOW,
            Path::PricedCheckout => PRICED_CHECKOUT,
            Path::CouponCheckout => COUPON_CHECKOUT,
        }
    }
}

/// One unit through a path: `Some(got it)`, or `None` on an error.
async fn take(backend: &Backend, path: Path, sku: &Sku) -> Option<bool> {
    match path {
        Path::Raw => Some(
            backend
                .floor
                .as_ref()
                .expect("floor")
                .reserve(sku.as_str())
                .await,
        ),
        Path::Reserve => {
            let line = ReservationLine {
                sku: sku.clone(),
                quantity: 1,
            };
            match backend
                .inventory
                .reserve(OrderId::new(), &[line], TTL)
                .await
            {
                Ok(_) => Some(true),
                Err(ecommerce::error::InventoryError::OutOfStock { .. }) => Some(false),
                Err(_) => None,
            }
        }
        Path::RawCheckout => {
            let floor = backend.floor.as_ref().expect("floor");
            match floor.checkout(sku.as_str()).await {
                Ok(got) => Some(got),
                Err(e) => {
                    if !RAW_ERROR_SEEN.swap(true, Ordering::Relaxed) {
                        eprintln!("raw checkout on {}: {e}", backend.kind.name());
                    }
                    None
                }
            }
        }
        Path::Checkout => checkout(&backend.shop, sku).await.ok(),
        Path::BuyNow => buy_now(&backend.shop, sku).await.ok(),
        Path::PricedCheckout => priced_checkout(&backend.priced, sku).await.ok(),
        Path::CouponCheckout => coupon_checkout(&backend.shop, sku).await.ok(),
    }
}

/// Whether a raw checkout failed already (only the first error is printed).
static RAW_ERROR_SEEN: AtomicBool = AtomicBool::new(false);

/// Each SDK path, after its floor when the backend has one: raw reserve, SDK reserve, raw
/// checkout (2 tx), SDK checkout.
fn paths(backend: &Backend) -> Vec<Path> {
    if backend.floor.is_some() {
        vec![Path::Raw, Path::Reserve, Path::RawCheckout, Path::Checkout]
    } else {
        vec![Path::Reserve, Path::Checkout]
    }
}

fn result(
    backend: &Backend,
    path: Path,
    recorder: &Recorder,
    wall: f64,
    busy: Option<f64>,
    units_taken: Option<u32>,
    window: f64,
) -> PathResult {
    let samples = recorder.samples();
    let summary = summarize(&samples, wall, |_| true);
    let succeeded = samples.iter().filter(|s| s.ok && s.op == "got").count();
    PathResult {
        backend: backend.kind.name(),
        path: path.label(),
        errors: samples.iter().filter(|s| !s.ok).count(),
        hold_ms: busy.map(|b| b / summary.count.max(1) as f64 * 1e3),
        succeeded,
        units_taken,
        summary,
        series: series(&samples, window, wall, |_| true),
    }
}

async fn units_taken(backend: &Backend, sku: &Sku, path: Path) -> Option<u32> {
    let level = backend.shop.stock(sku).await.ok()?;
    Some(match path {
        Path::Raw | Path::Reserve => level.reserved,
        Path::RawCheckout
        | Path::Checkout
        | Path::BuyNow
        | Path::PricedCheckout
        | Path::CouponCheckout => level.sold,
    })
}

/// K buyers press "Pay" at once for S units; at most `in_flight` are served at a time, and a
/// buyer's latency counts from the moment everyone pressed.
pub(crate) async fn flash_sale(
    backend: &Arc<Backend>,
    buyers: usize,
    units: u32,
    in_flight: usize,
    bar: &ProgressBar,
) -> Vec<PathResult> {
    let mut out = Vec::new();
    for path in paths(backend) {
        let sku = hot_sku(backend, units, 1).await;
        bar.set_message(format!(
            "{} flash sale, {}",
            backend.kind.name(),
            path.label()
        ));
        bar.set_length(buyers as u64);
        bar.set_position(0);
        let recorder = Arc::new(Recorder::new());
        let gate = Arc::new(Semaphore::new(in_flight));
        let meter = HoldMeter::start(
            backend
                .db
                .as_ref()
                .filter(|_| matches!(path, Path::Checkout | Path::PricedCheckout)),
        );
        let pressed = Instant::now();
        let tasks: Vec<_> = (0..buyers)
            .map(|_| {
                let (recorder, gate, sku, bar) =
                    (recorder.clone(), gate.clone(), sku.clone(), bar.clone());
                let backend = backend.clone();
                tokio::spawn(async move {
                    let _slot = gate.acquire().await.expect("gate");
                    let outcome = take(&backend, path, &sku).await;
                    recorder.record(
                        if outcome == Some(true) {
                            "got"
                        } else {
                            "sold out"
                        },
                        pressed,
                        outcome.is_some(),
                    );
                    bar.inc(1);
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("buyer");
        }
        let wall = pressed.elapsed().as_secs_f64();
        let busy = HoldMeter::stop(meter).await;
        let taken = units_taken(backend, &sku, path).await;
        out.push(result(
            backend,
            path,
            &recorder,
            wall,
            busy,
            taken,
            (wall / 40.0).max(0.01),
        ));
    }
    out
}

/// `clients` buyers in a closed loop on one SKU with plenty of stock, for `seconds`.
pub(crate) async fn hot_sku_load(
    backend: &Arc<Backend>,
    clients: usize,
    seconds: f64,
    buckets: u32,
    bar: &ProgressBar,
) -> Vec<PathResult> {
    let mut out = Vec::new();
    let mut paths = paths(backend);
    paths.extend([Path::BuyNow, Path::PricedCheckout, Path::CouponCheckout]);
    for path in paths {
        let sku = hot_sku(backend, 10_000_000, buckets).await;
        if path == Path::CouponCheckout {
            hot_promotion(&backend.shop, &sku).await;
        }
        bar.set_message(format!("{} hot SKU, {}", backend.kind.name(), path.label()));
        bar.set_length((seconds * 10.0) as u64);
        bar.set_position(0);
        let recorder = Arc::new(Recorder::new());
        let stop = Arc::new(AtomicBool::new(false));
        let meter = HoldMeter::start(backend.db.as_ref().filter(|_| path == Path::Checkout));
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let (recorder, stop, sku) = (recorder.clone(), stop.clone(), sku.clone());
                let backend = backend.clone();
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let began = Instant::now();
                        let outcome = take(&backend, path, &sku).await;
                        recorder.record("got", began, outcome == Some(true));
                        // In-memory stores may never return Pending: let the timer run.
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for _ in 0..(seconds * 10.0) as u64 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            bar.inc(1);
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.expect("client");
        }
        let wall = recorder.elapsed().as_secs_f64();
        let busy = HoldMeter::stop(meter).await;
        let taken = units_taken(backend, &sku, path).await;
        out.push(result(backend, path, &recorder, wall, busy, taken, 0.5));
    }
    out
}
