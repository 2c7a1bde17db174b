//! Rebuild throughput of the read models against the physical limit of reading the log.
//!
//! Generates a realistic history (`tools::generate`, default 1,000,000 events) into a
//! fresh database, then measures in the same run:
//! - the physical limit: `COPY (SELECT … FROM events ORDER BY tx_id, position) TO STDOUT`,
//!   drained and discarded by the client (the envelope columns a rebuild reads);
//! - a rebuild of all read models (`ProjectionRunner::rebuild_now`: shadow tables, shared
//!   reader, swap), in events/s, and the ratio to the COPY rate;
//! - each read model rebuilt alone, to show where the time goes.
//!
//! `cargo bench -p projections --bench rebuild` (env: `DATABASE_URL` of a server where a
//! database `ledgerdesk_bench_rebuild` may be created and dropped; `BENCH_EVENTS`, default
//! 1000000; `BENCH_KEEP=1` keeps the generated database for a later run with `BENCH_REUSE=1`;
//! `BENCH_ALONE=0` skips the one-projection rebuilds; `BENCH_PAGE` sets the events per page,
//! default 10000; `BENCH_ONLY=tickets` rebuilds that projection only).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use eventlog::postgres::PostgresLog;
use eventlog::{EventLog, Position};
use futures::TryStreamExt;
use projections::{Projection, ProjectionRunner, RunnerOptions};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};
use testkit::env_or;
use testkit::{DatabaseName, eventually};
use tools::generate::{GenerateOptions, generate};

// As in the `ledgerdesk` binary.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DATABASE: &str = "ledgerdesk_bench_rebuild";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: u64 = env_or("BENCH_EVENTS", 1_000_000);
    let reuse = env_or("BENCH_REUSE", 0) == 1;
    let keep = env_or("BENCH_KEEP", 0) == 1;
    let alone = env_or("BENCH_ALONE", 1) == 1;
    let page = usize::try_from(env_or("BENCH_PAGE", 10_000)).unwrap_or(10_000);

    // Created afresh (or, to reuse, opened) and migrated; dropped at the end, also when the run
    // fails, unless kept.
    let database = if reuse {
        DatabaseName::named(DATABASE).open().await
    } else {
        DatabaseName::named(DATABASE).create().await
    };
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .connect(database.url())
        .await?;
    let log = PostgresLog::new(pool.clone());

    if !reuse {
        let started = Instant::now();
        let report = generate(
            &log,
            &GenerateOptions {
                events,
                ..GenerateOptions::default()
            },
            |_| {},
        )
        .await?;
        println!(
            "generated {} events ({} tickets, {} customers, {} agents, {} broadcasts) in {:.1} s: {:.0} events/s",
            report.events,
            report.tickets,
            report.customers,
            report.agents,
            report.broadcasts,
            started.elapsed().as_secs_f64(),
            report.events_per_second()
        );
    }
    // Readers see only transactions older than every open one: wait until they see it all.
    all_visible(&log, &pool).await;
    pool.execute("vacuum analyze events").await?;
    // Let the server write out what generating dirtied, so the measurements below do not pay
    // for the previous phase (needs a superuser or pg_checkpoint; skipped otherwise).
    if let Err(err) = pool.execute("checkpoint").await {
        println!("(no checkpoint before measuring: {err})");
    }
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await?;
    let total = total as f64;

    // The physical limit: the same rows, in log order, streamed to the client and dropped.
    let copy_rate = {
        let mut conn = pool.acquire().await?;
        let started = Instant::now();
        let mut bytes = 0_usize;
        let mut rows = conn
            .copy_out_raw(
                "copy (select tx_id, position, stream_id, stream_version, event_id, event_type,
                        schema_version, payload, metadata, recorded_at
                       from events order by tx_id, position) to stdout",
            )
            .await?;
        while let Some(chunk) = rows.try_next().await? {
            bytes += chunk.len();
        }
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "COPY of {total} events in log order: {seconds:.2} s, {:.0} events/s ({} MB)",
            total / seconds,
            bytes >> 20
        );
        total / seconds
    };

    let only = std::env::var("BENCH_ONLY").ok();
    let all: Vec<Arc<dyn Projection>> = projections::models::all()
        .into_iter()
        .filter(|p| only.as_deref().is_none_or(|name| p.name() == name))
        .collect();
    let rebuild = |selected: Vec<Arc<dyn Projection>>| {
        let log = log.clone();
        let pool = pool.clone();
        async move {
            let started = Instant::now();
            let report = ProjectionRunner::new(log, pool, selected)
                .with_options(RunnerOptions {
                    catch_up_page: page,
                    ..RunnerOptions::default()
                })
                .rebuild_now()
                .await?;
            anyhow::ensure!(
                report.failed.is_none(),
                "rebuild failed: {:?}",
                report.failed
            );
            anyhow::Ok(started.elapsed().as_secs_f64())
        }
    };

    let seconds = rebuild(all.clone()).await?;
    let rate = total / seconds;
    println!(
        "rebuild of all read models: {seconds:.2} s, {rate:.0} events/s, ratio to COPY {:.2} (goal: >= 100000 events/s, ratio >= 0.33)",
        rate / copy_rate
    );
    for projection in all.iter().filter(|_| alone) {
        let seconds = rebuild(vec![Arc::clone(projection)]).await?;
        println!(
            "  {:<12} alone: {seconds:.2} s, {:.0} events/s",
            projection.name(),
            total / seconds
        );
    }

    pool.close().await;
    if keep {
        let _ = database.keep();
    }
    Ok(())
}

/// Waits until readers of the log see every event the database stores.
async fn all_visible(log: &PostgresLog, pool: &PgPool) {
    eventually(
        async || {
            let stored: i64 = sqlx::query_scalar("select count(*) from events")
                .fetch_one(pool)
                .await
                .map_err(|err| err.to_string())?;
            let stored = u64::try_from(stored).map_err(|err| err.to_string())?;
            let visible = log
                .count_after(Position::START, stored)
                .await
                .map_err(|err| err.to_string())?;
            if visible == stored {
                Ok(())
            } else {
                Err(format!("readers see {visible} of {stored} events"))
            }
        },
        Duration::from_secs(600),
    )
    .await;
}
