//! What the worker does for one event: whether it calls for a message ([`job_for`]), and the
//! job that sends it and records the outcome ([`run`]).

use std::sync::Arc;
use std::time::Duration;

use app::commands::{CommandContext, CommandError, CommandService};
use chrono::Utc;
use domain::content::{ReplyContent, TelegramMessageId};
use domain::customer::{Customer, CustomerCommand};
use domain::flow::FlowError;
use domain::ticket::{AgentReplied, Delivery, Ticket, TicketCommand, TicketEvent, TicketStatus};
use domain::{CustomerId, DomainEvent, MessageId, StreamId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind, Direction, EventLog, Position, RecordedEvent};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use uuid::Uuid;

use super::send::{Attempt, Part, Sender, Sent, plan};
use crate::callback::CallbackData;
use crate::store::{DeliveryStore, RetryRow};

/// The reason recorded when the customer blocked the bot (Telegram's own words).
const BLOCKED: &str = "Forbidden: bot was blocked by the user";

/// How many times an outcome is written once the worker is stopping, before giving up.
const RECORD_ATTEMPTS_WHILE_STOPPING: u32 = 3;

/// What every job needs.
#[derive(Debug)]
pub(super) struct Context {
    pub(super) commands: CommandService<PostgresLog>,
    pub(super) store: DeliveryStore,
    pub(super) sender: Arc<Sender>,
    pub(super) csat_max_age: Duration,
    /// How long a reply is tried through transient failures, from the first one.
    pub(super) retry_for: Duration,
}

/// One message (or message group) to send to one chat.
#[derive(Debug)]
pub(super) struct Job {
    /// The event that asked for it.
    pub(super) position: Position,
    /// The customer's private chat (its id is the customer's Telegram user id).
    pub(super) chat: i64,
    work: Work,
    cause: Cause,
}

#[derive(Debug)]
enum Work {
    /// An agent reply still waiting for its outcome.
    Reply {
        ticket: TicketId,
        customer: CustomerId,
        message_id: MessageId,
        content: ReplyContent,
        /// The message of the chat the reply quotes.
        reply_to: Option<i32>,
    },
    /// The satisfaction prompt after a resolve.
    Csat {
        ticket: TicketId,
        customer: CustomerId,
    },
    /// The ticket is rated: the buttons of its prompts go away. Which prompts is read when
    /// the job runs, after the chat's earlier jobs (a prompt still being sent included).
    ClearButtons {
        ticket: TicketId,
        customer: CustomerId,
    },
    /// A broadcast's draft to one chat.
    Preview(super::preview::Preview),
}

/// The event a job answers, for the outcome's metadata.
#[derive(Debug, Clone, Copy)]
struct Cause {
    event_id: Uuid,
    correlation_id: Option<Uuid>,
}

/// Why an event could not be looked at now; the worker tries it again later.
#[derive(Debug, thiserror::Error)]
pub(super) enum NotNow {
    #[error("loading the ticket failed: {0}")]
    Load(#[from] CommandError<std::convert::Infallible>),
    #[error("reading the satisfaction prompts failed: {0}")]
    Store(#[from] sqlx::Error),
    #[error("reading the ticket's events failed: {0}")]
    Log(#[from] eventlog::Error),
}

/// The event types that may call for a message.
const HANDLED: [&str; 4] = [
    "ticket.agent_replied",
    "ticket.reply_delivery_retry_requested",
    "ticket.resolved",
    "ticket.rated",
];

/// The job `event` calls for, if any: a reply (new, or asked to be sent again) whose ticket
/// records no outcome for it yet; a resolve that is the ticket's latest, not yet rated, not
/// yet prompted and recent enough; a rating, whose prompts lose their buttons.
pub(super) async fn job_for(ctx: &Context, event: &RecordedEvent) -> Result<Option<Job>, NotNow> {
    if event.event_type == "broadcast.preview_requested" {
        let preview = super::preview::preview_for(ctx, event).await?;
        return Ok(preview.map(|preview| Job {
            position: event.position,
            chat: preview.chat,
            work: Work::Preview(preview),
            cause: Cause {
                event_id: event.event_id,
                correlation_id: event.metadata.correlation_id,
            },
        }));
    }
    if !HANDLED.contains(&event.event_type.as_str()) {
        return Ok(None);
    }
    let Ok(StreamId::Ticket(ticket)) = event.stream_id.parse::<StreamId>() else {
        tracing::warn!(stream = %event.stream_id, "a ticket event outside a ticket stream; skipped");
        return Ok(None);
    };
    let decoded = TicketEvent::decode(&event.event_type, event.schema_version, &event.payload);
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(_) => {
            // The decoder's message may quote the payload (message text): leave it out.
            tracing::error!(ticket.id = %ticket, event_type = %event.event_type,
                schema_version = event.schema_version, "cannot read the event; skipped");
            return Ok(None);
        }
    };
    let state = match ctx.commands.state::<Ticket>(ticket.stream()).await {
        Ok(state) => state,
        Err(CommandError::Decode {
            stream, version, ..
        }) => {
            // Not transient: waiting would stall every chat behind one unreadable ticket.
            tracing::error!(%stream, version, "a stored ticket event cannot be read; skipped");
            return Ok(None);
        }
        Err(error) => return Err(error.into()),
    };
    let Some(state) = state.state() else {
        return Ok(None);
    };
    let cause = Cause {
        event_id: event.event_id,
        correlation_id: event.metadata.correlation_id,
    };
    let work = match decoded {
        TicketEvent::AgentReplied(reply) => {
            if state.replies.get(&reply.message_id) != Some(&Delivery::Pending) {
                // Delivered or failed before (by us before a restart): never send twice.
                return Ok(None);
            }
            Work::Reply {
                ticket,
                customer: state.customer,
                message_id: reply.message_id,
                content: reply.content,
                reply_to: reply.reply_to.map(|id| id.0),
            }
        }
        TicketEvent::ReplyDeliveryRetryRequested(retry) => {
            if state.replies.get(&retry.message_id) != Some(&Delivery::Pending) {
                return Ok(None);
            }
            let Some(reply) = reply_content(ctx, ticket, retry.message_id).await? else {
                tracing::error!(ticket.id = %ticket, message.id = %retry.message_id,
                    "a retry for a reply the ticket does not hold; skipped");
                return Ok(None);
            };
            Work::Reply {
                ticket,
                customer: state.customer,
                message_id: retry.message_id,
                content: reply.content,
                reply_to: reply.reply_to.map(|id| id.0),
            }
        }
        TicketEvent::Rated(_) => Work::ClearButtons {
            ticket,
            customer: state.customer,
        },
        TicketEvent::Resolved(step) => {
            let latest = state.resolved_at == Some(step.at)
                && matches!(state.status, TicketStatus::Resolved | TicketStatus::Closed);
            let age = Utc::now()
                .signed_duration_since(event.recorded_at)
                .to_std()
                .unwrap_or_default();
            if !latest || state.rating.is_some() || age > ctx.csat_max_age {
                return Ok(None);
            }
            if ctx.store.csat_sent(event.event_id).await? {
                return Ok(None);
            }
            Work::Csat {
                ticket,
                customer: state.customer,
            }
        }
        _ => return Ok(None),
    };
    let chat = match &work {
        Work::Reply { customer, .. }
        | Work::Csat { customer, .. }
        | Work::ClearButtons { customer, .. } => customer.0,
        Work::Preview(preview) => preview.chat,
    };
    Ok(Some(Job {
        position: event.position,
        chat,
        work,
        cause,
    }))
}

/// Reply `message_id` as its `ticket.agent_replied` event recorded it.
async fn reply_content(
    ctx: &Context,
    ticket: TicketId,
    message_id: MessageId,
) -> Result<Option<AgentReplied>, NotNow> {
    const PAGE: usize = 500;
    let stream = ticket.stream().name();
    let wanted = serde_json::Value::String(message_id.to_string());
    let mut from = 0;
    loop {
        let events = ctx
            .commands
            .log()
            .read_stream(&stream, from, Direction::Forwards, PAGE)
            .await?;
        for event in &events {
            if event.event_type != "ticket.agent_replied" || event.payload["message_id"] != wanted {
                continue;
            }
            let decoded =
                TicketEvent::decode(&event.event_type, event.schema_version, &event.payload);
            return Ok(match decoded {
                Ok(TicketEvent::AgentReplied(reply)) => Some(reply),
                // As in `job_for`: the decoder's message may quote the text.
                _ => None,
            });
        }
        match events.last() {
            Some(last) if events.len() == PAGE => from = last.stream_version + 1,
            _ => return Ok(None),
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    /// Its outcome is recorded (or there is none to record): the checkpoint may pass it.
    Finished,
    /// The worker stopped before the outcome was recorded: the checkpoint must stay before
    /// it, so the next run looks at it again.
    Abandoned,
}

/// Sends the job's messages and records what happened.
pub(super) async fn run(ctx: Arc<Context>, job: Job) -> Ended {
    match &job.work {
        Work::Reply {
            ticket,
            customer,
            message_id,
            content,
            reply_to,
        } => {
            let Some(try_key) = pending(&ctx, job.cause, *ticket, *message_id).await else {
                // Its outcome was recorded after the job was queued (a retry asked while the
                // reply was being sent, and an older event read again after a restart).
                return Ended::Finished;
            };
            let parts = plan(content, *reply_to);
            let outcome = deliver(&ctx, job.chat, job.cause, *ticket, *message_id, &parts).await;
            let reply = (*ticket, *customer, *message_id);
            record_reply(&ctx, job.cause, reply, &try_key, outcome).await
        }
        Work::ClearButtons { ticket, .. } => clear_buttons(&ctx, job.chat, *ticket).await,
        Work::Preview(preview) => super::preview::run(&ctx, job.cause.event_id, preview).await,
        Work::Csat { ticket, customer } => {
            let part = Part::Text {
                text: super::prompt::rating_prompt(&ctx.commands, *customer).await,
                keyboard: Some(rating_keyboard(*ticket)),
                reply_to: None,
                parse_mode: None,
            };
            match ctx.sender.send(job.chat, &part).await {
                Sent::Accepted(message) => {
                    let event = job.cause.event_id;
                    let written = retrying(&ctx, "the satisfaction prompt", || async {
                        ctx.store
                            .record_csat(event, *ticket, message)
                            .await
                            .map_err(Retry::Store)
                    })
                    .await;
                    tracing::info!(ticket.id = %ticket, "satisfaction prompt sent");
                    written.ended()
                }
                Sent::Blocked => record_blocked(&ctx, job.cause, *customer).await.ended(),
                Sent::Failed { reason, .. } => {
                    tracing::warn!(ticket.id = %ticket, %reason, "satisfaction prompt not sent");
                    Ended::Finished
                }
                Sent::Stopped => Ended::Abandoned,
            }
        }
    }
}

/// Five buttons, 1 to 5, each carrying the rating for the ticket.
fn rating_keyboard(ticket: TicketId) -> InlineKeyboardMarkup {
    let row = (1..=5u8).map(|rating| {
        InlineKeyboardButton::callback(
            rating.to_string(),
            CallbackData::Rating { ticket, rating }.to_string(),
        )
    });
    InlineKeyboardMarkup::new([row])
}

/// How sending a reply's parts ended.
#[derive(Debug)]
enum ReplyOutcome {
    Delivered(i32),
    Blocked {
        sent: usize,
        total: usize,
    },
    Failed {
        reason: String,
        retryable: bool,
        sent: usize,
        total: usize,
    },
    Stopped,
}

/// Whether reply `message_id` still waits for its outcome, and if so the idempotency key of
/// this try's outcome: the ticket's version now, which no other try of the reply sees (each
/// try before ended with an outcome event, or recorded nothing). When the ticket cannot be
/// read now, the reply is taken as waiting (`job_for` found it so moments ago) and the key is
/// the job's event.
async fn pending(
    ctx: &Context,
    cause: Cause,
    ticket: TicketId,
    message_id: MessageId,
) -> Option<String> {
    let fallback = || format!("delivery:{message_id}:{}", cause.event_id);
    let stream = ticket.stream();
    let state = match ctx.commands.state::<Ticket>(stream).await {
        Ok(state) => state,
        Err(error) => {
            tracing::warn!(ticket.id = %ticket, error = %Retry::Load(error).safe_display(),
                "cannot re-read the ticket before sending; sending");
            return Some(fallback());
        }
    };
    let waiting = state
        .state()
        .is_some_and(|state| state.replies.get(&message_id) == Some(&Delivery::Pending));
    if !waiting {
        return None;
    }
    match ctx.commands.log().stream_version(&stream.name()).await {
        Ok(Some(version)) => Some(format!("delivery:{message_id}:v{version}")),
        _ => Some(fallback()),
    }
}

/// Sends the reply's parts in order, stopping at the first Telegram refuses. Transient
/// failures are tried again with the policy's backoff until `retry_for` has passed since the
/// first of them; the schedule is saved in `delivery_retries` after each failure, so a restart
/// resumes it (same attempt count, same deadline, the parts already accepted not sent again).
async fn deliver(
    ctx: &Context,
    chat: i64,
    cause: Cause,
    ticket: TicketId,
    message_id: MessageId,
    parts: &[Part],
) -> ReplyOutcome {
    let total = parts.len();
    let mut retry = match ctx.store.retry(message_id).await {
        // A schedule of another event's job is from an earlier try that ended (a retry was
        // asked since): this one starts afresh.
        Ok(row) => row.filter(|row| row.cause_event_id == cause.event_id),
        Err(error) => {
            tracing::warn!(%error, message.id = %message_id,
                "cannot read the reply's retry schedule; starting a new one");
            None
        }
    };
    let mut sent = retry.as_ref().map_or(0, |row| {
        usize::try_from(row.parts_sent).unwrap_or(0).min(total)
    });
    let mut first = retry.as_ref().and_then(|row| row.first_telegram_message_id);
    if let Some(row) = &retry
        && let Ok(wait) = row
            .next_attempt_at
            .signed_duration_since(Utc::now())
            .to_std()
    {
        tracing::info!(ticket.id = %ticket, message.id = %message_id, attempts = row.attempts,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            "resuming the retries of a reply");
        if !ctx.sender.sleep(wait).await {
            return ReplyOutcome::Stopped;
        }
    }
    while sent < total {
        let reason = match ctx.sender.attempt(chat, &parts[sent]).await {
            Attempt::Accepted(id) => {
                first.get_or_insert(id);
                sent += 1;
                if let Some(row) = retry.as_mut()
                    && sent < total
                {
                    // So that a restart does not send this part again.
                    row.parts_sent = i32::try_from(sent).unwrap_or(i32::MAX);
                    row.first_telegram_message_id = first;
                    save_retry(ctx, ticket, message_id, row).await;
                }
                continue;
            }
            Attempt::Blocked => return ReplyOutcome::Blocked { sent, total },
            Attempt::Permanent(reason) => {
                return ReplyOutcome::Failed {
                    reason,
                    retryable: false,
                    sent,
                    total,
                };
            }
            Attempt::Stopped => return ReplyOutcome::Stopped,
            Attempt::Transient(reason) => reason,
        };
        let now = Utc::now();
        let row = retry.get_or_insert_with(|| RetryRow {
            cause_event_id: cause.event_id,
            attempts: 0,
            parts_sent: 0,
            first_telegram_message_id: None,
            first_failed_at: now,
            next_attempt_at: now,
            last_error: String::new(),
        });
        row.attempts = row.attempts.saturating_add(1);
        row.parts_sent = i32::try_from(sent).unwrap_or(i32::MAX);
        row.first_telegram_message_id = first;
        row.last_error.clone_from(&reason);
        let deadline = row.first_failed_at
            + chrono::TimeDelta::from_std(ctx.retry_for).unwrap_or(chrono::TimeDelta::MAX);
        if now >= deadline {
            return ReplyOutcome::Failed {
                reason: format!("{reason} (gave up after {} attempts)", row.attempts),
                retryable: true,
                sent,
                total,
            };
        }
        let pause = ctx
            .sender
            .pause_after(u32::try_from(row.attempts).unwrap_or(u32::MAX));
        let next = (now + chrono::TimeDelta::from_std(pause).unwrap_or(chrono::TimeDelta::MAX))
            .min(deadline);
        row.next_attempt_at = next;
        save_retry(ctx, ticket, message_id, row).await;
        let wait = next.signed_duration_since(now).to_std().unwrap_or_default();
        tracing::info!(ticket.id = %ticket, message.id = %message_id, attempt = row.attempts,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX), %reason,
            "sending the reply failed; retrying");
        if !ctx.sender.sleep(wait).await {
            return ReplyOutcome::Stopped;
        }
    }
    match first {
        Some(id) => ReplyOutcome::Delivered(id),
        // `ReplyContent` always holds text or media, so there is at least one part.
        None => ReplyOutcome::Failed {
            reason: "the reply is empty".to_owned(),
            retryable: false,
            sent: 0,
            total: 0,
        },
    }
}

/// Saves a reply's retry schedule; a failed save is logged (the schedule still holds in this
/// process, and a restart would only start it afresh).
async fn save_retry(ctx: &Context, ticket: TicketId, message_id: MessageId, row: &RetryRow) {
    if let Err(error) = ctx.store.save_retry(message_id, ticket, row).await {
        tracing::warn!(%error, message.id = %message_id, "cannot save the reply's retry schedule");
    }
}

/// Takes the buttons off the ticket's satisfaction prompts. A prompt Telegram will not edit
/// (too old, deleted, the bot blocked) counts as done; one that keeps failing on the way is
/// left as it is.
async fn clear_buttons(ctx: &Context, chat: i64, ticket: TicketId) -> Ended {
    let prompts = retrying_read(ctx, || ctx.store.prompts_with_buttons(ticket)).await;
    let Some(prompts) = prompts else {
        return Ended::Abandoned;
    };
    if prompts.is_empty() {
        return Ended::Finished;
    }
    for (resolved_event, message_id) in &prompts {
        let part = Part::ClearButtons {
            message_id: *message_id,
        };
        match ctx.sender.send(chat, &part).await {
            Sent::Accepted(_) | Sent::Blocked => {}
            Sent::Failed {
                reason,
                retryable: false,
            } => {
                tracing::info!(ticket.id = %ticket, %reason,
                    "Telegram will not remove the rating buttons; leaving them");
            }
            Sent::Failed {
                reason,
                retryable: true,
            } => {
                tracing::warn!(ticket.id = %ticket, %reason, "could not remove the rating buttons");
                continue;
            }
            Sent::Stopped => return Ended::Abandoned,
        }
        let written = retrying(ctx, "the removed rating buttons", || async {
            ctx.store
                .buttons_removed(*resolved_event)
                .await
                .map_err(Retry::Store)
        })
        .await;
        if written == Written::GaveUp {
            return Ended::Abandoned;
        }
    }
    tracing::info!(ticket.id = %ticket, "rating buttons removed");
    Ended::Finished
}

fn partial(reason: String, sent: usize, total: usize) -> String {
    if sent == 0 {
        reason
    } else {
        format!("{reason} (after {sent} of {total} messages were sent)")
    }
}

async fn record_reply(
    ctx: &Context,
    cause: Cause,
    (ticket, customer, message_id): (TicketId, CustomerId, MessageId),
    try_key: &str,
    outcome: ReplyOutcome,
) -> Ended {
    let at = Utc::now();
    let counted = match &outcome {
        ReplyOutcome::Delivered(_) => Some("delivered"),
        ReplyOutcome::Blocked { .. } => Some("blocked"),
        ReplyOutcome::Failed { .. } => Some("failed"),
        ReplyOutcome::Stopped => None,
    };
    if let Some(counted) = counted {
        // The name `/metrics` describes (`api::metrics::DELIVERY_OUTCOMES`).
        metrics::counter!("ledgerdesk_delivery_outcomes_total", "outcome" => counted).increment(1);
    }
    let command = match outcome {
        ReplyOutcome::Delivered(id) => TicketCommand::RecordDelivery {
            message_id,
            telegram_message_id: TelegramMessageId(id),
            at,
        },
        ReplyOutcome::Blocked { sent, total } => {
            if record_blocked(ctx, cause, customer).await == Written::GaveUp {
                return Ended::Abandoned;
            }
            TicketCommand::RecordDeliveryFailure {
                message_id,
                reason: partial(BLOCKED.to_owned(), sent, total),
                retryable: false,
                at,
            }
        }
        ReplyOutcome::Failed {
            reason,
            retryable,
            sent,
            total,
        } => TicketCommand::RecordDeliveryFailure {
            message_id,
            reason: partial(reason, sent, total),
            retryable,
            at,
        },
        ReplyOutcome::Stopped => {
            tracing::info!(ticket.id = %ticket, message.id = %message_id,
                "stopping before the reply went out; it is sent after the restart");
            return Ended::Abandoned;
        }
    };
    let delivered = matches!(command, TicketCommand::RecordDelivery { .. });
    // One outcome per try of the reply: a retried write after a lost answer is a replay, not
    // a second event; a try asked for later has a key of its own (see `pending`).
    let context = context(cause).idempotent(try_key.to_owned());
    let written = retrying(ctx, "the delivery outcome", || async {
        ctx.commands
            .execute_ticket(ticket, &command, &context)
            .await
            .map(|_| ())
            .map_err(Retry::Flow)
    })
    .await;
    if written != Written::GaveUp
        && let Err(error) = ctx.store.forget_retry(message_id).await
    {
        // Harmless: a schedule left behind is ignored by any later try (another cause).
        tracing::warn!(%error, message.id = %message_id, "cannot forget the reply's retries");
    }
    if delivered {
        tracing::info!(ticket.id = %ticket, message.id = %message_id, "reply delivered");
        if written != Written::GaveUp {
            // Telegram took a message into the chat: whatever a 403 recorded before, the
            // customer no longer blocks the bot (no event when they never did).
            let command = CustomerCommand::RecordBotUnblocked { at: Utc::now() };
            return record_customer(ctx, cause, customer, &command, "the unblocked bot")
                .await
                .ended();
        }
    } else {
        tracing::warn!(ticket.id = %ticket, message.id = %message_id, "reply not delivered");
    }
    written.ended()
}

async fn record_blocked(ctx: &Context, cause: Cause, customer: CustomerId) -> Written {
    let command = CustomerCommand::RecordBotBlocked { at: Utc::now() };
    record_customer(ctx, cause, customer, &command, "the blocked bot").await
}

async fn record_customer(
    ctx: &Context,
    cause: Cause,
    customer: CustomerId,
    command: &CustomerCommand,
    what: &'static str,
) -> Written {
    let context = context(cause);
    retrying(ctx, what, || async {
        ctx.commands
            .execute::<Customer>(customer.stream(), command, &context)
            .await
            .map(|_| ())
            .map_err(Retry::Customer)
    })
    .await
}

fn context(cause: Cause) -> CommandContext {
    let mut context =
        CommandContext::new(Actor::new(ActorKind::Bot, "delivery")).caused_by(cause.event_id);
    if let Some(correlation) = cause.correlation_id {
        context = context.correlated(correlation);
    }
    context
}

/// A failed write, to retry or give up on.
#[derive(Debug, thiserror::Error)]
enum Retry {
    #[error(transparent)]
    Flow(CommandError<FlowError>),
    #[error(transparent)]
    Customer(CommandError<domain::customer::CustomerError>),
    #[error(transparent)]
    Store(sqlx::Error),
    #[error(transparent)]
    Load(CommandError<std::convert::Infallible>),
}

impl Retry {
    /// The error for the logs: an unreadable stored event is named by place only, since the
    /// decoder's message may quote the payload.
    fn safe_display(&self) -> String {
        let decode = match self {
            Retry::Flow(CommandError::Decode {
                stream, version, ..
            })
            | Retry::Customer(CommandError::Decode {
                stream, version, ..
            })
            | Retry::Load(CommandError::Decode {
                stream, version, ..
            }) => Some((stream, version)),
            _ => None,
        };
        match decode {
            Some((stream, version)) => format!("stored event {stream} v{version} cannot be read"),
            None => self.to_string(),
        }
    }

    /// Whether the same write may pass later; `None` when the domain refused it (the outcome
    /// is already there, or can never be).
    fn transient(&self) -> Option<bool> {
        fn command<E>(error: &CommandError<E>) -> Option<bool> {
            match error {
                CommandError::Rejected(_) => None,
                CommandError::Conflict { .. } => Some(true),
                CommandError::Log(error) => Some(error.is_transient()),
                CommandError::Decode { .. } | CommandError::KeyReused => Some(false),
            }
        }
        match self {
            Retry::Flow(error) => command(error),
            Retry::Customer(error) => command(error),
            Retry::Load(error) => command(error),
            Retry::Store(_) => Some(true),
        }
    }
}

/// How a write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    /// It went through.
    Done,
    /// The domain refused it (the outcome is already there), or it can never pass: logged,
    /// nothing more to do.
    Refused,
    /// The worker is stopping and the write kept failing.
    GaveUp,
}

impl Written {
    fn ended(self) -> Ended {
        match self {
            Written::Done | Written::Refused => Ended::Finished,
            Written::GaveUp => Ended::Abandoned,
        }
    }
}

/// Runs a read of the worker's own tables until it passes; `None` once the worker stops.
async fn retrying_read<T, F, Fut>(ctx: &Context, mut read: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sqlx::Error>>,
{
    let mut pauses = ctx.sender.pauses();
    loop {
        match read().await {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, "cannot read the delivery tables; retrying");
                if !ctx.sender.sleep(pauses.next_pause()).await {
                    return None;
                }
            }
        }
    }
}

/// Runs a write until it passes, the domain refuses it, or it fails for good. Transient
/// failures are retried with backoff as long as the worker runs, and a few more times once it
/// is stopping; giving up then leaves the reply without outcome, so it is sent again after the
/// restart (the at-least-once window).
async fn retrying<F, Fut>(ctx: &Context, what: &'static str, mut write: F) -> Written
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), Retry>>,
{
    let mut failures = 0;
    let mut pauses = ctx.sender.pauses();
    loop {
        let error = match write().await {
            Ok(()) => return Written::Done,
            Err(error) => error,
        };
        match error.transient() {
            None => {
                tracing::info!(%error, "{what} was refused; nothing to record");
                return Written::Refused;
            }
            Some(false) => {
                tracing::error!(error = %error.safe_display(), "could not record {what}");
                return Written::Refused;
            }
            Some(true) => {}
        }
        failures += 1;
        if ctx.sender.stopping() && failures >= RECORD_ATTEMPTS_WHILE_STOPPING {
            tracing::error!(%error, "stopping; gave up recording {what}");
            return Written::GaveUp;
        }
        let mut pause = pauses.next_pause();
        if ctx.sender.stopping() {
            pause = pause.min(Duration::from_secs(1));
        }
        tracing::warn!(%error, attempt = failures, "could not record {what}; retrying");
        tokio::time::sleep(pause).await;
    }
}
