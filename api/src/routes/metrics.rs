//! The `/metrics` route: the projections' gauges and the log's held-back gauge as they stand at
//! the scrape, then the process's recorder.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics::{describe_gauge, gauge};
use metrics_exporter_prometheus::PrometheusBuilder;
use projections::ProjectionStatus;

use crate::metrics::install;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

/// The gauge of the append transaction holding the log's readers back.
const HELD_BACK_GAUGE: &str = "ledgerdesk_log_held_back_seconds";

/// A projection gauge: its name, help text, and how to read it off a projection's status.
type Gauge = (&'static str, &'static str, fn(&ProjectionStatus) -> u64);

const PROJECTION_GAUGES: [Gauge; 4] = [
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

/// The projections' gauges and the age of the append holding the log's readers back (0 when
/// none), as they stand now.
fn projection_gauges(statuses: &[ProjectionStatus], held_back_seconds: f64) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        describe_gauge!(
            HELD_BACK_GAUGE,
            "Age in seconds of the oldest append transaction still running (0: none). Events \
             committed after it started stay unreadable until it ends."
        );
        gauge!(HELD_BACK_GAUGE).set(held_back_seconds);
        for (name, help, value) in PROJECTION_GAUGES {
            describe_gauge!(name, help);
            for status in statuses {
                // Exact: the values are counts far below 2^53.
                let value = value(status) as f64;
                gauge!(name, "projection" => status.name.clone()).set(value);
            }
        }
    });
    recorder.handle().render()
}

/// What the media storage holds: bytes and files (shared by every instance).
fn media_gauges(bytes: u64, files: u64) -> String {
    let recorder = PrometheusBuilder::new().build_recorder();
    metrics::with_local_recorder(&recorder, || {
        describe_gauge!(
            "ledgerdesk_media_stored_bytes",
            "Bytes of media files held in storage (fetched copies and uploads)."
        );
        describe_gauge!(
            "ledgerdesk_media_stored_files",
            "Media files held in storage (fetched copies and uploads)."
        );
        // Exact below 2^53 bytes.
        gauge!("ledgerdesk_media_stored_bytes").set(bytes as f64);
        gauge!("ledgerdesk_media_stored_files").set(files as f64);
    });
    recorder.handle().render()
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
    let held_back = match state.log.held_back_by().await {
        Ok(held) => held.map_or(0.0, |held| held.age.as_secs_f64()),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the log's oldest append for /metrics");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "# log status unavailable\n".to_owned(),
            );
        }
    };
    let mut body = projection_gauges(&statuses, held_back);
    if let Some(media) = &state.api.media {
        match media.usage().await {
            Ok((bytes, files)) => body.push_str(&media_gauges(bytes, files)),
            Err(err) => tracing::warn!(error = %err, "cannot read media usage for /metrics"),
        }
    }
    body.push_str(&install().render());
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}
