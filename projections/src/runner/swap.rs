//! The end of a rebuild: under the live tables' lock, the shadow copy applies the last events
//! and replaces the live copy, checkpoint and all, in one transaction. Readers wait for it a few
//! milliseconds; when they hold the live tables too long, the swap gives up and tries later.

use std::time::Duration;

use eventlog::{EventLog, Position};
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use super::applier::{Decoded, Outcome};
use super::error::{RuntimeError, is_connection_failure};
use super::member::Member;
use super::shadow;
use crate::batch::{ApplyError, Target};
use crate::checkpoint::{self, Failure};
use crate::projection::Projection;

/// How a swap went.
pub(super) enum Swap {
    /// The shadow copy is live now.
    Done,
    /// Readers held the live tables (or an event failed in a batch and was not found): nothing
    /// changed; try again shortly.
    Busy,
    /// The shadow copy stopped on an event; the live copy stays.
    Failed(Failure),
}

/// Postgres's code for "lock not available" (the swap's `lock_timeout` passed).
const LOCK_NOT_AVAILABLE: &str = "55P03";

/// Finishes the shadow copy under the live tables' lock and swaps it in.
pub(super) async fn swap<L: EventLog>(
    member: &mut Member,
    log: &L,
    page: usize,
    lock_timeout: Duration,
) -> Result<Swap, RuntimeError> {
    let projection = member.projection();
    let Some(mut tx) = lock_live(&mut member.conn, projection.as_ref(), lock_timeout).await? else {
        return Ok(Swap::Busy);
    };
    // The last events, applied while readers wait: usually a handful.
    let from = member.shadow.position;
    let (position, seen) =
        match finish_shadow(&mut tx, projection.as_ref(), from, log, page).await? {
            Finished::At(position, seen) => (position, seen),
            Finished::BatchFailed(decoded, err) => {
                tx.rollback().await?;
                return find_failure(member, &decoded, err).await;
            }
            Finished::Poison(poison) => {
                tx.rollback().await?;
                let name = projection.name();
                checkpoint::record_failure(&mut member.conn, name, Target::Shadow, &poison).await?;
                return Ok(Swap::Failed(poison));
            }
        };
    shadow::swap_in(&mut tx, projection.as_ref()).await?;
    checkpoint::promote_shadow(
        &mut tx,
        projection.name(),
        projection.version(),
        position,
        seen,
    )
    .await?;
    tx.commit().await?;
    member.swapped_in(position);
    Ok(Swap::Done)
}

/// Begins the swap's transaction and takes the live tables in it; `None` when readers held
/// them past `lock_timeout`.
async fn lock_live<'c>(
    conn: &'c mut PgConnection,
    projection: &dyn Projection,
    lock_timeout: Duration,
) -> Result<Option<Transaction<'c, Postgres>>, RuntimeError> {
    let mut tx = conn.begin().await?;
    match shadow::lock_live(&mut tx, projection, lock_timeout).await {
        Ok(()) => Ok(Some(tx)),
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some(LOCK_NOT_AVAILABLE) => {
            tx.rollback().await?;
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// How applying the rest of the log to the shadow copy inside the swap's transaction ended.
enum Finished {
    /// At the head: the position, and the events applied on the way.
    At(Position, u64),
    /// A batch failed; the transaction must not commit.
    BatchFailed(Decoded, ApplyError),
    /// An event cannot be decoded; the transaction must not commit.
    Poison(Failure),
}

/// Applies the log after `from` to the shadow copy inside the swap's transaction `tx`.
async fn finish_shadow<L: EventLog>(
    tx: &mut PgConnection,
    projection: &dyn Projection,
    from: Position,
    log: &L,
    page: usize,
) -> Result<Finished, RuntimeError> {
    let mut position = from;
    let mut seen = 0_u64;
    loop {
        let read = log.read_all(position, page).await?;
        let short = read.events.len() < page;
        let decoded = Decoded::from_recorded(read.events);
        if !decoded.events.is_empty() {
            if let Err(err) = projection.apply(tx, Target::Shadow, &decoded.events).await {
                return Ok(Finished::BatchFailed(decoded, err));
            }
            seen += decoded.events.len() as u64;
            position = decoded.last_position().unwrap_or(position);
        }
        if let Some(poison) = decoded.poison {
            return Ok(Finished::Poison(poison));
        }
        if short {
            return Ok(Finished::At(position, seen));
        }
    }
}

/// A batch failed inside the swap (now rolled back): the applier, outside it, finds the
/// faulty event (one per transaction) and records it.
async fn find_failure(
    member: &mut Member,
    decoded: &Decoded,
    err: ApplyError,
) -> Result<Swap, RuntimeError> {
    if let ApplyError::Database(db) = err
        && is_connection_failure(&db)
    {
        return Err(db.into());
    }
    Ok(
        match member.shadow.apply(&mut member.conn, decoded).await? {
            Outcome::Stopped(failure) => Swap::Failed(failure),
            Outcome::Applied => Swap::Busy,
        },
    )
}
