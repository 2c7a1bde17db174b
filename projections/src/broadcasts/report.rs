//! The rows of a broadcast's recipient report (the API's CSV download), read a page at a time
//! in Telegram id order so a report of any size is written in constant memory.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

/// One recipient as the report shows them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ReportRow {
    /// The customer's Telegram user id.
    pub customer_id: i64,
    /// Their outcome as stored (`pending`, `delivered`, `failed`, `skipped`).
    pub state: String,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// Whether a failure may succeed on retry.
    pub retryable: Option<bool>,
    /// Telegram's id of the delivered message.
    pub telegram_message_id: Option<i32>,
    /// When the outcome was recorded.
    pub updated_at: DateTime<Utc>,
    /// Their presses of the broadcast's callback buttons.
    pub button_presses: i64,
    /// First name (only when asked for).
    pub first_name: Option<String>,
    /// Last name (only when asked for).
    pub last_name: Option<String>,
    /// Username (only when asked for).
    pub username: Option<String>,
}

/// Up to `limit` recipients of `broadcast` with a Telegram id above `after`, in id order; with
/// their names from the `customers` read model when `names` (personal data: the caller must
/// be allowed to read customers).
///
/// # Errors
/// The database's.
pub async fn page(
    db: impl PgExecutor<'_>,
    broadcast: Uuid,
    after: i64,
    limit: i64,
    names: bool,
) -> sqlx::Result<Vec<ReportRow>> {
    sqlx::query_as(
        "select r.customer_id, r.state, r.reason, r.retryable, r.telegram_message_id, \
                r.updated_at, \
                coalesce((select sum(p.presses) from broadcast_button_presses p \
                          where p.broadcast_id = r.broadcast_id \
                            and p.customer_id = r.customer_id), 0)::bigint as button_presses, \
                case when $4 then c.first_name end as first_name, \
                case when $4 then c.last_name end as last_name, \
                case when $4 then c.username end as username \
           from broadcast_recipients r left join customers c on c.id = r.customer_id \
          where r.broadcast_id = $1 and r.customer_id > $2 \
          order by r.customer_id limit $3",
    )
    .bind(broadcast)
    .bind(after)
    .bind(limit)
    .bind(names)
    .fetch_all(db)
    .await
}
