//! Updates fetched with `getUpdates` (long polling), the default way when no webhook URL is
//! set: it needs no public address.
//!
//! `getUpdates` goes through teloxide's HTTP client and settings, but its answer is read as
//! JSON first and each update then by teloxide: teloxide keeps nothing of a message it cannot
//! read (a text quoting another chat reads as a message without content), and with the JSON
//! at hand [`crate::update`] reads what it can, as the webhook does.
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
use serde_json::{Value, json};
use teloxide::Bot;
use teloxide::prelude::Requester;
use teloxide::types::{AllowedUpdate, Update};
use tokio_util::sync::CancellationToken;

use crate::inbound::{Inbox, describe};
use crate::update;

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
        let fetched = tokio::select! {
            () = shutdown.cancelled() => return,
            fetched = fetch(&bot, offset, timeout_secs) => fetched,
        };
        match fetched {
            Ok(updates) => {
                pause = Pause::default();
                for (update, raw) in updates {
                    if handle(&inbox, &update, &raw, shutdown).await.is_err() {
                        return;
                    }
                    offset = Some(next_offset(&update));
                }
            }
            Err(Fetch::RetryAfter(wait)) => {
                tracing::warn!(seconds = wait.as_secs(), "telegram asks to slow down");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            Err(Fetch::Failed(error)) => {
                tracing::warn!(%error, "getUpdates failed");
                if pause.wait(shutdown).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Why `getUpdates` gave no updates.
#[derive(Debug)]
enum Fetch {
    /// Telegram asks to wait this long (429).
    RetryAfter(Duration),
    /// Anything else, described without the token or the answer's body.
    Failed(String),
}

/// One `getUpdates` call: each update as teloxide reads it (given its JSON where teloxide kept
/// too little, see [`update::with_raw`]) with its JSON text.
async fn fetch(
    bot: &Bot,
    offset: Option<i32>,
    timeout_secs: u32,
) -> Result<Vec<(Update, String)>, Fetch> {
    let mut url = bot.api_url();
    url.path_segments_mut()
        .map_err(|()| Fetch::Failed("the Bot API URL cannot take a path".to_owned()))?
        .push(&format!("bot{}", bot.token()))
        .push("getUpdates");
    let mut params = json!({ "timeout": timeout_secs, "allowed_updates": ALLOWED_UPDATES });
    if let Some(offset) = offset {
        params["offset"] = offset.into();
    }
    // The URL holds the token: errors are described without it.
    let failed = |error: reqwest::Error| Fetch::Failed(error.without_url().to_string());
    let response = bot
        .client()
        .post(url)
        .json(&params)
        .send()
        .await
        .map_err(failed)?;
    let text = response.text().await.map_err(failed)?;
    let answer: Value = serde_json::from_str(&text).map_err(|error| {
        Fetch::Failed(format!("an unreadable answer from the Bot API: {error}"))
    })?;
    if answer["ok"] != Value::Bool(true) {
        if let Some(seconds) = answer["parameters"]["retry_after"].as_u64() {
            return Err(Fetch::RetryAfter(Duration::from_secs(seconds)));
        }
        return Err(Fetch::Failed(format!(
            "the Bot API answered {} {}",
            answer["error_code"],
            answer["description"].as_str().unwrap_or_default()
        )));
    }
    let Some(results) = answer["result"].as_array() else {
        return Err(Fetch::Failed(
            "an answer from the Bot API without updates".to_owned(),
        ));
    };
    let mut updates = Vec::with_capacity(results.len());
    for raw in results {
        // From text: teloxide reads an update's kind from a borrowed key.
        let text = raw.to_string();
        match serde_json::from_str::<Update>(&text) {
            Ok(mut update) => {
                if update::needs_raw(&update) {
                    update::with_raw(&mut update, raw.clone());
                }
                updates.push((update, text));
            }
            // Without an update id there is nothing to handle, nor an offset to move past.
            Err(error) => tracing::warn!(%error, "getUpdates returned an update without an id"),
        }
    }
    Ok(updates)
}

/// Handles one update (`raw`: its JSON), trying again until it is recorded; `Err` only when
/// shutting down.
async fn handle(
    inbox: &Inbox,
    update: &Update,
    raw: &str,
    shutdown: &CancellationToken,
) -> Result<(), ()> {
    let mut pause = Pause::default();
    loop {
        match inbox.handle_raw(update, Some(raw.as_bytes())).await {
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
