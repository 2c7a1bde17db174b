//! `/metrics` in the Prometheus text format: where each projection stands behind the log, and
//! how GraphQL requests were validated.

use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use projections::ProjectionStatus;

use crate::AppState;

/// A metric name, its help text, and how to read it off a projection's status.
type Gauge = (&'static str, &'static str, fn(&ProjectionStatus) -> u64);

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let statuses = match projections::status(&state.log, state.log.pool(), &state.projections).await
    {
        Ok(statuses) => statuses,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read projection status for /metrics");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "# projection status unavailable\n".to_owned(),
            );
        }
    };
    let mut body = String::new();
    let gauges: [Gauge; 4] = [
        (
            "ledgerdesk_projection_lag_events",
            "Events the projection's live tables are behind the log head (counted up to 1,000,000).",
            |s| s.lag,
        ),
        (
            "ledgerdesk_projection_failed",
            "1 when the projection stopped on an event it cannot apply.",
            |s| u64::from(s.failure.is_some()),
        ),
        (
            "ledgerdesk_projection_rebuilding",
            "1 while the projection is being rebuilt into shadow tables.",
            |s| u64::from(s.rebuilding.is_some()),
        ),
        (
            "ledgerdesk_projection_events_seen",
            "Events the live tables were built from.",
            |s| s.live.as_ref().map_or(0, |c| c.events_seen),
        ),
    ];
    for (name, help, value) in gauges {
        let _ = writeln!(body, "# HELP {name} {help}\n# TYPE {name} gauge");
        for status in &statuses {
            let _ = writeln!(
                body,
                "{name}{{projection=\"{}\"}} {}",
                status.name,
                value(status)
            );
        }
    }
    let name = "ledgerdesk_graphql_requests_total";
    let (checked, known) = state.documents.requests();
    let _ = writeln!(
        body,
        "# HELP {name} GraphQL requests over HTTP by validation: every rule, or only the limits for an operation that passed every rule before.\n# TYPE {name} counter\n{name}{{validation=\"full\"}} {checked}\n{name}{{validation=\"known\"}} {known}"
    );
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
