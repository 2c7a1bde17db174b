//! Running projections: one task per projection, each owning the projection through a Postgres
//! advisory lock, catching up in large batches, following the log live, and rebuilding into
//! shadow tables when its version changes or a rebuild is requested.
//!
//! Ownership: a projection's task opens a connection of its own, takes the session advisory lock
//! of the projection on it, and does *every* write of the projection on that same connection.
//! When the process dies, its connection closes, Postgres releases the lock, and a task of
//! another process that was standing by takes it within `lock_retry`. Since the writes and the
//! lock share one connection, a process that lost its connection cannot write either: there is
//! no moment where two processes write one projection. (The checkpoint update also checks that
//! the checkpoint is still where this task left it, as a second guard: when it is not, the task
//! ends with [`RuntimeError::OwnershipLost`] and stands by again.)
//!
//! The parts, each depending only on those listed before it:
//! - `error`, `report`, `context`, `stop`: what the others share (the error, what the runner
//!   reports, its options, pausing under the shutdown signal);
//! - `ownership`: the projection's own connection and its lock;
//! - `applier`, `shadow`, `member`: applying batches to one copy, the shadow tables, and one
//!   projection held by this process with both its copies;
//! - `feed`: the one reader of the live log that the running projections share;
//! - `swap`, `rebuild`: rebuilding projections together and swapping each in;
//! - `verify`: rebuilding projections into scratch tables and comparing them with the live
//!   ones, row by row, touching neither the live tables nor their checkpoints;
//! - `follow`: one projection following the log live;
//! - this module: the public runner, which starts and supervises the tasks.

mod applier;
mod context;
mod error;
mod feed;
mod follow;
mod member;
mod ownership;
mod rebuild;
mod report;
mod shadow;
mod stop;
mod swap;
mod verify;

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use eventlog::EventLog;
use sqlx::{Connection, PgPool};
use tokio_util::sync::CancellationToken;

pub use context::RunnerOptions;
pub use error::RuntimeError;
pub use report::{Exit, ProgressFn, RebuildProgress, RebuildReport};
pub use verify::{Difference, MAX_REPORTED, Verdict, VerifyReport};

use crate::checkpoint;
use crate::projection::Projection;
use context::Context;
use feed::LiveFeed;
use member::Member;
use stop::pause;

/// The longest pause before a projection restarts after an error.
const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(30);

/// Runs a set of projections against a log and a read-model database.
#[derive(Clone)]
pub struct ProjectionRunner<L> {
    cx: Context<L>,
    pool: PgPool,
    projections: Vec<Arc<dyn Projection>>,
}

impl<L> std::fmt::Debug for ProjectionRunner<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projections", &self.projections)
            .field("options", &self.cx.options)
            .finish_non_exhaustive()
    }
}

impl<L: EventLog> ProjectionRunner<L> {
    /// A runner for `projections`, reading `log` and writing to `pool`'s database.
    pub fn new(log: L, pool: PgPool, projections: Vec<Arc<dyn Projection>>) -> Self {
        ProjectionRunner {
            cx: Context {
                log,
                options: RunnerOptions::default(),
                progress: None,
            },
            pool,
            projections,
        }
    }

    /// Replaces the default options.
    #[must_use]
    pub fn with_options(mut self, options: RunnerOptions) -> Self {
        self.cx.options = options;
        self
    }

    /// Reports each page of every rebuild to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.cx.progress = Some(progress);
        self
    }

    /// Runs every projection, each in its own task, until `shutdown` is cancelled. A projection
    /// that fails on an event stops alone; one whose database or log connection fails restarts
    /// from its checkpoint after a pause. Returns how each projection's task ended.
    pub async fn run(self, shutdown: CancellationToken) -> Vec<(String, Exit)> {
        let options = &self.cx.options;
        let (feed, reader) = LiveFeed::start(
            self.cx.log.clone(),
            options.live_batch,
            options.live_feed_batches,
        );
        let _reader = AbortOnDrop(reader);
        let mut tasks = tokio::task::JoinSet::new();
        for projection in &self.projections {
            let runner = self.clone();
            let projection = Arc::clone(projection);
            let stop = shutdown.clone();
            let feed = feed.clone();
            tasks.spawn(async move {
                let name = projection.name().to_owned();
                (name, runner.supervise(projection, &stop, &feed).await)
            });
        }
        let mut exits = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(exit) => exits.push(exit),
                Err(err) => tracing::error!(error = %err, "a projection task panicked"),
            }
        }
        exits
    }

    /// Runs one projection until its task must end, restarting it from its checkpoint after
    /// each error.
    async fn supervise(
        &self,
        projection: Arc<dyn Projection>,
        stop: &CancellationToken,
        feed: &LiveFeed,
    ) -> Exit {
        let name = projection.name();
        let mut pauses = ExponentialBuilder::new()
            .with_min_delay(self.cx.options.restart_backoff)
            .with_factor(2.0)
            .with_max_delay(MAX_RESTART_BACKOFF)
            .without_max_times()
            .build();
        loop {
            let err = match self.run_one(&projection, stop, feed).await {
                Ok(exit) => return exit,
                Err(err) => err,
            };
            // The pauses have no end; were they to run out, the longest would stand in.
            let retry_in = pauses.next().unwrap_or(MAX_RESTART_BACKOFF);
            report_restart(name, &err, retry_in);
            if pause(stop, retry_in).await {
                return Exit::Shutdown;
            }
        }
    }

    /// Takes the projection, rebuilds it if needed, and follows the log.
    async fn run_one(
        &self,
        projection: &Arc<dyn Projection>,
        stop: &CancellationToken,
        feed: &LiveFeed,
    ) -> Result<Exit, RuntimeError> {
        let name = projection.name();
        let retry = self.cx.options.lock_retry;
        let Some(conn) = ownership::take(&self.pool, name, stop, retry).await? else {
            return Ok(Exit::Shutdown);
        };
        tracing::info!(projection = name, "running projection");
        let mut member = Member::open(projection, conn).await?;
        if member.needs_rebuild().await? {
            let rebuilt = rebuild::rebuild_one(&self.cx, member, stop).await?;
            if let Some(exit) = rebuilt.exit {
                return Ok(exit);
            }
            member = rebuilt.member;
        } else {
            member.discard_shadow().await?;
        }
        follow::follow(&self.cx, member, stop, feed).await
    }

    /// Rebuilds this runner's projections now, from this process, with one shared reader of the
    /// log, even when their version has not changed. Projections another process is running are
    /// asked to rebuild themselves instead (see [`checkpoint::request_rebuild`]); their names are
    /// returned so the caller can follow them.
    ///
    /// # Errors
    /// When the database or the log fails.
    pub async fn rebuild_now(&self) -> Result<RebuildReport, RuntimeError> {
        let mut members = Vec::new();
        let mut elsewhere = Vec::new();
        for projection in &self.projections {
            let mut conn = ownership::connect(&self.pool).await?;
            if ownership::try_own(&mut conn, projection.name()).await? {
                members.push(Member::open(projection, conn).await?);
            } else {
                checkpoint::request_rebuild(&self.pool, projection.name()).await?;
                elsewhere.push(projection.name().to_owned());
            }
        }
        // Asked for now, a rebuild runs to its end: nothing cancels this token.
        let never = CancellationToken::new();
        let rebuilt = if members.is_empty() {
            Vec::new()
        } else {
            rebuild::rebuild(&self.cx, members, &never).await?
        };
        let mut failed = None;
        for rebuilt in rebuilt {
            if let (None, Some(Exit::Failed(failure))) = (&failed, rebuilt.exit) {
                failed = Some(failure);
            }
            // Closing the connection releases the projection's lock.
            let _ = rebuilt.member.conn.close().await;
        }
        Ok(RebuildReport {
            failed,
            requested_elsewhere: elsewhere,
        })
    }
}

impl<L: EventLog> ProjectionRunner<L> {
    /// Rebuilds this runner's projections from the log into scratch tables of a connection of
    /// its own and compares them, row by row, with the live tables at one position of the log
    /// (see `verify.rs`). The live tables, their checkpoints and any process running the
    /// projections are left alone. Reports each page to the progress callback.
    ///
    /// # Errors
    /// When the database or the log fails.
    pub async fn verify(&self) -> Result<VerifyReport, RuntimeError> {
        verify::verify(&self.cx, &self.pool, &self.projections).await
    }
}

/// Logs why a projection restarts, as plainly as the error allows.
fn report_restart(name: &str, err: &RuntimeError, retry_in: Duration) {
    match err {
        RuntimeError::OwnershipLost { .. } => tracing::warn!(projection = name, error = %err,
            "another process took this projection over; standing by"),
        _ if err.is_transient() => tracing::warn!(projection = name, error = %err, ?retry_in,
            "projection interrupted; restarting from its checkpoint"),
        _ => tracing::error!(projection = name, error = %err, ?retry_in,
            "projection failed, and trying again may not help; restarting from its checkpoint"),
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
