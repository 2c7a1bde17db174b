//! A real Ledgerdesk server with its bot on, on a database of its own, talking to a
//! [`FakeTelegram`]; and the fixtures of `bot/tests/fixtures`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bot::config::BotConfig;
use eventlog::postgres::PostgresLog;
use ledgerdesk::{Application, Settings};
use secrecy::SecretString;
use serde_json::Value;
use sqlx::PgPool;

use crate::fake_telegram::{FakeTelegram, TOKEN};

/// The webhook secret every test server expects.
pub const SECRET: &str = "test-webhook-secret_42";

/// The webhook's path on the test server.
pub const WEBHOOK_PATH: &str = "/telegram/webhook";

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(20);

fn fresh_database(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let name = format!("ledgerdesk_bot_{tag}_{}_{nanos}", std::process::id());
    let server = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a Postgres superuser connection");
    let (base, query) = server
        .split_once('?')
        .map_or((server.as_str(), None), |(b, q)| (b, Some(q)));
    let base = &base[..base.rfind('/').unwrap()];
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// How the bot of a [`Desk`] receives updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// Telegram posts to our webhook.
    Webhook,
    /// We poll the fake's `getUpdates`.
    Polling,
}

/// A running Ledgerdesk with its bot on.
pub struct Desk {
    pub addr: SocketAddr,
    pub database_url: String,
    pub pool: PgPool,
    pub log: PostgresLog,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Desk {
    /// A server on a fresh database whose bot talks to `telegram`.
    pub async fn start(tag: &str, telegram: &FakeTelegram, receive: Receive) -> Desk {
        Desk::start_on(fresh_database(tag), telegram, receive).await
    }

    /// A server on the database at `database_url` (a restart keeps the database).
    pub async fn start_on(database_url: String, telegram: &FakeTelegram, receive: Receive) -> Desk {
        let mut config = BotConfig::polling(SecretString::from(TOKEN))
            .unwrap()
            .with_api_url(telegram.url())
            .with_poll_timeout(Duration::from_secs(1))
            .unwrap();
        if receive == Receive::Webhook {
            config = config
                .with_webhook(
                    &format!("https://desk.example{WEBHOOK_PATH}"),
                    Some(SecretString::from(SECRET)),
                )
                .unwrap();
        }
        let settings = Settings {
            database_url: SecretString::from(database_url.clone()),
            db_max_connections: 10,
            bind: "127.0.0.1:0".parse().unwrap(),
            api: api::ApiConfig::default(),
            bot: Some(config),
        };
        let app = Application::build(settings).await.unwrap();
        let addr = app.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let pool = PgPool::connect(&database_url).await.unwrap();
        Desk {
            addr,
            database_url,
            log: PostgresLog::new(pool.clone()),
            pool,
            http: reqwest::Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        }
    }

    /// Posts `body` to the webhook with `secret` (none: no header); returns the status.
    pub async fn post_raw(&self, body: &str, secret: Option<&str>) -> u16 {
        let mut request = self
            .http
            .post(format!("http://{}{WEBHOOK_PATH}", self.addr))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        request.send().await.unwrap().status().as_u16()
    }

    /// Posts an update with the right secret and expects 200.
    pub async fn post(&self, update: &Value) {
        let status = self.post_raw(&update.to_string(), Some(SECRET)).await;
        assert_eq!(status, 200, "webhook refused {update}");
    }

    /// How many events of `event_type` the log holds.
    pub async fn count(&self, event_type: &str) -> i64 {
        sqlx::query_scalar("select count(*) from events where event_type = $1")
            .bind(event_type)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// How many events the log holds.
    pub async fn events(&self) -> i64 {
        sqlx::query_scalar("select count(*) from events")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// The payloads of the events of `event_type`, in log order.
    pub async fn payloads(&self, event_type: &str) -> Vec<Value> {
        sqlx::query_scalar(
            "select payload from events where event_type = $1 order by tx_id, position",
        )
        .bind(event_type)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// Waits until the log holds `n` events of `event_type` (fails after [`PATIENCE`]).
    pub async fn wait_for(&self, event_type: &str, n: i64) {
        let started = Instant::now();
        loop {
            let seen = self.count(event_type).await;
            if seen >= n {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "waited for {n} {event_type}, saw {seen}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `sql` (returning one bigint) returns at least `n`.
    pub async fn wait_for_rows(&self, sql: &'static str, n: i64) {
        let started = Instant::now();
        loop {
            let seen: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap();
            if seen >= n {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "waited for {n} from {sql}, saw {seen}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the server, waits until it has stopped, and drops its database.
    pub async fn stop(self) {
        let database_url = self.stop_keeping_database().await;
        drop_database(&database_url).await;
    }

    /// Stops the server and waits until it has stopped, keeping its database for a
    /// [`Desk::start_on`]; returns the database's URL.
    pub async fn stop_keeping_database(mut self) -> String {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
        self.pool.close().await;
        self.database_url.clone()
    }
}

/// Drops the database `database_url` names, from the server `DATABASE_URL` names.
async fn drop_database(database_url: &str) {
    let path = database_url.split('?').next().unwrap_or(database_url);
    let name = &path[path.rfind('/').unwrap() + 1..];
    let server = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a Postgres superuser connection");
    let admin = PgPool::connect(&server).await.unwrap();
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
}

impl Drop for Desk {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The fixture `bot/tests/fixtures/<name>.json`.
pub fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("bot/tests/fixtures")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// The names of all fixtures whose name starts with `prefix`, sorted.
pub fn fixtures(prefix: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bot/tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// The fixture's sender (`from.id` of its message or callback query).
pub fn sender_of(update: &Value) -> i64 {
    for kind in [
        "message",
        "edited_message",
        "callback_query",
        "my_chat_member",
    ] {
        if let Some(id) = update[kind]["from"]["id"].as_i64() {
            return id;
        }
    }
    panic!("no sender in {update}");
}
