//! What validation costs a small mutation, in this process: the `replyToTicket` document with
//! fresh variables, executed by an anonymous caller (so the request ends at the resolver's
//! guard, before any database work), on the schema that checks every validation rule and on
//! the known documents' schema that `POST /graphql` uses once the operation passed them (see
//! `api/src/graphql/documents.rs`). Both go through the document cache as the transport does.
//! The two take turns in blocks; prints the median µs per request of each and their ratio.
//!
//! `DATABASE_URL=postgres://… cargo bench -p api --bench validation` (creates and drops the
//! database `ledgerdesk_bench_validation`; the services need one to start; `BENCH_BLOCKS`,
//! default 40, of 2,000 requests each).

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark fails loudly and prints"
)]

// The allocator of the `ledgerdesk` binary, so the schema runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Instant;

use api::graphql::documents::{Checks, DocumentCache};
use async_graphql::{Request, Variables};
use serde_json::json;
use sqlx::{Executor, PgPool};

const MUTATION: &str =
    "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { position } }";
const REQUESTS_PER_BLOCK: u32 = 2_000;
const DATABASE: &str = "ledgerdesk_bench_validation";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let blocks: usize = std::env::var("BENCH_BLOCKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
        .max(1);
    let admin = PgPool::connect(&server).await.unwrap();
    admin
        .execute(format!("drop database if exists {DATABASE} with (force)").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("create database {DATABASE}").as_str())
        .await
        .unwrap();
    let url = match server.rsplit_once('/') {
        Some((base, _)) => format!("{base}/{DATABASE}"),
        None => server.clone(),
    };
    let pool = PgPool::connect(&url).await.unwrap();
    app::database::migrate(&pool).await.unwrap();
    let log = eventlog::postgres::PostgresLog::new(pool.clone());
    let state = api::AppState::new(
        app::commands::CommandService::new(log),
        Vec::new(),
        api::ApiConfig::default(),
    )
    .await
    .unwrap();
    let documents = Arc::new(DocumentCache::default());
    let api::graphql::HttpSchemas { checking, known } =
        api::graphql::http_schemas(&state.api, &documents);

    let request = || {
        Request::new(MUTATION)
            .variables(Variables::from_json(json!({ "input": {
                "ticketId": uuid::Uuid::now_v7().to_string(),
                "text": "Thanks for writing. I checked order #48213: it left our warehouse \
                         yesterday and should arrive tomorrow.",
            } })))
            .data(api::auth::Authentication::Anonymous)
    };
    // Once through every rule, so the operation is known.
    let mut first = request();
    assert_eq!(documents.prepare(&mut first), Checks::All);
    assert!(!checking.execute(first).await.errors.is_empty());

    let mut every_rule = Vec::with_capacity(blocks);
    let mut only_limits = Vec::with_capacity(blocks);
    for _ in 0..blocks {
        for (schema, times) in [(&checking, &mut every_rule), (&known, &mut only_limits)] {
            let started = Instant::now();
            for _ in 0..REQUESTS_PER_BLOCK {
                let mut request = request();
                assert_eq!(documents.prepare(&mut request), Checks::Known);
                let response = schema.execute(request).await;
                // Refused at the guard: the caller is anonymous.
                assert!(!response.errors.is_empty());
            }
            times.push(started.elapsed().as_secs_f64() * 1e6 / f64::from(REQUESTS_PER_BLOCK));
        }
    }
    let median = |times: &mut Vec<f64>| {
        times.sort_by(f64::total_cmp);
        times[times.len() / 2]
    };
    let (all, limits) = (median(&mut every_rule), median(&mut only_limits));
    println!(
        "replyToTicket document, anonymous caller, medians of {blocks} blocks of \
         {REQUESTS_PER_BLOCK}: every rule {all:.2} µs per request, known {limits:.2} µs \
         (ratio known / every rule {:.2})",
        limits / all
    );
    state.api.pool.close().await;
    pool.close().await;
    admin
        .execute(format!("drop database if exists {DATABASE} with (force)").as_str())
        .await
        .unwrap();
}
