//! The panel's figures in a real browser: how long a usable inbox takes with many tickets, how
//! soon a customer's message shows in an open inbox, and how much JavaScript the first screen
//! costs.
//!
//! Starts a real Ledgerdesk (HTTP server with the panel built into it, bot in webhook mode,
//! projections) in this process on a fresh database, with the Bot API replaced by the tests'
//! fake Bot API server, as the webhook benchmark does. It opens `BENCH_TICKETS` (default
//! 10,000) tickets through the command service, one per customer, eight at a time, and waits
//! for the read models. Then each round (`BENCH_ROUNDS`, default 3) runs
//! `panel/bench/inbox.mjs` in Debian's Chromium (playwright-core, as the browser tests do),
//! which measures:
//!
//! - time to a usable inbox: `BENCH_LOADS` (default 5) loads of `/` in a new browser context
//!   each (nothing cached), signed in already (the session is in local storage, as after a
//!   sign-in), from the navigation's start to the frame after the first inbox row is in the
//!   page; the round's figure is their median (goal: at most 1 s);
//! - a customer's message to its row in the open inbox: `BENCH_MESSAGES` (default 100)
//!   messages of seeded customers, one at a time, each posted to the webhook from inside the
//!   page (`fetch`), timed on the page's clock from right before the post to the moment its
//!   text is in the inbox's list (a `MutationObserver`); p50 and p99 (goal: p99 at most
//!   300 ms);
//! - the first screen's JavaScript: the scripts `index.html` loads at once, gzip level 9, as
//!   `npm run build` prints it (goal: at most 150 KiB).
//!
//! It prints each round's figures and the medians of the rounds beside the goals.
//!
//! `cargo bench --bench panel` (env: `DATABASE_URL` of a server where it may create and drop
//! the database `ledgerdesk_bench_panel`; Node.js with `npm ci` done in `panel/`, a built panel
//! (`npm run build`) and `/usr/bin/chromium`, or `CHROMIUM`).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

// The allocator of the `ledgerdesk` binary, so the server in this process runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use api::auth::{AuthConfig, AuthService, NewAgent};
use app::commands::{CommandContext, CommandService};
use bot::config::BotConfig;
use chrono::{TimeDelta, Utc};
use domain::agent::Role;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{CustomerId, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind, EventLog};
use secrecy::SecretString;
use serde_json::{Value, json};
use testkit::env_or;
use testkit::telegram::{FakeTelegram, TOKEN};
use testkit::{DatabaseName, TestApp};
use uuid::Uuid;

const SECRET: &str = "bench-panel-secret";
const PATH: &str = "/telegram/webhook";
const EMAIL: &str = "admin@example.com";
const PASSWORD: &str = "correct horse battery staple";
const FIRST_CUSTOMER: i64 = 6_000_000;
const GOAL_INBOX_MS: f64 = 1_000.0;
const GOAL_P99_MS: f64 = 300.0;
const GOAL_FIRST_SCREEN_KIB: f64 = 150.0;

/// One round's figures, as the browser script printed them.
#[derive(Debug, Clone, Copy)]
struct Round {
    inbox_ms: f64,
    inbox_row_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    first_screen_kib: f64,
    first_screen_raw_kib: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    anyhow::ensure!(
        api::panel::BUILT,
        "this build has no panel: run `npm ci && npm run build` in panel/ first"
    );
    let rounds: usize = env_or("BENCH_ROUNDS", 3).max(1);
    let tickets: i64 = env_or("BENCH_TICKETS", 10_000).max(1);
    let loads: usize = env_or("BENCH_LOADS", 5).max(1);
    let messages: i64 = env_or("BENCH_MESSAGES", 100).max(1);
    let database = DatabaseName::named("ledgerdesk_bench_panel");
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
        settings.db_max_connections = 16;
        settings.bot = Some(bot);
        // Every page load signs in afresh.
        settings.api.auth.logins_per_ip_per_minute = 10_000;
        settings.api.auth.logins_per_account_per_minute = 10_000;
        settings.api.auth.logins_per_account_any_address_per_minute = 10_000;
    })
    .await;

    let started = Instant::now();
    seed(app.pool(), tickets).await?;
    let log = PostgresLog::new(app.pool().clone());
    let head = log.head().await?;
    let names = [
        "tickets",
        "messages",
        "customers",
        "directory",
        "broadcasts",
        "dashboard",
    ];
    projections::wait_for(app.pool(), &names, head, Duration::from_secs(900)).await?;
    log.stop_background();
    println!(
        "panel: {tickets} tickets opened and projected in {:.1} s; {rounds} rounds of {loads} \
         inbox loads and {messages} messages",
        started.elapsed().as_secs_f64()
    );
    create_admin(app.pool()).await?;

    let http = reqwest::Client::new();
    let mut results = Vec::new();
    for round in 1..=rounds {
        let offset = i64::try_from(round)? * 131;
        let mut sessions = Vec::new();
        for _ in 0..=loads {
            sessions.push(sign_in(&http, &app).await?);
        }
        let config = json!({
            "base": app.url(""),
            "webhook": app.url(PATH),
            "secret": SECRET,
            "sessions": sessions,
            "customers": (0..messages)
                .map(|n| FIRST_CUSTOMER + (n * 7919 + offset) % tickets)
                .collect::<Vec<_>>(),
            "round": round,
            "screenshots": Path::new(env!("CARGO_TARGET_TMPDIR")).join("panel-bench"),
        });
        let figures = browser(config).await?;
        let number = |key: &str| figures[key].as_f64().unwrap_or(f64::NAN);
        let result = Round {
            inbox_ms: number("inboxMs"),
            inbox_row_ms: number("inboxRowMs"),
            p50_ms: number("p50Ms"),
            p99_ms: number("p99Ms"),
            max_ms: number("maxMs"),
            first_screen_kib: number("firstScreenGzipBytes") / 1024.0,
            first_screen_raw_kib: number("firstScreenRawBytes") / 1024.0,
        };
        println!(
            "  round {round}: usable inbox {:.0} ms (first row in the page {:.0} ms; loads {}; \
             scripts run by {:.0} ms, last API answer by {:.0} ms, slowest query {:.0} ms), \
             message → inbox p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms, first-screen JS {:.1} KiB \
             gzip",
            result.inbox_ms,
            result.inbox_row_ms,
            figures["inboxLoadsMs"],
            number("inboxScriptsMs"),
            number("inboxDataMs"),
            number("inboxSlowestQueryMs"),
            result.p50_ms,
            result.p99_ms,
            result.max_ms,
            result.first_screen_kib,
        );
        results.push(result);
    }
    let median = |f: fn(&Round) -> f64| {
        let mut values: Vec<f64> = results.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!(
        "  median of {rounds} rounds: usable inbox with {tickets} tickets {:.0} ms (goal <= {:.0} \
         ms; first row {:.0} ms), message → open inbox p50 {:.0} ms, p99 {:.0} ms (goal <= {:.0} \
         ms), first-screen JS {:.1} KiB gzip ({:.1} KiB raw; goal <= {:.0} KiB)",
        median(|r| r.inbox_ms),
        GOAL_INBOX_MS,
        median(|r| r.inbox_row_ms),
        median(|r| r.p50_ms),
        median(|r| r.p99_ms),
        GOAL_P99_MS,
        median(|r| r.first_screen_kib),
        median(|r| r.first_screen_raw_kib),
        GOAL_FIRST_SCREEN_KIB,
    );
    let database = app.stop().await;
    database.drop_now().await;
    drop(telegram);
    Ok(())
}

/// Opens `tickets` tickets, one per customer, as customers' first messages do.
async fn seed(pool: &sqlx::PgPool, tickets: i64) -> anyhow::Result<()> {
    let commands = CommandService::new(PostgresLog::new(pool.clone()));
    let mut opening = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let commands = commands.clone();
        opening.spawn(async move {
            let mut n = worker;
            while n < tickets {
                let customer = CustomerId(FIRST_CUSTOMER + n);
                let command = RouteCustomerMessage {
                    customer,
                    profile: CustomerProfile {
                        first_name: format!("Customer {n}"),
                        last_name: None,
                        username: None,
                        language_code: Some("en".into()),
                    },
                    category: None,
                    new_ticket_id: TicketId(Uuid::now_v7()),
                    channel: Channel::Telegram,
                    message: CustomerMessage {
                        message_id: MessageId(Uuid::now_v7()),
                        telegram_message_id: TelegramMessageId(1),
                        reply_to: None,
                        content: MessageContent::text(format!("Order {n}: where is my parcel?")),
                    },
                    reopen_window: TimeDelta::days(7),
                    at: Utc::now(),
                };
                let ctx =
                    CommandContext::new(Actor::new(ActorKind::Customer, customer.to_string()));
                commands
                    .route_customer_message(&command, &ctx)
                    .await
                    .map_err(|error| anyhow::anyhow!("cannot open a ticket: {error}"))?;
                n += 8;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = opening.join_next().await {
        done??;
    }
    commands.log().stop_background();
    Ok(())
}

/// The admin the browser signs in as, created as `ledgerdesk admin create` does.
async fn create_admin(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let commands = CommandService::new(PostgresLog::new(pool.clone()));
    let auth = AuthService::new(commands, None, AuthConfig::default()).await?;
    let ctx = CommandContext::new(Actor::system("bench"));
    auth.create_agent(
        NewAgent {
            email: EMAIL.to_owned(),
            name: "Admin".to_owned(),
            role: Role::Admin,
            password: Some(PASSWORD.to_owned()),
            by: None,
        },
        &ctx,
    )
    .await?;
    Ok(())
}

/// A fresh sign-in, as the panel keeps it in local storage.
async fn sign_in(http: &reqwest::Client, app: &TestApp) -> anyhow::Result<Value> {
    let body: Value = http
        .post(app.url("/graphql"))
        .json(&json!({
            "query": "mutation($input: LoginInput!) { login(input: $input) { \
                accessToken accessTokenExpiresAt refreshToken refreshTokenExpiresAt agentId \
                mustChangePassword mustEnrolSecondFactor } }",
            "variables": { "input": { "email": EMAIL, "password": PASSWORD } },
        }))
        .send()
        .await?
        .json()
        .await?;
    let session = body["data"]["login"].clone();
    anyhow::ensure!(session.is_object(), "cannot sign in: {body}");
    Ok(session)
}

/// Runs `panel/bench/inbox.mjs` with `config`; its JSON figures.
async fn browser(config: Value) -> anyhow::Result<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("panel/bench/inbox.mjs");
    tokio::task::spawn_blocking(move || {
        let output = Command::new("node")
            .arg(&script)
            .arg(config.to_string())
            .output()
            .context("cannot run node (Node.js and `npm ci` in panel/ are needed)")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let result: Value = stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .with_context(|| format!("{script:?} printed no result:\n{stdout}\n{stderr}"))?;
        anyhow::ensure!(
            output.status.success() && result["ok"] == json!(true),
            "the browser failed: {}\n{stderr}",
            result["error"].as_str().unwrap_or_default()
        );
        Ok(result)
    })
    .await?
}
