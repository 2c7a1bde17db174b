//! Previews of a broadcast: `broadcast.preview_requested` asks for the draft (the content the
//! event carries) in one chat; the worker sends it within the bot's rate limits, as it would
//! send the broadcast, and records `broadcast.preview_sent` (the Telegram message id) or
//! `broadcast.preview_failed` (Telegram's description). A preview counts nothing on the
//! broadcast and changes nothing of the customer (a 403 is reported, not recorded as a block:
//! the chat may be an agent's).
//!
//! As for replies, the outcome is what prevents a second send: a preview whose outcome the
//! broadcast records is never sent again; one that was sent just before a crash, without its
//! outcome, is sent again after the restart.

use std::time::Duration;

use app::commands::{CommandContext, CommandError};
use chrono::Utc;
use domain::broadcast::{
    Broadcast, BroadcastCommand, BroadcastContent, BroadcastEvent, PreviewOutcome, PreviewStatus,
};
use domain::content::TelegramMessageId;
use domain::customer::Customer;
use domain::settings::{BotText, Settings};
use domain::{BroadcastId, CustomerId, DomainEvent, StreamId};
use eventlog::{Actor, ActorKind, RecordedEvent};
use uuid::Uuid;

use super::job::{Context, Ended, NotNow};
use super::send::{Part, Sent};

/// The reason recorded when the chat blocked the bot (Telegram's own words).
const BLOCKED: &str = "Forbidden: bot was blocked by the user";

/// How many times the outcome is written once the worker is stopping, before giving up.
const RECORD_ATTEMPTS_WHILE_STOPPING: u32 = 3;

/// One preview to send.
#[derive(Debug)]
pub(super) struct Preview {
    pub(super) broadcast: BroadcastId,
    pub(super) preview_id: Uuid,
    pub(super) chat: i64,
    pub(super) content: BroadcastContent,
}

/// The preview `event` (a `broadcast.preview_requested`) asks for, unless its outcome is
/// recorded already.
pub(super) async fn preview_for(
    ctx: &Context,
    event: &RecordedEvent,
) -> Result<Option<Preview>, NotNow> {
    let Ok(StreamId::Broadcast(broadcast)) = event.stream_id.parse::<StreamId>() else {
        return Ok(None);
    };
    let requested = match BroadcastEvent::decode(
        &event.event_type,
        event.schema_version,
        &event.payload,
    ) {
        Ok(BroadcastEvent::PreviewRequested(requested)) => requested,
        _ => {
            tracing::error!(broadcast.id = %broadcast.0, "cannot read a preview request; skipped");
            return Ok(None);
        }
    };
    let state = match ctx.commands.state::<Broadcast>(broadcast.stream()).await {
        Ok(state) => state,
        Err(CommandError::Decode {
            stream, version, ..
        }) => {
            tracing::error!(%stream, version, "a stored broadcast event cannot be read; skipped");
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let pending = state.state().is_some_and(|state| {
        matches!(
            state.interactions.previews.get(&requested.preview_id),
            Some(PreviewStatus::Pending { .. })
        )
    });
    if !pending {
        return Ok(None);
    }
    Ok(Some(Preview {
        broadcast,
        preview_id: requested.preview_id,
        chat: requested.chat,
        content: requested.content,
    }))
}

/// The message a preview becomes: the broadcast's message as a recipient would get it, the
/// unsubscribe button labelled in the language of the chat's user when they are a customer
/// (else English).
async fn part(ctx: &Context, preview: &Preview) -> Part {
    let customer = ctx
        .commands
        .state::<Customer>(StreamId::Customer(CustomerId(preview.chat)))
        .await;
    let language = match &customer {
        Ok(customer) => customer
            .state()
            .and_then(|state| state.profile.language_code.as_deref()),
        Err(_) => None,
    };
    let settings = match ctx.commands.state::<Settings>(StreamId::Settings).await {
        Ok(settings) => settings,
        Err(error) => {
            tracing::warn!(%error, "cannot read the settings for a preview; built-in texts");
            Settings::default()
        }
    };
    let label = settings.bot_text(BotText::UnsubscribeButton, language);
    super::broadcast_message::message(preview.broadcast, &preview.content, Some(label))
}

/// Sends the preview and records its outcome.
pub(super) async fn run(ctx: &Context, cause: Uuid, preview: &Preview) -> Ended {
    let part = part(ctx, preview).await;
    let outcome = match ctx.sender.send(preview.chat, &part).await {
        Sent::Accepted(id) => PreviewOutcome::Sent {
            telegram_message_id: TelegramMessageId(id),
        },
        Sent::Blocked => PreviewOutcome::Failed {
            reason: BLOCKED.to_owned(),
        },
        Sent::Failed { reason, .. } => PreviewOutcome::Failed { reason },
        Sent::Stopped => return Ended::Abandoned,
    };
    let sent = matches!(outcome, PreviewOutcome::Sent { .. });
    let command = BroadcastCommand::RecordPreviewOutcome {
        preview_id: preview.preview_id,
        outcome,
        at: Utc::now(),
    };
    let context = CommandContext::new(Actor::new(ActorKind::Bot, "delivery"))
        .caused_by(cause)
        .idempotent(format!("preview:{}", preview.preview_id));
    let mut failures = 0;
    let mut pauses = ctx.sender.pauses();
    loop {
        let written = ctx
            .commands
            .execute::<Broadcast>(preview.broadcast.stream(), &command, &context)
            .await;
        let error = match written {
            Ok(_) => {
                tracing::info!(broadcast.id = %preview.broadcast.0, sent, "broadcast preview done");
                return Ended::Finished;
            }
            Err(CommandError::Rejected(rejection)) => {
                tracing::info!(%rejection, "the preview's outcome was refused; nothing to record");
                return Ended::Finished;
            }
            Err(CommandError::Decode { .. } | CommandError::KeyReused) => {
                tracing::error!(broadcast.id = %preview.broadcast.0,
                    "cannot record the preview's outcome");
                return Ended::Finished;
            }
            Err(error) => error,
        };
        failures += 1;
        if ctx.sender.stopping() && failures >= RECORD_ATTEMPTS_WHILE_STOPPING {
            tracing::error!(%error, "stopping; gave up recording a preview's outcome");
            return Ended::Abandoned;
        }
        let mut pause = pauses.next_pause();
        if ctx.sender.stopping() {
            pause = pause.min(Duration::from_secs(1));
        }
        tracing::warn!(%error, attempt = failures, "could not record a preview's outcome; retrying");
        tokio::time::sleep(pause).await;
    }
}
