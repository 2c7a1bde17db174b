//! Subscriptions: the raw event feed with cursors, a ticket's events, the live ticket list,
//! new messages and broadcast progress.
//!
//! Every subscription reads from the process's [`crate::live::LiveHub`], never from a log
//! follower of its own. Rows come from the read models through their query functions, after
//! waiting for the read model to reach the event's position.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Json, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use eventlog::{ActorKind, Position, RecordedEvent};
use futures::{Stream, StreamExt};
use sqlx::PgPool;
use uuid::Uuid;

use super::Api;
use super::error::{Code, error, internal};
use super::guard::{self, Need};
use super::tickets::load_tickets;
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

mod rows;
mod ticket_list;

pub use rows::{AddedMessage, BroadcastProgress, MessageAddedEvent};
pub use ticket_list::{TicketChange, TicketsChangedFilter};

use rows::{message_of, progress_of, wait_for_model};
use ticket_list::TicketMatcher;

const MESSAGE_EVENTS: [&str; 2] = ["ticket.customer_message_posted", "ticket.agent_replied"];
/// The event that moves a ticket to another category (or none).
const CATEGORY_CHANGED: &str = "ticket.category_changed";

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
        let after = parse_cursor(after)?;
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
        let scope = guard::ticket_scope(ctx).await?;
        guard::ticket_in(ctx, &scope, ticket).await?;
        let after = parse_cursor(after)?;
        let api = api(ctx);
        let (pool, timeout) = (api.pool.clone(), api.limits.consistency_timeout);
        let stream = format!("ticket-{ticket}");
        let feed = event_feed(api.live.clone(), after, move |event| {
            event.stream_id == stream
        })
        .await?;
        // A category-scoped agent follows the ticket only while it stays in their categories:
        // when it moves out, the feed ends with NOT_FOUND before the move (or anything after
        // it) shows.
        let recheck = scope != TicketScope::All;
        let checked = feed.then(move |item| {
            let (pool, scope) = (pool.clone(), scope.clone());
            async move {
                let event = item?;
                if recheck
                    && event.event_type == CATEGORY_CHANGED
                    && !in_scope_after(&pool, &scope, ticket, event.position, timeout).await?
                {
                    return Err(error(Code::NotFound, "no such ticket"));
                }
                Ok(LogEvent::from(event.as_ref()))
            }
        });
        let mut ended = false;
        Ok(checked.take_while(move |item| {
            let go = !ended;
            ended |= item.is_err();
            std::future::ready(go)
        }))
    }

    /// The live ticket list: each ticket that changed and is (or just stopped being) in the
    /// filter, as the read model has it after the change. Tickets outside the caller's
    /// categories never show. A list that falls behind catches up from the log.
    ///
    /// `showing` names the tickets (`ticketId`s, at most the page size) the client already
    /// shows, typically the page it loaded with `tickets(filter)` just before: when one of
    /// them changes and no longer fits the filter, the list says so (`inFilter: false`),
    /// though this subscription never sent it.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn tickets_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<TicketsChangedFilter>,
        #[graphql(default)] showing: Vec<ID>,
    ) -> Result<impl Stream<Item = Result<TicketChange>> + use<>> {
        let max = api(ctx).limits.max_page;
        if showing.len() > max {
            return Err(error(
                Code::Validation,
                format!("showing names at most {max} tickets"),
            ));
        }
        let showing = showing
            .iter()
            .map(|id| parse_uuid(id, "showing"))
            .collect::<Result<HashSet<Uuid>>>()?;
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
        let live = api(ctx).live.clone();
        let (head, receiver) = live.tickets().await.map_err(hub_failed)?;
        Ok(ticket_list::changes(live, head, receiver, matcher, showing))
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
        let feed = event_feed(api.live.clone(), None, {
            let stream = stream.clone();
            move |event| event.stream_id == stream
        })
        .await?;
        let first = match progress_of(&pool, broadcast, None, timeout).await? {
            Some(first) => first,
            // Not in the read model yet: a broadcast created a moment ago is in the log, and
            // its first snapshot comes once the read model has applied its last event.
            None => {
                let not_found = || error(Code::NotFound, "no such broadcast");
                let last = eventlog::EventLog::read_stream(
                    &api.log,
                    &stream,
                    u64::MAX,
                    eventlog::Direction::Backwards,
                    1,
                )
                .await
                .map_err(|e| match e {
                    eventlog::Error::StreamNotFound { .. } => not_found(),
                    e => internal("cannot read the broadcast", e),
                })?;
                let at = last
                    .first()
                    .map(|event| event.position)
                    .ok_or_else(not_found)?;
                progress_of(&pool, broadcast, Some(at), timeout)
                    .await?
                    .ok_or_else(not_found)?
            }
        };
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

/// Whether `ticket` is still within `scope` once the `tickets` read model has applied the log
/// up to `position`.
async fn in_scope_after(
    pool: &PgPool,
    scope: &TicketScope,
    ticket: Uuid,
    position: Position,
    timeout: std::time::Duration,
) -> Result<bool> {
    wait_for_model(pool, "tickets", position, timeout).await?;
    let rows = load_tickets(pool, &[ticket])
        .await
        .map_err(super::error::database)?;
    Ok(rows
        .first()
        .is_some_and(|row| scope.covers(row.category_uuid)))
}

/// A cursor given back by a client: `None` stays `None`, anything not a cursor of ours is
/// `VALIDATION`.
fn parse_cursor(after: Option<String>) -> Result<Option<Position>> {
    after
        .map(|after| {
            after.trim().parse::<Position>().map_err(|_| {
                error(
                    Code::Validation,
                    "`after` is not a cursor this API returned",
                )
            })
        })
        .transpose()
}
