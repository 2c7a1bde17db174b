//! The reads of the "tickets" and "messages" read models: the ticket list with its filters and
//! keyset pages (both ways, [`crate::page`]), tickets by id, a ticket's category, and a ticket's messages and notes.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use domain::ticket::{Priority, TicketStatus};
use sqlx::{PgExecutor, Postgres, QueryBuilder};
use uuid::Uuid;

use super::{MessageRow, NoteRow, TicketRow};
use crate::page::{Page, push_keyset};
use crate::table::{StoredText, Table, contains_pattern, select_list};

/// Which tickets [`list`] returns; every field set narrows the list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketFilter {
    /// In any of these statuses (none: any status).
    pub statuses: Vec<TicketStatus>,
    /// Assigned to this agent.
    pub assignee: Option<Uuid>,
    /// `true`: only unassigned tickets; `false`: only assigned ones.
    pub unassigned: Option<bool>,
    /// In this category.
    pub category: Option<Uuid>,
    /// Of this priority.
    pub priority: Option<Priority>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// Of this customer (Telegram user id).
    pub customer: Option<i64>,
    /// Words of a message (text or caption: a message holding every word, see
    /// [`crate::search`]), or text anywhere in the subject (case-insensitive).
    pub search: Option<String>,
    /// Only in one of these categories: what an agent limited to categories may see.
    pub categories: Option<Vec<Uuid>>,
}

/// The order of [`list`]; ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TicketOrder {
    /// Most recent activity first.
    #[default]
    LastActivityDesc,
    /// Newest first.
    CreatedAtDesc,
    /// Oldest first.
    CreatedAtAsc,
}

impl TicketOrder {
    const fn column(self) -> &'static str {
        match self {
            TicketOrder::LastActivityDesc => "last_activity_at",
            TicketOrder::CreatedAtDesc | TicketOrder::CreatedAtAsc => "created_at",
        }
    }

    const fn descending(self) -> bool {
        !matches!(self, TicketOrder::CreatedAtAsc)
    }

    /// The sort key of `row` in this order: with the row's id, what a page's `after` takes.
    #[must_use]
    pub const fn key(self, row: &TicketRow) -> DateTime<Utc> {
        match self {
            TicketOrder::LastActivityDesc => row.last_activity_at,
            TicketOrder::CreatedAtDesc | TicketOrder::CreatedAtAsc => row.created_at,
        }
    }
}

/// The tickets with these ids that exist (in no particular order).
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn by_ids(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<TicketRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from tickets where id = any($1)",
            select_list::<TicketRow>(None)
        )
    });
    sqlx::query_as(&SQL).bind(ids).fetch_all(db).await
}

/// One ticket, if it exists.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn by_id(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<TicketRow>> {
    Ok(by_ids(db, &[id]).await?.pop())
}

/// One page of the tickets matching `filter`, in `order`, bounded by sort keys and ids (see
/// [`TicketOrder::key`]), in list order.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn list(
    db: impl PgExecutor<'_>,
    filter: &TicketFilter,
    order: TicketOrder,
    page: &Page<(DateTime<Utc>, Uuid)>,
) -> sqlx::Result<Vec<TicketRow>> {
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "select {} from tickets where true",
        select_list::<TicketRow>(None)
    ));
    if !filter.statuses.is_empty() {
        let statuses: Vec<&'static str> = filter
            .statuses
            .iter()
            .map(|status| status.as_str())
            .collect();
        sql.push(" and status = any(").push_bind(statuses).push(")");
    }
    if let Some(assignee) = filter.assignee {
        sql.push(" and assignee_id = ").push_bind(assignee);
    }
    match filter.unassigned {
        Some(true) => sql.push(" and assignee_id is null"),
        Some(false) => sql.push(" and assignee_id is not null"),
        None => &mut sql,
    };
    if let Some(category) = filter.category {
        sql.push(" and category_id = ").push_bind(category);
    }
    if let Some(priority) = filter.priority {
        sql.push(" and priority = ").push_bind(priority.as_str());
    }
    if let Some(tag) = &filter.tag {
        // `tags <> '{}'` lets the planner use the tag index, which holds tagged tickets only.
        sql.push(" and tags <> '{}' and tags @> array[")
            .push_bind(tag.clone())
            .push("]::text[]");
    }
    if let Some(customer) = filter.customer {
        sql.push(" and customer_id = ").push_bind(customer);
    }
    if let Some(search) = &filter.search {
        sql.push(" and (subject ilike ")
            .push_bind(contains_pattern(search));
        // A message matches when it holds every word of the search (crate::search).
        let terms = crate::search::terms([search.as_str()]);
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
    if let Some(categories) = &filter.categories {
        sql.push(" and category_id = any(")
            .push_bind(categories.clone())
            .push(")");
    }
    push_keyset(&mut sql, (order.column(), "id"), order.descending(), page);
    let rows = sql.build_query_as().fetch_all(db).await?;
    Ok(page.in_list_order(rows))
}

/// Where a ticket is filed: `None` when there is no such ticket, `Some(None)` for a ticket
/// without a category.
///
/// # Errors
/// The database's.
pub async fn category(db: impl PgExecutor<'_>, ticket: Uuid) -> sqlx::Result<Option<Option<Uuid>>> {
    sqlx::query_scalar("select category_id from tickets where id = $1")
        .bind(ticket)
        .fetch_optional(db)
        .await
}

/// One page of a ticket's messages in ticket order, bounded by `seq`.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn messages(
    db: impl PgExecutor<'_>,
    ticket: Uuid,
    page: &Page<i64>,
) -> sqlx::Result<Vec<MessageRow>> {
    static FORWARDS: LazyLock<String> = LazyLock::new(|| by_seq::<MessageRow>("messages", "asc"));
    static BACKWARDS: LazyLock<String> = LazyLock::new(|| by_seq::<MessageRow>("messages", "desc"));
    let sql = if page.scan_descending(false) {
        &BACKWARDS
    } else {
        &FORWARDS
    };
    let (after, before) = page.bounds();
    let rows = sqlx::query_as(sql)
        .bind(ticket)
        .bind(after)
        .bind(before)
        .bind(page.limit)
        .fetch_all(db)
        .await?;
    Ok(page.in_list_order(rows))
}

/// The statement reading a page of a ticket's `table` (messages or notes) between two `seq`s,
/// scanning its `(ticket_id, seq)` index in `direction`.
fn by_seq<T: Table>(table: &str, direction: &str) -> String {
    format!(
        "select {} from {table} where ticket_id = $1 and seq > $2 and seq < $3 \
         order by seq {direction} limit $4",
        select_list::<T>(None)
    )
}

/// A message with where its ticket is filed.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct PostedMessage {
    /// The message.
    #[sqlx(flatten)]
    pub message: MessageRow,
    /// Its ticket's category (`None` too when the ticket has no row yet).
    pub ticket_category_id: Option<Uuid>,
}

/// The message the ticket event at stream version `seq` posted, if it posted one.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn message_at(
    db: impl PgExecutor<'_>,
    ticket: Uuid,
    seq: i64,
) -> sqlx::Result<Option<PostedMessage>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {}, t.category_id as ticket_category_id \
             from messages m left join tickets t on t.id = m.ticket_id \
             where m.ticket_id = $1 and m.seq = $2",
            select_list::<MessageRow>(Some("m"))
        )
    });
    sqlx::query_as(&SQL)
        .bind(ticket)
        .bind(seq)
        .fetch_optional(db)
        .await
}

/// One page of a ticket's notes in ticket order, bounded by `seq`.
///
/// # Errors
/// The database's.
pub async fn notes(
    db: impl PgExecutor<'_>,
    ticket: Uuid,
    page: &Page<i64>,
) -> sqlx::Result<Vec<NoteRow>> {
    static FORWARDS: LazyLock<String> = LazyLock::new(|| by_seq::<NoteRow>("ticket_notes", "asc"));
    static BACKWARDS: LazyLock<String> =
        LazyLock::new(|| by_seq::<NoteRow>("ticket_notes", "desc"));
    let sql = if page.scan_descending(false) {
        &BACKWARDS
    } else {
        &FORWARDS
    };
    let (after, before) = page.bounds();
    let rows = sqlx::query_as(sql)
        .bind(ticket)
        .bind(after)
        .bind(before)
        .bind(page.limit)
        .fetch_all(db)
        .await?;
    Ok(page.in_list_order(rows))
}

/// One message by its id, wherever it was posted.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn message(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<MessageRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from messages where id = $1",
            select_list::<MessageRow>(None)
        )
    });
    sqlx::query_as(&SQL).bind(id).fetch_optional(db).await
}

/// One note by its id, wherever it was left.
///
/// # Errors
/// The database's.
pub async fn note(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<NoteRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from ticket_notes where id = $1",
            select_list::<NoteRow>(None)
        )
    });
    sqlx::query_as(&SQL).bind(id).fetch_optional(db).await
}

/// The message of the customer's chat that ticket `ticket`'s messages call Telegram message
/// `telegram_message_id`: a customer message by its own id, an agent reply by the id Telegram
/// gave it on delivery. Telegram numbers messages per chat, and a customer has one chat with
/// the bot, so the search spans all of that customer's tickets.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn message_by_telegram_id(
    db: impl PgExecutor<'_>,
    ticket: Uuid,
    telegram_message_id: i32,
) -> sqlx::Result<Option<MessageRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from messages m join tickets t on t.id = m.ticket_id \
             where t.customer_id = (select customer_id from tickets where id = $1) \
             and (m.telegram_message_id = $2 or m.delivered_telegram_message_id = $2) \
             order by m.created_at desc limit 1",
            select_list::<MessageRow>(Some("m"))
        )
    });
    sqlx::query_as(&SQL)
        .bind(ticket)
        .bind(telegram_message_id)
        .fetch_optional(db)
        .await
}

/// The messages of album `media_group_id` on ticket `ticket`, first to last: each one's id
/// and its `media` (see `messages.media`). Telegram sends the files of an album as messages of
/// their own sharing the group id.
///
/// # Errors
/// The database's.
pub async fn album(
    db: impl PgExecutor<'_>,
    ticket: Uuid,
    media_group_id: &str,
) -> sqlx::Result<Vec<(Uuid, Option<serde_json::Value>)>> {
    sqlx::query_as(
        "select id, media from messages where ticket_id = $1 and media_group_id = $2 \
         order by seq limit 100",
    )
    .bind(ticket)
    .bind(media_group_id)
    .fetch_all(db)
    .await
}
