//! `BroadcastAsOf`: a broadcast folded from its stream up to a point, all of it the domain's
//! state ([`domain::broadcast::BroadcastState`]).

use app::as_of::{self, Until};
use async_graphql::{Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::BroadcastId;
use domain::broadcast::{Broadcast, BroadcastStatus};
use eventlog::EventLog;
use eventlog::postgres::PostgresLog;
use uuid::Uuid;

use super::{MAX_BROADCAST_EVENTS, fold_failed};
use crate::graphql::error::{Code, error, failed};

/// Where a broadcast stood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum BroadcastStatusAsOf {
    /// Being written.
    Draft,
    /// Waiting for its time (see `scheduledAt`).
    Scheduled,
    /// Sending.
    Running,
    /// Stopped for now.
    Paused,
    /// Every recipient had an outcome.
    Completed,
    /// Abandoned.
    Cancelled,
}

/// A broadcast as it was at a point of its stream, folded from the log.
#[derive(Debug, Clone, SimpleObject)]
pub struct BroadcastAsOf {
    /// The broadcast's uuid.
    pub broadcast_id: ID,
    /// The stream version of the last event folded.
    pub version: i64,
    /// When the log recorded the last event folded.
    pub recorded_at: DateTime<Utc>,
    /// Where it stood.
    pub status: BroadcastStatusAsOf,
    /// When it was due, while scheduled.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Who it was for, as the domain describes the segment.
    pub audience: Json<serde_json::Value>,
    /// What it was to send (text, media, buttons), as the domain describes it.
    pub content: Json<serde_json::Value>,
    /// The frozen audience's size, once started (0 before).
    pub audience_size: i32,
    /// Recipients with an outcome by then.
    pub recorded: i32,
    /// Delivered by then.
    pub delivered: i32,
    /// Failed by then.
    pub failed: i32,
    /// Skipped by then.
    pub skipped: i32,
}

fn count(n: impl TryInto<i32>) -> i32 {
    n.try_into().unwrap_or(i32::MAX)
}

/// The broadcast `id` folded up to `until`; `None` when not drafted by then, `NOT_FOUND` when
/// its stream has no event at all.
pub(super) async fn fold(
    log: &PostgresLog,
    id: Uuid,
    until: Until,
) -> Result<Option<BroadcastAsOf>> {
    let stream = BroadcastId(id).stream().name();
    let exists = log
        .stream_version(&stream)
        .await
        .map_err(|e| failed("cannot read the log", e))?;
    if exists.is_none() {
        return Err(error(Code::NotFound, "no such broadcast"));
    }
    let folded =
        as_of::fold::<Broadcast, _>(log, &stream, until, MAX_BROADCAST_EVENTS, |_, _, _| {})
            .await
            .map_err(|failure| fold_failed("broadcast", failure))?;
    let (Some(state), Some(version), Some(recorded_at)) =
        (folded.state.state(), folded.version, folded.recorded_at)
    else {
        return Ok(None);
    };
    let (status, scheduled_at) = match state.status {
        BroadcastStatus::Draft => (BroadcastStatusAsOf::Draft, None),
        BroadcastStatus::Scheduled(at) => (BroadcastStatusAsOf::Scheduled, Some(at)),
        BroadcastStatus::Running => (BroadcastStatusAsOf::Running, None),
        BroadcastStatus::Paused => (BroadcastStatusAsOf::Paused, None),
        BroadcastStatus::Completed => (BroadcastStatusAsOf::Completed, None),
        BroadcastStatus::Cancelled => (BroadcastStatusAsOf::Cancelled, None),
    };
    Ok(Some(BroadcastAsOf {
        broadcast_id: ID(state.id.as_uuid().to_string()),
        version: i64::try_from(version).unwrap_or(i64::MAX),
        recorded_at,
        status,
        scheduled_at,
        audience: Json(serde_json::to_value(&state.audience).unwrap_or_default()),
        content: Json(serde_json::to_value(&state.content).unwrap_or_default()),
        audience_size: count(state.audience_size),
        recorded: count(state.recorded.len()),
        delivered: count(state.tally.delivered),
        failed: count(state.tally.failed),
        skipped: count(state.tally.skipped),
    }))
}
