//! Subscriptions: the raw event feed with cursors, a ticket's events, the live ticket list,
//! new messages and broadcast progress.
//!
//! Every subscription reads from the process's [`crate::live::LiveHub`], never from a log
//! follower of its own. Rows come from the read models through their query functions, after
//! waiting for the read model to reach the event's position.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, InputObject, Json, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use eventlog::{ActorKind, Position, RecordedEvent};
use futures::{Stream, StreamExt};
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::Api;
use super::error::{Code, error, internal};
use super::guard::{self, Need};
use super::tickets::{Ticket, TicketStatusValue};
use crate::auth::{Permission, TicketScope};

/// Most event types one `events` subscription may filter on.
pub const MAX_TYPES: usize = 50;
/// Longest event type or stream prefix in a filter, in characters.
pub const MAX_FILTER_CHARS: usize = 200;

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ActorKindValue {
    /// A customer on Telegram.
    Customer,
    /// An agent in the panel.
    Agent,
    /// The bot on its own.
    Bot,
    /// Ledgerdesk itself.
    System,
    /// An integration with an API token.
    Integrator,
}

impl From<ActorKind> for ActorKindValue {
    fn from(kind: ActorKind) -> Self {
        match kind {
            ActorKind::Customer => ActorKindValue::Customer,
            ActorKind::Agent => ActorKindValue::Agent,
            ActorKind::Bot => ActorKindValue::Bot,
            ActorKind::System => ActorKindValue::System,
            ActorKind::Integrator => ActorKindValue::Integrator,
        }
    }
}

/// The actor of an event.
#[derive(Debug, Clone, SimpleObject)]
pub struct EventActor {
    /// What kind of actor.
    pub kind: ActorKindValue,
    /// Its id within that kind.
    pub id: String,
}

/// One event of the log, with the cursor to resume after it.
#[derive(Debug, Clone, SimpleObject)]
pub struct LogEvent {
    /// Resume here: `events(after: cursor)` continues with the next event.
    pub cursor: String,
    /// Its place in the log (the same value as `cursor`).
    pub position: String,
    /// Its stream (`ticket-<uuid>`, …).
    pub stream: String,
    /// Its version within the stream.
    pub version: i64,
    /// Its stored type (`ticket.opened`, …).
    #[graphql(name = "type")]
    pub event_type: String,
    /// The version of the payload's shape.
    pub schema_version: i32,
    /// When the log recorded it.
    pub recorded_at: DateTime<Utc>,
    /// Who caused it.
    pub actor: EventActor,
    /// Its data.
    pub payload: Json<serde_json::Value>,
}

impl From<&RecordedEvent> for LogEvent {
    fn from(event: &RecordedEvent) -> Self {
        let cursor = event.position.to_string();
        LogEvent {
            position: cursor.clone(),
            cursor,
            stream: event.stream_id.clone(),
            version: i64::try_from(event.stream_version).unwrap_or(i64::MAX),
            event_type: event.event_type.clone(),
            schema_version: i32::try_from(event.schema_version).unwrap_or(i32::MAX),
            recorded_at: event.recorded_at,
            actor: EventActor {
                kind: event.metadata.actor.kind.into(),
                id: event.metadata.actor.id.clone(),
            },
            payload: Json(event.payload.clone()),
        }
    }
}

/// Which tickets a live list shows. Empty: all the caller may see.
#[derive(Debug, Clone, Default, InputObject)]
pub struct TicketsChangedFilter {
    /// Only these statuses.
    pub status: Option<Vec<TicketStatusValue>>,
    /// Only tickets assigned to this agent.
    pub assignee: Option<ID>,
    /// Only tickets in this category.
    pub category: Option<ID>,
    /// Only (`true`) or never (`false`) unassigned tickets.
    pub unassigned: Option<bool>,
}

struct TicketMatcher {
    status: Option<Vec<TicketStatusValue>>,
    assignee: Option<Uuid>,
    category: Option<Uuid>,
    unassigned: Option<bool>,
    scope: TicketScope,
}

impl TicketMatcher {
    fn visible(&self, ticket: &Ticket) -> bool {
        self.scope.covers(ticket.category_uuid)
    }

    fn matches(&self, ticket: &Ticket) -> bool {
        let assignee = ticket
            .assignee_id
            .as_ref()
            .and_then(|id| id.parse::<Uuid>().ok());
        self.status
            .as_ref()
            .is_none_or(|statuses| statuses.contains(&ticket.status))
            && self.assignee.is_none_or(|wanted| assignee == Some(wanted))
            && self
                .category
                .is_none_or(|wanted| ticket.category_uuid == Some(wanted))
            && self
                .unassigned
                .is_none_or(|unassigned| assignee.is_none() == unassigned)
    }
}

/// A ticket of a live list changed.
#[derive(Debug, Clone, SimpleObject)]
pub struct TicketChange {
    /// The log position the row reflects at least.
    pub cursor: String,
    /// Whether the ticket belongs in the list now; `false` means it just left it.
    pub in_filter: bool,
    /// The ticket as the read model has it now.
    pub ticket: Ticket,
}

/// A message posted on a ticket: a customer's message or an agent's reply.
#[derive(Debug, Clone, SimpleObject, sqlx::FromRow)]
pub struct AddedMessage {
    /// Our id for the message.
    #[graphql(skip)]
    pub id: Uuid,
    /// The ticket it belongs to.
    #[graphql(skip)]
    pub ticket_id: Uuid,
    /// `in` (customer) or `out` (agent).
    pub direction: String,
    /// The kind of message (`text`, `photo`, …).
    pub kind: String,
    /// Its text, if any.
    pub text: Option<String>,
    /// Its caption, if any.
    pub caption: Option<String>,
    /// The replying agent, for `out`.
    #[graphql(skip)]
    pub author_agent_id: Option<Uuid>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// The ticket stream version of the event that posted it.
    pub seq: i64,
    /// The ticket's category (for scope checks).
    #[graphql(skip)]
    #[sqlx(default)]
    pub category_id: Option<Uuid>,
}

/// A new message, with the cursor of its event.
#[derive(Debug, Clone, SimpleObject)]
pub struct MessageAddedEvent {
    /// The event's log position.
    pub cursor: String,
    /// The message's id.
    pub message_id: ID,
    /// The ticket's uuid.
    pub ticket_id: ID,
    /// The replying agent, for `out`.
    pub author_agent_id: Option<ID>,
    /// The message.
    pub message: AddedMessage,
}

/// A broadcast's counters.
#[derive(Debug, Clone, SimpleObject, sqlx::FromRow)]
pub struct BroadcastProgress {
    /// The log position the counters reflect at least (empty for the first snapshot).
    #[sqlx(skip)]
    pub cursor: String,
    /// `draft`, `scheduled`, `running`, `paused`, `completed` or `cancelled`.
    pub state: String,
    /// Recipients the message reached.
    pub delivered: i32,
    /// Recipients it could not reach.
    pub failed: i32,
    /// Recipients skipped (banned, blocked the bot…).
    pub skipped: i32,
    /// Every recipient, once the audience is resolved.
    pub total: Option<i32>,
}

const MESSAGE_EVENTS: [&str; 2] = ["ticket.customer_message_posted", "ticket.agent_replied"];

/// Every subscription.
#[derive(Debug, Default)]
pub struct SubscriptionRoot;

fn parse_uuid(id: &ID, what: &str) -> Result<Uuid> {
    id.parse()
        .map_err(|_| error(Code::Validation, format!("{what} is not a uuid")))
}

fn api<'a>(ctx: &Context<'a>) -> &'a Api {
    ctx.data_unchecked::<Api>()
}

fn hub_failed(detail: eventlog::Error) -> async_graphql::Error {
    internal("cannot follow the event log", detail)
}

/// The log's events after `after`, filtered, as GraphQL items; one error item ends the feed.
async fn event_feed(
    live: crate::live::LiveHub,
    after: Option<Position>,
    keep: impl Fn(&RecordedEvent) -> bool + Send + 'static,
) -> Result<impl Stream<Item = Result<Arc<RecordedEvent>>> + Send + 'static> {
    let feed = live.feed(after).await.map_err(hub_failed)?;
    Ok(feed.filter_map(move |item| {
        let item = match item {
            Ok(event) if keep(&event) => Some(Ok(event)),
            Ok(_) => None,
            Err(detail) => Some(Err(hub_failed(detail))),
        };
        std::future::ready(item)
    }))
}

#[Subscription]
impl SubscriptionRoot {
    /// Every event of the log after `after` (from now on without it): first those already
    /// stored, then each new one as it commits, each exactly once and in log order. To resume
    /// after a disconnect, pass the last `cursor` received.
    #[graphql(guard = "Need(Permission::ReadEvents)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(desc = "Only events of these exact types.")] types: Option<Vec<String>>,
        #[graphql(desc = "Only events of streams starting with this.")] stream_prefix: Option<
            String,
        >,
    ) -> Result<impl Stream<Item = Result<LogEvent>> + use<>> {
        let after = after
            .map(|after| {
                after.trim().parse::<Position>().map_err(|_| {
                    error(
                        Code::Validation,
                        "`after` is not a cursor this API returned",
                    )
                })
            })
            .transpose()?;
        if let Some(types) = &types
            && (types.len() > MAX_TYPES || types.iter().any(|t| t.len() > MAX_FILTER_CHARS))
        {
            return Err(error(
                Code::Validation,
                format!(
                    "filter on at most {MAX_TYPES} types of at most {MAX_FILTER_CHARS} characters"
                ),
            ));
        }
        if stream_prefix
            .as_ref()
            .is_some_and(|prefix| prefix.len() > MAX_FILTER_CHARS)
        {
            return Err(error(
                Code::Validation,
                format!("a stream prefix has at most {MAX_FILTER_CHARS} characters"),
            ));
        }
        let types: Option<HashSet<String>> = types.map(|types| types.into_iter().collect());
        let feed = event_feed(api(ctx).live.clone(), after, move |event| {
            types
                .as_ref()
                .is_none_or(|types| types.contains(&event.event_type))
                && stream_prefix
                    .as_ref()
                    .is_none_or(|prefix| event.stream_id.starts_with(prefix.as_str()))
        })
        .await?;
        Ok(feed.map(|item| item.map(|event| LogEvent::from(event.as_ref()))))
    }

    /// The events of one ticket from now on (after `after`, when given).
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn ticket_events(
        &self,
        ctx: &Context<'_>,
        ticket_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<LogEvent>> + use<>> {
        let ticket = parse_uuid(&ticket_id, "ticketId")?;
        guard::visible_ticket(ctx, ticket).await?;
        let after = after
            .map(|after| {
                after.trim().parse::<Position>().map_err(|_| {
                    error(
                        Code::Validation,
                        "`after` is not a cursor this API returned",
                    )
                })
            })
            .transpose()?;
        let stream = format!("ticket-{ticket}");
        let feed = event_feed(api(ctx).live.clone(), after, move |event| {
            event.stream_id == stream
        })
        .await?;
        Ok(feed.map(|item| item.map(|event| LogEvent::from(event.as_ref()))))
    }

    /// The live ticket list: each ticket that changed and is (or just stopped being) in the
    /// filter, as the read model has it after the change. Tickets outside the caller's
    /// categories never show.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn tickets_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<TicketsChangedFilter>,
    ) -> Result<impl Stream<Item = TicketChange> + use<>> {
        let filter = filter.unwrap_or_default();
        let matcher = TicketMatcher {
            status: filter.status,
            assignee: filter
                .assignee
                .as_ref()
                .map(|id| parse_uuid(id, "assignee"))
                .transpose()?,
            category: filter
                .category
                .as_ref()
                .map(|id| parse_uuid(id, "category"))
                .transpose()?,
            unassigned: filter.unassigned,
            scope: guard::ticket_scope(ctx).await?,
        };
        let receiver = api(ctx).live.tickets().await.map_err(hub_failed)?;
        let state = (
            receiver,
            matcher,
            HashSet::<Uuid>::new(),
            Vec::<TicketChange>::new(),
        );
        Ok(futures::stream::unfold(
            state,
            |(mut receiver, matcher, mut shown, mut ready)| async move {
                loop {
                    if let Some(change) = ready.pop() {
                        return Some((change, (receiver, matcher, shown, ready)));
                    }
                    let batch = match receiver.recv().await {
                        Ok(batch) => batch,
                        // A lagging list missed changes; the panel refetches on reconnect, and
                        // the next changes still arrive.
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::debug!(missed, "ticketsChanged subscriber lagged");
                            continue;
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    };
                    let cursor = batch.position.to_string();
                    for ticket in batch.tickets.iter().rev() {
                        if !matcher.visible(ticket) {
                            continue;
                        }
                        let in_filter = matcher.matches(ticket);
                        let was_shown = if in_filter {
                            !shown.insert(ticket.uuid)
                        } else {
                            shown.remove(&ticket.uuid)
                        };
                        if in_filter || was_shown {
                            ready.push(TicketChange {
                                cursor: cursor.clone(),
                                in_filter,
                                ticket: ticket.clone(),
                            });
                        }
                    }
                }
            },
        ))
    }

    /// New customer messages and agent replies, of one ticket or of every ticket the caller
    /// may see.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn message_added(
        &self,
        ctx: &Context<'_>,
        ticket_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<MessageAddedEvent>> + use<>> {
        let ticket = ticket_id
            .as_ref()
            .map(|id| parse_uuid(id, "ticketId"))
            .transpose()?;
        if let Some(ticket) = ticket {
            guard::visible_ticket(ctx, ticket).await?;
        }
        let scope = guard::ticket_scope(ctx).await?;
        let api = api(ctx);
        let pool = api.pool.clone();
        let timeout = api.limits.consistency_timeout;
        let feed = event_feed(api.live.clone(), None, move |event| {
            MESSAGE_EVENTS.contains(&event.event_type.as_str())
                && crate::live::ticket_of(&event.stream_id)
                    .is_some_and(|id| ticket.is_none_or(|wanted| wanted == id))
        })
        .await?;
        Ok(feed
            .then(move |item| {
                let pool = pool.clone();
                let scope = scope.clone();
                async move {
                    let event = match item {
                        Ok(event) => event,
                        Err(error) => return Some(Err(error)),
                    };
                    message_of(&pool, &event, timeout)
                        .await
                        .map(|message| message.filter(|m| scope.covers(m.message.category_id)))
                        .transpose()
                }
            })
            .filter_map(std::future::ready))
    }

    /// A broadcast's counters: the current ones first, then after each of its events.
    #[graphql(guard = "Need(Permission::ReadBroadcasts)")]
    async fn broadcast_progress(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> Result<impl Stream<Item = Result<BroadcastProgress>> + use<>> {
        let broadcast = parse_uuid(&id, "id")?;
        let api = api(ctx);
        let pool = api.pool.clone();
        let timeout = api.limits.consistency_timeout;
        let stream = format!("broadcast-{broadcast}");
        let feed = event_feed(api.live.clone(), None, move |event| {
            event.stream_id == stream
        })
        .await?;
        let first = progress_of(&pool, broadcast, None, timeout)
            .await?
            .ok_or_else(|| error(Code::NotFound, "no such broadcast"))?;
        let rest = feed
            .then(move |item| {
                let pool = pool.clone();
                async move {
                    let event = match item {
                        Ok(event) => event,
                        Err(error) => return Some(Err(error)),
                    };
                    progress_of(&pool, broadcast, Some(event.position), timeout)
                        .await
                        .transpose()
                }
            })
            .filter_map(std::future::ready);
        Ok(futures::stream::once(std::future::ready(Ok(first))).chain(rest))
    }
}

async fn wait_for_model(
    pool: &PgPool,
    model: &str,
    position: Position,
    timeout: std::time::Duration,
) -> Result<()> {
    projections::wait_for(pool, &[model], position, timeout)
        .await
        .map_err(|detail| match detail {
            projections::WaitError::Timeout { .. } => error(
                Code::Timeout,
                format!("the {model} read model is behind; resubscribe to retry"),
            ),
            other => internal("a read model cannot be read", other),
        })
}

async fn message_of(
    pool: &PgPool,
    event: &RecordedEvent,
    timeout: std::time::Duration,
) -> Result<Option<MessageAddedEvent>> {
    let Some(ticket) = crate::live::ticket_of(&event.stream_id) else {
        return Ok(None);
    };
    wait_for_model(pool, "messages", event.position, timeout).await?;
    let seq = i64::try_from(event.stream_version).unwrap_or(i64::MAX);
    let message = load_message(pool, ticket, seq)
        .await
        .map_err(super::error::database)?;
    Ok(message.map(|message: AddedMessage| MessageAddedEvent {
        cursor: event.position.to_string(),
        message_id: ID(message.id.to_string()),
        ticket_id: ID(message.ticket_id.to_string()),
        author_agent_id: message.author_agent_id.map(|id| ID(id.to_string())),
        message,
    }))
}

async fn progress_of(
    pool: &PgPool,
    broadcast: Uuid,
    position: Option<Position>,
    timeout: std::time::Duration,
) -> Result<Option<BroadcastProgress>> {
    if let Some(position) = position {
        wait_for_model(pool, "broadcasts", position, timeout).await?;
    }
    let progress = load_progress(pool, broadcast)
        .await
        .map_err(super::error::database)?;
    Ok(progress.map(|progress| BroadcastProgress {
        cursor: position.map(|p| p.to_string()).unwrap_or_default(),
        ..progress
    }))
}

/// The message a ticket event at stream version `seq` posted, with the ticket's category.
async fn load_message(pool: &PgPool, ticket: Uuid, seq: i64) -> sqlx::Result<Option<AddedMessage>> {
    sqlx::query_as(
        "select m.id, m.ticket_id, m.direction, m.kind, m.text, m.caption, m.author_agent_id,
                m.created_at, m.seq, t.category_id
         from messages m left join tickets t on t.id = m.ticket_id
         where m.ticket_id = $1 and m.seq = $2",
    )
    .bind(ticket)
    .bind(seq)
    .fetch_optional(pool)
    .await
}

/// A broadcast's counters from the `broadcasts` read model.
async fn load_progress(pool: &PgPool, broadcast: Uuid) -> sqlx::Result<Option<BroadcastProgress>> {
    sqlx::query_as(
        "select state, delivered, failed, skipped, total_recipients as total
         from broadcasts where id = $1",
    )
    .bind(broadcast)
    .fetch_optional(pool)
    .await
}
