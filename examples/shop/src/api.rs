//! The JSON API: the same flows as the pages, for apps and scripts. The session cookie says who
//! is calling; prices always come from the catalog, never from the request.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use ecommerce::cart::Cart;
use ecommerce::catalog::{Category, Page, Product};
use ecommerce::checkout::Delivery;
use ecommerce::error::{CheckoutError, PriceChange};
use ecommerce::id::{CartId, CategoryId, IdempotencyKey, OrderId, ProductId, Sku};
use ecommerce::inventory::StockLevel;
use ecommerce::order::Order;
use ecommerce::payment::PaymentMethod;
use ecommerce::promotion::Evaluation;
use ecommerce::quote::Quote;
use ecommerce::recommend::AlsoBought;
use ecommerce::search::{SearchFilters, SearchQuery, SearchResults, SortOrder};
use ecommerce::{Placed, Storefront};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, Problem};
use crate::session::Session;

type ApiResult<T> = Result<Json<T>, ApiError>;

/// `?after=&limit=&category=` of a product listing.
#[derive(Debug, Deserialize)]
pub(crate) struct ListParams {
    pub(crate) category: Option<String>,
    pub(crate) after: Option<ProductId>,
    pub(crate) limit: Option<usize>,
}

pub(crate) async fn categories(State(state): State<AppState>) -> ApiResult<Vec<Category>> {
    Ok(Json(state.shop.categories().await?))
}

pub(crate) async fn products(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Page<Product, ProductId>> {
    let category = params.category.map(CategoryId::new).transpose()?;
    let page = state
        .shop
        .products(
            category,
            params.after,
            params.limit.unwrap_or(crate::pages::PAGE_SIZE),
        )
        .await?;
    Ok(Json(page))
}

/// A product with what a product page shows beside it.
#[derive(Debug, Serialize)]
pub(crate) struct ProductView {
    pub(crate) product: Product,
    /// Units on hand per variant, in variant order; `null` while the inventory is down.
    pub(crate) stock: Vec<Option<u32>>,
    /// "Customers also bought", for the first variant.
    pub(crate) also_bought: Vec<AlsoBoughtView>,
}

/// A co-purchased SKU with its product, for linking.
#[derive(Debug, Serialize)]
pub(crate) struct AlsoBoughtView {
    pub(crate) sku: Sku,
    pub(crate) count: u64,
    pub(crate) product: ProductId,
    pub(crate) title: String,
}

impl ProductView {
    /// A published product, its stock and its co-purchases; `not_found` otherwise.
    pub(crate) async fn load(shop: &Storefront, id: ProductId) -> Result<ProductView, Problem> {
        let product = shop
            .product(id)
            .await?
            .filter(|p| p.published)
            .ok_or_else(|| Problem::not_found("product"))?;
        // Stock and co-purchases are extras of the page: while their store is down the page
        // shows the product without them (the storefront fails those reads at once).
        let mut stock = Vec::with_capacity(product.variants.len());
        for variant in &product.variants {
            stock.push(match shop.stock(&variant.sku).await {
                Ok(StockLevel { on_hand, .. }) => Some(on_hand),
                Err(ecommerce::error::InventoryError::UnknownSku(_)) => Some(0),
                Err(e) if e.is_transient() => None,
                Err(e) => return Err(e.into()),
            });
        }
        let mut also_bought = Vec::new();
        if let Some(first) = product.variants.first() {
            let bought: Vec<AlsoBought> = match shop.also_bought(&first.sku, 4).await {
                Ok(bought) => bought,
                Err(e) if e.is_transient() => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            let skus: Vec<Sku> = bought.iter().map(|b| b.sku.clone()).collect();
            let offers = match shop.catalog().offers(&skus).await {
                Ok(offers) => offers,
                Err(e) if e.is_transient() => Default::default(),
                Err(e) => return Err(e.into()),
            };
            for b in bought {
                if let Some(offer) = offers.get(&b.sku).filter(|o| o.available) {
                    also_bought.push(AlsoBoughtView {
                        sku: b.sku,
                        count: b.count,
                        product: offer.product,
                        title: offer.title.clone(),
                    });
                }
            }
        }
        Ok(ProductView {
            product,
            stock,
            also_bought,
        })
    }
}

pub(crate) async fn product(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<ProductId>,
) -> ApiResult<ProductView> {
    Ok(Json(ProductView::load(&state.shop, id).await?))
}

/// `?q=&category=&brand=&min_price=&max_price=&in_stock=&sort=&offset=&limit=` of a search.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct SearchParams {
    #[serde(default)]
    pub(crate) q: String,
    pub(crate) category: Option<String>,
    pub(crate) brand: Option<String>,
    pub(crate) min_price: Option<Decimal>,
    pub(crate) max_price: Option<Decimal>,
    #[serde(default)]
    pub(crate) in_stock: bool,
    #[serde(default)]
    pub(crate) sort: SortOrder,
    #[serde(default)]
    pub(crate) offset: usize,
    pub(crate) limit: Option<usize>,
}

impl SearchParams {
    /// The search these parameters ask for, with facets.
    pub(crate) fn query(&self) -> Result<SearchQuery, Problem> {
        let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        let mut filters = SearchFilters::default().with_in_stock_only(self.in_stock);
        filters.category = non_empty(&self.category).map(CategoryId::new).transpose()?;
        filters.brand = non_empty(&self.brand);
        filters.min_price = self.min_price;
        filters.max_price = self.max_price;
        Ok(SearchQuery::text(self.q.clone())
            .with_filters(filters)
            .with_sort(self.sort)
            .with_offset(self.offset)
            .with_limit(self.limit.unwrap_or(20))
            .with_facets(true))
    }
}

pub(crate) async fn search(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<SearchResults> {
    Ok(Json(state.shop.search(&params.query()?).await?))
}

/// `?q=`: up to eight titles for the search box while the shopper types.
pub(crate) async fn suggest(
    State(state): State<AppState>,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Vec<String>> {
    if params.q.trim().is_empty() {
        return Ok(Json(Vec::new()));
    }
    let query = SearchQuery::text(params.q).with_limit(8);
    let results = state.shop.search(&query).await?;
    Ok(Json(results.hits.into_iter().map(|h| h.title).collect()))
}

/// A cart as the API answers it: the cart's own fields (its lines and its `coupons`, the
/// codes applied), and what the promotions give it as it is.
#[derive(Debug, Serialize)]
pub(crate) struct CartView {
    #[serde(flatten)]
    pub(crate) cart: Cart,
    /// The promotions' discounts before an address and shipping are chosen
    /// ([`Storefront::cart_discounts`]): `applied` (each promotion with its code and amount),
    /// and `trace` (why each promotion offered applies or not). `null` for an empty cart, or
    /// when they cannot be worked out now; the checkout's quote works them out again anyway.
    pub(crate) discounts: Option<Evaluation>,
    /// Lines whose price changed in the catalog since they were added: the cart now has the
    /// catalog's prices (as the checkout would). Absent when none did.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) price_changes: Vec<PriceChange>,
}

impl CartView {
    /// A cart with its discounts. Pricing the cart takes the catalog's prices: a line whose
    /// price moved is repriced in the cart, and the view says so.
    pub(crate) async fn of(shop: &Storefront, cart: Cart) -> CartView {
        let mut view = CartView {
            cart,
            discounts: None,
            price_changes: Vec::new(),
        };
        if view.cart.lines.is_empty() || view.cart.version == 0 {
            return view;
        }
        let id = view.cart.id;
        match shop.discounts_of(&view.cart).await {
            Ok(discounts) => view.discounts = Some(discounts),
            Err(CheckoutError::PricesChanged { changes }) => {
                if let Ok(Some(repriced)) = shop.cart(id).await {
                    view.cart = repriced;
                }
                view.discounts = shop.cart_discounts(id).await.ok();
                view.price_changes = changes;
            }
            // A line no longer sold, a cart emptied meanwhile: the checkout says what is wrong.
            Err(e) if !e.is_transient() => {}
            Err(e) => tracing::warn!(error = %e, "cart discounts not shown"),
        }
        view
    }
}

/// The session's cart; an empty one (not stored) when the shopper has none yet.
pub(crate) async fn cart(State(state): State<AppState>, session: Session) -> ApiResult<CartView> {
    let cart = session_cart(&state.shop, &session).await?;
    Ok(Json(CartView::of(&state.shop, cart).await))
}

/// The session's cart, or an empty one that is not stored.
pub(crate) async fn session_cart(shop: &Storefront, session: &Session) -> Result<Cart, Problem> {
    if let Some(id) = session.cart {
        if let Some(cart) = shop.cart(id).await? {
            return Ok(cart);
        }
    }
    Ok(match session.email {
        Some(_) => Cart::new_for_customer(session.customer),
        None => Cart::new_guest(),
    })
}

/// A cart by id: only the session's own; any other answers 404, as one that does not exist.
pub(crate) async fn cart_by_id(
    State(state): State<AppState>,
    session: Session,
    ApiPath(id): ApiPath<CartId>,
) -> ApiResult<CartView> {
    if session.cart != Some(id) {
        return Err(Problem::not_found("cart").into());
    }
    let cart = state
        .shop
        .cart(id)
        .await?
        .ok_or_else(|| Problem::not_found("cart"))?;
    Ok(Json(CartView::of(&state.shop, cart).await))
}

/// `{"sku", "quantity"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddItem {
    pub(crate) sku: Sku,
    pub(crate) quantity: u32,
}

pub(crate) async fn add_item(
    State(state): State<AppState>,
    mut session: Session,
    ApiJson(body): ApiJson<AddItem>,
) -> ApiResult<CartView> {
    let cart = session
        .add_item(&state.shop, &body.sku, body.quantity)
        .await?;
    Ok(Json(CartView::of(&state.shop, cart).await))
}

/// `{"quantity"}`; 0 removes the line.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetQuantity {
    pub(crate) quantity: u32,
}

pub(crate) async fn set_quantity(
    State(state): State<AppState>,
    session: Session,
    ApiPath(sku): ApiPath<Sku>,
    ApiJson(body): ApiJson<SetQuantity>,
) -> ApiResult<CartView> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    let cart = state.shop.set_quantity(cart, &sku, body.quantity).await?;
    Ok(Json(CartView::of(&state.shop, cart).await))
}

pub(crate) async fn remove_item(
    State(state): State<AppState>,
    session: Session,
    ApiPath(sku): ApiPath<Sku>,
) -> ApiResult<CartView> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    let cart = state.shop.remove_item(cart, &sku).await?;
    Ok(Json(CartView::of(&state.shop, cart).await))
}

/// `{"code"}`: a coupon code, as the shopper typed it (trimmed and upper-cased by the shop).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApplyCode {
    pub(crate) code: String,
}

/// Applies a coupon code to the session's cart and answers the cart with its discounts. A
/// code that cannot be used answers its problem (`unknown_code` 404, `code_used_up` 409,
/// `code_expired`, `code_not_yet_valid`, `code_other_currency`, `too_many_codes`,
/// `code_already_applied` 422), the cart unchanged. A code that is applied but whose
/// conditions the cart does not meet is kept: `discounts.trace` says why it does not apply.
pub(crate) async fn apply_code(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<ApplyCode>,
) -> ApiResult<CartView> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    let cart = state
        .shop
        .apply_coupon(cart, &body.code)
        .await
        .map_err(Problem::of_cart_change)?;
    Ok(Json(CartView::of(&state.shop, cart).await))
}

/// Takes a code off the session's cart (one it does not carry changes nothing) and answers
/// the cart with its discounts.
pub(crate) async fn remove_code(
    State(state): State<AppState>,
    session: Session,
    ApiPath(code): ApiPath<String>,
) -> ApiResult<CartView> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    let cart = state
        .shop
        .remove_coupon(cart, &code)
        .await
        .map_err(Problem::of_cart_change)?;
    Ok(Json(CartView::of(&state.shop, cart).await))
}

/// `{"payment_method", "idempotency_key", "delivery", "accepted_quote",
/// "without_exhausted_promotions"}`: the client makes the key once per "Pay" press and sends
/// it again when it retries; `delivery` (contact, shipping address, the chosen shipping
/// quote) is required, `accepted_quote` (from `/checkout/quote`) makes a price that moved
/// since answer `quote_changed` instead of charging it. A promotion whose uses ran out since
/// the quote (another order took the last one) answers `promotion_exhausted`, nothing
/// charged; with `without_exhausted_promotions: true` the order goes on without it, at the
/// price without it (still bound by `accepted_quote`: a higher price answers
/// `quote_changed`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Checkout {
    pub(crate) payment_method: PaymentMethod,
    pub(crate) idempotency_key: IdempotencyKey,
    #[serde(default)]
    pub(crate) delivery: Option<Delivery>,
    #[serde(default)]
    pub(crate) accepted_quote: Option<Quote>,
    #[serde(default)]
    pub(crate) without_exhausted_promotions: bool,
}

/// Places the order of the session's cart. 201 with the order: CONFIRMED, or PENDING with
/// `payment.next_action` when the bank asks the customer to authenticate.
pub(crate) async fn checkout(
    State(state): State<AppState>,
    mut session: Session,
    ApiJson(body): ApiJson<Checkout>,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    let address = body.delivery.as_ref().map(|d| d.shipping_address.clone());
    let placed = place_order(
        &state,
        &mut session,
        body.payment_method,
        body.idempotency_key,
        body.delivery,
        body.accepted_quote,
        body.without_exhausted_promotions,
    )
    .await?;
    if let Some(address) = address {
        crate::checkout::remember(&state, &session, address).await;
    }
    Ok((StatusCode::CREATED, Json(placed.into_order())))
}

/// Refuses a new checkout while a payment this session made for another cart still waits for
/// the bank (3-D Secure) and holds its stock: one session holds stock for one unfinished
/// payment at most, for as long as a hold lasts (five minutes by default,
/// `StorefrontConfig::reservation_ttl`). The session's own cart can only be in one checkout
/// at a time anyway; this closes the way around it through a second cart (signing in with a
/// claimed guest cart). What many sessions from one client hold is the job of a rate limit in
/// front of the shop.
async fn bound_waiting_payments(
    shop: &Storefront,
    session: &Session,
    cart: CartId,
) -> Result<(), Problem> {
    let Some(waiting) = session.waiting else {
        return Ok(());
    };
    let hold =
        chrono::Duration::from_std(shop.config().reservation_ttl).unwrap_or(chrono::Duration::MAX);
    let holds = shop.order(waiting).await?.is_some_and(|order| {
        order.cart != cart
            && order.created_at > chrono::Utc::now() - hold
            && crate::pages::pending_payment(&order).is_some()
    });
    if holds {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "payment_waiting",
            "A payment of yours is waiting for your bank's confirmation. Please finish it (or let it fail) before paying for another order.",
        )
        .with_order(waiting));
    }
    Ok(())
}

/// The checkout both the API and the checkout form run.
pub(crate) async fn place_order(
    state: &AppState,
    session: &mut Session,
    payment_method: PaymentMethod,
    idempotency_key: IdempotencyKey,
    delivery: Option<Delivery>,
    accepted_quote: Option<Quote>,
    without_exhausted_promotions: bool,
) -> Result<Placed, Problem> {
    let cart = session.cart.ok_or_else(|| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty_cart",
            "Your cart is empty.",
        )
    })?;
    bound_waiting_payments(&state.shop, session, cart).await?;
    let request = crate::checkout::request(
        session,
        cart,
        payment_method,
        idempotency_key,
        delivery,
        accepted_quote,
        without_exhausted_promotions,
    );
    let placed = state.shop.place_order(request).await?;
    if crate::pages::pending_payment(placed.order()).is_some() {
        session.await_payment(placed.order().id).await?;
    }
    Ok(placed)
}

/// `?before=`: the session customer's orders, newest first.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryParams {
    pub(crate) before: Option<OrderId>,
    pub(crate) limit: Option<usize>,
}

pub(crate) async fn orders(
    State(state): State<AppState>,
    session: Session,
    ApiQuery(params): ApiQuery<HistoryParams>,
) -> ApiResult<Page<Order, OrderId>> {
    let limit = params.limit.unwrap_or(20).clamp(1, 100);
    Ok(Json(
        state
            .shop
            .order_history(session.customer, params.before, limit)
            .await?,
    ))
}

/// One of the session customer's orders; anyone else's answers 404.
pub(crate) async fn order(
    State(state): State<AppState>,
    session: Session,
    ApiPath(id): ApiPath<OrderId>,
) -> ApiResult<Order> {
    Ok(Json(own_order(&state.shop, &session, id).await?))
}

/// An order of the session's customer, or `not_found`.
pub(crate) async fn own_order(
    shop: &Storefront,
    session: &Session,
    id: OrderId,
) -> Result<Order, Problem> {
    shop.order(id)
        .await?
        .filter(|o| o.customer == session.customer)
        .ok_or_else(|| Problem::not_found("order"))
}

/// `{"email"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignIn {
    pub(crate) email: String,
}

/// Signs in; the guest cart merges into the customer's. Answers the merged cart.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<SignIn>,
) -> ApiResult<CartView> {
    let email = Session::parse_email(&body.email)?;
    let session = session.sign_in(&state.shop, email).await?;
    let cart = session_cart(&state.shop, &session).await?;
    Ok(Json(CartView::of(&state.shop, cart).await))
}

pub(crate) async fn sign_out(session: Session) -> Result<StatusCode, ApiError> {
    session.sign_out().await?;
    Ok(StatusCode::NO_CONTENT)
}
