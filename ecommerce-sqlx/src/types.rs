//! The column types of the schema, as each driver binds and reads them: ids are `uuid` on
//! PostgreSQL, `CHAR(36)` (ASCII, hyphenated) on MySQL/MariaDB and TEXT on SQLite; times are
//! `timestamptz` on PostgreSQL, `DATETIME(6)` in UTC on MySQL/MariaDB and TEXT on SQLite
//! (ISO 8601 in UTC to the microsecond, `2026-12-04T17:05:00.123456Z`: fixed width, so its
//! text order is time order, and SQLite's date functions read it); documents are `jsonb` on
//! PostgreSQL, `JSON` on MySQL/MariaDB and TEXT on SQLite.
//!
//! Each type binds and reads the same way whatever the driver, so a statement binds them once
//! for the three dialects: use them to query the stores' tables with SQL of your own
//! ([`Pool`](crate::Pool)).
//!
//! ```
//! use ecommerce_core::id::OrderId;
//! use ecommerce_sqlx::types::{Time, Uuid};
//!
//! let order = OrderId::new();
//! let id = Uuid::from(order); // binds as the `orders.id` column's type
//! assert_eq!(OrderId::from(id), order);
//! let _now = Time::now(); // binds as `orders.created_at`'s
//! ```

use chrono::{DateTime, SubsecRound, Utc};
use ecommerce_core::id::{
    AddressId, CartId, CustomerId, EventId, OrderId, ProductId, ReservationId,
};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Decode, Encode, Type};

/// A UUID column (see the [module](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uuid(pub uuid::Uuid);

macro_rules! uuid_ids {
    ($($id:ident),*) => {$(
        impl From<$id> for Uuid {
            fn from(id: $id) -> Uuid {
                Uuid(*id.as_uuid())
            }
        }

        impl From<Uuid> for $id {
            fn from(id: Uuid) -> $id {
                $id::from_uuid(id.0)
            }
        }
    )*};
}
impl std::fmt::Display for Uuid {
    /// The hyphenated form, as the ids print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

uuid_ids!(
    AddressId,
    CartId,
    CustomerId,
    EventId,
    OrderId,
    ProductId,
    ReservationId
);

/// A time column (see the [module](self)), kept to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time(pub DateTime<Utc>);

impl Time {
    /// `at` to the microsecond the columns keep (later digits dropped).
    pub fn of(at: DateTime<Utc>) -> Time {
        Time(at.trunc_subsecs(6))
    }

    /// Now, to the microsecond.
    pub fn now() -> Time {
        Time::of(Utc::now())
    }

    /// SQLite's text form.
    #[cfg(feature = "sqlite")]
    fn text(self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// A JSON document column (see the [module](self)): binds the document's text (`Json<&str>`,
/// `Json<String>`) and reads it back (`Json<String>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json<T>(pub T);

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;
    use sqlx::Postgres;
    use sqlx::postgres::{PgArgumentBuffer, PgTypeInfo, PgValueFormat, PgValueRef};

    impl Type<Postgres> for Uuid {
        fn type_info() -> PgTypeInfo {
            <uuid::Uuid as Type<Postgres>>::type_info()
        }
    }

    impl Encode<'_, Postgres> for Uuid {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            <uuid::Uuid as Encode<Postgres>>::encode_by_ref(&self.0, buf)
        }
    }

    impl<'r> Decode<'r, Postgres> for Uuid {
        fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
            <uuid::Uuid as Decode<Postgres>>::decode(value).map(Uuid)
        }
    }

    impl Type<Postgres> for Time {
        fn type_info() -> PgTypeInfo {
            <DateTime<Utc> as Type<Postgres>>::type_info()
        }
    }

    impl Encode<'_, Postgres> for Time {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            <DateTime<Utc> as Encode<Postgres>>::encode_by_ref(&self.0, buf)
        }
    }

    impl<'r> Decode<'r, Postgres> for Time {
        fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
            <DateTime<Utc> as Decode<Postgres>>::decode(value).map(Time)
        }
    }

    impl<T> Type<Postgres> for Json<T> {
        fn type_info() -> PgTypeInfo {
            <sqlx::types::Json<()> as Type<Postgres>>::type_info()
        }

        fn compatible(ty: &PgTypeInfo) -> bool {
            <sqlx::types::Json<()> as Type<Postgres>>::compatible(ty)
        }
    }

    impl<T: AsRef<str>> Encode<'_, Postgres> for Json<T> {
        fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
            // jsonb's binary form: its version, 1, then the text.
            buf.push(1);
            buf.extend_from_slice(self.0.as_ref().as_bytes());
            Ok(IsNull::No)
        }
    }

    impl<'r> Decode<'r, Postgres> for Json<String> {
        fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
            let text = match value.format() {
                PgValueFormat::Binary => match value.as_bytes()? {
                    [1, text @ ..] => std::str::from_utf8(text)?,
                    _ => return Err("unknown jsonb format version".into()),
                },
                PgValueFormat::Text => value.as_str()?,
            };
            Ok(Json(text.to_owned()))
        }
    }
}

#[cfg(feature = "mysql")]
mod mysql {
    use super::*;
    use chrono::NaiveDateTime;
    use sqlx::MySql;
    use sqlx::mysql::{MySqlTypeInfo, MySqlValueRef};

    impl Type<MySql> for Uuid {
        fn type_info() -> MySqlTypeInfo {
            <str as Type<MySql>>::type_info()
        }

        fn compatible(ty: &MySqlTypeInfo) -> bool {
            <str as Type<MySql>>::compatible(ty)
        }
    }

    impl Encode<'_, MySql> for Uuid {
        fn encode_by_ref(&self, buf: &mut Vec<u8>) -> Result<IsNull, BoxDynError> {
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let text: &str = self.0.hyphenated().encode_lower(&mut text);
            <&str as Encode<MySql>>::encode(text, buf)
        }
    }

    impl<'r> Decode<'r, MySql> for Uuid {
        fn decode(value: MySqlValueRef<'r>) -> Result<Self, BoxDynError> {
            let text = <&str as Decode<MySql>>::decode(value)?;
            Ok(Uuid(uuid::Uuid::try_parse(text)?))
        }
    }

    impl Type<MySql> for Time {
        fn type_info() -> MySqlTypeInfo {
            <NaiveDateTime as Type<MySql>>::type_info()
        }

        fn compatible(ty: &MySqlTypeInfo) -> bool {
            <NaiveDateTime as Type<MySql>>::compatible(ty)
        }
    }

    impl Encode<'_, MySql> for Time {
        fn encode_by_ref(&self, buf: &mut Vec<u8>) -> Result<IsNull, BoxDynError> {
            <NaiveDateTime as Encode<MySql>>::encode(self.0.naive_utc(), buf)
        }
    }

    impl<'r> Decode<'r, MySql> for Time {
        fn decode(value: MySqlValueRef<'r>) -> Result<Self, BoxDynError> {
            <NaiveDateTime as Decode<MySql>>::decode(value).map(|at| Time(at.and_utc()))
        }
    }

    impl<T> Type<MySql> for Json<T> {
        fn type_info() -> MySqlTypeInfo {
            <str as Type<MySql>>::type_info()
        }

        fn compatible(ty: &MySqlTypeInfo) -> bool {
            <sqlx::types::Json<()> as Type<MySql>>::compatible(ty)
        }
    }

    impl<T: AsRef<str>> Encode<'_, MySql> for Json<T> {
        fn encode_by_ref(&self, buf: &mut Vec<u8>) -> Result<IsNull, BoxDynError> {
            <&str as Encode<MySql>>::encode(self.0.as_ref(), buf)
        }
    }

    impl<'r> Decode<'r, MySql> for Json<String> {
        fn decode(value: MySqlValueRef<'r>) -> Result<Self, BoxDynError> {
            <String as Decode<MySql>>::decode(value).map(Json)
        }
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use super::*;
    use sqlx::Sqlite;
    use sqlx::sqlite::{SqliteArgumentsBuffer, SqliteTypeInfo, SqliteValueRef};

    impl Type<Sqlite> for Uuid {
        fn type_info() -> SqliteTypeInfo {
            <str as Type<Sqlite>>::type_info()
        }
    }

    impl Encode<'_, Sqlite> for Uuid {
        fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
            <String as Encode<Sqlite>>::encode(self.0.hyphenated().to_string(), buf)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Uuid {
        fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
            let text = <&str as Decode<Sqlite>>::decode(value)?;
            Ok(Uuid(uuid::Uuid::try_parse(text)?))
        }
    }

    impl Type<Sqlite> for Time {
        fn type_info() -> SqliteTypeInfo {
            <str as Type<Sqlite>>::type_info()
        }
    }

    impl Encode<'_, Sqlite> for Time {
        fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
            <String as Encode<Sqlite>>::encode(self.text(), buf)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Time {
        fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
            let text = <&str as Decode<Sqlite>>::decode(value)?;
            Ok(Time(DateTime::parse_from_rfc3339(text)?.to_utc()))
        }
    }

    impl<T> Type<Sqlite> for Json<T> {
        fn type_info() -> SqliteTypeInfo {
            <str as Type<Sqlite>>::type_info()
        }
    }

    impl<T: AsRef<str>> Encode<'_, Sqlite> for Json<T> {
        fn encode_by_ref(&self, buf: &mut SqliteArgumentsBuffer) -> Result<IsNull, BoxDynError> {
            <String as Encode<Sqlite>>::encode(self.0.as_ref().to_owned(), buf)
        }
    }

    impl<'r> Decode<'r, Sqlite> for Json<String> {
        fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
            <String as Decode<Sqlite>>::decode(value).map(Json)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_microseconds() {
        let at = DateTime::from_timestamp(1_764_867_900, 123_456_789).unwrap();
        assert_eq!(Time::of(at).0.timestamp_subsec_nanos(), 123_456_000);
    }

    #[test]
    #[cfg(feature = "sqlite")]
    fn sqlite_time_text_is_fixed_width_and_ordered() {
        let early = Time::of(DateTime::from_timestamp(1_764_867_900, 5_000).unwrap());
        let late = Time::of(DateTime::from_timestamp(1_764_867_900, 120_000_000).unwrap());
        assert_eq!(early.text(), "2025-12-04T17:05:00.000005Z");
        assert_eq!(early.text().len(), late.text().len());
        assert!(early.text() < late.text());
    }
}
