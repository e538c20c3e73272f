//! Order checks: one order per idempotency key, compare-and-set status changes, history
//! newest first by cursor, and an outbox that delivers every event at least once, in order.

use std::sync::Arc;

use super::{Backend, key, new_order, usd};
use crate::error::OrderError;
use crate::events::{DomainEvent, EventSink, OutboxRelay};
use crate::id::{CustomerId, OrderId};
use crate::memory::RecordingSink;
use crate::order::{Created, Order, OrderPatch, OrderStatus};

/// Concurrent creates with one idempotency key make one order.
pub async fn one_order_per_idempotency_key(backend: Backend) {
    let orders = backend.orders.clone();
    let customer = CustomerId::new();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let orders = orders.clone();
            tokio::spawn(
                async move { orders.create(new_order(customer, "same-key"), vec![]).await },
            )
        })
        .collect();
    let mut created = Vec::new();
    let mut existing = Vec::new();
    for t in tasks {
        match t.await.expect("task").expect("create") {
            Created::New(o) => created.push(o),
            Created::Existing(o) => existing.push(o),
        }
    }
    assert_eq!(created.len(), 1, "exactly one create wins");
    assert!(existing.iter().all(|o| o.id == created[0].id));
    let by_key = orders
        .by_idempotency_key(customer, &key("same-key"))
        .await
        .expect("read");
    assert_eq!(by_key.map(|o| o.id), Some(created[0].id));
    let history = orders.history(customer, None, 100).await.expect("history");
    assert_eq!(history.items.len(), 1);
    let dup = Order {
        idempotency_key: key("other-key"),
        ..created[0].clone()
    };
    assert!(matches!(
        orders.create(dup, vec![]).await,
        Err(OrderError::Duplicate(_))
    ));
}

/// Status changes are compare-and-set on the version; invalid transitions change nothing.
pub async fn order_update_is_compare_and_set(backend: Backend) {
    let orders = backend.orders.clone();
    let order = orders
        .create(new_order(CustomerId::new(), "cas"), vec![])
        .await
        .expect("create")
        .into_order();
    let confirm = orders.update(
        order.id,
        1,
        OrderPatch::status(OrderStatus::Confirmed),
        vec![],
    );
    let fail = orders.update(order.id, 1, OrderPatch::status(OrderStatus::Failed), vec![]);
    let (a, b) = tokio::join!(confirm, fail);
    let winner = match (a, b) {
        (
            Ok(o),
            Err(OrderError::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }),
        )
        | (
            Err(OrderError::VersionConflict {
                expected: 1,
                actual: 2,
                ..
            }),
            Ok(o),
        ) => o,
        other => panic!("exactly one update from one version wins: {other:?}"),
    };
    assert_eq!(winner.version, 2);
    let stored = orders.get(order.id).await.expect("read").expect("exists");
    assert_eq!(stored, winner);
    let invalid = orders
        .update(
            order.id,
            2,
            OrderPatch::status(OrderStatus::Pending),
            vec![],
        )
        .await;
    assert!(
        matches!(
            invalid,
            Err(OrderError::InvalidTransition {
                to: OrderStatus::Pending,
                ..
            })
        ),
        "{invalid:?}"
    );
    if winner.status == OrderStatus::Failed {
        let r = orders
            .update(
                order.id,
                2,
                OrderPatch::status(OrderStatus::Shipped),
                vec![],
            )
            .await;
        assert!(
            matches!(r, Err(OrderError::InvalidTransition { .. })),
            "{r:?}"
        );
    }
    assert_eq!(orders.get(order.id).await.expect("read"), Some(stored));
    assert!(matches!(
        orders
            .update(
                OrderId::new(),
                1,
                OrderPatch::status(OrderStatus::Failed),
                vec![]
            )
            .await,
        Err(OrderError::NotFound(_))
    ));
}

/// History lists one customer's orders, newest first, by cursor, without gaps or repeats.
pub async fn history_is_newest_first_with_cursor(backend: Backend) {
    let orders = backend.orders.clone();
    let customer = CustomerId::new();
    let mut ids = Vec::new();
    for i in 0..7 {
        let o = orders
            .create(new_order(customer, &format!("hist-{i}")), vec![])
            .await
            .expect("create")
            .into_order();
        ids.push(o.id);
        orders
            .create(new_order(CustomerId::new(), &format!("other-{i}")), vec![])
            .await
            .expect("create");
    }
    ids.reverse();
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = orders.history(customer, before, 3).await.expect("page");
        assert!(page.items.len() <= 3);
        assert!(page.items.iter().all(|o| o.customer == customer));
        seen.extend(page.items.iter().map(|o| o.id));
        match page.next {
            Some(c) => before = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids, "newest first, every order once");
    let empty = orders
        .history(CustomerId::new(), None, 3)
        .await
        .expect("page");
    assert!(empty.items.is_empty() && empty.next.is_none());
}

/// Events written with changes reach the sink at least once, in order, even when the sink
/// fails for a while.
pub async fn outbox_delivers_every_event_at_least_once(backend: Backend) {
    let orders = backend.orders.clone();
    let customer = CustomerId::new();
    let order = orders
        .create(
            new_order(customer, "outbox"),
            vec![DomainEvent::OrderPlaced {
                order: OrderId::new(),
                customer,
                total: usd(1),
            }],
        )
        .await
        .expect("create")
        .into_order();
    orders
        .update(
            order.id,
            1,
            OrderPatch::status(OrderStatus::Confirmed),
            vec![DomainEvent::OrderShipped { order: order.id }],
        )
        .await
        .expect("update");
    // A refused change writes no event.
    let _ = orders
        .update(
            order.id,
            1,
            OrderPatch::status(OrderStatus::Failed),
            vec![DomainEvent::OrderDelivered { order: order.id }],
        )
        .await;
    let sink = Arc::new(RecordingSink::new());
    let relay = OutboxRelay::new(backend.outbox.clone(), sink.clone()).batch_size(1);
    sink.fail_next(1);
    assert!(
        relay.run_once().await.is_err(),
        "a failing sink is reported"
    );
    assert_eq!(relay.drain().await.expect("drain"), 2);
    assert_eq!(relay.drain().await.expect("drain again"), 0);
    let kinds: Vec<&'static str> = sink
        .events()
        .iter()
        .map(|e| match e.event {
            DomainEvent::OrderPlaced { .. } => "placed",
            DomainEvent::OrderShipped { .. } => "shipped",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, vec!["placed", "shipped"]);
    assert!(
        backend
            .outbox
            .pending(10)
            .await
            .expect("pending")
            .is_empty()
    );
    // Delivered twice (ack lost): the sink sees the same id and drops it.
    let again = sink.events()[0].clone();
    sink.deliver(&again).await.expect("redeliver");
    assert_eq!(sink.events().len(), 2);
}
