//! Telegram webhook updates into commands: updates/s and latency.
//!
//! Starts a real Ledgerdesk (HTTP server, bot in webhook mode, projections, delivery worker)
//! in this process on a fresh database, with the Bot API replaced by the tests' fake Bot API
//! server (`testkit::telegram`; plain customer messages make the bot call nothing). Then
//! `BENCH_CLIENTS` (default 64) concurrent HTTP clients post text-message updates from
//! `BENCH_CUSTOMERS` (default 2,000) customers for `BENCH_SECONDS` (default 10) after a warm-up
//! second, each update with its own update id. Every update is handled completely before the
//! webhook answers 200: the customer and ticket loads and the atomic, idempotent append. The first message of each customer opens a ticket;
//! the next ones post to it.
//!
//! `cargo bench --bench webhook` (env: `DATABASE_URL` of a server where `BENCH_DATABASE`,
//! default `ledgerdesk_bench_webhook`, may be created and dropped; it is dropped at the end,
//! also when the run fails).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

// The allocator of the `ledgerdesk` binary, so the server in this process runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bot::config::BotConfig;
use secrecy::SecretString;
use serde_json::json;
use testkit::env_or;
use testkit::telegram::{FakeTelegram, TOKEN};
use testkit::{DatabaseName, TestApp};

const SECRET: &str = "bench-secret";
const PATH: &str = "/telegram/webhook";
const GOAL_PER_SECOND: f64 = 1_000.0;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let clients: u64 = env_or("BENCH_CLIENTS", 64);
    let customers: u64 = env_or::<u64>("BENCH_CUSTOMERS", 2_000).max(1);
    let database = DatabaseName::named(
        &std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "ledgerdesk_bench_webhook".to_owned()),
    );
    // A database left behind by a run that was killed goes first.
    database.drop_now().await;

    let telegram = FakeTelegram::start().await;
    let bot = BotConfig::polling(SecretString::from(TOKEN))?
        .with_api_url(telegram.url())
        .with_webhook(
            &format!("https://desk.example{PATH}"),
            Some(SecretString::from(SECRET)),
        )?;
    let app = TestApp::spawn(database, |settings| {
        settings.db_max_connections = 40;
        settings.bot = Some(bot);
    })
    .await;
    let addr = app.addr();
    let url = format!("http://{addr}{PATH}");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::try_from(clients)?)
        .build()?;

    let next_update = Arc::new(AtomicU64::new(1));
    let answered = Arc::new(AtomicU64::new(0));
    let measuring = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(seconds + 1);
    println!("webhook: {clients} clients, {customers} customers, {seconds} s after a 1 s warm-up");
    let mut workers = Vec::new();
    for _ in 0..clients {
        let http = http.clone();
        let url = url.clone();
        let next_update = Arc::clone(&next_update);
        let measuring = Arc::clone(&measuring);
        let answered = Arc::clone(&answered);
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0_u64;
            while Instant::now() < deadline {
                let update_id = next_update.fetch_add(1, Ordering::Relaxed);
                let customer = 7_000_000_000 + update_id % customers;
                let body = text_update(update_id, customer);
                let started = Instant::now();
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
                    .body(body)
                    .send()
                    .await;
                let ok = matches!(&response, Ok(r) if r.status().is_success());
                if ok {
                    answered.fetch_add(1, Ordering::Relaxed);
                }
                if measuring.load(Ordering::Relaxed) {
                    if ok {
                        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                    } else {
                        failures += 1;
                    }
                }
            }
            (latencies, failures)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    measuring.store(true, Ordering::Relaxed);
    let measured_from = Instant::now();
    let mut latencies = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (mut own, failed) = worker.await?;
        latencies.append(&mut own);
        failures += failed;
    }
    let elapsed = measured_from.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let rate = latencies.len() as f64 / elapsed;
    println!(
        "{:>22} {:>10} {:>9} {:>9}",
        "", "updates/s", "p50 ms", "p99 ms"
    );
    println!(
        "{:>22} {:>10.0} {:>9.1} {:>9.1}",
        "webhook → commands",
        rate,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
    println!(
        "goal ≥ {GOAL_PER_SECOND:.0}/s: {:.2}× the goal ({}), {failures} failed requests",
        rate / GOAL_PER_SECOND,
        if rate >= GOAL_PER_SECOND {
            "met"
        } else {
            "NOT met"
        }
    );

    // Every answered update must be in the log, once.
    let posted: i64 = sqlx::query_scalar(
        "select count(*) from events where event_type = 'ticket.customer_message_posted'",
    )
    .fetch_one(app.pool())
    .await?;
    let answered = i64::try_from(answered.load(Ordering::Relaxed))?;
    println!("check: {answered} updates answered 200, {posted} messages in the log");
    anyhow::ensure!(
        posted == answered,
        "every update answered 200 is one message in the log"
    );
    // Stopped, then its database dropped with the value `stop` gives back.
    app.stop().await;
    Ok(())
}

/// A private text message as Telegram posts it.
fn text_update(update_id: u64, customer: u64) -> String {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {
                "id": customer,
                "is_bot": false,
                "first_name": "Bench",
                "last_name": "Customer",
                "language_code": "en"
            },
            "chat": { "id": customer, "first_name": "Bench", "type": "private" },
            "date": 1_763_895_600 + update_id,
            "text": "Hello, my order #48213 has not arrived yet. Could you check where it is?"
        }
    })
    .to_string()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * (sorted.len() - 1) as f64).round();
    sorted[(rank as usize).min(sorted.len() - 1)]
}
