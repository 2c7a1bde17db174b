//! What a projection's `apply` is given and what it may return: the events of a batch
//! ([`Envelope`]), the copy of the tables it writes ([`Target`]) and why it failed
//! ([`ApplyError`]).
//!
//! The runtime, the [`crate::Projection`] trait and the SQL helpers all use these; this module
//! uses none of them.

use chrono::{DateTime, Utc};
use domain::{AnyEvent, StreamId};
use eventlog::{Actor, Position};
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
/// `ld_shadow`) before it is swapped in. `Scratch` is a copy `ledgerdesk replay --verify`
/// builds to compare with the live one, in temporary tables of its own connection (schema
/// `pg_temp`), never swapped in. Every copy has the same columns, indexes and constraints, so
/// a projection writes the same SQL to any, naming tables with [`Target::table`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The tables readers query.
    Live,
    /// The tables a rebuild fills.
    Shadow,
    /// The temporary tables a verification builds.
    Scratch,
}

impl Target {
    /// The schema holding this copy.
    #[must_use]
    pub const fn schema(self) -> &'static str {
        match self {
            Self::Live => "public",
            Self::Shadow => SHADOW_SCHEMA,
            Self::Scratch => SCRATCH_SCHEMA,
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

/// The schema of a connection's own temporary tables, where a verification builds its copy.
pub const SCRATCH_SCHEMA: &str = "pg_temp";

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
