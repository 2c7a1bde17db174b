//! The log's events as the API shows them ([`LogEvent`]: the `events` feed, a ticket's
//! events and its history), and the live feed subscriptions read them from.
//!
//! Every subscription reads from the process's [`crate::live::LiveHub`], never from a log
//! follower of its own.

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{ComplexObject, Context, Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use eventlog::{ActorKind, Position, RecordedEvent};
use futures::{Stream, StreamExt};

use super::customers::{CustomerKey, CustomerLoader};
use super::directory::AgentLoader;
use super::error::{Code, error, failed};
use super::guard::current;
use super::ids;
use crate::auth::{Permission, TicketScope};
use crate::live::LiveHub;

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

impl ActorKindValue {
    /// The name in a global id (the GraphQL enum value).
    fn name(self) -> &'static str {
        match self {
            ActorKindValue::Customer => "CUSTOMER",
            ActorKindValue::Agent => "AGENT",
            ActorKindValue::Bot => "BOT",
            ActorKindValue::System => "SYSTEM",
            ActorKindValue::Integrator => "INTEGRATOR",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            ActorKindValue::Customer,
            ActorKindValue::Agent,
            ActorKindValue::Bot,
            ActorKindValue::System,
            ActorKindValue::Integrator,
        ]
        .into_iter()
        .find(|kind| kind.name() == name)
    }
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

/// The actor of an event: who it was, by kind and id. `node(id:)` gives it back from its
/// global id alone.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct EventActor {
    /// Global id.
    pub id: ID,
    /// What kind of actor.
    pub kind: ActorKindValue,
    /// Its id within that kind: an agent's or an API token's uuid, a customer's Telegram id,
    /// the name of a part of Ledgerdesk.
    pub actor_id: String,
}

impl EventActor {
    /// The actor `actor_id` of kind `kind`.
    pub fn new(kind: ActorKindValue, actor_id: String) -> Self {
        EventActor {
            id: ids::global("EventActor", format_args!("{}:{actor_id}", kind.name())),
            kind,
            actor_id,
        }
    }

    /// The actor a global id's key (`KIND:id`) names, if it is one.
    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, actor_id) = key.split_once(':')?;
        let kind = ActorKindValue::from_name(kind)?;
        (!actor_id.is_empty()).then(|| EventActor::new(kind, actor_id.to_owned()))
    }
}

#[ComplexObject]
impl EventActor {
    /// The actor's name as the read models know it now: an agent's display name, a
    /// customer's first and last name, an API token's name, `Telegram bot` for the bot, and
    /// the part's name for Ledgerdesk itself. Null when the caller may not read that kind of
    /// record, or it is not known (any more).
    async fn display_name(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let caller = current(ctx).await?;
        match self.kind {
            ActorKindValue::Bot => Ok(Some("Telegram bot".to_owned())),
            ActorKindValue::System => Ok(Some(self.actor_id.clone())),
            ActorKindValue::Agent => {
                let Ok(id) = self.actor_id.parse::<uuid::Uuid>() else {
                    return Ok(None);
                };
                if !caller.may(Permission::ReadDirectory) {
                    return Ok(None);
                }
                let agents = ctx.data_unchecked::<DataLoader<AgentLoader>>();
                let row = agents
                    .load_one(id)
                    .await
                    .map_err(|e| failed("cannot read the agent", e))?;
                Ok(row.map(|row| row.name))
            }
            ActorKindValue::Customer => {
                let Ok(id) = self.actor_id.parse::<i64>() else {
                    return Ok(None);
                };
                if !caller.may(Permission::ReadCustomers)
                    || caller.ticket_scope() != TicketScope::All
                {
                    return Ok(None);
                }
                let customers = ctx.data_unchecked::<DataLoader<CustomerLoader>>();
                let row = customers
                    .load_one(CustomerKey { id, within: None })
                    .await
                    .map_err(|e| failed("cannot read the customer", e))?;
                Ok(row.map(|row| match row.last_name {
                    Some(last) if !last.is_empty() => format!("{} {last}", row.first_name),
                    _ => row.first_name,
                }))
            }
            ActorKindValue::Integrator => {
                let Ok(id) = self.actor_id.parse::<uuid::Uuid>() else {
                    return Ok(None);
                };
                let api = ctx.data_unchecked::<super::context::Api>();
                crate::auth::store::api_token_name(&api.pool, id)
                    .await
                    .map_err(super::error::database)
            }
        }
    }
}

/// One event of the log, with its whole envelope and the cursor to resume after it.
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
    /// Its unique id (a uuid v7).
    pub event_id: uuid::Uuid,
    /// Groups every event caused by one outside request (a Telegram update, a mutation).
    pub correlation_id: Option<uuid::Uuid>,
    /// The event or message that directly caused this one.
    pub causation_id: Option<uuid::Uuid>,
    /// sha256 over `previousHash`, the type, the payload and the metadata (64 hex digits):
    /// the stream's hash chain, which `auditVerify` and `ledgerdesk audit verify` recompute.
    pub hash: String,
    /// The hash of the stream's previous event (null for its first event).
    pub previous_hash: Option<String>,
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
            actor: EventActor::new(
                event.metadata.actor.kind.into(),
                event.metadata.actor.id.clone(),
            ),
            payload: Json(event.payload.clone()),
            event_id: event.event_id,
            correlation_id: event.metadata.correlation_id,
            causation_id: event.metadata.causation_id,
            hash: hex::encode(&event.hash),
            previous_hash: event.prev_hash.as_ref().map(hex::encode),
        }
    }
}

/// A failure of the live feed, as a subscription item.
pub fn hub_failed(detail: eventlog::Error) -> async_graphql::Error {
    failed("cannot follow the event log", detail)
}

/// Where a feed starts when no `after` cursor is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
pub enum EventsFrom {
    /// Before the first event of the log: every stored event, then each new one.
    Beginning,
    /// After the last event committed when the subscription starts: new events only.
    #[default]
    Now,
}

impl EventsFrom {
    /// The cursor this start stands for (`None`: the log's head when the feed starts).
    pub fn cursor(self) -> Option<Position> {
        match self {
            EventsFrom::Beginning => Some(Position::START),
            EventsFrom::Now => None,
        }
    }
}

/// The log's events after `after` (from the log's head with `None`), filtered, as GraphQL
/// items; one error item ends the feed. Also gives the position the feed starts after, so
/// that a caller can check its access as of exactly there: a change before it is then seen
/// at once, a change after it as one of the feed's events.
///
/// # Errors
/// `VALIDATION` for a cursor beyond the last committed event (from another database, say:
/// following it would silently skip events); `INTERNAL` when the hub cannot start.
pub async fn event_feed(
    live: LiveHub,
    after: Option<Position>,
    keep: impl Fn(&RecordedEvent) -> bool + Send + 'static,
) -> Result<(
    Position,
    impl Stream<Item = Result<Arc<RecordedEvent>>> + Send + 'static,
)> {
    if let Some(after) = after
        && after != Position::START
        && after > live.last_committed().await.map_err(hub_failed)?
    {
        return Err(error(
            Code::Validation,
            "this cursor is beyond the end of the log: is it from another database?",
        ));
    }
    let start = match after {
        Some(after) => after,
        None => live.head().await.map_err(hub_failed)?,
    };
    let feed = live.feed(Some(start)).await.map_err(hub_failed)?;
    Ok((
        start,
        feed.filter_map(move |item| {
            let item = match item {
                Ok(event) if keep(&event) => Some(Ok(event)),
                Ok(_) => None,
                Err(detail) => Some(Err(hub_failed(detail))),
            };
            std::future::ready(item)
        }),
    ))
}

/// A cursor given back by a client: `None` stays `None`, anything not a cursor of ours is
/// `VALIDATION`.
///
/// # Errors
/// `VALIDATION` for a cursor this API did not return.
pub fn parse_cursor(after: Option<String>) -> Result<Option<Position>> {
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
