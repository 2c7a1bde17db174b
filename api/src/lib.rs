//! The HTTP surface of Ledgerdesk: the axum router with the GraphQL API (`/graphql`,
//! `/graphql/ws`), the health endpoints, `/metrics`, and the agents' web app at `/`.
//! Handlers hold no business rules: they call the command service, the log and the read
//! models.

pub mod auth;
pub mod graphql;
pub mod live;
pub mod media_refs;
pub mod metrics;
mod routes;
pub use routes::panel;
pub mod server;
mod state;

use axum::Router;

pub use server::ServerConfig;
pub use state::{ApiConfig, AppState};

/// The whole HTTP router.
pub fn router(state: AppState) -> Router {
    metrics::install();
    routes::routes().with_state(state)
}
