//! The reads of the "dashboard" read model: ticket counts by status and category, and the
//! team's response and resolution times.

use chrono::{DateTime, NaiveDate, Utc};
use domain::ticket::TicketStatus;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::table::Text;

/// How many tickets are in one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketsInStatus {
    /// The status.
    #[sqlx(try_from = "Text<TicketStatus>")]
    pub status: TicketStatus,
    /// Tickets in it.
    pub tickets: i64,
}

/// Tickets per status, by status text (statuses without tickets are absent):
///
/// ```sql
/// select status, count(*) as tickets from dashboard_tickets group by status order by status
/// ```
///
/// # Errors
/// The database's, or a status the code does not know.
pub async fn by_status(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<TicketsInStatus>> {
    sqlx::query_as(
        "select status, count(*) as tickets from public.dashboard_tickets \
         group by status order by status",
    )
    .fetch_all(db)
    .await
}

/// How many tickets of one category are in one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct TicketsInCategory {
    /// The category (`None`: uncategorised).
    pub category_id: Option<Uuid>,
    /// The status.
    #[sqlx(try_from = "Text<TicketStatus>")]
    pub status: TicketStatus,
    /// Tickets.
    pub tickets: i64,
}

/// Tickets per category and status:
///
/// ```sql
/// select category_id, status, count(*) as tickets from dashboard_tickets
/// group by category_id, status order by category_id nulls first, status
/// ```
///
/// # Errors
/// The database's, or a status the code does not know.
pub async fn by_category(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<TicketsInCategory>> {
    sqlx::query_as(
        "select category_id, status, count(*) as tickets from public.dashboard_tickets \
         group by category_id, status order by category_id nulls first, status",
    )
    .fetch_all(db)
    .await
}

/// One day (UTC) of the team's response and resolution times.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DailyMedians {
    /// The day, in UTC.
    pub day: NaiveDate,
    /// Tickets first answered that day.
    pub responded: i64,
    /// Median seconds from opening to the first agent reply, over those tickets.
    pub median_first_response_seconds: Option<f64>,
    /// Tickets resolved that day (and not reopened since).
    pub resolved: i64,
    /// Median seconds from opening to the resolve, over those tickets.
    pub median_resolution_seconds: Option<f64>,
}

/// The SQL of [`daily_medians`]: tickets count on the day of their first response (for the
/// first-response median) and on the day of their last resolve (for the resolution median).
pub const DAILY_MEDIANS_SQL: &str = "\
with responses as (
    select (first_response_at at time zone 'utc')::date as day, count(*) as n,
           percentile_cont(0.5) within group (order by first_response_seconds) as median
    from public.dashboard_tickets
    where first_response_at >= $1 and first_response_at < $2
    group by 1
), resolutions as (
    select (resolved_at at time zone 'utc')::date as day, count(*) as n,
           percentile_cont(0.5) within group (order by resolution_seconds) as median
    from public.dashboard_tickets
    where resolved_at >= $1 and resolved_at < $2
    group by 1
)
select coalesce(a.day, b.day) as day,
       coalesce(a.n, 0) as responded, a.median as median_first_response_seconds,
       coalesce(b.n, 0) as resolved, b.median as median_resolution_seconds
from responses a full join resolutions b on a.day = b.day
order by 1";

/// Median first-response and resolution times per UTC day in `[from, to)`; days without either
/// are absent. See [`DAILY_MEDIANS_SQL`].
///
/// # Errors
/// The database's.
pub async fn daily_medians(
    db: impl PgExecutor<'_>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<DailyMedians>> {
    sqlx::query_as(DAILY_MEDIANS_SQL)
        .bind(from)
        .bind(to)
        .fetch_all(db)
        .await
}

/// The median times of a period.
#[derive(Debug, Clone, Copy, PartialEq, sqlx::FromRow)]
pub struct PeriodMedians {
    /// Median seconds from opening to the first agent reply, over the tickets first answered
    /// in the period.
    pub first_response: Option<f64>,
    /// Median seconds from opening to the (last) resolve, over the tickets resolved in the
    /// period.
    pub resolution: Option<f64>,
}

/// The median times of the tickets first answered, and of those resolved, since `from`.
///
/// # Errors
/// The database's.
pub async fn period_medians(
    db: impl PgExecutor<'_>,
    from: DateTime<Utc>,
) -> sqlx::Result<PeriodMedians> {
    sqlx::query_as(
        "select \
         (select percentile_cont(0.5) within group (order by first_response_seconds) \
          from dashboard_tickets where first_response_at >= $1) as first_response, \
         (select percentile_cont(0.5) within group (order by resolution_seconds) \
          from dashboard_tickets where resolved_at >= $1) as resolution",
    )
    .bind(from)
    .fetch_one(db)
    .await
}
