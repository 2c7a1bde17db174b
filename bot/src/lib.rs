//! The Telegram bot: inbound updates become commands, a delivery worker sends replies back.
//!
//! - [`update`] reads a Telegram [`Update`](teloxide::types::Update) into an [`update::Inbound`]:
//!   what the customer did, in our own terms, or why the update is ignored.
//! - [`inbound`] turns an [`update::Inbound`] into commands on the log, with the update id as
//!   the idempotency key, and answers the customer where the bot must (greeting, help).
//! - [`webhook`] and [`polling`] are the two ways updates arrive.
//! - [`delivery`] follows the log and sends agent replies and satisfaction prompts to Telegram,
//!   recording each outcome as an event.
//! - [`scheduler`] starts scheduled broadcasts when their time comes (one per database, in
//!   every `ledgerdesk serve`, with or without a bot token).
//! - [`callback`] is the format of the data behind inline buttons, shared by both directions.
//! - [`config`] holds the settings.
//! - `store` holds the bot's own tables (handled updates, updates that can never be
//!   recorded, delivery state): the only SQL of the crate.

pub mod callback;
pub mod config;
pub mod delivery;
pub mod inbound;
pub mod polling;
pub mod scheduler;
pub mod start;
mod store;
pub mod update;
pub mod webhook;

use std::sync::Arc;
use std::time::Duration;

use app::commands::CommandService;
use app::ownership::{self, LockClass, LockKey};
use axum::Router;
use backon::{BackoffBuilder, ExponentialBuilder};
use eventlog::postgres::PostgresLog;
use secrecy::ExposeSecret;
use teloxide::payloads::SetWebhookSetters;
use teloxide::prelude::Requester;
use tokio_util::sync::CancellationToken;

use crate::config::{BotConfig, Mode};
use crate::inbound::{Inbox, describe};

/// How long handled update keys are kept. Telegram stops redelivering an update long before.
const KEEP_HANDLED: Duration = Duration::from_secs(14 * 24 * 3600);

/// The advisory lock that makes the delivery worker a singleton per database. Its object is
/// the number 1, not a name's hash: that is the key running instances already take.
const DELIVERY_LOCK: LockKey = LockKey::numbered(LockClass::DELIVERY, 1);

/// The longest pause between two attempts at registering the webhook.
const WEBHOOK_LONGEST_PAUSE: Duration = Duration::from_secs(60);

/// The pauses between attempts at registering the webhook: half a second, doubling.
const WEBHOOK_PAUSES: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(500))
    .with_factor(2.0)
    .with_max_delay(WEBHOOK_LONGEST_PAUSE)
    .without_max_times();

/// The whole bot of one process: inbound (webhook route or polling), the delivery worker
/// (in the one process holding its lock) and upkeep.
#[derive(Debug)]
pub struct TelegramBot {
    config: BotConfig,
    inbox: Arc<Inbox>,
    commands: CommandService<PostgresLog>,
    delivery: delivery::DeliveryOptions,
}

impl TelegramBot {
    /// The bot of `config`, writing through `commands` (the process's command service).
    #[must_use]
    pub fn new(config: BotConfig, commands: CommandService<PostgresLog>) -> Self {
        let inbox = Arc::new(Inbox::new(commands.clone(), config.bot(), config.bot_id()));
        let defaults = delivery::DeliveryOptions::default();
        let delivery = delivery::DeliveryOptions {
            retry_for: config.delivery_retry,
            messages_per_second: config.messages_per_second,
            broadcast: delivery::BroadcastOptions {
                allow_paid_broadcast: config.allow_paid_broadcast,
                ..defaults.broadcast.clone()
            },
            ..defaults
        };
        Self {
            config,
            inbox,
            commands,
            delivery,
        }
    }

    /// The same bot with other delivery options.
    #[must_use]
    pub fn with_delivery(mut self, options: delivery::DeliveryOptions) -> Self {
        self.delivery = options;
        self
    }

    /// The same bot sending agents' uploads from `media` (and prefetching incoming files when
    /// its settings say so).
    #[must_use]
    pub fn with_media(mut self, media: media::MediaService) -> Self {
        self.inbox.prefetch_with(media.clone());
        self.delivery.media = Some(media);
        self
    }

    /// The inbox, for callers that feed updates themselves.
    #[must_use]
    pub fn inbox(&self) -> Arc<Inbox> {
        Arc::clone(&self.inbox)
    }

    /// The webhook route to merge into the HTTP server, in webhook mode.
    #[must_use]
    pub fn routes(&self) -> Option<Router> {
        match &self.config.mode {
            Mode::Webhook { url, secret } => {
                Some(webhook::routes(url.path(), self.inbox(), secret.clone()))
            }
            Mode::Polling { .. } => None,
        }
    }

    /// Runs until `shutdown` is cancelled: polls for updates (or registers the webhook with
    /// Telegram, retrying until it succeeds), runs the delivery worker when this process holds
    /// its lock, and forgets old handled updates once an hour.
    pub async fn run(self, shutdown: CancellationToken) {
        let bot = self.config.bot();
        let upkeep = tokio::spawn(forget_old_updates(self.inbox(), shutdown.clone()));
        let delivering = tokio::spawn(deliver(
            self.commands.clone(),
            bot.clone(),
            self.delivery.clone(),
            shutdown.clone(),
        ));
        match &self.config.mode {
            Mode::Polling { timeout } => {
                polling::run(bot, self.inbox(), *timeout, &shutdown).await;
            }
            Mode::Webhook { url, secret } => {
                let register = async {
                    let mut pauses = WEBHOOK_PAUSES.build();
                    loop {
                        let request = bot
                            .set_webhook(url.clone())
                            .secret_token(secret.expose_secret().to_owned())
                            .allowed_updates(polling::ALLOWED_UPDATES);
                        match request.await {
                            Ok(_) => {
                                tracing::info!(path = url.path(), "telegram webhook registered");
                                return;
                            }
                            Err(error) => {
                                tracing::warn!(error = %describe(&error),
                                    "cannot register the telegram webhook, trying again");
                                let pause = pauses.next().unwrap_or(WEBHOOK_LONGEST_PAUSE);
                                tokio::time::sleep(pause).await;
                            }
                        }
                    }
                };
                // Registered (or shutdown came first), the webhook route does the rest.
                shutdown.run_until_cancelled(register).await;
                shutdown.cancelled().await;
            }
        }
        let _ = upkeep.await;
        if let Err(error) = delivering.await {
            tracing::error!(%error, "the delivery worker panicked");
        }
    }
}

/// Runs the delivery worker while holding its advisory lock on a connection of its own;
/// another instance holding it makes this one wait and try again every few seconds.
async fn deliver(
    commands: CommandService<PostgresLog>,
    bot: teloxide::Bot,
    options: delivery::DeliveryOptions,
    shutdown: CancellationToken,
) {
    let mut waiting_logged = false;
    loop {
        let locked = async {
            let mut conn = commands.log().pool().acquire().await?;
            let locked = ownership::try_lock(&mut conn, DELIVERY_LOCK).await?;
            Ok::<_, sqlx::Error>(locked.then_some(conn))
        };
        match locked.await {
            Ok(Some(conn)) => {
                tracing::info!("delivery worker running");
                delivery::DeliveryWorker::new(commands, bot, options)
                    .run(shutdown)
                    .await;
                ownership::release(conn.detach()).await;
                return;
            }
            Ok(None) if !waiting_logged => {
                tracing::info!("another instance delivers to telegram; standing by");
                waiting_logged = true;
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "cannot take the delivery lock"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}

async fn forget_old_updates(inbox: Arc<Inbox>, shutdown: CancellationToken) {
    loop {
        match inbox.forget_handled(KEEP_HANDLED).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::debug!(forgotten, "old handled telegram updates forgotten"),
            Err(error) => tracing::warn!(%error, "cannot forget old handled telegram updates"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
    }
}
