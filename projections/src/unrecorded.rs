//! Reads of `telegram_updates_unrecorded`: the Telegram updates the bot could never record,
//! kept with their raw JSON and the error (the bot writes them, see `bot/src/inbound.rs`;
//! `migrations/0014_unrecorded_updates.sql`). Not a read model of the log: the bot keeps this
//! table beside it, and admins read it through the API.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{PgExecutor, Postgres, QueryBuilder};

use crate::page::{Page, push_keyset};

/// One update the bot could not record.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UnrecordedUpdate {
    /// The update's idempotency key (bot, update id and date): unique.
    pub update_key: String,
    /// Telegram's `update_id`.
    pub update_id: i64,
    /// The update as received (NUL characters replaced by U+FFFD).
    pub raw_update: Json<serde_json::Value>,
    /// Why it could not be recorded.
    pub error: String,
    /// When it was (last) refused.
    pub recorded_at: DateTime<Utc>,
}

/// One page of unrecorded updates, newest first (by time, then key), in list order.
///
/// # Errors
/// The database's.
pub async fn list(
    db: impl PgExecutor<'_>,
    page: &Page<(DateTime<Utc>, String)>,
) -> sqlx::Result<Vec<UnrecordedUpdate>> {
    let mut sql = QueryBuilder::<Postgres>::new(
        "select update_key, update_id, raw_update, error, recorded_at \
         from telegram_updates_unrecorded where true",
    );
    push_keyset(&mut sql, ("recorded_at", "update_key"), true, page);
    let rows = sql.build_query_as().fetch_all(db).await?;
    Ok(page.in_list_order(rows))
}
