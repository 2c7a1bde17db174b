//! Reads of the "customers" read model (`customers`).

use chrono::{DateTime, Utc};
use domain::broadcast::Audience;
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::contains_pattern;

/// One row of `customers`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CustomerRow {
    pub id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
    pub registered_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub blocked_bot: bool,
    pub banned: bool,
    pub ban_reason: Option<String>,
    pub opted_out_of_broadcasts: bool,
    pub tickets_total: i32,
    pub tickets_open: i32,
    pub open_ticket_id: Option<Uuid>,
}

const CUSTOMER_COLUMNS: &str = "id, first_name, last_name, username, language_code, \
    registered_at, last_seen_at, blocked_bot, banned, ban_reason, opted_out_of_broadcasts, \
    tickets_total, tickets_open, open_ticket_id";

/// One customer by Telegram id.
///
/// # Errors
/// The database's.
pub async fn by_id(pool: &PgPool, id: i64) -> sqlx::Result<Option<CustomerRow>> {
    sqlx::query_as(&format!(
        "select {CUSTOMER_COLUMNS} from customers where id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// One page of customers, newest first, after the `(registered_at, id)` of the last row seen,
/// optionally matching a name or username and their ban.
///
/// # Errors
/// The database's.
pub async fn list(
    pool: &PgPool,
    search: Option<&str>,
    banned: Option<bool>,
    after: Option<(DateTime<Utc>, i64)>,
    limit: i64,
) -> sqlx::Result<Vec<CustomerRow>> {
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {CUSTOMER_COLUMNS} from customers where true"
    ));
    if let Some(search) = search {
        let pattern = contains_pattern(search);
        sql.push(" and (username ilike ")
            .push_bind(pattern.clone())
            .push(" or (first_name || ' ' || coalesce(last_name, '')) ilike ")
            .push_bind(pattern)
            .push(")");
    }
    if let Some(banned) = banned {
        sql.push(" and banned = ").push_bind(banned);
    }
    if let Some((at, id)) = after {
        sql.push(" and (registered_at, id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    sql.push(" order by registered_at desc, id desc limit ")
        .push_bind(limit);
    sql.build_query_as().fetch_all(pool).await
}

/// How many customers `audience` holds now, by the `customers` and `tickets` read models;
/// opted-out, blocked and banned customers are left out.
///
/// # Errors
/// The database's.
pub async fn reachable_in(pool: &PgPool, audience: &Audience) -> sqlx::Result<i64> {
    const REACHABLE: &str = "not c.banned and not c.blocked_bot and not c.opted_out_of_broadcasts";
    match audience {
        Audience::AllCustomers => {
            sqlx::query_scalar::<_, i64>(&format!(
                "select count(*) from customers c where {REACHABLE}"
            ))
            .fetch_one(pool)
            .await
        }
        Audience::ByTicketStatus { status } => {
            let status = serde_json::to_value(status)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_default();
            sqlx::query_scalar(&format!(
                "select count(*) from customers c where {REACHABLE} and exists \
                 (select 1 from tickets t where t.customer_id = c.id and t.status = $1)"
            ))
            .bind(status)
            .fetch_one(pool)
            .await
        }
        Audience::ByCategory { category } => {
            sqlx::query_scalar(&format!(
                "select count(*) from customers c where {REACHABLE} and exists \
                 (select 1 from tickets t where t.customer_id = c.id and t.category_id = $1)"
            ))
            .bind(category.as_uuid())
            .fetch_one(pool)
            .await
        }
        Audience::ByLanguage { language } => {
            sqlx::query_scalar(&format!(
                "select count(*) from customers c where {REACHABLE} and \
                 (lower(c.language_code) = lower($1) or lower(c.language_code) like lower($1) || '-%')"
            ))
            .bind(language)
            .fetch_one(pool)
            .await
        }
        Audience::Explicit { customers } => {
            let ids: Vec<i64> = customers.iter().map(|c| c.0).collect();
            sqlx::query_scalar(&format!(
                "select count(*) from customers c where {REACHABLE} and c.id = any($1)"
            ))
            .bind(ids)
            .fetch_one(pool)
            .await
        }
    }
}
