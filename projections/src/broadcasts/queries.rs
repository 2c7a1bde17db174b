//! The reads of the "broadcasts" read model: broadcasts by id, the broadcast list, and each
//! broadcast's recipients.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{BroadcastRow, BroadcastState, RecipientRow, RecipientState};
use crate::page::{Page, push_keyset};
use crate::table::{StoredText, select_list};

/// One broadcast, with its progress.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<BroadcastRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from broadcasts where id = $1",
            select_list::<BroadcastRow>(None)
        )
    });
    sqlx::query_as(&SQL).bind(id).fetch_optional(db).await
}

/// Scheduled broadcasts whose time has come by `now`, oldest due first, at most `limit`.
///
/// # Errors
/// The database's.
pub async fn due(
    db: impl PgExecutor<'_>,
    now: DateTime<Utc>,
    limit: i64,
) -> sqlx::Result<Vec<(Uuid, DateTime<Utc>)>> {
    sqlx::query_as(
        "select id, scheduled_at from broadcasts \
         where state = 'scheduled' and scheduled_at <= $1 order by scheduled_at limit $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Broadcasts that are sending or paused (the sender's work), oldest start first.
///
/// # Errors
/// The database's.
pub async fn active(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<Uuid>> {
    sqlx::query_scalar(
        "select id from broadcasts where state in ('running', 'paused') \
         order by started_at, id",
    )
    .fetch_all(db)
    .await
}

/// How many of a broadcast's rows are in each recipient state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecipientCounts {
    /// No outcome yet.
    pub pending: i64,
    /// Delivered.
    pub delivered: i64,
    /// Refused by Telegram.
    pub failed: i64,
    /// Left out at the start or skipped at send time.
    pub skipped: i64,
    /// Never sent: cancelled first.
    pub cancelled: i64,
}

/// Counts a broadcast's rows of `broadcast_recipients` by state (one index scan).
///
/// # Errors
/// The database's, or a state the code does not know.
pub async fn recipient_counts(
    db: impl PgExecutor<'_>,
    broadcast: Uuid,
) -> sqlx::Result<RecipientCounts> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "select state, count(*) from broadcast_recipients where broadcast_id = $1 group by state",
    )
    .bind(broadcast)
    .fetch_all(db)
    .await?;
    let mut counts = RecipientCounts::default();
    for (state, count) in rows {
        let slot = match RecipientState::from_text(&state)
            .map_err(|error| sqlx::Error::Decode(error.into()))?
        {
            RecipientState::Pending => &mut counts.pending,
            RecipientState::Delivered => &mut counts.delivered,
            RecipientState::Failed => &mut counts.failed,
            RecipientState::Skipped => &mut counts.skipped,
            RecipientState::Cancelled => &mut counts.cancelled,
        };
        *slot = count;
    }
    Ok(counts)
}

/// One page of broadcasts, newest first (by creation, then id), optionally in one `state`,
/// bounded by creation times and ids, in list order.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn list(
    db: impl PgExecutor<'_>,
    state: Option<BroadcastState>,
    page: &Page<(DateTime<Utc>, Uuid)>,
) -> sqlx::Result<Vec<BroadcastRow>> {
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {} from broadcasts where true",
        select_list::<BroadcastRow>(None)
    ));
    if let Some(state) = state {
        sql.push(" and state = ").push_bind(state.as_str());
    }
    push_keyset(&mut sql, ("created_at", "id"), true, page);
    let rows = sql.build_query_as().fetch_all(db).await?;
    Ok(page.in_list_order(rows))
}

/// One page of a broadcast's recipients by Telegram id, optionally with one outcome, bounded by
/// Telegram ids, in list order.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn recipients(
    db: impl PgExecutor<'_>,
    broadcast: Uuid,
    state: Option<RecipientState>,
    page: &Page<i64>,
) -> sqlx::Result<Vec<RecipientRow>> {
    static FORWARDS: LazyLock<String> = LazyLock::new(|| recipients_sql("asc"));
    static BACKWARDS: LazyLock<String> = LazyLock::new(|| recipients_sql("desc"));
    let sql = if page.scan_descending(false) {
        &BACKWARDS
    } else {
        &FORWARDS
    };
    let (after, before) = page.bounds();
    let rows = sqlx::query_as(sql)
        .bind(broadcast)
        .bind(state.map(StoredText::as_str))
        .bind(after)
        .bind(before)
        .bind(page.limit)
        .fetch_all(db)
        .await?;
    Ok(page.in_list_order(rows))
}

/// The statement reading a page of recipients, scanning the primary key in `direction`.
fn recipients_sql(direction: &str) -> String {
    format!(
        "select {} from broadcast_recipients \
         where broadcast_id = $1 and ($2::text is null or state = $2) \
           and customer_id > $3 and customer_id < $4 \
         order by customer_id {direction} limit $5",
        select_list::<RecipientRow>(None)
    )
}
