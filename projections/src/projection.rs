//! What a read model is to the runtime: a named, versioned set of tables and a batch `apply`.

use std::fmt;

use chrono::{DateTime, Utc};
use domain::{AnyEvent, StreamId};
use eventlog::{Actor, Position};
use futures::future::BoxFuture;
use sqlx::PgConnection;
use uuid::Uuid;

/// One event of the log, decoded, as projections see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// Its place in the whole log.
    pub position: Position,
    /// Its stream (ticket events carry their ticket id only here).
    pub stream: StreamId,
    /// Its version within the stream.
    pub stream_version: u64,
    /// Its unique id.
    pub event_id: Uuid,
    /// When the log recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who caused it.
    pub actor: Actor,
    /// What happened.
    pub event: AnyEvent,
}

/// Which copy of a projection's tables an `apply` writes to.
///
/// `Live` is what readers query (schema `public`). `Shadow` is the copy a rebuild fills (schema
/// `ld_shadow`) before it is swapped in. Both copies have the same columns, indexes and
/// constraints, so a projection writes the same SQL to either, naming tables with
/// [`Target::table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The tables readers query.
    Live,
    /// The tables a rebuild fills.
    Shadow,
}

impl Target {
    /// The schema holding this copy.
    #[must_use]
    pub const fn schema(self) -> &'static str {
        match self {
            Self::Live => "public",
            Self::Shadow => SHADOW_SCHEMA,
        }
    }

    /// The schema-qualified name of `table` in this copy, for SQL text.
    #[must_use]
    pub fn table(self, table: &str) -> String {
        format!("{}.{table}", self.schema())
    }
}

/// The schema rebuilds fill before the swap.
pub const SHADOW_SCHEMA: &str = "ld_shadow";

/// Why a projection could not apply a batch.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The database refused a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An event does not fit the read model (a bug or a corrupt history).
    #[error("event at {position} cannot be applied: {reason}")]
    Event {
        /// The event's position.
        position: Position,
        /// What is wrong, for operators.
        reason: String,
    },
}

/// A Postgres read model built from the log.
///
/// The runtime calls [`Projection::apply`] with batches of events in log order, inside a
/// transaction that also stores the checkpoint, so a batch is applied exactly once or not at all.
/// A batch is never empty. During catch-up batches are large (thousands of events); live they
/// are whatever arrived. An `apply` must therefore:
/// - write only to its own [`Projection::tables`], through [`Target::table`];
/// - give the same tables for any split of the same events into batches;
/// - ignore events it does not care about.
///
/// The tables are created by the migrations (in `public`); a rebuild copies their definition
/// (`CREATE TABLE … (LIKE … INCLUDING ALL)`) into the shadow schema, so read models must not use
/// foreign keys or sequences of their own, and must name indexes as Postgres would by default
/// (`<table>_<columns>_idx`) so a swapped-in copy keeps the names migrations refer to.
pub trait Projection: Send + Sync + fmt::Debug + 'static {
    /// Stable name: the checkpoint's key and the `--projection` argument of `ledgerdesk replay`.
    fn name(&self) -> &'static str;

    /// Bump it when the code would build different tables from the same log: the next start
    /// rebuilds the projection into shadow tables and swaps them in once caught up.
    fn version(&self) -> u32;

    /// The tables this projection owns, unqualified (`"tickets"`).
    fn tables(&self) -> &'static [&'static str];

    /// Applies `batch` (in log order, never empty) to the `target` copy of the tables.
    fn apply<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        target: Target,
        batch: &'a [Envelope],
    ) -> BoxFuture<'a, Result<(), ApplyError>>;

    /// Whether `apply` may change a table for `event`. A batch holding no event the projection
    /// wants is not applied: only its checkpoint moves, in one statement. Every event unless
    /// the projection says otherwise; saying no to an event `apply` would use loses it.
    fn wants(&self, event: &Envelope) -> bool {
        let _ = event;
        true
    }
}

/// Implements [`Projection`] for a read model's unit struct: its name, version, tables, the
/// `async fn(&mut PgConnection, Target, &[Envelope]) -> Result<(), ApplyError>` that applies a
/// batch and, optionally, the `fn(&Envelope) -> bool` saying which events it wants.
macro_rules! read_model {
    (
        $model:ty,
        name: $name:literal,
        version: $version:literal,
        tables: $tables:expr,
        apply: $apply:path
        $(, wants: $wants:path)? $(,)?
    ) => {
        impl $crate::projection::Projection for $model {
            fn name(&self) -> &'static str {
                $name
            }

            fn version(&self) -> u32 {
                $version
            }

            fn tables(&self) -> &'static [&'static str] {
                $tables
            }

            fn apply<'a>(
                &'a self,
                conn: &'a mut ::sqlx::PgConnection,
                target: $crate::projection::Target,
                batch: &'a [$crate::projection::Envelope],
            ) -> ::futures::future::BoxFuture<'a, Result<(), $crate::projection::ApplyError>> {
                Box::pin($apply(conn, target, batch))
            }

            $(
                fn wants(&self, event: &$crate::projection::Envelope) -> bool {
                    $wants(event)
                }
            )?
        }
    };
}
pub(crate) use read_model;
