//! `systemStatus`: the log head and where each read model stands.

use async_graphql::{Context, Object, Result, SimpleObject};

use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::error::failed;
use crate::graphql::guard::Need;

/// Where the system stands.
#[derive(Debug, Clone, SimpleObject)]
pub struct SystemStatus {
    /// The position of the newest event in the log.
    pub log_head: String,
    /// The oldest append still running, when one is: events committed after it started stay
    /// unreadable (to subscriptions, read models and read-your-writes) until it ends. Other
    /// transactions on the database server never hold the log back.
    pub log_held_back_by: Option<LogHeldBackBy>,
    /// Each read model.
    pub projections: Vec<ProjectionState>,
}

/// An append transaction that holds the log's readers back.
#[derive(Debug, Clone, SimpleObject)]
pub struct LogHeldBackBy {
    /// The database it runs in.
    pub database: String,
    /// The server process running it (`pg_stat_activity.pid`); null for a prepared
    /// transaction.
    pub pid: Option<i32>,
    /// How long its transaction has been open, in seconds.
    pub age_seconds: f64,
}

/// One read model.
#[derive(Debug, Clone, SimpleObject)]
pub struct ProjectionState {
    /// Its name.
    pub name: String,
    /// The version the running code builds.
    pub code_version: i32,
    /// The last position it applied (null before it first ran).
    pub position: Option<String>,
    /// Events behind the log head (exact up to 1,000,000).
    pub lag_events: i64,
    /// Whether a rebuild into shadow tables is in progress.
    pub rebuilding: bool,
    /// Why it stopped, if it stopped on an event.
    pub failure: Option<ProjectionFailure>,
}

/// The event a projection stopped on.
#[derive(Debug, Clone, SimpleObject)]
pub struct ProjectionFailure {
    /// Its position.
    pub position: String,
    /// Its type.
    pub event_type: String,
    /// The error.
    pub error: String,
}

/// `systemStatus`.
#[derive(Debug, Default)]
pub struct SystemQuery;

#[Object]
impl SystemQuery {
    /// The log head, the append holding the log back (if any), and each read model's lag,
    /// failure and rebuild state.
    #[graphql(guard = "Need(Permission::ReadSystem)")]
    async fn system_status(&self, ctx: &Context<'_>) -> Result<SystemStatus> {
        let api = ctx.data_unchecked::<Api>();
        let statuses = projections::status(&api.log, &api.pool, &api.projections)
            .await
            .map_err(|error| failed("cannot read the projection status", error))?;
        let held_back = api
            .log
            .held_back_by()
            .await
            .map_err(|error| failed("cannot read the log's oldest append", error))?;
        let head = statuses
            .first()
            .map(|status| status.head.to_string())
            .unwrap_or_default();
        Ok(SystemStatus {
            log_head: head,
            log_held_back_by: held_back.map(|held| LogHeldBackBy {
                database: held.database,
                pid: held.pid,
                age_seconds: held.age.as_secs_f64(),
            }),
            projections: statuses
                .into_iter()
                .map(|status| ProjectionState {
                    code_version: i32::try_from(status.code_version).unwrap_or(i32::MAX),
                    position: status.live.as_ref().map(|live| live.position.to_string()),
                    lag_events: i64::try_from(status.lag).unwrap_or(i64::MAX),
                    rebuilding: status.rebuilding.is_some(),
                    failure: status.failure.map(|failure| ProjectionFailure {
                        position: failure.position.to_string(),
                        event_type: failure.event_type,
                        error: failure.error,
                    }),
                    name: status.name,
                })
                .collect(),
        })
    }
}
