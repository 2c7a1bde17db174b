//! What a command did ([`Executed`], with each [`AppliedEvent`]) or why it did not go through
//! ([`CommandError`]).

use domain::{DecodeError, DomainEvent, StreamId};
use eventlog::{Error, Position};
use uuid::Uuid;

/// One event a command wrote, where it landed.
#[derive(Debug, Clone, PartialEq)]
pub struct AppliedEvent<E> {
    /// The stream, e.g. `ticket-0190…`.
    pub stream: String,
    /// Its version within the stream.
    pub version: u64,
    /// Its place in the whole log.
    pub position: Position,
    /// Its id.
    pub event_id: Uuid,
    /// The event.
    pub event: E,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq)]
pub struct Executed<E> {
    /// The events written, in log order (empty when the command was already satisfied).
    pub events: Vec<AppliedEvent<E>>,
    /// The position of the last event written, for read-your-writes (`None` when nothing was
    /// written).
    pub position: Option<Position>,
    /// True when the idempotency key had been applied before: nothing was written now and
    /// `events` are those of the first application.
    pub replayed: bool,
}

impl<E> Executed<E> {
    /// The events written to `stream`, in order.
    pub fn events_in(&self, stream: StreamId) -> impl Iterator<Item = &E> {
        let name = stream.name();
        self.events
            .iter()
            .filter(move |applied| applied.stream == name)
            .map(|applied| &applied.event)
    }
}

impl<E: DomainEvent> Executed<E> {
    /// `(stream, version, event type)` of every event written, in log order.
    pub fn summary(&self) -> Vec<(&str, u64, &'static str)> {
        self.events
            .iter()
            .map(|a| (a.stream.as_str(), a.version, a.event.event_type()))
            .collect()
    }
}

/// Why a command did not go through.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E> {
    /// The domain refused the command; the message is fit to show the user.
    #[error("{0}")]
    Rejected(E),
    /// Other writers kept changing the streams for the whole retry budget: every attempt met
    /// a newer version. Nothing was written; the same command may pass when tried again.
    #[error("gave up after {attempts} attempts in {waited:?}: {last}")]
    Conflict {
        /// How many times the command was decided.
        attempts: u32,
        /// How long it kept trying.
        waited: std::time::Duration,
        /// The last conflict the log reported.
        last: Error,
    },
    /// A stored event cannot be read by this code.
    #[error("stored event {stream} v{version} cannot be read: {source}")]
    Decode {
        /// Its stream.
        stream: String,
        /// Its version within the stream.
        version: u64,
        /// What the domain's decoder said.
        #[source]
        source: DecodeError,
    },
    /// The command's idempotency key was applied before to another input (its context's
    /// [input digest](super::CommandContext::input_digest) differs from the one stored with
    /// the key): nothing was written.
    #[error("this idempotency key was used with a different input")]
    KeyReused,
    /// The log failed.
    #[error(transparent)]
    Log(Error),
}

impl<E> CommandError<E> {
    /// The domain's rejection, if this is one.
    pub fn rejection(&self) -> Option<&E> {
        match self {
            CommandError::Rejected(error) => Some(error),
            _ => None,
        }
    }
}

impl<E> From<Error> for CommandError<E> {
    fn from(error: Error) -> Self {
        CommandError::Log(error)
    }
}
