//! Where the projections stand for readers: lag behind the log head, failures, rebuild progress,
//! and read-your-writes (waiting, bounded, until projections reach a position).

use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};
use eventlog::{EventLog, Position};
use sqlx::PgPool;

use crate::batch::Target;
use crate::checkpoint::{self, Checkpoint, Failure};
use crate::projection::Projection;
use crate::runner::RuntimeError;

/// One projection, as the API and metrics show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionStatus {
    /// Its name.
    pub name: String,
    /// The version this code builds.
    pub code_version: u32,
    /// The live copy's checkpoint (`None` before the projection first ran).
    pub live: Option<Checkpoint>,
    /// A rebuild in progress, if any.
    pub rebuilding: Option<Checkpoint>,
    /// The log head when the status was taken.
    pub head: Position,
    /// How many events the live copy is behind the head (0 when caught up), counted up to
    /// [`LAG_CAP`].
    pub lag: u64,
    /// The event it stopped on, if it did.
    pub failure: Option<Failure>,
}

/// Lag is counted exactly up to this many events; a larger lag shows as this number.
pub const LAG_CAP: u64 = 1_000_000;

/// The status of each of `projections`.
///
/// # Errors
/// When the database or the log cannot be read.
pub async fn status<L: EventLog>(
    log: &L,
    pool: &PgPool,
    projections: &[Arc<dyn Projection>],
) -> Result<Vec<ProjectionStatus>, RuntimeError> {
    let head = log.head().await?;
    let checkpoints = checkpoint::list(pool).await?;
    let mut statuses = Vec::with_capacity(projections.len());
    for projection in projections {
        let status = {
            let find = |target| {
                checkpoints
                    .iter()
                    .find(|c| c.projection == projection.name() && c.target == target)
                    .cloned()
            };
            let live = find(Target::Live);
            let rebuilding = find(Target::Shadow);
            let failure = live
                .as_ref()
                .and_then(|c| c.failure.clone())
                .or_else(|| rebuilding.as_ref().and_then(|c| c.failure.clone()));
            ProjectionStatus {
                name: projection.name().to_owned(),
                code_version: projection.version(),
                lag: 0,
                live,
                rebuilding,
                head,
                failure,
            }
        };
        let at = status.live.as_ref().map_or(Position::START, |c| c.position);
        let lag = if at >= head {
            0
        } else {
            log.count_after(at, LAG_CAP).await?
        };
        statuses.push(ProjectionStatus { lag, ..status });
    }
    Ok(statuses)
}

/// Why a read-your-writes wait gave up.
#[derive(Debug, thiserror::Error)]
pub enum WaitError {
    /// The projections did not reach the position in time.
    #[error("read models are still behind position {position} after {waited:?}: {lagging:?}")]
    Timeout {
        /// The position waited for.
        position: Position,
        /// How long the wait lasted.
        waited: Duration,
        /// The projections still behind it.
        lagging: Vec<String>,
    },
    /// A projection stopped on an event before the position: it will not get there by itself.
    #[error("projection `{projection}` stopped at {}: {}", failure.position, failure.error)]
    Failed {
        /// The stopped projection.
        projection: String,
        /// Where and why.
        failure: Failure,
    },
    /// The database could not be read.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// Waits until every projection in `projections` has applied the log up to `position`, for at
/// most `timeout`. Polls the checkpoints, quickly at first and then every 25 ms.
///
/// # Errors
/// [`WaitError::Timeout`] when time runs out, [`WaitError::Failed`] when a projection stopped
/// before the position.
pub async fn wait_for(
    pool: &PgPool,
    projections: &[&str],
    position: Position,
    timeout: Duration,
) -> Result<(), WaitError> {
    wait_polling(
        pool,
        projections,
        position,
        timeout,
        Duration::from_millis(25),
    )
    .await
}

/// [`wait_for`], polling at least every `longest_pause`: for a single waiter whose latency
/// matters more than the queries it sends (the live hub waits once per batch of changes).
///
/// # Errors
/// As [`wait_for`].
pub async fn wait_polling(
    pool: &PgPool,
    projections: &[&str],
    position: Position,
    timeout: Duration,
    longest_pause: Duration,
) -> Result<(), WaitError> {
    let started = Instant::now();
    let (tx, seq) = checkpoint::to_parts(position);
    let mut pauses = ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(1).min(longest_pause))
        .with_factor(2.0)
        .with_max_delay(longest_pause)
        .without_max_times()
        .build();
    loop {
        let rows: Vec<(String, Option<i64>, Option<i64>)> = sqlx::query_as(
            "select p.name, c.failed_position_tx, c.failed_position_seq
             from unnest($1::text[]) as p(name)
             left join projection_checkpoints c
                    on c.projection = p.name and c.target = 'live'
             where c.projection is null or (c.position_tx, c.position_seq) < ($2, $3)",
        )
        .bind(projections)
        .bind(tx)
        .bind(seq)
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(());
        }
        for (name, failed_tx, failed_seq) in &rows {
            if let (Some(failed_tx), Some(failed_seq)) = (failed_tx, failed_seq)
                && (*failed_tx, *failed_seq) <= (tx, seq)
            {
                let mut conn = pool.acquire().await?;
                let failure = checkpoint::load(&mut conn, name, Target::Live)
                    .await?
                    .and_then(|c| c.failure);
                if let Some(failure) = failure {
                    return Err(WaitError::Failed {
                        projection: name.clone(),
                        failure,
                    });
                }
            }
        }
        let waited = started.elapsed();
        if waited >= timeout {
            return Err(WaitError::Timeout {
                position,
                waited,
                lagging: rows.into_iter().map(|row| row.0).collect(),
            });
        }
        let pause = pauses.next().unwrap_or(longest_pause);
        tokio::time::sleep(pause.min(timeout - waited)).await;
    }
}
