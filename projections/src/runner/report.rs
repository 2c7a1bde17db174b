//! What the runner tells its caller: how each projection's task ended and how rebuilds go.

use std::sync::Arc;

use eventlog::Position;

use crate::checkpoint::Failure;

/// How one projection's task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Shutdown was asked for.
    Shutdown,
    /// The projection stopped on an event it cannot apply.
    Failed(Failure),
}

/// What a rebuild reports after each page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The projections being rebuilt together.
    pub projections: Vec<String>,
    /// Events read from the log by this rebuild so far.
    pub events: u64,
    /// The position reached.
    pub position: Position,
    /// Whether the rebuild has caught up and swapped in.
    pub done: bool,
}

/// Called after each page of a rebuild (to draw a progress bar).
pub type ProgressFn = Arc<dyn Fn(&RebuildProgress) + Send + Sync>;

/// What [`crate::ProjectionRunner::rebuild_now`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The event a projection stopped on, if one did.
    pub failed: Option<Failure>,
    /// Projections run by another process, asked to rebuild themselves.
    pub requested_elsewhere: Vec<String>,
}
