//! `broadcastProgress`: a broadcast's counters as its events come.

use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use eventlog::Position;
use futures::{Stream, StreamExt};
use projections::StoredText;
use projections::broadcasts::presses;
use projections::broadcasts::queries as broadcasts;
use projections::broadcasts::{BroadcastRow, BroadcastState};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Permission;
use crate::graphql::consistency::wait_for_model;
use crate::graphql::context::Api;
use crate::graphql::error::{Code, database, error, failed, until_available};
use crate::graphql::events::event_feed;
use crate::graphql::guard::{LiveScope, Need};
use crate::graphql::ids::parse_uuid;

/// A broadcast's counters, and while it is sending, how fast and until when.
#[derive(Debug, Clone, SimpleObject)]
pub struct BroadcastProgress {
    /// The log position the counters reflect at least (empty for the first snapshot).
    pub cursor: String,
    /// `draft`, `scheduled`, `running`, `paused`, `completed` or `cancelled`.
    pub state: String,
    /// Recipients the message reached.
    pub delivered: i32,
    /// Recipients it could not reach.
    pub failed: i32,
    /// Recipients skipped (banned, blocked the bot…).
    pub skipped: i32,
    /// Every recipient, once the audience is resolved.
    pub total: Option<i32>,
    /// Recipients without an outcome yet, once the audience is resolved.
    pub pending: Option<i32>,
    /// Messages sent (delivered or failed) per second over the last 30 seconds, while
    /// running; null otherwise.
    pub rate_per_second: Option<f64>,
    /// Seconds until every pending recipient is sent to at the current rate, while running
    /// and sending; null otherwise.
    pub eta_seconds: Option<i32>,
    /// When sending would end at the current rate (now plus `etaSeconds`).
    pub estimated_completion_at: Option<DateTime<Utc>>,
}

/// The broadcasts' subscriptions.
#[derive(Debug, Default)]
pub struct BroadcastSubscription;

#[Subscription]
impl BroadcastSubscription {
    /// A broadcast's counters: the current ones first, then after each of its events.
    #[graphql(guard = "Need(Permission::ReadBroadcasts)")]
    async fn broadcast_progress(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = Result<BroadcastProgress>> + use<>> {
        let broadcast = parse_uuid(&id, "id")?;
        let api = ctx.data_unchecked::<Api>();
        let pool = api.pool.clone();
        let timeout = api.limits.consistency_timeout;
        let stream = format!("broadcast-{broadcast}");
        let (_, feed) = event_feed(api.live.clone(), None, {
            let stream = stream.clone();
            move |event| event.stream_id == stream
        })
        .await?;
        let first = match progress_of(&pool, broadcast, None, timeout).await? {
            Some(first) => first,
            // Not in the read model yet: a broadcast created a moment ago is in the log, and
            // its first snapshot comes once the read model has applied its last event.
            None => {
                let not_found = || error(Code::NotFound, "no such broadcast");
                let last = eventlog::EventLog::read_stream(
                    &api.log,
                    &stream,
                    u64::MAX,
                    eventlog::Direction::Backwards,
                    1,
                )
                .await
                .map_err(|e| match e {
                    eventlog::Error::StreamNotFound { .. } => not_found(),
                    e => failed("cannot read the broadcast", e),
                })?;
                let at = last
                    .first()
                    .map(|event| event.position)
                    .ok_or_else(not_found)?;
                progress_of(&pool, broadcast, Some(at), timeout)
                    .await?
                    .ok_or_else(not_found)?
            }
        };
        // Each item is checked against the caller's state as of its position; a refusal
        // (deactivated, permission lost) is the feed's last item.
        let access = LiveScope::of(ctx, Permission::ReadBroadcasts)?;
        let rest = feed
            .then(move |item| {
                let (pool, access) = (pool.clone(), access.clone());
                async move {
                    let event = match item {
                        Ok(event) => event,
                        Err(error) => return Some((Err(error), false)),
                    };
                    if let Err(error) = access.at(event.position).await {
                        return Some((Err(error), true));
                    }
                    until_available(|| progress_of(&pool, broadcast, Some(event.position), timeout))
                        .await
                        .transpose()
                        .map(|item| (item, false))
                }
            })
            .filter_map(std::future::ready)
            .scan(false, |ended, (item, last)| {
                let go = !*ended;
                *ended = last;
                std::future::ready(go.then_some(item))
            });
        Ok(futures::stream::once(std::future::ready(Ok(first))).chain(rest))
    }
}

/// A broadcast's counters once the `broadcasts` read model has applied the log up to
/// `position` (now, without one).
async fn progress_of(
    pool: &PgPool,
    broadcast: Uuid,
    position: Option<Position>,
    timeout: std::time::Duration,
) -> Result<Option<BroadcastProgress>> {
    if let Some(position) = position {
        wait_for_model(pool, "broadcasts", position, timeout).await?;
    }
    let Some(row) = broadcasts::by_id(pool, broadcast).await.map_err(database)? else {
        return Ok(None);
    };
    let cursor = position.map(|p| p.to_string()).unwrap_or_default();
    progress(pool, row, cursor).await.map(Some)
}

/// The progress of the broadcast of `row`, read at `cursor`: the counters from the row, and
/// while it runs, the rate over the last [`presses::RATE_WINDOW`] (or since the start, when
/// that is shorter) and the time the pending recipients take at that rate.
///
/// # Errors
/// `INTERNAL` when the database fails.
pub async fn progress(
    pool: &PgPool,
    row: BroadcastRow,
    cursor: String,
) -> Result<BroadcastProgress> {
    let done = row
        .delivered
        .saturating_add(row.failed)
        .saturating_add(row.skipped);
    let pending = row
        .total_recipients
        .map(|total| total.saturating_sub(done).max(0));
    let mut rate = None;
    let mut eta = None;
    if row.state == BroadcastState::Running {
        let now = Utc::now();
        let since = row
            .started_at
            .map_or(now - presses::RATE_WINDOW, |started| {
                started.max(now - presses::RATE_WINDOW)
            });
        let sent = presses::sent_since(pool, row.id, since)
            .await
            .map_err(database)?;
        // Sends are counted from the start of the second holding `since`.
        let millis = now.timestamp_millis() - since.timestamp() * 1_000;
        let seconds = (millis as f64 / 1_000.0).max(1.0);
        let per_second = sent as f64 / seconds;
        rate = Some(per_second);
        if let Some(pending) = pending
            && per_second > 0.0
        {
            let seconds = (f64::from(pending) / per_second).ceil();
            eta = Some(seconds.min(f64::from(i32::MAX)) as i32);
        }
    }
    Ok(BroadcastProgress {
        cursor,
        state: row.state.as_str().to_owned(),
        delivered: row.delivered,
        failed: row.failed,
        skipped: row.skipped,
        total: row.total_recipients,
        pending,
        rate_per_second: rate,
        eta_seconds: eta,
        estimated_completion_at: eta
            .map(|seconds| Utc::now() + chrono::TimeDelta::seconds(i64::from(seconds))),
    })
}
