//! `replyToTicket` over HTTP against the raw INSERT rate of the same machine.
//!
//! Starts a real Ledgerdesk (HTTP server, GraphQL, projections) in this process on a fresh
//! database, opens tickets from many customers, signs an admin in, then 64 concurrent HTTP
//! clients, each on one keep-alive connection, send `replyToTicket` mutations for
//! `BENCH_SECONDS` (default 10) after a warm-up second. Each mutation loads the ticket stream, decides, and appends atomically; the
//! projections follow meanwhile. In the same run, 64 concurrent connections send autocommitted
//! single-row INSERTs of a payload of the same size into a bare table: the ratio is the share of
//! Postgres' raw row rate the whole API path keeps.
//!
//! `cargo bench --bench reply` (env: `DATABASE_URL` of a server where `BENCH_DATABASE`, default
//! `ledgerdesk_bench_api`, may be created and dropped; `BENCH_CLIENTS`, default 64).

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

// The allocator of the `ledgerdesk` binary, so the server in this process runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeDelta, Utc};
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{CustomerId, MessageId, TicketId};
use eventlog::commands::{CommandContext, CommandService};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind};
use ledgerdesk::{Application, Settings};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Executor, PgPool};
use uuid::Uuid;

const TICKETS_PER_CLIENT: usize = 4;
const REPLY: &str = "Thanks for writing. I checked order #48213: it left our warehouse yesterday and should arrive tomorrow.";
const MUTATION: &str =
    "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { position } }";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let seconds: u64 = env_or("BENCH_SECONDS", 10);
    let clients: usize = env_or("BENCH_CLIENTS", 64);
    let database =
        std::env::var("BENCH_DATABASE").unwrap_or_else(|_| "ledgerdesk_bench_api".to_owned());
    anyhow::ensure!(
        !database.is_empty()
            && database
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "BENCH_DATABASE takes lowercase letters, digits and _"
    );
    let admin_pool = PgPool::connect(&server)
        .await
        .context("connect to DATABASE_URL")?;
    admin_pool
        .execute(format!("drop database if exists {database} with (force)").as_str())
        .await?;
    let url = database_url(&server, &database);

    let mut config = api::ApiConfig::default();
    config.auth.logins_per_ip_per_minute = 1_000;
    let app = Application::build(Settings {
        database_url: SecretString::from(url.clone()),
        // Postgres allows 100 connections here: leave room for the raw phase's pool.
        db_max_connections: 48,
        bind: "127.0.0.1:0".parse()?,
        api: config,
        bot: None,
    })
    .await?;
    let addr = app.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    let pool = PgPool::connect(&url).await?;
    let log = PostgresLog::new(pool.clone());
    let tickets = open_tickets(&log, clients * TICKETS_PER_CLIENT).await?;
    let token = sign_in(&log, addr).await?;
    // replyToTicket only sees tickets the read models hold: wait for the projections.
    let head = eventlog::EventLog::head(&log).await?;
    let names = [
        "tickets",
        "messages",
        "customers",
        "directory",
        "broadcasts",
        "dashboard",
    ];
    projections::wait_for(&pool, &names, head, Duration::from_secs(60)).await?;
    // One keep-alive connection per client, as a browser or an integration holds one.
    let mut connections = Vec::with_capacity(clients);
    for _ in 0..clients {
        connections.push(tokio::sync::Mutex::new(Connection::open(addr).await?));
    }
    let connections = Arc::new(connections);

    println!(
        "replyToTicket benchmark: {clients} HTTP clients, {seconds} s after 1 s warm-up, {} tickets",
        tickets.len()
    );
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
    let (rate, latencies) = run(clients, Duration::from_secs(seconds), {
        let connections = connections.clone();
        move |client, n| {
            let (connections, requests) = (connections.clone(), requests.clone());
            async move {
                let request = &requests[client * TICKETS_PER_CLIENT + n % TICKETS_PER_CLIENT];
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
    let (floor_rate, floor_latencies) = run(clients, Duration::from_secs(seconds), {
        let connections = connections.clone();
        move |client, _| {
            let (connections, floor) = (connections.clone(), floor.clone());
            async move { connections[client].lock().await.exchange(&floor).await }
        }
    })
    .await?;
    drop(connections);

    // The server's connections go before the raw phase opens its own.
    let _ = stop.send(());
    running.await??;
    pool.execute(
        "drop table if exists bench_plain; create table bench_plain (payload jsonb not null)",
    )
    .await?;
    let payload = json!({ "ticket_id": Uuid::now_v7(), "message_id": Uuid::now_v7(), "agent_id": Uuid::now_v7(),
        "content": { "text": REPLY }, "at": Utc::now() })
    .to_string();
    // Connected and pooled as the server connects (no TLS to a server on this machine, no ping
    // per statement), so the raw phase pays for the database what the API phase paid and no
    // more.
    let raw_pool = eventlog::postgres::pool_options(u32::try_from(clients).unwrap_or(64))
        .connect_with(eventlog::postgres::connect_options(&url)?)
        .await?;
    let (raw_rate, raw_latencies) = run(clients, Duration::from_secs(seconds), {
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
    let (held_rate, held_latencies) = run(clients, Duration::from_secs(seconds), {
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

    println!("{:>22} {:>10} {:>9} {:>9}", "", "ops/s", "p50 ms", "p99 ms");
    println!(
        "{:>22} {:>10.0} {:>9.1} {:>9.1}",
        "replyToTicket (HTTP)",
        rate,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99)
    );
    println!(
        "{:>22} {:>10.0} {:>9.1} {:>9.1}",
        "raw INSERT (SQL)",
        raw_rate,
        percentile(&raw_latencies, 0.50),
        percentile(&raw_latencies, 0.99)
    );
    println!(
        "{:>22} {:>10.0} {:>9.1} {:>9.1}",
        "raw INSERT (held conn)",
        held_rate,
        percentile(&held_latencies, 0.50),
        percentile(&held_latencies, 0.99)
    );
    println!(
        "{:>22} {:>10.0} {:>9.1} {:>9.1}",
        "{ __typename } (HTTP)",
        floor_rate,
        percentile(&floor_latencies, 0.50),
        percentile(&floor_latencies, 0.99)
    );
    println!(
        "ratio replyToTicket / raw INSERT: {:.2} (goal >= 0.6; p99 goal <= 50 ms); \
         against INSERTs on held connections: {:.2}",
        rate / raw_rate,
        rate / held_rate
    );
    println!(
        "CPU per operation on the 2 cores if they were all busy: replyToTicket {:.0} µs, \
         {{ __typename }} {:.0} µs, raw INSERT {:.0} µs",
        cores_us(rate),
        cores_us(floor_rate),
        cores_us(raw_rate)
    );

    raw_pool.close().await;
    pool.close().await;
    admin_pool
        .execute(format!("drop database if exists {database} with (force)").as_str())
        .await?;
    Ok(())
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

async fn sign_in(log: &PostgresLog, addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let auth = api::auth::AuthService::new(log.clone(), None, api::auth::AuthConfig::default())
        .await
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let password = "bench password 0123456789";
    auth.create_agent(
        api::auth::NewAgent {
            email: "bench@example.com".into(),
            name: "Bench".into(),
            role: domain::agent::Role::Admin,
            password: Some(password.into()),
            by: None,
        },
        &CommandContext::new(Actor::system("bench")),
    )
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    let body: Value = reqwest::Client::new()
        .post(format!("http://{addr}/graphql"))
        .json(&json!({ "query": "mutation($p: String!) { login(input: {email: \"bench@example.com\", password: $p}) { accessToken } }", "variables": { "p": password } }))
        .send()
        .await?
        .json()
        .await?;
    body["data"]["login"]["accessToken"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("login failed: {body}"))
}

/// Runs `op` from `clients` tasks: a warm-up second, then `measure`. Returns ops/s and the
/// latency (ms) of every measured operation.
async fn run<F, Fut>(clients: usize, measure: Duration, op: F) -> anyhow::Result<(f64, Vec<f64>)>
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
    let started = Instant::now();
    tokio::time::sleep(measure).await;
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    latencies.sort_by(f64::total_cmp);
    Ok((latencies.len() as f64 / elapsed.as_secs_f64(), latencies))
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

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
