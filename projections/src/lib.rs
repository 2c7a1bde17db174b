//! Projections: the projector runtime (checkpoints, batching, rebuild) and one module per
//! Postgres read model.
//!
//! A projection reads the log from its checkpoint and applies events to its Postgres tables,
//! writing the checkpoint in the same transaction: a batch lands exactly once or not at all, so
//! a projector killed at any point resumes without loss or double application. Catch-up and
//! rebuilds read the log in large pages (one transaction per page); live, each batch is what
//! arrived since the last one.
//!
//! Each projection has a version. When the code's version differs from the one that built the
//! live tables (or `ledgerdesk replay` asks for it), the runtime rebuilds the projection into
//! shadow tables (schema `ld_shadow`) while the live tables keep serving — and keep receiving new
//! events — and swaps them in, in one transaction, once the shadow copy has caught up. Readers
//! never see an empty or half-built model; they wait a few milliseconds during the swap.
//!
//! Each read model's module owns its tables both ways: the projection that writes them, and
//! beside it (`tickets/queries.rs`, …) the typed reads the API and the live hub call. A table's
//! row type and columns are declared once (`table!`), and every enum kept as text has one text
//! form ([`StoredText`]): a text the code does not know fails to decode, never reads as a
//! default.
//!
//! A projection that cannot apply an event stops there, records the event and the error on its
//! checkpoint, and leaves its checkpoint before the event; the other projections go on. Each
//! projection runs in exactly one process at a time: its task holds a Postgres advisory lock on
//! the connection it writes with (see [`runner`]).

pub mod checkpoint;
pub mod runner;
pub mod status;

mod batch;
mod projection;

pub mod broadcasts;
pub mod customers;
pub mod dashboard;
pub mod delivery;
pub mod directory;
pub mod models;
pub mod page;
pub mod search;
pub mod tickets;
pub mod unrecorded;

mod sql;
mod table;

pub use table::{NullableText, StoredText, Text, UnknownText};

pub use batch::{ApplyError, Envelope, SCRATCH_SCHEMA, SHADOW_SCHEMA, Target};
pub use projection::{Kept, Projection};
pub use runner::{
    Difference, Exit, ProgressFn, ProjectionRunner, RebuildProgress, RebuildReport, RunnerOptions,
    RuntimeError, Verdict, VerifyReport,
};
pub use status::{LAG_CAP, ProjectionStatus, WaitError, status, wait_for, wait_polling};
