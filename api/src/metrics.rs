//! `/metrics` in the Prometheus text format, through the `metrics` facade and its Prometheus
//! exporter (without the exporter's own HTTP listener: the API's router serves the text).
//!
//! Two sources make up the answer:
//! - the process's recorder ([`install`]): GraphQL requests by operation, with their latency;
//!   commands sent by the API, with their latency; the bot's delivery outcomes;
//! - the projections' gauges, read from their status at each scrape and rendered by a recorder
//!   of that scrape alone, so each API state reports its own read models and a projection that
//!   is gone leaves no stale line.
//!
//! Labels come from bounded sets only: an operation is named by the schema's root field it
//! runs, never by a name the client chose (see `crate::graphql::documents`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{SharedString, Unit, counter, describe_counter, describe_histogram, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// GraphQL requests over HTTP, by operation and result.
pub const GRAPHQL_REQUESTS: &str = "ledgerdesk_graphql_requests_total";
/// How long a GraphQL request over HTTP took, by operation.
pub const GRAPHQL_REQUEST_SECONDS: &str = "ledgerdesk_graphql_request_duration_seconds";
/// How long a command sent by the API took (load, decide, append), by aggregate and outcome.
pub const APPEND_SECONDS: &str = "ledgerdesk_append_duration_seconds";
/// Agent replies the bot sent to Telegram, by outcome. The bot counts them under this name.
pub const DELIVERY_OUTCOMES: &str = "ledgerdesk_delivery_outcomes_total";

/// The operation label of requests whose root field is not one of the schema's, that select
/// several root fields, or that do not parse.
pub const OTHER_OPERATION: &str = "other";

/// Bucket bounds of the latency histograms, in seconds.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder, installed as the `metrics` facade's global recorder on first use.
/// Later calls return the same handle. When another global recorder was installed first,
/// this one still renders, but holds nothing recorded through the facade (logged once).
pub fn install() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
            // The bounds are constant and sorted: this cannot fail.
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed; /metrics shows only projections");
        }
        describe();
        // Histogram samples wait in a buffer until folded into buckets (at each scrape, and
        // here), so an unscraped process does not keep them all.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the metrics upkeep thread; scrapes still fold samples");
        }
        handle
    })
}

fn describe() {
    describe_counter!(
        GRAPHQL_REQUESTS,
        "GraphQL requests over HTTP by operation (the root field it runs) and result (ok or error)."
    );
    describe_histogram!(
        GRAPHQL_REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer a GraphQL request over HTTP, by operation (the root field it runs)."
    );
    describe_histogram!(
        APPEND_SECONDS,
        Unit::Seconds,
        "Time to run a command sent by the API (load the streams, decide, append), by aggregate and outcome."
    );
    describe_counter!(
        media::FETCH_FAILURES,
        "Media files that could not be fetched from the Bot API, by reason (too_large, gone, \
         unavailable, no_bot, storage, database)."
    );
    describe_counter!(
        DELIVERY_OUTCOMES,
        "Agent replies the bot sent to Telegram, by outcome (delivered, failed, blocked)."
    );
}

/// Records a GraphQL request over HTTP.
pub(crate) fn graphql_request(operation: SharedString, ok: bool, took: Duration) {
    let result = if ok { "ok" } else { "error" };
    counter!(GRAPHQL_REQUESTS, "operation" => operation.clone(), "result" => result).increment(1);
    histogram!(GRAPHQL_REQUEST_SECONDS, "operation" => operation).record(took.as_secs_f64());
}

/// Records a command the API ran for `aggregate` (`ticket`, `agent`, …) with its outcome
/// (`ok`, `rejected`, `conflict`, `error`).
pub(crate) fn command_ran(aggregate: &'static str, outcome: &'static str, took: Duration) {
    histogram!(APPEND_SECONDS, "aggregate" => aggregate, "outcome" => outcome)
        .record(took.as_secs_f64());
}

/// Counts an agent reply sent to Telegram by its outcome (`delivered`, `failed`, `blocked`).
pub fn delivery_outcome(outcome: &'static str) {
    counter!(DELIVERY_OUTCOMES, "outcome" => outcome).increment(1);
}
