//! Server-rendered pages: plain HTML forms, so the shop works without JavaScript (the search
//! box's suggestions are the one script).

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use ecommerce::cart::Cart;
use ecommerce::catalog::Product;
use ecommerce::id::{CategoryId, OrderId, ProductId, Sku};
use ecommerce::order::{FailureReason, Order, OrderStatus};
use ecommerce::payment::PaymentStatus;
use ecommerce::promotion::{Evaluation, NotApplied};
use ecommerce::search::{FacetCount, SortOrder};
use serde::Deserialize;

use crate::api::{self, CartView, HistoryParams, ListParams, ProductView, SearchParams};
use crate::app::AppState;
use crate::error::{PageError, PageForm, PagePath, PageQuery, Problem};
use crate::html::{esc, page, url};
use crate::session::Session;
use crate::{checkout, promotions};

type PageResult = Result<Html<String>, PageError>;

fn product_cards(products: &[Product]) -> String {
    let mut out = String::from(r#"<div class="grid">"#);
    for p in products {
        let price = p.min_price().map(|m| m.to_string()).unwrap_or_default();
        out.push_str(&format!(
            r#"<div class="card product"><a href="/product/{}">{}</a><div class="muted">{}</div><div class="price">{}</div></div>"#,
            p.id,
            esc(&p.title),
            esc(&p.brand),
            esc(&price)
        ));
    }
    out.push_str("</div>");
    out
}

async fn category_links(state: &AppState) -> Result<String, Problem> {
    let mut out = String::from(r#"<nav class="categories">"#);
    for c in state.shop.categories().await? {
        out.push_str(&format!(
            r#"<a class="category" href="/category/{}">{}</a> "#,
            url(c.id.as_str()),
            esc(&c.name)
        ));
    }
    out.push_str("</nav>");
    Ok(out)
}

fn stale_notice(state: &AppState) -> String {
    match state.shop.catalog_stale_since() {
        Some(since) => format!(
            r#"<p class="problem">The catalog is shown as of {}; prices are checked again at checkout.</p>"#,
            esc(&since.format("%H:%M UTC").to_string())
        ),
        None => String::new(),
    }
}

/// Products per listing page (the API's default too); the catalog cache is warmed with the
/// first page of every listing at this size.
pub(crate) const PAGE_SIZE: usize = 24;

pub(crate) async fn home(State(state): State<AppState>, session: Session) -> PageResult {
    let featured = state.shop.products(None, None, PAGE_SIZE).await?;
    let shown = &featured.items[..featured.items.len().min(12)];
    let body = format!(
        "{}<h1>Welcome</h1>{}<h2>New in</h2>{}",
        stale_notice(&state),
        category_links(&state).await?,
        product_cards(shown)
    );
    Ok(Html(page("Home", &session, &body)))
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
    let next = match products.next {
        Some(after) => format!(
            r#"<p><a id="next-page" href="/category/{}?after={after}">Next page</a></p>"#,
            url(id.as_str())
        ),
        None => String::new(),
    };
    let body = format!(
        "{}{}<h1>{}</h1>{}{next}",
        stale_notice(&state),
        category_links(&state).await?,
        esc(&category.name),
        product_cards(&products.items)
    );
    Ok(Html(page(&category.name, &session, &body)))
}

fn facet_links(title: &str, param: &str, counts: &[FacetCount], params: &SearchParams) -> String {
    if counts.is_empty() {
        return String::new();
    }
    let mut out = format!("<div><strong>{}</strong><ul>", esc(title));
    for c in counts {
        let mut link = format!("/search?q={}&{param}={}", url(&params.q), url(&c.value));
        for (name, value) in [("category", &params.category), ("brand", &params.brand)] {
            if name != param {
                if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                    link.push_str(&format!("&{name}={}", url(v)));
                }
            }
        }
        out.push_str(&format!(
            r#"<li><a class="facet" href="{}">{}</a> <span class="muted">({})</span></li>"#,
            esc(&link),
            esc(&c.value),
            c.count
        ));
    }
    out.push_str("</ul></div>");
    out
}

pub(crate) async fn search(
    State(state): State<AppState>,
    session: Session,
    PageQuery(params): PageQuery<SearchParams>,
) -> PageResult {
    let results = state.shop.search(&params.query()?).await?;
    let mut hits = String::from(r#"<div class="grid">"#);
    for hit in &results.hits {
        hits.push_str(&format!(
            r#"<div class="card hit"><a href="/product/{}">{}</a><div class="price">{}</div><div class="muted">{}</div></div>"#,
            hit.product,
            esc(&hit.title),
            esc(&hit.price.to_string()),
            if hit.in_stock { "In stock" } else { "Out of stock" }
        ));
    }
    hits.push_str("</div>");
    let facets = results
        .facets
        .as_ref()
        .map(|f| {
            format!(
                r#"<div class="facets">{}{}</div>"#,
                facet_links("Category", "category", &f.category, &params),
                facet_links("Brand", "brand", &f.brand, &params)
            )
        })
        .unwrap_or_default();
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
    ]
    .iter()
    .map(|(sort, value, label)| {
        format!(
            r#"<option value="{value}"{}>{label}</option>"#,
            if *sort == params.sort {
                " selected"
            } else {
                ""
            }
        )
    })
    .collect::<String>();
    let limit = params.limit.unwrap_or(20);
    let more = if (params.offset + limit) < results.total as usize {
        format!(
            r#"<p><a id="next-page" href="/search?q={}&offset={}">More results</a></p>"#,
            url(&params.q),
            params.offset + limit
        )
    } else {
        String::new()
    };
    let body = format!(
        r#"<h1>Results for “{q}”</h1><p id="result-count">{total} products</p>
<form method="get" action="/search"><input type="hidden" name="q" value="{q}"><select name="sort">{sorts}</select> <label><input type="checkbox" name="in_stock" value="true"{checked}> In stock only</label> <button>Apply</button></form>
{facets}{hits}{more}"#,
        q = esc(&params.q),
        total = results.total,
        checked = if params.in_stock { " checked" } else { "" },
    );
    Ok(Html(page("Search", &session, &body)))
}

pub(crate) async fn product(
    State(state): State<AppState>,
    session: Session,
    PagePath(id): PagePath<ProductId>,
) -> PageResult {
    let view = ProductView::load(&state.shop, id).await?;
    let p = &view.product;
    let max = state.shop.config().cart_limits.max_line_quantity;
    let mut variants =
        String::from("<table><tr><th>Option</th><th>Price</th><th>Stock</th><th></th></tr>");
    for (variant, stock) in p.variants.iter().zip(&view.stock) {
        if !variant.published {
            continue;
        }
        let options = variant
            .options
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        // Availability unknown (the inventory is down): checkout checks the stock anyway.
        let buy = if stock.is_none_or(|units| units > 0) {
            format!(
                r#"<form method="post" action="/cart/add"><input type="hidden" name="sku" value="{sku}"><input type="number" name="quantity" value="1" min="1" max="{max}" aria-label="Quantity"> <button class="add-to-cart">Add to cart</button></form>"#,
                sku = esc(variant.sku.as_str())
            )
        } else {
            r#"<span class="muted">Sold out</span>"#.to_owned()
        };
        variants.push_str(&format!(
            r#"<tr><td>{}</td><td class="price">{}</td><td>{}</td><td>{buy}</td></tr>"#,
            esc(&options),
            esc(&variant.price.to_string()),
            stock.map_or_else(|| "unknown".to_owned(), |units| units.to_string())
        ));
    }
    variants.push_str("</table>");
    let also = if view.also_bought.is_empty() {
        String::new()
    } else {
        let items = view
            .also_bought
            .iter()
            .map(|a| {
                format!(
                    r#"<li><a href="/product/{}">{}</a></li>"#,
                    a.product,
                    esc(&a.title)
                )
            })
            .collect::<String>();
        format!(r#"<h2>Customers also bought</h2><ul id="also-bought">{items}</ul>"#)
    };
    let body = format!(
        r#"{}<h1 id="product-title">{}</h1><p class="muted">{} · <a href="/category/{}">{}</a></p><p>{}</p>{variants}{also}"#,
        stale_notice(&state),
        esc(&p.title),
        esc(&p.brand),
        url(p.category.as_str()),
        esc(p.category.as_str()),
        esc(&p.description),
    );
    Ok(Html(page(&p.title, &session, &body)))
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

/// The cart's lines, its subtotal, and the promotions' discounts on it (before shipping).
fn cart_table(cart: &Cart, max: u32, discounts: Option<&Evaluation>) -> String {
    let mut rows = String::new();
    for line in &cart.lines {
        rows.push_str(&format!(
            r#"<tr class="cart-line"><td>{title}<div class="muted">{sku}</div></td><td>{price}</td>
<td><form method="post" action="/cart/update"><input type="hidden" name="sku" value="{sku}"><input type="number" name="quantity" value="{qty}" min="0" max="{max}" aria-label="Quantity"> <button>Update</button></form></td>
<td><form method="post" action="/cart/update"><input type="hidden" name="sku" value="{sku}"><input type="hidden" name="quantity" value="0"><button>Remove</button></form></td></tr>"#,
            title = esc(&line.title),
            sku = esc(line.sku.as_str()),
            price = esc(&line.unit_price.to_string()),
            qty = line.quantity,
        ));
    }
    let subtotal = cart.subtotal().ok().flatten();
    let applied = discounts.map_or(&[][..], |d| &d.applied[..]);
    let mut discount_rows = String::new();
    for a in applied {
        discount_rows.push_str(&format!(
            r#"<tr class="cart-discount" data-promotion="{}"><td colspan="3">{}</td><td class="price">{}</td></tr>"#,
            esc(a.promotion.as_str()),
            checkout::promotion_label(&a.name, a.code.as_ref()),
            esc(&checkout::minus(&a.amount))
        ));
    }
    let after = match (subtotal, discounts.map(Evaluation::total)) {
        (Some(subtotal), Some(Ok(off))) if !applied.is_empty() => subtotal
            .checked_sub(off)
            .map(|m| {
                format!(
                    r#"<tr><td colspan="3"><strong>After discounts</strong></td><td id="cart-after-discounts" class="price">{}</td></tr>"#,
                    esc(&m.to_string())
                )
            })
            .unwrap_or_default(),
        _ => String::new(),
    };
    format!(
        r#"<table><tr><th>Item</th><th>Unit price</th><th>Quantity</th><th></th></tr>{rows}<tr><td colspan="3"><strong>Subtotal</strong></td><td id="cart-total" class="price">{}</td></tr>{discount_rows}{after}</table>"#,
        esc(&subtotal.map(|m| m.to_string()).unwrap_or_default())
    )
}

/// The codes on the cart, each with what it takes off or why it does not apply and a button
/// that removes it, and the form that applies one. `typed`: the code to show in the field
/// again (one that was refused).
fn codes_section(cart: &Cart, discounts: Option<&Evaluation>, typed: &str) -> String {
    let mut items = String::new();
    for code in &cart.coupons {
        let applied = discounts
            .and_then(|d| d.applied.iter().find(|a| a.code.as_ref() == Some(code)))
            .map(|a| {
                format!(
                    r#"{}: <span class="price">{}</span>"#,
                    esc(&a.name),
                    esc(&checkout::minus(&a.amount))
                )
            });
        let state = match applied {
            Some(applied) => applied,
            None => discounts
                .and_then(|d| {
                    let t = d.trace.iter().find(|t| t.code.as_ref() == Some(code))?;
                    let why = t.not_applied.as_ref()?;
                    Some(format!(
                        r#"{}: <span class="muted">does not apply: {}.</span>"#,
                        esc(&t.name),
                        esc(&promotions::reason(why, &d.trace))
                    ))
                })
                .unwrap_or_default(),
        };
        items.push_str(&format!(
            r#"<li class="applied-code" data-code="{code}"><strong>{code}</strong> {state} <form class="inline" method="post" action="/cart/coupons/remove"><input type="hidden" name="code" value="{code}"><button class="remove-code">Remove</button></form></li>"#,
            code = esc(code.as_str()),
        ));
    }
    let list = if items.is_empty() {
        String::new()
    } else {
        format!(r#"<ul id="applied-codes">{items}</ul>"#)
    };
    format!(
        r#"<section id="codes"><h2>Discount code</h2>{list}
<form id="code-form" method="post" action="/cart/coupons"><label>Code <input id="coupon-code" name="code" value="{}" maxlength="32" autocomplete="off" required></label> <button id="apply-code">Apply</button></form></section>"#,
        esc(typed)
    )
}

/// The cart page's body; `problem` (a refused code, with the code typed) shown above it.
async fn cart_body(
    state: &AppState,
    session: &Session,
    problem: Option<(&Problem, &str)>,
) -> Result<String, Problem> {
    let cart = api::session_cart(&state.shop, session).await?;
    if cart.lines.is_empty() {
        return Ok(r#"<h1>Your cart</h1><p id="empty-cart">Your cart is empty. <a href="/">Keep shopping</a></p>"#.to_owned());
    }
    let view = CartView::of(&state.shop, cart).await;
    let mut notices = String::new();
    if let Some((problem, _)) = problem {
        notices.push_str(&format!(
            r#"<p class="problem" data-code="{}">{}</p>"#,
            problem.code,
            esc(&problem.message)
        ));
    }
    if !view.price_changes.is_empty() {
        notices.push_str(&format!(
            r#"<p class="problem" data-code="prices_changed">Prices changed since you added them: {}. Your cart shows the new prices.</p>"#,
            esc(&view
                .price_changes
                .iter()
                .map(|c| format!("{} {} now {}", c.sku, c.was, c.now))
                .collect::<Vec<_>>()
                .join(", "))
        ));
    }
    let discounts = view.discounts.as_ref();
    Ok(format!(
        r#"<h1>Your cart</h1>{notices}{}{}{}
<form method="get" action="/checkout"><p><button id="checkout-button">Check out</button> <span class="muted">Shipping and tax are added for your address.</span></p></form>"#,
        cart_table(
            &view.cart,
            state.shop.config().cart_limits.max_line_quantity,
            discounts
        ),
        offer_hints(&view.cart, discounts),
        codes_section(
            &view.cart,
            discounts,
            problem.map_or("", |(_, typed)| typed)
        ),
    ))
}

/// What to add for an automatic offer whose minimum the cart does not reach yet ("Add 12.00
/// USD more for free shipping").
fn offer_hints(cart: &Cart, discounts: Option<&Evaluation>) -> String {
    let (Some(discounts), Ok(Some(subtotal))) = (discounts, cart.subtotal()) else {
        return String::new();
    };
    discounts
        .trace
        .iter()
        .filter(|t| t.code.is_none())
        .filter_map(|t| match &t.not_applied {
            Some(NotApplied::BelowMinimum { minimum }) => {
                let missing = minimum.checked_sub(subtotal).ok()?;
                Some(format!(
                    r#"<p class="offer-hint muted" data-promotion="{}">Add {} more for “{}”.</p>"#,
                    esc(t.promotion.as_str()),
                    esc(&missing.to_string()),
                    esc(&t.name)
                ))
            }
            _ => None,
        })
        .collect()
}

pub(crate) async fn cart(State(state): State<AppState>, session: Session) -> PageResult {
    let body = cart_body(&state, &session, None).await?;
    Ok(Html(page("Cart", &session, &body)))
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
            Ok((problem.status, Html(page("Cart", &session, &body))).into_response())
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
fn order_discounts(order: &Order) -> String {
    let Some(quote) = order.quote.as_ref().filter(|q| !q.promotions.is_empty()) else {
        return String::new();
    };
    let codes: Vec<&str> = quote
        .promotions
        .iter()
        .filter_map(|a| a.code.as_ref().map(|c| c.as_str()))
        .collect();
    let codes = if codes.is_empty() {
        String::new()
    } else {
        format!(r#" <span class="code">{}</span>"#, esc(&codes.join(", ")))
    };
    format!("{}{codes}", esc(&checkout::minus(&quote.discount_total)))
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
    let mut rows = String::new();
    for o in &history.items {
        rows.push_str(&format!(
            r#"<tr class="order-row"><td><a href="/orders/{id}">{id}</a></td><td>{}</td><td>{}</td><td class="order-discounts">{}</td><td>{}</td><td class="status">{}</td></tr>"#,
            o.created_at.format("%Y-%m-%d %H:%M"),
            esc(&o
                .shipping_address
                .as_ref()
                .map(|a| format!("{}, {}", a.city(), a.country()))
                .unwrap_or_default()),
            order_discounts(o),
            esc(&o.total.to_string()),
            status_label(o.status),
            id = o.id,
        ));
    }
    let next = match history.next {
        Some(before) => {
            format!(r#"<p><a id="next-page" href="/orders?before={before}">Older orders</a></p>"#)
        }
        None => String::new(),
    };
    let body = if rows.is_empty() {
        r#"<h1>Your orders</h1><p id="no-orders">No orders yet.</p>"#.to_owned()
    } else {
        format!(
            r#"<h1>Your orders</h1><table id="orders"><tr><th>Order</th><th>Placed</th><th>Ship to</th><th>Discounts</th><th>Total</th><th>Status</th></tr>{rows}</table>{next}"#
        )
    };
    Ok(Html(page("Orders", &session, &body)))
}

pub(crate) async fn order(
    State(state): State<AppState>,
    session: Session,
    PagePath(id): PagePath<OrderId>,
) -> PageResult {
    let order = api::own_order(&state.shop, &session, id).await?;
    let lines = order
        .lines
        .iter()
        .map(|l| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&l.title),
                l.quantity,
                esc(&l.unit_price.to_string())
            )
        })
        .collect::<String>();
    let notice = match (order.status, pending_payment(&order)) {
        (OrderStatus::Confirmed, _) => {
            r#"<p class="notice">Thank you! Your order is confirmed.</p>"#.to_owned()
        }
        (_, Some(payment)) => format!(
            r#"<p class="problem">Your bank asks you to confirm the payment. <a id="complete-payment" href="/test-provider/3ds/{}">Confirm it now</a></p>"#,
            url(payment)
        ),
        (OrderStatus::Failed, _) => format!(
            r#"<p class="problem">This order failed: {}.</p>"#,
            esc(&order.failure.as_ref().map(failure_text).unwrap_or_default())
        ),
        _ => String::new(),
    };
    let breakdown = match &order.quote {
        Some(quote) => {
            let titles = |sku: &str| {
                order
                    .lines
                    .iter()
                    .find(|l| l.sku.as_str() == sku)
                    .map_or_else(|| sku.to_owned(), |l| l.title.clone())
            };
            crate::checkout::quote_table(quote, &titles)
        }
        None => format!(
            r#"<table><tr><th>Item</th><th>Quantity</th><th>Unit price</th></tr>{lines}<tr><td colspan="2"><strong>Total</strong></td><td>{}</td></tr></table>"#,
            esc(&order.total.to_string())
        ),
    };
    let delivery = match (&order.shipping_address, &order.contact) {
        (Some(address), contact) => format!(
            r#"<p>Ship to:</p><pre id="ship-to">{}</pre>{}"#,
            esc(&address.to_string()),
            contact.as_ref().map_or(String::new(), |c| format!(
                r#"<p>Confirmation sent to <span id="contact">{}</span></p>"#,
                esc(c.as_str())
            ))
        ),
        (None, _) => String::new(),
    };
    let body = format!(
        r#"<h1>Order {}</h1>{notice}<p>Status: <strong id="order-status">{}</strong></p>{delivery}{breakdown}<p><a href="/orders">All orders</a></p>"#,
        order.id,
        status_label(order.status),
    );
    Ok(Html(page("Order", &session, &body)))
}

pub(crate) async fn sign_in_form(session: Session) -> Html<String> {
    let body = r#"<h1>Sign in</h1><p>Your cart comes with you.</p><form method="post" action="/signin"><label>E-mail <input type="email" id="email" name="email" required maxlength="254"></label> <button id="signin">Sign in</button></form>"#;
    Html(page("Sign in", &session, body))
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
