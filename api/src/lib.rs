//! The HTTP surface of Ledgerdesk: the axum router. For now it serves the health endpoints
//! and `/metrics`;
//! the GraphQL API (queries, mutations, subscriptions, authentication and roles) joins it in a
//! later issue. Handlers hold no SQL: they call the log or read-model functions.

mod health;
mod metrics;

use std::sync::Arc;

use axum::Router;
use eventlog::postgres::PostgresLog;
use projections::Projection;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The event log (and through it, the database).
    pub log: PostgresLog,
    /// The read models, for status and metrics.
    pub projections: Vec<Arc<dyn Projection>>,
}

/// The whole HTTP router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .with_state(state)
}
