//! The command service: runs the domain's deciders against the log.
//!
//! This module owns the write path of the product: load a stream (or the two streams of a
//! [`domain::flow`] decision), fold its events into state, ask the decider, and append what it
//! decided with optimistic concurrency on every stream it read, all in one atomic
//! [`eventlog::AppendRequest`]. When another writer got there first the log answers
//! [`eventlog::Error::Conflict`]; the service then reloads and decides again, a bounded number of times.
//! Nothing else is retried: rejections, undecodable history and backend errors return at once.
//!
//! The service keeps the states it decided on and appended after, by stream, in a bounded
//! per-process memory (see `cache.rs`), so a command on a known stream reads nothing before it
//! appends: the append's expected version is what proves the state current. A stale state
//! conflicts and is decided again on a fresh load (it costs one of the attempts); an outcome no append checked (a rejection,
//! nothing to write) is decided again on a fresh load before it is returned.
//! [`CommandService::state`] never answers from that memory.
//!
//! Every event carries the [`CommandContext`] as its [`eventlog::Metadata`] (actor, correlation and
//! causation ids), and the context's idempotency key goes on the append, so a command sent
//! twice (a Telegram update delivered again, a client mutation retried) has one effect and the
//! second call answers with the first result, marked [`Executed::replayed`].
//!
//! It must not hold business rules (they live in `domain`) nor talk SQL (only through
//! [`eventlog::EventLog`]).
//!
//! The parts: [`CommandContext`] (`context.rs`); what a command did or why it failed
//! (`outcome.rs`); the service and its single-stream commands (`service.rs`); the commands of
//! two streams (`flows.rs`); one attempt's loaded states and plan (`attempt.rs`); the memory of
//! states (`cache.rs`). This module only declares them and names the public items.

mod attempt;
mod cache;
mod context;
mod flows;
mod outcome;
mod service;

pub use context::CommandContext;
pub use flows::MessageRouted;
pub use outcome::{AppliedEvent, CommandError, Executed};
pub use service::{CommandService, DEFAULT_CACHED_STREAMS, DEFAULT_RETRY_BUDGET};
