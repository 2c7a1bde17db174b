//! Read models "tickets" and "messages": the ticket list and each ticket's conversation.
//!
//! [`Tickets`] owns `tickets` (one row per ticket: status, assignee, counters, subject, last
//! message) and `ticket_notes` (internal notes); [`Messages`] owns `messages` (customer messages
//! and agent replies with their delivery state, ordered by the ticket stream version that posted
//! them). Both are fed by `ticket.*` events only. They are two projections so that they apply
//! the same pages side by side (the messages table is the largest write of a rebuild).
//!
//! A batch is applied with a handful of statements whatever its size: the rows it touches are
//! loaded once, the events folded into them in memory, and each table written with one
//! `unnest` upsert. A row records the stream version it reflects; events at or below it are
//! skipped, so applying a batch twice changes nothing. It must not log message text.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use domain::content::{ForwardOrigin, MessageBody, MessageContent, ReplyContent};
use domain::ticket::{TicketEvent, TicketStatus};
use domain::{AnyEvent, StreamId};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Kept, KeptRows, Target, read_model};
use crate::sql::{self, Column, col};

/// The "tickets" read model (tables `tickets`, `ticket_notes`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Tickets;

/// The "messages" read model (table `messages`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Messages;

const TABLES: &[&str] = &["tickets", "ticket_notes"];
const MESSAGE_TABLES: &[&str] = &["messages"];

/// Longest subject kept (characters).
pub const SUBJECT_CHARS: usize = 120;
/// Longest last-message preview kept (characters).
pub const PREVIEW_CHARS: usize = 100;

read_model!(
    Tickets,
    name: "tickets",
    version: 1,
    tables: TABLES,
    keeping: apply_keeping,
);

read_model!(
    Messages,
    name: "messages",
    // 2: search terms (`search_terms`) instead of a `to_tsvector` index.
    version: 2,
    tables: MESSAGE_TABLES,
    keeping: apply_messages_keeping,
);

const TICKET_COLUMNS: &[Column] = &[
    ("id", "uuid"),
    ("customer_id", "bigint"),
    ("channel", "text"),
    ("status", "text"),
    ("priority", "text"),
    ("category_id", "uuid"),
    ("assignee_id", "uuid"),
    ("tags", "text[]"),
    ("subject", "text"),
    ("first_message_id", "uuid"),
    ("customer_messages", "integer"),
    ("agent_messages", "integer"),
    ("notes", "integer"),
    ("unread_by_agents", "integer"),
    ("created_at", "timestamptz"),
    ("first_response_at", "timestamptz"),
    ("resolved_at", "timestamptz"),
    ("closed_at", "timestamptz"),
    ("last_message_id", "uuid"),
    ("last_message_at", "timestamptz"),
    ("last_message_direction", "text"),
    ("last_message_preview", "text"),
    ("last_activity_at", "timestamptz"),
    ("rating", "smallint"),
    ("rating_comment", "text"),
    ("version", "bigint"),
];

#[derive(Debug, Clone, sqlx::FromRow)]
struct TicketRow {
    id: Uuid,
    customer_id: i64,
    channel: String,
    status: String,
    priority: String,
    category_id: Option<Uuid>,
    assignee_id: Option<Uuid>,
    tags: Vec<String>,
    subject: String,
    first_message_id: Option<Uuid>,
    customer_messages: i32,
    agent_messages: i32,
    notes: i32,
    unread_by_agents: i32,
    created_at: DateTime<Utc>,
    first_response_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    last_message_id: Option<Uuid>,
    last_message_at: Option<DateTime<Utc>>,
    last_message_direction: Option<String>,
    last_message_preview: Option<String>,
    last_activity_at: DateTime<Utc>,
    rating: Option<i16>,
    rating_comment: Option<String>,
    version: i64,
}

/// The columns a message row is written with: those read back ([`MESSAGE_COLUMNS`]) and, last,
/// the search terms, computed from `text` and `caption` (crate::search).
const MESSAGE_WRITTEN: &[Column] = &[
    ("id", "uuid"),
    ("ticket_id", "uuid"),
    ("seq", "bigint"),
    ("direction", "text"),
    ("author_agent_id", "uuid"),
    ("kind", "text"),
    ("text", "text"),
    ("caption", "text"),
    ("file_id", "text"),
    ("file_unique_id", "text"),
    ("details", "jsonb"),
    ("forward_origin", "jsonb"),
    ("telegram_message_id", "integer"),
    ("reply_to_telegram_message_id", "integer"),
    ("template_id", "uuid"),
    ("delivery_state", "text"),
    ("delivered_telegram_message_id", "integer"),
    ("failure_reason", "text"),
    ("failure_retryable", "boolean"),
    ("delivery_updated_at", "timestamptz"),
    ("edited_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("version", "bigint"),
    ("search_terms", "text[]"),
];

/// The columns a re-read message row fetches: all but the search terms, which are never read
/// back.
const MESSAGE_COLUMNS: &[Column] = MESSAGE_WRITTEN.split_last().expect("columns").1;

#[derive(Debug, Clone, sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    ticket_id: Uuid,
    seq: i64,
    direction: String,
    author_agent_id: Option<Uuid>,
    kind: String,
    text: Option<String>,
    caption: Option<String>,
    file_id: Option<String>,
    file_unique_id: Option<String>,
    details: Option<Value>,
    forward_origin: Option<Value>,
    telegram_message_id: Option<i32>,
    reply_to_telegram_message_id: Option<i32>,
    template_id: Option<Uuid>,
    delivery_state: Option<String>,
    delivered_telegram_message_id: Option<i32>,
    failure_reason: Option<String>,
    failure_retryable: Option<bool>,
    delivery_updated_at: Option<DateTime<Utc>>,
    edited_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    version: i64,
}

const NOTE_COLUMNS: &[Column] = &[
    ("id", "uuid"),
    ("ticket_id", "uuid"),
    ("seq", "bigint"),
    ("agent_id", "uuid"),
    ("text", "text"),
    ("created_at", "timestamptz"),
];

#[derive(Debug)]
struct NoteRow {
    id: Uuid,
    ticket_id: Uuid,
    seq: i64,
    agent_id: Uuid,
    text: String,
    created_at: DateTime<Utc>,
}

/// The rows a batch reads and writes, keyed by id.
#[derive(Debug, Default)]
struct Fold {
    tickets: HashMap<Uuid, TicketRow>,
    dirty_tickets: HashSet<Uuid>,
    messages: HashMap<Uuid, MessageRow>,
    dirty_messages: Vec<Uuid>,
    notes: Vec<NoteRow>,
}

/// Applies `batch`, taking the rows of tickets it touches from `kept` where they are (see
/// [`KeptRows`]) and from the table otherwise, and keeping every row it holds: a ticket that
/// goes on changing is not read back for each batch.
async fn apply_keeping(
    conn: &mut PgConnection,
    target: Target,
    batch: &[Envelope],
    kept: &mut Kept,
) -> Result<(), ApplyError> {
    let ticket_ids: HashSet<Uuid> = batch
        .iter()
        .filter_map(|envelope| match (&envelope.stream, &envelope.event) {
            (StreamId::Ticket(id), AnyEvent::Ticket(_)) => Some(id.as_uuid()),
            _ => None,
        })
        .collect();
    if ticket_ids.is_empty() {
        return Ok(());
    }

    let mut fold = Fold::default();
    let mut kept = KeptRows::<TicketRow>::of(kept, target);
    KeptRows::load(
        kept.as_deref_mut(),
        conn,
        ticket_ids,
        (&target.table("tickets"), TICKET_COLUMNS, "id"),
        |row| row.id,
        &mut fold.tickets,
    )
    .await?;
    for envelope in batch {
        if let (StreamId::Ticket(id), AnyEvent::Ticket(event)) = (&envelope.stream, &envelope.event)
        {
            fold.event(id.as_uuid(), sql::version(envelope)?, event);
        }
    }
    write_tickets(conn, target, &fold).await?;
    write_notes(conn, target, &fold).await?;
    KeptRows::keep(kept, fold.tickets);
    Ok(())
}

/// Applies `batch` to `messages`. What is kept (see [`KeptRows`]) is, per ticket, the highest
/// stream version this projection has applied: a message posted at a later version cannot be
/// in the table yet, so it is inserted without the conflict check an upsert pays for. Others
/// (a ticket not seen since the start, a batch applied again) are upserted as before.
async fn apply_messages_keeping(
    conn: &mut PgConnection,
    target: Target,
    batch: &[Envelope],
    kept: &mut Kept,
) -> Result<(), ApplyError> {
    let kept = KeptRows::<i64>::of(kept, target);
    let mut applied: HashMap<Uuid, i64> = HashMap::new();
    for envelope in batch {
        if let StreamId::Ticket(id) = &envelope.stream {
            let version = sql::version(envelope)?;
            let highest = applied.entry(id.as_uuid()).or_insert(version);
            *highest = (*highest).max(version);
        }
    }
    let mut posted = HashSet::new();
    let mut referenced = HashSet::new();
    for envelope in batch {
        let AnyEvent::Ticket(event) = &envelope.event else {
            continue;
        };
        match event {
            TicketEvent::CustomerMessagePosted(e) => {
                posted.insert(e.message_id.as_uuid());
            }
            TicketEvent::AgentReplied(e) => {
                posted.insert(e.message_id.as_uuid());
            }
            TicketEvent::CustomerMessageEdited(e) => {
                referenced.insert(e.message_id.as_uuid());
            }
            TicketEvent::ReplyDelivered(e) => {
                referenced.insert(e.message_id.as_uuid());
            }
            TicketEvent::ReplyDeliveryFailed(e) => {
                referenced.insert(e.message_id.as_uuid());
            }
            _ => {}
        }
    }
    if posted.is_empty() && referenced.is_empty() {
        return Ok(());
    }
    let mut fold = Fold::default();
    // Messages edited or delivered in this batch but posted in an earlier one.
    let older: Vec<Uuid> = referenced.difference(&posted).copied().collect();
    if !older.is_empty() {
        let sql = sql::select_sql(&target.table("messages"), MESSAGE_COLUMNS, "id");
        for row in sqlx::query_as::<_, MessageRow>(&sql)
            .bind(&older)
            .fetch_all(&mut *conn)
            .await?
        {
            fold.messages.insert(row.id, row);
        }
    }
    for envelope in batch {
        if let (StreamId::Ticket(id), AnyEvent::Ticket(event)) = (&envelope.stream, &envelope.event)
        {
            fold.message_event(id.as_uuid(), sql::version(envelope)?, event);
        }
    }
    let fresh: HashSet<Uuid> = fold
        .messages
        .values()
        .filter(|message| {
            posted.contains(&message.id)
                && kept
                    .as_deref()
                    .and_then(|kept| kept.get(&message.ticket_id))
                    .is_some_and(|applied| message.seq > *applied)
        })
        .map(|message| message.id)
        .collect();
    write_messages(conn, target, &fold, &fresh).await?;
    KeptRows::keep(kept, applied);
    Ok(())
}

/// When a ticket event happened.
pub(crate) const fn event_at(event: &TicketEvent) -> DateTime<Utc> {
    use TicketEvent as E;
    match event {
        E::Opened(e) => e.at,
        E::CustomerMessagePosted(e) => e.at,
        E::CustomerMessageEdited(e) => e.at,
        E::AgentReplied(e) => e.at,
        E::NoteAdded(e) => e.at,
        E::Assigned(e) => e.at,
        E::Unassigned(e) => e.at,
        E::StatusChanged(e) => e.at,
        E::Resolved(e) | E::Reopened(e) | E::Closed(e) => e.at,
        E::PriorityChanged(e) => e.at,
        E::CategoryChanged(e) => e.at,
        E::TagAdded(e) | E::TagRemoved(e) => e.at,
        E::ReplyDelivered(e) => e.at,
        E::ReplyDeliveryFailed(e) => e.at,
        E::Rated(e) => e.at,
    }
}

impl Fold {
    fn event(&mut self, ticket_id: Uuid, version: i64, event: &TicketEvent) {
        use TicketEvent as E;
        let at = event_at(event);
        let Some(ticket) = self.tickets.get_mut(&ticket_id) else {
            // Only an opening starts a ticket; anything else before it cannot happen in a
            // well-formed stream and is ignored, as the domain's evolve does.
            if let E::Opened(opened) = event {
                self.tickets
                    .insert(ticket_id, opened_row(ticket_id, version, opened));
                self.dirty_tickets.insert(ticket_id);
            }
            return;
        };
        if version <= ticket.version {
            return;
        }
        ticket.version = version;
        ticket.last_activity_at = ticket.last_activity_at.max(at);
        self.dirty_tickets.insert(ticket_id);
        let closed = ticket.status == "closed";
        match event {
            E::Opened(_) => {}
            E::CustomerMessagePosted(posted) => {
                let message = MessageRef {
                    id: posted.message_id.as_uuid(),
                };
                ticket.customer_messages += 1;
                ticket.unread_by_agents += 1;
                if ticket.first_message_id.is_none() {
                    ticket.first_message_id = Some(message.id);
                    ticket.subject = subject(&posted.content);
                }
                ticket.last_message_id = Some(message.id);
                ticket.last_message_at = Some(posted.at);
                ticket.last_message_direction = Some("in".to_owned());
                ticket.last_message_preview = Some(customer_preview(&posted.content));
            }
            E::CustomerMessageEdited(edited) => {
                let id = edited.message_id.as_uuid();
                if ticket.first_message_id == Some(id) {
                    ticket.subject = subject(&edited.content);
                }
                if ticket.last_message_id == Some(id) {
                    ticket.last_message_preview = Some(customer_preview(&edited.content));
                }
            }
            E::AgentReplied(reply) => {
                let id = reply.message_id.as_uuid();
                ticket.agent_messages += 1;
                ticket.unread_by_agents = 0;
                ticket.first_response_at.get_or_insert(reply.at);
                ticket.last_message_id = Some(id);
                ticket.last_message_at = Some(reply.at);
                ticket.last_message_direction = Some("out".to_owned());
                ticket.last_message_preview = Some(reply_preview(&reply.content));
            }
            E::NoteAdded(note) => {
                ticket.notes += 1;
                self.notes.push(NoteRow {
                    id: note.note_id.as_uuid(),
                    ticket_id,
                    seq: version,
                    agent_id: note.agent.as_uuid(),
                    text: note.content.text.clone(),
                    created_at: note.at,
                });
            }
            E::Assigned(assigned) => ticket.assignee_id = Some(assigned.agent.as_uuid()),
            E::Unassigned(_) => ticket.assignee_id = None,
            E::StatusChanged(change) => {
                // As the domain's evolve: only the working statuses travel here.
                if matches!(
                    change.to,
                    TicketStatus::New | TicketStatus::Open | TicketStatus::Pending
                ) && !closed
                {
                    ticket.status = sql::ticket_status(change.to).to_owned();
                }
            }
            E::Resolved(step) => {
                if !closed {
                    ticket.status = "resolved".to_owned();
                    ticket.resolved_at = Some(step.at);
                    ticket.rating = None;
                    ticket.rating_comment = None;
                }
            }
            E::Reopened(_) => {
                if !closed {
                    ticket.status = "open".to_owned();
                    ticket.resolved_at = None;
                    ticket.rating = None;
                    ticket.rating_comment = None;
                }
            }
            E::Closed(step) => {
                ticket.status = "closed".to_owned();
                ticket.closed_at = Some(step.at);
            }
            E::PriorityChanged(change) => {
                ticket.priority = sql::priority(change.priority).to_owned();
            }
            E::CategoryChanged(change) => {
                ticket.category_id = change.category.map(|c| c.as_uuid());
            }
            E::TagAdded(change) => {
                if let Err(index) = ticket.tags.binary_search(&change.tag) {
                    ticket.tags.insert(index, change.tag.clone());
                }
            }
            E::TagRemoved(change) => ticket.tags.retain(|tag| *tag != change.tag),
            // Delivery outcomes change the message rows only.
            E::ReplyDelivered(_) | E::ReplyDeliveryFailed(_) => {}
            E::Rated(rated) => {
                if ticket.resolved_at.is_some() {
                    ticket.rating = Some(i16::from(rated.rating));
                    ticket.rating_comment.clone_from(&rated.content.comment);
                }
            }
        }
    }

    /// Folds one ticket event into the message rows. A message row records the stream version
    /// of the last event applied to it; older events change nothing.
    fn message_event(&mut self, ticket_id: Uuid, version: i64, event: &TicketEvent) {
        use TicketEvent as E;
        fn update<'m>(
            messages: &'m mut HashMap<Uuid, MessageRow>,
            id: &Uuid,
            version: i64,
        ) -> Option<&'m mut MessageRow> {
            messages
                .get_mut(id)
                .filter(|message| message.version < version)
        }
        match event {
            E::CustomerMessagePosted(posted) => {
                self.put_message(customer_message(ticket_id, version, posted));
            }
            E::AgentReplied(reply) => self.put_message(agent_reply(ticket_id, version, reply)),
            E::CustomerMessageEdited(edited) => {
                let id = edited.message_id.as_uuid();
                if let Some(message) = update(&mut self.messages, &id, version) {
                    set_content(message, &edited.content);
                    message.kind = sql::message_kind(edited.kind).to_owned();
                    message.edited_at = Some(edited.at);
                    message.version = version;
                    self.dirty_messages.push(id);
                }
            }
            E::ReplyDelivered(delivered) => {
                let id = delivered.message_id.as_uuid();
                if let Some(message) = update(&mut self.messages, &id, version) {
                    message.delivery_state = Some("delivered".to_owned());
                    message.delivered_telegram_message_id = Some(delivered.telegram_message_id.0);
                    message.failure_reason = None;
                    message.failure_retryable = None;
                    message.delivery_updated_at = Some(delivered.at);
                    message.version = version;
                    self.dirty_messages.push(id);
                }
            }
            E::ReplyDeliveryFailed(failed) => {
                let id = failed.message_id.as_uuid();
                if let Some(message) = update(&mut self.messages, &id, version) {
                    message.delivery_state = Some("failed".to_owned());
                    message.failure_reason = Some(failed.reason.clone());
                    message.failure_retryable = Some(failed.retryable);
                    message.delivery_updated_at = Some(failed.at);
                    message.version = version;
                    self.dirty_messages.push(id);
                }
            }
            _ => {}
        }
    }

    fn put_message(&mut self, message: MessageRow) {
        self.dirty_messages.push(message.id);
        self.messages.insert(message.id, message);
    }
}

/// The id of a message a ticket row points at.
struct MessageRef {
    id: Uuid,
}

fn opened_row(id: Uuid, version: i64, opened: &domain::ticket::TicketOpened) -> TicketRow {
    TicketRow {
        id,
        customer_id: opened.customer.0,
        channel: match opened.channel {
            domain::ticket::Channel::Telegram => "telegram".to_owned(),
        },
        status: "new".to_owned(),
        priority: sql::priority(domain::ticket::Priority::default()).to_owned(),
        category_id: opened.category.map(|c| c.as_uuid()),
        assignee_id: None,
        tags: Vec::new(),
        subject: String::new(),
        first_message_id: None,
        customer_messages: 0,
        agent_messages: 0,
        notes: 0,
        unread_by_agents: 0,
        created_at: opened.at,
        first_response_at: None,
        resolved_at: None,
        closed_at: None,
        last_message_id: None,
        last_message_at: None,
        last_message_direction: None,
        last_message_preview: None,
        last_activity_at: opened.at,
        rating: None,
        rating_comment: None,
        version,
    }
}

/// The ticket's subject: the first line of the text or caption, or what kind of message it is.
fn subject(content: &MessageContent) -> String {
    body_text(content)
        .and_then(|text| sql::first_line(text, SUBJECT_CHARS))
        .unwrap_or_else(|| sql::message_kind_label(content.kind()).to_owned())
}

fn customer_preview(content: &MessageContent) -> String {
    body_text(content)
        .and_then(|text| sql::one_line(text, PREVIEW_CHARS))
        .unwrap_or_else(|| sql::message_kind_label(content.kind()).to_owned())
}

fn reply_preview(content: &ReplyContent) -> String {
    content
        .text
        .as_deref()
        .and_then(|text| sql::one_line(text, PREVIEW_CHARS))
        .or_else(|| {
            content
                .media
                .first()
                .map(|media| sql::media_kind_label(media.kind).to_owned())
        })
        .unwrap_or_default()
}

/// The words of a customer message: its text, else its caption (or a venue's title).
fn body_text(content: &MessageContent) -> Option<&str> {
    match &content.body {
        MessageBody::Text { text } => Some(text.as_str()),
        MessageBody::Venue { title, .. } if content.caption.is_none() => Some(title.as_str()),
        _ => content.caption.as_deref(),
    }
}

fn customer_message(
    ticket_id: Uuid,
    version: i64,
    posted: &domain::ticket::CustomerMessagePosted,
) -> MessageRow {
    let mut row = MessageRow {
        id: posted.message_id.as_uuid(),
        ticket_id,
        seq: version,
        direction: "in".to_owned(),
        author_agent_id: None,
        kind: sql::message_kind(posted.kind).to_owned(),
        text: None,
        caption: None,
        file_id: None,
        file_unique_id: None,
        details: None,
        forward_origin: None,
        telegram_message_id: Some(posted.telegram_message_id.0),
        reply_to_telegram_message_id: posted.reply_to.map(|id| id.0),
        template_id: None,
        delivery_state: None,
        delivered_telegram_message_id: None,
        failure_reason: None,
        failure_retryable: None,
        delivery_updated_at: None,
        edited_at: None,
        created_at: posted.at,
        version,
    };
    set_content(&mut row, &posted.content);
    row
}

/// Writes a customer message's content into its row (on post and on edit).
fn set_content(row: &mut MessageRow, content: &MessageContent) {
    let mut text = None;
    let mut file = None;
    let details = match &content.body {
        MessageBody::Text { text: t } => {
            text = Some(t.clone());
            None
        }
        MessageBody::Photo { file: f }
        | MessageBody::Video { file: f }
        | MessageBody::Audio { file: f }
        | MessageBody::Voice { file: f }
        | MessageBody::VideoNote { file: f }
        | MessageBody::Animation { file: f } => {
            file = Some(f);
            None
        }
        MessageBody::Document { file: f, file_name } => {
            file = Some(f);
            file_name.as_ref().map(|name| json!({ "file_name": name }))
        }
        MessageBody::Sticker { file: f, emoji } => {
            file = Some(f);
            emoji.as_ref().map(|emoji| json!({ "emoji": emoji }))
        }
        MessageBody::Location {
            latitude,
            longitude,
        } => Some(json!({ "latitude": latitude, "longitude": longitude })),
        MessageBody::Venue {
            latitude,
            longitude,
            title,
            address,
        } => Some(json!({
            "latitude": latitude,
            "longitude": longitude,
            "title": title,
            "address": address,
        })),
        MessageBody::Contact {
            phone_number,
            first_name,
            last_name,
            user_id,
        } => Some(json!({
            "phone_number": phone_number,
            "first_name": first_name,
            "last_name": last_name,
            "user_id": user_id,
        })),
    };
    row.text = text;
    row.file_id = file.map(|f| f.file_id.clone());
    row.file_unique_id = file.map(|f| f.file_unique_id.clone());
    row.details = details;
    row.caption.clone_from(&content.caption);
    row.forward_origin = content.forwarded_from.as_ref().map(forward_origin);
}

fn forward_origin(origin: &ForwardOrigin) -> Value {
    match origin {
        ForwardOrigin::User { user_id, name } => {
            json!({ "type": "user", "user_id": user_id, "name": name })
        }
        ForwardOrigin::HiddenUser { name } => json!({ "type": "hidden_user", "name": name }),
        ForwardOrigin::Chat { chat_id, title } => {
            json!({ "type": "chat", "chat_id": chat_id, "title": title })
        }
        ForwardOrigin::Channel {
            chat_id,
            title,
            message_id,
        } => json!({
            "type": "channel",
            "chat_id": chat_id,
            "title": title,
            "message_id": message_id.0,
        }),
    }
}

fn agent_reply(ticket_id: Uuid, version: i64, reply: &domain::ticket::AgentReplied) -> MessageRow {
    let first = reply.content.media.first();
    let details = (!reply.content.media.is_empty()).then(|| {
        Value::Array(
            reply
                .content
                .media
                .iter()
                .map(|m| json!({ "kind": sql::media_kind(m.kind), "file_id": m.file_id }))
                .collect(),
        )
    });
    MessageRow {
        id: reply.message_id.as_uuid(),
        ticket_id,
        seq: version,
        direction: "out".to_owned(),
        author_agent_id: Some(reply.agent.as_uuid()),
        kind: first.map_or("text", |m| sql::media_kind(m.kind)).to_owned(),
        text: reply.content.text.clone(),
        caption: None,
        file_id: first.map(|m| m.file_id.clone()),
        file_unique_id: None,
        details,
        forward_origin: None,
        telegram_message_id: None,
        reply_to_telegram_message_id: None,
        template_id: reply.template.map(|t| t.as_uuid()),
        delivery_state: Some("pending".to_owned()),
        delivered_telegram_message_id: None,
        failure_reason: None,
        failure_retryable: None,
        delivery_updated_at: None,
        edited_at: None,
        created_at: reply.at,
        version,
    }
}

async fn write_tickets(
    conn: &mut PgConnection,
    target: Target,
    fold: &Fold,
) -> Result<(), ApplyError> {
    let rows: Vec<&TicketRow> = fold
        .dirty_tickets
        .iter()
        .filter_map(|id| fold.tickets.get(id))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    static UPSERT: sql::Upsert =
        sql::Upsert::new("tickets", TICKET_COLUMNS, &["id"], sql::OnConflict::NEWER);
    let sql = UPSERT.text(target);
    let tags: Vec<String> = rows
        .iter()
        .map(|r| sql::text_array_literal(&r.tags))
        .collect();
    sqlx::query(sql)
        .bind(col!(rows, id))
        .bind(col!(rows, customer_id))
        .bind(col!(rows, channel))
        .bind(col!(rows, status))
        .bind(col!(rows, priority))
        .bind(col!(rows, category_id))
        .bind(col!(rows, assignee_id))
        .bind(tags)
        .bind(col!(rows, subject))
        .bind(col!(rows, first_message_id))
        .bind(col!(rows, customer_messages))
        .bind(col!(rows, agent_messages))
        .bind(col!(rows, notes))
        .bind(col!(rows, unread_by_agents))
        .bind(col!(rows, created_at))
        .bind(col!(rows, first_response_at))
        .bind(col!(rows, resolved_at))
        .bind(col!(rows, closed_at))
        .bind(col!(rows, last_message_id))
        .bind(col!(rows, last_message_at))
        .bind(col!(rows, last_message_direction))
        .bind(col!(rows, last_message_preview))
        .bind(col!(rows, last_activity_at))
        .bind(col!(rows, rating))
        .bind(col!(rows, rating_comment))
        .bind(col!(rows, version))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Writes the changed message rows: those in `fresh` (known not to be in the table) with a
/// plain insert, the others with an upsert.
async fn write_messages(
    conn: &mut PgConnection,
    target: Target,
    fold: &Fold,
    fresh: &HashSet<Uuid>,
) -> Result<(), ApplyError> {
    let mut seen = HashSet::new();
    let (new, known): (Vec<&MessageRow>, Vec<&MessageRow>) = fold
        .dirty_messages
        .iter()
        .filter(|id| seen.insert(**id))
        .filter_map(|id| fold.messages.get(id))
        .partition(|row| fresh.contains(&row.id));
    if !new.is_empty() {
        static SQL: sql::PerTarget = sql::PerTarget::new();
        let sql = SQL.get(target, |target| {
            sql::insert_sql(&target.table("messages"), MESSAGE_WRITTEN)
        });
        bind_messages(sqlx::query(sql), &new)
            .execute(&mut *conn)
            .await?;
    }
    if !known.is_empty() {
        static UPSERT: sql::Upsert =
            sql::Upsert::new("messages", MESSAGE_WRITTEN, &["id"], sql::OnConflict::NEWER);
        bind_messages(sqlx::query(UPSERT.text(target)), &known)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Binds `rows` as the columns of [`MESSAGE_WRITTEN`], in order.
fn bind_messages<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    rows: &[&MessageRow],
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(col!(rows, id))
        .bind(col!(rows, ticket_id))
        .bind(col!(rows, seq))
        .bind(col!(rows, direction))
        .bind(col!(rows, author_agent_id))
        .bind(col!(rows, kind))
        .bind(col!(rows, text))
        .bind(col!(rows, caption))
        .bind(col!(rows, file_id))
        .bind(col!(rows, file_unique_id))
        .bind(col!(rows, details))
        .bind(col!(rows, forward_origin))
        .bind(col!(rows, telegram_message_id))
        .bind(col!(rows, reply_to_telegram_message_id))
        .bind(col!(rows, template_id))
        .bind(col!(rows, delivery_state))
        .bind(col!(rows, delivered_telegram_message_id))
        .bind(col!(rows, failure_reason))
        .bind(col!(rows, failure_retryable))
        .bind(col!(rows, delivery_updated_at))
        .bind(col!(rows, edited_at))
        .bind(col!(rows, created_at))
        .bind(col!(rows, version))
        .bind(
            rows.iter()
                .map(|r| {
                    let texts = [r.text.as_deref(), r.caption.as_deref()];
                    sql::text_array_literal(&crate::search::terms(texts.into_iter().flatten()))
                })
                .collect::<Vec<_>>(),
        )
}

async fn write_notes(
    conn: &mut PgConnection,
    target: Target,
    fold: &Fold,
) -> Result<(), ApplyError> {
    let rows = &fold.notes;
    if rows.is_empty() {
        return Ok(());
    }
    static UPSERT: sql::Upsert =
        sql::Upsert::new("ticket_notes", NOTE_COLUMNS, &["id"], sql::OnConflict::Keep);
    sqlx::query(UPSERT.text(target))
        .bind(col!(rows, id))
        .bind(col!(rows, ticket_id))
        .bind(col!(rows, seq))
        .bind(col!(rows, agent_id))
        .bind(col!(rows, text))
        .bind(col!(rows, created_at))
        .execute(&mut *conn)
        .await?;
    Ok(())
}
