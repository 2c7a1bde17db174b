//! N WebSocket clients subscribed to `ticketsChanged` on a real in-process server; tickets are
//! opened one by one and each client times commit → delivery. Prints p50/p99 and the
//! process's RSS (server and clients together: an upper bound on the server's).
//!
//! `DATABASE_URL=postgres://… cargo bench -p api --bench subscribers -- [clients] [tickets]`

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark fails loudly and prints"
)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api::auth::{AuthConfig, AuthService, NewAgent};
use chrono::Utc;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::ticket::{Channel, OpenTicket, Ticket, TicketCommand};
use domain::{CustomerId, MessageId, TicketId};
use eventlog::commands::{CommandContext, CommandService};
use eventlog::postgres::{self, PostgresLog};
use eventlog::{Actor, ActorKind};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use uuid::Uuid;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(1_000);
    let tickets = args.get(1).copied().unwrap_or(50);
    let server_url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let base = &server_url[..server_url.rfind('/').unwrap()];
    let database = format!("ledgerdesk_bench_subs_{}", std::process::id());
    let url = format!("{base}/{database}");
    let pool = postgres::connect(&url, 20).await.unwrap();
    postgres::migrate(&pool).await.unwrap();
    let log = PostgresLog::new(pool.clone());
    let models = projections::models::all();
    let state = api::AppState::new(log.clone(), models.clone(), api::ApiConfig::default())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let runner = projections::ProjectionRunner::new(log.clone(), pool.clone(), models);
    let mut s1 = stopped.clone();
    let projecting = tokio::spawn(runner.run(async move {
        let _ = s1.wait_for(|v| *v).await;
    }));
    let mut s2 = stopped.clone();
    let serving = tokio::spawn(
        axum::serve(
            listener,
            api::router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = s2.wait_for(|v| *v).await;
        })
        .into_future(),
    );

    let auth = AuthService::new(log.clone(), None, AuthConfig::default())
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
    let token = auth
        .login("admin@example.com", "correct horse battery staple", None)
        .await
        .unwrap()
        .access_token;

    let rss_before = rss_kib();
    let committed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (latency_tx, mut latency_rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    for _ in 0..clients {
        let token = token.clone();
        let committed = committed.clone();
        let latency_tx = latency_tx.clone();
        let ready_tx = ready_tx.clone();
        tokio::spawn(async move {
            let mut request = format!("ws://{addr}/graphql/ws")
                .into_client_request()
                .unwrap();
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static("graphql-transport-ws"),
            );
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
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
                    let at = Instant::now();
                    let value: Value = serde_json::from_str(&text).unwrap();
                    let id = value["payload"]["data"]["ticketsChanged"]["ticket"]["ticketId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let start = committed.lock().unwrap().get(&id).copied();
                    if let Some(start) = start {
                        let _ = latency_tx.send(at.saturating_duration_since(start));
                    }
                }
            }
        });
    }
    drop(latency_tx);
    for _ in 0..clients {
        ready_rx.recv().await.unwrap();
    }
    // Let the last subscriptions reach the hub.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_subscribed = rss_kib();

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
            .insert(id.to_string(), Instant::now());
        commands
            .execute::<Ticket>(TicketId(id).stream(), &command, &ctx)
            .await
            .unwrap();
        committed
            .lock()
            .unwrap()
            .insert(id.to_string(), Instant::now());
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
        "RSS (server + clients in one process): before clients {} MiB, subscribed {} MiB, after run {} MiB",
        rss_before / 1024,
        rss_subscribed / 1024,
        rss_peak / 1024
    );

    let _ = stop.send(true);
    serving.abort();
    let _ = projecting.await;
    pool.close().await;
    let admin = sqlx::PgPool::connect(&server_url).await.unwrap();
    sqlx::query(&format!("drop database if exists {database} with (force)"))
        .execute(&admin)
        .await
        .ok();
}
