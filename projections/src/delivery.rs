//! Reads of `delivery_retries`: the agent replies the bot's delivery worker keeps trying after
//! transient failures (the worker writes them, see `bot/src/delivery.rs`;
//! `migrations/0016_delivery_retries.sql`). Not a read model of the log: the worker keeps this
//! table beside it, and the API reads it to show a pending reply as retrying.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// Where the retries of one reply stand.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRetry {
    /// The reply.
    pub message_id: Uuid,
    /// Failed attempts so far.
    pub attempts: i32,
    /// When the first attempt failed.
    pub first_failed_at: DateTime<Utc>,
    /// When the worker tries next.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: String,
}

/// The retries of reply `message_id`, if the worker is retrying it.
///
/// # Errors
/// The database's.
pub async fn retry(
    db: impl PgExecutor<'_>,
    message_id: Uuid,
) -> sqlx::Result<Option<DeliveryRetry>> {
    sqlx::query_as(
        "select message_id, attempts, first_failed_at, next_attempt_at, last_error \
         from delivery_retries where message_id = $1",
    )
    .bind(message_id)
    .fetch_optional(db)
    .await
}
