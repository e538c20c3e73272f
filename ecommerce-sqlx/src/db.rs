//! The database handle: one pool, its dialect, migrations, error mapping and retries.

use std::fmt;
use std::future::Future;
use std::time::{Duration, Instant};

use ecommerce_core::error::StoreError;
use sqlx::pool::PoolOptions;
use sqlx::{Executor, Transaction};

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
    /// [`SqlError::UnsupportedScheme`], or [`SqlError::NotBuilt`] for a dialect whose cargo
    /// feature is off.
    pub fn of_url(url: &str) -> Result<Dialect, SqlError> {
        let scheme = url.split(':').next().unwrap_or_default();
        let dialect = match scheme {
            "postgres" | "postgresql" => Dialect::Postgres,
            "mysql" | "mariadb" => Dialect::MySql,
            "sqlite" => Dialect::Sqlite,
            other => {
                return Err(SqlError::UnsupportedScheme(
                    other.chars().take(32).collect(),
                ));
            }
        };
        if dialect.built() {
            Ok(dialect)
        } else {
            Err(SqlError::NotBuilt {
                dialect,
                feature: dialect.name(),
            })
        }
    }

    /// Whether this build supports the dialect: its cargo feature (`postgres`, `mysql`,
    /// `sqlite`) is on, so its driver and migrations are compiled in.
    pub const fn built(self) -> bool {
        match self {
            Dialect::Postgres => cfg!(feature = "postgres"),
            Dialect::MySql => cfg!(feature = "mysql"),
            Dialect::Sqlite => cfg!(feature = "sqlite"),
        }
    }

    /// The backend's name as spans record it, and its cargo feature: `postgres`, `mysql` or
    /// `sqlite`.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::MySql => "mysql",
            Dialect::Sqlite => "sqlite",
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
    /// The URL's scheme is not `postgres`, `mysql` or `sqlite`.
    #[error("unsupported database url scheme `{0}`")]
    UnsupportedScheme(String),
    /// The URL names a dialect this build leaves out: turn on the crate's cargo feature of
    /// that name.
    #[error(
        "this build has no {dialect:?} support: enable the `{feature}` feature of ecommerce-sqlx"
    )]
    NotBuilt {
        /// The dialect the URL names.
        dialect: Dialect,
        /// The cargo feature that brings it in.
        feature: &'static str,
    },
    /// The URL does not parse.
    #[error("invalid database url: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    /// The database cannot be reached.
    #[error("database unreachable: {0}")]
    Unreachable(#[source] sqlx::Error),
    /// Migrations failed, or the database has migrations this version does not know.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database holds the stores' tables in the layout of the 0.1 development builds
    /// (ids as text, times as integers, documents as text). This version neither reads nor
    /// converts it: point the stores at a new database (or schema), or drop the old tables and
    /// `_sqlx_migrations` first.
    #[error(
        "the database holds the stores' tables in the layout of the 0.1 development builds \
         (ids as text, times as integers, documents as text), which this version does not read: \
         use a new database or schema, or drop those tables and `_sqlx_migrations` first"
    )]
    OldLayout,
    /// Any other database error.
    #[error(transparent)]
    Database(sqlx::Error),
}

/// Pool settings and the bounds on every wait.
///
/// A database that is down, unreachable or stuck costs a call at most about
/// `acquire_timeout` (or `statement_timeout` once a statement runs) and then a
/// [`StoreError::Unavailable`], which [`StoreError::is_transient`] reports as worth retrying
/// later. The pool reconnects by itself when the database is back: every pooled connection is
/// checked before it is handed out (within `acquire_timeout`), and broken ones are replaced.
///
/// One wait is not bounded here: a statement already sent when the network between the pool
/// and a live server goes silent. The server's statement timeout never hears of it, and sqlx
/// has no client-side one, so it waits for the operating system to give up on the TCP
/// connection.
///
/// ```
/// use std::time::Duration;
/// use ecommerce_sqlx::DbOptions;
///
/// let options = DbOptions {
///     max_connections: 32,
///     statement_timeout: Some(Duration::from_secs(5)),
///     ..DbOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DbOptions {
    /// Most connections in the pool. Default 16 (an in-memory SQLite database keeps one).
    pub max_connections: u32,
    /// How long a call waits for a connection: a free one from the pool, checked before use,
    /// or a new one opened (TCP, TLS, authentication and the session setup), retrying a
    /// refused connection until then. Past it the call fails with
    /// [`StoreError::Unavailable`]. This is what a dead or unreachable database costs a call.
    /// Default 1 s.
    pub acquire_timeout: Duration,
    /// How long [`Db::connect_with`] keeps trying to open its first connection (a refused or
    /// dropped connection is retried, each attempt bounded by `acquire_timeout`) before it
    /// fails with [`SqlError::Unreachable`]. Default 2 s.
    pub connect_timeout: Duration,
    /// The longest one statement may run, lock waits included, set on every connection:
    /// PostgreSQL `statement_timeout`; MariaDB `max_statement_time` (MySQL
    /// `max_execution_time`, which bounds reads only) and `innodb_lock_wait_timeout` (rounded
    /// up to whole seconds); SQLite `busy_timeout`. A statement cut short fails the call with
    /// [`StoreError::Unavailable`]. `None` leaves the server's own settings (SQLite: 5 s).
    /// Migrations run without it. Default 2 s.
    pub statement_timeout: Option<Duration>,
    /// How long a write keeps retrying its transaction after a deadlock, a serialization
    /// failure, a lock wait timeout or a busy database: no attempt starts after this much time
    /// since the first (and never more than 20 attempts); the call then fails with
    /// [`StoreError::Conflict`]. Connection failures, pool timeouts and statement timeouts are
    /// never retried: they fail the call at once. Default 2 s.
    pub retry_timeout: Duration,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Some(Duration::from_secs(2)),
            retry_timeout: Duration::from_secs(2),
        }
    }
}

/// A database: a connection pool and its dialect. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    /// Where writes go: the pool itself, or on SQLite one write connection of its own.
    writer: Pool,
    dialect: Dialect,
    options: DbOptions,
    /// The server answers `INSERT ... RETURNING`.
    returning: bool,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("dialect", &self.dialect)
            .field("size", &self.pool.size())
            .finish()
    }
}

/// A connection pool of the database's own driver, for statements of your own.
///
/// The stores talk to each database through its native sqlx driver (`sqlx::PgPool`,
/// `sqlx::MySqlPool`, `sqlx::SqlitePool`), so the values they bind and read keep their
/// database types. Match on the pool to run queries of your own with the same connections;
/// [`Db::execute`] runs a statement without parameters on any of them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Pool {
    /// PostgreSQL.
    #[cfg(feature = "postgres")]
    Postgres(sqlx::PgPool),
    /// MySQL or MariaDB.
    #[cfg(feature = "mysql")]
    MySql(sqlx::MySqlPool),
    /// SQLite.
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::SqlitePool),
}

/// A transaction of the database's own driver.
pub(crate) enum Tx {
    #[cfg(feature = "postgres")]
    Postgres(Transaction<'static, sqlx::Postgres>),
    #[cfg(feature = "mysql")]
    MySql(Transaction<'static, sqlx::MySql>),
    #[cfg(feature = "sqlite")]
    Sqlite(Transaction<'static, sqlx::Sqlite>),
}

/// Runs `$body` once for the database behind a [`Tx`] (`tx(..)`), a [`Pool`] (`pool(..)`)
/// or either ([`On`], `on(..)`), with `$c` bound to its native executor (a `&mut` connection
/// or a `&` pool) and `$sql` to a function that picks a [`Sql`](crate::statement::Sql)
/// statement's form for that database. The body is compiled once per dialect, against that
/// dialect's own driver, so it must come to the same type in each: decode rows inside it. A
/// body that runs several statements reborrows the connection (`&mut *c`).
macro_rules! native {
    (tx($on:expr), |$c:ident, $sql:ident| $body:expr) => {
        match $on {
            #[cfg(feature = "postgres")]
            $crate::db::Tx::Postgres(t) => {
                let $c = &mut **t;
                #[allow(unused_variables)]
                let $sql = |s: $crate::statement::Sql| -> &'static str { s.postgres };
                $body
            }
            #[cfg(feature = "mysql")]
            $crate::db::Tx::MySql(t) => {
                let $c = &mut **t;
                #[allow(unused_variables)]
                let $sql = |s: $crate::statement::Sql| -> &'static str { s.mysql };
                $body
            }
            #[cfg(feature = "sqlite")]
            $crate::db::Tx::Sqlite(t) => {
                let $c = &mut **t;
                #[allow(unused_variables)]
                let $sql = |s: $crate::statement::Sql| -> &'static str { s.sqlite };
                $body
            }
        }
    };
    (pool($on:expr), |$c:ident, $sql:ident| $body:expr) => {
        match $on {
            #[cfg(feature = "postgres")]
            $crate::db::Pool::Postgres($c) => {
                #[allow(unused_variables)]
                let $sql = |s: $crate::statement::Sql| -> &'static str { s.postgres };
                $body
            }
            #[cfg(feature = "mysql")]
            $crate::db::Pool::MySql($c) => {
                #[allow(unused_variables)]
                let $sql = |s: $crate::statement::Sql| -> &'static str { s.mysql };
                $body
            }
            #[cfg(feature = "sqlite")]
            $crate::db::Pool::Sqlite($c) => {
                #[allow(unused_variables)]
                let $sql = |s: $crate::statement::Sql| -> &'static str { s.sqlite };
                $body
            }
        }
    };
    (on($on:expr), |$c:ident, $sql:ident| $body:expr) => {
        match $on {
            $crate::db::On::Tx(tx) => $crate::db::native!(tx(tx), |$c, $sql| $body),
            $crate::db::On::Pool(pool) => $crate::db::native!(pool(pool), |$c, $sql| $body),
        }
    };
}
pub(crate) use native;

/// Where a single statement runs: in a transaction, or on a pool by itself.
pub(crate) enum On<'a> {
    Tx(&'a mut Tx),
    Pool(&'a Pool),
}

impl Pool {
    /// Connections open, idle or in use.
    pub fn size(&self) -> u32 {
        native!(pool(self), |p, _sql| p.size())
    }

    /// Connections open and idle.
    pub fn num_idle(&self) -> usize {
        native!(pool(self), |p, _sql| p.num_idle())
    }

    /// Closes every connection; calls waiting for one fail.
    pub async fn close(&self) {
        native!(pool(self), |p, _sql| p.close().await)
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "mysql")]
            Pool::MySql(_) => Dialect::MySql,
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Runs one statement without parameters (DDL, a cleanup) as it is written, on one
    /// connection of the pool, and gives the number of rows it affected. A session setting
    /// set this way holds on that connection only: give settings to
    /// [`Db::connect_with`]'s `setup`, which runs them on every connection.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        native!(pool(self), |p, _sql| p
            .execute(sql)
            .await
            .map(|done| done.rows_affected()))
    }

    /// Begins a transaction that will write (on SQLite `BEGIN IMMEDIATE`: the write lock at
    /// once).
    async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        Ok(match self {
            #[cfg(feature = "postgres")]
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
            #[cfg(feature = "mysql")]
            Pool::MySql(p) => Tx::MySql(p.begin().await?),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
        })
    }
}

impl Tx {
    /// Commits.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(t) => t.commit().await,
            #[cfg(feature = "mysql")]
            Tx::MySql(t) => t.commit().await,
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(t) => t.commit().await,
        }
    }

    /// Rolls back.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            #[cfg(feature = "postgres")]
            Tx::Postgres(t) => t.rollback().await,
            #[cfg(feature = "mysql")]
            Tx::MySql(t) => t.rollback().await,
            #[cfg(feature = "sqlite")]
            Tx::Sqlite(t) => t.rollback().await,
        }
    }
}

/// The pool settings of a dialect: bounded waits, connections checked before use, the
/// session setup on every new connection.
fn new_pool<DB: sqlx::Database>(
    dialect: Dialect,
    options: &DbOptions,
    setup: &[String],
    max_connections: u32,
    acquire_timeout: Duration,
) -> PoolOptions<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let extra: Vec<String> = setup.to_vec();
    let statement_timeout = options.statement_timeout;
    PoolOptions::<DB>::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        // A pooled connection is pinged before use (bounded by the acquire timeout), so
        // connections broken by an outage are replaced, not handed out.
        .test_before_acquire(true)
        .after_connect(move |conn, _| {
            let extra = extra.clone();
            Box::pin(async move {
                for stmt in session_setup(dialect, statement_timeout) {
                    conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
                }
                if let (Dialect::MySql, Some(t)) = (dialect, statement_timeout) {
                    // The first the server knows.
                    for stmt in mysql_statement_timeouts(t) {
                        match conn.execute(sqlx::AssertSqlSafe(stmt)).await {
                            Ok(_) => break,
                            Err(sqlx::Error::Database(_)) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                for stmt in extra {
                    conn.execute(sqlx::AssertSqlSafe(stmt)).await?;
                }
                Ok(())
            })
        })
}

/// Statements run on every new connection of a dialect.
fn session_setup(dialect: Dialect, statement_timeout: Option<Duration>) -> Vec<String> {
    match dialect {
        Dialect::Postgres => match statement_timeout {
            Some(t) => vec![format!("SET statement_timeout = {}", millis_of(t))],
            None => Vec::new(),
        },
        Dialect::MySql => {
            let mut setup = vec![
                "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'".to_owned(),
            ];
            // A lock wait is bounded by the statement timeout, in whole seconds (at least 1).
            let lock_wait =
                statement_timeout.map_or(20, |t| t.as_secs_f64().ceil().max(1.0) as u64);
            setup.push(format!(
                "SET SESSION innodb_lock_wait_timeout = {lock_wait}"
            ));
            setup
        }
        Dialect::Sqlite => {
            let mut setup = vec![
                "PRAGMA journal_mode = WAL".to_owned(),
                "PRAGMA synchronous = NORMAL".to_owned(),
            ];
            if let Some(t) = statement_timeout {
                setup.push(format!("PRAGMA busy_timeout = {}", millis_of(t)));
            }
            setup.push("PRAGMA foreign_keys = ON".to_owned());
            setup
        }
    }
}

/// The statements that bound statements on a new MySQL or MariaDB connection, in the order
/// they are tried: `max_statement_time` (MariaDB, in seconds, every statement) and, where the
/// server does not know it, `max_execution_time` (MySQL 5.7.8+, in milliseconds, reads only).
/// A server with neither keeps its lock wait bound only.
fn mysql_statement_timeouts(timeout: Duration) -> [String; 2] {
    [
        format!(
            "SET SESSION max_statement_time = {:.3}",
            timeout.as_secs_f64()
        ),
        format!("SET SESSION max_execution_time = {}", millis_of(timeout)),
    ]
}

/// Whether a MySQL-protocol server is MariaDB 10.5 or later, which answers
/// `INSERT ... RETURNING`; `false` for MySQL and when the version cannot be read.
#[cfg(feature = "mysql")]
async fn mariadb_returning(pool: &sqlx::MySqlPool) -> bool {
    let version: Option<(String,)> = sqlx::query_as("SELECT VERSION()")
        .fetch_optional(pool)
        .await
        .ok()
        .flatten();
    version.is_some_and(|(v,)| mariadb_with_returning(&v))
}

/// Whether a `VERSION()` string names MariaDB 10.5 or later.
#[cfg(feature = "mysql")]
fn mariadb_with_returning(version: &str) -> bool {
    if !version.contains("MariaDB") {
        return false;
    }
    // The prefix some MariaDB servers put before their version for old MySQL clients.
    let version = version.strip_prefix("5.5.5-").unwrap_or(version);
    let mut numbers = version.split(['.', '-']).map(|n| n.parse::<u32>().ok());
    match (numbers.next().flatten(), numbers.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (10, 5),
        _ => false,
    }
}

/// Applies `migrator` on a connection of `pool`, after running `unbounded` on it (the
/// statement limits lifted); such a connection is closed afterwards, not returned to the pool.
async fn migrate_on<DB>(
    pool: &sqlx::Pool<DB>,
    migrator: sqlx::migrate::Migrator,
    unbounded: &[&'static str],
) -> Result<(), SqlError>
where
    DB: sqlx::Database,
    DB::Connection: sqlx::migrate::Migrate,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    let mut conn = pool.acquire().await.map_err(SqlError::Unreachable)?;
    for stmt in unbounded {
        // MariaDB knows one of the two statement limits, MySQL the other.
        match conn.execute(*stmt).await {
            Ok(_) | Err(sqlx::Error::Database(_)) => {}
            Err(e) => return Err(SqlError::Unreachable(e)),
        }
    }
    // `run_direct` is `run` on a connection (sqlx's way around "`Acquire` is not general
    // enough" in a `Send` future).
    let result = migrator.run_direct(None, &mut *conn, false).await;
    if !unbounded.is_empty() {
        let _ = conn.close().await;
    }
    result?;
    Ok(())
}

/// Whole milliseconds of a timeout, at least 1 (0 means "no limit" to the databases).
fn millis_of(t: Duration) -> u128 {
    t.as_millis().max(1)
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
        let max = options.max_connections;
        let pool_of = |max: u32, acquire: Duration| (dialect, &options, setup, max, acquire);
        let (pool, writer) = match dialect {
            #[cfg(feature = "postgres")]
            Dialect::Postgres => {
                let connect: sqlx::postgres::PgConnectOptions =
                    url.parse().map_err(SqlError::InvalidUrl)?;
                let (d, o, s, m, a) = pool_of(max, options.acquire_timeout);
                let pool = Pool::Postgres(new_pool(d, o, s, m, a).connect_lazy_with(connect));
                (pool.clone(), pool)
            }
            #[cfg(feature = "mysql")]
            Dialect::MySql => {
                let connect: sqlx::mysql::MySqlConnectOptions =
                    url.parse().map_err(SqlError::InvalidUrl)?;
                let (d, o, s, m, a) = pool_of(max, options.acquire_timeout);
                let pool = Pool::MySql(new_pool(d, o, s, m, a).connect_lazy_with(connect));
                (pool.clone(), pool)
            }
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => {
                let connect: sqlx::sqlite::SqliteConnectOptions =
                    url.parse().map_err(SqlError::InvalidUrl)?;
                // An in-memory database exists once per connection: keep one.
                let max = if url.contains("memory") { 1 } else { max };
                let (d, o, s, m, a) = pool_of(max, options.acquire_timeout);
                let pool = new_pool(d, o, s, m, a).connect_lazy_with(connect.clone());
                // SQLite takes one writer at a time: writers queue for a single write
                // connection (in the order they came) instead of sleeping in the busy handler
                // while the lock is free. A writer waits its turn for up to the acquire and
                // the statement timeouts together, as long as it waited on the busy handler
                // before.
                let writer = if max > 1 {
                    let wait =
                        options.acquire_timeout + options.statement_timeout.unwrap_or_default();
                    let (d, o, s, m, a) = pool_of(1, wait);
                    new_pool(d, o, s, m, a).connect_lazy_with(connect)
                } else {
                    pool.clone()
                };
                (Pool::Sqlite(pool), Pool::Sqlite(writer))
            }
            // `of_url` refuses a dialect this build leaves out.
            #[allow(unreachable_patterns)]
            dialect => {
                return Err(SqlError::NotBuilt {
                    dialect,
                    feature: dialect.name(),
                });
            }
        };
        #[cfg_attr(not(feature = "mysql"), allow(unused_mut))]
        let mut db = Db {
            pool,
            writer,
            dialect,
            options,
            returning: dialect != Dialect::MySql,
        };
        db.first_connection().await?;
        if let Err(e) = db.refuse_old_layout().await {
            db.close().await;
            return Err(e);
        }
        #[cfg(feature = "mysql")]
        #[allow(irrefutable_let_patterns)]
        if let Pool::MySql(pool) = &db.pool {
            db.returning = mariadb_returning(pool).await;
        }
        Ok(db)
    }

    /// Opens the pool's first connection, retrying transient failures until the connect
    /// timeout.
    async fn first_connection(&self) -> Result<(), SqlError> {
        let started = Instant::now();
        let deadline = started + self.options.connect_timeout;
        let mut backoff = Duration::from_millis(20);
        loop {
            let acquire =
                async { native!(pool(&self.pool), |p, _sql| p.acquire().await.map(drop)) };
            let attempt = tokio::time::timeout_at(deadline.into(), acquire).await;
            let error = match attempt {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e @ sqlx::Error::Configuration(_))) => return Err(SqlError::InvalidUrl(e)),
                Ok(Err(e)) => e,
                Err(_) => sqlx::Error::PoolTimedOut,
            };
            let transient = matches!(
                error,
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_)
            );
            if !transient || Instant::now() + backoff >= deadline {
                self.close().await;
                return Err(SqlError::Unreachable(error));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// [`SqlError::OldLayout`] if the database was migrated by a development build of 0.1
    /// (its first migration was `init`; this version's is `schema`). A database without the
    /// migrations table is new.
    async fn refuse_old_layout(&self) -> Result<(), SqlError> {
        // On PostgreSQL, only the migrations table of the schema the stores work in (the
        // first of the search path, where migrating would make it): a new schema beside an
        // old one is new.
        let statement = match self.dialect {
            Dialect::Postgres => {
                "SELECT description FROM _sqlx_migrations WHERE version = 1 AND EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations')"
            }
            Dialect::MySql | Dialect::Sqlite => {
                "SELECT description FROM _sqlx_migrations WHERE version = 1"
            }
        };
        let first: Result<Option<String>, sqlx::Error> = native!(pool(&self.pool), |c, _sql| {
            sqlx::query_scalar(statement).fetch_optional(c).await
        });
        match first {
            Ok(Some(description)) if description == "init" => Err(SqlError::OldLayout),
            Ok(_) | Err(sqlx::Error::Database(_)) => Ok(()),
            Err(e) => Err(SqlError::Unreachable(e)),
        }
    }

    /// Whether the server answers `INSERT ... RETURNING`: PostgreSQL, SQLite and MariaDB 10.5
    /// or later do, MySQL does not (the stores then read an inserted row back).
    pub fn returning(&self) -> bool {
        self.returning
    }

    /// Applies the embedded migrations of the dialect. Safe to call on every start.
    ///
    /// # Errors
    /// [`SqlError::Migrate`], including a database migrated by a newer version.
    pub async fn migrate(&self) -> Result<(), SqlError> {
        // Migrations may run long (an index on a big table, a wait for another instance's
        // migration lock): on PostgreSQL and MySQL they run on a connection of their own
        // without the statement timeout, closed afterwards rather than returned to the pool
        // with its limits off. (SQLite keeps its connection: an in-memory database lives in
        // it.)
        let unbounded: &[&'static str] = match (self.dialect, self.options.statement_timeout) {
            (_, None) | (Dialect::Sqlite, _) => &[],
            (Dialect::Postgres, Some(_)) => &["SET statement_timeout = 0"],
            (Dialect::MySql, Some(_)) => &[
                "SET SESSION max_statement_time = 0",
                "SET SESSION max_execution_time = 0",
                "SET SESSION innodb_lock_wait_timeout = 50",
            ],
        };
        match &self.writer {
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => {
                migrate_on(pool, sqlx::migrate!("migrations/postgres"), unbounded).await
            }
            #[cfg(feature = "mysql")]
            Pool::MySql(pool) => {
                migrate_on(pool, sqlx::migrate!("migrations/mysql"), unbounded).await
            }
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => {
                migrate_on(pool, sqlx::migrate!("migrations/sqlite"), unbounded).await
            }
        }
    }

    /// The settings the pool was made with.
    pub fn options(&self) -> DbOptions {
        self.options
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The pool, for queries of your own.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs one statement of your own without parameters (see [`Pool::execute`]) where the
    /// stores' writes go: on SQLite its single write connection, so it queues with them
    /// instead of waiting on the busy timeout; elsewhere the pool.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn execute(&self, sql: &str) -> Result<u64, sqlx::Error> {
        self.writer.execute(sql).await
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.writer.close().await;
        self.pool.close().await;
    }

    /// Where a statement that writes outside a transaction goes: the pool, or on SQLite its
    /// single write connection.
    pub(crate) fn writer(&self) -> &Pool {
        &self.writer
    }

    /// The backend's name as spans record it (the `backend` field): `postgres`, `mysql` or
    /// `sqlite`.
    pub(crate) fn backend(&self) -> &'static str {
        self.dialect.name()
    }

    /// Begins a transaction that will write: on SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers never deadlock upgrading their locks.
    ///
    /// The begin runs in a task of its own, so a caller that goes away while it runs (a
    /// dropped future) never leaves a transaction open on a pooled connection: the task
    /// finishes the begin, and the transaction it returns rolls back when dropped.
    pub(crate) async fn begin_write(&self) -> Result<Tx, sqlx::Error> {
        let pool = self.writer.clone();
        tokio::spawn(async move { pool.begin_write().await })
            .await
            .unwrap_or_else(|e| match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // The runtime is shutting down.
                Err(_) => Err(sqlx::Error::WorkerCrashed),
            })
    }

    /// Runs a transaction body, retrying it when the database reports a deadlock, a
    /// serialization failure, a lock wait timeout or a busy database, for at most
    /// [`DbOptions::retry_timeout`] (and 20 attempts). The body must do nothing but database
    /// work, so running it again is safe. Anything else, a dead connection or a pool or
    /// statement timeout in particular, fails at once: retrying would multiply a wait the
    /// caller already paid in full.
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        what: &'static str,
        mut body: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            match body().await {
                Ok(v) => return Ok(v),
                Err(e)
                    if is_retryable(&e)
                        && attempt < 20
                        && started.elapsed() < self.options.retry_timeout =>
                {
                    // `attempt`: the number (from 1) of the attempt that just failed; every
                    // event here carries it and `what`, inside the span of the store call.
                    attempt += 1;
                    tracing::debug!(what, attempt, error = %e, "retrying after a transient conflict");
                    let backoff = Duration::from_millis(u64::from(attempt.min(10)) * 2)
                        + Duration::from_micros(u64::from(rand_jitter()) % 2_000);
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => {
                    if attempt > 0 {
                        tracing::warn!(what, attempt = attempt + 1, error = %e, "failed after retries");
                    }
                    return Err(store_error(what, e));
                }
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

/// Whether the database cut a statement short for running past its time limit.
pub(crate) fn is_statement_timeout(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    let code = db.code().unwrap_or_default();
    let message = db.message();
    // PostgreSQL: query_canceled (statement_timeout). MariaDB: 1969 (SQLSTATE 70100).
    // MySQL: 3024 (SQLSTATE HY000).
    matches!(code.as_ref(), "57014" | "70100")
        || message.contains("max_statement_time exceeded")
        || message.contains("maximum statement execution time exceeded")
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
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => StoreError::unavailable(what, e),
        e if is_statement_timeout(&e) => StoreError::unavailable(what, e),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "mysql")]
    fn mariadb_from_10_5_answers_insert_returning() {
        assert!(mariadb_with_returning("10.11.19-MariaDB-0+deb12u1"));
        assert!(mariadb_with_returning("10.5.0-MariaDB"));
        assert!(mariadb_with_returning("5.5.5-10.6.12-MariaDB"));
        assert!(!mariadb_with_returning("10.4.32-MariaDB"));
        assert!(!mariadb_with_returning("8.0.36"));
        assert!(!mariadb_with_returning("MariaDB"));
    }

    #[test]
    fn in_lists_take_placeholders_per_dialect() {
        assert_eq!(Dialect::MySql.placeholders(3, 2), "?, ?");
        assert_eq!(Dialect::Postgres.placeholders(3, 2), "$3, $4");
    }

    #[test]
    fn urls_pick_a_dialect_this_build_supports() {
        let urls = [
            ("postgres://x", Dialect::Postgres),
            ("mysql://x", Dialect::MySql),
            ("sqlite://x.db", Dialect::Sqlite),
        ];
        for (url, dialect) in urls {
            match Dialect::of_url(url) {
                Ok(d) => assert!(d == dialect && d.built(), "{url}"),
                Err(SqlError::NotBuilt {
                    dialect: d,
                    feature,
                }) => {
                    assert!(d == dialect && !d.built() && feature == d.name(), "{url}");
                }
                Err(e) => panic!("{url}: {e}"),
            }
        }
        assert!(
            matches!(Dialect::of_url("oracle://x"), Err(SqlError::UnsupportedScheme(s)) if s == "oracle")
        );
    }
}
