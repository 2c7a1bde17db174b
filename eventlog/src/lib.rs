//! Ledgerdesk's append-only event log: storage only.
//!
//! Every fact of the product is an event in a stream (`ticket-<uuid>`, `customer-<telegram id>`,
//! …). This crate owns how events are stored and read back: the [`EventLog`] trait that every
//! backend implements, the types of its envelope, and the Postgres backend ([`postgres`]), the
//! embedded default. It knows nothing of the domain: payloads are JSON to it, and stream ids
//! and event types are plain text. Running the domain's deciders against the log (the command
//! service), and setting up the database (pool, migrations), belong to the `app` crate.
//!
//! What a backend promises:
//! - **Optimistic concurrency.** An append names the version it expects each stream to be at; a
//!   mismatch is [`Error::Conflict`], never a silent overwrite.
//! - **Atomic multi-stream appends.** One [`AppendRequest`] may touch several streams; either all
//!   of its events are appended or none is.
//! - **Idempotency.** A request carrying a key that was already applied appends nothing and
//!   answers [`AppendOutcome::AlreadyApplied`] with the receipt of the first application,
//!   which carries the input digest stored with the key (see [`AppendRequest::input_digest`]):
//!   telling a retry from a reuse of the key for other work is the caller's decision.
//! - **One total order, no gaps.** [`EventLog::read_all`] and [`EventLog::subscribe_all`] give
//!   every committed event exactly once, in one order that every reader agrees on, and a reader
//!   never steps past an event that is still to commit. [`Position`] is that order's cursor.
//! - **Append-only.** Stored events never change; each stream carries a sha256 hash chain.

pub mod chain;
pub mod postgres;
pub mod seal;
pub mod storable;

mod envelope;
mod error;
mod position;

use std::future::Future;

use futures::stream::BoxStream;

pub use envelope::{
    Actor, ActorKind, AppendOutcome, AppendRequest, CommittedEvent, Direction, ExpectedVersion,
    Metadata, NewEvent, Receipt, RecordedEvent, StreamAppend,
};
pub use error::{Error, Unreachable, is_unavailable};
pub use position::{ParsePositionError, Position};

/// Bounds on what one append may carry. Larger inputs are refused with [`Error::Invalid`]; any
/// string holding a NUL character is refused with [`Error::Unstorable`] (see [`storable`]).
pub mod limits {
    /// Longest stream id, in characters.
    pub const STREAM_ID_CHARS: usize = 200;
    /// Longest event type, in characters.
    pub const EVENT_TYPE_CHARS: usize = 200;
    /// Longest idempotency key, in characters.
    pub const IDEMPOTENCY_KEY_CHARS: usize = 200;
    /// Longest input digest stored with an idempotency key, in bytes.
    pub const INPUT_DIGEST_BYTES: usize = 64;
    /// Most streams one append may touch.
    pub const STREAMS_PER_APPEND: usize = 100;
    /// Most events one append may carry, over all its streams.
    pub const EVENTS_PER_APPEND: usize = 1_000;
    /// Largest payload of one event, as serialized JSON bytes.
    pub const PAYLOAD_BYTES: usize = 1 << 20;
    /// Largest metadata of one event, as serialized JSON bytes.
    pub const METADATA_BYTES: usize = 16 << 10;
    /// Largest page one read returns.
    pub const PAGE_SIZE: usize = 10_000;
}

/// A page of the whole log, in log order.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The events after the requested position, at most the requested count.
    pub events: Vec<RecordedEvent>,
    /// Where the next read should start: the last event's position, or the requested position
    /// when the page is empty.
    pub next: Position,
}

/// The append-only log, whatever stores it.
///
/// Implementations are cheap to clone and share one connection pool.
pub trait EventLog: Clone + Send + Sync + 'static {
    /// Appends the request's events, all or nothing.
    fn append(
        &self,
        request: AppendRequest,
    ) -> impl Future<Output = Result<AppendOutcome, Error>> + Send;

    /// The receipt of the append that applied idempotency `key`, or `None` when no append has
    /// used it. Claims nothing: a later append with the key still goes through.
    fn applied(&self, key: &str) -> impl Future<Output = Result<Option<Receipt>, Error>> + Send;

    /// Reads up to `limit` events of one stream starting at version `from` (inclusive), forwards
    /// or backwards (`u64::MAX` with [`Direction::Backwards`] starts at the newest event).
    /// A stream that has no event is [`Error::StreamNotFound`].
    fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RecordedEvent>, Error>> + Send;

    /// The current version of a stream (its last event's version), `None` when it has no event.
    fn stream_version(
        &self,
        stream: &str,
    ) -> impl Future<Output = Result<Option<u64>, Error>> + Send;

    /// Reads up to `limit` events of the whole log after `after`, in log order.
    fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> impl Future<Output = Result<Page, Error>> + Send;

    /// The position of the newest event a reader can see now ([`Position::START`] when empty).
    fn head(&self) -> impl Future<Output = Result<Position, Error>> + Send;

    /// How many readable events come after `after`, counting at most `cap` (cheap for small
    /// counts: lag, progress).
    fn count_after(
        &self,
        after: Position,
        cap: u64,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Every event after `after`: first those already in the log, then each new one as it
    /// commits. The stream ends after yielding its first error; resume from the last position
    /// received.
    fn subscribe_all(&self, after: Position) -> BoxStream<'static, Result<RecordedEvent, Error>>;
}
