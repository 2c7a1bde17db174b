//! How a read model declares a table once, for both sides: the projection that writes it and
//! the queries that read it.
//!
//! [`table!`] declares a table's row type (deriving `sqlx::FromRow`) with each column's SQL
//! type beside its field, and implements [`Table`]: the table's name, its columns in order,
//! and [`Table::bind`], which binds a batch of rows to an `unnest` statement
//! (`crate::sql::insert_sql`, `crate::sql::Upsert`) one array per column, in that order. No
//! list of columns is written anywhere else.
//!
//! [`stored_text!`] gives an enum its one text form in the tables ([`StoredText`]): written
//! with [`StoredText::as_str`], read back through [`Text`] (or [`NullableText`]), where a
//! text the enum does not know is a decode error, never a default.

use chrono::{DateTime, Utc};
use domain::agent::Role;
use domain::content::{MediaKind, MessageKind};
use domain::ticket::{Channel, Priority, TicketStatus};
use serde_json::Value;
use sqlx::Postgres;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArguments, PgTypeInfo, PgValueRef};
use sqlx::query::Query;
use uuid::Uuid;

/// A column of a table: its name and its SQL type. A type ending in `[]` is bound as the text
/// of an array literal (`unnest` cannot take arrays of arrays) and cast back in SQL.
pub(crate) type Column = (&'static str, &'static str);

/// A statement binding one array per column.
pub(crate) type Batch<'q> = Query<'q, Postgres, PgArguments>;

/// A read-model table declared with [`table!`].
pub(crate) trait Table:
    for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin
{
    /// The table's name, unqualified.
    const TABLE: &'static str;
    /// Every column a row is written with, in the order [`Table::bind`] binds them: the row's
    /// fields, then the columns computed from them (written, never read back).
    const WRITTEN: &'static [Column];
    /// The columns a row is read from: its fields (a prefix of [`Table::WRITTEN`]).
    const COLUMNS: &'static [Column];

    /// Binds `rows` to `query` as the arrays of [`Table::WRITTEN`], in order.
    fn bind<'q>(query: Batch<'q>, rows: &[&Self]) -> Batch<'q>;
}

/// The column list of a `select` reading `T`'s rows, each prefixed with `alias.` when given.
pub(crate) fn select_list<T: Table>(alias: Option<&str>) -> String {
    let names: Vec<String> = T::COLUMNS
        .iter()
        .map(|(name, _)| match alias {
            Some(alias) => format!("{alias}.{name}"),
            None => (*name).to_owned(),
        })
        .collect();
    names.join(", ")
}

/// A field's value as one element of its column's array in a batch statement.
pub(crate) trait ColumnValue {
    /// What is bound for one row.
    type Bound;
    /// The element for this row.
    fn bound(&self) -> Self::Bound;
}

/// Values bound as they are.
macro_rules! bound_as_is {
    ($($ty:ty),+ $(,)?) => {
        $(
            impl ColumnValue for $ty {
                type Bound = $ty;
                fn bound(&self) -> $ty {
                    self.clone()
                }
            }

            impl ColumnValue for Option<$ty> {
                type Bound = Option<$ty>;
                fn bound(&self) -> Option<$ty> {
                    self.clone()
                }
            }
        )+
    };
}

bound_as_is!(Uuid, i64, i32, i16, bool, f64, String, DateTime<Utc>, Value);

/// `text[]` columns, bound as array literals.
impl ColumnValue for Vec<String> {
    type Bound = String;
    fn bound(&self) -> String {
        crate::sql::text_array_literal(self)
    }
}

/// `uuid[]` columns, bound as array literals.
impl ColumnValue for Vec<Uuid> {
    type Bound = String;
    fn bound(&self) -> String {
        crate::sql::uuid_array_literal(self)
    }
}

/// Declares a read-model table: its row type, deriving `sqlx::FromRow` (attributes and doc
/// comments on the struct and its fields are kept), whose every field is a column with its
/// SQL type; optionally columns computed from a row when it is written (`written:`, each with
/// a `fn(&Row) -> T` giving its value); and the row's [`Table`] implementation.
///
/// ```text
/// table! {
///     /// One row of `ticket_notes`.
///     #[derive(Debug, Clone)]
///     pub struct NoteRow in "ticket_notes" {
///         /// The note.
///         id: Uuid = "uuid",
///         text: String = "text",
///     }
/// }
/// ```
macro_rules! table {
    (
        $(#[$attr:meta])*
        pub struct $row:ident in $table:literal {
            $(
                $(#[$field_attr:meta])*
                $field:ident : $ty:ty = $sql:literal
            ),+ $(,)?
        }
        $(
            written: {
                $( $computed:ident : $computed_sql:literal = $compute:path ),+ $(,)?
            }
        )?
    ) => {
        $(#[$attr])*
        #[derive(sqlx::FromRow)]
        pub struct $row {
            $(
                $(#[$field_attr])*
                pub $field: $ty,
            )+
        }

        impl $crate::table::Table for $row {
            const TABLE: &'static str = $table;
            const WRITTEN: &'static [$crate::table::Column] = &[
                $( (stringify!($field), $sql), )+
                $( $( (stringify!($computed), $computed_sql), )+ )?
            ];
            const COLUMNS: &'static [$crate::table::Column] = &[
                $( (stringify!($field), $sql), )+
            ];

            fn bind<'q>(
                query: $crate::table::Batch<'q>,
                rows: &[&Self],
            ) -> $crate::table::Batch<'q> {
                query
                    $(
                        .bind(
                            rows.iter()
                                .map(|row| $crate::table::ColumnValue::bound(&row.$field))
                                .collect::<Vec<_>>(),
                        )
                    )+
                    $( $(
                        .bind(rows.iter().map(|row| $compute(row)).collect::<Vec<_>>())
                    )+ )?
            }
        }
    };
}
pub(crate) use table;

/// An enum stored as text in read-model tables: its one text form, declared inside this crate
/// with its `stored_text!` macro.
pub trait StoredText: Copy + Sized + 'static {
    /// What the values are, for errors (`ticket status`).
    const WHAT: &'static str;
    /// Every value.
    const ALL: &'static [Self];

    /// The text stored for this value.
    fn as_str(self) -> &'static str;

    /// The value stored as `text`.
    ///
    /// # Errors
    /// [`UnknownText`] when no value is stored as `text`.
    fn from_text(text: &str) -> Result<Self, UnknownText> {
        Self::ALL
            .iter()
            .copied()
            .find(|value| value.as_str() == text)
            .ok_or_else(|| UnknownText {
                what: Self::WHAT,
                text: text.to_owned(),
            })
    }
}

/// A text column holding a value its enum does not know: a table written by another version
/// of the code, or by hand. Reading it fails rather than guessing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {text:?}")]
pub struct UnknownText {
    what: &'static str,
    text: String,
}

/// A `not null` text column holding a [`StoredText`] enum `T`, as read: a field of such an
/// enum is declared `#[sqlx(try_from = "Text<T>")]`. Decoding a text `T` does not know fails
/// with [`UnknownText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Text<T>(pub T);

/// A nullable text column holding a [`StoredText`] enum `T`, as read: an `Option` of such an
/// enum is declared `#[sqlx(try_from = "NullableText<T>")]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NullableText<T>(pub Option<T>);

impl<T> sqlx::Type<Postgres> for Text<T> {
    fn type_info() -> PgTypeInfo {
        <&str as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r, T: StoredText> sqlx::Decode<'r, Postgres> for Text<T> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as sqlx::Decode<Postgres>>::decode(value)?;
        Ok(Text(T::from_text(text)?))
    }
}

impl<T> sqlx::Type<Postgres> for NullableText<T> {
    fn type_info() -> PgTypeInfo {
        <&str as sqlx::Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <&str as sqlx::Type<Postgres>>::compatible(ty)
    }
}

impl<'r, T: StoredText> sqlx::Decode<'r, Postgres> for NullableText<T> {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        if sqlx::ValueRef::is_null(&value) {
            return Ok(NullableText(None));
        }
        Ok(NullableText(Some(Text::<T>::decode(value)?.0)))
    }
}

/// Gives an enum its text form in the tables: [`StoredText`], decoding from [`Text`] and
/// [`NullableText`], and binding as text ([`ColumnValue`]). Either each variant is listed with
/// its text (`Enum { A => "a", … }`), or the variants are listed and a `const fn(Enum) -> &str`
/// already in the crate gives their texts (`Enum [A, …] by function`). A variant missing from
/// the list does not compile.
macro_rules! stored_text {
    ($what:literal, $enum:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $crate::table::stored_text!(@impl $what, $enum [$($variant),+], |value| match value {
            $($enum::$variant => $text,)+
        });
    };
    ($what:literal, $enum:ident [$($variant:ident),+ $(,)?] by $text_of:path) => {
        // Every variant is listed: a new one stops the build here.
        const _: fn($enum) = |value| match value {
            $($enum::$variant)|+ => {}
        };
        $crate::table::stored_text!(@impl $what, $enum [$($variant),+], $text_of);
    };
    (@impl $what:literal, $enum:ident [$($variant:ident),+], $text_of:expr) => {
        impl $crate::table::StoredText for $enum {
            const WHAT: &'static str = $what;
            const ALL: &'static [Self] = &[$($enum::$variant),+];

            fn as_str(self) -> &'static str {
                let text_of: fn($enum) -> &'static str = $text_of;
                text_of(self)
            }
        }

        impl From<$crate::table::Text<$enum>> for $enum {
            fn from(text: $crate::table::Text<$enum>) -> Self {
                text.0
            }
        }

        impl From<$crate::table::NullableText<$enum>> for Option<$enum> {
            fn from(text: $crate::table::NullableText<$enum>) -> Self {
                text.0
            }
        }

        impl $crate::table::ColumnValue for $enum {
            type Bound = &'static str;
            fn bound(&self) -> &'static str {
                $crate::table::StoredText::as_str(*self)
            }
        }

        impl $crate::table::ColumnValue for Option<$enum> {
            type Bound = Option<&'static str>;
            fn bound(&self) -> Option<&'static str> {
                self.map($crate::table::StoredText::as_str)
            }
        }
    };
}
pub(crate) use stored_text;

/// `text` as an `ilike` pattern matching it anywhere, with `%`, `_` and `\` taken literally.
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

// Domain enums stored as text, with the texts `crate::sql` writes them with. The read models'
// own enums declare theirs beside them.

stored_text!("ticket status", TicketStatus [New, Open, Pending, Resolved, Closed] by crate::sql::ticket_status);
stored_text!("priority", Priority [Low, Normal, High, Urgent] by crate::sql::priority);
stored_text!("channel", Channel { Telegram => "telegram" });
stored_text!("role", Role [Admin, Agent, Auditor] by crate::sql::role);
stored_text!(
    "message kind",
    MessageKind [
        Text, Photo, Video, Document, Audio, Voice, VideoNote, Sticker, Animation, Location,
        Venue, Contact, Dice, Poll, Story, Checklist, PaidMedia, Service, Unsupported,
    ] by crate::sql::message_kind
);
stored_text!(
    "media kind",
    MediaKind [Photo, Video, Document, Audio, Voice, Animation] by crate::sql::media_kind
);

#[cfg(test)]
mod tests {
    use std::fmt;

    use super::*;

    /// Every value reads back as itself; texts are distinct.
    fn round_trips<T: StoredText + PartialEq + fmt::Debug>() {
        let mut texts = std::collections::HashSet::new();
        for value in T::ALL {
            assert!(
                texts.insert(value.as_str()),
                "{} listed twice",
                value.as_str()
            );
            assert_eq!(T::from_text(value.as_str()), Ok(*value));
        }
    }

    #[test]
    fn stored_texts_round_trip() {
        round_trips::<TicketStatus>();
        round_trips::<Priority>();
        round_trips::<Channel>();
        round_trips::<Role>();
        round_trips::<MessageKind>();
        round_trips::<MediaKind>();
    }

    #[test]
    fn the_texts_are_the_domain_serde_names() {
        // Events and tables spell values alike, so audiences (JSON) and rows (text) agree.
        fn check<T: StoredText + serde::Serialize>() {
            for value in T::ALL {
                assert_eq!(
                    serde_json::to_value(value).unwrap_or_default(),
                    Value::String(value.as_str().to_owned())
                );
            }
        }
        check::<TicketStatus>();
        check::<Priority>();
        check::<Channel>();
        check::<Role>();
        check::<MessageKind>();
        check::<MediaKind>();
    }

    #[test]
    fn an_unknown_text_is_an_error_not_a_default() {
        let error = TicketStatus::from_text("archived").err();
        assert_eq!(
            error.map(|error| error.to_string()).as_deref(),
            Some("unknown ticket status \"archived\"")
        );
        assert!(TicketStatus::from_text("").is_err());
        // Texts are compared exactly.
        assert!(Priority::from_text("Normal").is_err());
    }

    #[test]
    fn patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("50%_a\\b"), r"%50\%\_a\\b%");
    }
}
