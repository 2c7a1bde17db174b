//! Append throughput of the Postgres log against the raw cost of a row in Postgres.
//!
//! For 1, 8 and 32 concurrent writers it measures single-event appends/s through
//! [`PostgresLog::append`] and, in the same run on the same server, single-row
//! `INSERT`s/s of the same payload into a bare table (one jsonb column, no index, no
//! constraint), each an autocommitted statement like the append. The ratio is the share of
//! Postgres' raw row rate the log keeps.
//!
//! `cargo bench -p eventlog --bench append` (env: `DATABASE_URL` of a server where a database
//! `ledgerdesk_bench` may be created and dropped; `BENCH_SECONDS` per measurement, default 5).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use eventlog::postgres::{self, PostgresLog};
use eventlog::{Actor, ActorKind, AppendRequest, EventLog, ExpectedVersion, Metadata, NewEvent};
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

const CONCURRENCY: [u64; 3] = [1, 8, 32];
const STREAMS_PER_WRITER: u64 = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let measure = Duration::from_secs(seconds);

    let admin = PgPool::connect(&server)
        .await
        .context("connect to DATABASE_URL")?;
    admin
        .execute("drop database if exists ledgerdesk_bench with (force)")
        .await?;
    admin.execute("create database ledgerdesk_bench").await?;
    let url = database_url(&server, "ledgerdesk_bench");

    let payload = json!({
        "ticket_id": "0193a0c4-7d1e-7c3a-9f00-5b2f1c9e8a41",
        "message_id": 48213,
        "kind": "text",
        "content": { "text": "Hello, my order #48213 has not arrived yet. Could you check, please?" },
        "sent_at": "2026-11-23T10:15:00Z"
    });
    let payload_text = payload.to_string();
    let metadata = Metadata::new(Actor::new(ActorKind::Customer, "123456789"));

    println!(
        "append benchmark: {seconds} s per measurement, payload {} bytes",
        payload_text.len()
    );
    println!(
        "{:>8} {:>16} {:>18} {:>8}",
        "writers", "log appends/s", "plain INSERTs/s", "ratio"
    );
    for writers in CONCURRENCY {
        let pool = PgPoolOptions::new()
            .max_connections(u32::try_from(writers).unwrap_or(32) + 2)
            .connect(&url)
            .await?;
        postgres::migrate(&pool).await?;
        pool.execute(
            "drop table if exists bench_plain; create table bench_plain (payload jsonb not null)",
        )
        .await?;

        let plain = run(writers, measure, {
            let pool = pool.clone();
            let payload_text = payload_text.clone();
            move |_, _| {
                let pool = pool.clone();
                let payload_text = payload_text.clone();
                async move {
                    sqlx::query("insert into bench_plain (payload) values ($1::jsonb)")
                        .bind(payload_text)
                        .execute(&pool)
                        .await
                        .map(|_| ())
                        .map_err(anyhow::Error::from)
                }
            }
        })
        .await?;

        let log = PostgresLog::new(pool.clone());
        let appended = run(writers, measure, {
            let payload = payload.clone();
            let metadata = metadata.clone();
            move |writer, n| {
                let log = log.clone();
                let event =
                    NewEvent::new("customer.message_posted", payload.clone(), metadata.clone());
                let stream = format!("ticket-{writer}-{}", n % STREAMS_PER_WRITER);
                async move {
                    log.append(AppendRequest::to_stream(
                        stream,
                        ExpectedVersion::Any,
                        vec![event],
                    ))
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from)
                }
            }
        })
        .await?;

        println!(
            "{writers:>8} {appended:>16.0} {plain:>18.0} {:>8.2}",
            appended / plain
        );
        pool.close().await;
    }
    admin
        .execute("drop database if exists ledgerdesk_bench with (force)")
        .await?;
    println!("goal: ratio >= 0.85 at 32 writers");
    Ok(())
}

/// Runs `op` from `writers` concurrent tasks for a warm-up second, then for `measure`, and
/// returns operations per second over the measured span.
async fn run<F, Fut>(writers: u64, measure: Duration, op: F) -> anyhow::Result<f64>
where
    F: Fn(u64, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..writers)
        .map(|writer| {
            let (op, stop, counting, done) =
                (op.clone(), stop.clone(), counting.clone(), done.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    op(writer, n).await?;
                    n += 1;
                    if counting.load(Ordering::Relaxed) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
                anyhow::Ok(())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    Ok(count as f64 / elapsed.as_secs_f64())
}

/// `server` with its database name replaced by `name`.
fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server
        .split_once('?')
        .map_or((server, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > "postgres://".len() => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}
