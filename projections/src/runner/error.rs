//! Why a projection's task could not go on, said as it happened: the database or the log
//! failed, another process took the projection over, or a task of the runtime panicked.

use eventlog::Position;

use crate::batch::Target;

/// Why the runtime could not go on with a projection.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The read-model database failed or refused a statement.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The event log failed.
    #[error("event log error: {0}")]
    Log(#[from] eventlog::Error),
    /// A checkpoint was not where this process left it: another process moved it, so this one
    /// no longer owns the projection, and wrote nothing.
    #[error(
        "projection `{projection}` is no longer owned by this process: its {target} checkpoint \
         is no longer at {expected}",
        target = crate::checkpoint::target_name(*.target)
    )]
    OwnershipLost {
        /// The projection.
        projection: String,
        /// Which copy's checkpoint moved.
        target: Target,
        /// Where this process had left it.
        expected: Position,
    },
    /// A task of the runtime panicked: a bug.
    #[error("a task of projection `{projection}` panicked: {message}")]
    TaskPanicked {
        /// The projection the task worked for.
        projection: String,
        /// What the panic said.
        message: String,
    },
    /// A task of the runtime was cancelled before it finished (the runtime is shutting down).
    #[error("a task of projection `{projection}` was cancelled")]
    TaskCancelled {
        /// The projection the task worked for.
        projection: String,
    },
    /// The reader of the live log that the projections share is gone.
    #[error("the shared log reader stopped")]
    FeedStopped,
    /// An index of a live table cannot be copied onto the shadow copy (its definition is not
    /// the one Postgres gives a table of the public schema).
    #[error("cannot rebuild index {index} on the shadow copy: unexpected definition {definition}")]
    UnexpectedIndex {
        /// The index.
        index: String,
        /// Its definition, as Postgres gave it.
        definition: String,
    },
}

impl RuntimeError {
    /// True for errors that can pass if the same work is done again later: a connection to the
    /// database or the log failed. Lost ownership, a panic, a statement the database refused
    /// or a broken index definition do not pass by trying again.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            RuntimeError::Database(err) => is_connection_failure(err),
            RuntimeError::Log(err) => err.is_transient(),
            RuntimeError::OwnershipLost { .. }
            | RuntimeError::TaskPanicked { .. }
            | RuntimeError::TaskCancelled { .. }
            | RuntimeError::FeedStopped
            | RuntimeError::UnexpectedIndex { .. } => false,
        }
    }

    /// The error for a task that did not finish, from what joining it said.
    pub(super) fn from_join(projection: &str, err: &tokio::task::JoinError) -> Self {
        if err.is_panic() {
            RuntimeError::TaskPanicked {
                projection: projection.to_owned(),
                message: err.to_string(),
            }
        } else {
            RuntimeError::TaskCancelled {
                projection: projection.to_owned(),
            }
        }
    }
}

/// Errors that say nothing about the statement or the events: the connection or the pool
/// failed, and a new connection may well succeed.
pub(super) fn is_connection_failure(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failed_connections_are_transient() {
        assert!(RuntimeError::Database(sqlx::Error::PoolTimedOut).is_transient());
        assert!(!RuntimeError::Database(sqlx::Error::RowNotFound).is_transient());
        assert!(
            RuntimeError::Log(eventlog::Error::Backend("connection reset".into())).is_transient()
        );
        assert!(!RuntimeError::Log(eventlog::Error::Invalid("too big".into())).is_transient());
        let lost = RuntimeError::OwnershipLost {
            projection: "tickets".into(),
            target: Target::Live,
            expected: Position::START,
        };
        assert!(!lost.is_transient());
        assert!(lost.to_string().contains("no longer owned"));
        let panicked = RuntimeError::TaskPanicked {
            projection: "tickets".into(),
            message: "boom".into(),
        };
        assert!(!panicked.is_transient());
    }
}
