//! Reads of the "broadcasts" read model (`broadcasts`, `broadcast_recipients`).

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// One row of `broadcasts`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BroadcastRow {
    pub id: Uuid,
    pub state: String,
    pub created_by: Uuid,
    pub audience: serde_json::Value,
    pub audience_kind: String,
    pub text: Option<String>,
    pub media_kind: Option<String>,
    pub buttons: serde_json::Value,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub total_recipients: Option<i32>,
    pub delivered: i32,
    pub failed: i32,
    pub skipped: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub cancelled_at: Option<DateTime<Utc>>,
}

const BROADCAST_COLUMNS: &str = "id, state, created_by, audience, audience_kind, text, \
    media_kind, buttons, scheduled_at, total_recipients, delivered, failed, skipped, \
    created_at, updated_at, started_at, completed_at, cancelled_at";

/// One broadcast.
///
/// # Errors
/// The database's.
pub async fn by_id(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<BroadcastRow>> {
    sqlx::query_as(&format!(
        "select {BROADCAST_COLUMNS} from broadcasts where id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One page of broadcasts, newest first, after the `(created_at, id)` of the last row seen,
/// optionally in one state.
///
/// # Errors
/// The database's.
pub async fn list(
    pool: &PgPool,
    state: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<BroadcastRow>> {
    let (after_at, after_id) = after.unzip();
    sqlx::query_as(&format!(
        "select {BROADCAST_COLUMNS} from broadcasts \
         where ($1::text is null or state = $1) \
           and ($2::timestamptz is null or (created_at, id) < ($2, $3)) \
         order by created_at desc, id desc limit $4"
    ))
    .bind(state)
    .bind(after_at)
    .bind(after_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// One row of `broadcast_recipients`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RecipientRow {
    pub customer_id: i64,
    pub state: String,
    pub reason: Option<String>,
    pub retryable: Option<bool>,
    pub updated_at: DateTime<Utc>,
}

/// One page of a broadcast's recipients by Telegram id, after `after`, optionally in one state.
///
/// # Errors
/// The database's.
pub async fn recipients(
    pool: &PgPool,
    broadcast: Uuid,
    state: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<RecipientRow>> {
    sqlx::query_as(
        "select customer_id, state, reason, retryable, updated_at from broadcast_recipients \
         where broadcast_id = $1 and ($2::text is null or state = $2) \
           and ($3::bigint is null or customer_id > $3) \
         order by customer_id limit $4",
    )
    .bind(broadcast)
    .bind(state)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A broadcast's state and counters.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProgressRow {
    pub state: String,
    pub delivered: i32,
    pub failed: i32,
    pub skipped: i32,
    pub total: Option<i32>,
}

/// A broadcast's state and counters.
///
/// # Errors
/// The database's.
pub async fn progress(pool: &PgPool, broadcast: Uuid) -> sqlx::Result<Option<ProgressRow>> {
    sqlx::query_as(
        "select state, delivered, failed, skipped, total_recipients as total
         from broadcasts where id = $1",
    )
    .bind(broadcast)
    .fetch_optional(pool)
    .await
}
