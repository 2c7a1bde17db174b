//! `dashboard`: ticket counts and the team's response and resolution times, from the
//! `dashboard` read model (team-wide, not limited to an agent's categories).

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{NaiveDate, TimeDelta, Utc};
use projections::dashboard::queries as dashboard;

use crate::auth::Permission;
use crate::graphql::consistency::{ConsistencyInput, consistent};
use crate::graphql::context::Api;
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard::Need;
use crate::graphql::tickets::TicketStatusValue;

/// The longest period the dashboard covers, in days.
const MAX_DAYS: i32 = 366;

/// Tickets in one status.
#[derive(Debug, Clone, SimpleObject)]
pub struct StatusCount {
    /// The status.
    pub status: TicketStatusValue,
    /// Tickets in it.
    pub tickets: i64,
}

/// Tickets of one category in one status.
#[derive(Debug, Clone, SimpleObject)]
pub struct CategoryCount {
    /// The category's uuid (null: uncategorised).
    pub category_id: Option<ID>,
    /// The status.
    pub status: TicketStatusValue,
    /// Tickets.
    pub tickets: i64,
}

/// One UTC day of response and resolution times.
#[derive(Debug, Clone, SimpleObject)]
pub struct DayMedians {
    /// The day.
    pub day: NaiveDate,
    /// Tickets first answered that day.
    pub responded: i64,
    /// Their median seconds to the first reply.
    pub median_first_response_seconds: Option<f64>,
    /// Tickets resolved that day.
    pub resolved: i64,
    /// Their median seconds to the resolve.
    pub median_resolution_seconds: Option<f64>,
}

/// The dashboard.
#[derive(Debug, Clone, SimpleObject)]
pub struct Dashboard {
    /// Every ticket ever opened.
    pub total_tickets: i64,
    /// Tickets per status (statuses without tickets are absent).
    pub by_status: Vec<StatusCount>,
    /// Tickets per category and status.
    pub by_category: Vec<CategoryCount>,
    /// The period's median seconds from opening to the first reply.
    pub median_first_response_seconds: Option<f64>,
    /// The period's median seconds from opening to the (last) resolve.
    pub median_resolution_seconds: Option<f64>,
    /// The same per UTC day (days without either are absent).
    pub daily: Vec<DayMedians>,
}

/// `dashboard`.
#[derive(Debug, Default)]
pub struct DashboardQuery;

#[Object]
impl DashboardQuery {
    /// Ticket counts now, and response and resolution times over the last `days` days (1 to
    /// 366, default 30).
    #[graphql(guard = "Need(Permission::ReadDashboard)")]
    async fn dashboard(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Dashboard> {
        consistent(ctx, consistency.as_ref()).await?;
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(error(
                Code::Validation,
                format!("days must be between 1 and {MAX_DAYS}"),
            ));
        }
        let api = ctx.data_unchecked::<Api>();
        let now = Utc::now();
        let from = now - TimeDelta::days(i64::from(days));
        let mut conn = api.pool.acquire().await.map_err(database)?;
        let by_status = dashboard::by_status(&mut *conn).await.map_err(database)?;
        let by_category = dashboard::by_category(&mut *conn).await.map_err(database)?;
        let daily = dashboard::daily_medians(&mut *conn, from, now)
            .await
            .map_err(database)?;
        drop(conn);
        let medians = dashboard::period_medians(&api.pool, from)
            .await
            .map_err(database)?;
        Ok(Dashboard {
            total_tickets: by_status.iter().map(|count| count.tickets).sum(),
            by_status: by_status
                .into_iter()
                .map(|count| StatusCount {
                    status: count.status.into(),
                    tickets: count.tickets,
                })
                .collect(),
            by_category: by_category
                .into_iter()
                .map(|count| CategoryCount {
                    category_id: count.category_id.map(|id| ID(id.to_string())),
                    status: count.status.into(),
                    tickets: count.tickets,
                })
                .collect(),
            median_first_response_seconds: medians.first_response,
            median_resolution_seconds: medians.resolution,
            daily: daily
                .into_iter()
                .map(|day| DayMedians {
                    day: day.day,
                    responded: day.responded,
                    median_first_response_seconds: day.median_first_response_seconds,
                    resolved: day.resolved,
                    median_resolution_seconds: day.median_resolution_seconds,
                })
                .collect(),
        })
    }
}
