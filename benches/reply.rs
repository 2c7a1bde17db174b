//! `replyToTicket` over HTTP against the raw INSERT rate of the same machine.
//!
//! Opens tickets from many customers on a fresh database, then measures in rounds. In each
//! round a real Ledgerdesk (HTTP server, GraphQL, projections) starts in this process, signs
//! an admin in, and 64 concurrent HTTP clients, each on one keep-alive connection, send
//! `replyToTicket` mutations for `BENCH_SECONDS` (default 10) after a warm-up second, once
//! every ticket has had its first reply of the round (timed apart: see `api_phase`). Each
//! mutation decides on the ticket's state and appends atomically; the projections follow
//! meanwhile. In the same round, with the server stopped, 64 concurrent connections send
//! autocommitted single-row INSERTs of a payload of the same size into a bare table: the ratio
//! is the share of Postgres' raw row rate the whole API path keeps. The two phases take turns
//! at going first, and the figures printed last are the medians of the rounds, so a drift of
//! the machine's speed during the run moves both sides of the ratio alike.
//!
//! `cargo bench --bench reply` (env: `DATABASE_URL` of a server where `BENCH_DATABASE`, default
//! `ledgerdesk_bench_api`, may be created and dropped, also when the run fails; `BENCH_CLIENTS`, default 64;
//! `BENCH_ROUNDS`, default 3; `BENCH_TICKETS_PER_CLIENT`, default 4: the tickets each client
//! takes turns replying to).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

// The allocator of the `ledgerdesk` binary, so the server in this process runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{CustomerId, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind};
use ledgerdesk::{Application, Settings};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Executor, PgPool};
use testkit::DatabaseName;
use testkit::env_or;
use uuid::Uuid;

const REPLY: &str = "Thanks for writing. I checked order #48213: it left our warehouse yesterday and should arrive tomorrow.";
const MUTATION: &str =
    "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { position } }";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let rounds: usize = env_or("BENCH_ROUNDS", 3).max(1);
    let clients: usize = env_or("BENCH_CLIENTS", 64);
    let per_client: usize = env_or("BENCH_TICKETS_PER_CLIENT", 4).max(1);
    // Dropped when the run ends, also when it fails; one a killed run left behind goes first.
    let database = DatabaseName::named(
        &std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "ledgerdesk_bench_api".to_owned()),
    )
    .create()
    .await;
    let url = database.url().to_owned();

    let pool = database.pool().clone();
    let log = PostgresLog::new(pool.clone());
    let tickets = open_tickets(&log, clients * per_client).await?;
    create_admin(&log).await?;
    pool.execute(
        "drop table if exists bench_plain; create table bench_plain (payload jsonb not null)",
    )
    .await?;
    let database = database.close().await;

    println!(
        "replyToTicket benchmark: {clients} HTTP clients, {rounds} rounds of {seconds} s per \
         measurement (each after 1 s warm-up), {} tickets; the API and the raw INSERTs take \
         turns at going first",
        tickets.len()
    );
    let mut measured = Vec::with_capacity(rounds);
    for round in 0..rounds {
        vacuum(&url).await?;
        let (api, raw) = if round % 2 == 0 {
            let api = api_phase(&url, &tickets, clients, seconds).await?;
            (api, raw_phase(&url, clients, seconds).await?)
        } else {
            let raw = raw_phase(&url, clients, seconds).await?;
            (api_phase(&url, &tickets, clients, seconds).await?, raw)
        };
        println!(
            "round {}: replyToTicket {:.0}/s (p99 {:.1} ms, {} µs CPU here/postgres), raw INSERT \
             {:.0}/s ({} µs CPU), held {:.0}/s: ratio {:.2}, held {:.2}; before it, the first \
             reply to each ticket (its stream about {:.0} events) took {:.2} s in all",
            round + 1,
            api.replies.rate,
            api.replies.percentile(0.99),
            api.replies.cpu_split(),
            raw.pooled.rate,
            raw.pooled.cpu_split(),
            raw.held.rate,
            api.replies.rate / raw.pooled.rate,
            api.replies.rate / raw.held.rate,
            api.first_replies.events_per_ticket,
            api.first_replies.seconds
        );
        measured.push(Round { api, raw });
    }

    let median = |f: &dyn Fn(&Round) -> f64| {
        let mut values: Vec<f64> = measured.iter().map(f).collect();
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    println!("medians of {rounds} rounds:");
    println!(
        "{:>22} {:>10} {:>9} {:>9} {:>14}",
        "", "ops/s", "p50 ms", "p99 ms", "CPU µs/op"
    );
    println!(
        "{:>22} {:>10} {:>9} {:>9} {:>14}",
        "", "", "", "", "here/postgres"
    );
    let rows: [(&str, Pick); 4] = [
        ("replyToTicket (HTTP)", |round| &round.api.replies),
        ("raw INSERT (SQL)", |round| &round.raw.pooled),
        ("raw INSERT (held conn)", |round| &round.raw.held),
        ("{ __typename } (HTTP)", |round| &round.api.floor),
    ];
    for (name, of) in rows {
        println!(
            "{name:>22} {:>10.0} {:>9.1} {:>9.1} {:>14}",
            median(&|m| of(m).rate),
            median(&|m| of(m).percentile(0.50)),
            median(&|m| of(m).percentile(0.99)),
            format!(
                "{:.0}/{:.0}",
                median(&|m| of(m).cpu.map_or(f64::NAN, |cpu| cpu.process_us)),
                median(&|m| of(m).cpu.map_or(f64::NAN, |cpu| cpu.postgres_us))
            )
        );
    }
    println!(
        "by CPU time (this process and Postgres): a raw INSERT costs {:.2} of a reply \
         (median of the rounds)",
        median(&|r| r.raw.pooled.cpu_us() / r.api.replies.cpu_us())
    );
    println!(
        "ratio replyToTicket / raw INSERT: {:.2} (median of the rounds' ratios; goal >= 0.6; \
         p99 goal <= 50 ms); against INSERTs on held connections: {:.2}",
        median(&|r| r.api.replies.rate / r.raw.pooled.rate),
        median(&|r| r.api.replies.rate / r.raw.held.rate)
    );
    println!(
        "CPU per operation on the 2 cores if they were all busy: replyToTicket {:.0} µs, \
         {{ __typename }} {:.0} µs, raw INSERT {:.0} µs",
        cores_us(median(&|r| r.api.replies.rate)),
        cores_us(median(&|r| r.api.floor.rate)),
        cores_us(median(&|r| r.raw.pooled.rate))
    );

    drop(database);
    Ok(())
}

/// Vacuums and analyzes the benchmark's database. Every reply rewrites its ticket's row, so the
/// 256 rows of `tickets` leave a few hundred thousand dead versions behind per round, with an
/// index entry each; a production server's autovacuum clears them, this machine's Postgres may
/// run without it. Each round starts from a vacuumed database, so the rounds compare.
async fn vacuum(url: &str) -> anyhow::Result<()> {
    let pool = PgPool::connect(url).await?;
    pool.execute("vacuum (analyze)").await?;
    pool.close().await;
    Ok(())
}

/// The rate of one measurement, the latency (ms) of each of its operations (sorted), and the
/// CPU time per operation (µs) of this process and of Postgres' processes.
struct Measured {
    rate: f64,
    latencies: Vec<f64>,
    cpu: Option<Cpu>,
}

#[derive(Clone, Copy)]
struct Cpu {
    process_us: f64,
    postgres_us: f64,
}

/// CPU seconds (user + system) used so far by this process and by every process named
/// `postgres` (its backends and its WAL writer, checkpointer and the rest), from `/proc`:
/// Linux, with the server on this machine; `None` elsewhere.
fn cpu_seconds() -> Option<(f64, f64)> {
    // Clock ticks per second: 100 on every Linux this runs on (USER_HZ).
    const TICKS: f64 = 100.0;
    let ticks = |stat: &str| -> Option<(String, u64)> {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        // utime and stime are the 14th and 15th fields, the 12th and 13th after the name.
        let used = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some((stat[open + 1..close].to_owned(), used))
    };
    let (_, own) = ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
    let mut postgres = 0;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat"))
            && let Some((name, used)) = ticks(&stat)
            && name == "postgres"
        {
            postgres += used;
        }
    }
    Some((own as f64 / TICKS, postgres as f64 / TICKS))
}

impl Measured {
    fn percentile(&self, q: f64) -> f64 {
        percentile(&self.latencies, q)
    }

    /// CPU µs per operation of this process and of Postgres, as `here/postgres`.
    fn cpu_split(&self) -> String {
        self.cpu.map_or_else(
            || "?".to_owned(),
            |cpu| format!("{:.0}/{:.0}", cpu.process_us, cpu.postgres_us),
        )
    }

    /// CPU µs per operation, this process and Postgres together (NaN without `/proc`).
    fn cpu_us(&self) -> f64 {
        self.cpu
            .map_or(f64::NAN, |cpu| cpu.process_us + cpu.postgres_us)
    }
}

/// One round: the API phase and the raw phase.
struct Round {
    api: ApiPhase,
    raw: RawPhase,
}

/// Which measurement of a round a row of the table shows.
type Pick = fn(&Round) -> &Measured;

struct ApiPhase {
    replies: Measured,
    floor: Measured,
    first_replies: FirstReplies,
}

/// The first reply to each ticket after the server started, before the measurement.
struct FirstReplies {
    seconds: f64,
    /// The ticket events in the log at the start: what those replies read, per ticket.
    events_per_ticket: f64,
}

struct RawPhase {
    pooled: Measured,
    held: Measured,
}

/// Starts Ledgerdesk on the database, signs the admin in, and measures `replyToTicket`, then
/// `{ __typename }` on the same connections; stops the server, so its connections are gone
/// before a raw phase opens its own (Postgres allows 100 here).
async fn api_phase(
    url: &str,
    tickets: &[TicketId],
    clients: usize,
    seconds: u64,
) -> anyhow::Result<ApiPhase> {
    let mut config = api::ApiConfig::default();
    config.auth.logins_per_ip_per_minute = 1_000;
    let owner = SecretString::from(url.to_owned());
    let role = ledgerdesk::ServingRole::default_role();
    let app = Application::build(Settings {
        serving_database_url: ledgerdesk::serving_url(&owner, &role)?,
        database_url: owner,
        serving_role: role,
        migrate_on_start: true,
        // Room for the raw phase's pool should a server linger.
        db_max_connections: 48,
        bind: "127.0.0.1:0".parse()?,
        log_held_back_warn: std::time::Duration::from_secs(10),
        api: config,
        bot: None,
        command_retry_budget: app::commands::DEFAULT_RETRY_BUDGET,
        anchor: None,
    })
    .await?;
    let addr = app.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let token = sign_in(addr).await?;
    // replyToTicket only sees tickets the read models hold: wait for the projections.
    let pool = PgPool::connect(url).await?;
    let head = eventlog::EventLog::head(&PostgresLog::new(pool.clone())).await?;
    let names = [
        "tickets",
        "messages",
        "customers",
        "directory",
        "broadcasts",
        "dashboard",
    ];
    projections::wait_for(&pool, &names, head, Duration::from_secs(120)).await?;
    let history: i64 =
        sqlx::query_scalar("select count(*) from events where stream_id like 'ticket-%'")
            .fetch_one(&pool)
            .await?;
    pool.close().await;
    // One keep-alive connection per client, as a browser or an integration holds one.
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(tokio::sync::Mutex::new(Connection::open(addr).await?));
    }
    let connections = Arc::new(connections);

    // The requests are built once, so the load generator spends its share of the two cores
    // on sending and receiving them, not on building the same bytes again.
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        tickets
            .iter()
            .map(|ticket| {
                let body = json!({ "query": MUTATION, "variables": { "input": { "ticketId": ticket.to_string(), "text": REPLY } } });
                http_post(addr, &token, &body.to_string())
            })
            .collect(),
    );
    let per_client = (tickets.len() / clients.max(1)).max(1);
    // The first reply to a ticket after the server starts reads the ticket's whole stream to
    // decide on it; the command service keeps the state from then on. The benchmark's tickets
    // gain hundreds of events each per round, so by a later round each first reply reads
    // thousands, which is a cost of this benchmark's history, not of a reply: every client
    // replies once to each of its tickets before the measurement, timed on its own.
    let started = Instant::now();
    let mut first = Vec::with_capacity(clients);
    for client in 0..clients {
        let (connections, requests) = (connections.clone(), requests.clone());
        first.push(tokio::spawn(async move {
            let mut connection = connections[client].lock().await;
            for n in 0..per_client {
                connection
                    .exchange(&requests[client * per_client + n])
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for task in first {
        task.await??;
    }
    let first_replies = FirstReplies {
        seconds: started.elapsed().as_secs_f64(),
        events_per_ticket: history as f64 / tickets.len().max(1) as f64,
    };
    let replies = run(clients, Duration::from_secs(seconds), {
        let connections = connections.clone();
        move |client, n| {
            let (connections, requests) = (connections.clone(), requests.clone());
            async move {
                let request = &requests[client * per_client + n % per_client];
                connections[client].lock().await.exchange(request).await
            }
        }
    })
    .await?;
    // The same clients, server and credential with a query that reads nothing: what HTTP,
    // authentication and GraphQL cost on their own, the floor under any mutation's cost.
    let floor = Arc::new(http_post(
        addr,
        &token,
        &json!({ "query": "{ __typename }" }).to_string(),
    ));
    let floor = run(clients, Duration::from_secs(seconds), {
        let connections = connections.clone();
        move |client, _| {
            let (connections, floor) = (connections.clone(), floor.clone());
            async move { connections[client].lock().await.exchange(&floor).await }
        }
    })
    .await?;
    drop(connections);
    let _ = stop.send(());
    running.await??;
    Ok(ApiPhase {
        replies,
        floor,
        first_replies,
    })
}

/// Autocommitted single-row INSERTs of a payload of a reply's size into a bare table from
/// `clients` tasks: through a pool, then each on a connection it holds throughout.
async fn raw_phase(url: &str, clients: usize, seconds: u64) -> anyhow::Result<RawPhase> {
    let payload = json!({ "ticket_id": Uuid::now_v7(), "message_id": Uuid::now_v7(), "agent_id": Uuid::now_v7(),
        "content": { "text": REPLY }, "at": Utc::now() })
    .to_string();
    // Connected and pooled as the server connects (no TLS to a server on this machine, no ping
    // per statement), so the raw phase pays for the database what the API phase paid and no
    // more.
    let raw_pool = app::database::pool_options(u32::try_from(clients).unwrap_or(64))
        .connect_with(app::database::connect_options(url)?)
        .await?;
    let pooled = run(clients, Duration::from_secs(seconds), {
        let (raw_pool, payload) = (raw_pool.clone(), payload.clone());
        move |_, _| {
            let (raw_pool, payload) = (raw_pool.clone(), payload.clone());
            async move {
                sqlx::query("insert into bench_plain (payload) values ($1::jsonb)")
                    .bind(payload)
                    .execute(&raw_pool)
                    .await?;
                Ok(())
            }
        }
    })
    .await?;
    // The same INSERTs, each client on one connection it holds throughout (as each HTTP client
    // holds its connection to the server): no pool between statements, so none of sqlx's
    // round trip when a connection goes back to the pool (a `Sync` it sends on every release).
    let mut held = Vec::with_capacity(clients);
    for _ in 0..clients {
        held.push(tokio::sync::Mutex::new(raw_pool.acquire().await?));
    }
    let held = Arc::new(held);
    let on_held = run(clients, Duration::from_secs(seconds), {
        let (held, payload) = (held.clone(), payload.clone());
        move |client, _| {
            let (held, payload) = (held.clone(), payload.clone());
            async move {
                let mut conn = held[client].lock().await;
                sqlx::query("insert into bench_plain (payload) values ($1::jsonb)")
                    .bind(payload)
                    .execute(&mut **conn)
                    .await?;
                Ok(())
            }
        }
    })
    .await?;
    drop(held);
    raw_pool.close().await;
    Ok(RawPhase {
        pooled,
        held: on_held,
    })
}

/// The bytes of an HTTP/1.1 POST of `body` to the GraphQL endpoint, with the access token.
fn http_post(addr: std::net::SocketAddr, token: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /graphql HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One keep-alive HTTP/1.1 connection to the server: the load generator's whole client. It
/// writes a request and reads its one response, and does nothing else (no URL parsing,
/// pooling, redirects or header maps), so the two cores go to the server as far as possible.
struct Connection {
    stream: tokio::net::TcpStream,
    buffer: Vec<u8>,
}

impl Connection {
    async fn open(addr: std::net::SocketAddr) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends `request` and reads the response, which must be a 200 without GraphQL errors.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let mut head = None;
        loop {
            if head.is_none()
                && let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n")
            {
                head = Some((end + 4, content_length(&self.buffer[..end])?));
            }
            if let Some((start, length)) = head
                && self.buffer.len() >= start + length
            {
                let answer = &self.buffer[..start + length];
                anyhow::ensure!(
                    answer.starts_with(b"HTTP/1.1 200")
                        && !answer[start..].windows(8).any(|w| w == b"\"errors\""),
                    "request failed: {}",
                    String::from_utf8_lossy(answer)
                );
                anyhow::ensure!(
                    self.buffer.len() == start + length,
                    "the server sent more than one response"
                );
                return Ok(());
            }
            if self.stream.read_buf(&mut self.buffer).await? == 0 {
                anyhow::bail!("the server closed the connection");
            }
        }
    }
}

/// The `content-length` of a response head (the server sends no chunked bodies here).
fn content_length(head: &[u8]) -> anyhow::Result<usize> {
    let head = std::str::from_utf8(head)?;
    head.split("\r\n")
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .with_context(|| format!("a response without content-length: {head}"))
}

/// Microseconds of machine time per operation at `rate` operations/s, counting every core.
fn cores_us(rate: f64) -> f64 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    cores as f64 * 1e6 / rate
}

/// Opens `count` tickets, one per customer, through the real write path.
async fn open_tickets(log: &PostgresLog, count: usize) -> anyhow::Result<Vec<TicketId>> {
    let commands = CommandService::new(log.clone());
    let mut tickets = Vec::with_capacity(count);
    for n in 0..count {
        let customer = CustomerId(1_000_000 + i64::try_from(n)?);
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
                content: MessageContent::text("Hello, my order has not arrived yet."),
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

const ADMIN_EMAIL: &str = "bench@example.com";
const ADMIN_PASSWORD: &str = "bench password 0123456789";

async fn create_admin(log: &PostgresLog) -> anyhow::Result<()> {
    let auth = api::auth::AuthService::new(
        CommandService::new(log.clone()),
        None,
        api::auth::AuthConfig::default(),
    )
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    auth.create_agent(
        api::auth::NewAgent {
            email: ADMIN_EMAIL.into(),
            name: "Bench".into(),
            role: domain::agent::Role::Admin,
            password: Some(ADMIN_PASSWORD.into()),
            by: None,
        },
        &CommandContext::new(Actor::system("bench")),
    )
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    Ok(())
}

/// An access token of the admin from a server (each server signs with keys of its own).
async fn sign_in(addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": "mutation($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { accessToken } }", "variables": { "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD } }))
        .send()
        .await?
        .json()
        .await?;
    body["data"]["login"]["accessToken"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("login failed: {body}"))
}

/// Runs `op` from `clients` tasks: a warm-up second, then `measure`.
async fn run<F, Fut>(clients: usize, measure: Duration, op: F) -> anyhow::Result<Measured>
where
    F: Fn(usize, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let counting = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (op, stop, counting) = (op.clone(), stop.clone(), counting.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    op(client, n).await?;
                    if counting.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        latencies.push(started.elapsed().as_secs_f64() * 1e3);
                    }
                    n += 1;
                }
                anyhow::Ok(latencies)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    counting.store(true, Ordering::Relaxed);
    let cpu_before = cpu_seconds();
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let cpu_after = cpu_seconds();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort_by(f64::total_cmp);
    let count = latencies.len().max(1) as f64;
    let cpu = cpu_before.zip(cpu_after).map(|(before, after)| Cpu {
        process_us: (after.0 - before.0) * 1e6 / count,
        postgres_us: (after.1 - before.1) * 1e6 / count,
    });
    Ok(Measured {
        rate: latencies.len() as f64 / elapsed.as_secs_f64(),
        latencies,
        cpu,
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
