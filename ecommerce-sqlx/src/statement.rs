//! Statements in every dialect, fixed when the crate compiles.
//!
//! A statement is written once for PostgreSQL with [`sql!`]; its MySQL form (`?` for each
//! `$n`) and its SQLite form (no `FOR UPDATE [SKIP LOCKED]`: SQLite locks the whole database for
//! a writing transaction) are derived by `const fn`s, so every form is a `&'static str` in the binary and
//! choosing one is a field read. A MySQL placeholder binds by position, so a statement whose
//! `$n` are not `$1, $2, ...` in order, each once, does not compile. Statements that differ
//! beyond that are written per dialect in the same macro.

/// One statement in the three dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sql {
    /// For PostgreSQL.
    pub(crate) postgres: &'static str,
    /// For MySQL and MariaDB.
    pub(crate) mysql: &'static str,
    /// For SQLite.
    pub(crate) sqlite: &'static str,
}

/// A statement in every dialect, as a constant [`Sql`]:
///
/// - `sql!("... $1 ... FOR UPDATE")`: written for PostgreSQL; MySQL gets `?` placeholders
///   and SQLite loses `FOR UPDATE` (and `SKIP LOCKED`);
/// - `sql!("...", mysql: "...")`: MySQL written apart (an upsert, a function of its own);
///   SQLite derived from the first as above;
/// - `sql!(postgres: "...", mysql: "...", sqlite: "...")`: each written apart.
macro_rules! sql {
    ($postgres:expr) => {{
        const POSTGRES: &str = $postgres;
        const MYSQL_LEN: usize = $crate::statement::mysql_len(POSTGRES);
        const MYSQL: [u8; MYSQL_LEN] = $crate::statement::to_mysql(POSTGRES);
        $crate::statement::sql!(@sqlite POSTGRES, $crate::statement::utf8(&MYSQL))
    }};
    ($postgres:expr, mysql: $mysql:expr $(,)?) => {{
        const POSTGRES: &str = $postgres;
        $crate::statement::sql!(@sqlite POSTGRES, $mysql)
    }};
    (postgres: $postgres:expr, mysql: $mysql:expr, sqlite: $sqlite:expr $(,)?) => {{
        const SQL: $crate::statement::Sql = $crate::statement::Sql {
            postgres: $postgres,
            mysql: $mysql,
            sqlite: $sqlite,
        };
        SQL
    }};
    (@sqlite $postgres:expr, $mysql:expr) => {{
        const SQLITE_LEN: usize = $crate::statement::sqlite_len($postgres);
        const SQLITE: [u8; SQLITE_LEN] = $crate::statement::to_sqlite($postgres);
        const SQL: $crate::statement::Sql = $crate::statement::Sql {
            postgres: $postgres,
            mysql: $mysql,
            sqlite: $crate::statement::utf8(&SQLITE),
        };
        SQL
    }};
}
pub(crate) use sql;

/// The row-lock clauses SQLite drops from a PostgreSQL statement, longest first.
const LOCK_CLAUSES: [&[u8]; 2] = [b" FOR UPDATE SKIP LOCKED", b" FOR UPDATE"];

/// The length of a PostgreSQL statement's `$n` placeholder at byte `i` (0 if there is none).
const fn placeholder_at(sql: &[u8], i: usize) -> usize {
    if sql[i] != b'$' {
        return 0;
    }
    let mut end = i + 1;
    while end < sql.len() && sql[end].is_ascii_digit() {
        end += 1;
    }
    if end == i + 1 { 0 } else { end - i }
}

/// The number a placeholder of `len` bytes at byte `i` stands for.
const fn placeholder_number(sql: &[u8], i: usize, len: usize) -> usize {
    let mut n = 0;
    let mut j = i + 1;
    while j < i + len {
        n = n * 10 + (sql[j] - b'0') as usize;
        j += 1;
    }
    n
}

/// The length of the MySQL form of `postgres`; fails (at compile time, in a constant) unless
/// its placeholders are `$1, $2, ...` in order, each once.
pub(crate) const fn mysql_len(postgres: &str) -> usize {
    match check_mysql(postgres) {
        Ok(len) => len,
        Err(message) => panic!("{}", message),
    }
}

/// The length of the MySQL form, or why a statement has none.
pub(crate) const fn check_mysql(postgres: &str) -> Result<usize, &'static str> {
    let sql = postgres.as_bytes();
    let (mut i, mut len, mut expected) = (0, 0, 1);
    while i < sql.len() {
        let placeholder = placeholder_at(sql, i);
        if placeholder == 0 {
            i += 1;
        } else {
            if placeholder_number(sql, i, placeholder) != expected {
                return Err(
                    "MySQL placeholders bind by position: write $1, $2, ... in order, each once",
                );
            }
            expected += 1;
            i += placeholder;
        }
        len += 1;
    }
    Ok(len)
}

/// The MySQL form of `postgres`: each `$n` becomes `?`. `N` is [`mysql_len`].
pub(crate) const fn to_mysql<const N: usize>(postgres: &str) -> [u8; N] {
    let sql = postgres.as_bytes();
    let mut out = [0u8; N];
    let (mut i, mut o) = (0, 0);
    while i < sql.len() {
        let placeholder = placeholder_at(sql, i);
        if placeholder == 0 {
            out[o] = sql[i];
            i += 1;
        } else {
            out[o] = b'?';
            i += placeholder;
        }
        o += 1;
    }
    out
}

/// The length of the row-lock clause that starts at byte `i` (0 if none does).
const fn lock_clause_at(sql: &[u8], i: usize) -> usize {
    let mut c = 0;
    while c < LOCK_CLAUSES.len() {
        let clause = LOCK_CLAUSES[c];
        let mut j = 0;
        while j < clause.len() && i + j < sql.len() && sql[i + j] == clause[j] {
            j += 1;
        }
        if j == clause.len() {
            return j;
        }
        c += 1;
    }
    0
}

/// The length of the SQLite form of `postgres`.
pub(crate) const fn sqlite_len(postgres: &str) -> usize {
    let sql = postgres.as_bytes();
    let (mut i, mut len) = (0, 0);
    while i < sql.len() {
        let clause = lock_clause_at(sql, i);
        if clause == 0 {
            i += 1;
            len += 1;
        } else {
            i += clause;
        }
    }
    len
}

/// The SQLite form of `postgres`: without row-lock clauses. `N` is [`sqlite_len`].
pub(crate) const fn to_sqlite<const N: usize>(postgres: &str) -> [u8; N] {
    let sql = postgres.as_bytes();
    let mut out = [0u8; N];
    let (mut i, mut o) = (0, 0);
    while i < sql.len() {
        let clause = lock_clause_at(sql, i);
        if clause == 0 {
            out[o] = sql[i];
            i += 1;
            o += 1;
        } else {
            i += clause;
        }
    }
    out
}

/// A derived form as text. Both derivations replace or drop ASCII only, so it stays UTF-8.
pub(crate) const fn utf8(bytes: &'static [u8]) -> &'static str {
    match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(_) => panic!("a derived statement is not UTF-8"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_derived_per_dialect() {
        const S: Sql = sql!("SELECT a FROM t WHERE x = $1 AND y = $2 FOR UPDATE");
        assert_eq!(
            S.postgres,
            "SELECT a FROM t WHERE x = $1 AND y = $2 FOR UPDATE"
        );
        assert_eq!(S.mysql, "SELECT a FROM t WHERE x = ? AND y = ? FOR UPDATE");
        assert_eq!(S.sqlite, "SELECT a FROM t WHERE x = $1 AND y = $2");
    }

    #[test]
    fn sqlite_drops_a_lock_that_skips_locked_rows() {
        const S: Sql = sql!("SELECT b FROM t WHERE k = $1 LIMIT 1 FOR UPDATE SKIP LOCKED");
        assert_eq!(S.sqlite, "SELECT b FROM t WHERE k = $1 LIMIT 1");
    }

    #[test]
    fn placeholders_past_nine_and_dollars_that_are_not_placeholders() {
        const S: Sql =
            sql!("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '$.a', '$')");
        assert_eq!(
            S.mysql,
            "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '$.a', '$')"
        );
        assert_eq!(S.sqlite, S.postgres);
    }

    #[test]
    fn a_statement_written_apart_for_mysql_keeps_the_derived_sqlite_form() {
        const S: Sql = sql!(
            "INSERT INTO t (k) VALUES ($1) ON CONFLICT (k) DO NOTHING",
            mysql: "INSERT IGNORE INTO t (k) VALUES (?)",
        );
        assert_eq!(S.mysql, "INSERT IGNORE INTO t (k) VALUES (?)");
        assert_eq!(S.sqlite, S.postgres);
    }

    #[test]
    fn placeholders_out_of_order_or_repeated_have_no_mysql_form() {
        assert_eq!(check_mysql("SELECT $1, $2"), Ok("SELECT ?, ?".len()));
        assert!(check_mysql("SELECT $2, $1").is_err());
        assert!(check_mysql("SELECT $1, $1").is_err());
        assert!(check_mysql("SELECT $1, $3").is_err());
    }
}
