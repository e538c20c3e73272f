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
use axum::response::{IntoResponse, Redirect, Response};
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
use maud::{Markup, html};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::api;
use crate::app::AppState;
use crate::error::{ApiError, ApiJson, ApiPath, PageError, PageForm, Problem};
use crate::html::{encoded, page};
use crate::pages::empty_cart;
use crate::session::Session;

/// Countries the shop ships to, as the address form offers them.
const COUNTRIES: [(&str, &str); 2] = [("US", "United States"), ("CA", "Canada")];

fn usd(cents: i64) -> Money {
    Money::from_minor(cents, Currency::USD)
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
    builder
        .shipping(Arc::new(zones()))
        .tax(Arc::new(taxes()))
        // Promotions saved in this shop's admin apply at once; the automatic ones are not
        // read again for every quote and Pay (their limits are always checked at Pay).
        .config(
            ecommerce::storefront::StorefrontConfig::default()
                .with_promotion_cache_ttl(std::time::Duration::from_secs(5)),
        )
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
        Ok(Delivery::new(self.email()?, self.address()?).with_shipping(self.shipping_quote()?))
    }

    /// The contact and address as hidden fields, for the next step's form.
    fn hidden(&self, with_shipping: bool) -> Markup {
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
        html! {
            @for (name, value) in fields {
                input type="hidden" name=(name) value=(value);
            }
        }
    }
}

// ----- pages -----

/// A labelled text field of the address form, named and identified by `id`.
fn field(id: &str, label: &str, value: &str, required: bool) -> Markup {
    html! {
        p {
            label {
                (label) " "
                input id=(id) name=(id) value=(value) maxlength="200" required[required];
            }
        }
    }
}

/// A problem with what the shopper sent, above the form that sends it again.
fn problem_notice(problem: &Problem) -> Markup {
    html! {
        p.problem data-code=(problem.code) { (problem.message) }
    }
}

fn address_form(session: &Session, form: &CheckoutForm, problem: Option<&Problem>) -> Markup {
    let email = if form.email.is_empty() {
        session.email.as_deref().unwrap_or_default()
    } else {
        &form.email
    };
    html! {
        h1 { "Checkout: delivery" }
        @if let Some(problem) = problem { (problem_notice(problem)) }
        form #delivery method="post" action="/checkout/shipping" {
            p {
                label {
                    "E-mail "
                    input #email name="email" type="email" value=(email) required maxlength="254";
                }
            }
            (field("name", "Full name", &form.name, true))
            (field("line1", "Address", &form.line1, true))
            (field("line2", "Address line 2", &form.line2, false))
            (field("city", "City", &form.city, true))
            p {
                label {
                    "State or province "
                    input #region name="region" value=(form.region) maxlength="16"
                        placeholder="TX";
                }
            }
            (field("postal_code", "ZIP or postal code", &form.postal_code, true))
            p {
                label {
                    "Country "
                    select #country name="country" {
                        @for (code, name) in COUNTRIES {
                            option value=(code) selected[form.country == code] { (name) }
                        }
                    }
                }
            }
            (field("phone", "Phone (for the carrier)", &form.phone, false))
            p { button #to-shipping { "Continue to shipping" } }
        }
    }
}

/// Step 1: contact and address.
pub(crate) async fn delivery_page(
    State(state): State<AppState>,
    session: Session,
) -> Result<Markup, PageError> {
    let cart = api::session_cart(&state.shop, &session).await?;
    if cart.lines.is_empty() {
        return Ok(page("Checkout", &session, empty_cart("Checkout")));
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
    Ok(page(
        "Checkout",
        &session,
        address_form(&session, &form, None),
    ))
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
            return Ok((problem.status, page("Checkout", &session, body)).into_response());
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
            return Ok((problem.status, page("Checkout", &session, body)).into_response());
        }
        Err(e) => {
            let problem = Problem::from(e);
            if problem.status.is_server_error() {
                return Err(problem.into());
            }
            let body = address_form(&session, &form, Some(&problem));
            return Ok((problem.status, page("Checkout", &session, body)).into_response());
        }
    };
    let body = html! {
        h1 { "Checkout: shipping" }
        p { "To:" }
        pre #ship-to { (address) }
        form #shipping method="post" action="/checkout/review" {
            (form.hidden(false))
            fieldset {
                legend { "Shipping method" }
                @for (i, q) in quotes.iter().enumerate() {
                    label.shipping-option {
                        input type="radio" name="shipping" id={ "shipping-" (q.method) }
                            value=(serde_json::to_string(q).expect("quotes serialize"))
                            checked[i == 0];
                        " " (q.name) " "
                        span.price { (q.amount) }
                    }
                    br;
                }
            }
            p { button #to-review { "Review the order" } }
        }
    };
    Ok(page("Checkout", &session, body).into_response())
}

/// A discount as negative money: `−3.00 USD`.
pub(crate) fn minus(m: &Money) -> String {
    format!("−{m}")
}

/// A promotion's name and, when it came with one, its code.
pub(crate) fn promotion_label(name: &str, code: Option<&CouponCode>) -> Markup {
    html! {
        (name)
        @if let Some(code) = code {
            " "
            span.code { (code.as_str()) }
        }
    }
}

/// The codes a trace says do not apply, each with why, as a list (nothing when every code
/// applies).
pub(crate) fn codes_not_applied(trace: &[Trace]) -> Markup {
    let items: Vec<_> = trace
        .iter()
        .filter_map(|t| Some((t.code.as_ref()?, t.not_applied.as_ref()?, t)))
        .collect();
    html! {
        @if !items.is_empty() {
            ul #codes-not-applied {
                @for (code, why, t) in items {
                    li.code-not-applied data-code=(code.as_str()) {
                        (promotion_label(&t.name, Some(code)))
                        " does not apply: " (crate::promotions::reason(why, trace)) "."
                    }
                }
            }
        }
    }
}

/// A quote as a table: the lines and the shipping (price, discount, net, tax, total), the
/// taxes by rate, then the sums as the shopper checks them: the subtotal, each promotion
/// applied (with its code), the shipping, the tax and the total
/// (`subtotal − discounts + shipping + tax = total`, prices being tax-exclusive).
pub(crate) fn quote_table(quote: &Quote, titles: &dyn Fn(&str) -> String) -> Markup {
    let discount = |m: &Money| {
        html! {
            @if !m.amount.is_zero() { (minus(m)) }
        }
    };
    html! {
        table #quote {
            tr {
                th { "Item" } th { "Quantity" } th { "Price" } th { "Discount" } th { "Net" }
                th { "Tax" } th { "Total" }
            }
            @for line in &quote.lines {
                tr.quote-line {
                    td { (titles(line.sku.as_str())) }
                    td { (line.quantity) }
                    td { (line.amount) }
                    td.discount { (discount(&line.discount)) }
                    td { (line.net) }
                    td { (line.tax) }
                    td { (line.total) }
                }
            }
            @if let Some(s) = &quote.shipping {
                tr #quote-shipping {
                    td { "Shipping: " (s.name) }
                    td {}
                    td { (s.amount) }
                    td.discount { (discount(&s.discount)) }
                    td { (s.net) }
                    td { (s.tax) }
                    td { (s.total) }
                }
            }
            @for t in quote.taxes.iter().filter(|t| !t.tax.amount.is_zero()) {
                tr.quote-tax {
                    td colspan="5" {
                        (t.name) " (" ((t.rate * Decimal::ONE_HUNDRED).normalize()) "%) on "
                        (t.base)
                    }
                    td { (t.tax) }
                    td {}
                }
            }
            tr {
                td colspan="6" { "Subtotal" }
                td #quote-subtotal { (quote.subtotal) }
            }
            @for a in &quote.promotions {
                tr.quote-discount data-promotion=(a.promotion.as_str()) {
                    td colspan="6" {
                        (promotion_label(&a.name, a.code.as_ref()))
                        @if !a.shipping.amount.is_zero() {
                            " "
                            span.muted { "(on shipping)" }
                        }
                    }
                    td { (minus(&a.amount)) }
                }
            }
            @if let Some(s) = &quote.shipping {
                tr {
                    td colspan="6" { "Shipping: " (s.name) }
                    td #quote-shipping-amount { (s.amount) }
                }
            }
            tr {
                td colspan="6" { strong { "Tax" } }
                td #quote-tax { (quote.tax_total) }
            }
            tr {
                td colspan="6" { strong { "Total" } }
                td #quote-total.price { (quote.total) }
            }
            @if !quote.discount_total.amount.is_zero() {
                tr {
                    td.muted colspan="6" { "You save" }
                    td #quote-savings.muted { (quote.discount_total) }
                }
            }
        }
    }
}

/// The review step's body: where the order goes, the quote, and the Pay form. `notice` (a
/// price that moved, a promotion that ran out) is shown above it.
async fn review_body(
    state: &AppState,
    session: &Session,
    form: &CheckoutForm,
    notice: Option<Markup>,
) -> Result<Markup, Problem> {
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
    let cards = [
        ("tok_approve", "Approved card"),
        ("tok_pending", "Card with 3-D Secure"),
        ("tok_decline", "Declined card"),
    ];
    Ok(html! {
        h1 { "Checkout: review" }
        @if let Some(notice) = notice { (notice) }
        p { "Ship to:" }
        pre #ship-to { (delivery.shipping_address) }
        p { "Confirmation to " span #contact { (delivery.email.as_str()) } }
        (quote_table(&quote, &titles))
        (codes_not_applied(&quote.promotion_trace))
        p.muted { "Discount codes are added and removed " a href="/cart" { "in your cart" } "." }
        form #checkout method="post" action="/checkout" {
            (form.hidden(true))
            input type="hidden" name="quote_hash" value=(quote.hash);
            input type="hidden" name="idempotency_key" value=(key);
            fieldset {
                legend { "Pay with a test card" }
                @for (i, (token, label)) in cards.iter().enumerate() {
                    @if i > 0 { br; }
                    label {
                        input type="radio" name="payment_method" value=(token) checked[i == 0];
                        " " (label)
                    }
                }
            }
            p { button #pay { "Pay " (quote.total) } }
        }
    })
}

/// Step 3: the whole price, to the cent, and the Pay button. With `remove_code`, the code is
/// taken off the cart first (the shopper chose to pay without a code that ran out).
pub(crate) async fn review_page(
    State(state): State<AppState>,
    session: Session,
    PageForm(form): PageForm<CheckoutForm>,
) -> Result<Markup, PageError> {
    if !form.remove_code.is_empty() {
        let cart = session.cart.ok_or_else(|| Problem::not_found("cart"))?;
        state
            .shop
            .remove_coupon(cart, &form.remove_code)
            .await
            .map_err(Problem::of_cart_change)?;
    }
    let body = review_body(&state, &session, &form, None).await?;
    Ok(page("Checkout", &session, body))
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
            let notice = html! {
                p.problem data-code="quote_changed" {
                    "The price changed since you reviewed it. Nothing was charged; please check the new total."
                }
            };
            let body = review_body(&state, &session, &form, Some(notice)).await?;
            return Ok((StatusCode::CONFLICT, page("Checkout", &session, body)).into_response());
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
            let body = review_body(&state, &session, &form, Some(notice)).await?;
            return Ok((problem.status, page("Checkout", &session, body)).into_response());
        }
        Err(problem) => return Err(problem.into()),
    };
    Ok(Redirect::to(&after_payment(&placed)).into_response())
}

/// What the review says when a promotion ran out at Pay: the problem, and for a code a
/// button that takes it off the cart and shows the price without it.
fn exhausted_notice(problem: &Problem, form: &CheckoutForm) -> Markup {
    let code = problem.detail.as_ref().and_then(|d| d["code"].as_str());
    html! {
        div.problem data-code=(problem.code) {
            p { (problem.message) }
            @if let Some(code) = code {
                form method="post" action="/checkout/review" {
                    (form.hidden(true))
                    input type="hidden" name="remove_code" value=(code);
                    button #remove-exhausted-code { "Remove " (code) " and review the new total" }
                }
            }
        }
    }
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
        Some(payment) => format!("/test-provider/3ds/{}", encoded(payment)),
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
    let mut request = CheckoutRequest::new(cart, session.customer, payment_method, idempotency_key)
        .without_exhausted_promotions(without_exhausted_promotions);
    request.delivery = delivery;
    request.accepted_quote = accepted_quote;
    request
}
