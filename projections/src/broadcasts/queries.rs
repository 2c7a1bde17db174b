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
