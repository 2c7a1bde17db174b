//! The agents' web app end to end: the real server (with its bot on a webhook, talking to
//! the fake Bot API) on a fresh database, and the panel it serves driven in Debian's Chromium
//! by the scenarios of `panel/e2e/` (Node.js with `playwright-core`; no browser is
//! downloaded). Each scenario saves screenshots of the screens it passes through, at
//! 1280×800 and at phone width, under `<target>/tmp/panel-screenshots/<test>/`.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

mod http;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::auth::{AuthConfig, AuthService, NewAgent};
use app::commands::CommandService;
use bot::config::BotConfig;
use domain::agent::Role;
use eventlog::postgres::PostgresLog;
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::PgPool;
use testkit::telegram::{FakeTelegram, FileServing, TOKEN};
use testkit::{DatabaseName, TestApp, eventually};

const SECRET: &str = "panel-webhook-secret";
const WEBHOOK_PATH: &str = "/telegram/webhook";
const PASSWORD: &str = "correct horse battery staple";
const PATIENCE: Duration = Duration::from_secs(20);

/// One browser at a time: the machine's cores go to the server and the page under test.
static BROWSER: Mutex<()> = Mutex::new(());

/// Changes a test makes to the server's settings (media, token lifetimes), kept for restarts.
type Configure = Arc<dyn Fn(&mut ledgerdesk::Settings) + Send + Sync>;

struct Desk {
    app: TestApp,
    telegram: FakeTelegram,
    http: reqwest::Client,
    configure: Configure,
}

impl Desk {
    async fn start(tag: &str) -> Desk {
        Desk::start_with(tag, |_| {}).await
    }

    /// As [`Desk::start`], with settings changed by `configure`.
    async fn start_with(
        tag: &str,
        configure: impl Fn(&mut ledgerdesk::Settings) + Send + Sync + 'static,
    ) -> Desk {
        if !api::panel::BUILT {
            panic!(
                "this build has no panel: build it first (`npm ci && npm run build` in panel/; \
                 scripts/test.sh does), then run the tests again"
            );
        }
        let telegram = FakeTelegram::start().await;
        let configure: Configure = Arc::new(configure);
        let database = DatabaseName::fresh(&format!("panel_{tag}"));
        let app = Desk::spawn(database, &telegram, &configure, None).await;
        Desk {
            app,
            telegram,
            http: reqwest::Client::new(),
            configure,
        }
    }

    /// The server on `database`, on `addr` when given (a restart keeps the address).
    async fn spawn(
        database: DatabaseName,
        telegram: &FakeTelegram,
        configure: &Configure,
        addr: Option<std::net::SocketAddr>,
    ) -> TestApp {
        let config = BotConfig::polling(SecretString::from(TOKEN))
            .unwrap()
            .with_api_url(telegram.url())
            .with_webhook(
                &format!("https://desk.example{WEBHOOK_PATH}"),
                Some(SecretString::from(SECRET)),
            )
            .unwrap();
        TestApp::spawn(database, |settings| {
            settings.bot = Some(config);
            settings.db_max_connections = 8;
            if let Some(addr) = addr {
                settings.bind = addr;
            }
            configure(settings);
        })
        .await
    }

    /// Stops the server (its sockets close), runs `meanwhile` on its database, and starts it
    /// again on the same address.
    async fn restart(self, meanwhile: impl AsyncFnOnce(&PgPool)) -> Desk {
        let Desk {
            app,
            telegram,
            http,
            configure,
        } = self;
        let addr = app.addr();
        let database = app.stop().await;
        let pool = PgPool::connect_with(database.connect_options())
            .await
            .unwrap();
        meanwhile(&pool).await;
        pool.close().await;
        let app = Desk::spawn(database, &telegram, &configure, Some(addr)).await;
        Desk {
            app,
            telegram,
            http,
            configure,
        }
    }

    async fn gql(&self, token: &str, query: &str, variables: Value) -> Value {
        let body: Value = self
            .http
            .post(self.app.url("/graphql"))
            .bearer_auth(token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(body.get("errors").is_none(), "{query}: {body:#}");
        body["data"].clone()
    }

    /// Creates an agent as `ledgerdesk admin create` does; `None`: a one-time password,
    /// returned.
    async fn agent(&self, role: Role, email: &str, password: Option<&str>) -> (String, String) {
        let commands = CommandService::new(PostgresLog::new(self.app.pool().clone()));
        let auth = AuthService::new(commands, None, AuthConfig::default())
            .await
            .unwrap();
        let ctx = app::commands::CommandContext::new(eventlog::Actor::system("test"));
        let created = auth
            .create_agent(
                NewAgent {
                    email: email.to_owned(),
                    name: email.split('@').next().unwrap().to_owned(),
                    role,
                    password: password.map(str::to_owned),
                    by: None,
                },
                &ctx,
            )
            .await
            .unwrap();
        let password = created
            .one_time_password
            .unwrap_or_else(|| password.unwrap().to_owned());
        (created.agent_id.to_string(), password)
    }

    async fn login(&self, email: &str) -> String {
        let body: Value = self
            .http
            .post(self.app.url("/graphql"))
            .json(&json!({
                "query": "mutation($input: LoginInput!) { login(input: $input) { accessToken } }",
                "variables": { "input": { "email": email, "password": PASSWORD } },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["data"]["login"]["accessToken"]
            .as_str()
            .unwrap_or_else(|| panic!("login: {body}"))
            .to_owned()
    }

    /// An update posted to the bot's webhook, as Telegram would.
    async fn post_update(&self, update: &Value) {
        let status = self
            .http
            .post(self.app.url(WEBHOOK_PATH))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .json(update)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{update}");
    }

    /// A customer's text message through the webhook.
    async fn customer_writes(&self, update_id: i64, customer: i64, name: &str, text: &str) {
        let update = json!({
            "update_id": update_id,
            "message": {
                "message_id": update_id,
                "from": { "id": customer, "is_bot": false, "first_name": name, "language_code": "en" },
                "chat": { "id": customer, "first_name": name, "type": "private" },
                "date": chrono::Utc::now().timestamp(),
                "text": text,
            }
        });
        let status = self
            .http
            .post(self.app.url(WEBHOOK_PATH))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .json(&update)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
    }

    /// What every scenario is told: where the server and its webhook are.
    fn config(&self, test: &str) -> Value {
        json!({
            "base": self.app.url(""),
            "webhook": self.app.url(WEBHOOK_PATH),
            "secret": SECRET,
            "screenshots": screenshots(test),
        })
    }

    async fn stop(self) {
        self.app.stop().await;
    }
}

/// Where a test's screenshots go (printed, so a person can find them).
fn screenshots(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("panel-screenshots")
        .join(test);
    eprintln!("screenshots of {test}: {}", dir.display());
    dir
}

fn panel_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("panel")
}

/// Installs the panel's packages (`npm ci`) once, when `scripts/test.sh` has not already.
fn ensure_installed() {
    static INSTALLED: Mutex<bool> = Mutex::new(false);
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if *installed || panel_dir().join("node_modules/playwright-core").is_dir() {
        *installed = true;
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(panel_dir())
        .status()
        .expect("npm runs (Node.js and npm are needed for the browser tests)");
    assert!(status.success(), "npm ci in panel/ failed");
    *installed = true;
}

/// Runs `panel/e2e/<scenario>.mjs` with `config` and answers the JSON line it printed.
async fn scenario(name: &str, config: Value) -> Value {
    let script = panel_dir().join("e2e").join(format!("{name}.mjs"));
    tokio::task::spawn_blocking(move || {
        ensure_installed();
        assert!(
            Path::new("/usr/bin/chromium").exists() || std::env::var_os("CHROMIUM").is_some(),
            "the browser tests need Debian's Chromium: apt-get install chromium \
             (scripts/test.sh installs it)"
        );
        let _one_at_a_time = BROWSER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let output = Command::new("node")
            .arg(&script)
            .arg(config.to_string())
            .output()
            .expect("node runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let result: Value = stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| panic!("{script:?} printed no result:\n{stdout}\n{stderr}"));
        assert!(
            output.status.success() && result["ok"] == json!(true),
            "{}\n{stderr}\nscreenshots: {}",
            result["error"].as_str().unwrap_or_default(),
            config["screenshots"]
        );
        result
    })
    .await
    .unwrap()
}

async fn wait_for_tickets(desk: &Desk, token: &str, n: usize) -> Vec<Value> {
    eventually(
        async || {
            let data = desk
                .gql(
                    token,
                    "{ tickets(first: 10, orderBy: CREATED_AT_ASC) { nodes { ticketId subject } } }",
                    json!({}),
                )
                .await;
            let nodes = data["tickets"]["nodes"].as_array().cloned().unwrap_or_default();
            if nodes.len() >= n {
                Ok(nodes)
            } else {
                Err(format!("waited for {n} tickets, saw {}", nodes.len()))
            }
        },
        PATIENCE,
    )
    .await
}

#[tokio::test]
async fn a_new_ticket_appears_live_and_is_answered_with_a_template_noted_and_resolved() {
    let desk = Desk::start("works").await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    let token = desk.login("admin@example.com").await;
    let template_text = "We are sorry about the parcel: a new one leaves today.";
    desk.gql(
        &token,
        "mutation($input: CreateTemplateInput!) { createTemplate(input: $input) { templateId } }",
        json!({ "input": { "title": "Parcel lost", "text": template_text } }),
    )
    .await;

    let mut config = desk.config("works");
    config["admin"] = json!({ "email": "admin@example.com", "password": PASSWORD });
    config["template"] = json!({ "title": "Parcel lost", "text": template_text });
    let result = scenario("agent-works-a-ticket", config).await;
    let appeared = result["appearedMs"].as_u64().unwrap();
    eprintln!("customer message to a row in the open inbox: {appeared} ms");
    assert!(appeared <= 1_000, "the ticket took {appeared} ms to appear");

    // Telegram got the template's text in the customer's chat, then the rating prompt;
    // the internal note never left the desk.
    let sends = desk
        .telegram
        .wait_for_calls("sendMessage", 2, PATIENCE)
        .await;
    let reply = sends
        .iter()
        .find(|call| call.param("text").as_deref() == Some(template_text))
        .unwrap_or_else(|| panic!("no reply with the template: {sends:#?}"));
    assert_eq!(reply.chat_id(), Some(7001));
    let prompt = sends
        .iter()
        .find(|call| call.json_param("reply_markup").is_some())
        .unwrap_or_else(|| panic!("no rating prompt: {sends:#?}"));
    let markup = prompt.json_param("reply_markup").unwrap();
    let buttons: usize = markup["inline_keyboard"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().len())
        .sum();
    assert_eq!(buttons, 5, "{markup}");
    for call in desk.telegram.calls() {
        assert!(
            !call.params.to_string().contains("in the depot"),
            "the note reached Telegram: {call:?}"
        );
    }
    desk.stop().await;
}

#[tokio::test]
async fn a_first_password_is_changed_and_an_ended_session_keeps_the_half_written_reply() {
    let desk = Desk::start("sessions").await;
    let (_, one_time) = desk.agent(Role::Agent, "newcomer@example.com", None).await;
    let mut config = desk.config("sessions");
    config["newcomer"] = json!({
        "email": "newcomer@example.com",
        "oneTimePassword": one_time,
        "newPassword": "a new password of my own",
    });
    scenario("sessions", config).await;
    desk.stop().await;
}

#[tokio::test]
async fn an_auditor_reads_only_a_limited_agent_sees_their_category_and_assignments_show_live() {
    let desk = Desk::start("roles").await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    desk.agent(Role::Auditor, "auditor@example.com", Some(PASSWORD))
        .await;
    let (limited, _) = desk
        .agent(Role::Agent, "limited@example.com", Some(PASSWORD))
        .await;
    let token = desk.login("admin@example.com").await;
    let mut categories = Vec::new();
    let mut written = Value::Null;
    for name in ["Billing", "Shipping"] {
        let data = desk
            .gql(
                &token,
                "mutation($input: CreateCategoryInput!) { createCategory(input: $input) { categoryId position } }",
                json!({ "input": { "name": name } }),
            )
            .await;
        categories.push(
            data["createCategory"]["categoryId"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        written = data["createCategory"]["position"].clone();
    }
    // The categories are checked against the read model: wait until it has them.
    desk.gql(
        &token,
        "query($at: String!) { categories(consistency: {atLeast: $at}) { categoryId } }",
        json!({ "at": written }),
    )
    .await;
    desk.gql(
        &token,
        "mutation($input: SetAgentCategoriesInput!) { setAgentCategories(input: $input) { position } }",
        json!({ "input": { "agentId": limited, "categoryIds": [categories[0]] } }),
    )
    .await;
    desk.customer_writes(1, 8001, "Ivan", "I was charged twice")
        .await;
    desk.customer_writes(2, 8002, "Olga", "The box arrived broken")
        .await;
    let tickets = wait_for_tickets(&desk, &token, 2).await;
    for (ticket, category) in tickets.iter().zip(&categories) {
        desk.gql(
            &token,
            "mutation($input: SetTicketCategoryInput!) { setTicketCategory(input: $input) { position } }",
            json!({ "input": { "ticketId": ticket["ticketId"], "categoryId": category } }),
        )
        .await;
    }
    let mut config = desk.config("roles");
    config["admin"] =
        json!({ "email": "admin@example.com", "password": PASSWORD, "name": "admin" });
    config["auditor"] = json!({ "email": "auditor@example.com", "password": PASSWORD });
    config["limited"] = json!({ "email": "limited@example.com", "password": PASSWORD });
    config["tickets"] = json!({
        "billing": "I was charged twice",
        "other": "The box arrived broken",
        "otherId": tickets[1]["ticketId"],
    });
    scenario("roles", config).await;
    desk.stop().await;
}

/// Every `message_*` fixture of the bot's tests, then the edit of the first text, as one
/// customer's messages: each update gets its own id, and every message the same sender.
fn every_kind_from(customer: i64) -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bot/tests/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("message_") || name == "edited_message.json")
        .collect();
    names.sort();
    // The edit after the message it edits.
    names.sort_by_key(|name| name == "edited_message.json");
    names
        .iter()
        .zip(1_i64..)
        .map(|(name, n)| {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            let mut update: Value = serde_json::from_str(&text).unwrap();
            update["update_id"] = json!(700_000 + n);
            let key = if update.get("edited_message").is_some() {
                "edited_message"
            } else {
                "message"
            };
            let message = &mut update[key];
            if key == "message" && name != "message_text.json" {
                message["message_id"] = json!(10_000 + n);
            }
            message["from"]["id"] = json!(customer);
            message["chat"]["id"] = json!(customer);
            update
        })
        .collect()
}

#[tokio::test]
async fn every_kind_of_customer_message_shows_with_what_telegram_told_about_it() {
    let desk = Desk::start("kinds").await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    let updates = every_kind_from(9001);
    for update in &updates {
        let status = desk
            .http
            .post(desk.app.url(WEBHOOK_PATH))
            .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
            .json(update)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{update}");
    }
    let token = desk.login("admin@example.com").await;
    let tickets = wait_for_tickets(&desk, &token, 1).await;
    let messages = updates
        .iter()
        .filter(|update| update.get("message").is_some())
        .count();
    let mut config = desk.config("kinds");
    config["admin"] = json!({ "email": "admin@example.com", "password": PASSWORD });
    config["ticketId"] = tickets[0]["ticketId"].clone();
    config["messages"] = json!(messages);
    scenario("every-kind", config).await;
    desk.stop().await;
}

#[tokio::test]
async fn a_russian_browser_gets_the_panel_in_russian_and_the_agent_switches_to_english() {
    let desk = Desk::start("languages").await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    desk.customer_writes(1, 8101, "Пётр", "Где мой заказ?")
        .await;
    let token = desk.login("admin@example.com").await;
    wait_for_tickets(&desk, &token, 1).await;
    let mut config = desk.config("languages");
    config["admin"] = json!({ "email": "admin@example.com", "password": PASSWORD });
    scenario("languages", config).await;
    desk.stop().await;
}

/// A 16×12 red PNG.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x0c, 0x08, 0x02, 0x00, 0x00, 0x00, 0xe4, 0x85, 0xaa,
    0xd6, 0x00, 0x00, 0x00, 0x15, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x38, 0xa1, 0xa1, 0x41,
    0x12, 0x62, 0x18, 0xd5, 0x30, 0xaa, 0x01, 0x3b, 0x02, 0x00, 0xb4, 0x6b, 0xd2, 0x01, 0xf4, 0xe1,
    0x65, 0x24, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

/// One second of silence as 8 kHz 8-bit mono WAV: an audio file every browser decodes.
fn wav() -> Vec<u8> {
    let samples: u32 = 8_000;
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"RIFF");
    bytes.extend_from_slice(&(36 + samples).to_le_bytes());
    bytes.extend_from_slice(b"WAVEfmt ");
    bytes.extend_from_slice(&16_u32.to_le_bytes());
    bytes.extend_from_slice(&1_u16.to_le_bytes()); // PCM
    bytes.extend_from_slice(&1_u16.to_le_bytes()); // mono
    bytes.extend_from_slice(&8_000_u32.to_le_bytes()); // samples a second
    bytes.extend_from_slice(&8_000_u32.to_le_bytes()); // bytes a second
    bytes.extend_from_slice(&1_u16.to_le_bytes()); // bytes a frame
    bytes.extend_from_slice(&8_u16.to_le_bytes()); // bits a sample
    bytes.extend_from_slice(b"data");
    bytes.extend_from_slice(&samples.to_le_bytes());
    bytes.resize(bytes.len() + samples as usize, 0x80);
    bytes
}

/// A message of customer 8201 with `fields` (text, photo, voice…).
fn customer_message(update_id: i64, fields: Value) -> Value {
    let mut message = json!({
        "message_id": update_id,
        "from": { "id": 8201, "is_bot": false, "first_name": "Nadia", "language_code": "ru" },
        "chat": { "id": 8201, "first_name": "Nadia", "type": "private" },
        "date": chrono::Utc::now().timestamp(),
    });
    for (key, value) in fields.as_object().unwrap() {
        message[key] = value.clone();
    }
    json!({ "update_id": update_id, "message": message })
}

#[tokio::test]
async fn formatted_texts_photos_voice_and_files_show_and_an_agent_sends_files() {
    let dir = std::env::temp_dir().join(format!("ledgerdesk-panel-media-{}", uuid::Uuid::now_v7()));
    let store = dir.clone();
    let desk = Desk::start_with("media", move |settings| {
        settings.api.media = Some(media::MediaConfig {
            backend: media::Backend::Local { dir: store.clone() },
            // Short enough that the test sees a URL expire while the page is open.
            url_ttl: Duration::from_secs(4),
            ..media::MediaConfig::default()
        });
    })
    .await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    let wav = wav();
    let pdf = b"%PDF-1.4\n% an invoice\n".to_vec();
    desk.telegram
        .add_file("photo-thumb", PNG.to_vec(), FileServing::Normal);
    desk.telegram
        .add_file("photo-full", PNG.to_vec(), FileServing::Normal);
    desk.telegram
        .add_file("voice-1", wav.clone(), FileServing::Normal);
    desk.telegram
        .add_file("invoice-1", pdf.clone(), FileServing::Normal);
    desk.telegram
        .add_file("huge-1", b"never served".to_vec(), FileServing::TooBig);
    // 👋 is two UTF-16 code units: every offset after it counts them so.
    let text = "👋 Привет! See the docs, run ls, or click here. Secret: 42";
    let units = |part: &str| -> usize {
        let at = text.find(part).unwrap();
        text[..at].encode_utf16().count()
    };
    let length = |part: &str| part.encode_utf16().count();
    let updates = [
        customer_message(
            1,
            json!({
                "text": text,
                "entities": [
                    { "type": "bold", "offset": units("Привет"), "length": length("Привет!") },
                    { "type": "italic", "offset": units("Привет"), "length": length("Привет") },
                    { "type": "text_link", "offset": units("docs"), "length": 4,
                      "url": "https://example.com/docs" },
                    { "type": "code", "offset": units("ls"), "length": 2 },
                    { "type": "text_link", "offset": units("here"), "length": 4,
                      "url": "javascript:alert(1)" },
                    { "type": "spoiler", "offset": units("42"), "length": 2 },
                ],
            }),
        ),
        customer_message(
            2,
            json!({
                "photo": [
                    { "file_id": "photo-thumb", "file_unique_id": "u-photo-thumb",
                      "width": 16, "height": 12, "file_size": PNG.len() },
                    { "file_id": "photo-full", "file_unique_id": "u-photo-full",
                      "width": 16, "height": 12, "file_size": PNG.len() },
                ],
                "caption": "the broken box",
                "caption_entities": [{ "type": "underline", "offset": 4, "length": 6 }],
            }),
        ),
        customer_message(
            3,
            json!({ "voice": { "file_id": "voice-1", "file_unique_id": "u-voice-1", "duration": 1,
                "mime_type": "audio/wav", "file_size": wav.len() } }),
        ),
        customer_message(
            4,
            json!({ "document": { "file_id": "invoice-1", "file_unique_id": "u-invoice-1",
                "file_name": "invoice.pdf", "mime_type": "application/pdf", "file_size": pdf.len() } }),
        ),
        customer_message(
            5,
            json!({ "document": { "file_id": "huge-1", "file_unique_id": "u-huge-1",
                "file_name": "backup.zip", "mime_type": "application/zip", "file_size": 31_457_280 } }),
        ),
    ];
    for update in &updates {
        desk.post_update(update).await;
    }
    let token = desk.login("admin@example.com").await;
    let tickets = wait_for_tickets(&desk, &token, 1).await;
    let mut config = desk.config("media");
    config["admin"] = json!({ "email": "admin@example.com", "password": PASSWORD });
    config["ticketId"] = tickets[0]["ticketId"].clone();
    config["text"] = json!(text);
    config["pdfBytes"] = json!(pdf.len());
    let result = scenario("media", config).await;
    eprintln!("media scenario: {result}");

    // The agent's files reached Telegram as uploads by the method of their kind.
    let documents = desk
        .telegram
        .wait_for_calls("sendDocument", 1, PATIENCE)
        .await;
    assert_eq!(documents[0].chat_id(), Some(8201));
    let photos = desk.telegram.wait_for_calls("sendPhoto", 1, PATIENCE).await;
    assert_eq!(photos[0].chat_id(), Some(8201));
    desk.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_short_lived_access_token_is_renewed_silently_while_the_agent_works() {
    let desk = Desk::start_with("refresh", |settings| {
        settings.api.auth.access_ttl = Duration::from_secs(10);
    })
    .await;
    desk.agent(Role::Agent, "agent@example.com", Some(PASSWORD))
        .await;
    desk.customer_writes(1, 8301, "Rosa", "Is my parcel insured?")
        .await;
    let mut config = desk.config("refresh");
    config["agent"] = json!({ "email": "agent@example.com", "password": PASSWORD });
    let marker = Path::new(config["screenshots"].as_str().unwrap()).join("renewed-twice");
    let _ = std::fs::remove_file(&marker);
    let run = tokio::spawn(scenario("refresh", config.clone()));
    // Once the panel has renewed its token twice, the customer writes again: the live view
    // (signed with a renewed token) shows it.
    eventually(async || marker.exists(), Duration::from_secs(60)).await;
    desk.customer_writes(2, 8301, "Rosa", "Also, can you gift-wrap it?")
        .await;
    run.await.unwrap();
    let replies = desk
        .telegram
        .wait_for_calls("sendMessage", 1, PATIENCE)
        .await;
    assert!(
        replies
            .iter()
            .any(|call| call.param("text").as_deref() == Some("Yes, it is insured.")),
        "{replies:#?}"
    );
    desk.stop().await;
}

#[tokio::test]
async fn the_live_view_reconnects_after_a_server_restart_and_shows_what_came_meanwhile() {
    let desk = Desk::start("reconnect").await;
    desk.agent(Role::Agent, "agent@example.com", Some(PASSWORD))
        .await;
    desk.customer_writes(1, 8401, "Lev", "My order has not shipped")
        .await;
    let mut config = desk.config("reconnect");
    config["agent"] = json!({ "email": "agent@example.com", "password": PASSWORD });
    let dir = PathBuf::from(config["screenshots"].as_str().unwrap());
    // Markers the scenario and the test leave each other (of an earlier run too).
    for marker in ["restart-now", "saw-reconnecting", "restarted"] {
        let _ = std::fs::remove_file(dir.join(marker));
    }
    let run = tokio::spawn(scenario("reconnect", config.clone()));
    let ready = dir.join("restart-now");
    eventually(async || ready.exists(), Duration::from_secs(60)).await;
    // The server stays down until the panel shows it lost the connection. Meanwhile the
    // customer writes again (recorded in the log as another instance of Ledgerdesk would):
    // the panel learns of it only by resuming its feeds.
    let noticed = dir.join("saw-reconnecting");
    let desk = desk
        .restart(async |pool: &PgPool| {
            eventually(async || noticed.exists(), Duration::from_secs(30)).await;
            record_customer_message(pool, 8401, "Lev", "Any news? It has been a week.").await;
        })
        .await;
    std::fs::write(dir.join("restarted"), b"").unwrap();
    run.await.unwrap();
    desk.stop().await;
}

/// A customer's text recorded straight into the log (the server may be down).
async fn record_customer_message(pool: &PgPool, customer: i64, name: &str, text: &str) {
    use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
    use domain::customer::CustomerProfile;
    use domain::flow::RouteCustomerMessage;
    use domain::ticket::Channel;
    use domain::{CustomerId, MessageId, TicketId};

    CommandService::new(PostgresLog::new(pool.clone()))
        .route_customer_message(
            &RouteCustomerMessage {
                customer: CustomerId(customer),
                profile: CustomerProfile {
                    first_name: name.to_owned(),
                    last_name: None,
                    username: None,
                    language_code: Some("en".into()),
                },
                category: None,
                new_ticket_id: TicketId(uuid::Uuid::now_v7()),
                channel: Channel::Telegram,
                message: CustomerMessage {
                    message_id: MessageId(uuid::Uuid::now_v7()),
                    telegram_message_id: TelegramMessageId(90_001),
                    reply_to: None,
                    content: MessageContent::text(text),
                },
                reopen_window: chrono::TimeDelta::days(7),
                at: chrono::Utc::now(),
            },
            &app::commands::CommandContext::new(eventlog::Actor::system("test")),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn an_agent_the_team_requires_a_second_factor_of_enrols_then_signs_in_with_a_code() {
    let desk = Desk::start("second_factor").await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    desk.agent(Role::Agent, "agent@example.com", Some(PASSWORD))
        .await;
    let token = desk.login("admin@example.com").await;
    desk.gql(
        &token,
        "mutation { setTwoFactorPolicy(input: { policy: EVERYONE }) { policy } }",
        json!({}),
    )
    .await;
    let mut config = desk.config("second_factor");
    config["agent"] = json!({ "email": "agent@example.com", "password": PASSWORD });
    scenario("second-factor", config).await;
    desk.stop().await;
}

/// Waits until the dashboard counts `resolved` resolved tickets and has both medians.
async fn wait_for_dashboard(desk: &Desk, token: &str, resolved: i64) -> Value {
    eventually(
        async || {
            let data = desk
                .gql(
                    token,
                    "{ dashboard(days: 30) { totalTickets byStatus { status tickets } \
                       medianFirstResponseSeconds medianResolutionSeconds } }",
                    json!({}),
                )
                .await;
            let dashboard = data["dashboard"].clone();
            let counted = dashboard["byStatus"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|count| count["status"] == "RESOLVED")
                .and_then(|count| count["tickets"].as_i64())
                .unwrap_or(0);
            if counted == resolved
                && !dashboard["medianFirstResponseSeconds"].is_null()
                && !dashboard["medianResolutionSeconds"].is_null()
            {
                Ok(dashboard)
            } else {
                Err(format!("the dashboard is not there yet: {dashboard}"))
            }
        },
        PATIENCE,
    )
    .await
}

#[tokio::test]
async fn the_dashboard_counts_the_tickets_and_charts_the_daily_medians() {
    let desk = Desk::start("dashboard").await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    desk.agent(Role::Agent, "agent@example.com", Some(PASSWORD))
        .await;
    let token = desk.login("admin@example.com").await;
    let category = desk
        .gql(
            &token,
            "mutation($input: CreateCategoryInput!) { createCategory(input: $input) { categoryId position } }",
            json!({ "input": { "name": "Billing" } }),
        )
        .await;
    desk.gql(
        &token,
        "query($at: String!) { categories(consistency: {atLeast: $at}) { categoryId } }",
        json!({ "at": category["createCategory"]["position"] }),
    )
    .await;
    desk.customer_writes(11, 8101, "Ivan", "I was charged twice")
        .await;
    desk.customer_writes(12, 8102, "Olga", "Where is my parcel?")
        .await;
    desk.customer_writes(13, 8103, "Anna", "How do I change my address?")
        .await;
    let tickets = wait_for_tickets(&desk, &token, 3).await;
    // The first ticket is filed, answered and resolved: one first response, one resolution.
    let first = &tickets[0]["ticketId"];
    for (query, input) in [
        (
            "mutation($input: SetTicketCategoryInput!) { setTicketCategory(input: $input) { position } }",
            json!({ "ticketId": first, "categoryId": category["createCategory"]["categoryId"] }),
        ),
        (
            "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { position } }",
            json!({ "ticketId": first, "text": "Refunded, sorry about that." }),
        ),
        (
            "mutation($input: ChangeTicketStatusInput!) { changeTicketStatus(input: $input) { position } }",
            json!({ "ticketId": first, "status": "RESOLVED" }),
        ),
    ] {
        desk.gql(&token, query, json!({ "input": input })).await;
    }
    let dashboard = wait_for_dashboard(&desk, &token, 1).await;
    assert_eq!(dashboard["totalTickets"], 3, "{dashboard}");

    let mut config = desk.config("dashboard");
    config["admin"] = json!({ "email": "admin@example.com", "password": PASSWORD });
    config["agent"] = json!({ "email": "agent@example.com", "password": PASSWORD });
    scenario("dashboard", config).await;
    desk.stop().await;
}

#[tokio::test]
async fn an_admin_sets_up_categories_templates_agents_the_greeting_and_api_tokens() {
    let desk = Desk::start("admin").await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    desk.agent(Role::Agent, "agent@example.com", Some(PASSWORD))
        .await;
    desk.agent(Role::Agent, "leaver@example.com", Some(PASSWORD))
        .await;
    desk.customer_writes(21, 8201, "Boris", "Can I send the boots back?")
        .await;
    let token = desk.login("admin@example.com").await;
    wait_for_tickets(&desk, &token, 1).await;

    let greeting = "Hello! Tell us what happened and we answer within the hour.";
    let mut config = desk.config("admin");
    config["admin"] = json!({ "email": "admin@example.com", "password": PASSWORD });
    config["agent"] = json!({ "email": "agent@example.com", "password": PASSWORD });
    config["invitee"] = json!({ "name": "Nina", "email": "nina@example.com" });
    config["leaver"] = json!({ "email": "leaver@example.com" });
    config["template"] = json!({
        "title": "Returns label",
        "text": "Print the label we emailed you and drop the parcel at any post office.",
    });
    config["greeting"] = json!(greeting);
    config["tokenName"] = json!("CRM sync");
    let result = scenario("admin", config).await;

    // What the screens did is what the server holds.
    let data = desk
        .gql(
            &token,
            "{ agents(includeInactive: true) { email role categoryIds active } categories { categoryId name } \
               templates { title } apiTokens { name scopes lastUsedAt revokedAt } \
               botTexts(language: \"en\") { key customText } }",
            json!({}),
        )
        .await;
    let returns = data["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|category| category["name"] == "Returns")
        .unwrap_or_else(|| panic!("no Returns category: {data:#}"));
    assert!(
        data["categories"]
            .as_array()
            .unwrap()
            .iter()
            .all(|category| category["name"] != "Old stuff"),
        "the removed category is gone: {data:#}"
    );
    let nina = data["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|agent| agent["email"] == "nina@example.com")
        .unwrap_or_else(|| panic!("Nina was not invited: {data:#}"));
    assert_eq!(nina["role"], "AUDITOR");
    assert_eq!(nina["categoryIds"], json!([returns["categoryId"]]));
    let leaver = data["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|agent| agent["email"] == "leaver@example.com")
        .unwrap();
    assert_eq!(leaver["active"], false, "{data:#}");
    assert!(
        data["templates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|template| template["title"] == "Returns label"),
        "{data:#}"
    );
    let api_token = &data["apiTokens"][0];
    assert_eq!(api_token["name"], "CRM sync");
    assert_eq!(
        api_token["scopes"],
        json!(["tickets:read", "dashboard:read"])
    );
    assert!(!api_token["lastUsedAt"].is_null(), "it was used: {data:#}");
    assert!(!api_token["revokedAt"].is_null(), "it is revoked: {data:#}");
    let english = data["botTexts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|text| text["key"] == "GREETING")
        .unwrap();
    assert_eq!(english["customText"], greeting);

    // The secret the screen showed is refused now.
    let secret = result["token"].as_str().unwrap();
    let refused: Value = desk
        .http
        .post(desk.app.url("/graphql"))
        .bearer_auth(secret)
        .json(&json!({ "query": "{ dashboard { totalTickets } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
    // The one-time password the screen showed signs Nina in, to choose her own.
    let signed_in: Value = desk
        .http
        .post(desk.app.url("/graphql"))
        .json(&json!({
            "query": "mutation($input: LoginInput!) { login(input: $input) { mustChangePassword } }",
            "variables": { "input": {
                "email": "nina@example.com",
                "password": result["oneTimePassword"],
            } },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        signed_in["data"]["login"]["mustChangePassword"], true,
        "{signed_in}"
    );
    desk.stop().await;
}

#[tokio::test]
async fn a_broadcast_started_from_the_panel_shows_its_progress_and_reaches_every_customer() {
    // Two messages a second for the whole bot: the broadcast runs for a few seconds, long
    // enough to pause it from the panel and to watch its bar move.
    let desk = Desk::start_with("broadcasts", |settings| {
        let bot = settings.bot.take().unwrap();
        settings.bot = Some(bot.with_messages_per_second(2).unwrap());
    })
    .await;
    desk.agent(Role::Agent, "writer@example.com", Some(PASSWORD))
        .await;
    desk.agent(Role::Auditor, "auditor@example.com", Some(PASSWORD))
        .await;
    desk.agent(Role::Admin, "admin@example.com", Some(PASSWORD))
        .await;
    let customers: Vec<i64> = (9301..=9310).collect();
    for (n, customer) in (1..).zip(&customers) {
        desk.customer_writes(n, *customer, &format!("Customer {n}"), "Hello")
            .await;
    }
    let token = desk.login("admin@example.com").await;
    wait_for_tickets(&desk, &token, customers.len()).await;

    let text = "Our spring sale starts today: 20% off everything.";
    let mut config = desk.config("broadcasts");
    config["agent"] = json!({ "email": "writer@example.com", "password": PASSWORD });
    config["auditor"] = json!({ "email": "auditor@example.com", "password": PASSWORD });
    config["customers"] = json!(customers);
    config["text"] = json!(text);
    let result = scenario("broadcasts", config).await;

    // Telegram got the message once in each customer's chat, with the buttons written in
    // the panel and the unsubscribe row below them.
    let sends: Vec<_> = desk
        .telegram
        .calls_of("sendMessage")
        .into_iter()
        .filter(|call| call.param("text").as_deref() == Some(text))
        .collect();
    for customer in &customers {
        let got = sends
            .iter()
            .filter(|call| call.chat_id() == Some(*customer) && call.succeeded())
            .count();
        assert_eq!(got, 1, "customer {customer} got {got} broadcast messages");
    }
    assert_eq!(sends.len(), customers.len(), "{sends:#?}");
    let markup = sends[0].json_param("reply_markup").unwrap();
    let rows = markup["inline_keyboard"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{markup}");
    assert_eq!(rows[0][0]["text"], "Shop");
    assert_eq!(rows[0][0]["url"], "https://shop.example/sale");
    assert_eq!(rows[0][1]["text"], "Thanks");

    // The preview of the scheduled broadcast went to the one customer it was asked for.
    let previews: Vec<_> = desk
        .telegram
        .calls_of("sendMessage")
        .into_iter()
        .filter(|call| {
            call.param("text").as_deref() == Some("Our shop opens an hour later on Monday.")
        })
        .collect();
    assert_eq!(previews.len(), 1, "{previews:#?}");
    assert_eq!(previews[0].chat_id(), Some(customers[1]));

    let query = "query($id: ID!) { broadcast(id: $id) { state delivered totalRecipients scheduledAt audienceKind } }";
    let done = desk
        .gql(&token, query, json!({ "id": result["broadcastId"] }))
        .await;
    assert_eq!(done["broadcast"]["state"], "COMPLETED", "{done}");
    assert_eq!(done["broadcast"]["delivered"], json!(customers.len()));
    // 10:00 in Tokyo, where the agent's browser was, is 01:00 UTC.
    let scheduled = desk
        .gql(&token, query, json!({ "id": result["scheduledId"] }))
        .await;
    assert_eq!(scheduled["broadcast"]["state"], "SCHEDULED", "{scheduled}");
    assert_eq!(scheduled["broadcast"]["audienceKind"], "explicit");
    let at = chrono::DateTime::parse_from_rfc3339(
        scheduled["broadcast"]["scheduledAt"].as_str().unwrap(),
    )
    .unwrap();
    let expected =
        chrono::DateTime::parse_from_rfc3339(result["scheduledAt"].as_str().unwrap()).unwrap();
    assert_eq!(at, expected);
    desk.stop().await;
}
