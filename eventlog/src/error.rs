//! What can go wrong with the log, typed so callers can act on it.

use crate::envelope::ExpectedVersion;

/// An event log error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A stream was not at the version the append expected. Nothing was appended.
    #[error("stream {stream} is at {actual}, the append expected {expected}", actual = DisplayVersion(*.actual))]
    Conflict {
        /// The stream whose version did not match.
        stream: String,
        /// What the append expected.
        expected: ExpectedVersion,
        /// The stream's version when the append was refused (`None`: it has no event).
        actual: Option<u64>,
    },
    /// The stream has no event.
    #[error("stream {stream} does not exist")]
    StreamNotFound {
        /// The stream that was asked for.
        stream: String,
    },
    /// The request itself is malformed or exceeds a limit; nothing was appended.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request holds text the log cannot store (a NUL character, see
    /// [`crate::storable`]); nothing was appended. Like [`Error::Invalid`], final for this
    /// request; the message names where the character is, never the text around it.
    #[error("unstorable request: {0}")]
    Unstorable(String),
    /// A payload or metadata could not be encoded or decoded.
    #[error("event codec: {0}")]
    Codec(#[from] serde_json::Error),
    /// The storage backend failed (connection lost, timeout, …). The request may be retried.
    #[error("event log backend: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// True for errors that can pass if the same request is made again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Backend(_))
    }
}

struct DisplayVersion(Option<u64>);

impl std::fmt::Display for DisplayVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "version {v}"),
            None => f.write_str("no version (empty)"),
        }
    }
}
