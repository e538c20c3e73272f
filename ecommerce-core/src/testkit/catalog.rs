//! Catalog checks: invalid products are refused and write nothing, a SKU belongs to one
//! product, and listings page through published products without gaps or repeats.

use super::{Backend, category, product, sku, usd};
use crate::catalog::Category;
use crate::error::CatalogError;
use crate::id::{CategoryId, ProductId};
use crate::money::Currency;

/// Invalid products get a typed error and write nothing.
pub async fn catalog_rejects_invalid_products_and_changes_nothing(backend: Backend) {
    let catalog = &backend.catalog;
    let mut bad = Vec::new();
    let mut p = product("", &[("CAT-1", 100)]);
    bad.push(p.clone());
    p.title = "x".repeat(201);
    bad.push(p.clone());
    // A NUL character, which no text column of PostgreSQL's can hold, in each kind of text.
    let mut nul = product("Nul", &[("CAT-1", 100)]);
    nul.title = "Sneakers\0".into();
    bad.push(nul.clone());
    nul.title = "Sneakers".into();
    nul.description = "Soft\0".into();
    bad.push(nul.clone());
    nul.description.clear();
    nul.attributes.insert("material".into(), "can\0vas".into());
    bad.push(nul.clone());
    nul.attributes.clear();
    nul.variants[0].options.insert("size".into(), "M\0".into());
    bad.push(nul);
    bad.push(product("No variants", &[]));
    bad.push(product("Negative", &[("CAT-2", -1)]));
    bad.push(product("Twice", &[("CAT-3", 1), ("CAT-3", 2)]));
    let mut mixed = product("Mixed", &[("CAT-4", 1), ("CAT-5", 1)]);
    mixed.variants[1].price.currency = Currency::EUR;
    bad.push(mixed);
    for p in bad {
        let id = p.id;
        let result = catalog.upsert_product(p).await;
        assert!(
            matches!(result, Err(CatalogError::Invalid(_))),
            "invalid product must be refused, got {result:?}"
        );
        assert_eq!(catalog.product(id).await.expect("read"), None);
    }
    let offers = catalog
        .offers(&[sku("CAT-1"), sku("CAT-2"), sku("CAT-3"), sku("CAT-4")])
        .await
        .expect("offers");
    assert!(offers.is_empty(), "refused products must leave no offers");
    let empty_name = Category::new(category(), " ");
    assert!(matches!(
        catalog.upsert_category(empty_name).await,
        Err(CatalogError::Invalid(_))
    ));
    let nul_name = Category::new(category(), "Shoes\0");
    assert!(matches!(
        catalog.upsert_category(nul_name).await,
        Err(CatalogError::Invalid(_))
    ));
    assert!(catalog.categories().await.expect("categories").is_empty());
}

/// A SKU belongs to one product; replacing a product replaces its variants.
pub async fn catalog_keeps_skus_unique(backend: Backend) {
    let catalog = &backend.catalog;
    let mut first = product("First", &[("UNQ-1", 100), ("UNQ-2", 200)]);
    catalog.upsert_product(first.clone()).await.expect("first");
    let second = product("Second", &[("UNQ-2", 300)]);
    match catalog.upsert_product(second.clone()).await {
        Err(CatalogError::DuplicateSku { sku: s, owner }) => {
            assert_eq!(s, sku("UNQ-2"));
            assert_eq!(owner, first.id);
        }
        other => panic!("a SKU of another product must be refused, got {other:?}"),
    }
    assert_eq!(catalog.product(second.id).await.expect("read"), None);
    // Replacing the first product without UNQ-2 frees the SKU.
    first.variants.truncate(1);
    first.title = "First, renamed".into();
    catalog
        .upsert_product(first.clone())
        .await
        .expect("replace");
    assert_eq!(
        catalog.product(first.id).await.expect("read"),
        Some(first.clone())
    );
    catalog
        .upsert_product(second.clone())
        .await
        .expect("now free");
    let offers = catalog
        .offers(&[sku("UNQ-1"), sku("UNQ-2"), sku("UNQ-9")])
        .await
        .expect("offers");
    assert_eq!(offers.len(), 2);
    assert_eq!(offers[&sku("UNQ-2")].product, second.id);
    assert_eq!(offers[&sku("UNQ-2")].price, usd(300));
    assert_eq!(offers[&sku("UNQ-1")].title, "First, renamed");
}

/// Listings show published products only, paged by cursor without gaps or repeats.
pub async fn catalog_lists_published_products_by_page(backend: Backend) {
    let catalog = &backend.catalog;
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut p = product(&format!("Listed {i}"), &[(&format!("LST-{i}"), 100)]);
        if i == 3 {
            p.published = false;
        } else {
            ids.push(p.id);
        }
        if i == 5 {
            p.category = CategoryId::new("other").expect("slug");
        }
        if i == 6 {
            // The first of all ids, listed like any other.
            p.id = ProductId::from_uuid(uuid::Uuid::nil());
            ids.pop();
            ids.push(p.id);
        }
        catalog.upsert_product(p).await.expect("upsert");
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = catalog.list_products(None, after, 2).await.expect("page");
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|p| p.id));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(
        seen, ids,
        "pages must cover every published product once, in id order"
    );
    let gear = catalog
        .list_products(Some(category()), None, 100)
        .await
        .expect("by category");
    assert_eq!(gear.items.len(), 5);
    assert!(gear.next.is_none());
}
