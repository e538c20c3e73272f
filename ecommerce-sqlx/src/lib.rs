//! PostgreSQL, MySQL/MariaDB and SQLite stores for the ecommerce SDK.
//!
//! | feature | database | URL |
//! | --- | --- | --- |
//! | `postgres` | PostgreSQL | `postgres://user@host:5432/db` |
//! | `mysql` | MySQL, MariaDB | `mysql://user@host:3306/db` |
//! | `sqlite` | SQLite (bundled) | `sqlite://shop.db?mode=rwc` |
//!
//! Each database is reached through its own sqlx driver (`PgPool`, `MySqlPool`,
//! `SqlitePool`, see [`Pool`]): values are bound and read as that driver encodes them, with
//! no translation layer between. The stores' logic (buckets, taking, transitions, the
//! checkout's two transactions) is written once; each statement in it is written once for
//! PostgreSQL, its MySQL form (`?` placeholders) and SQLite form (no row locks) derived when
//! the crate compiles, and statements that differ more written per dialect beside it. A
//! statement runs through a small dispatch that compiles its call once per driver the build
//! has. A dialect's cargo feature brings in its driver and its migrations; a URL of a
//! dialect the build leaves out is refused with [`SqlError::NotBuilt`]. Records that are read
//! whole (products, carts, orders, events) are JSON documents beside the columns that are
//! queried; stock levels, reservations, the stock ledger and promotion usage counters are
//! plain columns, because the database itself guards them (`CHECK (on_hand >= 0)`,
//! conditional decrements and increments, row locks).
//!
//! Every column has its database's own type: ids are `uuid` on PostgreSQL, times
//! `timestamptz`, documents `jsonb` (their closest equivalents on MySQL/MariaDB and SQLite,
//! see [`types`], which binds and reads them alike on the three drivers for SQL of your
//! own). A database migrated by 0.1's development builds, whose columns were text and
//! integers, is refused at connect ([`SqlError::OldLayout`]).
//!
//! # When the database fails
//!
//! Every wait is bounded ([`DbOptions`]): taking a connection from the pool or opening one
//! (1 s), one statement, lock waits included (2 s, set on each connection), retrying a
//! transaction that lost a deadlock (2 s). A database that is down, unreachable or stuck costs
//! a call about a second and a [`StoreError::Unavailable`](ecommerce_core::error::StoreError),
//! which `is_transient()`; the pool replaces broken connections by itself and works again as
//! soon as the database is back, without a restart. `tests/outage.rs` checks this through a
//! TCP proxy (`ecommerce_core::testkit::proxy`) that is cut and restored.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use ecommerce_core::payment::TestGateway;
//! use ecommerce_sqlx::SqlStores;
//!
//! let stores = SqlStores::connect("sqlite://shop.db?mode=rwc").await?;
//! let shop = stores.storefront(Arc::new(TestGateway::default()))?;
//! # let _ = shop;
//! # Ok(())
//! # }
//! ```

#[cfg(not(any(feature = "postgres", feature = "mysql", feature = "sqlite")))]
compile_error!("ecommerce-sqlx needs one of its features `postgres`, `mysql` or `sqlite`");

mod address_book;
mod cart;
mod catalog;
mod db;
mod inventory;
mod order;
mod promotion;
mod recommend;
mod sharded;
mod statement;
pub mod types;
mod unit;

use std::sync::Arc;

use ecommerce_core::error::ValidationError;
use ecommerce_core::payment::PaymentGateway;
use ecommerce_core::storefront::{Storefront, StorefrontBuilder};

pub use address_book::SqlAddressBook;
pub use cart::SqlCartStore;
pub use catalog::SqlCatalog;
pub use db::{Db, DbOptions, Dialect, Pool, SqlError};
pub use inventory::{MAX_BUCKETS, SqlInventory};
pub use order::SqlOrderStore;
pub use promotion::SqlPromotionStore;
pub use recommend::SqlRecommendations;
pub use sharded::ShardedOrderStore;
pub use unit::SqlUnitOfWork;

/// Every SQL store over one database.
#[derive(Debug, Clone)]
pub struct SqlStores {
    /// The database.
    pub db: Db,
    /// Catalog.
    pub catalog: Arc<SqlCatalog>,
    /// Persistent carts.
    pub carts: Arc<SqlCartStore>,
    /// Inventory.
    pub inventory: Arc<SqlInventory>,
    /// Orders and their outbox.
    pub orders: Arc<SqlOrderStore>,
    /// Co-purchase counts.
    pub recommendations: Arc<SqlRecommendations>,
    /// Customers' address books.
    pub address_book: Arc<SqlAddressBook>,
    /// Promotions, coupon codes and their usage.
    pub promotions: Arc<SqlPromotionStore>,
}

impl SqlStores {
    /// Connects, applies the migrations, and makes every store.
    ///
    /// # Errors
    /// [`SqlError`]: a URL that does not parse, a database that is down, migrations the
    /// database does not agree with.
    pub async fn connect(url: &str) -> Result<SqlStores, SqlError> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        Ok(SqlStores::new(db))
    }

    /// Every store over an already migrated database.
    pub fn new(db: Db) -> SqlStores {
        SqlStores {
            catalog: Arc::new(SqlCatalog::new(db.clone())),
            carts: Arc::new(SqlCartStore::new(db.clone())),
            inventory: Arc::new(SqlInventory::new(db.clone())),
            orders: Arc::new(SqlOrderStore::new(db.clone())),
            recommendations: Arc::new(SqlRecommendations::new(db.clone())),
            address_book: Arc::new(SqlAddressBook::new(db.clone())),
            promotions: Arc::new(SqlPromotionStore::new(db.clone())),
            db,
        }
    }

    /// A storefront builder with every SQL store set, and their unit of work; add search or
    /// swap stores before building. Swapping the orders or the inventory (sharded orders,
    /// stock behind a gate) drops the unit of work: the checkout then runs step by step.
    /// Swapping the promotions keeps the unit for orders and stock; the uses are then
    /// reserved in the new store, a step of their own.
    pub fn builder(&self, payments: Arc<dyn PaymentGateway>) -> StorefrontBuilder {
        Storefront::builder()
            .catalog(self.catalog.clone())
            .carts(self.carts.clone())
            .inventory(self.inventory.clone())
            .orders(self.orders.clone())
            .recommendations(self.recommendations.clone())
            .address_book(self.address_book.clone())
            .promotions(self.promotions.clone())
            .unit_of_work(self.unit_of_work())
            .payments(payments)
    }

    /// The unit of work of these orders, this inventory, these carts and these promotions: a
    /// checkout in two transactions (see [`SqlUnitOfWork`]). [`SqlStores::builder`] sets it.
    pub fn unit_of_work(&self) -> Arc<SqlUnitOfWork> {
        Arc::new(
            SqlUnitOfWork::new((*self.orders).clone(), (*self.inventory).clone())
                .with_carts((*self.carts).clone()),
        )
    }

    /// A storefront over these stores, with search in memory (see
    /// [`StorefrontBuilder::with_memory_defaults`]; give a search engine to
    /// [`SqlStores::builder`]'s builder for a persistent index).
    ///
    /// # Errors
    /// None in practice: every required store is set.
    pub fn storefront(
        &self,
        payments: Arc<dyn PaymentGateway>,
    ) -> Result<Storefront, ValidationError> {
        self.builder(payments).with_memory_defaults().build()
    }
}
