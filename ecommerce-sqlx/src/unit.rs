//! The unit of work of the orders, the inventory and the promotion uses of one database: a
//! checkout in two transactions (see [`ecommerce_core::unit`]).
//!
//! [`UnitOfWork::place`] runs, in one transaction:
//!
//! 1. with [`SqlUnitOfWork::with_carts`], the cart with the order's claim (`UPDATE ... WHERE
//!    version = ?`; a cart changed since it was read rolls back);
//! 2. the order row (`INSERT`, nothing if its id or idempotency key is taken: the transaction
//!    rolls back and the order of the key comes back) and its events (`INSERT INTO outbox`;
//!    on PostgreSQL one statement with the order);
//! 3. the order's promotion uses, reserved with conditional increments of every limit they
//!    are under, as [`PromotionStore::reserve`] does (see [`crate::SqlPromotionStore`]); a
//!    limit reached rolls everything back and the call fails with
//!    [`PromotionError::Exhausted`];
//! 4. the stock: the reservation row, each SKU taken from its buckets in SKU order, and the
//!    ledger (on PostgreSQL in the take's statement), as [`InventoryStore::reserve`] does for
//!    a new order (see [`crate::SqlInventory`]); any short SKU rolls everything back.
//!
//! [`UnitOfWork::sell`] runs, in one transaction:
//!
//! 1. the patch applied to the order as the checkout last read it, written only at that
//!    order's version (`UPDATE ... WHERE version = ?`: a stored order at another version is
//!    a conflict, so the order need not be read again), and its events (`INSERT INTO
//!    outbox`; on PostgreSQL one statement with the update); a refusal rolls back;
//! 2. with [`SqlUnitOfWork::with_carts`] and the cart as the claim stored it, the cart
//!    without the ordered units (`UPDATE ... WHERE version = ?`; a cart changed since is left
//!    as it is, for the checkout to clear after the commit);
//! 3. when the order holds promotion uses, its own use rows moved from held to committed
//!    (one conditional `UPDATE`; a use counts under its limits from the moment it is held,
//!    so the promotion's row, which the buyers' reservations queue on, is not locked
//!    again), as [`PromotionStore::commit`] does;
//! 4. the reservation row locked, the ledger, the reservation's new state, and the units
//!    sold in the buckets it recorded (added to their `stock_sold` rows: the stock rows,
//!    which the buyers' takes queue on, are not locked again), as
//!    [`InventoryStore::commit`] does; a released or missing reservation rolls everything
//!    back.
//!
//! The order statements come first and the stock statements last, just before the commit:
//! a hot SKU's stock row is the lock every buyer of it queues on, and this way it is held
//! only from the stock statement to the commit, not for the order's statements too (a
//! limited promotion's row is such a lock too, held in `place` from its increment to the
//! commit). The
//! uses of an order that fails are released later, by the checkout, through the promotion
//! store. Both transactions are retried whole on a deadlock or a serialization failure, and
//! `place` runs again when taking a bucketed SKU needs another approach, as a reservation
//! does.
//!
//! [`InventoryStore::reserve`]: ecommerce_core::inventory::InventoryStore::reserve
//! [`InventoryStore::commit`]: ecommerce_core::inventory::InventoryStore::commit
//! [`PromotionStore::reserve`]: ecommerce_core::promotion::PromotionStore::reserve
//! [`PromotionStore::commit`]: ecommerce_core::promotion::PromotionStore::commit
//! [`PromotionError::Exhausted`]: ecommerce_core::promotion::PromotionError::Exhausted

use std::time::Duration;

use async_trait::async_trait;
use ecommerce_core::cart::Cart;
use ecommerce_core::error::{CartError, InventoryError, OrderError, StoreError, ValidationError};
use ecommerce_core::events::DomainEvent;
use ecommerce_core::id::Sku;
use ecommerce_core::inventory::{ReservationLine, ReservationOp};
use ecommerce_core::order::{Created, Order, OrderPatch};
use ecommerce_core::promotion::{PromotionError, PromotionUse};
use ecommerce_core::quote::Quote;
use ecommerce_core::unit::{Sold, UnitError, UnitOfWork};

use crate::cart::SqlCartStore;
use crate::db::{On, encode};
use crate::inventory::{Approach, Attempt, Hold, SqlInventory, Taken};
use crate::order::{SqlOrderStore, Update};
use crate::promotion::SqlPromotionStore;

/// The orders, the inventory and the promotion uses of one database, changed together: a
/// checkout in two transactions (see [`ecommerce_core::unit`]).
///
/// [`place`](UnitOfWork::place) inserts the order and its events, reserves its promotion
/// uses (see [`crate::SqlPromotionStore`]), then takes the stock and inserts the reservation
/// row; [`sell`](UnitOfWork::sell) updates the order at the version the checkout read and
/// appends its events, commits its promotion uses, then moves the reserved units to sold and
/// marks the reservation committed. The stock statements come last, just before the commit,
/// so a hot SKU's stock row, the lock its buyers queue on, is held only from the stock
/// statement to the commit. Any refusal or failure rolls the whole transaction back;
/// deadlocks and serialization failures run it again.
#[derive(Debug, Clone)]
pub struct SqlUnitOfWork {
    orders: SqlOrderStore,
    inventory: SqlInventory,
    carts: Option<SqlCartStore>,
    promotions: SqlPromotionStore,
}

impl SqlUnitOfWork {
    /// The unit of these stores. Both must be over the same database (the transactions run on
    /// the inventory's); the inventory's bucket settings are used for new SKUs and its bucket
    /// hints to take stock. Promotion uses are reserved in that database's promotion tables
    /// (the [`SqlPromotionStore`] of the same database sees them).
    pub fn new(orders: SqlOrderStore, inventory: SqlInventory) -> Self {
        let promotions = SqlPromotionStore::new(inventory.db().clone());
        SqlUnitOfWork {
            orders,
            inventory,
            carts: None,
            promotions,
        }
    }

    /// Also claims carts of this store, in the same database, in
    /// [`place`](UnitOfWork::place): the checkout's cart claim and its charge start are then
    /// written in the first transaction instead of two of their own.
    pub fn with_carts(mut self, carts: SqlCartStore) -> Self {
        self.carts = Some(carts);
        self
    }
}

/// What one attempt of [`UnitOfWork::place`] came to.
enum Placed {
    /// The order's id or idempotency key is taken; nothing was written.
    KeyTaken,
    /// The cart to claim changed since it was read; nothing was written.
    CartChanged,
    /// A promotion use was refused (a limit reached, no such promotion); nothing was
    /// written.
    Refused(PromotionError),
    /// The order is written (committed only on [`Taken::Done`]) and this is its stock.
    Stock(Taken),
}

impl Attempt for Placed {
    fn again(&self) -> Option<(Sku, Approach)> {
        match self {
            Placed::KeyTaken | Placed::CartChanged | Placed::Refused(_) => None,
            Placed::Stock(taken) => taken.again(),
        }
    }
}

/// A failure of the database in either half: the order's store error (an order the
/// transaction may have written stays pending, and recovery finishes it).
fn store(e: StoreError) -> UnitError {
    UnitError::Order(OrderError::Store(e))
}

#[async_trait]
impl UnitOfWork for SqlUnitOfWork {
    fn claims_carts(&self) -> bool {
        self.carts.is_some()
    }

    fn promotions(&self) -> Option<std::sync::Arc<dyn ecommerce_core::promotion::PromotionStore>> {
        Some(std::sync::Arc::new(self.promotions.clone()))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.inventory.db().backend(), order = %order.id, customer = %order.customer, cart = %order.cart, skus = lines.len(), uses = uses.len()))]
    async fn place(
        &self,
        order: Order,
        events: Vec<DomainEvent>,
        lines: &[ReservationLine],
        ttl: Duration,
        claim: Option<&Cart>,
        uses: &[PromotionUse],
    ) -> Result<Created, UnitError> {
        let hold = Hold::new(lines, ttl)?;
        let claim = match (claim, &self.carts) {
            (Some(cart), Some(carts)) => Some((carts, cart, cart.next_version())),
            (Some(_), None) => {
                return Err(UnitError::Order(OrderError::Invalid(
                    ValidationError::Invalid {
                        field: "claim",
                        reason: "this unit of work does not hold the carts".into(),
                    },
                )));
            }
            (None, _) => None,
        };
        let claim = claim.as_ref();
        let data = encode(&order);
        let (db, hold, data, order_ref, events) = (
            self.inventory.db(),
            &hold,
            data.as_str(),
            &order,
            events.as_slice(),
        );
        let placed = self
            .inventory
            .attempts("placing an order", |approaches| async move {
                let mut tx = db.begin_write().await?;
                if let Some((carts, cart, stored)) = claim {
                    if !carts.write(On::Tx(&mut tx), cart, stored).await? {
                        tx.rollback().await?;
                        return Ok(Placed::CartChanged);
                    }
                }
                // The order first: the stock rows are locked only for the last statements.
                if !self
                    .orders
                    .insert_in(&mut tx, order_ref, data, events)
                    .await?
                {
                    tx.rollback().await?;
                    return Ok(Placed::KeyTaken);
                }
                // Then the promotion uses: a limit reached rolls everything back.
                if let Err(e) = self
                    .promotions
                    .reserve_in(&mut tx, order_ref.id, uses)
                    .await?
                {
                    tx.rollback().await?;
                    return Ok(Placed::Refused(e));
                }
                let taken = self
                    .inventory
                    .take_new_in(&mut tx, order_ref.id, hold, &approaches)
                    .await?;
                match taken {
                    Taken::Done(_) => tx.commit().await?,
                    _ => tx.rollback().await?,
                }
                Ok(Placed::Stock(taken))
            })
            .await
            .map_err(store)?;
        match placed {
            Placed::KeyTaken => Ok(self.orders.existing(&order).await?),
            Placed::CartChanged => Err(CartError::VersionConflict {
                cart: claim.map_or(order.cart, |(_, cart, _)| cart.id),
            }
            .into()),
            Placed::Refused(e) => Err(UnitError::Promotion(e)),
            Placed::Stock(Taken::Done(_)) => Ok(Created::New(order)),
            Placed::Stock(Taken::Short(shortages)) => {
                Err(InventoryError::OutOfStock { shortages }.into())
            }
            // A reservation row of an order that did not exist: the id is taken, if only by
            // a reservation (order ids are fresh UUIDs: this does not happen in practice).
            Placed::Stock(Taken::Exists) => Err(OrderError::Duplicate(order.id).into()),
            Placed::Stock(Taken::Again(..)) => unreachable!("attempts runs these again"),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.inventory.db().backend(), order = %current.id))]
    async fn sell(
        &self,
        current: &Order,
        patch: OrderPatch,
        events: Vec<DomainEvent>,
        cart: Option<&Cart>,
    ) -> Result<Sold, UnitError> {
        let db = self.inventory.db();
        let order = current.id;
        // The cart without the ordered units, written at the version it was stored with the
        // claim.
        let cleared = match (cart, &self.carts) {
            (Some(cart), Some(carts)) if cart.version > 0 => cart
                .cleared_of(order)
                .map(|cleared| (carts, cleared.next_version(), cleared)),
            _ => None,
        };
        let (patch, events, cleared) = (&patch, events.as_slice(), cleared.as_ref());
        db.retry("selling an order", || async move {
            let mut tx = db.begin_write().await?;
            // The order first: the stock rows are locked only for the last statements.
            let written = match self
                .orders
                .patch_in(&mut tx, current, current.version, patch, events)
                .await?
            {
                Update::Done(written) => written,
                Update::Refused(e) => {
                    tx.rollback().await?;
                    return Ok(Err(UnitError::Order(e)));
                }
            };
            // Then the cart, if it is still as the claim left it.
            let cart_cleared = match cleared {
                Some((carts, stored, cart)) => carts.write(On::Tx(&mut tx), cart, stored).await?,
                None => false,
            };
            // Then the promotion uses, when the order holds any (only limited promotions
            // do). A use row this cannot read leaves the uses to the checkout (nothing was
            // written): the sale stands either way.
            let applied = written
                .quote
                .as_ref()
                .is_some_and(Quote::may_hold_promotion_uses);
            let uses_committed = if applied {
                self.promotions
                    .settle_in(&mut tx, order, false)
                    .await?
                    .is_ok()
            } else {
                true
            };
            let sold = self
                .inventory
                .transition_in(&mut tx, order, ReservationOp::Commit)
                .await?;
            match sold {
                Ok(Some(_)) => {
                    tx.commit().await?;
                    Ok(Ok(Sold::with_cart_cleared(*written, cart_cleared)
                        .with_promotion_uses_committed(uses_committed)))
                }
                Ok(None) => {
                    tx.rollback().await?;
                    Ok(Err(InventoryError::NoReservation(order).into()))
                }
                Err(e) => {
                    tx.rollback().await?;
                    Ok(Err(e.into()))
                }
            }
        })
        .await
        .map_err(store)?
    }
}
