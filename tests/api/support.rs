//! A real Ledgerdesk server on a random port, on a database of its own, and small clients for
//! its GraphQL API over HTTP.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use api::auth::{AuthConfig, AuthService, NewAgent};
use domain::agent::Role;
use eventlog::postgres::PostgresLog;
use ledgerdesk::{Application, Settings};
use secrecy::SecretString;
use serde_json::{Value, json};
use sqlx::{Executor, PgPool};

/// The password every test agent gets.
pub const PASSWORD: &str = "correct horse battery staple";

fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a Postgres superuser connection")
}

fn fresh_name(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("ledgerdesk_api_{tag}_{}_{nanos}", std::process::id())
}

fn url_for(database: &str) -> String {
    let server = server_url();
    let (base, query) = server
        .split_once('?')
        .map_or((server.as_str(), None), |(b, q)| (b, Some(q)));
    let base = &base[..base.rfind('/').unwrap()];
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// Limits generous enough that only the rate-limit test meets them.
pub fn test_config() -> api::ApiConfig {
    let mut config = api::ApiConfig::default();
    config.auth.logins_per_ip_per_minute = 10_000;
    config.auth.logins_per_account_per_minute = 10_000;
    config
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub database: String,
    pub pool: PgPool,
    pub log: PostgresLog,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
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
        let database = fresh_name(tag);
        let settings = Settings {
            database_url: SecretString::from(url_for(&database)),
            db_max_connections: 10,
            bind: "127.0.0.1:0".parse().unwrap(),
            api: config,
            bot: None,
        };
        let app = Application::build(settings).await.unwrap();
        let addr = app.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        }));
        let pool = PgPool::connect(&url_for(&database)).await.unwrap();
        Server {
            addr,
            database,
            log: PostgresLog::new(pool.clone()),
            pool,
            http: reqwest::Client::new(),
            stop: Some(stop),
            handle: Some(handle),
        }
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
        let auth = AuthService::new(self.log.clone(), None, AuthConfig::default())
            .await
            .unwrap();
        let ctx = eventlog::commands::CommandContext::new(eventlog::Actor::system("test"));
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

    /// Stops the server and drops its database.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap().unwrap();
        }
        self.pool.close().await;
        let admin = PgPool::connect(&server_url()).await.unwrap();
        admin
            .execute(format!("drop database if exists {} with (force)", self.database).as_str())
            .await
            .unwrap();
    }
}

/// The `extensions.code` of a response's first error.
pub fn code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}
