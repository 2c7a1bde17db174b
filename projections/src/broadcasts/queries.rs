//! The reads of the "broadcasts" read model: broadcasts by id, the broadcast list, and each
//! broadcast's recipients.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::{BroadcastRow, BroadcastState, RecipientRow, RecipientState};
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

/// One page of broadcasts, newest first (by creation, then id), optionally in one `state`,
/// after the broadcast with creation time and id `after`: at most `limit`.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn list(
    db: impl PgExecutor<'_>,
    state: Option<BroadcastState>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<BroadcastRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from broadcasts \
             where ($1::text is null or state = $1) \
               and ($2::timestamptz is null or (created_at, id) < ($2, $3)) \
             order by created_at desc, id desc limit $4",
            select_list::<BroadcastRow>(None)
        )
    });
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(&SQL)
        .bind(state.map(StoredText::as_str))
        .bind(after_at)
        .bind(after_id)
        .bind(limit)
        .fetch_all(db)
        .await
}

/// One page of a broadcast's recipients by Telegram id, optionally with one outcome, after the
/// customer `after`: at most `limit`.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn recipients(
    db: impl PgExecutor<'_>,
    broadcast: Uuid,
    state: Option<RecipientState>,
    after: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<RecipientRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from broadcast_recipients \
             where broadcast_id = $1 and ($2::text is null or state = $2) \
               and ($3::bigint is null or customer_id > $3) \
             order by customer_id limit $4",
            select_list::<RecipientRow>(None)
        )
    });
    sqlx::query_as(&SQL)
        .bind(broadcast)
        .bind(state.map(StoredText::as_str))
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await
}
