//! The parts of one attempt at a command: the states it loaded ([`Loaded`]), what it wants to
//! append ([`Plan`]) and how it ended ([`Attempt`]).

use eventlog::Error;

use super::context::CommandContext;
use super::outcome::CommandError;

/// A decider's state as loaded from its stream.
#[derive(Debug)]
pub(super) struct Loaded<D> {
    pub(super) state: D,
    /// The stream's name.
    pub(super) stream: String,
    /// The last version read (`None`: the stream is empty).
    pub(super) version: Option<u64>,
    /// True when the state came from the service's memory, not from reading the stream now.
    pub(super) cached: bool,
}

/// What one attempt wants to append: the streams it read (with the version seen) and the
/// events per stream it decided.
#[derive(Debug)]
pub(super) struct Plan<E> {
    pub(super) reads: Vec<(String, Option<u64>)>,
    pub(super) writes: Vec<(String, Vec<E>)>,
}

impl<E> Plan<E> {
    pub(super) fn new() -> Self {
        Plan {
            reads: Vec::new(),
            writes: Vec::new(),
        }
    }

    pub(super) fn and_read<D>(mut self, loaded: &Loaded<D>) -> Self {
        self.reads.push((loaded.stream.clone(), loaded.version));
        self
    }

    pub(super) fn write(mut self, stream: String, events: Vec<E>) -> Self {
        if !events.is_empty() {
            self.writes.push((stream, events));
        }
        self
    }

    /// Whether committing it appends nothing at all (no event, no idempotency key), so no
    /// expected version gets checked.
    pub(super) fn checks_nothing(&self, ctx: &CommandContext) -> bool {
        self.writes.is_empty() && ctx.idempotency_key.is_none()
    }
}

/// The end of one attempt.
pub(super) enum Attempt<T, E> {
    Done(T),
    /// Someone else wrote first: decide again on fresh state.
    Retry(Error),
    /// A state from memory led to an outcome no append verified: decide again on fresh
    /// state, at once and without counting an attempt. (A conflict is a [`Attempt::Retry`]
    /// like any other: a stale state costs one attempt.)
    Recheck,
    Failed(CommandError<E>),
}

impl<T, E> Attempt<T, E> {
    pub(super) fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U, E> {
        match self {
            Attempt::Done(done) => Attempt::Done(f(done)),
            Attempt::Retry(conflict) => Attempt::Retry(conflict),
            Attempt::Recheck => Attempt::Recheck,
            Attempt::Failed(error) => Attempt::Failed(error),
        }
    }
}
