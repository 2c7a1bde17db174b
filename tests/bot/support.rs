//! A real Ledgerdesk server with its bot on, on a database of its own, talking to a
//! [`FakeTelegram`] (from `testkit`); and the fixtures of `bot/tests/fixtures`.

use std::path::PathBuf;
use std::time::Duration;

use bot::config::BotConfig;
use eventlog::postgres::PostgresLog;
use secrecy::SecretString;
use serde_json::Value;
use sqlx::PgPool;
use testkit::telegram::{FakeTelegram, TOKEN};
use testkit::{DatabaseName, TestApp, eventually};

/// The webhook secret every test server expects.
pub const SECRET: &str = "test-webhook-secret_42";

/// The webhook's path on the test server.
pub const WEBHOOK_PATH: &str = "/telegram/webhook";

/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How the bot of a [`Desk`] receives updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Receive {
    /// Telegram posts to our webhook.
    Webhook,
    /// We poll the fake's `getUpdates`.
    Polling,
}

/// A running Ledgerdesk with its bot on. Its database goes with it, also when the test fails.
pub struct Desk {
    pub app: TestApp,
    pub pool: PgPool,
    pub log: PostgresLog,
    pub http: reqwest::Client,
}

impl Desk {
    /// A server on a fresh database whose bot talks to `telegram`.
    pub async fn start(tag: &str, telegram: &FakeTelegram, receive: Receive) -> Desk {
        Desk::start_on(
            DatabaseName::fresh(&format!("bot_{tag}")),
            telegram,
            receive,
        )
        .await
    }

    /// A server on `database` (a restart keeps the database).
    pub async fn start_on(
        database: DatabaseName,
        telegram: &FakeTelegram,
        receive: Receive,
    ) -> Desk {
        Desk::start_configured(database, telegram, receive, |config| config).await
    }

    /// A server on `database` whose bot settings `configure` changes.
    pub async fn start_configured(
        database: DatabaseName,
        telegram: &FakeTelegram,
        receive: Receive,
        configure: impl FnOnce(BotConfig) -> BotConfig,
    ) -> Desk {
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
        let config = configure(config);
        let app = TestApp::spawn(database, |settings| settings.bot = Some(config)).await;
        let pool = app.pool().clone();
        Desk {
            log: PostgresLog::new(pool.clone()),
            pool,
            app,
            http: reqwest::Client::new(),
        }
    }

    /// Posts `body` to the webhook with `secret` (none: no header); returns the status.
    pub async fn post_raw(&self, body: &str, secret: Option<&str>) -> u16 {
        let mut request = self
            .http
            .post(self.app.url(WEBHOOK_PATH))
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

    /// The payloads of the events of `event_type`, in log order, as the log reads them
    /// (personal fields opened).
    pub async fn payloads(&self, event_type: &str) -> Vec<Value> {
        let filter = eventlog::postgres::EventFilter {
            types: Some(vec![event_type.to_owned()]),
            ..eventlog::postgres::EventFilter::default()
        };
        let mut payloads = Vec::new();
        let mut after = eventlog::Position::START;
        loop {
            let page = self
                .log
                .read_filtered(after, 1_000, &filter, eventlog::limits::PAGE_SIZE)
                .await
                .unwrap();
            payloads.extend(page.events.into_iter().map(|event| event.payload));
            after = page.next;
            if !page.more {
                return payloads;
            }
        }
    }

    /// Waits until the log holds `n` events of `event_type` (fails after [`PATIENCE`]).
    pub async fn wait_for(&self, event_type: &str, n: i64) {
        eventually(
            async || {
                let seen = self.count(event_type).await;
                if seen >= n {
                    Ok(())
                } else {
                    Err(format!("waited for {n} {event_type}, saw {seen}"))
                }
            },
            PATIENCE,
        )
        .await;
    }

    /// Waits until `sql` (returning one bigint) returns at least `n`.
    pub async fn wait_for_rows(&self, sql: &'static str, n: i64) {
        eventually(
            async || {
                let seen: i64 = sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap();
                if seen >= n {
                    Ok(())
                } else {
                    Err(format!("waited for {n} from {sql}, saw {seen}"))
                }
            },
            PATIENCE,
        )
        .await;
    }

    /// Stops the server, waits until it has stopped, and drops its database.
    pub async fn stop(self) {
        drop(self.stop_keeping_database().await);
    }

    /// Stops the server and waits until it has stopped, keeping its database for a
    /// [`Desk::start_on`]; the database goes once the value returned goes.
    pub async fn stop_keeping_database(self) -> DatabaseName {
        self.app.stop().await
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
