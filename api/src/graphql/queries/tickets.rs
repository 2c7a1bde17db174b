//! `tickets` and `ticket`, and what a ticket nests: its messages, notes and history. Agents
//! limited to categories see only their tickets ([`guard::ticket_scope`]).

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use eventlog::{Direction, EventLog};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{
    MAX_SEARCH, MAX_TEXT_FILTER, PageRequest, bounded, connection, connection_complexity,
    contains_pattern, cursor, cursor_part, page,
};
use crate::auth::{Permission, TicketScope};
use crate::graphql::error::{Code, database, error, internal};
use crate::graphql::guard::{self, Need};
use crate::graphql::subscriptions::LogEvent;
use crate::graphql::tickets::{
    PriorityValue, TICKET_COLUMNS, Ticket, TicketRow, TicketStatusValue,
};
use crate::graphql::{Api, ConsistencyInput, consistent, ids};

/// Which tickets `tickets` returns; every field narrows the list.
#[derive(Debug, Clone, Default, InputObject)]
pub struct TicketFilter {
    /// Any of these statuses.
    pub status: Option<Vec<TicketStatusValue>>,
    /// Assigned to this agent (agent uuid or global id).
    pub assignee: Option<ID>,
    /// `true`: only unassigned tickets; `false`: only assigned ones.
    pub unassigned: Option<bool>,
    /// In this category (category uuid or global id).
    pub category: Option<ID>,
    /// Of this priority.
    pub priority: Option<PriorityValue>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// Of this customer (Telegram user id or global id).
    pub customer: Option<ID>,
    /// Words in any message (text or caption) or in the subject; at most 200 characters.
    pub search: Option<String>,
}

/// The order of `tickets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
pub enum TicketOrder {
    /// Most recent activity first (the default).
    #[default]
    LastActivityDesc,
    /// Newest first.
    CreatedAtDesc,
    /// Oldest first.
    CreatedAtAsc,
}

impl TicketOrder {
    fn column(self) -> &'static str {
        match self {
            TicketOrder::LastActivityDesc => "last_activity_at",
            TicketOrder::CreatedAtDesc | TicketOrder::CreatedAtAsc => "created_at",
        }
    }

    fn descending(self) -> bool {
        !matches!(self, TicketOrder::CreatedAtAsc)
    }

    fn key(self, row: &TicketRow) -> DateTime<Utc> {
        match self {
            TicketOrder::LastActivityDesc => row.last_activity_at,
            TicketOrder::CreatedAtDesc | TicketOrder::CreatedAtAsc => row.created_at,
        }
    }
}

/// A validated [`TicketFilter`] in the read model's terms.
#[derive(Debug, Clone, Default)]
pub struct TicketCriteria {
    pub statuses: Vec<&'static str>,
    pub assignee: Option<Uuid>,
    pub unassigned: Option<bool>,
    pub category: Option<Uuid>,
    pub priority: Option<&'static str>,
    pub tag: Option<String>,
    pub customer: Option<i64>,
    pub search: Option<String>,
    /// The caller's categories, when limited to them.
    pub categories: Option<Vec<Uuid>>,
}

impl TicketCriteria {
    fn new(filter: &TicketFilter, scope: &TicketScope) -> Result<Self> {
        let mut statuses: Vec<&'static str> = filter
            .status
            .iter()
            .flatten()
            .map(|status| status.as_sql())
            .collect();
        statuses.sort_unstable();
        statuses.dedup();
        Ok(TicketCriteria {
            statuses,
            assignee: filter
                .assignee
                .as_ref()
                .map(|id| ids::uuid_of("Agent", id))
                .transpose()?,
            unassigned: filter.unassigned,
            category: filter
                .category
                .as_ref()
                .map(|id| ids::uuid_of("Category", id))
                .transpose()?,
            priority: filter.priority.map(PriorityValue::as_sql),
            tag: bounded("filter.tag", filter.tag.as_deref(), MAX_TEXT_FILTER)?.map(str::to_owned),
            customer: filter.customer.as_ref().map(customer_key).transpose()?,
            search: bounded("filter.search", filter.search.as_deref(), MAX_SEARCH)?
                .map(str::to_owned),
            categories: scope.categories().map(<[Uuid]>::to_vec),
        })
    }
}

/// A customer's Telegram id from a bare id or a `Customer` global id.
///
/// # Errors
/// `VALIDATION` when it is neither.
pub fn customer_key(id: &ID) -> Result<i64> {
    if let Ok(key) = id.parse::<i64>() {
        return Ok(key);
    }
    let (kind, key) = ids::parse(id)?;
    match (kind.as_str(), key.parse::<i64>()) {
        ("Customer", Ok(key)) => Ok(key),
        _ => Err(error(Code::Validation, "not a customer id")),
    }
}

/// `tickets` and `ticket`.
#[derive(Debug, Default)]
pub struct TicketQuery;

#[Object]
impl TicketQuery {
    /// Tickets the caller may see, filtered and ordered, a page at a time.
    #[graphql(
        guard = "Need(Permission::ReadTickets)",
        complexity = "connection_complexity(first, child_complexity)"
    )]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<TicketFilter>,
        order_by: Option<TicketOrder>,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Connection<String, Ticket>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, first, after.as_deref())?;
        let scope = guard::ticket_scope(ctx).await?;
        let criteria = TicketCriteria::new(&filter.unwrap_or_default(), &scope)?;
        let order = order_by.unwrap_or_default();
        let after = request
            .after
            .as_ref()
            .map(|(key, id)| -> Result<(DateTime<Utc>, Uuid)> {
                let micros: i64 = cursor_part(key)?;
                let at = DateTime::from_timestamp_micros(micros)
                    .ok_or_else(|| error(Code::Validation, "not a cursor of this list"))?;
                Ok((at, cursor_part(id)?))
            })
            .transpose()?;
        let rows = list_tickets(&api.pool, &criteria, order, after, request.limit())
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(order.key(row).timestamp_micros(), row.id),
            Ticket::from,
        ))
    }

    /// One ticket, by uuid or global id; `NOT_FOUND` when it does not exist or is outside the
    /// caller's categories.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn ticket(
        &self,
        ctx: &Context<'_>,
        id: ID,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Ticket> {
        consistent(ctx, consistency.as_ref()).await?;
        let id = ids::uuid_of("Ticket", &id)?;
        visible_ticket(ctx, id).await
    }
}

/// The ticket if it exists and the caller may see it, else `NOT_FOUND`.
///
/// # Errors
/// `NOT_FOUND`, or `INTERNAL` when the database fails.
pub async fn visible_ticket(ctx: &Context<'_>, id: Uuid) -> Result<Ticket> {
    guard::visible_ticket(ctx, id).await?;
    let api = ctx.data_unchecked::<Api>();
    crate::graphql::tickets::load_tickets(&api.pool, &[id])
        .await
        .map_err(database)?
        .into_iter()
        .next()
        .ok_or_else(|| error(Code::NotFound, "no such ticket"))
}

/// One page of tickets matching `criteria` in `order`, after the `(key, id)` of the last row
/// seen.
///
/// # Errors
/// The database's.
pub async fn list_tickets(
    pool: &PgPool,
    criteria: &TicketCriteria,
    order: TicketOrder,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::Result<Vec<TicketRow>> {
    let column = order.column();
    let mut sql =
        QueryBuilder::<Postgres>::new(format!("select {TICKET_COLUMNS} from tickets where true"));
    if !criteria.statuses.is_empty() {
        sql.push(" and status = any(")
            .push_bind(criteria.statuses.clone())
            .push(")");
    }
    if let Some(assignee) = criteria.assignee {
        sql.push(" and assignee_id = ").push_bind(assignee);
    }
    match criteria.unassigned {
        Some(true) => sql.push(" and assignee_id is null"),
        Some(false) => sql.push(" and assignee_id is not null"),
        None => &mut sql,
    };
    if let Some(category) = criteria.category {
        sql.push(" and category_id = ").push_bind(category);
    }
    if let Some(priority) = criteria.priority {
        sql.push(" and priority = ").push_bind(priority);
    }
    if let Some(tag) = &criteria.tag {
        // `tags <> '{}'` lets the planner use the tag index, which holds tagged tickets only.
        sql.push(" and tags <> '{}' and tags @> array[")
            .push_bind(tag.clone())
            .push("]::text[]");
    }
    if let Some(customer) = criteria.customer {
        sql.push(" and customer_id = ").push_bind(customer);
    }
    if let Some(search) = &criteria.search {
        sql.push(" and (subject ilike ")
            .push_bind(contains_pattern(search));
        // A message matches when it holds every word of the search (projections::search).
        let terms = projections::search::terms([search.as_str()]);
        if !terms.is_empty() {
            sql.push(
                " or exists (select 1 from messages m where m.ticket_id = tickets.id and \
                 m.search_terms @> ",
            )
            .push_bind(terms)
            .push(")");
        }
        sql.push(")");
    }
    if let Some(categories) = &criteria.categories {
        sql.push(" and category_id = any(")
            .push_bind(categories.clone())
            .push(")");
    }
    let (compare, direction) = if order.descending() {
        ("<", "desc")
    } else {
        (">", "asc")
    };
    if let Some((key, id)) = after {
        sql.push(format!(" and ({column}, id) {compare} ("))
            .push_bind(key)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    sql.push(format!(
        " order by {column} {direction}, id {direction} limit "
    ))
    .push_bind(limit);
    sql.build_query_as().fetch_all(pool).await
}

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum MessageDirection {
    /// From the customer.
    In,
    /// An agent's reply.
    Out,
}

/// A customer message or an agent reply.
#[derive(Debug, Clone, SimpleObject)]
pub struct Message {
    /// Global id.
    pub id: ID,
    /// The message's uuid.
    pub message_id: ID,
    /// Its place in the ticket (the ticket stream version that posted it).
    pub seq: i64,
    /// In (customer) or out (agent).
    pub direction: MessageDirection,
    /// The replying agent, for replies.
    pub author_agent_id: Option<ID>,
    /// text, photo, video, document…
    pub kind: String,
    /// Its text.
    pub text: Option<String>,
    /// A media caption.
    pub caption: Option<String>,
    /// Telegram's file id of its media.
    pub file_id: Option<String>,
    /// Location, venue, contact, sticker emoji, document name; for replies, the media sent.
    pub details: Option<Json<serde_json::Value>>,
    /// Where a forwarded message came from.
    pub forward_origin: Option<Json<serde_json::Value>>,
    /// Telegram's id of the message in the customer's chat.
    pub telegram_message_id: Option<i32>,
    /// The Telegram message it replies to.
    pub reply_to_telegram_message_id: Option<i32>,
    /// The template a reply was written from.
    pub template_id: Option<ID>,
    /// Replies: pending, delivered or failed.
    pub delivery_state: Option<String>,
    /// Why delivery failed.
    pub failure_reason: Option<String>,
    /// When the customer last edited it.
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    seq: i64,
    direction: String,
    author_agent_id: Option<Uuid>,
    kind: String,
    text: Option<String>,
    caption: Option<String>,
    file_id: Option<String>,
    details: Option<serde_json::Value>,
    forward_origin: Option<serde_json::Value>,
    telegram_message_id: Option<i32>,
    reply_to_telegram_message_id: Option<i32>,
    template_id: Option<Uuid>,
    delivery_state: Option<String>,
    failure_reason: Option<String>,
    edited_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        Message {
            id: ids::global("Message", row.id),
            message_id: ID(row.id.to_string()),
            seq: row.seq,
            direction: if row.direction == "out" {
                MessageDirection::Out
            } else {
                MessageDirection::In
            },
            author_agent_id: row.author_agent_id.map(|id| ID(id.to_string())),
            kind: row.kind,
            text: row.text,
            caption: row.caption,
            file_id: row.file_id,
            details: row.details.map(Json),
            forward_origin: row.forward_origin.map(Json),
            telegram_message_id: row.telegram_message_id,
            reply_to_telegram_message_id: row.reply_to_telegram_message_id,
            template_id: row.template_id.map(|id| ID(id.to_string())),
            delivery_state: row.delivery_state,
            failure_reason: row.failure_reason,
            edited_at: row.edited_at,
            created_at: row.created_at,
        }
    }
}

/// One page of a ticket's messages in ticket order, after `seq`.
///
/// # Errors
/// The database's.
async fn list_messages(
    pool: &PgPool,
    ticket: Uuid,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<MessageRow>> {
    sqlx::query_as(
        "select id, seq, direction, author_agent_id, kind, text, caption, file_id, details, \
         forward_origin, telegram_message_id, reply_to_telegram_message_id, template_id, \
         delivery_state, failure_reason, edited_at, created_at \
         from messages where ticket_id = $1 and seq > $2 order by seq limit $3",
    )
    .bind(ticket)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

fn after_seq(request: &PageRequest) -> Result<i64> {
    request
        .after
        .as_ref()
        .map_or(Ok(-1), |(key, _)| cursor_part(key))
}

/// A ticket's messages, a page at a time.
///
/// # Errors
/// `VALIDATION` for a bad page, `INTERNAL` when the database fails.
pub async fn messages(
    ctx: &Context<'_>,
    ticket: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, Message>> {
    let api = ctx.data_unchecked::<Api>();
    let request = page(api, first, after.as_deref())?;
    let rows = list_messages(&api.pool, ticket, after_seq(&request)?, request.limit())
        .await
        .map_err(database)?;
    Ok(connection(
        &request,
        rows,
        |row| cursor(row.seq, row.id),
        Message::from,
    ))
}

/// An internal note on a ticket, seen only by the team.
#[derive(Debug, Clone, SimpleObject)]
pub struct Note {
    /// Global id.
    pub id: ID,
    /// The note's uuid.
    pub note_id: ID,
    /// Its place in the ticket.
    pub seq: i64,
    /// The agent who wrote it.
    pub agent_id: ID,
    /// Its text.
    pub text: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, sqlx::FromRow)]
struct NoteRow {
    id: Uuid,
    seq: i64,
    agent_id: Uuid,
    text: String,
    created_at: DateTime<Utc>,
}

async fn list_notes(
    pool: &PgPool,
    ticket: Uuid,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<NoteRow>> {
    sqlx::query_as(
        "select id, seq, agent_id, text, created_at from ticket_notes \
         where ticket_id = $1 and seq > $2 order by seq limit $3",
    )
    .bind(ticket)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// A ticket's notes, a page at a time.
///
/// # Errors
/// `VALIDATION` for a bad page, `INTERNAL` when the database fails.
pub async fn notes(
    ctx: &Context<'_>,
    ticket: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, Note>> {
    let api = ctx.data_unchecked::<Api>();
    let request = page(api, first, after.as_deref())?;
    let rows = list_notes(&api.pool, ticket, after_seq(&request)?, request.limit())
        .await
        .map_err(database)?;
    Ok(connection(
        &request,
        rows,
        |row| cursor(row.seq, row.id),
        |row| Note {
            id: ids::global("Note", row.id),
            note_id: ID(row.id.to_string()),
            seq: row.seq,
            agent_id: ID(row.agent_id.to_string()),
            text: row.text,
            created_at: row.created_at,
        },
    ))
}

/// A ticket's events from the log, oldest first, a page at a time.
///
/// # Errors
/// `VALIDATION` for a bad page, `INTERNAL` when the log fails.
pub async fn history(
    ctx: &Context<'_>,
    ticket: Uuid,
    first: Option<i32>,
    after: Option<String>,
) -> Result<Connection<String, LogEvent>> {
    let api = ctx.data_unchecked::<Api>();
    let request = page(api, first, after.as_deref())?;
    let from = match &request.after {
        Some((key, _)) => cursor_part::<u64>(key)?.saturating_add(1),
        None => 0,
    };
    let stream = domain::TicketId(ticket).stream().name();
    let limit = request.size + 1;
    let events = match api
        .log
        .read_stream(&stream, from, Direction::Forwards, limit)
        .await
    {
        Ok(events) => events,
        Err(eventlog::Error::StreamNotFound { .. }) => Vec::new(),
        Err(other) => return Err(internal("cannot read the ticket's history", other)),
    };
    Ok(connection(
        &request,
        events,
        |event| cursor(event.stream_version, event.event_id),
        |event| LogEvent::from(&event),
    ))
}
