//! Why generating stopped.

use std::fmt;

use domain::StreamId;

/// Why generating stopped.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The log already holds a history (its settings stream exists).
    #[error("the event log is not empty: generate into a fresh database")]
    NotEmpty,
    /// A decider refused a generated command: a bug in the generator.
    #[error("the domain rejected a generated command on {stream}: {reason}")]
    Rejected {
        /// The stream the command was for.
        stream: String,
        /// What the domain said.
        reason: String,
    },
    /// The log refused or failed an append.
    #[error(transparent)]
    Log(#[from] eventlog::Error),
    /// An event could not be encoded.
    #[error("encoding an event: {0}")]
    Codec(#[from] serde_json::Error),
}

impl GenerateError {
    pub(super) fn rejected(stream: StreamId, reason: &dyn fmt::Display) -> Self {
        Self::Rejected {
            stream: stream.name(),
            reason: reason.to_string(),
        }
    }
}
