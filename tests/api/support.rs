//! A real Ledgerdesk server on a random port, on a database of its own, and small clients for
//! its GraphQL API over HTTP.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use api::auth::{AuthConfig, AuthService, NewAgent};
use app::commands::{CommandContext, CommandService};
use chrono::{TimeDelta, Utc};
use domain::agent::Role;
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use domain::flow::RouteCustomerMessage;
use domain::ticket::Channel;
use domain::{CategoryId, CustomerId, MessageId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, Position};
use serde_json::{Value, json};
use sqlx::PgPool;
use testkit::{DatabaseName, TestApp};

/// Telegram numbers messages per chat; one counter keeps every test message distinct (a
/// repeated id is a duplicate update, and the log records it once).
static NEXT_TELEGRAM_MESSAGE: AtomicI32 = AtomicI32::new(1);

/// The password every test agent gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// Limits generous enough that only the rate-limit test meets them.
pub fn test_config() -> api::ApiConfig {
    let mut config = api::ApiConfig::default();
    config.auth.logins_per_ip_per_minute = 10_000;
    config.auth.logins_per_account_per_minute = 10_000;
    config.auth.logins_per_account_any_address_per_minute = 10_000;
    config
}

/// A running server. Its database goes with it, also when the test fails.
pub struct Server {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub log: PostgresLog,
    pub http: reqwest::Client,
    app: TestApp,
}

/// A signed-in agent.
#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub email: String,
    pub token: String,
    pub refresh: String,
}

impl Server {
    /// A server with [`test_config`].
    pub async fn start(tag: &str) -> Server {
        Server::start_with(tag, test_config()).await
    }

    /// A server with `config`.
    pub async fn start_with(tag: &str, config: api::ApiConfig) -> Server {
        Server::start_configured(tag, |settings| settings.api = config).await
    }

    /// A server whose settings `configure` changes (from [`TestApp::settings`], with the API
    /// limits of [`test_config`]).
    pub async fn start_configured(
        tag: &str,
        configure: impl FnOnce(&mut ledgerdesk::Settings),
    ) -> Server {
        let database = DatabaseName::fresh(&format!("api_{tag}"));
        let app = TestApp::spawn(database, |settings| {
            settings.api = test_config();
            configure(settings);
        })
        .await;
        let pool = app.pool().clone();
        Server {
            addr: app.addr(),
            log: PostgresLog::new(pool.clone()),
            pool,
            http: reqwest::Client::new(),
            app,
        }
    }

    /// A server with `config` that reaches its database through `proxy` (the test's own pool
    /// connects directly).
    pub async fn start_behind(
        tag: &str,
        config: api::ApiConfig,
        proxy: &testkit::DatabaseProxy,
    ) -> Server {
        Server::start_configured(tag, |settings| {
            settings.api = config;
            // Both connections go through the proxy: the owner's (migrations at start) and the
            // serving role's (everything the server does then).
            let direct = secrecy::ExposeSecret::expose_secret(&settings.database_url).to_owned();
            settings.database_url = secrecy::SecretString::from(proxy.url_for(&direct));
            let serving =
                secrecy::ExposeSecret::expose_secret(&settings.serving_database_url).to_owned();
            settings.serving_database_url = secrecy::SecretString::from(proxy.url_for(&serving));
        })
        .await
    }

    /// The URL of the server's database (direct, not through a proxy).
    pub fn database_url(&self) -> String {
        self.app.database().url().to_owned()
    }

    /// `http://addr/graphql`.
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// Sends one operation; returns the whole response body (`data` and `errors`).
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(self.url())
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        response.json().await.unwrap()
    }

    /// Sends one operation and returns its `data`, failing the test on any error.
    pub async fn ok(&self, token: &str, query: &str, variables: Value) -> Value {
        let body = self.gql(Some(token), query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    /// Creates an agent with [`PASSWORD`] (directly, as `ledgerdesk admin create` does) and
    /// signs them in over GraphQL.
    pub async fn agent(&self, role: Role, email: &str) -> Agent {
        let auth = AuthService::new(
            CommandService::new(self.log.clone()),
            None,
            AuthConfig::default(),
        )
        .await
        .unwrap();
        let ctx = app::commands::CommandContext::new(eventlog::Actor::system("test"));
        auth.create_agent(
            NewAgent {
                email: email.to_owned(),
                name: email.split('@').next().unwrap().to_owned(),
                role,
                password: Some(PASSWORD.to_owned()),
                by: None,
            },
            &ctx,
        )
        .await
        .unwrap();
        self.login(email, PASSWORD).await
    }

    /// An admin, `admin@example.com`.
    pub async fn admin(&self) -> Agent {
        self.agent(Role::Admin, "admin@example.com").await
    }

    /// Signs in over GraphQL.
    pub async fn login(&self, email: &str, password: &str) -> Agent {
        let body = self
            .gql(
                None,
                "mutation($input: LoginInput!) { login(input: $input) {
                    accessToken refreshToken agentId } }",
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;
        assert!(body.get("errors").is_none(), "login failed: {body:#}");
        let login = &body["data"]["login"];
        Agent {
            id: login["agentId"].as_str().unwrap().to_owned(),
            email: email.to_owned(),
            token: login["accessToken"].as_str().unwrap().to_owned(),
            refresh: login["refreshToken"].as_str().unwrap().to_owned(),
        }
    }

    /// An integrator API token with `scopes`, created by `admin` over GraphQL.
    pub async fn api_token(&self, admin: &Agent, scopes: &[&str]) -> String {
        let data = self
            .ok(
                &admin.token,
                "mutation($scopes: [String!]!) {
                    createApiToken(input: {name: \"integration\", scopes: $scopes}) { token } }",
                json!({ "scopes": scopes }),
            )
            .await;
        data["createApiToken"]["token"].as_str().unwrap().to_owned()
    }

    /// A new ticket category, created by `admin`.
    pub async fn category(&self, admin: &Agent, name: &str) -> uuid::Uuid {
        let data = self
            .ok(
                &admin.token,
                "mutation($name: String!) { createCategory(input: {name: $name}) {
                    position categoryId } }",
                json!({ "name": name }),
            )
            .await;
        let payload = &data["createCategory"];
        self.caught_up(payload["position"].as_str().unwrap().parse().unwrap())
            .await;
        api::graphql::ids::uuid_of("Category", &payload["categoryId"].as_str().unwrap().into())
            .unwrap()
    }

    /// An agent (role `agent`) who works only tickets in `categories`, once the directory read
    /// model holds the restriction.
    pub async fn scoped_agent(
        &self,
        admin: &Agent,
        email: &str,
        categories: &[uuid::Uuid],
    ) -> Agent {
        let agent = self.agent(Role::Agent, email).await;
        let data = self
            .ok(
                &admin.token,
                "mutation($agent: ID!, $categories: [ID!]!) {
                    setAgentCategories(input: {agentId: $agent, categoryIds: $categories}) {
                        position } }",
                json!({ "agent": agent.id, "categories": categories }),
            )
            .await;
        let position = data["setAgentCategories"]["position"].as_str().unwrap();
        self.caught_up(position.parse().unwrap()).await;
        agent
    }

    /// Customer `customer` writes `text` on Telegram, as the bot records it: the message goes
    /// to their open ticket in `category`, or opens one. Returns the ticket and the position
    /// of the message's event, once every read model shows it.
    pub async fn customer_writes(
        &self,
        customer: i64,
        category: Option<uuid::Uuid>,
        text: &str,
    ) -> (uuid::Uuid, Position) {
        let telegram_id = NEXT_TELEGRAM_MESSAGE.fetch_add(1, Ordering::Relaxed);
        self.customer_sends(customer, category, text, telegram_id, None)
            .await
    }

    /// As [`Server::customer_writes`], with the message's Telegram id and the Telegram message
    /// it replies to chosen by the test.
    pub async fn customer_sends(
        &self,
        customer: i64,
        category: Option<uuid::Uuid>,
        text: &str,
        telegram_id: i32,
        reply_to: Option<i32>,
    ) -> (uuid::Uuid, Position) {
        let (ticket, position) = self
            .record_customer_message(customer, category, text, telegram_id, reply_to)
            .await;
        self.caught_up(position).await;
        (ticket, position)
    }

    /// As [`Server::customer_sends`], without waiting for the read models: recorded through
    /// the test's own connection, as another instance of Ledgerdesk would.
    pub async fn record_customer_message(
        &self,
        customer: i64,
        category: Option<uuid::Uuid>,
        text: &str,
        telegram_id: i32,
        reply_to: Option<i32>,
    ) -> (uuid::Uuid, Position) {
        self.record_customer_content(
            customer,
            category,
            MessageContent::text(text),
            telegram_id,
            reply_to,
        )
        .await
    }

    /// As [`Server::record_customer_message`], with any content (media, formatting…).
    pub async fn record_customer_content(
        &self,
        customer: i64,
        category: Option<uuid::Uuid>,
        content: MessageContent,
        telegram_id: i32,
        reply_to: Option<i32>,
    ) -> (uuid::Uuid, Position) {
        let routed = CommandService::new(self.log.clone())
            .route_customer_message(
                &RouteCustomerMessage {
                    customer: CustomerId(customer),
                    profile: CustomerProfile {
                        first_name: format!("Customer {customer}"),
                        last_name: None,
                        username: None,
                        language_code: Some("en".into()),
                    },
                    category: category.map(CategoryId::from_uuid),
                    new_ticket_id: TicketId(uuid::Uuid::now_v7()),
                    channel: Channel::Telegram,
                    message: CustomerMessage {
                        message_id: MessageId(uuid::Uuid::now_v7()),
                        telegram_message_id: TelegramMessageId(telegram_id),
                        reply_to: reply_to.map(TelegramMessageId),
                        content,
                    },
                    reopen_window: TimeDelta::days(7),
                    at: Utc::now(),
                },
                &CommandContext::new(Actor::system("test")),
            )
            .await
            .unwrap();
        (routed.ticket_id.0, routed.executed.position.unwrap())
    }

    /// A fresh Telegram message id, as [`Server::customer_writes`] takes.
    pub fn next_telegram_message() -> i32 {
        NEXT_TELEGRAM_MESSAGE.fetch_add(1, Ordering::Relaxed)
    }

    /// Waits until every read model has applied the log up to `position`.
    pub async fn caught_up(&self, position: Position) {
        let all = projections::models::all();
        let names: Vec<&str> = all.iter().map(|p| p.name()).collect();
        projections::wait_for(&self.pool, &names, position, Duration::from_secs(10))
            .await
            .unwrap();
    }

    /// Stops the server, waits until it has stopped, and drops its database.
    pub async fn stop(self) {
        drop(self.app.stop().await);
    }
}

/// The `extensions.code` of a response's first error.
pub fn code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}
