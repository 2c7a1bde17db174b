//! The `Ticket` object, over a row of the `tickets` read model, shared by queries, mutations
//! and subscriptions. Its nested fields (messages, notes, history, customer, assignee) read
//! when asked.
//!
//! A ticket holds its row behind an `Arc`: the live ticket list hands the same row to every
//! subscriber that shows it, and each field is computed from the row only when a client asks
//! for it.

use std::sync::{Arc, OnceLock};

use async_graphql::connection::Connection;
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use eventlog::{Direction, EventLog};
use projections::StoredText;
use projections::tickets::TicketRow;
use projections::tickets::queries as tickets;
use uuid::Uuid;

use super::types::{Message, Note, PriorityValue, TicketStatusValue};
use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::customers::{Customer, CustomerKey, CustomerLoader};
use crate::graphql::directory::{Agent, AgentLoader};
use crate::graphql::error::{database, failed, failed_as};
use crate::graphql::events::LogEvent;
use crate::graphql::guard::{self, Need};
use crate::graphql::ids;
use crate::graphql::pagination::{
    PageArgs, connection, connection_complexity, cursor, cursor_part, page,
};

/// A support conversation with one customer.
#[derive(Debug, Clone)]
pub struct Ticket {
    row: Arc<TicketRow>,
    /// The global id, made when first asked for.
    id: OnceLock<ID>,
}

impl Ticket {
    /// The ticket of a shared row.
    pub fn new(row: Arc<TicketRow>) -> Self {
        Ticket {
            row,
            id: OnceLock::new(),
        }
    }

    /// Its row of the read model.
    pub fn row(&self) -> &TicketRow {
        &self.row
    }
}

impl From<TicketRow> for Ticket {
    fn from(row: TicketRow) -> Self {
        Ticket::new(Arc::new(row))
    }
}

fn id_of(id: Option<Uuid>) -> Option<ID> {
    id.map(|id| ID(id.to_string()))
}

/// A support conversation with one customer.
#[Object]
impl Ticket {
    /// Global id (for `node`).
    pub async fn id(&self) -> &ID {
        self.id.get_or_init(|| ids::global("Ticket", self.row.id))
    }

    /// The ticket's uuid, as mutations take it.
    async fn ticket_id(&self) -> ID {
        ID(self.row.id.to_string())
    }

    /// The customer's Telegram user id.
    async fn customer_id(&self) -> ID {
        ID(self.row.customer_id.to_string())
    }

    /// Status.
    async fn status(&self) -> TicketStatusValue {
        self.row.status.into()
    }

    /// Priority.
    async fn priority(&self) -> PriorityValue {
        self.row.priority.into()
    }

    /// Its category, if any.
    async fn category_id(&self) -> Option<ID> {
        id_of(self.row.category_id)
    }

    /// The assigned agent, if any.
    async fn assignee_id(&self) -> Option<ID> {
        id_of(self.row.assignee_id)
    }

    /// Tags.
    async fn tags(&self) -> &[String] {
        &self.row.tags
    }

    /// First line of the first customer message.
    async fn subject(&self) -> &str {
        &self.row.subject
    }

    /// Customer messages so far.
    async fn customer_message_count(&self) -> i32 {
        self.row.customer_messages
    }

    /// Agent replies so far.
    async fn agent_message_count(&self) -> i32 {
        self.row.agent_messages
    }

    /// Internal notes so far.
    async fn note_count(&self) -> i32 {
        self.row.notes
    }

    /// Customer messages since the last agent reply.
    async fn unread_by_agents(&self) -> i32 {
        self.row.unread_by_agents
    }

    /// When it was opened.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// The first agent reply.
    async fn first_response_at(&self) -> Option<DateTime<Utc>> {
        self.row.first_response_at
    }

    /// When it was last resolved.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.row.resolved_at
    }

    /// When it was closed.
    async fn closed_at(&self) -> Option<DateTime<Utc>> {
        self.row.closed_at
    }

    /// The last message's time.
    async fn last_message_at(&self) -> Option<DateTime<Utc>> {
        self.row.last_message_at
    }

    /// `in` (customer) or `out` (agent).
    async fn last_message_direction(&self) -> Option<&str> {
        self.row.last_message_direction.map(StoredText::as_str)
    }

    /// The start of the last message.
    async fn last_message_preview(&self) -> Option<&str> {
        self.row.last_message_preview.as_deref()
    }

    /// The last change of any kind.
    async fn last_activity_at(&self) -> DateTime<Utc> {
        self.row.last_activity_at
    }

    /// The customer's rating (1–5), if given.
    async fn rating(&self) -> Option<i32> {
        self.row.rating.map(i32::from)
    }

    /// The ticket stream's version this row reflects.
    async fn version(&self) -> i64 {
        self.row.version
    }

    /// The conversation: customer messages and agent replies in ticket order (`last` for the
    /// newest).
    #[graphql(
        guard = "Need(Permission::ReadTickets)",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Message>> {
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        let rows = tickets::messages(&api.pool, self.row.id, &request.keyset(seq_key)?)
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.seq, row.id),
            Message::from,
        ))
    }

    /// Internal notes in ticket order (`last` for the newest).
    #[graphql(
        guard = "Need(Permission::ReadTickets)",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    async fn notes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, Note>> {
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        let rows = tickets::notes(&api.pool, self.row.id, &request.keyset(seq_key)?)
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.seq, row.id),
            Note::from,
        ))
    }

    /// The ticket stream's events from the log, oldest first (`last` for the newest).
    #[graphql(
        guard = "Need(Permission::ReadTickets)",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, LogEvent>> {
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        let keyset = request.keyset(|key, _| cursor_part::<u64>(key))?;
        let stream = domain::TicketId(self.row.id).stream().name();
        let after = keyset.after;
        let before = keyset.before;
        // Read from the end of the range the page starts at (the stream's versions start at 0,
        // and nothing lies before version 0), then drop what lies beyond the other end.
        let start = if keyset.from_end {
            before
                .map_or(Some(u64::MAX), |before| before.checked_sub(1))
                .map(|from| (from, Direction::Backwards))
        } else {
            Some((
                after.map_or(0, |after| after.saturating_add(1)),
                Direction::Forwards,
            ))
        };
        let events = match start {
            None => Vec::new(),
            Some((from, direction)) => match api
                .log
                .read_stream(&stream, from, direction, request.size + 1)
                .await
            {
                Ok(events) => events,
                Err(eventlog::Error::StreamNotFound { .. }) => Vec::new(),
                Err(other) => return Err(failed("cannot read the ticket's history", other)),
            },
        };
        let in_range = |version: u64| {
            after.is_none_or(|after| version > after)
                && before.is_none_or(|before| version < before)
        };
        let events: Vec<_> = events
            .into_iter()
            .filter(|event| in_range(event.stream_version))
            .collect();
        Ok(connection(
            &request,
            keyset.in_list_order(events),
            |event| cursor(event.stream_version, event.event_id),
            |event| LogEvent::from(&event),
        ))
    }

    /// The customer who wrote.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<Customer>> {
        let customers = ctx.data_unchecked::<DataLoader<CustomerLoader>>();
        let key = CustomerKey {
            id: self.row.customer_id,
            within: guard::ticket_scope(ctx).await?.categories().map(Arc::from),
        };
        let row = customers
            .load_one(key)
            .await
            .map_err(|error| failed_as("a database query failed", &*error))?;
        Ok(row.map(Customer::from))
    }

    /// The assigned agent.
    #[graphql(guard = "Need(Permission::ReadDirectory)")]
    async fn assignee(&self, ctx: &Context<'_>) -> Result<Option<Agent>> {
        let Some(assignee) = self.row.assignee_id else {
            return Ok(None);
        };
        let agents = ctx.data_unchecked::<DataLoader<AgentLoader>>();
        let row = agents
            .load_one(assignee)
            .await
            .map_err(|error| failed_as("a database query failed", &*error))?;
        Ok(row.map(Agent::from))
    }
}

/// The `seq` of a cursor of a ticket's messages or notes.
fn seq_key(key: &str, _id: &str) -> Result<i64> {
    cursor_part(key)
}
