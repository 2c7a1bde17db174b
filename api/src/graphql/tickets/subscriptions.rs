//! The tickets' subscriptions: a ticket's events, the live ticket list, new messages.
//!
//! Each reads the process's [`crate::live::LiveHub`]; rows come from the read models once they
//! have applied the event an item is about.

use std::collections::HashSet;

use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use eventlog::{Position, RecordedEvent};
use futures::{Stream, StreamExt};
use projections::StoredText;
use projections::tickets::queries::{self as tickets, PostedMessage};
use sqlx::PgPool;
use uuid::Uuid;

use super::ticket_list::{self, TicketChange, TicketMatcher, TicketsChangedFilter};
use crate::auth::{Permission, TicketScope};
use crate::graphql::consistency::wait_for_model;
use crate::graphql::context::Api;
use crate::graphql::error::{Code, database, error, until_available};
use crate::graphql::events::{LogEvent, event_feed, hub_failed, parse_cursor};
use crate::graphql::guard::{self, LiveScope, Need};
use crate::graphql::ids::parse_uuid;
use crate::live::ticket_of;

const MESSAGE_EVENTS: [&str; 2] = ["ticket.customer_message_posted", "ticket.agent_replied"];
/// The event that moves a ticket to another category (or none).
const CATEGORY_CHANGED: &str = "ticket.category_changed";

/// A message posted on a ticket: a customer's message or an agent's reply.
#[derive(Debug, Clone, SimpleObject)]
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
    pub category_id: Option<Uuid>,
}

impl From<PostedMessage> for AddedMessage {
    fn from(posted: PostedMessage) -> Self {
        let row = posted.message;
        AddedMessage {
            id: row.id,
            ticket_id: row.ticket_id,
            direction: row.direction.as_str().to_owned(),
            kind: row.kind.as_str().to_owned(),
            text: row.text,
            caption: row.caption,
            author_agent_id: row.author_agent_id,
            created_at: row.created_at,
            seq: row.seq,
            category_id: posted.ticket_category_id,
        }
    }
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

/// The tickets' subscriptions.
#[derive(Debug, Default)]
pub struct TicketSubscription;

#[Subscription]
impl TicketSubscription {
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
        let access = LiveScope::of(ctx, Permission::ReadTickets)?;
        let after = parse_cursor(after)?;
        let api = ctx.data_unchecked::<Api>();
        let (pool, timeout) = (api.pool.clone(), api.limits.consistency_timeout);
        let stream = format!("ticket-{ticket}");
        let (start, feed) = event_feed(api.live.clone(), after, move |event| {
            event.stream_id == stream
        })
        .await?;
        if after.is_none() {
            // The role as of where the feed starts; later changes are checked as events.
            access.at(start).await?;
        }
        // Each event is checked against the caller's scope as of its position: a
        // category-scoped agent follows the ticket only while it stays in their categories
        // (and they in its category): when either changes so that it is out, the feed ends
        // with NOT_FOUND before the change (or anything after it) shows.
        let checked = feed.then(move |item| {
            let (pool, access, started) = (pool.clone(), access.clone(), scope.clone());
            async move {
                let event = item?;
                let now = access.at(event.position).await?;
                let recheck = now != TicketScope::All
                    && (event.event_type == CATEGORY_CHANGED || now != started);
                if recheck
                    && !until_available(|| {
                        in_scope_after(&pool, &now, ticket, event.position, timeout)
                    })
                    .await?
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
        let api = ctx.data_unchecked::<Api>();
        let max = api.limits.max_page;
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
        let access = LiveScope::of(ctx, Permission::ReadTickets)?;
        let live = api.live.clone();
        let (head, receiver) = live.tickets().await.map_err(hub_failed)?;
        Ok(ticket_list::changes(
            live, head, receiver, matcher, access, showing,
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
        let access = LiveScope::of(ctx, Permission::ReadTickets)?;
        let api = ctx.data_unchecked::<Api>();
        let pool = api.pool.clone();
        let timeout = api.limits.consistency_timeout;
        let (start, feed) = event_feed(api.live.clone(), None, move |event| {
            MESSAGE_EVENTS.contains(&event.event_type.as_str())
                && ticket_of(&event.stream_id)
                    .is_some_and(|id| ticket.is_none_or(|wanted| wanted == id))
        })
        .await?;
        // The role as of where the feed starts; later changes are checked as events.
        access.at(start).await?;
        // Each message is checked against the caller's scope as of its position; a refusal
        // (deactivated, permission lost) is the feed's last item.
        Ok(feed
            .then(move |item| {
                let (pool, access) = (pool.clone(), access.clone());
                async move {
                    let event = match item {
                        Ok(event) => event,
                        Err(error) => return Some((Err(error), false)),
                    };
                    let scope = match access.at(event.position).await {
                        Ok(scope) => scope,
                        Err(error) => return Some((Err(error), true)),
                    };
                    until_available(|| message_of(&pool, &event, timeout))
                        .await
                        .map(|message| message.filter(|m| scope.covers(m.message.category_id)))
                        .transpose()
                        .map(|item| (item, false))
                }
            })
            .filter_map(std::future::ready)
            .scan(false, |ended, (item, last)| {
                let go = !*ended;
                *ended = last;
                std::future::ready(go.then_some(item))
            }))
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
    let row = tickets::by_id(pool, ticket).await.map_err(database)?;
    Ok(row.is_some_and(|row| scope.covers(row.category_id)))
}

/// The message the event posted, once the `messages` read model has it.
async fn message_of(
    pool: &PgPool,
    event: &RecordedEvent,
    timeout: std::time::Duration,
) -> Result<Option<MessageAddedEvent>> {
    let Some(ticket) = ticket_of(&event.stream_id) else {
        return Ok(None);
    };
    wait_for_model(pool, "messages", event.position, timeout).await?;
    let seq = i64::try_from(event.stream_version).unwrap_or(i64::MAX);
    let message = tickets::message_at(pool, ticket, seq)
        .await
        .map_err(database)?;
    Ok(message
        .map(AddedMessage::from)
        .map(|message| MessageAddedEvent {
            cursor: event.position.to_string(),
            message_id: ID(message.id.to_string()),
            ticket_id: ID(message.ticket_id.to_string()),
            author_agent_id: message.author_agent_id.map(|id| ID(id.to_string())),
            message,
        }))
}
