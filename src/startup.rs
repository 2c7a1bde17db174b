//! Wiring: from [`Settings`] to a running server, and the `migrate` command.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use app::commands::CommandService;
use app::database;
use eventlog::postgres::PostgresLog;
use projections::{Projection, ProjectionRunner};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::cli::{DatabaseArgs, ServingRole};

/// What `serve` needs to run. `Debug` never shows the database URLs or the password.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres URL of the owner (it may carry a password): migrations, the serving role.
    pub database_url: SecretString,
    /// Postgres URL the server runs on, as the serving role.
    pub serving_database_url: SecretString,
    /// The serving role the migrations prepare.
    pub serving_role: ServingRole,
    /// Whether to migrate (as the owner) before serving.
    pub migrate_on_start: bool,
    /// Most connections in the pool.
    pub db_max_connections: u32,
    /// HTTP listen address (port 0: any free port).
    pub bind: SocketAddr,
    /// Warn when an append transaction holds the log's readers back this long.
    pub log_held_back_warn: Duration,
    /// The GraphQL API: auth lifetimes, rate limits, request bounds, signing secret.
    pub api: api::ApiConfig,
    /// The Telegram bot (`None`: off).
    pub bot: Option<bot::config::BotConfig>,
    /// How long a command keeps retrying while other writers change what it works on.
    pub command_retry_budget: std::time::Duration,
    /// The anchor key, and the periodic signed anchor of the log (`None`: no anchor key).
    pub anchor: Option<AnchorSettings>,
}

/// Where the anchor key is and how often the log is anchored.
#[derive(Debug, Clone)]
pub struct AnchorSettings {
    /// The file of the ed25519 key (created on first start when the log is anchored). Its
    /// public key is what `auditVerify` checks anchors against.
    pub key_file: std::path::PathBuf,
    /// Time between anchors (`None`: the log is not anchored; the key is only read, when its
    /// file exists, to check anchors).
    pub interval: Option<Duration>,
}

/// A built, not yet running, Ledgerdesk: its listener is bound and its database migrated.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    log: PostgresLog,
    projections: Vec<Arc<dyn Projection>>,
    state: api::AppState,
    server: api::ServerConfig,
    bot: Option<bot::TelegramBot>,
    /// The command service, for the broadcast scheduler.
    commands: CommandService<PostgresLog>,
    log_held_back_warn: Duration,
    anchor: Option<(eventlog::postgres::audit::AnchorKey, Duration)>,
}

impl Application {
    /// Migrates the database as its owner (creating it if needed, and the serving role) unless
    /// told not to, connects as the serving role, refusing one that could change the log, and
    /// binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if settings.migrate_on_start {
            let owner = prepare_database(&settings.database_url, &settings.serving_role, 2).await?;
            owner.close().await;
        }
        let pool = database::connect_existing(
            settings.serving_database_url.expose_secret(),
            settings.db_max_connections,
        )
        .await
        .context(
            "cannot connect to the database as the serving role \
             (is Postgres running? see LEDGERDESK_APP_ROLE and LEDGERDESK_APP_DATABASE_URL)",
        )?;
        app::serving_role::refuse_privileged(&pool)
            .await
            .context("cannot serve on this connection")?;
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        // A key that cannot be read or created leaves the log unanchored, not the server down:
        // the chains still show changed events, and `audit verify` reports the missing anchors.
        let anchor_key = settings.anchor.as_ref().and_then(|anchor| {
            let key = match anchor.interval {
                Some(_) => crate::audit::load_or_create_key(&anchor.key_file).map(Some),
                None => crate::audit::existing_key(&anchor.key_file),
            };
            match key {
                Ok(key) => key.map(|key| (key, anchor.interval)),
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"),
                        "the log will not be anchored nor its anchors checked against the key: \
                         set LEDGERDESK_ANCHOR_KEY_FILE to a readable, writable place");
                    None
                }
            }
        });
        let anchor_public_key = anchor_key.as_ref().map(|(key, _)| key.public_key());
        let anchor = anchor_key.and_then(|(key, interval)| interval.map(|every| (key, every)));
        let log = app::personal::log(pool);
        // The one command service of the process: the API and the bot share it, and with it
        // its memory of aggregate states.
        let commands =
            CommandService::new(log.clone()).with_retry_budget(settings.command_retry_budget);
        let projections = projections::models::all();
        let server = server_config(&settings);
        let mut api_config = settings.api;
        if anchor_public_key.is_some() {
            api_config.anchor_public_key = anchor_public_key;
        }
        // Media are fetched with the bot's token, from its Bot API server.
        if let (Some(media), Some(bot)) = (api_config.media.as_mut(), settings.bot.as_ref())
            && media.telegram.is_none()
        {
            media.telegram = Some(bot.files().context("cannot reach the Bot API for files")?);
        }
        let state = api::AppState::new(commands.clone(), projections.clone(), api_config)
            .await
            .context("cannot start the API")?;
        let bot = match settings.bot {
            Some(config) => {
                tracing::info!(bot = ?config, "telegram bot on");
                let bot = bot::TelegramBot::new(config, commands.clone());
                Some(match state.media() {
                    Some(media) => bot.with_media(media),
                    None => bot,
                })
            }
            None => {
                tracing::info!("TELEGRAM_BOT_TOKEN is not set: the telegram bot is off");
                None
            }
        };
        Ok(Application {
            listener,
            log,
            projections,
            state,
            server,
            bot,
            commands,
            log_held_back_warn: settings.log_held_back_warn,
            anchor,
        })
    }

    /// The address the server listens on (useful when the port was 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes the requests in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves HTTP and runs the projections (and the bot) until `stop` completes.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        tracing::info!(%addr, "ledgerdesk is serving");
        // The process's one shutdown signal: each part gets a child of it.
        let shutdown = CancellationToken::new();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                stop.await;
                shutdown.cancel();
            }
        });
        let runner = ProjectionRunner::new(
            self.log.clone(),
            self.log.pool().clone(),
            self.projections.clone(),
        );
        let projecting = tokio::spawn(runner.run(shutdown.child_token()));
        let watching = tokio::spawn(watch_held_back(
            self.log.clone(),
            self.log_held_back_warn,
            shutdown.child_token(),
        ));
        // Every instance runs the scheduler; one at a time works (it takes a lock).
        let scheduling = tokio::spawn(bot::scheduler::run(
            self.commands.clone(),
            shutdown.child_token(),
        ));
        let anchoring = self.anchor.map(|(key, interval)| {
            tokio::spawn(eventlog::postgres::audit::anchor_periodically(
                self.log.clone(),
                key,
                interval,
                shutdown.child_token(),
            ))
        });
        let live = self.state.live();
        let retention = self.state.media().map(|media| {
            tokio::spawn(media.run_retention(Duration::from_secs(3600), shutdown.child_token()))
        });
        let server = self.server;
        let mut router = api::router(self.state);
        let mut bot_running = None;
        if let Some(bot) = self.bot {
            if let Some(routes) = bot.routes() {
                router = router.merge(routes);
            }
            bot_running = Some(tokio::spawn(bot.run(shutdown.child_token())));
        }
        // Each connection takes a descriptor: allow as many as the system does.
        let descriptors = api::server::raise_descriptor_limit();
        let served = api::server::serve(
            self.listener,
            router,
            server,
            descriptors,
            shutdown.child_token().cancelled_owned(),
        )
        .await
        .context("the HTTP server failed");
        match projecting.await {
            Ok(exits) => {
                for (projection, exit) in exits {
                    if let projections::Exit::Failed(failure) = exit {
                        tracing::error!(projection, position = %failure.position,
                            error = %failure.error, "projection had stopped on an event");
                    }
                }
            }
            Err(err) => tracing::error!(error = %err, "the projection runner panicked"),
        }
        if let Some(bot) = bot_running
            && let Err(err) = bot.await
        {
            tracing::error!(error = %err, "the telegram bot panicked");
        }
        if let Err(err) = scheduling.await {
            tracing::error!(error = %err, "the broadcast scheduler panicked");
        }
        live.stop();
        let _ = watching.await;
        if let Some(anchoring) = anchoring {
            let _ = anchoring.await;
        }
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        served?;
        self.log.stop_background();
        self.log.pool().close().await;
        tracing::info!("ledgerdesk stopped");
        Ok(())
    }
}

/// The HTTP server's settings: its own, the API's request deadline, and the webhook's path
/// among those served from the reserve of connections.
fn server_config(settings: &Settings) -> api::ServerConfig {
    let mut server = settings.api.server.clone();
    server.request_timeout = settings.api.limits.request_timeout;
    if let Some(path) = settings.bot.as_ref().and_then(|bot| bot.webhook_path()) {
        server.reserved_paths.push(path.to_owned());
    }
    server
}

/// Connects as the owner (creating the database if needed), applies pending migrations and
/// prepares the serving role; the owner's pool of `connections` is handed back.
pub(crate) async fn prepare_database(
    owner_url: &SecretString,
    role: &ServingRole,
    connections: u32,
) -> anyhow::Result<sqlx::PgPool> {
    let pool = database::connect(owner_url.expose_secret(), connections)
        .await
        .context("cannot connect to the database (is Postgres running? see DATABASE_URL)")?;
    database::migrate(&pool)
        .await
        .context("cannot apply the database migrations")?;
    let read_models: Vec<&str> = projections::models::all()
        .iter()
        .flat_map(|projection| projection.tables().iter().copied())
        .collect();
    app::serving_role::prepare(
        &pool,
        &role.name,
        role.password.as_ref().map(|p| p.expose_secret()),
        &read_models,
    )
    .await
    .with_context(|| format!("cannot prepare the serving role {}", role.name))?;
    Ok(pool)
}

/// `ledgerdesk migrate`: creates the database if needed, applies pending migrations and
/// prepares the serving role.
pub async fn migrate(database: &DatabaseArgs) -> anyhow::Result<()> {
    let pool = prepare_database(&database.database_url(), &database.serving_role(), 2).await?;
    pool.close().await;
    tracing::info!(role = %database.app_role, "migrations applied, serving role ready");
    Ok(())
}

/// Warns while an append transaction holds the log's readers back longer than `threshold`,
/// naming its database and server process: once per transaction and then every minute.
async fn watch_held_back(log: PostgresLog, threshold: Duration, stop: CancellationToken) {
    let every = (threshold / 2).clamp(Duration::from_secs(1), Duration::from_secs(10));
    let mut warned: Option<(Option<i32>, Instant)> = None;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match log.held_back_by().await {
            Ok(Some(held)) if held.age >= threshold => {
                let again = warned.is_none_or(|(pid, at)| {
                    pid != held.pid || at.elapsed() >= Duration::from_secs(60)
                });
                if again {
                    tracing::warn!(
                        database = %held.database,
                        pid = held.pid,
                        open_seconds = held.age.as_secs(),
                        "an append transaction has been open longer than \
                         LEDGERDESK_LOG_HELD_BACK_WARN_SECS: events committed since it started \
                         stay unreadable (subscriptions, read models, delivery) until it ends"
                    );
                    warned = Some((held.pid, Instant::now()));
                }
            }
            Ok(_) => warned = None,
            Err(err) => tracing::debug!(error = %err, "cannot read the log's oldest append"),
        }
    }
}

/// `ledgerdesk admin create`: an agent who can sign in, with a one-time password unless one is
/// read from standard input.
pub async fn create_agent(
    database: &DatabaseArgs,
    args: &crate::cli::CreateAgentArgs,
) -> anyhow::Result<()> {
    use crate::cli::RoleArg;
    use domain::agent::Role;
    let password = if args.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        Some(line.trim_end_matches(['\r', '\n']).to_owned())
    } else {
        None
    };
    let pool = prepare_database(&database.database_url(), &database.serving_role(), 2).await?;
    let commands = CommandService::new(app::personal::log(pool));
    let auth = api::auth::AuthService::new(commands, None, api::auth::AuthConfig::default())
        .await
        .context("cannot start authentication")?;
    let name = args.name.clone().unwrap_or_else(|| {
        args.email
            .split('@')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned()
    });
    let role = match args.role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Agent => Role::Agent,
        RoleArg::Auditor => Role::Auditor,
    };
    let ctx = app::commands::CommandContext::new(eventlog::Actor::system("cli"));
    let created = auth
        .create_agent(
            api::auth::NewAgent {
                email: args.email.clone(),
                name,
                role,
                password,
                by: None,
            },
            &ctx,
        )
        .await
        .map_err(|error| anyhow::anyhow!("cannot create the agent: {error}"))?;
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    writeln!(
        out,
        "created agent {} ({})",
        created.agent_id,
        args.email.trim()
    )?;
    if let Some(password) = created.one_time_password {
        writeln!(
            out,
            "one-time password (shown once; it must be changed at first sign-in): {password}"
        )?;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
