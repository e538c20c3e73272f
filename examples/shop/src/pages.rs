//! Server-rendered pages: plain HTML forms, so the shop works without JavaScript (the search
//! box's suggestions are the one script), and the products' images.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Redirect, Response};
use ecommerce::cart::Cart;
use ecommerce::catalog::{Category, Product};
use ecommerce::id::{CategoryId, OrderId, ProductId, Sku};
use ecommerce::order::{FailureReason, Order, OrderStatus};
use ecommerce::payment::PaymentStatus;
use ecommerce::promotion::{Evaluation, NotApplied};
use ecommerce::search::{FacetCount, SortOrder};
use maud::{Markup, html};
use serde::Deserialize;

use crate::api::{self, CartView, HistoryParams, ListParams, ProductView, SearchParams};
use crate::app::AppState;
use crate::error::{PageError, PageForm, PagePath, PageQuery, Problem};
use crate::html::{self, encoded, page, product_img};
use crate::session::Session;
use crate::{checkout, promotions};

type PageResult = Result<Markup, PageError>;

/// A link to a product's page.
fn product_url(product: ProductId) -> String {
    format!("/product/{product}")
}

/// A link to a category's page.
fn category_url(category: &CategoryId) -> String {
    format!("/category/{}", encoded(category.as_str()))
}

fn product_cards(products: &[Product]) -> Markup {
    html! {
        div.grid {
            @for p in products {
                div.card.product {
                    a href=(product_url(p.id)) {
                        (product_img(p.id, "thumb", ""))
                        (p.title)
                    }
                    div.muted { (p.brand) }
                    div.price {
                        @if let Some(price) = p.min_price() { (price) }
                    }
                }
            }
        }
    }
}

async fn category_links(state: &AppState) -> Result<Markup, Problem> {
    let categories = state.shop.categories().await?;
    Ok(html! {
        nav.categories {
            @for c in &categories {
                a.category href=(category_url(&c.id)) { (c.name) }
                " "
            }
        }
    })
}

/// Category names by id; empty (the pages then show the ids) while the catalog cannot say.
async fn category_names(state: &AppState) -> HashMap<CategoryId, String> {
    match state.shop.categories().await {
        Ok(categories) => categories
            .into_iter()
            .map(|Category { id, name, .. }| (id, name))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "category names not shown");
            HashMap::new()
        }
    }
}

fn stale_notice(state: &AppState) -> Markup {
    html! {
        @if let Some(since) = state.shop.catalog_stale_since() {
            p.problem {
                "The catalog is shown as of " (since.format("%H:%M UTC"))
                "; prices are checked again at checkout."
            }
        }
    }
}

/// Products per listing page (the API's default too); the catalog cache is warmed with the
/// first page of every listing at this size.
pub(crate) const PAGE_SIZE: usize = 24;

/// Products a product page suggests beside it.
const SUGGESTIONS: usize = 4;

pub(crate) async fn home(State(state): State<AppState>, session: Session) -> PageResult {
    let featured = state.shop.products(None, None, PAGE_SIZE).await?;
    let shown = &featured.items[..featured.items.len().min(12)];
    let body = html! {
        (stale_notice(&state))
        h1 { "Welcome" }
        (category_links(&state).await?)
        h2 { "New in" }
        (product_cards(shown))
    };
    Ok(page("Home", &session, body))
}

pub(crate) async fn category(
    State(state): State<AppState>,
    session: Session,
    PagePath(id): PagePath<String>,
    PageQuery(params): PageQuery<ListParams>,
) -> PageResult {
    let id = CategoryId::new(id).map_err(|_| Problem::not_found("category"))?;
    let category = state
        .shop
        .categories()
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or_else(|| Problem::not_found("category"))?;
    let products = state
        .shop
        .products(Some(id.clone()), params.after, PAGE_SIZE)
        .await?;
    let body = html! {
        (stale_notice(&state))
        (category_links(&state).await?)
        h1 { (category.name) }
        (product_cards(&products.items))
        @if let Some(after) = products.next {
            p {
                a #next-page href={ (category_url(&id)) "?after=" (after) } { "Next page" }
            }
        }
    };
    Ok(page(&category.name, &session, body))
}

/// A facet's values as filter links, each shown by its `label` (a category's name) and
/// filtering by the value itself (the category's id), keeping the other facets' filters.
fn facet_links(
    title: &str,
    param: &str,
    counts: &[FacetCount],
    label: impl Fn(&str) -> String,
    params: &SearchParams,
) -> Markup {
    let link = |value: &str| {
        let mut link = format!(
            "/search?q={}&{param}={}",
            encoded(&params.q),
            encoded(value)
        );
        for (name, value) in [("category", &params.category), ("brand", &params.brand)] {
            if name != param {
                if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                    link.push_str(&format!("&{name}={}", encoded(v)));
                }
            }
        }
        link
    };
    html! {
        @if !counts.is_empty() {
            div {
                strong { (title) }
                ul {
                    @for c in counts {
                        li {
                            a.facet href=(link(&c.value)) { (label(&c.value)) }
                            " "
                            span.muted { "(" (c.count) ")" }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn search(
    State(state): State<AppState>,
    session: Session,
    PageQuery(params): PageQuery<SearchParams>,
) -> PageResult {
    let results = state.shop.search(&params.query()?).await?;
    let names = match &results.facets {
        Some(f) if !f.category.is_empty() => category_names(&state).await,
        _ => HashMap::new(),
    };
    let category_name = |id: &str| {
        CategoryId::new(id)
            .ok()
            .and_then(|id| names.get(&id).cloned())
            .unwrap_or_else(|| id.to_owned())
    };
    let sorts = [
        (SortOrder::Relevance, "relevance", "Best match"),
        (
            SortOrder::PriceAscending,
            "price_ascending",
            "Price, low to high",
        ),
        (
            SortOrder::PriceDescending,
            "price_descending",
            "Price, high to low",
        ),
        (SortOrder::Newest, "newest", "Newest"),
    ];
    let limit = params.limit.unwrap_or(20);
    let body = html! {
        h1 { "Results for “" (params.q) "”" }
        p #result-count { (results.total) " products" }
        @if let Some(suggestion) = &results.did_you_mean {
            p #did-you-mean {
                "Did you mean "
                a href={ "/search?q=" (encoded(suggestion)) } { (suggestion) }
                "?"
            }
        }
        form method="get" action="/search" {
            input type="hidden" name="q" value=(params.q);
            select name="sort" {
                @for (sort, value, label) in sorts {
                    option value=(value) selected[sort == params.sort] { (label) }
                }
            }
            " "
            label {
                input type="checkbox" name="in_stock" value="true" checked[params.in_stock];
                " In stock only"
            }
            " "
            button { "Apply" }
        }
        @if let Some(f) = &results.facets {
            div.facets {
                (facet_links("Category", "category", &f.category, category_name, &params))
                (facet_links("Brand", "brand", &f.brand, str::to_owned, &params))
            }
        }
        div.grid {
            @for hit in &results.hits {
                div.card.hit {
                    a href=(product_url(hit.product)) {
                        (product_img(hit.product, "thumb", ""))
                        (hit.title)
                    }
                    div.price { (hit.price) }
                    div.muted { @if hit.in_stock { "In stock" } @else { "Out of stock" } }
                }
            }
        }
        @if params.offset + limit < results.total as usize {
            p {
                a #next-page href={ "/search?q=" (encoded(&params.q)) "&offset=" (params.offset + limit) } {
                    "More results"
                }
            }
        }
    };
    Ok(page("Search", &session, body))
}

/// What a product page suggests beside its product.
enum Suggestions {
    /// The products most often bought with it.
    AlsoBought(Vec<(ProductId, String)>),
    /// Before anyone bought it with something else: other products of its category, or of
    /// the catalog when it is alone in its category.
    Similar(Vec<(ProductId, String)>),
}

impl Suggestions {
    /// The product's co-purchases (other products only, each once), or similar products
    /// when there are none. The suggestions are an extra of the page: while the catalog
    /// cannot list them, there are none.
    async fn of(state: &AppState, view: &ProductView) -> Suggestions {
        let own = view.product.id;
        let mut seen = HashSet::from([own]);
        let bought: Vec<(ProductId, String)> = view
            .also_bought
            .iter()
            .filter(|a| seen.insert(a.product))
            .map(|a| (a.product, a.title.clone()))
            .take(SUGGESTIONS)
            .collect();
        if !bought.is_empty() {
            return Suggestions::AlsoBought(bought);
        }
        let mut similar = Vec::new();
        for category in [Some(view.product.category.clone()), None] {
            match state.shop.products(category, None, SUGGESTIONS + 1).await {
                Ok(page) => similar.extend(
                    page.items
                        .into_iter()
                        .filter(|p| p.id != own)
                        .take(SUGGESTIONS)
                        .map(|p| (p.id, p.title)),
                ),
                Err(e) => tracing::warn!(error = %e, "suggestions not shown"),
            }
            if !similar.is_empty() {
                break;
            }
        }
        Suggestions::Similar(similar)
    }

    /// The page's section: always there, saying so when there is nothing to suggest.
    fn render(&self) -> Markup {
        let (source, heading, products) = match self {
            Suggestions::AlsoBought(products) => ("also_bought", "Customers also bought", products),
            Suggestions::Similar(products) => ("similar", "You may also like", products),
        };
        html! {
            section #also-bought data-source=(source) {
                h2 { (heading) }
                @if products.is_empty() {
                    p.muted { "Nothing to suggest yet." }
                } @else {
                    div.grid {
                        @for (id, title) in products {
                            div.card.suggestion {
                                a href=(product_url(*id)) {
                                    (product_img(*id, "thumb", ""))
                                    (title)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn product(
    State(state): State<AppState>,
    session: Session,
    PagePath(id): PagePath<ProductId>,
) -> PageResult {
    let view = ProductView::load(&state.shop, id).await?;
    let p = &view.product;
    let max = state.shop.config().cart_limits.max_line_quantity;
    let category = category_names(&state)
        .await
        .remove(&p.category)
        .unwrap_or_else(|| p.category.as_str().to_owned());
    let suggestions = Suggestions::of(&state, &view).await;
    let body = html! {
        (stale_notice(&state))
        div.product-head {
            (product_img(p.id, "product-image", &p.title))
            div {
                h1 #product-title { (p.title) }
                p.muted {
                    (p.brand) " · "
                    a href=(category_url(&p.category)) { (category) }
                }
                p { (p.description) }
            }
        }
        table {
            tr { th { "Option" } th { "Price" } th { "Stock" } th {} }
            @for (variant, stock) in p.variants.iter().zip(&view.stock) {
                @if variant.published {
                    tr {
                        td {
                            @for (i, (k, v)) in variant.options.iter().enumerate() {
                                @if i > 0 { ", " }
                                (k) ": " (v)
                            }
                        }
                        td.price { (variant.price) }
                        td {
                            @match stock {
                                Some(units) => (units),
                                None => "unknown",
                            }
                        }
                        td {
                            // Availability unknown (the inventory is down): checkout checks
                            // the stock anyway.
                            @if stock.is_none_or(|units| units > 0) {
                                form method="post" action="/cart/add" {
                                    input type="hidden" name="sku" value=(variant.sku.as_str());
                                    input type="number" name="quantity" value="1" min="1"
                                        max=(max) aria-label="Quantity";
                                    " "
                                    button.add-to-cart { "Add to cart" }
                                }
                            } @else {
                                span.muted { "Sold out" }
                            }
                        }
                    }
                }
            }
        }
        (suggestions.render())
    };
    Ok(page(&p.title, &session, body))
}

/// A product's image (`{id}.svg`, see [`html::product_image`]); `not_found` for anything
/// else, a product that does not exist, or one not for sale.
pub(crate) async fn product_image(
    State(state): State<AppState>,
    PagePath(file): PagePath<String>,
) -> Result<Response, PageError> {
    let id = file
        .strip_suffix(".svg")
        .and_then(|id| id.parse::<ProductId>().ok())
        .ok_or_else(|| Problem::not_found("image"))?;
    let product = state
        .shop
        .product(id)
        .await?
        .filter(|p| p.published)
        .ok_or_else(|| Problem::not_found("image"))?;
    Ok((
        [
            (CONTENT_TYPE, "image/svg+xml"),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        html::product_image(&product).into_string(),
    )
        .into_response())
}

/// A cart line change from a form.
#[derive(Debug, Deserialize)]
pub(crate) struct LineForm {
    pub(crate) sku: Sku,
    pub(crate) quantity: u32,
}

pub(crate) async fn add_to_cart(
    State(state): State<AppState>,
    mut session: Session,
    PageForm(form): PageForm<LineForm>,
) -> Result<Redirect, PageError> {
    session
        .add_item(&state.shop, &form.sku, form.quantity)
        .await?;
    Ok(Redirect::to("/cart"))
}

pub(crate) async fn update_cart(
    State(state): State<AppState>,
    session: Session,
    PageForm(form): PageForm<LineForm>,
) -> Result<Redirect, PageError> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    state
        .shop
        .set_quantity(cart, &form.sku, form.quantity)
        .await?;
    Ok(Redirect::to("/cart"))
}

/// The product each line of a cart sells, for its image and link; a line whose product is
/// no longer for sale (or all of them, while the catalog cannot say) has none.
async fn line_products(state: &AppState, cart: &Cart) -> HashMap<Sku, ProductId> {
    let skus: Vec<Sku> = cart.lines.iter().map(|l| l.sku.clone()).collect();
    match state.shop.catalog().offers(&skus).await {
        Ok(offers) => offers
            .into_values()
            .filter(|o| o.available)
            .map(|o| (o.sku, o.product))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "cart images not shown");
            HashMap::new()
        }
    }
}

/// The cart's lines (with their products' images), its subtotal, and the promotions'
/// discounts on it (before shipping).
fn cart_table(
    cart: &Cart,
    products: &HashMap<Sku, ProductId>,
    max: u32,
    discounts: Option<&Evaluation>,
) -> Markup {
    let subtotal = cart.subtotal().ok().flatten();
    let applied = discounts.map_or(&[][..], |d| &d.applied[..]);
    let after = match (subtotal, discounts.map(Evaluation::total)) {
        (Some(subtotal), Some(Ok(off))) if !applied.is_empty() => subtotal.checked_sub(off).ok(),
        _ => None,
    };
    html! {
        table {
            tr { th { "Item" } th { "Unit price" } th { "Quantity" } th {} }
            @for line in &cart.lines {
                tr.cart-line {
                    td {
                        div.line-item {
                            @if let Some(product) = products.get(&line.sku) {
                                (product_img(*product, "cart-thumb", ""))
                                div {
                                    a href=(product_url(*product)) { (line.title) }
                                    div.muted { (line.sku) }
                                }
                            } @else {
                                div {
                                    (line.title)
                                    div.muted { (line.sku) }
                                }
                            }
                        }
                    }
                    td { (line.unit_price) }
                    td {
                        form method="post" action="/cart/update" {
                            input type="hidden" name="sku" value=(line.sku.as_str());
                            input type="number" name="quantity" value=(line.quantity) min="0"
                                max=(max) aria-label="Quantity";
                            " "
                            button { "Update" }
                        }
                    }
                    td {
                        form method="post" action="/cart/update" {
                            input type="hidden" name="sku" value=(line.sku.as_str());
                            input type="hidden" name="quantity" value="0";
                            button { "Remove" }
                        }
                    }
                }
            }
            tr {
                td colspan="3" { strong { "Subtotal" } }
                td #cart-total.price { @if let Some(subtotal) = subtotal { (subtotal) } }
            }
            @for a in applied {
                tr.cart-discount data-promotion=(a.promotion.as_str()) {
                    td colspan="3" { (checkout::promotion_label(&a.name, a.code.as_ref())) }
                    td.price { (checkout::minus(&a.amount)) }
                }
            }
            @if let Some(after) = after {
                tr {
                    td colspan="3" { strong { "After discounts" } }
                    td #cart-after-discounts.price { (after) }
                }
            }
        }
    }
}

/// The codes on the cart, each with what it takes off or why it does not apply and a button
/// that removes it, and the form that applies one. `typed`: the code to show in the field
/// again (one that was refused).
fn codes_section(cart: &Cart, discounts: Option<&Evaluation>, typed: &str) -> Markup {
    let state = |code| {
        let applied = discounts
            .and_then(|d| d.applied.iter().find(|a| a.code.as_ref() == Some(code)))
            .map(|a| {
                html! {
                    (a.name) ": " span.price { (checkout::minus(&a.amount)) }
                }
            });
        applied.or_else(|| {
            let d = discounts?;
            let t = d.trace.iter().find(|t| t.code.as_ref() == Some(code))?;
            let why = t.not_applied.as_ref()?;
            Some(html! {
                (t.name) ": "
                span.muted { "does not apply: " (promotions::reason(why, &d.trace)) "." }
            })
        })
    };
    html! {
        section #codes {
            h2 { "Discount code" }
            @if !cart.coupons.is_empty() {
                ul #applied-codes {
                    @for code in &cart.coupons {
                        li.applied-code data-code=(code.as_str()) {
                            strong { (code.as_str()) }
                            " "
                            @if let Some(state) = state(code) { (state) }
                            " "
                            form.inline method="post" action="/cart/coupons/remove" {
                                input type="hidden" name="code" value=(code.as_str());
                                button.remove-code { "Remove" }
                            }
                        }
                    }
                }
            }
            form #code-form method="post" action="/cart/coupons" {
                label {
                    "Code "
                    input #coupon-code name="code" value=(typed) maxlength="32"
                        autocomplete="off" required;
                }
                " "
                button #apply-code { "Apply" }
            }
        }
    }
}

/// The page's body for an empty cart.
pub(crate) fn empty_cart(heading: &str) -> Markup {
    html! {
        h1 { (heading) }
        p #empty-cart { "Your cart is empty. " a href="/" { "Keep shopping" } }
    }
}

/// The cart page's body; `problem` (a refused code, with the code typed) shown above it.
async fn cart_body(
    state: &AppState,
    session: &Session,
    problem: Option<(&Problem, &str)>,
) -> Result<Markup, Problem> {
    let cart = api::session_cart(&state.shop, session).await?;
    if cart.lines.is_empty() {
        return Ok(empty_cart("Your cart"));
    }
    let view = CartView::of(&state.shop, cart).await;
    let products = line_products(state, &view.cart).await;
    let discounts = view.discounts.as_ref();
    let price_changes = view
        .price_changes
        .iter()
        .map(|c| format!("{} {} now {}", c.sku, c.was, c.now))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(html! {
        h1 { "Your cart" }
        @if let Some((problem, _)) = problem {
            p.problem data-code=(problem.code) { (problem.message) }
        }
        @if !view.price_changes.is_empty() {
            p.problem data-code="prices_changed" {
                "Prices changed since you added them: " (price_changes)
                ". Your cart shows the new prices."
            }
        }
        (cart_table(
            &view.cart,
            &products,
            state.shop.config().cart_limits.max_line_quantity,
            discounts,
        ))
        (offer_hints(&view.cart, discounts))
        (codes_section(&view.cart, discounts, problem.map_or("", |(_, typed)| typed)))
        form method="get" action="/checkout" {
            p {
                button #checkout-button { "Check out" }
                " "
                span.muted { "Shipping and tax are added for your address." }
            }
        }
    })
}

/// What to add for an automatic offer whose minimum the cart does not reach yet ("Add 12.00
/// USD more for free shipping").
fn offer_hints(cart: &Cart, discounts: Option<&Evaluation>) -> Markup {
    let (Some(discounts), Ok(Some(subtotal))) = (discounts, cart.subtotal()) else {
        return html! {};
    };
    let hints = discounts
        .trace
        .iter()
        .filter(|t| t.code.is_none())
        .filter_map(|t| match &t.not_applied {
            Some(NotApplied::BelowMinimum { minimum }) => {
                Some((t, minimum.checked_sub(subtotal).ok()?))
            }
            _ => None,
        });
    html! {
        @for (t, missing) in hints {
            p.offer-hint.muted data-promotion=(t.promotion.as_str()) {
                "Add " (missing) " more for “" (t.name) "”."
            }
        }
    }
}

pub(crate) async fn cart(State(state): State<AppState>, session: Session) -> PageResult {
    let body = cart_body(&state, &session, None).await?;
    Ok(page("Cart", &session, body))
}

/// A code from the cart page's forms.
#[derive(Debug, Deserialize)]
pub(crate) struct CodeForm {
    pub(crate) code: String,
}

/// Applies a code to the cart; one that cannot be used shows the cart again with the problem
/// (and its status), the cart unchanged.
pub(crate) async fn apply_code(
    State(state): State<AppState>,
    session: Session,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Response, PageError> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    match state.shop.apply_coupon(cart, &form.code).await {
        Ok(_) => Ok(Redirect::to("/cart").into_response()),
        Err(e) => {
            let problem = Problem::of_cart_change(e);
            if problem.status.is_server_error() {
                return Err(problem.into());
            }
            let typed: String = form.code.chars().take(32).collect();
            let body = cart_body(&state, &session, Some((&problem, &typed))).await?;
            Ok((problem.status, page("Cart", &session, body)).into_response())
        }
    }
}

/// Takes a code off the cart.
pub(crate) async fn remove_code(
    State(state): State<AppState>,
    session: Session,
    PageForm(form): PageForm<CodeForm>,
) -> Result<Redirect, PageError> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    state
        .shop
        .remove_coupon(cart, &form.code)
        .await
        .map_err(Problem::of_cart_change)?;
    Ok(Redirect::to("/cart"))
}

pub(crate) fn pending_payment(order: &Order) -> Option<&str> {
    match &order.payment {
        Some(p) if order.status == OrderStatus::Pending && p.status == PaymentStatus::Pending => {
            Some(&p.id.0)
        }
        _ => None,
    }
}

fn failure_text(reason: &FailureReason) -> String {
    let skus = |shortages: &[ecommerce::error::Shortage]| {
        shortages
            .iter()
            .map(|s| s.sku.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match reason {
        FailureReason::OutOfStock { shortages } => format!("sold out ({})", skus(shortages)),
        FailureReason::PaymentDeclined { reason } => format!("the payment was declined ({reason})"),
        FailureReason::StockLostAfterPayment { shortages } => format!(
            "sold out ({}) while the bank confirmed the payment, which was refunded",
            skus(shortages)
        ),
        FailureReason::PaymentNotCompleted => "the payment was not completed".to_owned(),
        FailureReason::CartClaimed { by } => {
            format!("another checkout of the same cart (order {by}) was paying for it")
        }
        FailureReason::CartChanged => "the cart changed while paying".to_owned(),
    }
}

fn status_label(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "Pending",
        OrderStatus::Confirmed => "Confirmed",
        OrderStatus::Shipped => "Shipped",
        OrderStatus::Delivered => "Delivered",
        OrderStatus::Failed => "Failed",
        OrderStatus::Cancelled => "Cancelled",
    }
}

/// An order's discounts for the history: the amount saved and the codes used.
fn order_discounts(order: &Order) -> Markup {
    let Some(quote) = order.quote.as_ref().filter(|q| !q.promotions.is_empty()) else {
        return html! {};
    };
    let codes: Vec<&str> = quote
        .promotions
        .iter()
        .filter_map(|a| a.code.as_ref().map(|c| c.as_str()))
        .collect();
    html! {
        (checkout::minus(&quote.discount_total))
        @if !codes.is_empty() {
            " "
            span.code { (codes.join(", ")) }
        }
    }
}

pub(crate) async fn orders(
    State(state): State<AppState>,
    session: Session,
    PageQuery(params): PageQuery<HistoryParams>,
) -> PageResult {
    let history = state
        .shop
        .order_history(session.customer, params.before, 20)
        .await?;
    let body = html! {
        h1 { "Your orders" }
        @if history.items.is_empty() {
            p #no-orders { "No orders yet." }
        } @else {
            table #orders {
                tr {
                    th { "Order" } th { "Placed" } th { "Ship to" } th { "Discounts" }
                    th { "Total" } th { "Status" }
                }
                @for o in &history.items {
                    tr.order-row {
                        td { a href={ "/orders/" (o.id) } { (o.id) } }
                        td { (o.created_at.format("%Y-%m-%d %H:%M")) }
                        td {
                            @if let Some(a) = &o.shipping_address {
                                (a.city()) ", " (a.country())
                            }
                        }
                        td.order-discounts { (order_discounts(o)) }
                        td { (o.total) }
                        td.status { (status_label(o.status)) }
                    }
                }
            }
            @if let Some(before) = history.next {
                p { a #next-page href={ "/orders?before=" (before) } { "Older orders" } }
            }
        }
    };
    Ok(page("Orders", &session, body))
}

pub(crate) async fn order(
    State(state): State<AppState>,
    session: Session,
    PagePath(id): PagePath<OrderId>,
) -> PageResult {
    let order = api::own_order(&state.shop, &session, id).await?;
    let titles = |sku: &str| {
        order
            .lines
            .iter()
            .find(|l| l.sku.as_str() == sku)
            .map_or_else(|| sku.to_owned(), |l| l.title.clone())
    };
    let body = html! {
        h1 { "Order " (order.id) }
        @match (order.status, pending_payment(&order)) {
            (OrderStatus::Confirmed, _) => {
                p.notice { "Thank you! Your order is confirmed." }
            }
            (_, Some(payment)) => {
                p.problem {
                    "Your bank asks you to confirm the payment. "
                    a #complete-payment href={ "/test-provider/3ds/" (encoded(payment)) } {
                        "Confirm it now"
                    }
                }
            }
            (OrderStatus::Failed, _) => {
                p.problem {
                    "This order failed: "
                    @if let Some(failure) = &order.failure { (failure_text(failure)) }
                    "."
                }
            }
            _ => {}
        }
        p { "Status: " strong #order-status { (status_label(order.status)) } }
        @if let Some(address) = &order.shipping_address {
            p { "Ship to:" }
            pre #ship-to { (address) }
            @if let Some(contact) = &order.contact {
                p { "Confirmation sent to " span #contact { (contact.as_str()) } }
            }
        }
        @match &order.quote {
            Some(quote) => (checkout::quote_table(quote, &titles)),
            None => {
                table {
                    tr { th { "Item" } th { "Quantity" } th { "Unit price" } }
                    @for l in &order.lines {
                        tr { td { (l.title) } td { (l.quantity) } td { (l.unit_price) } }
                    }
                    tr {
                        td colspan="2" { strong { "Total" } }
                        td { (order.total) }
                    }
                }
            }
        }
        p { a href="/orders" { "All orders" } }
    };
    Ok(page("Order", &session, body))
}

pub(crate) async fn sign_in_form(session: Session) -> Markup {
    let body = html! {
        h1 { "Sign in" }
        p { "Your cart comes with you." }
        form method="post" action="/signin" {
            label {
                "E-mail "
                input #email type="email" name="email" required maxlength="254";
            }
            " "
            button #signin { "Sign in" }
        }
    };
    page("Sign in", &session, body)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub(crate) struct SignInForm {
    pub(crate) email: String,
}

pub(crate) async fn sign_in(
    State(state): State<AppState>,
    session: Session,
    PageForm(form): PageForm<SignInForm>,
) -> Result<Redirect, PageError> {
    let email = Session::parse_email(&form.email)?;
    session.sign_in(&state.shop, email).await?;
    Ok(Redirect::to("/cart"))
}

pub(crate) async fn sign_out(session: Session) -> Result<Redirect, PageError> {
    session.sign_out().await?;
    Ok(Redirect::to("/"))
}
