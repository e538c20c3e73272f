//! The checkout steps: contact and address, shipping method, review, pay. As pages (plain
//! forms; each step carries the previous steps' answers in hidden fields, and the server
//! checks them all again) and as the JSON API.
//!
//! The shop sells in US dollars with tax-exclusive prices: sales tax by state, shipping by
//! weight within the United States and flat to Canada.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use ecommerce::address::{Address, AddressInput, Email};
use ecommerce::address_book::SavedAddress;
use ecommerce::checkout::Delivery;
use ecommerce::id::{AddressId, IdempotencyKey};
use ecommerce::money::{Currency, Money};
use ecommerce::payment::PaymentMethod;
use ecommerce::promotion::{CouponCode, Trace};
use ecommerce::quote::Quote;
use ecommerce::shipping::{Bracket, RateRule, ShippingMethod, ShippingQuote, Zone, ZoneTable};
use ecommerce::tax::{TaxClass, TaxTable};
use ecommerce::{CheckoutRequest, Placed};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::api;
use crate::app::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, PageError, PageForm, Problem};
use crate::html::{esc, page, url};
use crate::session::Session;

/// Countries the shop ships to, as the address form offers them.
const COUNTRIES: [(&str, &str); 2] = [("US", "United States"), ("CA", "Canada")];

fn usd(cents: i64) -> Money {
    Money::from_minor(cents, Currency::Usd)
}

/// Shipping: ground by weight (free from $150) and express within the United States, and a
/// flat international rate to Canada.
pub(crate) fn zones() -> ZoneTable {
    let by_weight = |brackets: &[(u64, i64)]| {
        RateRule::ByWeight(
            brackets
                .iter()
                .map(|(up_to, cents)| Bracket {
                    up_to: *up_to,
                    amount: usd(*cents),
                })
                .collect(),
        )
    };
    ZoneTable::new(vec![
        Zone::new("United States", &["US"])
            .method(
                ShippingMethod::new(
                    "ground",
                    "Ground (3-5 business days)",
                    by_weight(&[
                        (1_000, 599),
                        (5_000, 899),
                        (20_000, 1_499),
                        (100_000, 3_999),
                    ]),
                )
                .free_over(usd(15_000))
                .taxed_as(None),
            )
            .method(
                ShippingMethod::new(
                    "express",
                    "Express (next business day)",
                    by_weight(&[(5_000, 2_499), (30_000, 4_999)]),
                )
                .taxed_as(None),
            ),
        Zone::new("Canada", &["CA"]).method(
            ShippingMethod::new(
                "international",
                "International (7-10 business days)",
                RateRule::Flat(usd(2_999)),
            )
            .taxed_as(Some(TaxClass::standard())),
        ),
    ])
}

/// Sales tax by state (a few states' base rates; elsewhere in the United States none), and
/// Canada's GST on goods and shipping.
pub(crate) fn taxes() -> TaxTable {
    let standard = TaxClass::standard;
    let rate = |basis_points: i64| Decimal::new(basis_points, 4);
    TaxTable::new()
        .rate("US", None, standard(), Decimal::ZERO, "No sales tax")
        .rate(
            "US",
            Some("US-CA"),
            standard(),
            rate(725),
            "California sales tax",
        )
        .rate(
            "US",
            Some("US-NY"),
            standard(),
            rate(400),
            "New York sales tax",
        )
        .rate(
            "US",
            Some("US-TX"),
            standard(),
            rate(625),
            "Texas sales tax",
        )
        .rate(
            "US",
            Some("US-WA"),
            standard(),
            rate(650),
            "Washington sales tax",
        )
        .rate("CA", None, standard(), rate(500), "GST")
}

/// The storefront's shipping and tax, as the shop configures them.
pub(crate) fn configure(
    builder: ecommerce::storefront::StorefrontBuilder,
) -> ecommerce::storefront::StorefrontBuilder {
    builder.shipping(Arc::new(zones())).tax(Arc::new(taxes()))
}

// ----- the form every step carries -----

/// The checkout form's fields: contact and address from the first step, the chosen shipping
/// quote (JSON) from the second, the reviewed quote's hash, the payment method and the key
/// from the last. Fields a step has not reached yet are empty. `remove_code` asks the review
/// step to take a code off the cart first (one that ran out while paying).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct CheckoutForm {
    pub(crate) email: String,
    pub(crate) name: String,
    pub(crate) line1: String,
    pub(crate) line2: String,
    pub(crate) city: String,
    pub(crate) region: String,
    pub(crate) postal_code: String,
    pub(crate) country: String,
    pub(crate) phone: String,
    pub(crate) shipping: String,
    pub(crate) quote_hash: String,
    pub(crate) payment_method: String,
    pub(crate) idempotency_key: String,
    pub(crate) remove_code: String,
}

fn optional(s: &str) -> Option<String> {
    (!s.trim().is_empty()).then(|| s.to_owned())
}

impl CheckoutForm {
    fn address(&self) -> Result<Address, Problem> {
        Address::new(AddressInput {
            name: self.name.clone(),
            company: None,
            line1: self.line1.clone(),
            line2: optional(&self.line2),
            city: self.city.clone(),
            region: optional(&self.region),
            postal_code: self.postal_code.clone(),
            country: self.country.clone(),
            phone: optional(&self.phone),
        })
        .map_err(Problem::from)
    }

    fn email(&self) -> Result<Email, Problem> {
        self.email.parse().map_err(Problem::from)
    }

    fn shipping_quote(&self) -> Result<ShippingQuote, Problem> {
        serde_json::from_str(&self.shipping).map_err(|_| {
            Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "shipping_required",
                "Choose a shipping method.",
            )
        })
    }

    fn delivery(&self) -> Result<Delivery, Problem> {
        Ok(Delivery {
            email: self.email()?,
            shipping_address: self.address()?,
            billing_address: None,
            shipping: Some(self.shipping_quote()?),
        })
    }

    /// The contact and address as hidden fields, for the next step's form.
    fn hidden(&self, with_shipping: bool) -> String {
        let mut fields = vec![
            ("email", &self.email),
            ("name", &self.name),
            ("line1", &self.line1),
            ("line2", &self.line2),
            ("city", &self.city),
            ("region", &self.region),
            ("postal_code", &self.postal_code),
            ("country", &self.country),
            ("phone", &self.phone),
        ];
        if with_shipping {
            fields.push(("shipping", &self.shipping));
        }
        fields
            .into_iter()
            .map(|(name, value)| {
                format!(
                    r#"<input type="hidden" name="{name}" value="{}">"#,
                    esc(value)
                )
            })
            .collect()
    }
}

// ----- pages -----

fn address_form(session: &Session, form: &CheckoutForm, problem: Option<&Problem>) -> String {
    let email = if form.email.is_empty() {
        session.email.clone().unwrap_or_default()
    } else {
        form.email.clone()
    };
    let countries: String = COUNTRIES
        .iter()
        .map(|(code, name)| {
            let selected = if form.country == *code {
                " selected"
            } else {
                ""
            };
            format!(r#"<option value="{code}"{selected}>{name}</option>"#)
        })
        .collect();
    let field = |id: &str, label: &str, value: &str, required: bool| {
        format!(
            r#"<p><label>{label} <input id="{id}" name="{id}" value="{}" maxlength="200"{}></label></p>"#,
            esc(value),
            if required { " required" } else { "" }
        )
    };
    let notice = problem.map_or(String::new(), |p| {
        format!(
            r#"<p class="problem" data-code="{}">{}</p>"#,
            p.code,
            esc(&p.message)
        )
    });
    format!(
        r#"<h1>Checkout: delivery</h1>{notice}
<form id="delivery" method="post" action="/checkout/shipping">
<p><label>E-mail <input id="email" name="email" type="email" value="{}" required maxlength="254"></label></p>
{}{}{}{}
<p><label>State or province <input id="region" name="region" value="{}" maxlength="16" placeholder="TX"></label></p>
{}
<p><label>Country <select id="country" name="country">{countries}</select></label></p>
{}
<p><button id="to-shipping">Continue to shipping</button></p></form>"#,
        esc(&email),
        field("name", "Full name", &form.name, true),
        field("line1", "Address", &form.line1, true),
        field("line2", "Address line 2", &form.line2, false),
        field("city", "City", &form.city, true),
        esc(&form.region),
        field("postal_code", "ZIP or postal code", &form.postal_code, true),
        field("phone", "Phone (for the carrier)", &form.phone, false),
    )
}

/// Step 1: contact and address.
pub(crate) async fn delivery_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Html<String>, PageError> {
    let cart = api::session_cart(&state.shop, &session).await?;
    if cart.lines.is_empty() {
        return Ok(Html(page(
            "Checkout",
            &session,
            r#"<h1>Checkout</h1><p id="empty-cart">Your cart is empty. <a href="/">Keep shopping</a></p>"#,
        )));
    }
    // A signed-in customer starts from the address they used last.
    let saved = match &session.email {
        Some(_) => state.shop.addresses(session.customer).await?,
        None => Vec::new(),
    };
    let form = match saved.first() {
        Some(saved) => {
            let a = saved.address.to_input();
            CheckoutForm {
                name: a.name,
                line1: a.line1,
                line2: a.line2.unwrap_or_default(),
                city: a.city,
                region: a
                    .region
                    .map(|r| r.split_once('-').map_or(r.clone(), |(_, r)| r.to_owned()))
                    .unwrap_or_default(),
                postal_code: a.postal_code,
                country: a.country,
                phone: a.phone.unwrap_or_default(),
                ..CheckoutForm::default()
            }
        }
        None => CheckoutForm {
            country: "US".into(),
            ..CheckoutForm::default()
        },
    };
    Ok(Html(page(
        "Checkout",
        &session,
        &address_form(&session, &form, None),
    )))
}

/// Step 2: the shipping methods for the address (or the address form again, saying what is
/// wrong with it).
pub(crate) async fn shipping_page(
    State(state): State<AppState>,
    session: Session,
    PageForm(form): PageForm<CheckoutForm>,
) -> Result<Response, PageError> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    let address = match form.email().and_then(|_| form.address()) {
        Ok(address) => address,
        Err(problem) => {
            let body = address_form(&session, &form, Some(&problem));
            return Ok((problem.status, Html(page("Checkout", &session, &body))).into_response());
        }
    };
    let quotes = match state.shop.shipping_quotes(cart, &address).await {
        Ok(quotes) if !quotes.is_empty() => quotes,
        Ok(_) => {
            let problem = Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "no_shipping",
                "No shipping method can take this cart to this address.",
            );
            let body = address_form(&session, &form, Some(&problem));
            return Ok((problem.status, Html(page("Checkout", &session, &body))).into_response());
        }
        Err(e) => {
            let problem = Problem::from(e);
            if problem.status.is_server_error() {
                return Err(problem.into());
            }
            let body = address_form(&session, &form, Some(&problem));
            return Ok((problem.status, Html(page("Checkout", &session, &body))).into_response());
        }
    };
    let options: String = quotes
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let json = serde_json::to_string(q).expect("quotes serialize");
            format!(
                r#"<label class="shipping-option"><input type="radio" name="shipping" id="shipping-{}" value="{}"{}> {} <span class="price">{}</span></label><br>"#,
                esc(&q.method),
                esc(&json),
                if i == 0 { " checked" } else { "" },
                esc(&q.name),
                esc(&q.amount.to_string())
            )
        })
        .collect();
    let body = format!(
        r#"<h1>Checkout: shipping</h1><p>To:</p><pre id="ship-to">{}</pre>
<form id="shipping" method="post" action="/checkout/review">{}<fieldset><legend>Shipping method</legend>{options}</fieldset>
<p><button id="to-review">Review the order</button></p></form>"#,
        esc(&address.to_string()),
        form.hidden(false)
    );
    Ok(Html(page("Checkout", &session, &body)).into_response())
}

/// A discount as negative money: `−3.00 USD`.
pub(crate) fn minus(m: &Money) -> String {
    format!("−{m}")
}

/// A promotion's name and, when it came with one, its code, as HTML.
pub(crate) fn promotion_label(name: &str, code: Option<&CouponCode>) -> String {
    match code {
        Some(code) => format!(
            r#"{} <span class="code">{}</span>"#,
            esc(name),
            esc(code.as_str())
        ),
        None => esc(name),
    }
}

/// The codes a trace says do not apply, each with why, as a list (empty when every code
/// applies).
pub(crate) fn codes_not_applied(trace: &[Trace]) -> String {
    let items: String = trace
        .iter()
        .filter_map(|t| Some((t.code.as_ref()?, t.not_applied.as_ref()?, t)))
        .map(|(code, why, t)| {
            format!(
                r#"<li class="code-not-applied" data-code="{}">{} does not apply: {}.</li>"#,
                esc(code.as_str()),
                promotion_label(&t.name, Some(code)),
                esc(&crate::promotions::reason(why, trace))
            )
        })
        .collect();
    if items.is_empty() {
        String::new()
    } else {
        format!(r#"<ul id="codes-not-applied">{items}</ul>"#)
    }
}

/// A quote as a table: the lines and the shipping (price, discount, net, tax, total), the
/// taxes by rate, then the sums as the shopper checks them: the subtotal, each promotion
/// applied (with its code), the shipping, the tax and the total
/// (`subtotal − discounts + shipping + tax = total`, prices being tax-exclusive).
pub(crate) fn quote_table(quote: &Quote, titles: &dyn Fn(&str) -> String) -> String {
    let discount = |m: &Money| {
        if m.amount.is_zero() {
            String::new()
        } else {
            esc(&minus(m))
        }
    };
    let mut rows = String::new();
    for line in &quote.lines {
        rows.push_str(&format!(
            r#"<tr class="quote-line"><td>{}</td><td>{}</td><td>{}</td><td class="discount">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&titles(line.sku.as_str())),
            line.quantity,
            esc(&line.amount.to_string()),
            discount(&line.discount),
            esc(&line.net.to_string()),
            esc(&line.tax.to_string()),
            esc(&line.total.to_string())
        ));
    }
    if let Some(s) = &quote.shipping {
        rows.push_str(&format!(
            r#"<tr id="quote-shipping"><td>Shipping: {}</td><td></td><td>{}</td><td class="discount">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
            esc(&s.name),
            esc(&s.amount.to_string()),
            discount(&s.discount),
            esc(&s.net.to_string()),
            esc(&s.tax.to_string()),
            esc(&s.total.to_string())
        ));
    }
    let taxes: String = quote
        .taxes
        .iter()
        .filter(|t| !t.tax.amount.is_zero())
        .map(|t| {
            format!(
                r#"<tr class="quote-tax"><td colspan="5">{} ({}%) on {}</td><td>{}</td><td></td></tr>"#,
                esc(&t.name),
                (t.rate * Decimal::ONE_HUNDRED).normalize(),
                esc(&t.base.to_string()),
                esc(&t.tax.to_string())
            )
        })
        .collect();
    let promotions: String = quote
        .promotions
        .iter()
        .map(|a| {
            let on_shipping = if a.shipping.amount.is_zero() {
                ""
            } else {
                r#" <span class="muted">(on shipping)</span>"#
            };
            format!(
                r#"<tr class="quote-discount" data-promotion="{}"><td colspan="6">{}{on_shipping}</td><td>{}</td></tr>"#,
                esc(a.promotion.as_str()),
                promotion_label(&a.name, a.code.as_ref()),
                esc(&minus(&a.amount))
            )
        })
        .collect();
    let shipping = quote.shipping.as_ref().map_or(String::new(), |s| {
        format!(
            r#"<tr><td colspan="6">Shipping: {}</td><td id="quote-shipping-amount">{}</td></tr>"#,
            esc(&s.name),
            esc(&s.amount.to_string())
        )
    });
    let savings = if quote.discount_total.amount.is_zero() {
        String::new()
    } else {
        format!(
            r#"<tr><td colspan="6" class="muted">You save</td><td id="quote-savings" class="muted">{}</td></tr>"#,
            esc(&quote.discount_total.to_string())
        )
    };
    format!(
        r#"<table id="quote"><tr><th>Item</th><th>Quantity</th><th>Price</th><th>Discount</th><th>Net</th><th>Tax</th><th>Total</th></tr>{rows}{taxes}
<tr><td colspan="6">Subtotal</td><td id="quote-subtotal">{}</td></tr>{promotions}{shipping}
<tr><td colspan="6"><strong>Tax</strong></td><td id="quote-tax">{}</td></tr>
<tr><td colspan="6"><strong>Total</strong></td><td id="quote-total" class="price">{}</td></tr>{savings}</table>"#,
        esc(&quote.subtotal.to_string()),
        esc(&quote.tax_total.to_string()),
        esc(&quote.total.to_string())
    )
}

async fn review_body(
    state: &AppState,
    session: &Session,
    form: &CheckoutForm,
    notice: &str,
) -> Result<String, Problem> {
    let cart = api::session_cart(&state.shop, session).await?;
    let delivery = form.delivery()?;
    let quote = state.shop.quote(cart.id, Some(&delivery)).await?;
    let titles = |sku: &str| {
        cart.lines
            .iter()
            .find(|l| l.sku.as_str() == sku)
            .map_or_else(|| sku.to_owned(), |l| l.title.clone())
    };
    // One key per rendering of the form: pressing "Pay" twice places one order.
    let key = uuid::Uuid::new_v4();
    Ok(format!(
        r#"<h1>Checkout: review</h1>{notice}<p>Ship to:</p><pre id="ship-to">{}</pre><p>Confirmation to <span id="contact">{}</span></p>{}{}
<p class="muted">Discount codes are added and removed <a href="/cart">in your cart</a>.</p>
<form id="checkout" method="post" action="/checkout">{}<input type="hidden" name="quote_hash" value="{}"><input type="hidden" name="idempotency_key" value="{key}">
<fieldset><legend>Pay with a test card</legend>
<label><input type="radio" name="payment_method" value="tok_approve" checked> Approved card</label><br>
<label><input type="radio" name="payment_method" value="tok_pending"> Card with 3-D Secure</label><br>
<label><input type="radio" name="payment_method" value="tok_decline"> Declined card</label>
</fieldset><p><button id="pay">Pay {}</button></p></form>"#,
        esc(&delivery.shipping_address.to_string()),
        esc(delivery.email.as_str()),
        quote_table(&quote, &titles),
        codes_not_applied(&quote.promotion_trace),
        form.hidden(true),
        esc(&quote.hash),
        esc(&quote.total.to_string()),
    ))
}

/// Step 3: the whole price, to the cent, and the Pay button. With `remove_code`, the code is
/// taken off the cart first (the shopper chose to pay without a code that ran out).
pub(crate) async fn review_page(
    State(state): State<AppState>,
    session: Session,
    PageForm(form): PageForm<CheckoutForm>,
) -> Result<Html<String>, PageError> {
    if !form.remove_code.is_empty() {
        let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
        state
            .shop
            .remove_coupon(cart, &form.remove_code)
            .await
            .map_err(Problem::of_cart_change)?;
    }
    let body = review_body(&state, &session, &form, "").await?;
    Ok(Html(page("Checkout", &session, &body)))
}

/// Step 4: pays the reviewed quote; a price that moved since is shown again for review.
/// A pending payment goes to the bank, anything else to the order page.
pub(crate) async fn pay(
    State(state): State<AppState>,
    mut session: Session,
    PageForm(form): PageForm<CheckoutForm>,
) -> Result<Response, PageError> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    let payment_method = PaymentMethod::new(&form.payment_method).map_err(Problem::from)?;
    let key = IdempotencyKey::new(&form.idempotency_key).map_err(Problem::from)?;
    let delivery = form.delivery()?;
    // The reviewed quote, if it still holds: the saga checks it once more.
    let accepted = match state.shop.quote(cart, Some(&delivery)).await {
        Ok(quote) if quote.hash == form.quote_hash => Some(quote),
        Ok(_) => {
            let notice = r#"<p class="problem" data-code="quote_changed">The price changed since you reviewed it. Nothing was charged; please check the new total.</p>"#;
            let body = review_body(&state, &session, &form, notice).await?;
            return Ok((
                StatusCode::CONFLICT,
                Html(page("Checkout", &session, &body)),
            )
                .into_response());
        }
        // A retry of a checkout that already went through: the saga answers it.
        Err(_) => None,
    };
    let address = delivery.shipping_address.clone();
    let placed = match api::place_order(
        &state,
        &mut session,
        payment_method,
        key,
        Some(delivery),
        accepted,
        // The page shows the price without a promotion that ran out before charging it.
        false,
    )
    .await
    {
        Ok(placed) => {
            remember(&state, &session, address).await;
            placed
        }
        // Another tab is paying for this cart, or paid it: show that order.
        Err(Problem {
            order: Some(order), ..
        }) => return Ok(Redirect::to(&format!("/orders/{order}")).into_response()),
        // A code's last use went to another order: nothing was charged; offer to review
        // the price without it.
        Err(problem) if problem.code == "promotion_exhausted" => {
            let notice = exhausted_notice(&problem, &form);
            let body = review_body(&state, &session, &form, &notice).await?;
            return Ok((problem.status, Html(page("Checkout", &session, &body))).into_response());
        }
        Err(problem) => return Err(problem.into()),
    };
    Ok(Redirect::to(&after_payment(&placed)).into_response())
}

/// What the review says when a promotion ran out at Pay: the problem, and for a code a
/// button that takes it off the cart and shows the price without it.
fn exhausted_notice(problem: &Problem, form: &CheckoutForm) -> String {
    let code = problem
        .detail
        .as_ref()
        .and_then(|d| d["code"].as_str())
        .map(str::to_owned);
    let remove = code.map_or(String::new(), |code| {
        format!(
            r#"<form method="post" action="/checkout/review">{}<input type="hidden" name="remove_code" value="{code}"><button id="remove-exhausted-code">Remove {code} and review the new total</button></form>"#,
            form.hidden(true),
            code = esc(&code)
        )
    });
    format!(
        r#"<div class="problem" data-code="{}"><p>{}</p>{remove}</div>"#,
        problem.code,
        esc(&problem.message)
    )
}

/// Keeps a signed-in customer's shipping address in their address book, for the next
/// checkout. A book that is full or unreachable only costs the convenience.
pub(crate) async fn remember(state: &AppState, session: &Session, address: Address) {
    if session.email.is_none() {
        return;
    }
    if let Err(e) = state.shop.save_address(session.customer, address).await {
        tracing::warn!(error = %e, "address not saved");
    }
}

/// The session customer's saved addresses, newest first.
pub(crate) async fn api_addresses(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<Vec<SavedAddress>>, ApiError> {
    Ok(Json(state.shop.addresses(session.customer).await?))
}

/// Removes one of the session customer's saved addresses (404 if it is not theirs).
pub(crate) async fn api_remove_address(
    State(state): State<AppState>,
    session: Session,
    ApiPath(id): ApiPath<AddressId>,
) -> Result<StatusCode, ApiError> {
    if state.shop.remove_address(session.customer, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(Problem::not_found("address").into())
    }
}

/// Where the shopper goes once the order is placed.
fn after_payment(placed: &Placed) -> String {
    let order = placed.order();
    match crate::pages::pending_payment(order) {
        Some(payment) => format!("/test-provider/3ds/{}", url(payment)),
        None => format!("/orders/{}", order.id),
    }
}

// ----- API -----

/// `{"address": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ShippingQuotesBody {
    pub(crate) address: AddressInput,
}

/// The shipping methods for the session's cart to an address, each a quote to pass back in
/// `delivery.shipping`.
pub(crate) async fn api_shipping_quotes(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<ShippingQuotesBody>,
) -> Result<Json<Vec<ShippingQuote>>, ApiError> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    let address = Address::new(body.address).map_err(Problem::from)?;
    Ok(Json(state.shop.shipping_quotes(cart, &address).await?))
}

/// `{"delivery": {...}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuoteBody {
    pub(crate) delivery: Delivery,
}

/// The price quote of the session's cart for a delivery: pass it back as `accepted_quote`.
pub(crate) async fn api_quote(
    State(state): State<AppState>,
    session: Session,
    ApiJson(body): ApiJson<QuoteBody>,
) -> Result<Json<Quote>, ApiError> {
    let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
    Ok(Json(state.shop.quote(cart, Some(&body.delivery)).await?))
}

/// Builds the request `place_order` takes.
pub(crate) fn request(
    session: &Session,
    cart: ecommerce::id::CartId,
    payment_method: PaymentMethod,
    idempotency_key: IdempotencyKey,
    delivery: Option<Delivery>,
    accepted_quote: Option<Quote>,
    without_exhausted_promotions: bool,
) -> CheckoutRequest {
    CheckoutRequest {
        cart,
        customer: session.customer,
        payment_method,
        idempotency_key,
        delivery,
        accepted_quote,
        without_exhausted_promotions,
    }
}
