//! Recommendation checks: each order counts its co-purchased pairs once, however often it
//! is recorded.

use super::{Backend, sku};
use crate::id::{OrderId, Sku};

/// Each order counts its pairs once, however often it is recorded.
pub async fn co_purchases_count_once_per_order(backend: Backend) {
    let rec = &backend.recommendations;
    let a = OrderId::new();
    assert!(
        rec.record_order(a, &[sku("REC-A"), sku("REC-B"), sku("REC-A")])
            .await
            .expect("record")
    );
    assert!(
        !rec.record_order(a, &[sku("REC-A"), sku("REC-B")])
            .await
            .expect("record")
    );
    rec.record_order(OrderId::new(), &[sku("REC-A"), sku("REC-C")])
        .await
        .expect("record");
    rec.record_order(OrderId::new(), &[sku("REC-A"), sku("REC-C"), sku("REC-D")])
        .await
        .expect("record");
    assert!(
        !rec.record_order(OrderId::new(), &[sku("REC-A"), sku("REC-A")])
            .await
            .expect("record"),
        "an order of one SKU has no pair to count"
    );
    let top = rec.also_bought(&sku("REC-A"), 10).await.expect("top");
    let top: Vec<(Sku, u64)> = top.into_iter().map(|a| (a.sku, a.count)).collect();
    assert_eq!(
        top,
        vec![(sku("REC-C"), 2), (sku("REC-B"), 1), (sku("REC-D"), 1)]
    );
    assert_eq!(
        rec.also_bought(&sku("REC-A"), 1).await.expect("top").len(),
        1
    );
    let b = rec.also_bought(&sku("REC-B"), 10).await.expect("top");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].count, 1);
    assert!(
        rec.also_bought(&sku("REC-Z"), 10)
            .await
            .expect("none")
            .is_empty()
    );
}
