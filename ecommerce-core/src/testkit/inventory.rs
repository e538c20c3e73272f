//! Inventory checks: reservations are all-or-nothing and idempotent per order; commit,
//! release and return move stock once; expired holds are released; the ledger proves stock
//! is conserved; concurrent reservations never oversell, and a storm of them on one SKU never
//! fails with anything but out of stock; the shortage hint agrees with what reserve would do.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Backend, TTL, assert_conserved, line, sku};
use crate::error::InventoryError;
use crate::id::{OrderId, Sku};
use crate::inventory::{ReservationLine, ReservationState};

/// A reservation takes every line or nothing, and names every short SKU; lines of one SKU
/// are summed.
pub async fn reserve_is_all_or_nothing(backend: Backend) {
    let inv = &backend.inventory;
    inv.receive(&sku("AON-1"), 5).await.expect("receive");
    inv.receive(&sku("AON-2"), 1).await.expect("receive");
    let order = OrderId::new();
    let r = inv
        .reserve(
            order,
            &[line("AON-1", 2), line("AON-2", 2), line("AON-9", 1)],
            TTL,
        )
        .await;
    match r {
        Err(InventoryError::OutOfStock { shortages }) => {
            let named: Vec<(Sku, u32, u32)> = shortages
                .into_iter()
                .map(|s| (s.sku, s.requested, s.available))
                .collect();
            assert_eq!(named, vec![(sku("AON-2"), 2, 1), (sku("AON-9"), 1, 0)]);
        }
        other => panic!("a short line must fail the reservation, got {other:?}"),
    }
    assert_eq!(
        inv.level(&sku("AON-1")).await.expect("level").on_hand,
        5,
        "nothing taken"
    );
    assert_eq!(inv.reservation(order).await.expect("read"), None);
    // Two lines of one SKU: 3 + 3 > 5 is short even though each line alone fits.
    let r = inv
        .reserve(order, &[line("AON-1", 3), line("AON-1", 3)], TTL)
        .await;
    assert!(matches!(r, Err(InventoryError::OutOfStock { .. })), "{r:?}");
    let r = inv
        .reserve(
            order,
            &[line("AON-1", 2), line("AON-2", 1), line("AON-1", 3)],
            TTL,
        )
        .await
        .expect("fits exactly");
    assert_eq!(r.lines, vec![line("AON-1", 5), line("AON-2", 1)]);
    assert_eq!(r.state, ReservationState::Held);
    let level = inv.level(&sku("AON-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved), (0, 5));
    for bad in [vec![], vec![line("AON-1", 0)]] {
        let r = inv.reserve(OrderId::new(), &bad, TTL).await;
        assert!(
            matches!(
                r,
                Err(InventoryError::EmptyReservation | InventoryError::InvalidQuantity { .. })
            ),
            "{r:?}"
        );
    }
    assert!(matches!(
        inv.receive(&sku("AON-1"), 0).await,
        Err(InventoryError::InvalidQuantity { .. })
    ));
    assert!(matches!(
        inv.level(&sku("AON-404")).await,
        Err(InventoryError::UnknownSku(_))
    ));
    assert_conserved(inv.as_ref(), &sku("AON-1"), 5).await;
}

/// The shortage hint names what a reservation would refuse right now (lines of one SKU
/// summed, a SKU with no stock record short with 0), follows reservations and receipts, and
/// takes nothing.
pub async fn shortages_hint_names_what_reserve_would_refuse(backend: Backend) {
    let inv = &backend.inventory;
    inv.receive(&sku("HINT-1"), 5).await.expect("receive");
    inv.receive(&sku("HINT-2"), 1).await.expect("receive");
    let wanted = [
        line("HINT-1", 3),
        line("HINT-2", 2),
        line("HINT-9", 1),
        line("HINT-1", 2),
    ];
    let named = |shortages: Vec<crate::error::Shortage>| -> Vec<(Sku, u32, u32)> {
        shortages
            .into_iter()
            .map(|s| (s.sku, s.requested, s.available))
            .collect()
    };
    let short = inv.shortages(&wanted).await.expect("hint");
    assert_eq!(
        named(short),
        vec![(sku("HINT-2"), 2, 1), (sku("HINT-9"), 1, 0)]
    );
    let fits = [line("HINT-1", 5), line("HINT-2", 1)];
    assert!(inv.shortages(&fits).await.expect("hint").is_empty());
    inv.reserve(OrderId::new(), &[line("HINT-1", 4)], TTL)
        .await
        .expect("reserve");
    let short = inv.shortages(&fits).await.expect("hint");
    assert_eq!(
        named(short),
        vec![(sku("HINT-1"), 5, 1)],
        "follows reservations"
    );
    inv.receive(&sku("HINT-1"), 4).await.expect("receive");
    assert!(
        inv.shortages(&fits).await.expect("hint").is_empty(),
        "follows receipts"
    );
    let level = inv.level(&sku("HINT-1")).await.expect("level");
    assert_eq!(
        (level.on_hand, level.reserved),
        (5, 4),
        "the hint takes nothing"
    );
}

/// Reserving twice for one order takes stock once.
pub async fn reserve_is_idempotent_per_order(backend: Backend) {
    let inv = &backend.inventory;
    inv.receive(&sku("IDM-1"), 10).await.expect("receive");
    let order = OrderId::new();
    let first = inv
        .reserve(order, &[line("IDM-1", 3)], TTL)
        .await
        .expect("reserve");
    let again = inv
        .reserve(order, &[line("IDM-1", 3)], TTL)
        .await
        .expect("again");
    assert_eq!(first.id, again.id);
    let lines = [line("IDM-1", 3)];
    let results = futures::future::join_all((0..16).map(|_| inv.reserve(order, &lines, TTL))).await;
    assert!(results.iter().all(Result::is_ok));
    let level = inv.level(&sku("IDM-1")).await.expect("level");
    assert_eq!(
        (level.on_hand, level.reserved),
        (7, 3),
        "one order takes once"
    );
    assert_conserved(inv.as_ref(), &sku("IDM-1"), 10).await;
}

/// Commit, release and return move stock once each, however often they are called.
pub async fn commit_release_and_return_are_idempotent(backend: Backend) {
    let inv = &backend.inventory;
    let s = sku("CRR-1");
    inv.receive(&s, 10).await.expect("receive");
    let sold = OrderId::new();
    let dropped = OrderId::new();
    inv.reserve(sold, &[line("CRR-1", 2)], TTL)
        .await
        .expect("reserve");
    inv.reserve(dropped, &[line("CRR-1", 3)], TTL)
        .await
        .expect("reserve");
    for _ in 0..3 {
        let r = inv.commit(sold).await.expect("commit");
        assert_eq!(r.state, ReservationState::Committed);
        let r = inv
            .release(dropped)
            .await
            .expect("release")
            .expect("exists");
        assert_eq!(r.state, ReservationState::Released);
    }
    let level = inv.level(&s).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (8, 0, 2));
    assert!(matches!(
        inv.release(sold).await,
        Err(InventoryError::Committed(_))
    ));
    assert!(matches!(
        inv.commit(dropped).await,
        Err(InventoryError::Released(_))
    ));
    assert!(matches!(
        inv.return_stock(dropped).await,
        Err(InventoryError::Released(_))
    ));
    assert_eq!(inv.release(OrderId::new()).await.expect("absent"), None);
    assert!(matches!(
        inv.commit(OrderId::new()).await,
        Err(InventoryError::NoReservation(_))
    ));
    // Re-reserving a released order takes stock again (a late payment).
    let r = inv
        .reserve(dropped, &[line("CRR-1", 3)], TTL)
        .await
        .expect("again");
    assert_eq!(r.state, ReservationState::Held);
    assert!(matches!(
        inv.return_stock(dropped).await,
        Err(InventoryError::NotCommitted(_))
    ));
    for _ in 0..3 {
        let r = inv.return_stock(sold).await.expect("return");
        assert_eq!(r.state, ReservationState::Returned);
    }
    let level = inv.level(&s).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (7, 3, 0));
    assert_conserved(inv.as_ref(), &s, 10).await;
}

/// Held reservations past their expiry are released once; committed ones are never touched.
pub async fn expired_reservations_are_released(backend: Backend) {
    let inv = &backend.inventory;
    let s = sku("EXP-1");
    inv.receive(&s, 10).await.expect("receive");
    let short = OrderId::new();
    let long = OrderId::new();
    let sold = OrderId::new();
    inv.reserve(short, &[line("EXP-1", 2)], Duration::from_millis(1))
        .await
        .expect("reserve");
    inv.reserve(sold, &[line("EXP-1", 1)], Duration::from_millis(1))
        .await
        .expect("reserve");
    inv.commit(sold).await.expect("commit");
    inv.reserve(long, &[line("EXP-1", 3)], TTL)
        .await
        .expect("reserve");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let released = inv.release_expired(100).await.expect("expire");
    assert_eq!(released, vec![short]);
    assert_eq!(
        inv.release_expired(100).await.expect("expire again"),
        Vec::<OrderId>::new()
    );
    let level = inv.level(&s).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (6, 3, 1));
    assert_conserved(inv.as_ref(), &s, 10).await;
}

/// Every movement is in the ledger, and replaying it gives the level.
pub async fn ledger_proves_stock_is_conserved(backend: Backend) {
    let inv = &backend.inventory;
    let s = sku("LED-1");
    inv.receive(&s, 4).await.expect("receive");
    inv.receive(&s, 6).await.expect("receive");
    let orders: Vec<OrderId> = (0..4).map(|_| OrderId::new()).collect();
    for o in &orders {
        inv.reserve(*o, &[line("LED-1", 2)], TTL)
            .await
            .expect("reserve");
    }
    inv.commit(orders[0]).await.expect("commit");
    inv.release(orders[1]).await.expect("release");
    inv.commit(orders[2]).await.expect("commit");
    inv.return_stock(orders[2]).await.expect("return");
    let ledger = inv.ledger(&s).await.expect("ledger");
    let kinds: Vec<_> = ledger.iter().map(|m| m.kind).collect();
    use crate::inventory::MovementKind::*;
    assert_eq!(
        kinds,
        vec![
            Received, Received, Reserved, Reserved, Reserved, Reserved, Committed, Released,
            Committed, Returned
        ]
    );
    assert!(ledger.iter().skip(2).all(|m| m.order.is_some()));
    let level = inv.level(&s).await.expect("level");
    assert_eq!((level.on_hand, level.reserved, level.sold), (6, 2, 2));
    assert_conserved(inv.as_ref(), &s, 10).await;
}

/// 64 concurrent reservations of one unit each against S units: exactly S succeed.
pub async fn concurrent_reservations_never_oversell(backend: Backend) {
    let inv = backend.inventory.clone();
    let stock = 17;
    inv.receive(&sku("HOT-1"), stock).await.expect("receive");
    inv.receive(&sku("HOT-2"), 100).await.expect("receive");
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let inv = inv.clone();
            tokio::spawn(async move {
                // Half the orders take a second SKU too, in the opposite line order.
                let lines = if i % 2 == 0 {
                    vec![line("HOT-2", 1), line("HOT-1", 1)]
                } else {
                    vec![line("HOT-1", 1)]
                };
                inv.reserve(OrderId::new(), &lines, TTL).await
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => ok += 1,
            Err(InventoryError::OutOfStock { shortages }) => {
                assert_eq!(shortages[0].sku, sku("HOT-1"));
            }
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, stock, "exactly the stock is reserved");
    let level = inv.level(&sku("HOT-1")).await.expect("level");
    assert_eq!((level.on_hand, level.reserved), (0, stock));
    assert_conserved(inv.as_ref(), &sku("HOT-1"), stock).await;
    assert_conserved(inv.as_ref(), &sku("HOT-2"), 100).await;
}

/// 200 concurrent reservations of 2 units each for 17 units of one SKU (on bucketed SQL stock,
/// spread over the factory's buckets): exactly 8 succeed and every other one is out of stock.
/// A deadlock, a lock timeout or any other error fails the check, as does losing a unit. Then
/// the same with 3 units each, which on bucketed stock ends taking across buckets (exactly 5
/// succeed); then orders of 2 units of that scarce SKU and 2 of a plentiful one beside it, in
/// either line order (exactly 8).
pub async fn bucketed_reservation_storm_never_deadlocks(backend: Backend) {
    reservation_storm(&backend, &[("STORM-2", 2, 17)]).await;
    reservation_storm(&backend, &[("STORM-3", 3, 17)]).await;
    reservation_storm(&backend, &[("STORM-P", 2, 17), ("STORM-Q", 2, 200)]).await;
}

/// 200 concurrent reservations, each of every `(sku, units, stock)` line, of new SKUs
/// received with their stock: exactly as many succeed as the scarcest SKU covers, every
/// other one is out of stock, and every SKU's stock is conserved.
async fn reservation_storm(backend: &Backend, skus: &[(&str, u32, u32)]) {
    const BUYERS: usize = 200;
    let inv = backend.inventory.clone();
    for (name, _, stock) in skus {
        inv.receive(&sku(name), *stock).await.expect("receive");
    }
    let lines: Vec<ReservationLine> = skus
        .iter()
        .map(|(name, each, _)| line(name, *each))
        .collect();
    let began = Instant::now();
    let tasks: Vec<_> = (0..BUYERS)
        .map(|i| {
            let (inv, mut lines) = (inv.clone(), lines.clone());
            if i % 2 == 1 {
                lines.reverse();
            }
            tokio::spawn(async move {
                let order = OrderId::new();
                (order, inv.reserve(order, &lines, TTL).await)
            })
        })
        .collect();
    let mut reserved = 0;
    let mut errors = BTreeMap::new();
    for t in tasks {
        match t.await.expect("task") {
            (order, Ok(r)) => {
                assert_eq!(
                    (r.order, r.state, &r.lines),
                    (order, ReservationState::Held, &lines),
                    "{r:?}"
                );
                reserved += 1;
            }
            (_, Err(InventoryError::OutOfStock { shortages })) => {
                assert!(!shortages.is_empty());
                for short in &shortages {
                    let wanted = lines.iter().find(|l| l.sku == short.sku);
                    assert_eq!(
                        wanted.map(|l| l.quantity),
                        Some(short.requested),
                        "{shortages:?}"
                    );
                    assert!(short.available < short.requested, "{shortages:?}");
                }
            }
            (_, Err(e)) => {
                // The error and its causes: "storage conflict: reserving stock: ... Deadlock".
                let mut named = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(cause) = source {
                    let cause_text = cause.to_string();
                    if !named.ends_with(&cause_text) {
                        named = format!("{named}: {cause_text}");
                    }
                    source = cause.source();
                }
                *errors.entry(named).or_insert(0usize) += 1;
            }
        }
    }
    eprintln!(
        "reservation storm: {BUYERS} reservations of {skus:?} in {:?}",
        began.elapsed()
    );
    assert!(
        errors.is_empty(),
        "{} of {BUYERS} reservations of {skus:?} failed with an error other than out of stock: \
         {errors:#?}",
        errors.values().sum::<usize>(),
    );
    let covered = skus.iter().map(|(_, each, stock)| stock / each).min();
    assert_eq!(
        Some(reserved),
        covered,
        "exactly as many reservations of {skus:?} succeed as the stock covers"
    );
    for (name, each, stock) in skus {
        let s = sku(name);
        let level = inv.level(&s).await.expect("level");
        assert_eq!(
            (level.on_hand, level.reserved, level.sold),
            (stock - reserved * each, reserved * each, 0),
            "{name}"
        );
        assert_conserved(inv.as_ref(), &s, *stock).await;
    }
}
