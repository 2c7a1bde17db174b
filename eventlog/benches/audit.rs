//! `audit verify` and `export` on a generated log against a `COPY` of the same log.
//!
//! Fills a database with a generated history once (kept between runs: a later run with the
//! same size reuses it), then measures in rounds, each phase in turn: `COPY (select … from
//! events) to stdout` of the columns verification reads (the rate at which Postgres can hand
//! the log out at all), `audit verify` of every stream's chain (stream order, hashes
//! recomputed, anchors checked), and `export` to a JSON Lines file. The figures printed last
//! are the medians of the rounds, and the ratios are taken against the COPY of the same round.
//!
//! `cargo bench -p eventlog --bench audit` (env: `DATABASE_URL` of a server where `BENCH_DATABASE`,
//! default `ledgerdesk_bench_audit`, may be created; `BENCH_EVENTS`, default 1,000,000;
//! `BENCH_ROUNDS`, default 3; `BENCH_KEEP=false` drops the database at the end).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::time::Instant;

use anyhow::Context;
use eventlog::postgres::PostgresLog;
use eventlog::postgres::audit::{self, VerifyScope};
use eventlog::postgres::transfer::{self, ExportScope};
use futures::StreamExt;
use sqlx::PgPool;
use testkit::DatabaseName;
use testkit::env_or;
use tools::generate::{GenerateOptions, generate};

#[derive(Debug, Clone, Copy)]
struct Round {
    copy: f64,
    verify: f64,
    export: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let events: u64 = env_or("BENCH_EVENTS", 1_000_000);
    let rounds: usize = env_or("BENCH_ROUNDS", 3);
    let keep: bool = env_or("BENCH_KEEP", true);
    let name: String = env_or("BENCH_DATABASE", "ledgerdesk_bench_audit".to_owned());
    let server = sqlx::PgPool::connect(&testkit::database::server_url()).await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&name)
            .fetch_one(&server)
            .await?;
    server.close().await;
    let database = if exists {
        DatabaseName::named(&name).open().await
    } else {
        DatabaseName::named(&name).create().await
    };
    let pool = database.connect(4).await;
    let log = PostgresLog::new(pool.clone());
    let mut stored: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(&pool)
        .await?;
    if stored == 0 {
        let started = Instant::now();
        let options = GenerateOptions {
            events,
            ..GenerateOptions::default()
        };
        generate(&log, &options, |_| {})
            .await
            .context("generating the history")?;
        stored = sqlx::query_scalar("select count(*) from events")
            .fetch_one(&pool)
            .await?;
        sqlx::query("vacuum analyze events").execute(&pool).await?;
        println!(
            "generated {stored} events in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    } else if u64::try_from(stored)? < events {
        anyhow::bail!(
            "{name} holds {stored} events, fewer than BENCH_EVENTS ({events}): drop it first"
        );
    }
    let size: i64 = sqlx::query_scalar("select pg_total_relation_size('events')")
        .fetch_one(&pool)
        .await?;
    println!(
        "log: {stored} events, table and indexes {} MiB; {rounds} rounds",
        size >> 20
    );
    let stored = stored as f64;
    let file = std::env::temp_dir().join(format!("ledgerdesk-bench-{}.jsonl", std::process::id()));
    let mut results = Vec::new();
    for round in 1..=rounds {
        let copy = stored / copy_seconds(&pool).await?;
        let started = Instant::now();
        let outcome = audit::verify(&pool, &VerifyScope::default(), &[], |_| {}, |_| {}).await?;
        let verify = outcome.events as f64 / started.elapsed().as_secs_f64();
        anyhow::ensure!(outcome.holds(), "the generated log does not verify");
        let started = Instant::now();
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&file)?);
        let exported = transfer::export(&log, &ExportScope::default(), &mut out, |_| {}).await?;
        drop(out);
        let export = exported.events as f64 / started.elapsed().as_secs_f64();
        let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let _ = std::fs::remove_file(&file);
        println!(
            "round {round}: COPY {copy:.0} events/s, verify {verify:.0} events/s ({:.2} of COPY), \
             export {export:.0} events/s ({:.2} of COPY, {} MiB)",
            verify / copy,
            export / copy,
            bytes >> 20
        );
        results.push(Round {
            copy,
            verify,
            export,
        });
    }
    let median = |pick: fn(&Round) -> f64| {
        let mut values: Vec<f64> = results.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let ratio = |pick: fn(&Round) -> f64| {
        let mut values: Vec<f64> = results.iter().map(|r| pick(r) / r.copy).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "median: COPY {:.0} events/s, verify {:.0} events/s (ratio {:.2}, goal >= 0.5), \
         export {:.0} events/s (ratio {:.2})",
        median(|r| r.copy),
        median(|r| r.verify),
        ratio(|r| r.verify),
        median(|r| r.export),
        ratio(|r| r.export),
    );
    log.stop_background();
    pool.close().await;
    if keep {
        let _kept = database.keep();
    }
    Ok(())
}

/// Seconds for a `COPY` of the columns verification reads, every byte received and dropped.
async fn copy_seconds(pool: &PgPool) -> anyhow::Result<f64> {
    let mut conn = pool.acquire().await?;
    let started = Instant::now();
    let mut stream = conn
        .copy_out_raw(
            "copy (select stream_id, stream_version, tx_id, position, event_type, payload, \
                          metadata, prev_hash, hash from events) to stdout",
        )
        .await?;
    let mut bytes = 0_usize;
    while let Some(chunk) = stream.next().await {
        bytes += chunk?.len();
    }
    anyhow::ensure!(bytes > 0, "COPY gave nothing");
    Ok(started.elapsed().as_secs_f64())
}
