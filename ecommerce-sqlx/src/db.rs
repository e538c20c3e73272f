//! The database handle: one pool, its dialect, migrations, error mapping and retries.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

use ecommerce_core::error::StoreError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

/// The SQL dialect of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
    /// SQLite.
    Sqlite,
}

impl Dialect {
    /// The dialect of a connection URL, by its scheme.
    ///
    /// # Errors
    /// [`SqlError::UnsupportedScheme`].
    pub fn of_url(url: &str) -> Result<Dialect, SqlError> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            "sqlite" => Ok(Dialect::Sqlite),
            other => Err(SqlError::UnsupportedScheme(
                other.chars().take(32).collect(),
            )),
        }
    }

    /// Translates a statement written for PostgreSQL (`$1` placeholders, `FOR UPDATE`) to this
    /// dialect: MySQL takes `?` (the placeholders must appear in order, each once), SQLite
    /// locks the whole database for writing transactions and has no `FOR UPDATE`. The result
    /// is cached, so each statement is translated once.
    pub(crate) fn sql(self, postgres: &'static str) -> &'static str {
        if self == Dialect::Postgres {
            return postgres;
        }
        static CACHE: LazyLock<RwLock<HashMap<(Dialect, &'static str), &'static str>>> =
            LazyLock::new(Default::default);
        if let Some(sql) = CACHE
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(self, postgres))
        {
            return sql;
        }
        let translated: &'static str = Box::leak(self.translate(postgres).into_boxed_str());
        CACHE
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert((self, postgres), translated);
        translated
    }

    fn translate(self, sql: &str) -> String {
        match self {
            Dialect::Postgres => sql.to_owned(),
            Dialect::Sqlite => sql.replace(" FOR UPDATE", ""),
            Dialect::MySql => {
                let mut out = String::with_capacity(sql.len());
                let mut expected = 1;
                let mut chars = sql.chars().peekable();
                while let Some(c) = chars.next() {
                    if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        let mut n = 0u32;
                        while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                            n = n * 10 + d;
                            chars.next();
                        }
                        assert_eq!(n, expected, "MySQL placeholders must be in order: {sql}");
                        expected += 1;
                        out.push('?');
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// `n` placeholders starting at `$from`, comma separated, for an `IN (...)` list.
    pub(crate) fn placeholders(self, from: usize, n: usize) -> String {
        (from..from + n)
            .map(|i| match self {
                Dialect::MySql => "?".to_owned(),
                Dialect::Postgres | Dialect::Sqlite => format!("${i}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Errors of connecting and migrating.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// The URL's scheme is not `postgres`, `mysql` or `sqlite` (or its feature is off).
    #[error("unsupported database url scheme `{0}`")]
    UnsupportedScheme(String),
    /// The URL does not parse.
    #[error("invalid database url: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    /// The database cannot be reached.
    #[error("database unreachable: {0}")]
    Unreachable(#[source] sqlx::Error),
    /// Migrations failed, or the database has migrations this version does not know.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database error.
    #[error(transparent)]
    Database(sqlx::Error),
}

/// Pool settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbOptions {
    /// Most connections in the pool.
    pub max_connections: u32,
    /// How long to wait for a free connection.
    pub acquire_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// A database: a connection pool and its dialect. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("dialect", &self.dialect)
            .field("size", &self.pool.size())
            .finish()
    }
}

/// Statements run on every new connection of a dialect.
fn session_setup(dialect: Dialect) -> &'static [&'static str] {
    match dialect {
        Dialect::Postgres => &[],
        Dialect::MySql => &[
            "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
            "SET SESSION innodb_lock_wait_timeout = 20",
        ],
        Dialect::Sqlite => &[
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = NORMAL",
            "PRAGMA busy_timeout = 30000",
            "PRAGMA foreign_keys = ON",
        ],
    }
}

impl Db {
    /// Connects with default pool settings. Supported schemes: `postgres://`, `mysql://`
    /// (MariaDB too), `sqlite://path?mode=rwc` (add `mode=rwc` to create the file).
    ///
    /// # Errors
    /// [`SqlError::UnsupportedScheme`], [`SqlError::InvalidUrl`], [`SqlError::Unreachable`].
    pub async fn connect(url: &str) -> Result<Db, SqlError> {
        Db::connect_with(url, DbOptions::default(), &[]).await
    }

    /// Connects with these settings, running `setup` statements (after the dialect's own) on
    /// every new connection (for example `SET search_path TO shop`).
    ///
    /// # Errors
    /// As [`Db::connect`].
    pub async fn connect_with(
        url: &str,
        options: DbOptions,
        setup: &[String],
    ) -> Result<Db, SqlError> {
        let dialect = Dialect::of_url(url)?;
        sqlx::any::install_default_drivers();
        let connect: AnyConnectOptions = url.parse().map_err(SqlError::InvalidUrl)?;
        // An in-memory SQLite database exists once per connection: keep one.
        let max = if dialect == Dialect::Sqlite && url.contains("memory") {
            1
        } else {
            options.max_connections
        };
        let extra: Vec<String> = setup.to_vec();
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(options.acquire_timeout)
            .after_connect(move |conn, _| {
                let extra = extra.clone();
                Box::pin(async move {
                    for stmt in session_setup(dialect) {
                        conn.execute(*stmt).await?;
                    }
                    for stmt in extra {
                        conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await
            .map_err(|e| match e {
                sqlx::Error::Configuration(_) => SqlError::InvalidUrl(e),
                e => SqlError::Unreachable(e),
            })?;
        Ok(Db { pool, dialect })
    }

    /// Applies the embedded migrations of the dialect. Safe to call on every start.
    ///
    /// # Errors
    /// [`SqlError::Migrate`], including a database migrated by a newer version.
    pub async fn migrate(&self) -> Result<(), SqlError> {
        let migrator = match self.dialect {
            Dialect::Postgres => sqlx::migrate!("migrations/postgres"),
            Dialect::MySql => sqlx::migrate!("migrations/mysql"),
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite"),
        };
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The pool, for queries of your own.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn sql(&self, postgres: &'static str) -> &'static str {
        self.dialect.sql(postgres)
    }

    /// Begins a transaction that will write: on SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers never deadlock upgrading their locks.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres | Dialect::MySql => self.pool.begin().await,
        }
    }

    /// Runs a transaction body, retrying it when the database reports a deadlock, a
    /// serialization failure or a busy lock. The body must do nothing but database work, so
    /// running it again is safe.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        what: &'static str,
        mut body: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let mut attempt = 0u32;
        loop {
            match body().await {
                Ok(v) => return Ok(v),
                Err(e) if is_retryable(&e) && attempt < 20 => {
                    attempt += 1;
                    let backoff = Duration::from_millis(u64::from(attempt.min(10)) * 2)
                        + Duration::from_micros(u64::from(rand_jitter()) % 2_000);
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => return Err(store_error(what, e)),
            }
        }
    }
}

fn rand_jitter() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32
}

/// Whether the error is a transient conflict worth retrying the transaction for.
pub(crate) fn is_retryable(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    let code = db.code().unwrap_or_default();
    let message = db.message();
    matches!(
        code.as_ref(),
        // Postgres: serialization failure, deadlock.
        "40001" | "40P01"
        // MySQL/MariaDB: deadlock, lock wait timeout (SQLSTATE 40001 / HY000 with these).
        | "1213" | "1205"
        // SQLite: busy, locked.
        | "5" | "6" | "517" | "262"
    ) || message.contains("Deadlock found")
        || message.contains("Lock wait timeout")
        || message.contains("database is locked")
}

/// Whether the error is a unique-key violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// Maps a driver error to the store error callers branch on.
pub(crate) fn store_error(what: &'static str, e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => StoreError::unavailable(what, e),
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => StoreError::Corrupt {
            message: format!("{what}: {e}"),
        },
        e if is_retryable(&e) => StoreError::Conflict {
            message: what.to_owned(),
            source: Some(std::sync::Arc::new(e)),
        },
        e => StoreError::backend(what, e),
    }
}

/// Decodes a JSON document column.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    json: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt {
        message: format!("{what}: {e}"),
    })
}

/// Encodes a JSON document column.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain types serialize to JSON")
}

/// Milliseconds since the epoch of a timestamp.
pub(crate) fn millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_translate_per_dialect() {
        let sql = "SELECT a FROM t WHERE x = $1 AND y = $2 FOR UPDATE";
        assert_eq!(Dialect::Postgres.sql(sql), sql);
        assert_eq!(
            Dialect::MySql.sql(sql),
            "SELECT a FROM t WHERE x = ? AND y = ? FOR UPDATE"
        );
        assert_eq!(
            Dialect::Sqlite.sql(sql),
            "SELECT a FROM t WHERE x = $1 AND y = $2"
        );
        assert_eq!(Dialect::MySql.placeholders(3, 2), "?, ?");
        assert_eq!(Dialect::Postgres.placeholders(3, 2), "$3, $4");
    }

    #[test]
    fn urls_pick_a_dialect() {
        assert!(matches!(
            Dialect::of_url("postgres://x"),
            Ok(Dialect::Postgres)
        ));
        assert!(matches!(Dialect::of_url("mysql://x"), Ok(Dialect::MySql)));
        assert!(matches!(
            Dialect::of_url("sqlite://x.db"),
            Ok(Dialect::Sqlite)
        ));
        assert!(
            matches!(Dialect::of_url("oracle://x"), Err(SqlError::UnsupportedScheme(s)) if s == "oracle")
        );
    }
}
