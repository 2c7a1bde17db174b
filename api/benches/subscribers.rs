//! N WebSocket clients subscribed to `ticketsChanged` on a real server; tickets are opened one
//! by one and each delivery is timed from the commit. The server runs in this process, the
//! clients in a child process (this binary, started again), so the RSS printed for the server
//! is its own. Prints p50/p99 and both processes' RSS.
//!
//! `DATABASE_URL=postgres://… cargo bench -p api --bench subscribers -- [clients] [tickets]`

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark fails loudly and prints"
)]

// The allocator of the `ledgerdesk` binary, so the server in this process runs as it does there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use api::auth::{AuthConfig, AuthService, NewAgent};
use app::commands::{CommandContext, CommandService};
use chrono::Utc;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::ticket::{Channel, OpenTicket, Ticket, TicketCommand};
use domain::{CustomerId, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use testkit::DatabaseName;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

/// Set in the child process that runs the clients: `<addr> <clients> <token>`.
const CLIENTS_ENV: &str = "LEDGERDESK_BENCH_SUBSCRIBER_CLIENTS";

fn rss_kib() -> u64 {
    rss_of("/proc/self/status")
}

fn rss_of(status: &str) -> u64 {
    std::fs::read_to_string(status)
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    if let Ok(spec) = std::env::var(CLIENTS_ENV) {
        run_clients(&spec).await;
        return;
    }
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(1_000);
    let tickets = args.get(1).copied().unwrap_or(50);
    // Dropped at the end, also when the run fails.
    let database = DatabaseName::named(&format!("ledgerdesk_bench_subs_{}", std::process::id()))
        .create()
        .await;
    let pool = database.connect(20).await;
    let log = PostgresLog::new(pool.clone());
    let models = projections::models::all();
    let state = api::AppState::new(
        CommandService::new(log.clone()),
        models.clone(),
        api::ApiConfig::default(),
    )
    .await
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let runner = projections::ProjectionRunner::new(log.clone(), pool.clone(), models);
    let projecting = tokio::spawn(runner.run(stop.child_token()));
    let serving = tokio::spawn(
        axum::serve(
            listener,
            api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(stop.child_token().cancelled_owned())
        .into_future(),
    );

    let auth = AuthService::new(
        CommandService::new(log.clone()),
        None,
        AuthConfig::default(),
    )
    .await
    .unwrap();
    let ctx = CommandContext::new(Actor::system("bench"));
    auth.create_agent(
        NewAgent {
            email: "admin@example.com".into(),
            name: "admin".into(),
            role: domain::agent::Role::Admin,
            password: Some("correct horse battery staple".into()),
            by: None,
        },
        &ctx,
    )
    .await
    .unwrap();
    let api::auth::LoginOutcome::SignedIn(session) = auth
        .login(
            "admin@example.com",
            "correct horse battery staple",
            None,
            None,
        )
        .await
        .unwrap()
    else {
        panic!("the benchmark's admin has no second factor")
    };
    let token = session.access_token;

    let rss_before = rss_kib();
    // The clients run in a child process (this binary again), so the RSS read here is the
    // server's alone. The child prints `ready` once every client subscribed, then one line per
    // delivery: the ticket id and the wall-clock time of arrival (both processes read the
    // same clock).
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(CLIENTS_ENV, format!("{addr} {clients} {token}"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    while line_rx.recv().await.unwrap() != "ready" {}
    // Let the last subscriptions reach the hub.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_subscribed = rss_kib();
    let committed: Arc<Mutex<HashMap<String, SystemTime>>> = Arc::default();
    let (latency_tx, mut latency_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    {
        let committed = committed.clone();
        tokio::spawn(async move {
            while let Some(line) = line_rx.recv().await {
                let Some((id, nanos)) = line.split_once(' ') else {
                    continue;
                };
                let at = UNIX_EPOCH + Duration::from_nanos(nanos.parse().unwrap_or(0));
                let start = committed.lock().unwrap().get(id).copied();
                if let Some(start) = start {
                    let _ = latency_tx.send(at.duration_since(start).unwrap_or_default());
                }
            }
        });
    }

    let commands = CommandService::new(log.clone());
    let mut latencies = Vec::with_capacity(clients * tickets);
    for n in 0..tickets {
        let id = Uuid::now_v7();
        let command = TicketCommand::Open(OpenTicket {
            ticket_id: TicketId(id),
            customer: CustomerId(1_000 + i64::try_from(n).unwrap()),
            category: None,
            channel: Channel::Telegram,
            first_message: CustomerMessage {
                message_id: MessageId(Uuid::now_v7()),
                telegram_message_id: TelegramMessageId(1),
                reply_to: None,
                content: MessageContent::text("where is my parcel"),
            },
            at: Utc::now(),
        });
        let ctx = CommandContext::new(Actor::new(ActorKind::Customer, n.to_string()));
        // Stamped just before the commit returns control; delivery cannot precede it (the row is
        // loaded after the read model applied the commit).
        committed
            .lock()
            .unwrap()
            .insert(id.to_string(), SystemTime::now());
        commands
            .execute::<Ticket>(TicketId(id).stream(), &command, &ctx)
            .await
            .unwrap();
        committed
            .lock()
            .unwrap()
            .insert(id.to_string(), SystemTime::now());
        let deadline = Instant::now() + Duration::from_secs(10);
        while latencies.len() < (n + 1) * clients && Instant::now() < deadline {
            if let Ok(Some(latency)) =
                tokio::time::timeout(Duration::from_secs(1), latency_rx.recv()).await
            {
                latencies.push(latency);
            }
        }
    }
    let rss_peak = rss_kib();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "subscribers={clients} tickets={tickets} deliveries={}/{} p50={:?} p99={:?} max={:?}",
        latencies.len(),
        clients * tickets,
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or_default()
    );
    println!(
        "server RSS (clients run in another process): before clients {} MiB, subscribed {} MiB, after run {} MiB (goal <= 200 MB)",
        rss_before / 1024,
        rss_subscribed / 1024,
        rss_peak / 1024
    );
    println!(
        "client process RSS: {} MiB",
        rss_of(&format!("/proc/{child_pid}/status")) / 1024
    );
    let _ = child.kill();
    let _ = child.wait();

    stop.cancel();
    serving.abort();
    let _ = projecting.await;
    pool.close().await;
    drop(database);
}

/// The child process: `clients` WebSocket subscribers of `ticketsChanged`. Prints `ready` once
/// all are subscribed, then `<ticket id> <arrival, ns since the Unix epoch>` per delivery.
async fn run_clients(spec: &str) {
    let mut parts = spec.splitn(3, ' ');
    let addr = parts.next().unwrap().to_owned();
    let clients: usize = parts.next().unwrap().parse().unwrap();
    let token = parts.next().unwrap().to_owned();
    let (line_tx, mut line_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for _ in 0..clients {
        let (addr, token) = (addr.clone(), token.clone());
        let line_tx = line_tx.clone();
        let ready_tx = ready_tx.clone();
        tokio::spawn(async move {
            let mut request = format!("ws://{addr}/graphql/ws")
                .into_client_request()
                .unwrap();
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("graphql-transport-ws"),
            );
            // Small reads, as the server reads: tungstenite zero-fills its whole read buffer
            // (128 KiB by default) before each read, which cost this process more than it
            // spent on anything else, on the cores the server runs on.
            let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
            let (mut ws, _) =
                tokio_tungstenite::connect_async_with_config(request, Some(config), true)
                    .await
                    .unwrap();
            let send = |v: Value| Message::Text(v.to_string().into());
            ws.send(send(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}})))
                .await
                .unwrap();
            let _ack = ws.next().await;
            ws.send(send(
                json!({"type": "subscribe", "id": "1", "payload": {"query":
                "subscription { ticketsChanged { cursor ticket { ticketId status } } }"}}),
            ))
            .await
            .unwrap();
            let _ = ready_tx.send(());
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message {
                    let at = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .unwrap_or_default()
                        .as_nanos();
                    let value: Value = serde_json::from_str(&text).unwrap();
                    let id = value["payload"]["data"]["ticketsChanged"]["ticket"]["ticketId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let _ = line_tx.send(format!("{id} {at}"));
                }
            }
        });
    }
    drop(line_tx);
    for _ in 0..clients {
        ready_rx.recv().await.unwrap();
    }
    println!("ready");
    while let Some(line) = line_rx.recv().await {
        println!("{line}");
    }
}
