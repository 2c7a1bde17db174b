//! Updates fetched with `getUpdates` (long polling), the default way when no webhook URL is
//! set: it needs no public address.
//!
//! Updates are handled one by one, in Telegram's order. The offset moves past an update only
//! once it is handled; when handling fails for a reason that may pass (the log is down), the
//! same update is tried again with a growing pause, so nothing is skipped. An update that can
//! never be recorded is kept among the unrecorded updates by the [`Inbox`], which counts as
//! handled: the offset moves on and the updates behind it are not held up. After a restart Telegram sends again every
//! update that was not confirmed by a later `getUpdates`, and the [`Inbox`] recognises those
//! it had handled already.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use teloxide::Bot;
use teloxide::RequestError;
use teloxide::payloads::GetUpdatesSetters;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, Update};
use tokio_util::sync::CancellationToken;

use crate::inbound::{Inbox, describe};

/// The update kinds the bot asks for (also used when registering a webhook).
pub const ALLOWED_UPDATES: [AllowedUpdate; 4] = [
    AllowedUpdate::Message,
    AllowedUpdate::EditedMessage,
    AllowedUpdate::CallbackQuery,
    AllowedUpdate::MyChatMember,
];

/// The longest pause after a failure.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Polls until `shutdown` is cancelled. A webhook would make `getUpdates` fail, so any webhook
/// set earlier is removed first (pending updates are kept).
pub async fn run(bot: Bot, inbox: Arc<Inbox>, timeout: Duration, shutdown: &CancellationToken) {
    let mut pause = Pause::default();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            removed = bot.delete_webhook() => match removed {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(error = %describe(&error), "cannot remove the webhook before polling");
                    if pause.wait(shutdown).await.is_err() {
                        return;
                    }
                }
            },
        }
    }
    tracing::info!("telegram bot polling for updates");
    let mut pause = Pause::default();
    let mut offset: Option<i32> = None;
    let timeout_secs = u32::try_from(timeout.as_secs()).unwrap_or(10);
    loop {
        let mut request = bot
            .get_updates()
            .timeout(timeout_secs)
            .allowed_updates(ALLOWED_UPDATES);
        if let Some(offset) = offset {
            request = request.offset(offset);
        }
        let fetched = tokio::select! {
            () = shutdown.cancelled() => return,
            fetched = request => fetched,
        };
        match fetched {
            Ok(updates) => {
                pause = Pause::default();
                for update in updates {
                    if handle(&inbox, &update, shutdown).await.is_err() {
                        return;
                    }
                    offset = Some(next_offset(&update));
                }
            }
            Err(RequestError::RetryAfter(seconds)) => {
                let wait = seconds.duration();
                tracing::warn!(seconds = wait.as_secs(), "telegram asks to slow down");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %describe(&error), "getUpdates failed");
                if pause.wait(shutdown).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Handles one update, trying again until it is recorded; `Err` only when shutting down.
async fn handle(inbox: &Inbox, update: &Update, shutdown: &CancellationToken) -> Result<(), ()> {
    let mut pause = Pause::default();
    loop {
        match inbox.handle(update).await {
            Ok(_) => return Ok(()),
            Err(error) => {
                tracing::error!(update_id = update.id.0, %error, "update not recorded, trying again");
                pause.wait(shutdown).await?;
            }
        }
    }
}

fn next_offset(update: &Update) -> i32 {
    i32::try_from(update.id.0).map_or(i32::MAX, |id| id.saturating_add(1))
}

/// Doubling pauses from 250 ms up to [`MAX_PAUSE`].
#[derive(Debug)]
struct Pause(ExponentialBackoff);

impl Default for Pause {
    fn default() -> Self {
        let pauses = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(250))
            .with_factor(2.0)
            .with_max_delay(MAX_PAUSE)
            .without_max_times();
        Self(pauses.build())
    }
}

impl Pause {
    /// Sleeps, and the next pause is twice as long; `Err` when `shutdown` was cancelled first.
    async fn wait(&mut self, shutdown: &CancellationToken) -> Result<(), ()> {
        // The pauses have no end; were they to run out, the longest would stand in.
        let wait = self.0.next().unwrap_or(MAX_PAUSE);
        tokio::select! {
            () = shutdown.cancelled() => Err(()),
            () = tokio::time::sleep(wait) => Ok(()),
        }
    }
}
