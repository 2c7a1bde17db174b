//! Reads of the "tickets" read model (`tickets`, `ticket_notes`) and the "messages" read model
//! (`messages`).

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use super::contains_pattern;

/// One row of `tickets`.
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
const TICKET_COLUMNS: &str = "id, customer_id, status, priority, category_id, assignee_id, \
    tags, subject, customer_messages, agent_messages, notes, unread_by_agents, created_at, \
    first_response_at, resolved_at, closed_at, last_message_at, last_message_direction, \
    last_message_preview, last_activity_at, rating, version";

/// The tickets with these ids that exist (any order).
///
/// # Errors
/// The database's.
pub async fn by_ids(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<Vec<TicketRow>> {
    sqlx::query_as(&format!(
        "select {TICKET_COLUMNS} from tickets where id = any($1)"
    ))
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// The category of a ticket: `None` when there is no such ticket, `Some(None)` when it has no
/// category.
///
/// # Errors
/// The database's.
pub async fn category_of(pool: &PgPool, ticket: Uuid) -> sqlx::Result<Option<Option<Uuid>>> {
    sqlx::query_scalar("select category_id from tickets where id = $1")
        .bind(ticket)
        .fetch_optional(pool)
        .await
}

/// The order of a ticket list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListOrder {
    /// Most recent activity first.
    #[default]
    LastActivityDesc,
    /// Newest first.
    CreatedAtDesc,
    /// Oldest first.
    CreatedAtAsc,
}

impl ListOrder {
    fn column(self) -> &'static str {
        match self {
            ListOrder::LastActivityDesc => "last_activity_at",
            ListOrder::CreatedAtDesc | ListOrder::CreatedAtAsc => "created_at",
        }
    }

    fn descending(self) -> bool {
        !matches!(self, ListOrder::CreatedAtAsc)
    }

    /// The sort key of `row` in this order (with its id, the keyset cursor).
    pub fn key(self, row: &TicketRow) -> DateTime<Utc> {
        match self {
            ListOrder::LastActivityDesc => row.last_activity_at,
            ListOrder::CreatedAtDesc | ListOrder::CreatedAtAsc => row.created_at,
        }
    }
}

/// Which tickets a list holds, in the read model's terms; every field narrows it.
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

/// One page of tickets matching `criteria` in `order`, after the `(key, id)` of the last row
/// seen.
///
/// # Errors
/// The database's.
pub async fn list(
    pool: &PgPool,
    criteria: &TicketCriteria,
    order: ListOrder,
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

/// One row of `messages`: a customer message or an agent reply.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MessageRow {
    pub id: Uuid,
    pub seq: i64,
    pub direction: String,
    pub author_agent_id: Option<Uuid>,
    pub kind: String,
    pub text: Option<String>,
    pub caption: Option<String>,
    pub file_id: Option<String>,
    pub details: Option<serde_json::Value>,
    pub forward_origin: Option<serde_json::Value>,
    pub telegram_message_id: Option<i32>,
    pub reply_to_telegram_message_id: Option<i32>,
    pub template_id: Option<Uuid>,
    pub delivery_state: Option<String>,
    pub failure_reason: Option<String>,
    pub edited_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// One page of a ticket's messages in ticket order, after `seq`.
///
/// # Errors
/// The database's.
pub async fn messages(
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

/// A message posted on a ticket, with the ticket's category (for scope checks).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PostedMessageRow {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub direction: String,
    pub kind: String,
    pub text: Option<String>,
    pub caption: Option<String>,
    pub author_agent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub seq: i64,
    pub category_id: Option<Uuid>,
}

/// The message a ticket event at stream version `seq` posted, with the ticket's category.
///
/// # Errors
/// The database's.
pub async fn posted_message(
    pool: &PgPool,
    ticket: Uuid,
    seq: i64,
) -> sqlx::Result<Option<PostedMessageRow>> {
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

/// One row of `ticket_notes`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct NoteRow {
    pub id: Uuid,
    pub seq: i64,
    pub agent_id: Uuid,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

/// One page of a ticket's notes in ticket order, after `seq`.
///
/// # Errors
/// The database's.
pub async fn notes(
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
