//! The `Ticket` object as read from the `tickets` read model, shared by queries, mutations
//! and subscriptions. Its nested fields (messages, notes, customer, assignee, history) read
//! through [`queries`].

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, Result, SimpleObject};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::error::database;
use super::guard::Need;
use super::{Api, ids, queries};
use crate::auth::Permission;

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TicketStatusValue {
    /// Opened, nobody answered yet.
    New,
    /// Being worked.
    Open,
    /// Waiting for the customer.
    Pending,
    /// Solved; the customer may reopen it within the reopen window.
    Resolved,
    /// Done for good.
    Closed,
}

impl TicketStatusValue {
    /// The value stored in the read model.
    pub fn as_sql(self) -> &'static str {
        match self {
            TicketStatusValue::New => "new",
            TicketStatusValue::Open => "open",
            TicketStatusValue::Pending => "pending",
            TicketStatusValue::Resolved => "resolved",
            TicketStatusValue::Closed => "closed",
        }
    }

    fn from_sql(value: &str) -> Self {
        match value {
            "open" => TicketStatusValue::Open,
            "pending" => TicketStatusValue::Pending,
            "resolved" => TicketStatusValue::Resolved,
            "closed" => TicketStatusValue::Closed,
            _ => TicketStatusValue::New,
        }
    }
}

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PriorityValue {
    /// Low.
    Low,
    /// Normal (the default).
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl PriorityValue {
    /// The value stored in the read model.
    pub fn as_sql(self) -> &'static str {
        match self {
            PriorityValue::Low => "low",
            PriorityValue::Normal => "normal",
            PriorityValue::High => "high",
            PriorityValue::Urgent => "urgent",
        }
    }

    fn from_sql(value: &str) -> Self {
        match value {
            "low" => PriorityValue::Low,
            "high" => PriorityValue::High,
            "urgent" => PriorityValue::Urgent,
            _ => PriorityValue::Normal,
        }
    }
}

/// One row of the `tickets` read model.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketRow {
    pub id: Uuid,
    pub customer_id: i64,
    pub status: String,
    pub priority: String,
    pub category_id: Option<Uuid>,
    pub assignee_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub subject: String,
    pub customer_messages: i32,
    pub agent_messages: i32,
    pub notes: i32,
    pub unread_by_agents: i32,
    pub created_at: DateTime<Utc>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_direction: Option<String>,
    pub last_message_preview: Option<String>,
    pub last_activity_at: DateTime<Utc>,
    pub rating: Option<i16>,
    pub version: i64,
}

/// The columns [`TicketRow`] reads, for `select {TICKET_COLUMNS} from tickets …`.
pub const TICKET_COLUMNS: &str = "id, customer_id, status, priority, category_id, assignee_id, \
    tags, subject, customer_messages, agent_messages, notes, unread_by_agents, created_at, \
    first_response_at, resolved_at, closed_at, last_message_at, last_message_direction, \
    last_message_preview, last_activity_at, rating, version";

/// A support conversation with one customer.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Ticket {
    /// Global id (for `node`).
    pub id: ID,
    /// The ticket's uuid, as mutations take it.
    pub ticket_id: ID,
    /// The customer's Telegram user id.
    pub customer_id: ID,
    /// Status.
    pub status: TicketStatusValue,
    /// Priority.
    pub priority: PriorityValue,
    /// Its category, if any.
    pub category_id: Option<ID>,
    /// The assigned agent, if any.
    pub assignee_id: Option<ID>,
    /// Tags.
    pub tags: Vec<String>,
    /// First line of the first customer message.
    pub subject: String,
    /// Customer messages so far.
    pub customer_message_count: i32,
    /// Agent replies so far.
    pub agent_message_count: i32,
    /// Internal notes so far.
    pub note_count: i32,
    /// Customer messages since the last agent reply.
    pub unread_by_agents: i32,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// The first agent reply.
    pub first_response_at: Option<DateTime<Utc>>,
    /// When it was last resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// The last message's time.
    pub last_message_at: Option<DateTime<Utc>>,
    /// `in` (customer) or `out` (agent).
    pub last_message_direction: Option<String>,
    /// The start of the last message.
    pub last_message_preview: Option<String>,
    /// The last change of any kind.
    pub last_activity_at: DateTime<Utc>,
    /// The customer's rating (1–5), if given.
    pub rating: Option<i32>,
    /// The ticket stream's version this row reflects.
    pub version: i64,
    #[graphql(skip)]
    pub uuid: Uuid,
    #[graphql(skip)]
    pub category_uuid: Option<Uuid>,
    #[graphql(skip)]
    pub assignee_uuid: Option<Uuid>,
    #[graphql(skip)]
    pub customer_key: i64,
}

impl From<TicketRow> for Ticket {
    fn from(row: TicketRow) -> Self {
        Ticket {
            id: ids::global("Ticket", row.id),
            ticket_id: ID(row.id.to_string()),
            customer_id: ID(row.customer_id.to_string()),
            status: TicketStatusValue::from_sql(&row.status),
            priority: PriorityValue::from_sql(&row.priority),
            category_id: row.category_id.map(|id| ID(id.to_string())),
            assignee_id: row.assignee_id.map(|id| ID(id.to_string())),
            tags: row.tags,
            subject: row.subject,
            customer_message_count: row.customer_messages,
            agent_message_count: row.agent_messages,
            note_count: row.notes,
            unread_by_agents: row.unread_by_agents,
            created_at: row.created_at,
            first_response_at: row.first_response_at,
            resolved_at: row.resolved_at,
            closed_at: row.closed_at,
            last_message_at: row.last_message_at,
            last_message_direction: row.last_message_direction,
            last_message_preview: row.last_message_preview,
            last_activity_at: row.last_activity_at,
            rating: row.rating.map(i32::from),
            version: row.version,
            uuid: row.id,
            category_uuid: row.category_id,
            assignee_uuid: row.assignee_id,
            customer_key: row.customer_id,
        }
    }
}

/// The tickets with these ids that exist in the read model (any order).
///
/// # Errors
/// When the database fails.
pub async fn load_tickets(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<Ticket>> {
    let rows: Vec<TicketRow> = sqlx::query_as(&format!(
        "select {TICKET_COLUMNS} from tickets where id = any($1)"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Ticket::from).collect())
}

#[async_graphql::ComplexObject]
impl Ticket {
    /// The conversation: customer messages and agent replies in ticket order.
    #[graphql(
        guard = "Need(Permission::ReadTickets)",
        complexity = "queries::connection_complexity(first, child_complexity)"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, queries::tickets::Message>> {
        queries::tickets::messages(ctx, self.uuid, first, after).await
    }

    /// Internal notes in ticket order.
    #[graphql(
        guard = "Need(Permission::ReadTickets)",
        complexity = "queries::connection_complexity(first, child_complexity)"
    )]
    async fn notes(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, queries::tickets::Note>> {
        queries::tickets::notes(ctx, self.uuid, first, after).await
    }

    /// The ticket stream's events from the log, oldest first.
    #[graphql(
        guard = "Need(Permission::ReadTickets)",
        complexity = "queries::connection_complexity(first, child_complexity)"
    )]
    async fn history(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<String, super::subscriptions::LogEvent>> {
        queries::tickets::history(ctx, self.uuid, first, after).await
    }

    /// The customer who wrote.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<queries::customers::Customer>> {
        let api = ctx.data_unchecked::<Api>();
        queries::customers::load_customer(&api.pool, self.customer_key)
            .await
            .map_err(database)
    }

    /// The assigned agent.
    #[graphql(guard = "Need(Permission::ReadDirectory)")]
    async fn assignee(&self, ctx: &Context<'_>) -> Result<Option<queries::directory::Agent>> {
        let Some(assignee) = self.assignee_uuid else {
            return Ok(None);
        };
        let api = ctx.data_unchecked::<Api>();
        let mut agents = queries::directory::load_agents(&api.pool, Some(assignee), true)
            .await
            .map_err(database)?;
        Ok(agents.pop())
    }
}
