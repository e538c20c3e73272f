//! Page layout, URLs and product images. Pages are [maud](https://maud.lambda.xyz/) markup:
//! every piece of text spliced into them (from the catalog, a shopper or a URL) is escaped by
//! the `html!` macro, and text that goes into a URL is percent-encoded with [`encoded`] first.

use ecommerce::catalog::Product;
use ecommerce::id::ProductId;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, PercentEncode, utf8_percent_encode};

use crate::session::Session;

/// What a URL path segment or query value keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Text percent-encoded for a URL path segment or query value.
pub(crate) fn encoded(text: &str) -> PercentEncode<'_> {
    utf8_percent_encode(text, UNRESERVED)
}

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#1f3a5f;color:#fff;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center;flex-wrap:wrap}
header a{color:#fff;text-decoration:none}
header form{flex:1;display:flex;gap:.4em}
header input[type=search]{flex:1;padding:.4em;min-width:12em}
main{max-width:60em;margin:1.2em auto;padding:0 1em}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(13em,1fr));gap:1em}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8em}
.card>a{display:block}
.thumb{display:block;width:100%;height:auto;border-radius:4px;margin-bottom:.4em}
.product-head{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start;margin-bottom:1em}
.product-head>div{flex:1;min-width:16em}
.product-image{width:20em;max-width:100%;height:auto;border-radius:6px;border:1px solid #ddd}
.line-item{display:flex;gap:.6em;align-items:center}
.cart-thumb{width:4em;height:3em;border-radius:3px;border:1px solid #ddd}
.price{font-weight:600}
.muted{color:#777}
.facets{display:flex;gap:2em;flex-wrap:wrap;font-size:.9em}
table{border-collapse:collapse;width:100%;background:#fff}
td,th{border-bottom:1px solid #ddd;padding:.4em;text-align:left}
.problem,.notice{background:#fff3f3;border:1px solid #e0b4b4;padding:1em;border-radius:6px}
.notice{background:#f3fff3;border-color:#b4e0b4}
button{padding:.4em .9em;cursor:pointer}
form.inline{display:inline}
.code{font-family:ui-monospace,monospace;background:#eef;padding:0 .3em;border-radius:3px}
.discount{color:#176b2c}
"#;

/// A page with the shop's header: search with suggestions, categories, cart, orders and the
/// sign-in state.
pub(crate) fn page(title: &str, session: &Session, body: Markup) -> Markup {
    bare_page(
        title,
        html! {
            header {
                a href="/" { strong { "Demo Shop" } }
                form action="/search" method="get" role="search" {
                    input #q type="search" name="q" placeholder="Search products"
                        list="suggestions" autocomplete="off" maxlength="200";
                    datalist #suggestions {}
                    button #search-button { "Search" }
                }
                a #cart-link href="/cart" { "Cart" }
                " "
                a #orders-link href="/orders" { "Orders" }
                " "
                @match &session.email {
                    Some(email) => {
                        span #account { (email) }
                        form method="post" action="/signout" {
                            button #signout { "Sign out" }
                        }
                    }
                    None => a #signin-link href="/signin" { "Sign in" },
                }
            }
            main { (body) }
        },
    )
}

/// A page without the header (errors, the test bank).
pub(crate) fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width,initial-scale=1";
                title { (title) " · Demo Shop" }
                style { (PreEscaped(STYLE)) }
                script src="/static/shop.js" defer {}
            }
            body { (body) }
        }
    }
}

/// The script behind the search box: as-you-type suggestions from `/api/suggest`.
pub(crate) const SCRIPT: &str = r#"
document.addEventListener('DOMContentLoaded', () => {
  const q = document.getElementById('q');
  const list = document.getElementById('suggestions');
  if (!q || !list) return;
  let pending;
  q.addEventListener('input', () => {
    clearTimeout(pending);
    pending = setTimeout(async () => {
      if (q.value.trim().length < 2) { list.replaceChildren(); return; }
      const res = await fetch('/api/suggest?q=' + encodeURIComponent(q.value));
      if (!res.ok) return;
      const titles = await res.json();
      list.replaceChildren(...titles.map(t => { const o = document.createElement('option'); o.value = t; return o; }));
    }, 120);
  });
});
"#;

// ----- product images -----

/// Where a product's image is served ([`product_image`]).
fn image_url(product: ProductId) -> String {
    format!("/images/products/{product}.svg")
}

/// A product image's width, in pixels.
const IMAGE_WIDTH: u32 = 400;
/// A product image's height, in pixels.
const IMAGE_HEIGHT: u32 = 300;

/// Background and accent colours; a category always gets the same pair.
const PALETTE: [(&str, &str); 8] = [
    ("#e8f1fb", "#2f6db5"),
    ("#fdf0e6", "#d9711c"),
    ("#eaf7ee", "#2e8b57"),
    ("#f7ebf5", "#a23b8f"),
    ("#fff8e1", "#c79a00"),
    ("#e9f6f7", "#1f8a94"),
    ("#f1edfb", "#6a4fc1"),
    ("#fbeaea", "#c0392b"),
];

/// Longest title an image shows, in characters; a longer one is cut with an ellipsis.
const IMAGE_TITLE_CHARS: usize = 24;

/// FNV-1a: a hash that stays the same across runs, builds and platforms, so an image never
/// changes unless its product does.
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Text for an image: without control characters (which XML does not allow), at most `max`
/// characters, cut with an ellipsis.
fn image_text(text: &str, max: usize) -> String {
    let clean: String = text.chars().filter(|c| !c.is_control()).collect();
    let clean: Vec<char> = clean.trim().chars().collect();
    if clean.len() <= max {
        clean.into_iter().collect()
    } else {
        let mut cut: String = clean[..max.saturating_sub(1)].iter().collect();
        cut.truncate(cut.trim_end().len());
        cut.push('…');
        cut
    }
}

/// A product's image as an SVG document, drawn from the product alone: the background and
/// accent colours from its category, one of four shapes from its id with the title's
/// initial on it, its brand above and its title (shortened) below. The same product always
/// gives the same bytes; its text is escaped like any page's.
pub(crate) fn product_image(product: &Product) -> Markup {
    let (background, accent) =
        PALETTE[(stable_hash(product.category.as_str()) % PALETTE.len() as u64) as usize];
    let (cx, cy) = (IMAGE_WIDTH / 2, 135);
    let shape = stable_hash(&product.id.to_string()) % 4;
    // A triangle is widest low down: its letter sits lower.
    let baseline = if shape == 2 { cy + 45 } else { cy + 20 };
    let initial: String = product
        .title
        .chars()
        .find(|c| c.is_alphanumeric())
        .into_iter()
        .flat_map(char::to_uppercase)
        .collect();
    let label = format!("{}: {}", product.brand, product.title);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(IMAGE_WIDTH) height=(IMAGE_HEIGHT)
            viewBox={ "0 0 " (IMAGE_WIDTH) " " (IMAGE_HEIGHT) } role="img" {
            title { (image_text(&label, 300)) }
            rect width=(IMAGE_WIDTH) height=(IMAGE_HEIGHT) fill=(background) {}
            @match shape {
                0 => circle cx=(cx) cy=(cy) r="70" fill=(accent) {},
                1 => rect x=(cx - 65) y=(cy - 65) width="130" height="130" rx="18" fill=(accent) {},
                2 => polygon points={ (cx) "," (cy - 75) " " (cx + 80) "," (cy + 60) " " (cx - 80) "," (cy + 60) } fill=(accent) {},
                _ => polygon points={ (cx) "," (cy - 75) " " (cx + 75) "," (cy) " " (cx) "," (cy + 75) " " (cx - 75) "," (cy) } fill=(accent) {},
            }
            text x=(cx) y=(baseline) text-anchor="middle" font-family="system-ui, sans-serif"
                font-size="54" font-weight="700" fill="#ffffff" { (initial) }
            text x=(cx) y="38" text-anchor="middle" font-family="system-ui, sans-serif"
                font-size="18" fill="#555555" { (image_text(&product.brand, 32)) }
            text x=(cx) y="262" text-anchor="middle" font-family="system-ui, sans-serif"
                font-size="22" font-weight="600" fill="#222222" {
                (image_text(&product.title, IMAGE_TITLE_CHARS))
            }
        }
    }
}

/// A product's image on a page. `alt` is empty where the title is written beside it (cards,
/// cart lines), which makes the image decorative there.
pub(crate) fn product_img(product: ProductId, class: &str, alt: &str) -> Markup {
    html! {
        img class=(class) src=(image_url(product)) alt=(alt) width=(IMAGE_WIDTH)
            height=(IMAGE_HEIGHT) loading="lazy";
    }
}

#[cfg(test)]
mod tests {
    use ecommerce::catalog::Variant;
    use ecommerce::id::{CategoryId, Sku};
    use ecommerce::money::{Currency, Money};

    use super::*;

    fn product(title: &str, brand: &str) -> Product {
        Product::new(
            ProductId::from_uuid(uuid::Uuid::from_u128(7)),
            title,
            CategoryId::new("lamps").unwrap(),
        )
        .with_brand(brand)
        .with_variants([Variant::new(
            Sku::new("LAMP-1").unwrap(),
            Money::from_minor(1_000, Currency::USD),
        )])
        .with_created_at(chrono::DateTime::UNIX_EPOCH)
    }

    #[test]
    fn url_text_is_percent_encoded() {
        assert_eq!(
            encoded("a b&c=d/é~x.y-z_").to_string(),
            "a%20b%26c%3Dd%2F%C3%A9~x.y-z_"
        );
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = bare_page(r#"<a href="x">&"#, html! { p { ("<script>") } }).into_string();
        assert!(page.contains("<title>&lt;a href=&quot;x&quot;&gt;&amp; · Demo Shop</title>"));
        assert!(page.contains("<p>&lt;script&gt;</p>"));
    }

    #[test]
    fn product_images_are_deterministic_escaped_svg() {
        let lamp = product(
            "Desk <script>alert(1)</script> lamp with a very long name",
            "A&B",
        );
        let svg = product_image(&lamp).into_string();
        assert_eq!(svg, product_image(&lamp).into_string());
        assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg""#));
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
        assert!(svg.contains(">A&amp;B</text>"), "{svg}");
        assert!(svg.contains(r##"fill="#ffffff">D</text>"##), "{svg}");
        assert!(
            svg.contains("Desk &lt;script&gt;alert(1)&lt;/…</text>"),
            "{svg}"
        );
        // Another category, another colour.
        let mut other = lamp.clone();
        other.category = CategoryId::new("garden").unwrap();
        assert_ne!(svg, product_image(&other).into_string());
    }

    #[test]
    fn image_text_is_cut_and_cleaned() {
        assert_eq!(image_text("  short \u{7} ", 24), "short");
        assert_eq!(image_text("abcdef", 4), "abc…");
        assert_eq!(image_text("ab cdef", 4), "ab…");
        assert_eq!(image_text("éèêë", 4), "éèêë");
    }
}
