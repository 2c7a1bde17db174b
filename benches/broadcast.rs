//! Broadcast sending against a Telegram that enforces its caps, with agents' replies during it.
//!
//! For each case `recipients:cap` (env `BENCH_CASES`, default `3000:30,10000:1000`): a fresh
//! database with that many customers (language `de`) and ten more with a ticket each
//! (language `en`). Each round starts the fake Bot API enforcing `cap` messages/s over all
//! chats and 1/s per chat (429 with `retry_after` beyond), and the real `ledgerdesk serve`
//! (the built binary) with `TELEGRAM_MESSAGES_PER_SECOND=cap` (and
//! `TELEGRAM_ALLOW_PAID_BROADCAST=true` above 30). It measures the latency of agent replies
//! with nothing else sent (the baseline, 20 replies), then starts a broadcast to the `de`
//! customers and writes a reply every second while it runs (every 250 ms above a cap of 30;
//! env `BENCH_REPLY_INTERVAL_MS`). Replies share the cap with the broadcast and go first, so
//! the broadcast alone can reach at most the cap less the replies' rate. It prints per round
//! and as the median of the rounds (env `BENCH_ROUNDS`, default 3):
//!
//! - the achieved rate (recipients over the time from the first to the last message the fake
//!   accepted) and its ratio to the cap (goal: at least 0.93), and the bot's whole rate over
//!   the same span (broadcast and replies) and its ratio to the cap;
//! - duplicates (messages a chat got beyond one; goal 0) and the 429s the caps answered;
//! - the p99 and worst latency of replies during the broadcast, from the reply's commit to the
//!   fake's receipt, beside the baseline's p99;
//! - the server's CPU time over the broadcast (share of one core) and its peak RSS, from
//!   `/proc`.
//!
//! `cargo bench --bench broadcast` (env: `DATABASE_URL` of a server where it may create and
//! drop the databases `ledgerdesk_bench_broadcast_<n>`).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::broadcast::{Audience, Broadcast, BroadcastCommand, BroadcastContent, TextFormat};
use domain::content::{CustomerMessage, MessageContent, ReplyContent, TelegramMessageId};
use domain::customer::{Customer, CustomerCommand, CustomerProfile};
use domain::flow::RouteCustomerMessage;
use domain::ticket::{Channel, ReplyAsAgent, TicketCommand};
use domain::{AgentId, BroadcastId, CustomerId, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind};
use testkit::DatabaseName;
use testkit::env_or;
use testkit::telegram::{FakeTelegram, TOKEN};
use uuid::Uuid;

const FIRST_RECIPIENT: i64 = 5_000_000;
const FIRST_REPLY_CUSTOMER: i64 = 9_000_000;
const REPLY_TICKETS: usize = 10;

#[derive(Debug, Clone, Copy)]
struct Round {
    ratio: f64,
    rate: f64,
    /// Every message the bot sent over the broadcast's span (with the replies), per second.
    whole_rate: f64,
    duplicates: usize,
    refused: u64,
    reply_p99_ms: f64,
    reply_max_ms: f64,
    idle_p99_ms: f64,
    cpu_share: f64,
    rss_mib: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rounds: usize = env_or("BENCH_ROUNDS", 3).max(1);
    let cases = std::env::var("BENCH_CASES").unwrap_or_else(|_| "3000:30,10000:1000".to_owned());
    for (n, case) in cases.split(',').enumerate() {
        let (recipients, cap) = case
            .split_once(':')
            .and_then(|(r, c)| Some((r.trim().parse::<i64>().ok()?, c.trim().parse::<u32>().ok()?)))
            .context("BENCH_CASES is recipients:cap,…")?;
        let database = DatabaseName::named(&format!("ledgerdesk_bench_broadcast_{n}"))
            .create()
            .await;
        let log = PostgresLog::new(database.pool().clone());
        let tickets = prepare(&log, recipients).await?;
        let database = database.close().await;
        println!("case: {recipients} recipients at a cap of {cap} msg/s, {rounds} rounds");
        let mut results = Vec::new();
        for round in 1..=rounds {
            let result = one_round(&database, &tickets, recipients, cap).await?;
            println!(
                "  round {round}: rate {:.1}/s, ratio {:.3}, with replies {:.1}/s (ratio {:.3}), \
                 duplicates {}, 429s {}, \
                 reply p99 {:.0} ms (max {:.0}, idle p99 {:.0}), server CPU {:.0}% of a core, \
                 peak RSS {:.0} MiB",
                result.rate,
                result.ratio,
                result.whole_rate,
                result.whole_rate / f64::from(cap),
                result.duplicates,
                result.refused,
                result.reply_p99_ms,
                result.reply_max_ms,
                result.idle_p99_ms,
                result.cpu_share * 100.0,
                result.rss_mib
            );
            results.push(result);
        }
        let median = |f: fn(&Round) -> f64| {
            let mut values: Vec<f64> = results.iter().map(f).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        println!(
            "  median: rate {:.1}/s, ratio {:.3} (goal >= 0.93), with replies {:.1}/s, \
             duplicates {} (goal 0), \
             reply p99 {:.0} ms (idle p99 {:.0} ms), server CPU {:.0}% of a core, peak RSS {:.0} MiB",
            median(|r| r.rate),
            median(|r| r.ratio),
            median(|r| r.whole_rate),
            results.iter().map(|r| r.duplicates).max().unwrap_or(0),
            median(|r| r.reply_p99_ms),
            median(|r| r.idle_p99_ms),
            median(|r| r.cpu_share) * 100.0,
            median(|r| r.rss_mib),
        );
        drop(database);
    }
    Ok(())
}

/// `recipients` customers in `de`, and the reply customers with a ticket each, in `en`.
async fn prepare(log: &PostgresLog, recipients: i64) -> anyhow::Result<Vec<TicketId>> {
    let commands = CommandService::new(log.clone());
    let context = CommandContext::new(Actor::system("bench"));
    let mut registering = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let (commands, context) = (commands.clone(), context.clone());
        registering.spawn(async move {
            let mut id = FIRST_RECIPIENT + worker;
            while id < FIRST_RECIPIENT + recipients {
                let command = CustomerCommand::Register {
                    customer_id: CustomerId(id),
                    profile: CustomerProfile {
                        first_name: "Kunde".to_owned(),
                        last_name: None,
                        username: None,
                        language_code: Some("de".to_owned()),
                    },
                    at: Utc::now(),
                };
                commands
                    .execute::<Customer>(CustomerId(id).stream(), &command, &context)
                    .await
                    .map_err(|error| anyhow::anyhow!("cannot register: {error}"))?;
                id += 8;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = registering.join_next().await {
        done??;
    }
    let mut tickets = Vec::new();
    for n in 0..REPLY_TICKETS {
        let customer = CustomerId(FIRST_REPLY_CUSTOMER + i64::try_from(n)?);
        let command = RouteCustomerMessage {
            customer,
            profile: CustomerProfile {
                first_name: "Customer".to_owned(),
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
                content: MessageContent::text("Hello"),
            },
            reopen_window: TimeDelta::days(7),
            at: Utc::now(),
        };
        let ctx = CommandContext::new(Actor::new(ActorKind::Customer, customer.to_string()));
        let routed = commands
            .route_customer_message(&command, &ctx)
            .await
            .map_err(|error| anyhow::anyhow!("cannot open a ticket: {error}"))?;
        tickets.push(routed.ticket_id);
    }
    Ok(tickets)
}

fn serve(database: &DatabaseName, telegram: &FakeTelegram, cap: u32) -> std::io::Result<Child> {
    Command::new(env!("CARGO_BIN_EXE_ledgerdesk"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(["--database-url", database.url()])
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_API_URL", telegram.url().as_str())
        .env("TELEGRAM_POLL_TIMEOUT_SECS", "1")
        .env("TELEGRAM_MESSAGES_PER_SECOND", cap.to_string())
        .env("TELEGRAM_ALLOW_PAID_BROADCAST", (cap > 30).to_string())
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

/// The process's CPU time so far (user and system), from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// The process's peak resident memory, in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Writes a reply on `ticket` with `text`; the time it was committed.
async fn reply(commands: &CommandService<PostgresLog>, ticket: TicketId, text: &str) -> Instant {
    let command = TicketCommand::ReplyAsAgent(ReplyAsAgent {
        reply_to: None,
        message_id: MessageId(Uuid::now_v7()),
        agent: AgentId(Uuid::from_u128(1)),
        template: None,
        content: ReplyContent::text(text),
        at: Utc::now(),
    });
    let context = CommandContext::new(Actor::new(ActorKind::Agent, "bench"));
    if let Err(error) = commands.execute_ticket(ticket, &command, &context).await {
        println!("a reply failed: {error}");
    }
    Instant::now()
}

/// The latencies (ms) of the replies `written` (text → commit time) as the fake received them.
async fn latencies(telegram: &FakeTelegram, written: &[(String, Instant)]) -> Vec<f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let calls = telegram.calls_of("sendMessage");
        let arrived: HashMap<String, Instant> = calls
            .iter()
            .filter(|call| call.succeeded())
            .filter_map(|call| Some((call.text()?, call.at)))
            .collect();
        if written.iter().all(|(text, _)| arrived.contains_key(text)) || Instant::now() > deadline {
            return written
                .iter()
                .filter_map(|(text, at)| {
                    let got = arrived.get(text)?;
                    Some(got.saturating_duration_since(*at).as_secs_f64() * 1000.0)
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn one_round(
    database: &DatabaseName,
    tickets: &[TicketId],
    recipients: i64,
    cap: u32,
) -> anyhow::Result<Round> {
    let telegram = FakeTelegram::start().await;
    telegram.enforce_caps(cap);
    let mut server = serve(database, &telegram, cap)?;
    let pid = server.id();
    let pool = sqlx::PgPool::connect(database.url()).await?;
    let log = PostgresLog::new(pool.clone());
    let commands = CommandService::new(log.clone());

    // Baseline: replies with nothing else to send (the first waits for the server to be up).
    let first = reply(&commands, tickets[0], "warm-up").await;
    latencies(&telegram, &[("warm-up".to_owned(), first)]).await;
    let mut idle = Vec::new();
    for n in 0..20 {
        let text = format!("idle {n}");
        let at = reply(&commands, tickets[n % tickets.len()], &text).await;
        idle.push((text, at));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut idle = latencies(&telegram, &idle).await;

    // The broadcast, as `startBroadcast` starts it.
    let id = BroadcastId(Uuid::now_v7());
    let by = AgentId(Uuid::from_u128(1));
    let context = CommandContext::new(Actor::new(ActorKind::Agent, "bench"));
    let audience = Audience::ByLanguage {
        language: "de".to_owned(),
    };
    commands
        .execute::<Broadcast>(
            id.stream(),
            &BroadcastCommand::Draft {
                broadcast_id: id,
                audience: audience.clone(),
                content: BroadcastContent {
                    text: Some("<b>Maintenance</b> tonight from 22:00".to_owned()),
                    format: TextFormat::Html,
                    media: None,
                    buttons: vec![],
                    unsubscribe_button: true,
                },
                by,
                at: Utc::now(),
            },
            &context,
        )
        .await
        .map_err(|error| anyhow::anyhow!("cannot draft: {error}"))?;
    let resolved = projections::customers::queries::resolve_audience(&pool, &audience).await?;
    anyhow::ensure!(
        i64::try_from(resolved.recipients.len())? == recipients,
        "the read model holds {} of {recipients} recipients",
        resolved.recipients.len()
    );
    let cpu_before = cpu_time(pid);
    let started = Instant::now();
    commands
        .execute::<Broadcast>(
            id.stream(),
            &BroadcastCommand::Start {
                audience: resolved,
                by: Some(by),
                at: Utc::now(),
            },
            &context,
        )
        .await
        .map_err(|error| anyhow::anyhow!("cannot start: {error}"))?;

    let reply_interval = Duration::from_millis(env_or(
        "BENCH_REPLY_INTERVAL_MS",
        if cap > 30 { 250 } else { 1_000 },
    ));
    let mut during = Vec::new();
    let is_recipient = |chat: i64| (FIRST_RECIPIENT..FIRST_RECIPIENT + recipients).contains(&chat);
    let mut n = 0;
    loop {
        let done = telegram
            .accepted_per_chat()
            .iter()
            .filter(|(chat, _)| is_recipient(**chat))
            .count();
        if i64::try_from(done)? >= recipients {
            break;
        }
        anyhow::ensure!(
            started.elapsed()
                < Duration::from_secs(u64::try_from(recipients)? / u64::from(cap) * 3 + 60),
            "the broadcast did not finish ({done} of {recipients})"
        );
        let text = format!("during {n}");
        let at = reply(&commands, tickets[n % tickets.len()], &text).await;
        during.push((text, at));
        n += 1;
        tokio::time::sleep(reply_interval).await;
    }
    let cpu = cpu_time(pid).saturating_sub(cpu_before);
    let elapsed = started.elapsed();
    let rss_mib = peak_rss_mib(pid);
    let mut during = latencies(&telegram, &during).await;

    let calls = telegram.calls();
    let mut per_chat: HashMap<i64, usize> = HashMap::new();
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for call in calls
        .iter()
        .filter(|call| call.succeeded() && call.method == "sendmessage")
    {
        let Some(chat) = call.chat_id().filter(|chat| is_recipient(*chat)) else {
            continue;
        };
        *per_chat.entry(chat).or_default() += 1;
        first = Some(first.map_or(call.at, |f: Instant| f.min(call.at)));
        last = Some(last.map_or(call.at, |l: Instant| l.max(call.at)));
    }
    let span = match (first, last) {
        (Some(first), Some(last)) => last.saturating_duration_since(first).as_secs_f64(),
        _ => 0.0,
    };
    let rate = if span > 0.0 {
        (per_chat.len().saturating_sub(1)) as f64 / span
    } else {
        0.0
    };
    let whole = match (first, last) {
        (Some(first), Some(last)) => calls
            .iter()
            .filter(|call| call.succeeded() && call.method == "sendmessage")
            .filter(|call| call.at >= first && call.at <= last)
            .count(),
        _ => 0,
    };
    let whole_rate = if span > 0.0 {
        whole.saturating_sub(1) as f64 / span
    } else {
        0.0
    };
    let duplicates = per_chat.values().map(|n| n.saturating_sub(1)).sum();
    let refused = telegram.refused_by_caps();
    server.kill()?;
    server.wait()?;
    pool.close().await;
    Ok(Round {
        ratio: rate / f64::from(cap),
        rate,
        whole_rate,
        duplicates,
        refused,
        reply_p99_ms: percentile(&mut during, 0.99),
        reply_max_ms: during.iter().copied().fold(0.0, f64::max),
        idle_p99_ms: percentile(&mut idle, 0.99),
        cpu_share: cpu.as_secs_f64() / elapsed.as_secs_f64(),
        rss_mib,
    })
}
