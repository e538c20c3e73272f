//! Page layout and escaping. Every piece of text that came from the catalog, a shopper or a URL
//! goes through [`esc`] before it reaches a page.

use crate::session::Session;

/// Escapes text for HTML content and attribute values.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a URL query value.
pub(crate) fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
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
pub(crate) fn page(title: &str, session: &Session, body: &str) -> String {
    let account = match &session.email {
        Some(email) => format!(
            r#"<span id="account">{}</span><form method="post" action="/signout"><button id="signout">Sign out</button></form>"#,
            esc(email)
        ),
        None => r#"<a id="signin-link" href="/signin">Sign in</a>"#.to_owned(),
    };
    let body = format!(
        r#"<header>
<a href="/"><strong>Demo Shop</strong></a>
<form action="/search" method="get" role="search"><input type="search" id="q" name="q" placeholder="Search products" list="suggestions" autocomplete="off" maxlength="200"><datalist id="suggestions"></datalist><button id="search-button">Search</button></form>
<a id="cart-link" href="/cart">Cart</a> <a id="orders-link" href="/orders">Orders</a> {account}
</header>
<main>{body}</main>"#
    );
    bare_page(title, &body)
}

/// A page without the header (errors).
pub(crate) fn bare_page(title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{} · Demo Shop</title><style>{STYLE}</style><script src="/static/shop.js" defer></script></head><body>{body}</body></html>"#,
        esc(title)
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_urls() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(url("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
