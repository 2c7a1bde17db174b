//! Append throughput of the Postgres log against the raw cost of a row in Postgres.
//!
//! For 1, 8 and 32 concurrent writers it measures single-event appends/s through
//! [`PostgresLog::append`] and, in the same run on the same server, single-row
//! `INSERT`s/s of the same payload into a bare table (one jsonb column, no index, no
//! constraint), each an autocommitted statement like the append. The ratio is the share of
//! Postgres' raw row rate the log keeps. The log runs as configured by default (concurrent
//! appends share transactions: group commit) and, for comparison, with
//! `append_batches = 0` (each append its own transaction).
//!
//! Each concurrency level is measured `BENCH_ROUNDS` times, the three taking turns at going
//! first; the table shows the medians. Next to each rate it prints the CPU time one operation
//! cost in this process (client) and in the server backends serving the benchmark's database
//! (read from `/proc` on Linux, where the server runs on the same machine; `-` elsewhere).
//!
//! The log is connected and pooled through [`app::database`], as Ledgerdesk runs it, which is
//! why the benchmark lives in this crate.
//!
//! `cargo bench -p app --bench append` (env: `DATABASE_URL` of a server where a database
//! `BENCH_DATABASE`, default `ledgerdesk_bench`, may be created and dropped, also when the run
//! fails; `BENCH_SECONDS` per measurement, default 5; `BENCH_ROUNDS`, default 3;
//! `BENCH_APPEND_BATCHES`, the log's `append_batches`, default the log's default).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use app::database;
use eventlog::postgres::{PostgresLog, PostgresLogOptions};
use eventlog::{Actor, ActorKind, AppendRequest, EventLog, ExpectedVersion, Metadata, NewEvent};
use serde_json::json;
use sqlx::pool::PoolConnection;
use sqlx::{Executor, PgPool, Postgres};
use testkit::DatabaseName;

const CONCURRENCY: [u64; 3] = [1, 8, 32];
const STREAMS_PER_WRITER: u64 = 50;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);

    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|n| *n >= 1)
        .unwrap_or(3);
    let database = DatabaseName::named(
        &std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "ledgerdesk_bench".to_owned()),
    );
    let measure = Duration::from_secs(seconds);
    let batches: usize = std::env::var("BENCH_APPEND_BATCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(PostgresLogOptions::default().append_batches);

    // Created afresh and migrated (one a killed run left behind goes first); dropped at the
    // end, also when the run fails. Its own pool is closed: the benchmark opens one per round.
    let database = database.create().await.close().await;
    let url = database.url().to_owned();

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
        "append benchmark: {seconds} s per measurement, {rounds} rounds (medians shown), payload {} bytes, append_batches {batches}",
        payload_text.len()
    );
    println!("cpu: µs of CPU per operation, client (this process) / server (its backends)");
    println!(
        "log: appends through PostgresLog (group commit, the default); per batch: requests per \
         shared transaction; alone: the same log with append_batches = 0 (one transaction each)"
    );
    println!(
        "{:>8} {:>14} {:>11} {:>9} {:>14} {:>11} {:>16} {:>11} {:>7} {:>7} {:>15} {:>10}",
        "writers",
        "log appends/s",
        "cpu c/s",
        "per batch",
        "alone/s",
        "cpu c/s",
        "plain INSERTs/s",
        "cpu c/s",
        "ratio",
        "alone",
        "held INSERTs/s",
        "ratio held"
    );
    for writers in CONCURRENCY {
        // Connected and pooled as Ledgerdesk connects (no TLS to a server on this machine, no
        // ping per statement).
        let pool = database::pool_options(u32::try_from(writers).unwrap_or(32) + 2)
            .connect_with(database::connect_options(&url)?)
            .await?;
        database::migrate(&pool).await?;
        pool.execute(
            "drop table if exists bench_plain; create table bench_plain (payload jsonb not null)",
        )
        .await?;
        let batched = PostgresLog::with_options(
            pool.clone(),
            PostgresLogOptions {
                append_batches: batches,
                ..PostgresLogOptions::default()
            },
        );
        let alone = PostgresLog::with_options(
            pool.clone(),
            PostgresLogOptions {
                append_batches: 0,
                ..PostgresLogOptions::default()
            },
        );

        let plain_op = {
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
        };
        let log_op = |log: PostgresLog| {
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
        };
        let batched_op = log_op(batched.clone());
        let alone_op = log_op(alone);
        // The plain INSERTs again, each writer on a connection it holds for the measurement:
        // no pool between statements, so not sqlx's round trip on every release.
        let held_op = |held: Arc<Vec<tokio::sync::Mutex<PoolConnection<Postgres>>>>| {
            let payload_text = payload_text.clone();
            move |writer: u64, _| {
                let (held, payload_text) = (held.clone(), payload_text.clone());
                async move {
                    let mut conn = held[usize::try_from(writer).unwrap_or(0)].lock().await;
                    sqlx::query("insert into bench_plain (payload) values ($1::jsonb)")
                        .bind(payload_text)
                        .execute(&mut **conn)
                        .await
                        .map(|_| ())
                        .map_err(anyhow::Error::from)
                }
            }
        };

        let mut plain = Vec::new();
        let mut appended = Vec::new();
        let mut appended_alone = Vec::new();
        let mut plain_held = Vec::new();
        for round in 0..rounds {
            // Each round starts with another of the four, so none always runs on a colder
            // (or more bloated) table than the others.
            for step in 0..4 {
                match (round + step) % 4 {
                    0 => plain.push(run(&pool, writers, measure, plain_op.clone()).await?),
                    1 => appended.push(run(&pool, writers, measure, batched_op.clone()).await?),
                    2 => appended_alone.push(run(&pool, writers, measure, alone_op.clone()).await?),
                    _ => {
                        let mut held = Vec::new();
                        for _ in 0..writers {
                            held.push(tokio::sync::Mutex::new(pool.acquire().await?));
                        }
                        let op = held_op(Arc::new(held));
                        plain_held.push(run(&pool, writers, measure, op).await?);
                    }
                }
            }
        }
        let rates = |ms: &[Measured]| {
            ms.iter()
                .map(|m| format!("{:.0}", m.rate))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let stats = batched.append_stats();
        let per_batch = if stats.batches == 0 {
            1.0
        } else {
            stats.batched_requests as f64 / stats.batches as f64
        };
        let (log_m, alone_m, plain_m, held_m) = (
            median(&appended),
            median(&appended_alone),
            median(&plain),
            median(&plain_held),
        );
        println!(
            "{writers:>8} {:>14.0} {:>11} {:>9.1} {:>14.0} {:>11} {:>16.0} {:>11} {:>7.2} {:>7.2} {:>15.0} {:>10.2}   (log: {}; alone: {}; plain: {}; held: {})",
            log_m.rate,
            log_m.cpu(),
            per_batch,
            alone_m.rate,
            alone_m.cpu(),
            plain_m.rate,
            plain_m.cpu(),
            log_m.rate / plain_m.rate,
            alone_m.rate / plain_m.rate,
            held_m.rate,
            log_m.rate / held_m.rate,
            rates(&appended),
            rates(&appended_alone),
            rates(&plain),
            rates(&plain_held),
        );
        pool.close().await;
    }
    drop(database);
    println!("goal: ratio >= 0.85 at 32 writers");
    Ok(())
}

/// One measurement: operations per second and CPU time per operation.
#[derive(Debug, Clone, Copy)]
struct Measured {
    rate: f64,
    client_us: Option<f64>,
    server_us: Option<f64>,
}

impl Measured {
    fn cpu(&self) -> String {
        let show = |us: Option<f64>| us.map_or_else(|| "-".to_owned(), |us| format!("{us:.0}"));
        format!("{}/{}", show(self.client_us), show(self.server_us))
    }
}

/// The measurement with the median rate.
fn median(ms: &[Measured]) -> Measured {
    let mut sorted = ms.to_vec();
    sorted.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    sorted[sorted.len() / 2]
}

/// CPU seconds (user + system) used so far by the processes `pids`, from `/proc` (Linux).
fn cpu_seconds(pids: &[i32]) -> Option<f64> {
    // Clock ticks per second: 100 on every Linux this runs on (USER_HZ).
    const TICKS: f64 = 100.0;
    let mut total = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        total += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(total as f64 / TICKS)
}

/// The server processes serving the benchmark's database.
async fn backend_pids(pool: &PgPool) -> anyhow::Result<Vec<i32>> {
    Ok(sqlx::query_scalar(
        "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()",
    )
    .fetch_all(pool)
    .await?)
}

/// Runs `op` from `writers` concurrent tasks for a warm-up second, then for `measure`, and
/// returns operations per second over the measured span.
async fn run<F, Fut>(
    pool: &PgPool,
    writers: u64,
    measure: Duration,
    op: F,
) -> anyhow::Result<Measured>
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
    let backends = backend_pids(pool).await?;
    let own = [i32::try_from(std::process::id()).unwrap_or(0)];
    let (client_before, server_before) = (cpu_seconds(&own), cpu_seconds(&backends));
    counting.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    let count = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed();
    let (client_after, server_after) = (cpu_seconds(&own), cpu_seconds(&backends));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await??;
    }
    let per_op = |before: Option<f64>, after: Option<f64>| {
        Some((after? - before?) * 1e6 / count.max(1) as f64)
    };
    Ok(Measured {
        rate: count as f64 / elapsed.as_secs_f64(),
        client_us: per_op(client_before, client_after),
        server_us: per_op(server_before, server_after),
    })
}
