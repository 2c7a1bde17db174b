//! The axum handlers, one module per group of paths. They sit apart from what they serve
//! (the schema in [`crate::graphql`], the recorder in [`crate::metrics`]) so that those depend
//! on nothing of the HTTP state; only the handlers take [`AppState`].

mod graphiql;
pub(crate) mod graphql;
mod health;
mod media;
mod metrics;
pub mod panel;
mod reports;

use axum::Router;

use crate::state::AppState;

/// Every route, before the state is given.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(graphql::routes())
        .merge(graphiql::routes())
        .merge(media::routes())
        .merge(reports::routes())
        .fallback(panel::fallback)
}
