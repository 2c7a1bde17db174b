//! From a Telegram update to commands on the log, and the few answers the bot gives by itself.
//!
//! [`Inbox::handle`] reads the update with [`crate::update::interpret`] and runs what it asks:
//!
//! - a message is routed to the customer's ticket ([`CommandService::route_customer_message`]:
//!   posted, reopened or opened); a banned customer's message is kept as
//!   `customer.message_refused` and answered with nothing;
//! - `/start` registers the customer or updates their profile, opts them back into broadcasts
//!   when they had opted out (`customer.opted_into_broadcasts`, and the `Resubscribed` text
//!   after the greeting), then sends the greeting and, when categories exist, a keyboard to
//!   pick one; `/close` closes the customer's tickets; `/stop` opts them out of broadcasts
//!   (`customer.opted_out_of_broadcasts`; replies to their tickets still come) and answers
//!   `Unsubscribed`; `/help` explains them;
//! - an edit is recorded on the ticket holding the edited message; an edit that arrives before
//!   its message is kept until the message is recorded, then applied ([`edits`]);
//! - a button press chooses a category, rates a resolved ticket, opts the customer out of
//!   broadcasts (the unsubscribe button under a broadcast, as `/stop`), or is recorded as a
//!   press of a broadcast's callback button (`broadcast.button_pressed`, answered
//!   `BroadcastButtonThanks`; a button the broadcast does not have, or a broadcast that never
//!   started, is answered `ButtonExpired` and records nothing); it is always answered so the
//!   customer's client stops its spinner;
//! - `my_chat_member` records that the customer blocked or unblocked the bot.
//!
//! # Exactly one effect per update
//!
//! Every command carries an idempotency key made of the bot id, the update id and the update's
//! own timestamp (or callback query id): Telegram numbers updates sequentially but picks a new
//! random start after a week without updates, so the update id alone could meet an old key.
//! A repeated update therefore writes nothing new. The updates the bot answers itself
//! (commands and button presses) are also claimed in `telegram_updates_handled` before
//! anything is written or sent, and marked there once fully handled:
//!
//! - a repeat that finds the mark is answered at once, without sending the greeting or a
//!   callback answer again;
//! - a repeat that arrives while another delivery holds the claim (Telegram retried while we
//!   were still working, or two instances poll) waits for it: when it finishes, the repeat is
//!   answered as such; when it fails, the repeat takes the claim and handles the update;
//! - a claim is a lease ([`CLAIM_LEASE`]): when its handler dies holding it, the next delivery
//!   after the lease ends handles the update, so nothing is lost. Only then (a crash after the
//!   answer was sent, before the mark) can the bot send its own answer twice; the log is never
//!   written twice.
//!
//! Errors that may pass (the log or the database is away, writers kept conflicting) are
//! returned as [`InboundError`], and the caller makes Telegram deliver the update again (the
//! webhook answers 500, polling does not move its offset). A rejection by the domain (bad
//! input, a closed ticket) is final and reported as [`Handled::Refused`]: delivering the update
//! again could not change it.
//!
//! # Never stuck behind one update
//!
//! An update that can never be recorded (the log refuses what it would write, a stored event
//! of the customer cannot be read by this code, its idempotency key was used for other work)
//! would otherwise be delivered again forever, and in long polling every later update would
//! wait behind it. Such an update is kept in `telegram_updates_unrecorded` instead, with its
//! raw JSON and the error, for an admin to look at ([`Handled::Unrecorded`]); the caller then
//! moves on. Text Postgres cannot hold (a NUL character) never gets that far: it is cleaned when
//! the update is read (see [`crate::update`]), and the message is recorded.
//!
//! Every update skipped on purpose (not for us, a kind the domain does not keep, a button we
//! did not make…) is logged at INFO with its kind and update id, never with its content.

use std::sync::Arc;
use std::time::{Duration, Instant};

use app::commands::{CommandContext, CommandError, CommandService};
use chrono::{DateTime, Utc};
use domain::broadcast::{Broadcast, BroadcastCommand, BroadcastError};
use domain::content::{CustomerMessage, MessageContent, TelegramMessageId};
use domain::customer::{Customer, CustomerCommand, CustomerError};
use domain::flow::{FlowError, RouteCustomerMessage};
use domain::settings::{BotText, Settings};
use domain::ticket::{Actor as TicketActor, Channel, Ticket, TicketCommand, TicketError};
use domain::{BroadcastId, CategoryId, CustomerId, MessageId, StreamId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind};
use serde_json::Value;
use teloxide::Bot;
use teloxide::payloads::{AnswerCallbackQuerySetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{
    CallbackQueryId, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, Update, UpdateKind,
};
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::callback::CallbackData;

mod edits;
use crate::start;
use crate::store::{Claim, EarlyEdits, HandledUpdates, UnrecordedUpdates};
use crate::update::{self, BotCommand, Inbound, IncomingMessage, Sender};

/// How long the settings (greeting, categories, reopen window) are reused before being read
/// from the log again.
const SETTINGS_TTL: Duration = Duration::from_secs(2);

/// How long a claim on an update the bot answers lasts. Handling takes well under a second;
/// the lease only matters when a handler dies holding it: the update is then taken over by
/// its next delivery once the lease ends.
const CLAIM_LEASE: Duration = Duration::from_secs(60);

/// How long a delivery of an update waits for another delivery of it that is being handled,
/// before answering that it may be delivered again.
const CLAIM_WAIT: Duration = Duration::from_secs(15);

/// The greeting in English when an admin has not set one.
pub const DEFAULT_GREETING: &str = BotText::Greeting.english();

/// The answer to `/help` in English when an admin has not set one.
pub const HELP: &str = BotText::Help.english();

/// What handling an update came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// Commands were run (or found to be satisfied already).
    Recorded,
    /// The same update was handled before; nothing was done.
    Duplicate,
    /// Not for us (a group message, an unsupported kind…).
    Ignored(&'static str),
    /// The domain refused it for good (the reason is fit for a log; no personal data).
    Refused(String),
    /// It can never be recorded; it is kept among the unrecorded updates with this error.
    Unrecorded(String),
}

/// Handling failed. Unless [`InboundError::is_permanent`], for a reason that may pass: the
/// update must be delivered again. [`Inbox::handle`] returns only errors that may pass.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct InboundError {
    message: String,
    permanent: bool,
}

impl InboundError {
    fn from_command<E: std::fmt::Display>(error: &CommandError<E>) -> Self {
        let permanent = match error {
            CommandError::Rejected(_) | CommandError::Decode { .. } | CommandError::KeyReused => {
                true
            }
            CommandError::Conflict { .. } => false,
            CommandError::Log(error) => {
                !error.is_transient() && !matches!(error, eventlog::Error::Conflict { .. })
            }
        };
        Self {
            message: error.to_string(),
            permanent,
        }
    }

    /// An update that cannot be read, not even from its JSON: delivering it again cannot help.
    fn unreadable(reason: &str) -> Self {
        Self {
            message: format!("the update cannot be read: {reason}"),
            permanent: true,
        }
    }

    /// Whether delivering the update again cannot help.
    #[must_use]
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }
}

impl From<sqlx::Error> for InboundError {
    fn from(error: sqlx::Error) -> Self {
        // Postgres' data exceptions (class 22: a value it cannot hold) come back every time;
        // anything else (a lost connection, a timeout) may pass.
        let permanent = error
            .as_database_error()
            .and_then(|db| db.code())
            .is_some_and(|code| code.starts_with("22"));
        Self {
            message: error.to_string(),
            permanent,
        }
    }
}

/// Turns updates into commands. Cheap to share behind an [`Arc`].
#[derive(Debug)]
pub struct Inbox {
    commands: CommandService<PostgresLog>,
    handled: HandledUpdates,
    early_edits: EarlyEdits,
    unrecorded: UnrecordedUpdates,
    bot: Bot,
    bot_id: String,
    settings: Mutex<Option<(Instant, Arc<Settings>)>>,
    /// Media storage, to prefetch incoming files (when its settings say so).
    media: std::sync::OnceLock<media::MediaService>,
}

impl Inbox {
    /// An inbox writing through `commands` (whose log's database also keeps the handled
    /// updates) and answering through `bot` (`bot_id`: the token's numeric part, which scopes
    /// the idempotency keys).
    pub fn new(commands: CommandService<PostgresLog>, bot: Bot, bot_id: impl Into<String>) -> Self {
        Self {
            handled: HandledUpdates::new(commands.log().pool().clone()),
            early_edits: EarlyEdits::new(commands.log().pool().clone()),
            unrecorded: UnrecordedUpdates::new(commands.log().pool().clone()),
            commands,
            bot,
            bot_id: bot_id.into(),
            settings: Mutex::new(None),
            media: std::sync::OnceLock::new(),
        }
    }

    /// Hands incoming files to `media` as they are recorded, which fetches them in the
    /// background when prefetching is on. Only the first call counts.
    pub fn prefetch_with(&self, media: media::MediaService) {
        let _ = self.media.set(media);
    }

    /// Starts fetching the file of a recorded message, when prefetching is on.
    fn prefetch(&self, content: &domain::content::MessageContent) {
        let (Some(media), Some(file)) = (self.media.get(), content.body.file()) else {
            return;
        };
        let details = content.media.as_deref();
        media.prefetch(media::TelegramSource {
            file_id: file.file_id.clone(),
            file_unique_id: Some(file.file_unique_id.clone()),
            mime_type: details.and_then(|d| d.mime_type.clone()),
            file_size: details.and_then(|d| d.file_size),
        });
    }

    /// Handles one update: see the module documentation. The same as
    /// [`Inbox::handle_raw`] without the raw body (an update that cannot be recorded is kept
    /// as teloxide reads it back).
    ///
    /// # Errors
    /// [`InboundError`] when the log or the database failed for a reason that may pass;
    /// nothing is lost, as long as the update is delivered again.
    pub async fn handle(&self, update: &Update) -> Result<Handled, InboundError> {
        self.handle_raw(update, None).await
    }

    /// Handles one update received as `raw` (the JSON body, kept when the update cannot be
    /// recorded).
    ///
    /// # Errors
    /// As [`Inbox::handle`].
    pub async fn handle_raw(
        &self,
        update: &Update,
        raw: Option<&[u8]>,
    ) -> Result<Handled, InboundError> {
        let key = update_key(&self.bot_id, update);
        match self.record(update, &key).await {
            Err(error) if error.is_permanent() => {
                let mut raw = raw
                    .and_then(|raw| serde_json::from_slice::<Value>(raw).ok())
                    .or_else(|| serde_json::to_value(update).ok())
                    .unwrap_or(Value::Null);
                eventlog::storable::replace_nul(&mut raw);
                let reason = eventlog::storable::without_nul(&error.message)
                    .unwrap_or_else(|| error.message.clone());
                self.unrecorded
                    .insert(&key, update.id.0, &raw, &reason)
                    .await?;
                tracing::warn!(
                    update_id = update.id.0,
                    update = kind_of(update),
                    error = %reason,
                    "the update can never be recorded; kept among the unrecorded updates"
                );
                Ok(Handled::Unrecorded(reason))
            }
            Err(error) => Err(error),
            Ok(Handled::Ignored(reason)) => {
                tracing::info!(
                    update_id = update.id.0,
                    update = kind_of(update),
                    kind = reason,
                    "update skipped"
                );
                Ok(Handled::Ignored(reason))
            }
            Ok(handled) => Ok(handled),
        }
    }

    async fn record(&self, update: &Update, key: &str) -> Result<Handled, InboundError> {
        let inbound = update::interpret(update, Utc::now());
        // Only updates the bot answers need a claim; the others are idempotent on the log by
        // their key alone, and skipping the claim saves two queries per message.
        let answers = matches!(inbound, Inbound::Command { .. } | Inbound::Callback { .. });
        let claim = if answers {
            match self.claim(key).await? {
                Some(claim) => Some(claim),
                None => {
                    tracing::debug!(update_id = update.id.0, "repeated update ignored");
                    return Ok(Handled::Duplicate);
                }
            }
        } else {
            None
        };
        let handled = self.dispatch(update, inbound, key).await;
        if let Some(claim) = claim {
            match &handled {
                // The update is handled whatever happens to the mark: asking Telegram for it
                // again would only answer the customer twice once the claim lapses.
                Ok(_) => {
                    if let Err(error) = self.handled.finish(key).await {
                        tracing::warn!(update_id = update.id.0, %error,
                            "could not mark an update handled; its claim lapses by itself");
                    }
                }
                // Telegram delivers the update again: let that delivery in at once.
                Err(_) => {
                    if let Err(error) = self.handled.release(key, claim).await {
                        tracing::warn!(update_id = update.id.0, %error,
                            "could not release the claim on an update; it lapses by itself");
                    }
                }
            }
        }
        handled
    }

    /// Claims the update of `key` before any side effect: `Some` when this delivery handles
    /// it, `None` when it was handled before. While another delivery of the same update is
    /// being handled, waits for it (up to [`CLAIM_WAIT`]): when that one finishes this is a
    /// repeat, when it fails (or its handler died and the lease ran out) this one takes over.
    async fn claim(&self, key: &str) -> Result<Option<Uuid>, InboundError> {
        let deadline = Instant::now() + CLAIM_WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            match self.handled.claim(key, CLAIM_LEASE).await? {
                Claim::Won(claim) => return Ok(Some(claim)),
                Claim::Handled => return Ok(None),
                Claim::Held if Instant::now() >= deadline => {
                    return Err(InboundError {
                        message: "another delivery of this update is still being handled"
                            .to_owned(),
                        permanent: false,
                    });
                }
                Claim::Held => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
            }
        }
    }

    async fn dispatch(
        &self,
        update: &Update,
        inbound: Inbound,
        key: &str,
    ) -> Result<Handled, InboundError> {
        let handled = match inbound {
            Inbound::Ignored { reason } => Handled::Ignored(reason),
            Inbound::Unreadable { reason } => return Err(InboundError::unreadable(reason)),
            Inbound::Message {
                sender,
                message,
                at,
            } => self.message(&sender, message, at, key).await?,
            Inbound::Command {
                sender,
                command,
                telegram_message_id,
                at,
            } => {
                let payload = match command {
                    BotCommand::Start => start::payload_of(update),
                    BotCommand::Close | BotCommand::Help | BotCommand::Stop => None,
                };
                self.command(&sender, command, telegram_message_id, payload, at, key)
                    .await?
            }
            Inbound::Edited {
                sender,
                telegram_message_id,
                content,
                at,
            } => {
                self.edited(&sender, telegram_message_id, content, at, key)
                    .await?
            }
            Inbound::Callback {
                sender,
                query_id,
                data,
                at,
            } => self.callback(&sender, query_id, data, at, key).await?,
            Inbound::BotBlocked { customer, at } => {
                self.blocked(customer, CustomerCommand::RecordBotBlocked { at }, key)
                    .await?
            }
            Inbound::BotUnblocked { customer, at } => {
                self.blocked(customer, CustomerCommand::RecordBotUnblocked { at }, key)
                    .await?
            }
        };
        if let Handled::Refused(reason) = &handled {
            tracing::info!(update_id = update.id.0, reason, "update refused");
        }
        Ok(handled)
    }

    async fn message(
        &self,
        sender: &Sender,
        message: IncomingMessage,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<Handled, InboundError> {
        let settings = self.settings().await?;
        let category = if settings.uses_categories() {
            let customer = self.customer(sender.customer).await?;
            customer
                .state()
                .and_then(|state| state.chosen_category)
                .filter(|chosen| settings.categories.contains_key(chosen))
        } else {
            None
        };
        let cmd = RouteCustomerMessage {
            customer: sender.customer,
            profile: sender.profile.clone(),
            category,
            new_ticket_id: TicketId::from_uuid(Uuid::now_v7()),
            channel: Channel::Telegram,
            message: CustomerMessage {
                message_id: MessageId::from_uuid(Uuid::now_v7()),
                telegram_message_id: message.telegram_message_id,
                reply_to: message.reply_to,
                content: message.content,
            },
            reopen_window: settings.reopen_window(),
            at,
        };
        let ctx = customer_context(sender.customer).idempotent(key);
        match self.commands.route_customer_message(&cmd, &ctx).await {
            Ok(routed) => {
                tracing::debug!(ticket.id = %routed.ticket_id, outcome = ?routed.outcome,
                    "customer message routed");
                self.apply_early_edits(sender, cmd.message.telegram_message_id)
                    .await?;
                self.prefetch(&cmd.message.content);
                Ok(Handled::Recorded)
            }
            Err(CommandError::Rejected(FlowError::Customer(CustomerError::Banned))) => {
                self.refuse(sender.customer, cmd.message, at, key).await
            }
            Err(CommandError::Rejected(rejection)) => Ok(Handled::Refused(rejection.to_string())),
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    /// Keeps a banned customer's message on their stream; no ticket, no answer.
    async fn refuse(
        &self,
        customer: CustomerId,
        message: CustomerMessage,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<Handled, InboundError> {
        let ctx = customer_context(customer).idempotent(format!("{key}:refused"));
        let command = CustomerCommand::RecordRefusedMessage { message, at };
        match self
            .commands
            .execute::<Customer>(StreamId::Customer(customer), &command, &ctx)
            .await
        {
            Ok(_) => Ok(Handled::Refused("the customer is banned".to_owned())),
            Err(CommandError::Rejected(rejection)) => Ok(Handled::Refused(rejection.to_string())),
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    async fn command(
        &self,
        sender: &Sender,
        command: BotCommand,
        telegram_message_id: TelegramMessageId,
        start_payload: Option<String>,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<Handled, InboundError> {
        let customer = self.register(sender, at, key).await?;
        if customer.state().is_some_and(|state| state.banned) {
            let message = CustomerMessage {
                message_id: MessageId::from_uuid(Uuid::now_v7()),
                telegram_message_id,
                reply_to: None,
                content: MessageContent::text(command_text(command)),
            };
            return self.refuse(sender.customer, message, at, key).await;
        }
        let chat = ChatId(sender.customer.0);
        let settings = self.settings().await?;
        let language = sender.profile.language_code.as_deref();
        let text = |key| settings.bot_text(key, language).to_owned();
        match command {
            BotCommand::Start => {
                if let Some(payload) = start_payload {
                    self.record_start_payload(sender.customer, payload, at, key)
                        .await?;
                }
                let mut greeting = text(BotText::Greeting);
                if customer.state().is_some_and(|state| state.opted_out) {
                    let command = CustomerCommand::OptIntoBroadcasts { at };
                    self.opt(sender.customer, command, &format!("{key}:opt_in"))
                        .await?;
                    greeting = format!("{greeting}\n\n{}", text(BotText::Resubscribed));
                }
                let sent = if settings.uses_categories() {
                    let question = text(BotText::CategoryQuestion);
                    self.bot
                        .send_message(chat, format!("{greeting}\n\n{question}"))
                        .reply_markup(category_keyboard(&settings))
                        .await
                } else {
                    self.bot.send_message(chat, greeting).await
                };
                log_failed_send("greeting", sent.err());
            }
            BotCommand::Help => {
                let sent = self.bot.send_message(chat, text(BotText::Help)).await;
                log_failed_send("help", sent.err());
            }
            BotCommand::Stop => {
                let command = CustomerCommand::OptOutOfBroadcasts { at };
                self.opt(sender.customer, command, &format!("{key}:opt_out"))
                    .await?;
                let sent = self
                    .bot
                    .send_message(chat, text(BotText::Unsubscribed))
                    .await;
                log_failed_send("unsubscribed", sent.err());
            }
            BotCommand::Close => {
                let closed = self.close(&customer, at, key).await?;
                let answer = if closed == 0 {
                    BotText::NoOpenTicket
                } else {
                    BotText::TicketClosed
                };
                let sent = self.bot.send_message(chat, text(answer)).await;
                log_failed_send("close", sent.err());
            }
        }
        Ok(Handled::Recorded)
    }

    /// Records the payload of a `/start` on the customer's stream. A payload the domain
    /// refuses (never, once [`start::payload`] bounded it) is logged and skipped: it must not
    /// stop the greeting.
    async fn record_start_payload(
        &self,
        customer: CustomerId,
        payload: String,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<(), InboundError> {
        let ctx = customer_context(customer).idempotent(format!("{key}:start_payload"));
        let command = CustomerCommand::RecordStartPayload { payload, at };
        match self
            .commands
            .execute::<Customer>(StreamId::Customer(customer), &command, &ctx)
            .await
        {
            Ok(_) => Ok(()),
            Err(CommandError::Rejected(rejection)) => {
                tracing::info!(reason = %rejection, "start payload not recorded");
                Ok(())
            }
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    /// Closes every ticket of the customer that is not closed yet; returns how many.
    async fn close(
        &self,
        customer: &Customer,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<usize, InboundError> {
        let Some(state) = customer.state() else {
            return Ok(0);
        };
        let ctx = customer_context(state.id);
        let mut closed = 0;
        for ticket in state.tickets.keys() {
            let command = TicketCommand::Close {
                by: TicketActor::Customer,
                at,
            };
            let ctx = ctx.clone().idempotent(format!("{key}:close:{ticket}"));
            match self.commands.execute_ticket(*ticket, &command, &ctx).await {
                Ok(executed) if !executed.events.is_empty() => closed += 1,
                Ok(_) | Err(CommandError::Rejected(_)) => {}
                Err(error) => return Err(InboundError::from_command(&error)),
            }
        }
        Ok(closed)
    }

    async fn callback(
        &self,
        sender: &Sender,
        query_id: String,
        data: Option<CallbackData>,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<Handled, InboundError> {
        let (handled, answer) = match data {
            None => (
                Handled::Ignored("a button we did not make"),
                Some(BotText::ButtonExpired),
            ),
            Some(CallbackData::Category(category)) => {
                self.choose_category(sender, category, at, key).await?
            }
            Some(CallbackData::Rating { ticket, rating }) => {
                self.rate(sender, ticket, rating, at, key).await?
            }
            Some(CallbackData::BroadcastButton { broadcast, index }) => {
                self.press(sender, broadcast, index, at, key).await?
            }
            // Which broadcast carried the button does not matter: the customer wants none.
            Some(CallbackData::Unsubscribe(_)) => self.unsubscribe(sender, at, key).await?,
        };
        let request = self.bot.answer_callback_query(CallbackQueryId(query_id));
        let answered = match answer {
            Some(text) => {
                let settings = self.settings().await?;
                let language = sender.profile.language_code.as_deref();
                request
                    .text(settings.bot_text(text, language).to_owned())
                    .await
            }
            None => request.await,
        };
        log_failed_send("callback answer", answered.err());
        Ok(handled)
    }

    async fn choose_category(
        &self,
        sender: &Sender,
        category: CategoryId,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<(Handled, Option<BotText>), InboundError> {
        let settings = self.settings().await?;
        if !settings.categories.contains_key(&category) {
            return Ok((
                Handled::Ignored("a category that no longer exists"),
                Some(BotText::CategoryGone),
            ));
        }
        let customer = self.register(sender, at, key).await?;
        if customer.state().is_some_and(|state| state.banned) {
            return Ok((
                Handled::Ignored("a button pressed by a banned customer"),
                None,
            ));
        }
        let ctx = customer_context(sender.customer).idempotent(format!("{key}:category"));
        let command = CustomerCommand::ChooseCategory {
            category: Some(category),
            at,
        };
        match self
            .commands
            .execute::<Customer>(StreamId::Customer(sender.customer), &command, &ctx)
            .await
        {
            Ok(_) => Ok((Handled::Recorded, Some(BotText::CategoryChosen))),
            Err(CommandError::Rejected(rejection)) => {
                Ok((Handled::Refused(rejection.to_string()), None))
            }
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    /// Records a press of a broadcast's callback button. Anyone who got the message may
    /// press; a forged button of a broadcast that never started, or one the broadcast does not
    /// have, records nothing.
    async fn press(
        &self,
        sender: &Sender,
        broadcast: BroadcastId,
        index: u8,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<(Handled, Option<BotText>), InboundError> {
        let command = BroadcastCommand::PressButton {
            customer: sender.customer,
            index,
            at,
        };
        let ctx = customer_context(sender.customer).idempotent(key);
        match self
            .commands
            .execute::<Broadcast>(StreamId::Broadcast(broadcast), &command, &ctx)
            .await
        {
            Ok(_) => Ok((Handled::Recorded, Some(BotText::BroadcastButtonThanks))),
            Err(CommandError::Rejected(
                BroadcastError::NotDrafted
                | BroadcastError::NotStarted
                | BroadcastError::NoSuchButton(_),
            )) => Ok((
                Handled::Ignored("a button of a broadcast that never started or lacks it"),
                Some(BotText::ButtonExpired),
            )),
            Err(CommandError::Rejected(rejection)) => Ok((
                Handled::Refused(rejection.to_string()),
                Some(BotText::ButtonExpired),
            )),
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    /// The unsubscribe button under a broadcast: as `/stop`, answered on the button.
    async fn unsubscribe(
        &self,
        sender: &Sender,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<(Handled, Option<BotText>), InboundError> {
        let customer = self.register(sender, at, key).await?;
        if customer.state().is_some_and(|state| state.banned) {
            return Ok((
                Handled::Ignored("a button pressed by a banned customer"),
                None,
            ));
        }
        let command = CustomerCommand::OptOutOfBroadcasts { at };
        let handled = self
            .opt(sender.customer, command, &format!("{key}:opt_out"))
            .await?;
        Ok((handled, Some(BotText::Unsubscribed)))
    }

    /// Opts the customer out of broadcasts or back in (nothing is written when they already
    /// are).
    async fn opt(
        &self,
        customer: CustomerId,
        command: CustomerCommand,
        key: &str,
    ) -> Result<Handled, InboundError> {
        let ctx = customer_context(customer).idempotent(key);
        match self
            .commands
            .execute::<Customer>(StreamId::Customer(customer), &command, &ctx)
            .await
        {
            Ok(_) => Ok(Handled::Recorded),
            Err(CommandError::Rejected(rejection)) => Ok(Handled::Refused(rejection.to_string())),
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    async fn rate(
        &self,
        sender: &Sender,
        ticket: TicketId,
        rating: u8,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<(Handled, Option<BotText>), InboundError> {
        let state = self
            .commands
            .state::<Ticket>(StreamId::Ticket(ticket))
            .await
            .map_err(|error| InboundError::from_command(&error))?;
        // Buttons can be forged: only the ticket's own customer may rate it.
        if state.state().map(|t| t.customer) != Some(sender.customer) {
            return Ok((
                Handled::Ignored("a rating for another customer's ticket"),
                Some(BotText::ButtonExpired),
            ));
        }
        let command = TicketCommand::Rate {
            rating,
            comment: None,
            at,
        };
        let ctx = customer_context(sender.customer).idempotent(key);
        match self.commands.execute_ticket(ticket, &command, &ctx).await {
            Ok(_) => Ok((Handled::Recorded, Some(BotText::RatingThanks))),
            Err(CommandError::Rejected(FlowError::Ticket(TicketError::AlreadyRated))) => Ok((
                Handled::Refused("the ticket was rated before".to_owned()),
                Some(BotText::AlreadyRated),
            )),
            Err(CommandError::Rejected(rejection)) => Ok((
                Handled::Refused(rejection.to_string()),
                Some(BotText::CannotRate),
            )),
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    async fn blocked(
        &self,
        customer: CustomerId,
        command: CustomerCommand,
        key: &str,
    ) -> Result<Handled, InboundError> {
        let ctx = customer_context(customer).idempotent(key);
        match self
            .commands
            .execute::<Customer>(StreamId::Customer(customer), &command, &ctx)
            .await
        {
            Ok(_) => Ok(Handled::Recorded),
            Err(CommandError::Rejected(CustomerError::NotRegistered)) => Ok(Handled::Ignored(
                "a chat member change of an unknown customer",
            )),
            Err(CommandError::Rejected(rejection)) => Ok(Handled::Refused(rejection.to_string())),
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    /// Registers the sender, or records their new profile; returns the customer as it was
    /// before (with the ban flag the caller needs).
    async fn register(
        &self,
        sender: &Sender,
        at: DateTime<Utc>,
        key: &str,
    ) -> Result<Customer, InboundError> {
        let customer = self.customer(sender.customer).await?;
        let command = match customer.state() {
            None => CustomerCommand::Register {
                customer_id: sender.customer,
                profile: sender.profile.clone(),
                at,
            },
            Some(state) if state.profile != sender.profile => CustomerCommand::UpdateProfile {
                profile: sender.profile.clone(),
                at,
            },
            Some(_) => return Ok(customer),
        };
        let ctx = customer_context(sender.customer).idempotent(format!("{key}:profile"));
        match self
            .commands
            .execute::<Customer>(StreamId::Customer(sender.customer), &command, &ctx)
            .await
        {
            // Registered meanwhile by a concurrent update, or a profile Telegram sent that
            // breaks our bounds: neither stops the command itself.
            Ok(_) | Err(CommandError::Rejected(_)) => Ok(customer),
            Err(error) => Err(InboundError::from_command(&error)),
        }
    }

    async fn customer(&self, customer: CustomerId) -> Result<Customer, InboundError> {
        self.commands
            .state::<Customer>(StreamId::Customer(customer))
            .await
            .map_err(|error| InboundError::from_command(&error))
    }

    /// The settings, read from the log at most every [`SETTINGS_TTL`].
    async fn settings(&self) -> Result<Arc<Settings>, InboundError> {
        let mut cached = self.settings.lock().await;
        if let Some((read_at, settings)) = cached.as_ref()
            && read_at.elapsed() < SETTINGS_TTL
        {
            return Ok(Arc::clone(settings));
        }
        let settings = Arc::new(
            self.commands
                .state::<Settings>(StreamId::Settings)
                .await
                .map_err(|error| InboundError::from_command(&error))?,
        );
        *cached = Some((Instant::now(), Arc::clone(&settings)));
        Ok(settings)
    }

    /// Forgets handled updates older than `age` (Telegram gives up redelivering long before),
    /// and edits kept that long whose message never came.
    ///
    /// # Errors
    /// The database's error.
    pub async fn forget_handled(&self, age: Duration) -> Result<u64, sqlx::Error> {
        let handled = self.handled.forget_older_than(age).await?;
        let edits = self.early_edits.forget_older_than(age).await?;
        Ok(handled + edits)
    }
}

/// The idempotency key of an update (see the module documentation).
#[must_use]
pub fn update_key(bot_id: &str, update: &Update) -> String {
    let stamp = match &update.kind {
        UpdateKind::Message(message) => message.date.timestamp().to_string(),
        UpdateKind::EditedMessage(message) => message
            .edit_date()
            .unwrap_or(&message.date)
            .timestamp()
            .to_string(),
        // Telegram's query ids are a score of digits; a longer one is cut so the key stays
        // within the log's bound on idempotency keys.
        UpdateKind::CallbackQuery(query) => query.id.0.chars().take(64).collect(),
        UpdateKind::MyChatMember(member) => member.date.timestamp().to_string(),
        UpdateKind::Error(raw) => update::raw_stamp(raw),
        _ => String::new(),
    };
    let key = format!("telegram:{bot_id}:{}:{stamp}", update.id.0);
    // A callback query id is the sender's text: it must not make the key unstorable.
    eventlog::storable::without_nul(&key).unwrap_or(key)
}

/// The kind of an update, as Telegram names its field, for logs.
fn kind_of(update: &Update) -> &'static str {
    match &update.kind {
        UpdateKind::Message(_) => "message",
        UpdateKind::EditedMessage(_) => "edited_message",
        UpdateKind::CallbackQuery(_) => "callback_query",
        UpdateKind::MyChatMember(_) => "my_chat_member",
        UpdateKind::ChannelPost(_) => "channel_post",
        UpdateKind::EditedChannelPost(_) => "edited_channel_post",
        UpdateKind::BusinessConnection(_) => "business_connection",
        UpdateKind::BusinessMessage(_) => "business_message",
        UpdateKind::EditedBusinessMessage(_) => "edited_business_message",
        UpdateKind::DeletedBusinessMessages(_) => "deleted_business_messages",
        UpdateKind::InlineQuery(_) => "inline_query",
        UpdateKind::ChosenInlineResult(_) => "chosen_inline_result",
        UpdateKind::Poll(_) => "poll",
        UpdateKind::PollAnswer(_) => "poll_answer",
        UpdateKind::MessageReaction(_) => "message_reaction",
        UpdateKind::MessageReactionCount(_) => "message_reaction_count",
        UpdateKind::ShippingQuery(_) => "shipping_query",
        UpdateKind::PreCheckoutQuery(_) => "pre_checkout_query",
        UpdateKind::PurchasedPaidMedia(_) => "purchased_paid_media",
        UpdateKind::ChatMember(_) => "chat_member",
        UpdateKind::ChatJoinRequest(_) => "chat_join_request",
        UpdateKind::ChatBoost(_) => "chat_boost",
        UpdateKind::RemovedChatBoost(_) => "removed_chat_boost",
        UpdateKind::Error(_) => "unreadable",
    }
}

fn customer_context(customer: CustomerId) -> CommandContext {
    CommandContext::new(Actor::new(ActorKind::Customer, customer.0.to_string()))
}

const fn command_text(command: BotCommand) -> &'static str {
    match command {
        BotCommand::Start => "/start",
        BotCommand::Close => "/close",
        BotCommand::Help => "/help",
        BotCommand::Stop => "/stop",
    }
}

/// One button per category, in name order.
fn category_keyboard(settings: &Settings) -> InlineKeyboardMarkup {
    let mut categories: Vec<_> = settings.categories.iter().collect();
    categories.sort_by_key(|(_, name)| name.to_lowercase());
    InlineKeyboardMarkup::new(categories.into_iter().map(|(id, name)| {
        [InlineKeyboardButton::callback(
            name.clone(),
            CallbackData::Category(*id).to_string(),
        )]
    }))
}

/// The bot's own answers are a courtesy: a failure is logged, never retried (a retry of the
/// update would not send it either, as the commands are already recorded).
fn log_failed_send(what: &'static str, error: Option<teloxide::RequestError>) {
    if let Some(error) = error {
        tracing::warn!(what, error = %describe(&error), "could not answer the customer");
    }
}

/// A Telegram error without the raw response body (it may hold personal data). teloxide
/// already strips the token from network errors.
#[must_use]
pub fn describe(error: &teloxide::RequestError) -> String {
    match error {
        teloxide::RequestError::InvalidJson { source, .. } => {
            format!("an unreadable answer from the Bot API: {source}")
        }
        other => other.to_string(),
    }
}
