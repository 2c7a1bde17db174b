//! The HTTP surface of Ledgerdesk: the axum router. For now it serves the health endpoints;
//! the GraphQL API (queries, mutations, subscriptions, authentication and roles) joins it in a
//! later issue. Handlers hold no SQL: they call the log or read-model functions.

mod health;

use axum::Router;
use eventlog::postgres::PostgresLog;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The event log (and through it, the database).
    pub log: PostgresLog,
}

/// The whole HTTP router.
pub fn router(state: AppState) -> Router {
    Router::new().merge(health::routes()).with_state(state)
}
