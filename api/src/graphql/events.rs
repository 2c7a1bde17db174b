//! The log's events as the API shows them ([`LogEvent`]: the `events` feed, a ticket's
//! events and its history), and the live feed subscriptions read them from.
//!
//! Every subscription reads from the process's [`crate::live::LiveHub`], never from a log
//! follower of its own.

use std::sync::Arc;

use async_graphql::{Enum, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use eventlog::{ActorKind, Position, RecordedEvent};
use futures::{Stream, StreamExt};

use super::error::{Code, error, internal};
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

/// A failure of the live feed, as a subscription item.
pub fn hub_failed(detail: eventlog::Error) -> async_graphql::Error {
    internal("cannot follow the event log", detail)
}

/// The log's events after `after`, filtered, as GraphQL items; one error item ends the feed.
///
/// # Errors
/// `INTERNAL` when the hub cannot start.
pub async fn event_feed(
    live: LiveHub,
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
