//! The command line. Every option can also come from the environment (or `.env`); every
//! setting but secrets has a safe default.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::Settings;

/// Event-sourced support ticketing for teams whose customers write on Telegram.
#[derive(Debug, Parser)]
#[command(name = "ledgerdesk", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Log format: `pretty` for people, `json` for log collectors.
    #[arg(long, env = "LEDGERDESK_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[expect(
    clippy::large_enum_variant,
    reason = "parsed once at start and matched at once; boxing buys nothing"
)]
pub enum Command {
    /// Run Ledgerdesk: apply migrations, then serve HTTP until interrupted.
    Serve(ServeArgs),
    /// Apply pending database migrations (creating the database if needed) and exit.
    Migrate,
    /// Rebuild read models from the log into shadow tables, then swap them in. The live tables
    /// keep serving meanwhile. A projection a running server owns is rebuilt by that server.
    Replay(ReplayArgs),
    /// Fill an empty database with a generated, realistic support history (for demos and
    /// benchmarks): tickets with 5-30 messages, agents, customers, broadcasts.
    Generate(GenerateArgs),
    /// Manage the team from the command line (bootstrap the first admin).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Tamper evidence: verify the log's hash chains and anchors, or anchor the log now.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Write the log's events as JSON Lines (one event per line, in log order); an export of
    /// the whole log (no --from, no --stream-prefix) also carries its signed anchors.
    Export(ExportArgs),
    /// Append a JSON Lines export to an empty log, checking every hash and anchor; all or
    /// nothing.
    Import(ImportArgs),
    /// Act on a customer (forget their personal data).
    #[command(subcommand)]
    Customer(CustomerCommand),
}

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Forget a customer's personal data (names, username, messages' text and files, places,
    /// contacts) everywhere: their key is deleted, so it reads as forgotten in the log, the
    /// read models and later exports. The history keeps its shape. Exits with 1 for an
    /// unknown customer.
    Forget(ForgetArgs),
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// The customer's Telegram user id.
    pub telegram_id: i64,
    /// Where the stored media files are (the same settings as `serve`): the customer's stored
    /// copies are deleted.
    #[command(flatten)]
    pub media: MediaArgs,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every stream's hash chain and check the signed anchors; print each stream's
    /// first broken link. Exits with 1 when anything is broken.
    Verify(VerifyArgs),
    /// Sign and store an anchor of the log now (`serve` does it periodically).
    Anchor(AnchorArgs),
}

/// Where the key that signs the log's anchors is kept.
#[derive(Debug, Args)]
pub struct AnchorKeyArgs {
    /// File holding the ed25519 key that signs the log's anchors (64 hex digits), created
    /// with mode 0600 on first use. Keep it outside the database and back it up.
    #[arg(
        long,
        env = "LEDGERDESK_ANCHOR_KEY_FILE",
        default_value = "ledgerdesk-anchor.key"
    )]
    pub anchor_key_file: std::path::PathBuf,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Only this stream.
    #[arg(long)]
    pub stream: Option<String>,
    /// Only events from this position on (as exports and the API show positions).
    #[arg(long, value_parser = crate::audit::position)]
    pub from: Option<eventlog::Position>,
    /// Also trust anchors signed by this public key (64 hex digits; repeatable). The key of
    /// LEDGERDESK_ANCHOR_KEY_FILE, when the file exists, is always trusted.
    #[arg(long = "public-key", value_name = "HEX")]
    pub public_keys: Vec<String>,
    #[command(flatten)]
    pub key: AnchorKeyArgs,
}

#[derive(Debug, Args)]
pub struct AnchorArgs {
    #[command(flatten)]
    pub key: AnchorKeyArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// From this position on (inclusive).
    #[arg(long, value_parser = crate::audit::position)]
    pub from: Option<eventlog::Position>,
    /// Up to this position (inclusive).
    #[arg(long, value_parser = crate::audit::position)]
    pub to: Option<eventlog::Position>,
    /// Only streams whose id starts with this (`ticket-`, `customer-42`).
    #[arg(long, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub stream_prefix: Option<String>,
    /// Write to this file instead of standard output.
    #[arg(short = 'o', long)]
    pub output: Option<std::path::PathBuf>,
    /// Also write the keys of the customers not forgotten to this new file (readable by its
    /// owner only), so that an import reads their personal data. Without it, an import reads
    /// every customer as forgotten. Keep it as secret as the database.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A file written by `ledgerdesk export`.
    pub file: std::path::PathBuf,
    /// The keys file written by `ledgerdesk export --keys`, stored once the events are
    /// imported.
    #[arg(long, value_name = "FILE")]
    pub keys: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an agent who can sign in. Without --password-stdin a one-time password is
    /// printed once, and the agent must change it at first sign-in.
    Create(CreateAgentArgs),
}

#[derive(Debug, Args)]
pub struct CreateAgentArgs {
    /// Their sign-in email.
    #[arg(long)]
    pub email: String,
    /// Their display name (default: the part of the email before @).
    #[arg(long)]
    pub name: Option<String>,
    /// Their role.
    #[arg(long, value_enum, default_value_t = RoleArg::Admin)]
    pub role: RoleArg,
    /// Read the password from the first line of standard input instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    /// Everything, including agents, settings and API tokens.
    Admin,
    /// Tickets, customers and broadcasts.
    Agent,
    /// Read-only, including history and the event feed.
    Auditor,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// At least this many events are appended.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub events: u64,
    /// The same seed gives the same history.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub writers: u16,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The projection to rebuild (repeatable); all of them when absent.
    #[arg(long = "projection", value_name = "NAME")]
    pub projections: Vec<String>,
    /// Rebuild into scratch tables and compare them, row by row, with the live ones instead
    /// of replacing them: print each difference, exit non-zero on any.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Args)]
pub struct DatabaseArgs {
    /// Postgres URL of the database holding the log and the read models, as its owner: the
    /// migrations run on it, and it creates the serving role. Created if missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/ledgerdesk",
        hide_env_values = true,
        global = true
    )]
    database_url: String,

    /// The Postgres role `serve` (and `replay`'s rebuild) runs as: created by the migrations
    /// if missing, allowed to append to the log but never to change it.
    #[arg(long, env = "LEDGERDESK_APP_ROLE", default_value = app::serving_role::DEFAULT_ROLE, global = true)]
    pub app_role: String,

    /// The serving role's password, set on the role at every migration. Without it the role
    /// has none (peer or trust authentication, or one set by hand).
    #[arg(long, env = "LEDGERDESK_APP_PASSWORD", hide_env_values = true, value_parser = secret, global = true)]
    app_password: Option<SecretString>,

    /// Postgres URL the server connects with. Default: the database URL with the serving
    /// role's name and password in place of the owner's.
    #[arg(long, env = "LEDGERDESK_APP_DATABASE_URL", hide_env_values = true, value_parser = secret, global = true)]
    app_database_url: Option<SecretString>,

    /// Most database connections this process opens.
    #[arg(long, env = "LEDGERDESK_DB_MAX_CONNECTIONS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(2..=1000), global = true)]
    pub db_max_connections: u32,
}

impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &"[redacted]")
            .field("app_role", &self.app_role)
            .field(
                "app_password",
                &self.app_password.as_ref().map(|_| "[redacted]"),
            )
            .field(
                "app_database_url",
                &self.app_database_url.as_ref().map(|_| "[redacted]"),
            )
            .field("db_max_connections", &self.db_max_connections)
            .finish()
    }
}

impl DatabaseArgs {
    /// The owner's database URL, kept out of `Debug` output from here on.
    pub fn database_url(&self) -> SecretString {
        SecretString::from(self.database_url.clone())
    }

    /// The serving role: its name and password.
    pub fn serving_role(&self) -> ServingRole {
        ServingRole {
            name: self.app_role.clone(),
            password: self.app_password.clone(),
        }
    }

    /// The URL the server connects with: the one given, or the owner's URL with the serving
    /// role's name and password.
    ///
    /// # Errors
    /// When the owner's URL cannot be parsed.
    pub fn serving_url(&self) -> anyhow::Result<SecretString> {
        match &self.app_database_url {
            Some(url) => Ok(url.clone()),
            None => serving_url(&self.database_url(), &self.serving_role()),
        }
    }

    /// The settings of `serve`.
    pub fn settings(&self, serve: ServeArgs) -> anyhow::Result<Settings> {
        Ok(Settings {
            database_url: self.database_url(),
            serving_database_url: self.serving_url()?,
            serving_role: self.serving_role(),
            migrate_on_start: serve.migrate_on_start,
            db_max_connections: self.db_max_connections,
            bind: serve.bind,
            log_held_back_warn: std::time::Duration::from_secs(serve.log_held_back_warn_secs),
            api: {
                let mut api = serve.api_config();
                api.media = Some(serve.media.config()?);
                api
            },
            bot: serve.bot_config()?,
            command_retry_budget: std::time::Duration::from_millis(serve.command_retry_budget_ms),
            anchor: Some(crate::startup::AnchorSettings {
                key_file: serve.anchor_key.anchor_key_file.clone(),
                interval: (serve.anchor_interval_secs > 0)
                    .then(|| std::time::Duration::from_secs(serve.anchor_interval_secs)),
            }),
        })
    }
}

/// The Postgres role the server runs as.
#[derive(Clone)]
pub struct ServingRole {
    /// Its name.
    pub name: String,
    /// Its password, if it has one.
    pub password: Option<SecretString>,
}

impl std::fmt::Debug for ServingRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingRole")
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl ServingRole {
    /// The default role (`ledgerdesk_app`), without a password.
    pub fn default_role() -> Self {
        ServingRole {
            name: app::serving_role::DEFAULT_ROLE.to_owned(),
            password: None,
        }
    }
}

/// `owner_url` with `role`'s name and password (none when it has none) in place of the
/// owner's.
///
/// # Errors
/// When `owner_url` is not a URL with a user part.
pub fn serving_url(owner_url: &SecretString, role: &ServingRole) -> anyhow::Result<SecretString> {
    use anyhow::Context;
    use secrecy::ExposeSecret;
    let mut url = url::Url::parse(owner_url.expose_secret())
        .map_err(|_| anyhow::anyhow!("the database URL is not a URL"))?;
    url.set_username(&role.name)
        .ok()
        .context("the database URL takes no user name")?;
    url.set_password(role.password.as_ref().map(|p| p.expose_secret()))
        .ok()
        .context("the database URL takes no password")?;
    Ok(SecretString::from(String::from(url)))
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port the HTTP server listens on (port 0 picks a free one).
    #[arg(long, env = "LEDGERDESK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Apply pending migrations (and prepare the serving role) at start, as the owner of
    /// DATABASE_URL. With `false` the server never connects as the owner: run
    /// `ledgerdesk migrate` before each upgrade instead.
    #[arg(long, env = "LEDGERDESK_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    /// Warn (naming its database and process) when an append transaction has been open this
    /// many seconds: events committed after it started stay unreadable until it ends.
    #[arg(long, env = "LEDGERDESK_LOG_HELD_BACK_WARN_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub log_held_back_warn_secs: u64,

    /// Secret that signs access tokens (at least 32 bytes). Without it, a random key is
    /// generated on first start and kept in the database, shared by every instance.
    #[arg(long, env = "LEDGERDESK_JWT_SECRET", hide_env_values = true, value_parser = secret)]
    pub jwt_secret: Option<SecretString>,

    /// How long an access token lives, in seconds.
    #[arg(long, env = "LEDGERDESK_ACCESS_TOKEN_TTL_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(30..=86_400))]
    pub access_token_ttl_secs: u64,

    /// For testing token expiry only: how long an access token lives, in seconds, below the
    /// 30 s floor of --access-token-ttl-secs (which it overrides). Logs a warning at start.
    #[arg(long, env = "LEDGERDESK_TESTING_ACCESS_TOKEN_TTL_SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub testing_access_token_ttl_secs: Option<u64>,

    /// How long a refresh token lives, in days (each use replaces it).
    #[arg(long, env = "LEDGERDESK_REFRESH_TOKEN_TTL_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=365))]
    pub refresh_token_ttl_days: u64,

    /// Failed sign-ins a minute one client address may make before each further failure
    /// doubles its delay.
    #[arg(long, env = "LEDGERDESK_LOGINS_PER_IP_PER_MINUTE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub logins_per_ip_per_minute: u32,

    /// Failed sign-ins a minute one account may take from one client address before each
    /// further failure doubles that pair's delay.
    #[arg(long, env = "LEDGERDESK_LOGINS_PER_ACCOUNT_PER_MINUTE", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub logins_per_account_per_minute: u32,

    /// Failed sign-ins a minute one account may take from all addresses together before each
    /// further failure doubles its delay; devices that signed in to it before pass.
    #[arg(long, env = "LEDGERDESK_LOGINS_PER_ACCOUNT_ANY_ADDRESS_PER_MINUTE", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub logins_per_account_any_address_per_minute: u32,

    /// The longest delay failed sign-ins grow to, in seconds.
    #[arg(long, env = "LEDGERDESK_LOGIN_MAX_DELAY_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub login_max_delay_secs: u64,

    /// Reverse proxies (addresses or CIDR ranges, comma-separated) whose X-Forwarded-For
    /// header names the client's address. Empty: the peer's address is the client's.
    #[arg(long, env = "LEDGERDESK_TRUSTED_PROXIES", value_delimiter = ',', value_parser = proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Serve GraphQL introspection (schema discovery for integrators and GraphiQL).
    #[arg(long, env = "LEDGERDESK_GRAPHQL_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphql_introspection: bool,

    /// Most items a GraphQL connection returns per page.
    #[arg(long, env = "LEDGERDESK_GRAPHQL_MAX_PAGE", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub graphql_max_page: u32,

    /// Largest GraphQL request body, in bytes.
    #[arg(long, env = "LEDGERDESK_GRAPHQL_MAX_BODY_BYTES", default_value_t = 262_144, value_parser = clap::value_parser!(u32).range(1_024..=16_777_216))]
    pub graphql_max_body_bytes: u32,

    /// How long a new GraphQL WebSocket may take to send `connection_init`, in seconds; after
    /// that the server closes it with code 4408.
    #[arg(long, env = "LEDGERDESK_GRAPHQL_WS_INIT_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub graphql_ws_init_timeout_secs: u64,

    /// How long a command keeps retrying, in milliseconds, while other writers change the
    /// ticket (or other record) it works on; past it the API answers CONTENDED.
    #[arg(long, env = "LEDGERDESK_COMMAND_RETRY_BUDGET_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    pub command_retry_budget_ms: u64,

    /// Largest GraphQL document once its fragments are spread: fields, fragment spreads,
    /// inline fragments and directives counted. A larger one is refused before it is checked.
    #[arg(long, env = "LEDGERDESK_GRAPHQL_MAX_SELECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(100..=1_000_000))]
    pub graphql_max_selections: u32,

    /// Longest one request may take, in seconds (a GraphQL query or mutation over a
    /// WebSocket too); then it is stopped and answered with TIMEOUT.
    #[arg(long, env = "LEDGERDESK_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub request_timeout_secs: u64,

    /// How long an accepted GraphQL WebSocket with no running operation may stay silent, in
    /// seconds; then it is closed with 1001. A `ping` keeps it open.
    #[arg(long, env = "LEDGERDESK_GRAPHQL_WS_IDLE_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub graphql_ws_idle_timeout_secs: u64,

    /// Most operations one GraphQL WebSocket runs at once.
    #[arg(long, env = "LEDGERDESK_GRAPHQL_WS_MAX_SUBSCRIPTIONS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub graphql_ws_max_subscriptions: u32,

    /// Most GraphQL WebSockets one agent (or API token) holds open at once.
    #[arg(long, env = "LEDGERDESK_GRAPHQL_WS_MAX_SOCKETS_PER_AGENT", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub graphql_ws_max_sockets_per_agent: u32,

    /// Longest wait for a request's headers, in seconds, on a new connection and on an idle
    /// kept-alive one.
    #[arg(long, env = "LEDGERDESK_HTTP_HEADER_READ_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub http_header_read_timeout_secs: u64,

    /// Most HTTP connections (WebSockets included) held at once.
    #[arg(long, env = "LEDGERDESK_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(16..=1_000_000))]
    pub max_connections: u32,

    /// Most HTTP connections held at once from one client address.
    #[arg(long, env = "LEDGERDESK_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_address: u32,

    /// Connections, of the most, kept for /healthz, /readyz and the Telegram webhook.
    #[arg(long, env = "LEDGERDESK_RESERVED_CONNECTIONS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub reserved_connections: u32,

    /// The Telegram bot's token from @BotFather. Without it the bot is off.
    #[arg(long, env = "TELEGRAM_BOT_TOKEN", hide_env_values = true, value_parser = secret)]
    pub telegram_bot_token: Option<SecretString>,

    /// Receive updates by webhook at this public https URL (its path is served by this
    /// server) instead of long polling.
    #[arg(long, env = "TELEGRAM_WEBHOOK_URL")]
    pub telegram_webhook_url: Option<String>,

    /// The webhook's secret token (1–256 of A-Z a-z 0-9 _ -). Default: derived from the bot
    /// token, so every instance agrees on it.
    #[arg(long, env = "TELEGRAM_WEBHOOK_SECRET", hide_env_values = true, value_parser = secret)]
    pub telegram_webhook_secret: Option<SecretString>,

    /// The Bot API server (a self-hosted one, or a fake in tests).
    #[arg(long, env = "TELEGRAM_API_URL", default_value = bot::config::DEFAULT_API_URL)]
    pub telegram_api_url: url::Url,

    /// How long one long-polling request waits for updates, in seconds.
    #[arg(long, env = "TELEGRAM_POLL_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=15))]
    pub telegram_poll_timeout_secs: u64,

    /// How long a reply is tried again through network errors and Telegram's server errors,
    /// in hours from its first failure; then it is recorded as failed (agents may retry it).
    #[arg(long, env = "LEDGERDESK_DELIVERY_RETRY_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=168))]
    pub delivery_retry_hours: u64,

    /// Messages per second the bot sends over all chats, replies and broadcasts together
    /// (Telegram allows about 30; up to 1000 with paid broadcasts).
    #[arg(long, env = "TELEGRAM_MESSAGES_PER_SECOND", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub telegram_messages_per_second: u32,

    /// Send broadcast messages with `allow_paid_broadcast` (Telegram charges Stars for what
    /// goes beyond its free rate); raise TELEGRAM_MESSAGES_PER_SECOND with it.
    #[arg(long, env = "TELEGRAM_ALLOW_PAID_BROADCAST", default_value_t = false, action = clap::ArgAction::Set)]
    pub telegram_allow_paid_broadcast: bool,

    /// How often the log's anchor is signed and stored, in seconds (0: never; the key file
    /// is then only read, when it exists, to check anchors in the API's `auditVerify`).
    /// Removing a stream's newest events goes unseen only until the next anchor.
    #[arg(long, env = "LEDGERDESK_ANCHOR_INTERVAL_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub anchor_interval_secs: u64,

    #[command(flatten)]
    pub anchor_key: AnchorKeyArgs,
    #[command(flatten)]
    pub media: MediaArgs,
}

/// Where media files are kept and how they are fetched and served (docs/operations.md).
#[derive(Debug, Args)]
pub struct MediaArgs {
    /// Directory for the server's own files; media are kept under `<dir>/media` unless
    /// LEDGERDESK_MEDIA_DIR says otherwise.
    #[arg(long, env = "LEDGERDESK_DATA_DIR", default_value = "data")]
    pub data_dir: std::path::PathBuf,

    /// Where media files are kept: `local` (a directory) or `s3` (an S3-compatible bucket).
    #[arg(long, env = "LEDGERDESK_MEDIA_STORAGE", value_enum, default_value_t = MediaStorage::Local)]
    pub media_storage: MediaStorage,

    /// The directory of `local` media storage (default: `<data dir>/media`).
    #[arg(long, env = "LEDGERDESK_MEDIA_DIR")]
    pub media_dir: Option<std::path::PathBuf>,

    /// The S3 endpoint URL (MinIO, Ceph, R2, …); default: AWS for the region.
    #[arg(long, env = "LEDGERDESK_MEDIA_S3_ENDPOINT")]
    pub media_s3_endpoint: Option<String>,

    /// The S3 bucket (it must exist); required with `--media-storage s3`.
    #[arg(long, env = "LEDGERDESK_MEDIA_S3_BUCKET")]
    pub media_s3_bucket: Option<String>,

    /// The S3 region.
    #[arg(long, env = "LEDGERDESK_MEDIA_S3_REGION", default_value = "us-east-1")]
    pub media_s3_region: String,

    /// Keys of the bucket start with this prefix (`ledgerdesk/`); empty: none.
    #[arg(long, env = "LEDGERDESK_MEDIA_S3_PREFIX", default_value = "")]
    pub media_s3_prefix: String,

    /// Allow a plain http:// S3 endpoint (one on the same host or private network).
    #[arg(long, env = "LEDGERDESK_MEDIA_S3_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub media_s3_allow_http: bool,

    /// The S3 access key id.
    #[arg(long, env = "LEDGERDESK_MEDIA_S3_ACCESS_KEY_ID", hide_env_values = true, value_parser = secret)]
    pub media_s3_access_key_id: Option<SecretString>,

    /// The S3 secret access key.
    #[arg(long, env = "LEDGERDESK_MEDIA_S3_SECRET_ACCESS_KEY", hide_env_values = true, value_parser = secret)]
    pub media_s3_secret_access_key: Option<SecretString>,

    /// Largest file an agent may upload (POST /media), in bytes.
    #[arg(long, env = "LEDGERDESK_MEDIA_MAX_UPLOAD_BYTES", default_value_t = 50 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=2_147_483_648))]
    pub media_max_upload_bytes: u64,

    /// Largest file fetched from the Bot API, in bytes: 20 MB on Telegram's servers; raise it
    /// only with a local Bot API server.
    #[arg(long, env = "LEDGERDESK_MEDIA_DOWNLOAD_LIMIT_BYTES", default_value_t = media::config::BOT_API_DOWNLOAD_LIMIT, value_parser = clap::value_parser!(u64).range(1..=2_147_483_648))]
    pub media_download_limit_bytes: u64,

    /// How long a signed media URL stays valid, in seconds.
    #[arg(long, env = "LEDGERDESK_MEDIA_URL_TTL_SECS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(10..=86_400))]
    pub media_url_ttl_secs: u64,

    /// Most files fetched from Telegram at once.
    #[arg(long, env = "LEDGERDESK_MEDIA_FETCH_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub media_fetch_concurrency: u32,

    /// Fetch every incoming file as it arrives, in the background.
    #[arg(long, env = "LEDGERDESK_MEDIA_PREFETCH", default_value_t = false, action = clap::ArgAction::Set)]
    pub media_prefetch: bool,

    /// Most background prefetches at once.
    #[arg(long, env = "LEDGERDESK_MEDIA_PREFETCH_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub media_prefetch_concurrency: u32,

    /// Prefetch only while stored media take less than this many bytes in all.
    #[arg(long, env = "LEDGERDESK_MEDIA_PREFETCH_MAX_TOTAL_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub media_prefetch_max_total_bytes: u64,

    /// Delete stored copies of Telegram files older than this many days (they are fetched
    /// again when asked for); unset: keep them.
    #[arg(long, env = "LEDGERDESK_MEDIA_RETENTION_DAYS", value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub media_retention_days: Option<u64>,
}

/// Where media files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MediaStorage {
    /// A directory of the local file system.
    Local,
    /// An S3-compatible bucket.
    S3,
}

impl MediaArgs {
    /// The media settings.
    ///
    /// # Errors
    /// S3 storage without a bucket.
    pub fn config(&self) -> anyhow::Result<media::MediaConfig> {
        use std::time::Duration;
        let backend = match self.media_storage {
            MediaStorage::Local => media::Backend::Local {
                dir: self
                    .media_dir
                    .clone()
                    .unwrap_or_else(|| self.data_dir.join("media")),
            },
            MediaStorage::S3 => media::Backend::S3(media::S3Config {
                endpoint: self.media_s3_endpoint.clone(),
                bucket: self.media_s3_bucket.clone().ok_or_else(|| {
                    anyhow::anyhow!("LEDGERDESK_MEDIA_S3_BUCKET is required with S3 media storage")
                })?,
                region: self.media_s3_region.clone(),
                access_key_id: self.media_s3_access_key_id.clone(),
                secret_access_key: self.media_s3_secret_access_key.clone(),
                prefix: self.media_s3_prefix.clone(),
                allow_http: self.media_s3_allow_http,
            }),
        };
        Ok(media::MediaConfig {
            telegram: None,
            backend,
            download_limit: self.media_download_limit_bytes,
            upload_limit: self.media_max_upload_bytes,
            url_ttl: Duration::from_secs(self.media_url_ttl_secs),
            fetch_concurrency: self.media_fetch_concurrency as usize,
            prefetch: self.media_prefetch,
            prefetch_concurrency: self.media_prefetch_concurrency as usize,
            prefetch_max_total_bytes: self.media_prefetch_max_total_bytes,
            retention: self
                .media_retention_days
                .map(|days| Duration::from_secs(days * 24 * 3600)),
            ..media::MediaConfig::default()
        })
    }
}

impl ServeArgs {
    /// The bot's configuration: `None` without a token.
    ///
    /// # Errors
    /// A malformed token, webhook URL or secret.
    pub fn bot_config(&self) -> Result<Option<bot::config::BotConfig>, bot::config::ConfigError> {
        let Some(token) = &self.telegram_bot_token else {
            return Ok(None);
        };
        let mut config = bot::config::BotConfig::polling(token.clone())?
            .with_api_url(self.telegram_api_url.clone())
            .with_poll_timeout(std::time::Duration::from_secs(
                self.telegram_poll_timeout_secs,
            ))?
            .with_delivery_retry_hours(self.delivery_retry_hours)?
            .with_messages_per_second(self.telegram_messages_per_second)?
            .with_paid_broadcast(self.telegram_allow_paid_broadcast);
        if let Some(url) = &self.telegram_webhook_url {
            config = config.with_webhook(url, self.telegram_webhook_secret.clone())?;
        }
        Ok(Some(config))
    }

    /// The API's configuration.
    pub fn api_config(&self) -> api::ApiConfig {
        let mut config = api::ApiConfig::default();
        config.auth.access_ttl = std::time::Duration::from_secs(
            self.testing_access_token_ttl_secs
                .unwrap_or(self.access_token_ttl_secs),
        );
        config.auth.refresh_ttl =
            std::time::Duration::from_secs(self.refresh_token_ttl_days * 24 * 3600);
        config.auth.logins_per_ip_per_minute = self.logins_per_ip_per_minute;
        config.auth.logins_per_account_per_minute = self.logins_per_account_per_minute;
        config.auth.logins_per_account_any_address_per_minute =
            self.logins_per_account_any_address_per_minute;
        config.auth.login_max_delay = std::time::Duration::from_secs(self.login_max_delay_secs);
        config
            .auth
            .trusted_proxies
            .clone_from(&self.trusted_proxies);
        config.limits.introspection = self.graphql_introspection;
        config.limits.max_page = self.graphql_max_page as usize;
        config.limits.max_body_bytes = self.graphql_max_body_bytes as usize;
        config.limits.socket_init_timeout =
            std::time::Duration::from_secs(self.graphql_ws_init_timeout_secs);
        config.jwt_secret.clone_from(&self.jwt_secret);
        self.transport(&mut config);
        config
    }

    /// The bounds of requests, sockets and connections.
    fn transport(&self, config: &mut api::ApiConfig) {
        use std::time::Duration;
        let limits = &mut config.limits;
        limits.max_selections = self.graphql_max_selections as usize;
        limits.request_timeout = Duration::from_secs(self.request_timeout_secs);
        limits.socket_idle_timeout = Duration::from_secs(self.graphql_ws_idle_timeout_secs);
        limits.max_socket_subscriptions = self.graphql_ws_max_subscriptions as usize;
        limits.max_sockets_per_caller = self.graphql_ws_max_sockets_per_agent as usize;
        let server = &mut config.server;
        server.header_read_timeout = Duration::from_secs(self.http_header_read_timeout_secs);
        server.request_timeout = limits.request_timeout;
        server.max_connections = self.max_connections as usize;
        server.max_connections_per_address = self.max_connections_per_address as usize;
        server.reserved_connections = self.reserved_connections as usize;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// A CIDR range, or one address (a range of one).
fn proxy(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{value:?} is neither an IP address nor a CIDR range"))
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value.to_owned()))
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::{Cli, Command};

    fn access_ttl(args: &[&str]) -> Result<Duration, clap::Error> {
        let cli = Cli::try_parse_from([&["ledgerdesk", "serve"], args].concat())?;
        let Command::Serve(serve) = cli.command else {
            unreachable!("parsed `serve`")
        };
        Ok(serve.api_config().auth.access_ttl)
    }

    fn api_config(args: &[&str]) -> api::ApiConfig {
        let cli = Cli::try_parse_from([&["ledgerdesk", "serve"], args].concat()).unwrap();
        let Command::Serve(serve) = cli.command else {
            unreachable!("parsed `serve`")
        };
        serve.api_config()
    }

    #[test]
    fn transport_bounds_default_as_the_library_does_and_each_flag_sets_its_own() {
        let config = api_config(&[]);
        let (limits, server) = (
            api::graphql::Limits::default(),
            api::ServerConfig::default(),
        );
        assert_eq!(config.limits.max_selections, limits.max_selections);
        assert_eq!(config.limits.request_timeout, limits.request_timeout);
        assert_eq!(
            config.limits.socket_idle_timeout,
            limits.socket_idle_timeout
        );
        assert_eq!(
            config.limits.max_socket_subscriptions,
            limits.max_socket_subscriptions
        );
        assert_eq!(
            config.limits.max_sockets_per_caller,
            limits.max_sockets_per_caller
        );
        assert_eq!(
            config.server.header_read_timeout,
            server.header_read_timeout
        );
        assert_eq!(config.server.max_connections, server.max_connections);
        assert_eq!(
            config.server.max_connections_per_address,
            server.max_connections_per_address
        );
        assert_eq!(
            config.server.reserved_connections,
            server.reserved_connections
        );

        let config = api_config(&[
            "--graphql-max-selections",
            "500",
            "--request-timeout-secs",
            "5",
            "--graphql-ws-idle-timeout-secs",
            "7",
            "--graphql-ws-max-subscriptions",
            "3",
            "--graphql-ws-max-sockets-per-agent",
            "2",
            "--http-header-read-timeout-secs",
            "4",
            "--max-connections",
            "64",
            "--max-connections-per-address",
            "8",
            "--reserved-connections",
            "6",
        ]);
        assert_eq!(config.limits.max_selections, 500);
        assert_eq!(config.limits.request_timeout, Duration::from_secs(5));
        assert_eq!(config.server.request_timeout, Duration::from_secs(5));
        assert_eq!(config.limits.socket_idle_timeout, Duration::from_secs(7));
        assert_eq!(config.limits.max_socket_subscriptions, 3);
        assert_eq!(config.limits.max_sockets_per_caller, 2);
        assert_eq!(config.server.header_read_timeout, Duration::from_secs(4));
        assert_eq!(config.server.max_connections, 64);
        assert_eq!(config.server.max_connections_per_address, 8);
        assert_eq!(config.server.reserved_connections, 6);
    }

    fn media(args: &[&str]) -> anyhow::Result<media::MediaConfig> {
        let cli = Cli::try_parse_from([&["ledgerdesk", "serve"], args].concat())?;
        let Command::Serve(serve) = cli.command else {
            unreachable!("parsed `serve`")
        };
        serve.media.config()
    }

    #[test]
    fn media_are_kept_under_the_data_dir_unless_s3_is_chosen_and_keys_never_show() {
        let local = media(&[]).unwrap();
        assert!(
            matches!(&local.backend, media::Backend::Local { dir } if dir == std::path::Path::new("data/media"))
        );
        assert!(!local.prefetch);
        assert_eq!(local.retention, None);
        assert_eq!(local.download_limit, 20 * 1024 * 1024);
        assert!(
            media(&["--media-storage", "s3"]).is_err(),
            "a bucket is required"
        );
        let s3 = media(&[
            "--media-storage",
            "s3",
            "--media-s3-bucket",
            "b",
            "--media-s3-secret-access-key",
            "very-secret",
            "--media-retention-days",
            "30",
        ])
        .unwrap();
        assert!(!format!("{s3:?}").contains("very-secret"));
        assert_eq!(s3.retention, Some(Duration::from_secs(30 * 24 * 3600)));
        assert!(media(&["--media-retention-days", "0"]).is_err());
    }

    #[test]
    fn trusted_proxies_take_addresses_and_ranges() {
        let cli = Cli::try_parse_from([
            "ledgerdesk",
            "serve",
            "--trusted-proxies",
            "10.0.0.0/8, 192.168.1.7,::1",
        ])
        .unwrap();
        let Command::Serve(serve) = cli.command else {
            unreachable!("parsed `serve`")
        };
        let proxies: Vec<String> = serve
            .api_config()
            .auth
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(proxies, ["10.0.0.0/8", "192.168.1.7/32", "::1/128"]);
        assert!(
            Cli::try_parse_from(["ledgerdesk", "serve", "--trusted-proxies", "proxy.local"])
                .is_err()
        );
    }

    #[test]
    fn an_access_token_lifetime_below_thirty_seconds_takes_the_testing_setting() {
        assert_eq!(access_ttl(&[]).unwrap(), Duration::from_secs(900));
        assert!(access_ttl(&["--access-token-ttl-secs", "2"]).is_err());
        assert_eq!(
            access_ttl(&["--testing-access-token-ttl-secs", "2"]).unwrap(),
            Duration::from_secs(2)
        );
        assert_eq!(
            access_ttl(&[
                "--access-token-ttl-secs",
                "60",
                "--testing-access-token-ttl-secs",
                "2"
            ])
            .unwrap(),
            Duration::from_secs(2)
        );
        assert!(access_ttl(&["--testing-access-token-ttl-secs", "0"]).is_err());
    }

    fn delivery_retry(args: &[&str]) -> Result<Option<Duration>, Box<dyn std::error::Error>> {
        let cli = Cli::try_parse_from(
            [
                &["ledgerdesk", "serve", "--telegram-bot-token", "123:abc"],
                args,
            ]
            .concat(),
        )?;
        let Command::Serve(serve) = cli.command else {
            unreachable!("parsed `serve`")
        };
        Ok(serve.bot_config()?.map(|config| config.delivery_retry))
    }

    #[test]
    fn replies_are_retried_for_a_day_unless_set_within_a_week() {
        let hours = |n: u64| Some(Duration::from_secs(n * 3600));
        assert_eq!(delivery_retry(&[]).unwrap(), hours(24));
        assert_eq!(
            delivery_retry(&["--delivery-retry-hours", "168"]).unwrap(),
            hours(168)
        );
        assert_eq!(
            delivery_retry(&["--delivery-retry-hours", "1"]).unwrap(),
            hours(1)
        );
        for bad in ["0", "169", "-1", "x"] {
            assert!(
                delivery_retry(&["--delivery-retry-hours", bad]).is_err(),
                "{bad}"
            );
        }
    }
}
