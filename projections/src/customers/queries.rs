//! The reads of the "customers" read model: customers by id, the customer list, how many
//! customers a broadcast's audience would reach, and the audience itself when a broadcast
//! starts ([`resolve_audience`]).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use domain::broadcast::{Audience, Excluded, ResolvedAudience, SkipReason};
use domain::{CustomerId, validate};
use futures::TryStreamExt;
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

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

/// Binds the categories of a limited view as `s.ids` (a one-row `scope s` to join).
const SCOPE: &str = "with scope as (select $1::uuid[] as ids) ";

/// A customer has a ticket in the categories `s.ids`, as the `tickets` read model files it
/// (the same rows that decide which tickets an agent sees).
const HAS_TICKET_WITHIN: &str = "exists (select 1 from tickets t \
     where t.customer_id = c.id and t.category_id = any(s.ids))";

/// The columns of `customers c` as an agent limited to the categories `s.ids` sees them: the
/// ticket counters count only tickets in those categories, and the open ticket is shown only
/// when it is one of them.
static WITHIN_LIST: LazyLock<String> = LazyLock::new(|| {
    select_list::<CustomerRow>(Some("c"))
        .split(", ")
        .map(|column| match column {
            "c.tickets_total" => "(select count(*)::integer from tickets t \
                 where t.customer_id = c.id and t.category_id = any(s.ids)) as tickets_total"
                .to_owned(),
            "c.tickets_open" => "(select count(*)::integer from tickets t \
                 where t.customer_id = c.id and t.category_id = any(s.ids) \
                 and t.status not in ('resolved', 'closed')) as tickets_open"
                .to_owned(),
            "c.open_ticket_id" => "(select t.id from tickets t \
                 where t.id = c.open_ticket_id and t.category_id = any(s.ids)) as open_ticket_id"
                .to_owned(),
            other => other.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
});

/// The customers with these Telegram ids that an agent limited to `categories` may see (those
/// with a ticket in them), with counters and open ticket limited to them.
///
/// # Errors
/// The database's.
pub async fn by_ids_within(
    db: impl PgExecutor<'_>,
    ids: &[i64],
    categories: &[Uuid],
) -> sqlx::Result<Vec<CustomerRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{SCOPE}select {} from customers c cross join scope s \
             where c.id = any($2) and {HAS_TICKET_WITHIN}",
            *WITHIN_LIST
        )
    });
    sqlx::query_as(&SQL)
        .bind(categories)
        .bind(ids)
        .fetch_all(db)
        .await
}

/// One customer as [`by_ids_within`] sees them.
///
/// # Errors
/// The database's.
pub async fn by_id_within(
    db: impl PgExecutor<'_>,
    id: i64,
    categories: &[Uuid],
) -> sqlx::Result<Option<CustomerRow>> {
    Ok(by_ids_within(db, &[id], categories).await?.pop())
}

/// One page of customers, newest first (by registration, then id), bounded by registration
/// times and ids, in list order. `search` keeps those whose username or full name holds it
/// (case-insensitive); `banned` those banned or not; `opted_out` those opted out of broadcasts
/// or not. With `within`, only the customers an agent limited to those categories may see, as
/// [`by_ids_within`] shows them.
///
/// # Errors
/// The database's.
pub async fn list(
    db: impl PgExecutor<'_>,
    within: Option<&[Uuid]>,
    search: Option<&str>,
    (banned, opted_out): (Option<bool>, Option<bool>),
    page: &Page<(DateTime<Utc>, i64)>,
) -> sqlx::Result<Vec<CustomerRow>> {
    let mut sql = match within {
        None => QueryBuilder::<Postgres>::new(format!(
            "select {} from customers where true",
            select_list::<CustomerRow>(None)
        )),
        Some(categories) => {
            let mut sql = QueryBuilder::<Postgres>::new("with scope as (select ");
            sql.push_bind(categories.to_vec()).push(format!(
                "::uuid[] as ids) select {} from customers c cross join scope s where {HAS_TICKET_WITHIN}",
                *WITHIN_LIST
            ));
            sql
        }
    };
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
    if let Some(opted_out) = opted_out {
        sql.push(" and opted_out_of_broadcasts = ")
            .push_bind(opted_out);
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

/// Why a broadcast's audience could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The segment holds more customers than one broadcast may
    /// ([`validate::MAX_AUDIENCE`]).
    #[error("the audience holds more than {max} customers", max = validate::MAX_AUDIENCE)]
    TooLarge,
    /// The database's.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The reason a customer row leaves a customer out, or null: banned first, then blocked, then
/// opted out (the order a reader of the report would give). `c` is the customer's row, null
/// when an explicit list names someone who never wrote to the bot.
const EXCLUSION: &str = "case when c.id is null then 'unknown_customer' \
     when c.banned then 'banned' when c.blocked_bot then 'blocked_bot' \
     when c.opted_out_of_broadcasts then 'opted_out' end";

/// Every customer of `audience` now, in ascending Telegram id order, split into those a
/// broadcast goes to and those it leaves out with the reason (banned, blocked the bot, opted
/// out, or, in an explicit list, no such customer). Read from the `customers` and `tickets`
/// read models in one statement, streamed and bounded: a segment of more than
/// [`validate::MAX_AUDIENCE`] customers is refused after reading one row more (timing for
/// 100,000 customers in docs/operations.md).
///
/// # Errors
/// [`ResolveError::TooLarge`], or the database's.
pub async fn resolve_audience(
    db: impl PgExecutor<'_>,
    audience: &Audience,
) -> Result<ResolvedAudience, ResolveError> {
    static ALL: LazyLock<String> = LazyLock::new(|| {
        format!("select c.id, {EXCLUSION} from customers c order by c.id limit $1")
    });
    static BY_STATUS: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select c.id, {EXCLUSION} from customers c where exists \
             (select 1 from tickets t where t.customer_id = c.id and t.status = $2) \
             order by c.id limit $1"
        )
    });
    static BY_CATEGORY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select c.id, {EXCLUSION} from customers c where exists \
             (select 1 from tickets t where t.customer_id = c.id and t.category_id = $2) \
             order by c.id limit $1"
        )
    });
    static BY_LANGUAGE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select c.id, {EXCLUSION} from customers c where \
             (lower(c.language_code) = lower($2) or lower(c.language_code) like lower($2) || '-%') \
             order by c.id limit $1"
        )
    });
    static EXPLICIT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select u.id, {EXCLUSION} from unnest($2::bigint[]) as u(id) \
             left join customers c on c.id = u.id order by u.id limit $1"
        )
    });
    // One more than allowed: reading it tells a segment that is too large.
    let limit = i64::try_from(validate::MAX_AUDIENCE).unwrap_or(i64::MAX) + 1;
    let query = match audience {
        Audience::AllCustomers => sqlx::query_as::<_, (i64, Option<String>)>(&ALL).bind(limit),
        Audience::ByTicketStatus { status } => {
            sqlx::query_as(&BY_STATUS).bind(limit).bind(status.as_str())
        }
        Audience::ByCategory { category } => sqlx::query_as(&BY_CATEGORY)
            .bind(limit)
            .bind(category.as_uuid()),
        Audience::ByLanguage { language } => {
            sqlx::query_as(&BY_LANGUAGE).bind(limit).bind(language)
        }
        Audience::Explicit { customers } => {
            let ids: Vec<i64> = customers.iter().map(|c| c.0).collect();
            sqlx::query_as(&EXPLICIT).bind(limit).bind(ids)
        }
    };
    let mut resolved = ResolvedAudience {
        segment: audience.clone(),
        recipients: Vec::new(),
        excluded: Vec::new(),
    };
    let mut rows = query.fetch(db);
    while let Some((id, reason)) = rows.try_next().await? {
        if resolved.recipients.len() + resolved.excluded.len() >= validate::MAX_AUDIENCE {
            return Err(ResolveError::TooLarge);
        }
        let customer = CustomerId(id);
        match reason.as_deref() {
            None => resolved.recipients.push(customer),
            Some(reason) => resolved.excluded.push(Excluded {
                customer,
                reason: match reason {
                    "banned" => SkipReason::Banned,
                    "blocked_bot" => SkipReason::BlockedBot,
                    "opted_out" => SkipReason::OptedOut,
                    _ => SkipReason::UnknownCustomer,
                },
            }),
        }
    }
    Ok(resolved)
}

/// A recipient of a broadcast as the `customers` read model shows them just before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientNow {
    /// The customer's Telegram user id.
    pub id: i64,
    /// Their client's language, for the texts of the message (the unsubscribe button).
    pub language_code: Option<String>,
    /// Why they may no longer receive broadcasts (opted out, blocked the bot, banned), if so.
    pub excluded: Option<SkipReason>,
}

/// The recipients `ids` as they are now, for the sender, which reads each batch again just
/// before sending: a customer who opted out, blocked the bot or was banned since the start
/// is skipped. Customers missing from the read model are missing from the answer (the sender
/// takes them as reachable).
///
/// # Errors
/// The database's.
pub async fn recipients_now(
    db: impl PgExecutor<'_>,
    ids: &[i64],
) -> sqlx::Result<Vec<RecipientNow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!("select c.id, c.language_code, {EXCLUSION} from customers c where c.id = any($1)")
    });
    let rows: Vec<(i64, Option<String>, Option<String>)> =
        sqlx::query_as(&SQL).bind(ids).fetch_all(db).await?;
    Ok(rows
        .into_iter()
        .map(|(id, language_code, reason)| RecipientNow {
            id,
            language_code,
            excluded: reason.as_deref().map(|reason| match reason {
                "banned" => SkipReason::Banned,
                "blocked_bot" => SkipReason::BlockedBot,
                _ => SkipReason::OptedOut,
            }),
        })
        .collect())
}
