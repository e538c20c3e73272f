//! The checkout saga, payment callbacks, recovery of interrupted checkouts, and cancellation.
//!
//! [`Storefront::place_order`] runs:
//!
//! 1. create the order PENDING (the same idempotency key returns the same order);
//! 2. reserve every line's stock in one all-or-nothing step; if stock is short the order
//!    becomes FAILED naming the short SKUs;
//! 3. charge the payment with a key derived from the order;
//! 4. on success commit the reservation, count co-purchases, clear the cart and mark the order
//!    CONFIRMED (with an `OrderConfirmed` event); on decline release the stock and mark it
//!    FAILED. A gateway may answer pending: the order waits for
//!    [`Storefront::handle_payment_event`].
//!
//! The stores are pluggable, so no transaction spans them. The saga is correct because every
//! step is idempotent and keyed by the order (reserve, commit, release, charge, refund, and
//! each status change is a compare-and-set on the order's version), and every side effect of a
//! status change happens *before* the compare-and-set that records it. A process may die
//! between any two steps: [`Storefront::recover`] finds PENDING orders older than a deadline,
//! asks the gateway what happened to their charge, and finishes them by re-running the steps.
//! No payment call happens while a store holds a lock or transaction: each store call returns
//! before the next step starts.

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{CheckoutError, InventoryError, OrderError, PaymentError, PriceChange};
use crate::events::DomainEvent;
use crate::id::{CartId, CustomerId, IdempotencyKey, OrderId};
use crate::inventory::{ReservationLine, ReservationState};
use crate::money::Money;
use crate::order::{FailureReason, Order, OrderLine, OrderPatch, OrderPayment, OrderStatus};
use crate::payment::{
    Charge, ChargeRequest, PaymentEvent, PaymentMethod, PaymentStatus, RefundRequest,
};
use crate::storefront::Storefront;

/// What the shopper asked for when pressing "Pay".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutRequest {
    /// The cart to order.
    pub cart: CartId,
    /// Who orders (for a guest, an id the application keeps for them).
    pub customer: CustomerId,
    /// How to pay.
    pub payment_method: PaymentMethod,
    /// The client's key for this attempt: a retry with the same key returns the same order.
    pub idempotency_key: IdempotencyKey,
}

impl CheckoutRequest {
    /// A fingerprint of the request: the same key with another fingerprint is a conflict.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.cart.as_uuid().as_bytes());
        hasher.update(self.customer.as_uuid().as_bytes());
        hasher.update(self.payment_method.as_str().as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// What one [`Storefront::recover`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Held reservations that had expired and were released.
    pub expired_reservations: Vec<OrderId>,
    /// Orders confirmed (their payment had succeeded).
    pub confirmed: Vec<OrderId>,
    /// Orders failed (payment failed or never happened).
    pub failed: Vec<OrderId>,
    /// Orders still waiting for the customer or the provider.
    pub still_pending: Vec<OrderId>,
    /// Orders that could not be finished this time, with why; the next pass tries again.
    pub errors: Vec<(OrderId, String)>,
}

/// The key of the charge of an order: the same for every attempt.
pub fn charge_key(order: OrderId) -> String {
    format!("order-{order}-charge")
}

/// The key of the refund of an order.
pub fn refund_key(order: OrderId) -> String {
    format!("order-{order}-refund")
}

fn reservation_lines(order: &Order) -> Vec<ReservationLine> {
    order
        .lines
        .iter()
        .map(|l| ReservationLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
        })
        .collect()
}

/// The result a finished order stands for: what the first call returned, returned again to
/// every retry with the same key.
fn outcome(order: Order) -> Result<Order, CheckoutError> {
    match (&order.status, &order.failure) {
        (OrderStatus::Failed, Some(FailureReason::OutOfStock { shortages })) => {
            Err(CheckoutError::OutOfStock {
                order: order.id,
                shortages: shortages.clone(),
            })
        }
        (OrderStatus::Failed, Some(FailureReason::PaymentDeclined { reason })) => {
            Err(CheckoutError::PaymentDeclined {
                order: order.id,
                reason: reason.clone(),
            })
        }
        _ => Ok(order),
    }
}

impl Storefront {
    /// Places an order from a cart and pays for it (the saga above).
    ///
    /// Returns the order: CONFIRMED when paid, or PENDING when the gateway waits for the
    /// customer (3-D Secure; see [`crate::order::OrderPayment`] and
    /// [`Storefront::handle_payment_event`]). Retrying with the same key and request returns
    /// the same result; concurrent retries make one order.
    ///
    /// # Errors
    /// - before an order exists, nothing changed: [`CheckoutError::CartNotFound`],
    ///   [`CheckoutError::EmptyCart`], [`CheckoutError::ItemUnavailable`],
    ///   [`CheckoutError::PricesChanged`] (the cart was re-priced; ask the shopper again),
    ///   [`CheckoutError::IdempotencyConflict`];
    /// - the order FAILED: [`CheckoutError::OutOfStock`], [`CheckoutError::PaymentDeclined`];
    /// - the order stays PENDING and [`Storefront::recover`] finishes it:
    ///   [`CheckoutError::Payment`] (outcome unknown), [`CheckoutError::Inventory`],
    ///   [`CheckoutError::Order`] and other store errors.
    pub async fn place_order(&self, request: CheckoutRequest) -> Result<Order, CheckoutError> {
        let fingerprint = request.fingerprint();
        if let Some(existing) = self
            .orders
            .by_idempotency_key(&request.idempotency_key)
            .await?
        {
            return self.resume(existing, &request, &fingerprint).await;
        }
        let cart = self
            .carts
            .load(request.cart)
            .await?
            .filter(|c| c.customer.is_none_or(|owner| owner == request.customer));
        let cart = match cart {
            Some(cart) if !cart.is_empty() => cart,
            missing_or_empty => {
                // A concurrent retry may have placed the order and cleared the cart since the
                // key was looked up.
                if let Some(existing) = self
                    .orders
                    .by_idempotency_key(&request.idempotency_key)
                    .await?
                {
                    return self.resume(existing, &request, &fingerprint).await;
                }
                return Err(match missing_or_empty {
                    Some(_) => CheckoutError::EmptyCart(request.cart),
                    None => CheckoutError::CartNotFound(request.cart),
                });
            }
        };
        let lines = self.price_lines(&cart).await?;
        let currency = lines[0].unit_price.currency;
        let total = Money::sum(
            currency,
            lines
                .iter()
                .map(|l| l.unit_price.checked_mul(l.quantity))
                .collect::<Result<Vec<_>, _>>()?,
        )?;
        let now = Utc::now();
        let order = Order {
            id: OrderId::new(),
            customer: request.customer,
            cart: cart.id,
            idempotency_key: request.idempotency_key.clone(),
            request_fingerprint: fingerprint.clone(),
            status: OrderStatus::Pending,
            version: 1,
            lines,
            total,
            payment: None,
            failure: None,
            created_at: now,
            updated_at: now,
        };
        let placed = DomainEvent::OrderPlaced {
            order: order.id,
            customer: order.customer,
            total,
        };
        match self.orders.create(order, vec![placed]).await? {
            crate::order::Created::New(order) => self.drive(order, &request.payment_method).await,
            crate::order::Created::Existing(order) => {
                self.resume(order, &request, &fingerprint).await
            }
        }
    }

    /// Re-prices every line from the catalog. Changed prices are written to the cart and
    /// reported instead of charged.
    async fn price_lines(&self, cart: &crate::cart::Cart) -> Result<Vec<OrderLine>, CheckoutError> {
        let skus: Vec<_> = cart.lines.iter().map(|l| l.sku.clone()).collect();
        let offers = self.catalog.offers(&skus).await?;
        let mut changes = Vec::new();
        let mut lines = Vec::with_capacity(cart.lines.len());
        for line in &cart.lines {
            let offer = offers
                .get(&line.sku)
                .filter(|o| o.available)
                .ok_or_else(|| CheckoutError::ItemUnavailable(line.sku.clone()))?;
            if offer.price != line.unit_price {
                changes.push(PriceChange {
                    sku: line.sku.clone(),
                    was: line.unit_price,
                    now: offer.price,
                });
            }
            lines.push(OrderLine {
                sku: line.sku.clone(),
                title: offer.title.clone(),
                quantity: line.quantity,
                unit_price: offer.price,
            });
        }
        if changes.is_empty() {
            return Ok(lines);
        }
        let mut repriced = cart.clone();
        for line in &mut repriced.lines {
            if let Some(change) = changes.iter().find(|c| c.sku == line.sku) {
                line.unit_price = change.now;
            }
        }
        // A concurrent change to the cart wins; the shopper sees its prices on the next try.
        match self.carts.save(&repriced).await {
            Ok(_) | Err(crate::error::CartError::VersionConflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        Err(CheckoutError::PricesChanged { changes })
    }

    /// A retry of a placed order: the first result, or the rest of an interrupted saga.
    async fn resume(
        &self,
        order: Order,
        request: &CheckoutRequest,
        fingerprint: &str,
    ) -> Result<Order, CheckoutError> {
        if order.request_fingerprint != fingerprint {
            return Err(CheckoutError::IdempotencyConflict(
                request.idempotency_key.clone(),
            ));
        }
        if order.status == OrderStatus::Pending && order.payment.is_none() {
            return self.drive(order, &request.payment_method).await;
        }
        outcome(order)
    }

    /// Steps 2 to 4 for a PENDING order. Every step is idempotent, so a concurrent retry
    /// running the same steps is harmless: the order's compare-and-set picks one result.
    async fn drive(&self, order: Order, method: &PaymentMethod) -> Result<Order, CheckoutError> {
        match self
            .inventory
            .reserve(
                order.id,
                &reservation_lines(&order),
                self.config.reservation_ttl,
            )
            .await
        {
            Ok(_) => {}
            Err(InventoryError::OutOfStock { shortages }) => {
                let order = self
                    .fail(order, FailureReason::OutOfStock { shortages }, None)
                    .await?;
                return outcome(order);
            }
            Err(e) => return Err(e.into()),
        }
        let request = ChargeRequest {
            order: order.id,
            amount: order.total,
            method: method.clone(),
            idempotency_key: charge_key(order.id),
        };
        match self.payments.charge(&request).await {
            Ok(charge) => self.apply_charge(order, charge).await,
            Err(PaymentError::Rejected { message }) => {
                let reason = FailureReason::PaymentDeclined { reason: message };
                outcome(self.fail(order, reason, None).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Moves a PENDING order on by what the gateway says of its charge.
    async fn apply_charge(&self, order: Order, charge: Charge) -> Result<Order, CheckoutError> {
        let payment = OrderPayment {
            id: charge.payment_id.clone(),
            status: charge.status,
        };
        match charge.status {
            PaymentStatus::Succeeded => self.confirm(order, payment).await,
            PaymentStatus::Failed => {
                let reason = FailureReason::PaymentDeclined {
                    reason: charge
                        .failure_reason
                        .unwrap_or_else(|| "payment failed".into()),
                };
                outcome(self.fail(order, reason, Some(payment)).await?)
            }
            PaymentStatus::Refunded => outcome(
                self.fail(order, FailureReason::PaymentNotCompleted, Some(payment))
                    .await?,
            ),
            PaymentStatus::Pending => {
                if order.payment.as_ref() == Some(&payment) {
                    return Ok(order);
                }
                let patch = OrderPatch::default().with_payment(payment);
                match self
                    .orders
                    .update(order.id, order.version, patch, Vec::new())
                    .await
                {
                    Ok(order) => Ok(order),
                    Err(OrderError::VersionConflict { .. }) => self.reload(order.id).await,
                    Err(e) => Err(e.into()),
                }
            }
        }
    }

    async fn reload(&self, id: OrderId) -> Result<Order, CheckoutError> {
        let order = self.orders.get(id).await?.ok_or(OrderError::NotFound(id))?;
        outcome(order)
    }

    /// Paid: sell the stock (taking it again if the reservation was released meanwhile),
    /// count co-purchases, clear the cart, then CONFIRMED. If the stock is gone, refund.
    async fn confirm(&self, order: Order, payment: OrderPayment) -> Result<Order, CheckoutError> {
        match self.inventory.commit(order.id).await {
            Ok(_) => {}
            Err(InventoryError::Released(_) | InventoryError::NoReservation(_)) => {
                let lines = reservation_lines(&order);
                match self
                    .inventory
                    .reserve(order.id, &lines, self.config.reservation_ttl)
                    .await
                {
                    Ok(_) => {
                        self.inventory.commit(order.id).await?;
                    }
                    Err(InventoryError::OutOfStock { shortages }) => {
                        let refunded = self.refund(&order, &payment).await?;
                        return self
                            .fail(
                                order,
                                FailureReason::StockLostAfterPayment { shortages },
                                Some(refunded),
                            )
                            .await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        let skus: Vec<_> = order.lines.iter().map(|l| l.sku.clone()).collect();
        self.recommendations
            .record_order(order.id, &skus)
            .await
            .map_err(InventoryError::Store)?;
        self.carts.delete(order.cart).await?;
        let event = DomainEvent::OrderConfirmed {
            order: order.id,
            customer: order.customer,
            lines: order
                .lines
                .iter()
                .map(|l| (l.sku.clone(), l.quantity))
                .collect(),
            total: order.total,
        };
        let patch = OrderPatch::status(OrderStatus::Confirmed).with_payment(payment.clone());
        match self
            .orders
            .update(order.id, order.version, patch, vec![event])
            .await
        {
            Ok(order) => Ok(order),
            Err(OrderError::VersionConflict { .. }) => {
                let current = self
                    .orders
                    .get(order.id)
                    .await?
                    .ok_or(OrderError::NotFound(order.id))?;
                match current.status {
                    // Another call recorded the pending payment or is confirming: run again
                    // from the current version (every step above is idempotent).
                    OrderStatus::Pending => Box::pin(self.confirm(current, payment)).await,
                    // The order failed while this payment succeeded: give both back.
                    OrderStatus::Failed => {
                        self.undo_sale(&current).await?;
                        let refunded = self.refund(&current, &payment).await?;
                        self.record_payment(current, refunded).await
                    }
                    _ => Ok(current),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Not paid: put the stock back, then FAILED.
    async fn fail(
        &self,
        order: Order,
        reason: FailureReason,
        payment: Option<OrderPayment>,
    ) -> Result<Order, CheckoutError> {
        match self.inventory.release(order.id).await {
            Ok(_) => {}
            // A concurrent confirmation sold the stock: it saw a successful payment, so this
            // failure is stale. Leave the order to it (or to `recover()`).
            Err(InventoryError::Committed(_)) => return self.current(order.id).await,
            Err(e) => return Err(e.into()),
        }
        let event = DomainEvent::OrderFailed {
            order: order.id,
            reason: reason.clone(),
        };
        let mut patch = OrderPatch::status(OrderStatus::Failed).with_failure(reason);
        patch.payment = payment;
        match self
            .orders
            .update(order.id, order.version, patch.clone(), vec![event.clone()])
            .await
        {
            Ok(order) => Ok(order),
            Err(OrderError::VersionConflict { .. }) => {
                let current = self.current(order.id).await?;
                if current.status == OrderStatus::Pending {
                    // Only the payment details changed meanwhile: fail from the new version.
                    let patch_reason = patch.failure.clone().expect("set above");
                    Box::pin(self.fail(current, patch_reason, patch.payment)).await
                } else {
                    Ok(current)
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn current(&self, id: OrderId) -> Result<Order, CheckoutError> {
        Ok(self.orders.get(id).await?.ok_or(OrderError::NotFound(id))?)
    }

    async fn refund(
        &self,
        order: &Order,
        payment: &OrderPayment,
    ) -> Result<OrderPayment, CheckoutError> {
        self.payments
            .refund(&RefundRequest {
                payment_id: payment.id.clone(),
                amount: order.total,
                idempotency_key: refund_key(order.id),
            })
            .await?;
        Ok(OrderPayment {
            id: payment.id.clone(),
            status: PaymentStatus::Refunded,
        })
    }

    /// Puts an order's stock back whether it is held or sold.
    async fn undo_sale(&self, order: &Order) -> Result<(), CheckoutError> {
        match self.inventory.reservation(order.id).await? {
            Some(r) if r.state == ReservationState::Committed => {
                self.inventory.return_stock(order.id).await?;
            }
            Some(r) if r.state == ReservationState::Held => {
                self.inventory.release(order.id).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Records a payment change on an order without changing its status, retrying on
    /// conflicts (the status is terminal, so only payment details race).
    async fn record_payment(
        &self,
        mut order: Order,
        payment: OrderPayment,
    ) -> Result<Order, CheckoutError> {
        for _ in 0..8 {
            if order.payment.as_ref() == Some(&payment) {
                return Ok(order);
            }
            let patch = OrderPatch::default().with_payment(payment.clone());
            match self
                .orders
                .update(order.id, order.version, patch, Vec::new())
                .await
            {
                Ok(updated) => return Ok(updated),
                Err(OrderError::VersionConflict { .. }) => order = self.current(order.id).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OrderError::VersionConflict {
            order: order.id,
            expected: order.version,
            actual: order.version,
        }
        .into())
    }

    /// Handles a verified provider callback. Callbacks may come twice, late or out of order:
    /// - success for a PENDING order confirms it (as the saga would);
    /// - failure for a PENDING order fails it and releases its stock;
    /// - success for a FAILED order (its stock is gone) refunds the payment;
    /// - anything else (a duplicate, a failure after success) changes nothing.
    ///
    /// Returns the order as it stands after the event.
    ///
    /// # Errors
    /// [`CheckoutError::Order`] with [`OrderError::NotFound`] for an unknown order; store and
    /// gateway errors (the callback should be retried: handling it again is safe).
    pub async fn handle_payment_event(&self, event: PaymentEvent) -> Result<Order, CheckoutError> {
        let order = self.current(event.order).await?;
        let payment = OrderPayment {
            id: event.payment_id.clone(),
            status: event.status,
        };
        match (order.status, event.status) {
            (OrderStatus::Pending, PaymentStatus::Succeeded) => self.confirm(order, payment).await,
            (OrderStatus::Pending, PaymentStatus::Failed) => {
                let reason = FailureReason::PaymentDeclined {
                    reason: event
                        .failure_reason
                        .unwrap_or_else(|| "payment failed".into()),
                };
                self.fail(order, reason, Some(payment)).await
            }
            (OrderStatus::Failed, PaymentStatus::Succeeded) => {
                let already_refunded = order
                    .payment
                    .as_ref()
                    .is_some_and(|p| p.status == PaymentStatus::Refunded);
                if already_refunded {
                    return Ok(order);
                }
                let refunded = self.refund(&order, &payment).await?;
                self.record_payment(order, refunded).await
            }
            _ => Ok(order),
        }
    }

    /// Finishes interrupted checkouts: releases expired reservations, then for each PENDING
    /// order created more than `older_than` ago asks the gateway what happened to its charge
    /// and confirms it (paid), fails it (declined, or never charged), or leaves it (still
    /// waiting for the customer). `older_than` must be longer than the payment timeout, so a
    /// checkout still talking to the gateway is not taken for a dead one.
    ///
    /// Safe to run at any time and from several processes: every step is idempotent.
    ///
    /// # Errors
    /// Store errors while listing; errors of single orders are in
    /// [`RecoveryReport::errors`].
    pub async fn recover(&self, older_than: Duration) -> Result<RecoveryReport, CheckoutError> {
        let mut report = RecoveryReport {
            expired_reservations: self
                .inventory
                .release_expired(self.config.recovery_batch)
                .await?,
            ..RecoveryReport::default()
        };
        let cutoff =
            Utc::now() - chrono::Duration::from_std(older_than).unwrap_or(chrono::Duration::MAX);
        let pending = self
            .orders
            .pending_before(cutoff, self.config.recovery_batch)
            .await?;
        for order in pending {
            let id = order.id;
            let result = match self.payments.lookup(&charge_key(id)).await {
                Ok(Some(charge)) => self.apply_charge(order, charge).await,
                Ok(None) => {
                    self.fail(order, FailureReason::PaymentNotCompleted, None)
                        .await
                }
                Err(e) => Err(e.into()),
            };
            match result {
                Ok(o) => match o.status {
                    OrderStatus::Pending => report.still_pending.push(id),
                    OrderStatus::Failed => report.failed.push(id),
                    _ => report.confirmed.push(id),
                },
                Err(CheckoutError::OutOfStock { .. } | CheckoutError::PaymentDeclined { .. }) => {
                    report.failed.push(id)
                }
                Err(e) => report.errors.push((id, e.to_string())),
            }
        }
        Ok(report)
    }

    /// Cancels a CONFIRMED order: marks it CANCELLED (winning any race with shipping), then
    /// refunds the payment and returns the stock. Idempotent: after an error, call again to
    /// finish the refund and restock.
    ///
    /// # Errors
    /// [`OrderError::InvalidTransition`] for an order that is not CONFIRMED (or already
    /// CANCELLED), [`OrderError::NotFound`], gateway and store errors.
    pub async fn cancel(&self, id: OrderId) -> Result<Order, CheckoutError> {
        let mut order = self.current(id).await?;
        if order.status != OrderStatus::Cancelled {
            order = self
                .orders
                .update(
                    id,
                    order.version,
                    OrderPatch::status(OrderStatus::Cancelled),
                    vec![DomainEvent::OrderCancelled { order: id }],
                )
                .await?;
        }
        self.undo_sale(&order).await?;
        match order.payment.clone() {
            Some(payment) if payment.status == PaymentStatus::Succeeded => {
                let refunded = self.refund(&order, &payment).await?;
                self.record_payment(order, refunded).await
            }
            _ => Ok(order),
        }
    }
}

#[cfg(test)]
mod tests;
