//! Reads of the "dashboard" read model (`dashboard_tickets` and its counts), beside the ones
//! `projections::dashboard` answers itself.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

/// The median response and resolution times of a period.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PeriodMedians {
    /// Median seconds from opening to the first reply, of tickets first answered since then.
    pub first_response: Option<f64>,
    /// Median seconds from opening to the resolve, of tickets resolved since then.
    pub resolution: Option<f64>,
}

/// The medians of the period from `from` on.
///
/// # Errors
/// The database's.
pub async fn period_medians(pool: &PgPool, from: DateTime<Utc>) -> sqlx::Result<PeriodMedians> {
    sqlx::query_as(
        "select \
         (select percentile_cont(0.5) within group (order by first_response_seconds) \
          from dashboard_tickets where first_response_at >= $1) as first_response, \
         (select percentile_cont(0.5) within group (order by resolution_seconds) \
          from dashboard_tickets where resolved_at >= $1) as resolution",
    )
    .bind(from)
    .fetch_one(pool)
    .await
}
