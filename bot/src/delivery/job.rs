//! What the worker does for one event: whether it calls for a message ([`job_for`]), and the
//! job that sends it and records the outcome ([`run`]).

use std::sync::Arc;
use std::time::Duration;

use app::commands::{CommandContext, CommandError, CommandService};
use chrono::Utc;
use domain::content::{ReplyContent, TelegramMessageId};
use domain::customer::{Customer, CustomerCommand};
use domain::flow::FlowError;
use domain::ticket::{Delivery, Ticket, TicketCommand, TicketEvent, TicketStatus};
use domain::{CustomerId, DomainEvent, MessageId, StreamId, TicketId};
use eventlog::postgres::PostgresLog;
use eventlog::{Actor, ActorKind, Position, RecordedEvent};
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use uuid::Uuid;

use super::send::{Part, Sender, Sent, plan};
use crate::callback::CallbackData;
use crate::store::DeliveryStore;

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
    },
    /// The satisfaction prompt after a resolve.
    Csat {
        ticket: TicketId,
        customer: CustomerId,
    },
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
}

/// The job `event` calls for, if any: a reply whose ticket records no outcome for it yet, or a
/// resolve that is the ticket's latest, not yet rated, not yet prompted and recent enough.
pub(super) async fn job_for(ctx: &Context, event: &RecordedEvent) -> Result<Option<Job>, NotNow> {
    if event.event_type != "ticket.agent_replied" && event.event_type != "ticket.resolved" {
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
            }
        }
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
        Work::Reply { customer, .. } | Work::Csat { customer, .. } => customer.0,
    };
    Ok(Some(Job {
        position: event.position,
        chat,
        work,
        cause,
    }))
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
        } => {
            let parts = plan(content);
            let outcome = send_all(&ctx, job.chat, &parts).await;
            record_reply(&ctx, job.cause, *ticket, *customer, *message_id, outcome).await
        }
        Work::Csat { ticket, customer } => {
            let part = Part::Text {
                text: super::prompt::rating_prompt(&ctx.commands, *customer).await,
                keyboard: Some(rating_keyboard(*ticket)),
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

/// Sends the parts in order, stopping at the first that does not go through.
async fn send_all(ctx: &Context, chat: i64, parts: &[Part]) -> ReplyOutcome {
    let total = parts.len();
    let mut first = None;
    for (sent, part) in parts.iter().enumerate() {
        match ctx.sender.send(chat, part).await {
            Sent::Accepted(id) => {
                first.get_or_insert(id);
            }
            Sent::Blocked => return ReplyOutcome::Blocked { sent, total },
            Sent::Failed { reason, retryable } => {
                return ReplyOutcome::Failed {
                    reason,
                    retryable,
                    sent,
                    total,
                };
            }
            Sent::Stopped => return ReplyOutcome::Stopped,
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
    ticket: TicketId,
    customer: CustomerId,
    message_id: MessageId,
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
    // One outcome per reply: a retried write after a lost answer is a replay, not a second
    // event.
    let context = context(cause).idempotent(format!("delivery:{message_id}"));
    let written = retrying(ctx, "the delivery outcome", || async {
        ctx.commands
            .execute_ticket(ticket, &command, &context)
            .await
            .map(|_| ())
            .map_err(Retry::Flow)
    })
    .await;
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
