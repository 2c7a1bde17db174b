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

    /// True when the database could not be reached or used at all (connections refused or
    /// lost, the pool waited in vain, the server shutting down or out of connections): the
    /// request says nothing about the data, and the same request may pass once the database
    /// is back. See [`is_unavailable`].
    pub fn is_unavailable(&self) -> bool {
        is_unavailable(self)
    }
}

/// Whether `error`, or an error it wraps, says the database could not be reached or used at
/// all, as opposed to an answer about the data (a conflict, a refused input, a constraint).
/// Callers tell "try again later" from "this is wrong" with it: a check that could not run
/// must never pass for a refusal.
pub fn is_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(sql) = error.downcast_ref::<sqlx::Error>() {
            return sql_unavailable(sql);
        }
        if error.is::<Unreachable>() || error.is::<std::io::Error>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// Whether a database error means the database was out of reach rather than an answer.
fn sql_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 53: insufficient resources (too many connections,
            // out of memory or disk); 57P01-57P03: the server is shutting down or starting.
            code.starts_with("08")
                || code.starts_with("53")
                || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// A failure to reach the database whose original error could not be kept (one connection
/// failure answered to every request of a batch): [`is_unavailable`] knows it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreachable(pub String);

struct DisplayVersion(Option<u64>);

impl std::fmt::Display for DisplayVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(v) => write!(f, "version {v}"),
            None => f.write_str("no version (empty)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_to_reach_the_database_are_unavailable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(Error::Backend(Box::new(sqlx::Error::Io(refused))).is_unavailable());
        assert!(Error::Backend(Box::new(sqlx::Error::PoolTimedOut)).is_unavailable());
        assert!(Error::Backend(Box::new(Unreachable("connection reset".into()))).is_unavailable());
        assert!(!Error::Backend(Box::new(sqlx::Error::RowNotFound)).is_unavailable());
        assert!(!Error::Backend("lost 3 races".into()).is_unavailable());
        assert!(!Error::Invalid("too big".into()).is_unavailable());
        assert!(!Error::Unstorable("NUL".into()).is_unavailable());
    }
}
