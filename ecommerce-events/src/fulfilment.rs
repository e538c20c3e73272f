//! Shipping confirmed orders, once each, from their `OrderConfirmed` events.
//!
//! A shipping service consumes `OrderConfirmed` (from a broker, see the `nats` module, or
//! from the outbox relay in the same process), asks its [`Carrier`] for the order's shipment
//! and moves the order to SHIPPED with [`Storefront::ship`]. Events come at least once and a
//! service may crash between any two steps, so each step is idempotent: the carrier returns
//! the shipment it already made for an order, and the order moves to SHIPPED by a
//! compare-and-set on its version, which succeeds once. The order is shipped exactly once
//! however often its event is delivered.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use ecommerce_core::error::{EventError, OrderError};
use ecommerce_core::events::{DomainEvent, EventEnvelope, EventSink};
use ecommerce_core::id::OrderId;
use ecommerce_core::order::{Order, OrderStatus};
use ecommerce_core::storefront::Storefront;

/// A parcel on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shipment {
    /// The order it ships.
    pub order: OrderId,
    /// The carrier's tracking number.
    pub tracking: String,
}

/// Where shipments are made: a carrier's API, a warehouse system.
#[async_trait]
pub trait Carrier: Debug + Send + Sync + 'static {
    /// The shipment of this order: made now, or the one made before for the same order
    /// (this is called again after a crash or a redelivered event, and must never make a
    /// second parcel; key it by the order id).
    ///
    /// # Errors
    /// [`EventError::Delivery`]: the event is delivered again later.
    async fn shipment(&self, order: &Order) -> Result<Shipment, EventError>;
}

/// What [`Fulfilment::handle`] did with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// The order was shipped now.
    Shipped(Shipment),
    /// The order was shipped before (a redelivered event).
    AlreadyShipped,
    /// The order is in a state that does not ship (cancelled since it was confirmed).
    NotShippable(OrderStatus),
    /// The order is not in this shop's store.
    UnknownOrder,
    /// Not an `OrderConfirmed` event.
    Ignored,
}

/// Ships confirmed orders through a [`Carrier`], exactly once each.
#[derive(Debug, Clone)]
pub struct Fulfilment {
    shop: Storefront,
    carrier: Arc<dyn Carrier>,
}

/// How many times a shipment is tried when the order changes under it.
const ATTEMPTS: usize = 8;

impl Fulfilment {
    /// Ships this shop's orders with this carrier.
    pub fn new(shop: Storefront, carrier: Arc<dyn Carrier>) -> Self {
        Fulfilment { shop, carrier }
    }

    /// Handles one event: an `OrderConfirmed` order still CONFIRMED gets its shipment and
    /// moves to SHIPPED; anything else is answered without a change.
    ///
    /// # Errors
    /// [`EventError::Delivery`] when the store or the carrier failed: deliver the event
    /// again.
    pub async fn handle(&self, event: &EventEnvelope) -> Result<Handled, EventError> {
        let DomainEvent::OrderConfirmed { order, .. } = &event.event else {
            return Ok(Handled::Ignored);
        };
        for _ in 0..ATTEMPTS {
            let Some(current) = self.shop.order(*order).await.map_err(delivery)? else {
                return Ok(Handled::UnknownOrder);
            };
            match current.status {
                OrderStatus::Confirmed => {}
                OrderStatus::Shipped | OrderStatus::Delivered => {
                    return Ok(Handled::AlreadyShipped);
                }
                other => return Ok(Handled::NotShippable(other)),
            }
            let shipment = self.carrier.shipment(&current).await?;
            match self.shop.ship(current.id, current.version).await {
                Ok(_) => {
                    tracing::info!(order = %current.id, tracking = %shipment.tracking, "shipped");
                    return Ok(Handled::Shipped(shipment));
                }
                // Changed meanwhile (another delivery shipped it, or it was cancelled):
                // read it again and decide again.
                Err(OrderError::VersionConflict { .. } | OrderError::InvalidTransition { .. }) => {
                    continue;
                }
                Err(e) => return Err(delivery(e)),
            }
        }
        Err(EventError::Delivery {
            message: format!("order {order} kept changing while it was shipped"),
            source: None,
        })
    }
}

fn delivery(e: OrderError) -> EventError {
    EventError::Delivery {
        message: format!("shipping: {e}"),
        source: Some(Arc::new(e)),
    }
}

#[async_trait]
impl EventSink for Fulfilment {
    async fn deliver(&self, event: &EventEnvelope) -> Result<(), EventError> {
        self.handle(event).await.map(|_| ())
    }
}
