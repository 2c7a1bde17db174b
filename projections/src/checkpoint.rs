//! Where each projection stands: the `projection_checkpoints` table.
//!
//! A checkpoint is written in the same transaction as the read-model rows it accounts for
//! ([`save`]); everything else here reads it or records what happened around it (a failure, a
//! rebuild request).

use chrono::{DateTime, Utc};
use eventlog::Position;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::batch::Target;

/// One row of `projection_checkpoints`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The projection's name.
    pub projection: String,
    /// Which copy of its tables.
    pub target: Target,
    /// The code version that built this copy.
    pub version: u32,
    /// The last event applied ([`Position::START`] when none).
    pub position: Position,
    /// Events seen since this copy started from the beginning of the log.
    pub events_seen: u64,
    /// Why the projection stopped, if it did.
    pub failure: Option<Failure>,
    /// When someone asked for a rebuild that has not happened yet.
    pub rebuild_requested_at: Option<DateTime<Utc>>,
    /// When this copy started from the beginning of the log.
    pub started_at: DateTime<Utc>,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
}

/// The event a projection stopped on, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The event's position; the checkpoint stays just before it.
    pub position: Position,
    /// The event's id.
    pub event_id: Uuid,
    /// The event's stored type.
    pub event_type: String,
    /// What went wrong.
    pub error: String,
    /// When.
    pub at: DateTime<Utc>,
}

pub(crate) fn target_name(target: Target) -> &'static str {
    match target {
        Target::Live => "live",
        Target::Shadow => "shadow",
        // A verification's copy keeps no checkpoint; the name is never stored.
        Target::Scratch => "scratch",
    }
}

pub(crate) fn to_parts(position: Position) -> (i64, i64) {
    let (tx, seq) = position.parts();
    // Both parts come from Postgres bigints, so they fit.
    (
        i64::try_from(tx).unwrap_or(i64::MAX),
        i64::try_from(seq).unwrap_or(i64::MAX),
    )
}

fn from_parts(tx: i64, seq: i64) -> Position {
    Position::from_parts(
        u64::try_from(tx).unwrap_or(0),
        u64::try_from(seq).unwrap_or(0),
    )
}

#[derive(sqlx::FromRow)]
struct Row {
    projection: String,
    target: String,
    version: i32,
    position_tx: i64,
    position_seq: i64,
    events_seen: i64,
    failed_position_tx: Option<i64>,
    failed_position_seq: Option<i64>,
    failed_event_id: Option<Uuid>,
    failed_event_type: Option<String>,
    failed_error: Option<String>,
    failed_at: Option<DateTime<Utc>>,
    rebuild_requested_at: Option<DateTime<Utc>>,
    started_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<Row> for Checkpoint {
    fn from(row: Row) -> Self {
        let failure = match (
            row.failed_position_tx,
            row.failed_position_seq,
            row.failed_event_id,
            row.failed_at,
        ) {
            (Some(tx), Some(seq), Some(event_id), Some(at)) => Some(Failure {
                position: from_parts(tx, seq),
                event_id,
                event_type: row.failed_event_type.unwrap_or_default(),
                error: row.failed_error.unwrap_or_default(),
                at,
            }),
            _ => None,
        };
        Checkpoint {
            projection: row.projection,
            target: if row.target == "shadow" {
                Target::Shadow
            } else {
                Target::Live
            },
            version: u32::try_from(row.version).unwrap_or(0),
            position: from_parts(row.position_tx, row.position_seq),
            events_seen: u64::try_from(row.events_seen).unwrap_or(0),
            failure,
            rebuild_requested_at: row.rebuild_requested_at,
            started_at: row.started_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "projection, target, version, position_tx, position_seq, events_seen, \
    failed_position_tx, failed_position_seq, failed_event_id, failed_event_type, failed_error, \
    failed_at, rebuild_requested_at, started_at, updated_at";

/// The checkpoint of one copy of a projection, if it has one.
pub(crate) async fn load(
    conn: &mut PgConnection,
    projection: &str,
    target: Target,
) -> Result<Option<Checkpoint>, sqlx::Error> {
    let sql = format!(
        "select {COLUMNS} from projection_checkpoints where projection = $1 and target = $2"
    );
    let row: Option<Row> = sqlx::query_as(&sql)
        .bind(projection)
        .bind(target_name(target))
        .fetch_optional(conn)
        .await?;
    Ok(row.map(Checkpoint::from))
}

/// Every checkpoint, live and shadow, ordered by projection.
///
/// # Errors
/// When the database cannot be read.
pub async fn list(pool: &PgPool) -> Result<Vec<Checkpoint>, sqlx::Error> {
    let sql = format!("select {COLUMNS} from projection_checkpoints order by projection, target");
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(pool).await?;
    Ok(rows.into_iter().map(Checkpoint::from).collect())
}

/// Starts a copy from the beginning of the log, replacing any checkpoint it had.
pub(crate) async fn reset(
    conn: &mut PgConnection,
    projection: &str,
    target: Target,
    version: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into projection_checkpoints (projection, target, version) values ($1, $2, $3)
         on conflict (projection, target) do update set
             version = excluded.version, position_tx = 0, position_seq = 0, events_seen = 0,
             failed_position_tx = null, failed_position_seq = null, failed_event_id = null,
             failed_event_type = null, failed_error = null, failed_at = null,
             started_at = now(), updated_at = now()",
    )
    .bind(projection)
    .bind(target_name(target))
    .bind(i32::try_from(version).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a copy's checkpoint from `from` to `to`, after `seen` more events, inside the caller's
/// transaction. `false` when the checkpoint is no longer at `from`: someone else moved it (and
/// nothing was written).
pub(crate) async fn advance(
    conn: &mut PgConnection,
    projection: &str,
    target: Target,
    from: Position,
    to: Position,
    seen: u64,
) -> Result<bool, sqlx::Error> {
    let (from_tx, from_seq) = to_parts(from);
    let (to_tx, to_seq) = to_parts(to);
    let moved = sqlx::query(
        "update projection_checkpoints set
             position_tx = $5, position_seq = $6, events_seen = events_seen + $7,
             failed_position_tx = null, failed_position_seq = null, failed_event_id = null,
             failed_event_type = null, failed_error = null, failed_at = null,
             updated_at = now()
         where projection = $1 and target = $2 and position_tx = $3 and position_seq = $4",
    )
    .bind(projection)
    .bind(target_name(target))
    .bind(from_tx)
    .bind(from_seq)
    .bind(to_tx)
    .bind(to_seq)
    .bind(i64::try_from(seen).unwrap_or(i64::MAX))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(moved == 1)
}

/// Makes the shadow copy's checkpoint the live one, at `version` and `position`, `seen` more
/// events on, and drops the shadow's: the end of a swap, inside its transaction.
pub(crate) async fn promote_shadow(
    conn: &mut PgConnection,
    projection: &str,
    version: u32,
    position: Position,
    seen: u64,
) -> Result<(), sqlx::Error> {
    let (tx, seq) = to_parts(position);
    sqlx::query(
        "update projection_checkpoints live set
             version = $2, position_tx = $3, position_seq = $4,
             events_seen = shadow.events_seen + $5, started_at = shadow.started_at,
             failed_position_tx = null, failed_position_seq = null, failed_event_id = null,
             failed_event_type = null, failed_error = null, failed_at = null,
             rebuild_requested_at = null, updated_at = now()
         from projection_checkpoints shadow
         where live.projection = $1 and live.target = 'live'
           and shadow.projection = $1 and shadow.target = 'shadow'",
    )
    .bind(projection)
    .bind(i32::try_from(version).unwrap_or(i32::MAX))
    .bind(tx)
    .bind(seq)
    .bind(i64::try_from(seen).unwrap_or(i64::MAX))
    .execute(&mut *conn)
    .await?;
    delete(conn, projection, Target::Shadow).await
}

/// Forgets a copy's checkpoint.
pub(crate) async fn delete(
    conn: &mut PgConnection,
    projection: &str,
    target: Target,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from projection_checkpoints where projection = $1 and target = $2")
        .bind(projection)
        .bind(target_name(target))
        .execute(conn)
        .await?;
    Ok(())
}

/// Records the event a projection stopped on (the checkpoint itself does not move).
pub(crate) async fn record_failure(
    conn: &mut PgConnection,
    projection: &str,
    target: Target,
    failure: &Failure,
) -> Result<(), sqlx::Error> {
    let (tx, seq) = to_parts(failure.position);
    sqlx::query(
        "update projection_checkpoints set
             failed_position_tx = $3, failed_position_seq = $4, failed_event_id = $5,
             failed_event_type = $6, failed_error = $7, failed_at = $8, updated_at = now()
         where projection = $1 and target = $2",
    )
    .bind(projection)
    .bind(target_name(target))
    .bind(tx)
    .bind(seq)
    .bind(failure.event_id)
    .bind(&failure.event_type)
    .bind(&failure.error)
    .bind(failure.at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Asks whichever process runs `projection` to rebuild it. Returns whether the projection has a
/// checkpoint to attach the request to (a projection that never ran has nothing to rebuild).
///
/// # Errors
/// When the database cannot be written.
pub async fn request_rebuild(pool: &PgPool, projection: &str) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "update projection_checkpoints set rebuild_requested_at = now()
         where projection = $1 and target = 'live'",
    )
    .bind(projection)
    .execute(pool)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// When a rebuild of `projection` was requested and not yet done.
pub(crate) async fn rebuild_requested(
    conn: &mut PgConnection,
    projection: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "select rebuild_requested_at from projection_checkpoints
         where projection = $1 and target = 'live'",
    )
    .bind(projection)
    .fetch_optional(conn)
    .await
    .map(Option::flatten)
}
