//! Address books on SQL: one `customer_addresses` row per saved address, the address as a
//! JSON document beside the digest that keeps it unique per customer.
//!
//! A save runs in one write transaction that first locks the customer's row in
//! `customer_address_books` (made on the customer's first save), then looks for the address,
//! counts the book and inserts. Saves of one customer therefore run one at a time, so two
//! concurrent saves can neither both take the last place nor both insert one address. The
//! lock is a row of its own because an empty book has no address row to lock; SQLite takes
//! the database's write lock at `BEGIN` anyway.

use async_trait::async_trait;
use ecommerce_core::address::Address;
use ecommerce_core::address_book::{AddressBook, MAX_SAVED_ADDRESSES, SavedAddress};
use ecommerce_core::error::{AddressBookError, StoreError};
use ecommerce_core::id::{AddressId, CustomerId};

use crate::db::{Db, decode, encode, native, store_error};
use crate::statement::sql;
use crate::types::{Json, Time, Uuid};

/// Customers' address books in a SQL database.
#[derive(Debug, Clone)]
pub struct SqlAddressBook {
    db: Db,
}

impl SqlAddressBook {
    /// The address books in this database (migrated with [`Db::migrate`]).
    pub fn new(db: Db) -> Self {
        SqlAddressBook { db }
    }
}

/// A `customer_addresses` row: id, address JSON, creation time.
type Row = (Uuid, Json<String>, Time);

/// What a save found once it held the customer's lock.
enum Saved {
    /// The address was saved before: its row.
    Existing(Row),
    /// The book is full; nothing was written.
    Full,
    /// The new entry was inserted.
    New,
}

fn entry(
    customer: CustomerId,
    (id, Json(json), Time(created_at)): Row,
) -> Result<SavedAddress, StoreError> {
    let address: Address = decode("saved address", &json)?;
    Ok(SavedAddress {
        id: AddressId::from(id),
        customer,
        address,
        created_at,
    })
}

#[async_trait]
impl AddressBook for SqlAddressBook {
    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), customer = %customer))]
    async fn save(
        &self,
        customer: CustomerId,
        address: Address,
    ) -> Result<SavedAddress, AddressBookError> {
        let db = &self.db;
        // An upsert takes the row's exclusive lock whether it inserts or finds the row (on
        // MySQL, `INSERT IGNORE` then `FOR UPDATE` would upgrade a shared lock and deadlock).
        let lock = sql!(
            "INSERT INTO customer_address_books (customer) VALUES ($1) ON CONFLICT (customer) DO UPDATE SET customer = EXCLUDED.customer",
            mysql: "INSERT INTO customer_address_books (customer) VALUES (?) ON DUPLICATE KEY UPDATE customer = customer",
        );
        let owner = Uuid::from(customer);
        let digest = address.digest();
        let new = SavedAddress::new(customer, address);
        let json = Json(encode(&new.address));
        let saved = db
            .retry("saving an address", || async {
                let mut tx = db.begin_write().await?;
                native!(tx(&mut tx), |c, sql| sqlx::query(sql(lock)).bind(owner).execute(c).await
                    .map(|done| done.rows_affected()))?;
                let statement = sql!("SELECT id, address, created_at FROM customer_addresses WHERE customer = $1 AND digest = $2");
                let existing: Option<Row> = native!(tx(&mut tx), |c, sql| sqlx::query_as(sql(statement))
                .bind(owner)
                .bind(&digest)
                .fetch_optional(c)
                .await)?;
                if let Some(row) = existing {
                    tx.rollback().await?;
                    return Ok(Saved::Existing(row));
                }
                let statement = sql!("SELECT COUNT(*) FROM customer_addresses WHERE customer = $1");
                let (count,): (i64,) = native!(tx(&mut tx), |c, sql| sqlx::query_as(
                    sql(statement),
                )
                .bind(owner)
                .fetch_one(c)
                .await)?;
                if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_SAVED_ADDRESSES {
                    tx.rollback().await?;
                    return Ok(Saved::Full);
                }
                let statement = sql!("INSERT INTO customer_addresses (id, customer, digest, address, created_at) VALUES ($1, $2, $3, $4, $5)");
                native!(tx(&mut tx), |c, sql| sqlx::query(sql(statement))
                .bind(Uuid::from(new.id))
                .bind(owner)
                .bind(&digest)
                .bind(&json)
                .bind(Time::of(new.created_at))
                .execute(c)
                .await
                .map(|done| done.rows_affected()))?;
                tx.commit().await?;
                Ok(Saved::New)
            })
            .await?;
        match saved {
            Saved::Existing(row) => Ok(entry(customer, row)?),
            Saved::Full => Err(AddressBookError::Full {
                max: MAX_SAVED_ADDRESSES,
            }),
            Saved::New => Ok(new),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), customer = %customer))]
    async fn list(&self, customer: CustomerId) -> Result<Vec<SavedAddress>, StoreError> {
        let statement = sql!(
            "SELECT id, address, created_at FROM customer_addresses WHERE customer = $1 ORDER BY created_at DESC, id DESC"
        );
        let rows: Vec<Row> = native!(pool(self.db.pool()), |c, sql| sqlx::query_as(sql(
            statement
        ))
        .bind(Uuid::from(customer))
        .fetch_all(c)
        .await)
        .map_err(|e| store_error("listing saved addresses", e))?;
        rows.into_iter().map(|row| entry(customer, row)).collect()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(backend = self.db.backend(), customer = %customer, address = %id))]
    async fn remove(&self, customer: CustomerId, id: AddressId) -> Result<bool, StoreError> {
        let statement = sql!("DELETE FROM customer_addresses WHERE id = $1 AND customer = $2");
        let removed = native!(pool(self.db.writer()), |c, sql| sqlx::query(sql(statement))
            .bind(Uuid::from(id))
            .bind(Uuid::from(customer))
            .execute(c)
            .await
            .map(|done| done.rows_affected()))
        .map_err(|e| store_error("removing a saved address", e))?;
        Ok(removed == 1)
    }
}
