//! The reads of the "customers" read model: customers by id, the customer list, and how many
//! customers a broadcast's audience would reach.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use domain::broadcast::Audience;
use sqlx::{PgExecutor, Postgres, QueryBuilder};

use super::CustomerRow;
use crate::page::{Page, push_keyset};
use crate::table::{StoredText, contains_pattern, select_list};

static BY_IDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "select {} from customers where id = any($1)",
        select_list::<CustomerRow>(None)
    )
});

/// The customers with these Telegram ids that exist (in no particular order).
///
/// # Errors
/// The database's.
pub async fn by_ids(db: impl PgExecutor<'_>, ids: &[i64]) -> sqlx::Result<Vec<CustomerRow>> {
    sqlx::query_as(&BY_IDS).bind(ids).fetch_all(db).await
}

/// One customer by Telegram id, if they wrote to the bot.
///
/// # Errors
/// The database's.
pub async fn by_id(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Option<CustomerRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from customers where id = $1",
            select_list::<CustomerRow>(None)
        )
    });
    sqlx::query_as(&SQL).bind(id).fetch_optional(db).await
}

/// One page of customers, newest first (by registration, then id), bounded by registration
/// times and ids, in list order. `search` keeps those whose username or full name holds it
/// (case-insensitive); `banned` those banned or not.
///
/// # Errors
/// The database's.
pub async fn list(
    db: impl PgExecutor<'_>,
    search: Option<&str>,
    banned: Option<bool>,
    page: &Page<(DateTime<Utc>, i64)>,
) -> sqlx::Result<Vec<CustomerRow>> {
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {} from customers where true",
        select_list::<CustomerRow>(None)
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
    push_keyset(&mut sql, ("registered_at", "id"), true, page);
    let rows = sql.build_query_as().fetch_all(db).await?;
    Ok(page.in_list_order(rows))
}

/// The customers a broadcast may reach: neither banned, nor blocking the bot, nor opted out.
const REACHABLE: &str = "not c.banned and not c.blocked_bot and not c.opted_out_of_broadcasts";

/// How many customers of `audience` a broadcast would reach now (neither banned, nor blocking
/// the bot, nor opted out of broadcasts): an estimate for the sender; the audience is resolved
/// again when sending starts.
///
/// # Errors
/// The database's.
pub async fn audience_size(db: impl PgExecutor<'_>, audience: &Audience) -> sqlx::Result<i64> {
    match audience {
        Audience::AllCustomers => {
            static SQL: LazyLock<String> =
                LazyLock::new(|| format!("select count(*) from customers c where {REACHABLE}"));
            sqlx::query_scalar(&SQL).fetch_one(db).await
        }
        Audience::ByTicketStatus { status } => {
            static SQL: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "select count(*) from customers c where {REACHABLE} and exists \
                     (select 1 from tickets t where t.customer_id = c.id and t.status = $1)"
                )
            });
            sqlx::query_scalar(&SQL)
                .bind(status.as_str())
                .fetch_one(db)
                .await
        }
        Audience::ByCategory { category } => {
            static SQL: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "select count(*) from customers c where {REACHABLE} and exists \
                     (select 1 from tickets t where t.customer_id = c.id and t.category_id = $1)"
                )
            });
            sqlx::query_scalar(&SQL)
                .bind(category.as_uuid())
                .fetch_one(db)
                .await
        }
        Audience::ByLanguage { language } => {
            static SQL: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "select count(*) from customers c where {REACHABLE} and \
                     (lower(c.language_code) = lower($1) \
                      or lower(c.language_code) like lower($1) || '-%')"
                )
            });
            sqlx::query_scalar(&SQL).bind(language).fetch_one(db).await
        }
        Audience::Explicit { customers } => {
            static SQL: LazyLock<String> = LazyLock::new(|| {
                format!("select count(*) from customers c where {REACHABLE} and c.id = any($1)")
            });
            let ids: Vec<i64> = customers.iter().map(|c| c.0).collect();
            sqlx::query_scalar(&SQL).bind(ids).fetch_one(db).await
        }
    }
}
