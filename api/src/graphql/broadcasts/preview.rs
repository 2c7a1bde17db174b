//! `sendBroadcastPreview`: the draft sent to one chat (an agent's own) before the broadcast
//! starts, without touching its counters.
//!
//! The API never talks to Telegram: the mutation records `broadcast.preview_requested` (with the
//! content as it is now) and the delivery worker, which alone holds the bot's rate limits,
//! sends it and records `broadcast.preview_sent` or `broadcast.preview_failed` with Telegram's
//! words. The mutation waits up to [`WAIT`] for that outcome and returns it; a preview still
//! pending then is sent all the same, and its outcome shows in the log.
//!
//! Bounds: `WriteBroadcasts` and a signed-in agent; [`PER_MINUTE`] previews per agent and
//! minute in each process; at most [`domain::broadcast::MAX_PREVIEWS`] per broadcast; never
//! to a Telegram user who opted out of broadcasts or was banned.

use std::num::NonZeroU32;
use std::sync::LazyLock;
use std::time::Duration;

use app::commands::Executed;
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject,
};
use chrono::Utc;
use domain::broadcast::{Broadcast, BroadcastCommand, BroadcastEvent};
use domain::customer::Customer;
use domain::{AgentId, BroadcastId, CustomerId, DomainEvent, StreamId};
use eventlog::{Direction, EventLog};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::auth::Permission;
use crate::graphql::commands::{context, position, timed, uuid};
use crate::graphql::context::Api;
use crate::graphql::error::{self, Code, error, failed};
use crate::graphql::guard::{Need, signed_in_agent};

/// How long the mutation waits for the worker's outcome.
pub const WAIT: Duration = Duration::from_secs(10);

/// Previews one agent may ask for per minute (per process).
pub const PER_MINUTE: u32 = 10;

static PREVIEWS: LazyLock<DefaultKeyedRateLimiter<AgentId>> = LazyLock::new(|| {
    RateLimiter::keyed(Quota::per_minute(
        NonZeroU32::new(PER_MINUTE).unwrap_or(NonZeroU32::MIN),
    ))
});

/// Input of `sendBroadcastPreview`.
#[derive(Debug, InputObject)]
pub struct SendBroadcastPreviewInput {
    /// The broadcast (a draft or scheduled).
    pub broadcast_id: ID,
    /// The Telegram user whose private chat with the bot gets the preview (they must have
    /// started the bot).
    pub telegram_user_id: ID,
    /// Makes a retry harmless (it returns the first call's preview).
    pub idempotency_key: Option<String>,
}

/// Where a preview stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PreviewStateValue {
    /// Not sent yet (the worker is busy, or waiting out Telegram's limits).
    Pending,
    /// Telegram accepted it.
    Sent,
    /// It did not go out: see `failureReason`.
    Failed,
}

/// What `sendBroadcastPreview` did.
#[derive(Debug, Clone, SimpleObject)]
pub struct BroadcastPreviewPayload {
    /// The preview.
    pub preview_id: ID,
    /// The log position of the request.
    pub position: Option<String>,
    /// Where it stands after the wait.
    pub state: PreviewStateValue,
    /// Telegram's id of the message, once sent.
    pub telegram_message_id: Option<i32>,
    /// Telegram's words, when it failed.
    pub failure_reason: Option<String>,
    /// True when the idempotency key was used before and this is the first call's preview.
    pub replayed: bool,
}

/// The preview mutation.
#[derive(Debug, Default)]
pub struct BroadcastPreviewMutation;

#[Object]
impl BroadcastPreviewMutation {
    /// Sends the draft of a broadcast (not started yet) to one Telegram user, through the
    /// delivery worker; waits up to 10 s for Telegram's answer. Counts nothing on the
    /// broadcast. At most 10 per agent and minute (`RATE_LIMITED`), 50 per broadcast.
    #[graphql(guard = "Need(Permission::WriteBroadcasts)")]
    async fn send_broadcast_preview(
        &self,
        ctx: &Context<'_>,
        input: SendBroadcastPreviewInput,
    ) -> Result<BroadcastPreviewPayload> {
        let by = signed_in_agent(ctx)?;
        let broadcast = BroadcastId(uuid("Broadcast", &input.broadcast_id)?);
        let chat: i64 = input.telegram_user_id.trim().parse().map_err(|_| {
            error(
                Code::Validation,
                "telegramUserId must be a Telegram user id (a number)",
            )
        })?;
        let api = ctx.data_unchecked::<Api>();
        let command_ctx = context(
            ctx,
            "sendBroadcastPreview",
            input.idempotency_key.as_deref(),
        )?;
        if let Err(not_until) = PREVIEWS.check_key(&by) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs().max(1);
            return Err(error(
                Code::RateLimited,
                format!("at most {PER_MINUTE} previews a minute; try again in {seconds} s"),
            )
            .extend_with(move |_, extensions| extensions.set("retryAfter", seconds)));
        }
        let customer = api
            .commands
            .state::<Customer>(StreamId::Customer(CustomerId(chat)))
            .await
            .map_err(|e| failed("cannot read the customer", e))?;
        if let Some(state) = customer.state() {
            if state.opted_out {
                return Err(error(
                    Code::Validation,
                    "this Telegram user opted out of broadcasts (/start opts them back in)",
                ));
            }
            if state.banned {
                return Err(error(Code::Validation, "this Telegram user is banned"));
            }
        }
        let command = BroadcastCommand::RequestPreview {
            preview_id: Uuid::now_v7(),
            chat,
            by,
            at: Utc::now(),
        };
        let executed: Executed<BroadcastEvent> = timed(
            "broadcast",
            api.commands
                .execute::<Broadcast>(broadcast.stream(), &command, &command_ctx),
        )
        .await
        .map_err(error::command)?;
        let Some((preview, version)) =
            executed
                .events
                .iter()
                .find_map(|applied| match &applied.event {
                    BroadcastEvent::PreviewRequested(requested) => {
                        Some((requested.preview_id, applied.version))
                    }
                    _ => None,
                })
        else {
            return Err(error(Code::Conflict, "the preview was not recorded"));
        };
        let (state, telegram_message_id, failure_reason) =
            wait_for_outcome(api, broadcast, preview, version + 1).await?;
        Ok(BroadcastPreviewPayload {
            preview_id: ID(preview.to_string()),
            position: position(&executed),
            state,
            telegram_message_id,
            failure_reason,
            replayed: executed.replayed,
        })
    }
}

/// The preview's outcome once the log holds it, looking from stream version `from` on for
/// up to [`WAIT`]; `Pending` after that.
async fn wait_for_outcome(
    api: &Api,
    broadcast: BroadcastId,
    preview: Uuid,
    mut from: u64,
) -> Result<(PreviewStateValue, Option<i32>, Option<String>)> {
    let stream = broadcast.stream().name();
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut pause = Duration::from_millis(50);
    loop {
        let events = api
            .log
            .read_stream(&stream, from, Direction::Forwards, 100)
            .await
            .map_err(|e| failed("cannot read the broadcast", e))?;
        for event in &events {
            from = event.stream_version + 1;
            if !matches!(
                event.event_type.as_str(),
                "broadcast.preview_sent" | "broadcast.preview_failed"
            ) {
                continue;
            }
            let decoded =
                BroadcastEvent::decode(&event.event_type, event.schema_version, &event.payload);
            match decoded {
                Ok(BroadcastEvent::PreviewSent(sent)) if sent.preview_id == preview => {
                    return Ok((
                        PreviewStateValue::Sent,
                        Some(sent.telegram_message_id.0),
                        None,
                    ));
                }
                Ok(BroadcastEvent::PreviewFailed(failed)) if failed.preview_id == preview => {
                    return Ok((PreviewStateValue::Failed, None, Some(failed.reason)));
                }
                _ => {}
            }
        }
        if events.len() == 100 {
            continue;
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Ok((PreviewStateValue::Pending, None, None));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
