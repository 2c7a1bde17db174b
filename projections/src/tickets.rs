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
use domain::content::{
    ForwardOrigin, MediaKind, MessageBody, MessageContent, MessageKind, ReplyContent,
};
use domain::customer::CustomerEvent;
use domain::ids::TicketId;
use domain::ticket::{Channel, Priority, TicketEvent, TicketStatus};
use domain::{AnyEvent, StreamId};
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Kept, KeptRows, Target, read_model};
use crate::sql;
use crate::table::{NullableText, Table, Text, stored_text, table};

pub mod queries;

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
    // 3: the versions before each edit (`edits`); media details (`media`), albums
    // (`media_group_id`), forward dates, new kinds.
    // 4: the formatting of texts and captions (`details.entities`).
    version: 4,
    tables: MESSAGE_TABLES,
    keeping: apply_messages_keeping,
);

table! {
    /// One row of `tickets`: a ticket as the ticket list shows it.
    #[derive(Debug, Clone, PartialEq)]
    pub struct TicketRow in "tickets" {
        /// The ticket.
        id: Uuid = "uuid",
        /// The customer's Telegram user id.
        customer_id: i64 = "bigint",
        /// Where the conversation happens.
        #[sqlx(try_from = "Text<Channel>")]
        channel: Channel = "text",
        /// Where the ticket is in its life.
        #[sqlx(try_from = "Text<TicketStatus>")]
        status: TicketStatus = "text",
        /// How urgent it is.
        #[sqlx(try_from = "Text<Priority>")]
        priority: Priority = "text",
        /// Its category, if any.
        category_id: Option<Uuid> = "uuid",
        /// The assigned agent, if any.
        assignee_id: Option<Uuid> = "uuid",
        /// Its tags, sorted.
        tags: Vec<String> = "text[]",
        /// The first line of the first customer message (text or caption), or its kind.
        subject: String = "text",
        /// The first customer message.
        first_message_id: Option<Uuid> = "uuid",
        /// Customer messages so far.
        customer_messages: i32 = "integer",
        /// Agent replies so far.
        agent_messages: i32 = "integer",
        /// Internal notes so far.
        notes: i32 = "integer",
        /// Customer messages since the last agent reply.
        unread_by_agents: i32 = "integer",
        /// When it was opened.
        created_at: DateTime<Utc> = "timestamptz",
        /// The first agent reply.
        first_response_at: Option<DateTime<Utc>> = "timestamptz",
        /// When it was last resolved (cleared by a reopen).
        resolved_at: Option<DateTime<Utc>> = "timestamptz",
        /// When it was closed.
        closed_at: Option<DateTime<Utc>> = "timestamptz",
        /// The last message.
        last_message_id: Option<Uuid> = "uuid",
        /// The last message's time.
        last_message_at: Option<DateTime<Utc>> = "timestamptz",
        /// Who wrote the last message.
        #[sqlx(try_from = "NullableText<Direction>")]
        last_message_direction: Option<Direction> = "text",
        /// The start of the last message.
        last_message_preview: Option<String> = "text",
        /// The last change of any kind.
        last_activity_at: DateTime<Utc> = "timestamptz",
        /// The customer's rating (1 to 5), if given since the last resolve.
        rating: Option<i16> = "smallint",
        /// The customer's comment on the rating.
        rating_comment: Option<String> = "text",
        /// The ticket stream's version this row reflects.
        version: i64 = "bigint",
    }
}

/// Who wrote a message: the customer or an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the customer.
    In,
    /// An agent's reply.
    Out,
}

stored_text!("message direction", Direction { In => "in", Out => "out" });

/// Where an agent's reply is on its way to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not sent yet.
    Pending,
    /// Telegram accepted it.
    Delivered,
    /// Telegram refused it.
    Failed,
}

stored_text!(
    "delivery state",
    DeliveryState {
        Pending => "pending",
        Delivered => "delivered",
        Failed => "failed",
    }
);

table! {
    /// One row of `messages`: a customer message or an agent reply, in its ticket's order.
    #[derive(Debug, Clone, PartialEq)]
    pub struct MessageRow in "messages" {
        /// The message.
        id: Uuid = "uuid",
        /// Its ticket.
        ticket_id: Uuid = "uuid",
        /// Its place in the ticket: the ticket stream version of the event that posted it.
        seq: i64 = "bigint",
        /// In (customer) or out (agent).
        #[sqlx(try_from = "Text<Direction>")]
        direction: Direction = "text",
        /// The replying agent, for replies.
        author_agent_id: Option<Uuid> = "uuid",
        /// What kind of message it is (for replies, the kind of their first media).
        #[sqlx(try_from = "Text<MessageKind>")]
        kind: MessageKind = "text",
        /// Its text.
        text: Option<String> = "text",
        /// A media caption.
        caption: Option<String> = "text",
        /// Telegram's file id of its media.
        file_id: Option<String> = "text",
        /// Telegram's lasting id of its media's file.
        file_unique_id: Option<String> = "text",
        /// Location, venue, contact, sticker emoji, document name, dice, poll, story,
        /// checklist, paid media, service action, unsupported kind; for replies, the media sent.
        details: Option<Value> = "jsonb",
        /// Where a forwarded message came from.
        forward_origin: Option<Value> = "jsonb",
        /// When a forwarded message was first sent.
        forwarded_at: Option<DateTime<Utc>> = "timestamptz",
        /// Its file with everything Telegram told about it (see [`media`]); for replies, the
        /// first medium sent.
        media: Option<Value> = "jsonb",
        /// The album (Telegram media group) a customer message belongs to.
        media_group_id: Option<String> = "text",
        /// Telegram's id of a customer message in the customer's chat.
        telegram_message_id: Option<i32> = "integer",
        /// The Telegram message a customer message replies to.
        reply_to_telegram_message_id: Option<i32> = "integer",
        /// The template a reply was written from.
        template_id: Option<Uuid> = "uuid",
        /// Replies: where delivery stands.
        #[sqlx(try_from = "NullableText<DeliveryState>")]
        delivery_state: Option<DeliveryState> = "text",
        /// Telegram's id of a delivered reply.
        delivered_telegram_message_id: Option<i32> = "integer",
        /// Why delivery failed.
        failure_reason: Option<String> = "text",
        /// Whether a failed delivery may succeed on retry.
        failure_retryable: Option<bool> = "boolean",
        /// When the delivery state last changed.
        delivery_updated_at: Option<DateTime<Utc>> = "timestamptz",
        /// When the customer last edited it.
        edited_at: Option<DateTime<Utc>> = "timestamptz",
        /// The versions it had before each edit, oldest first (see [`previous_version`]).
        edits: Value = "jsonb",
        /// When it was posted.
        created_at: DateTime<Utc> = "timestamptz",
        /// The ticket stream version of the last event applied to it.
        version: i64 = "bigint",
    }
    written: {
        // Last, and never read back: the words a search matches (crate::search).
        search_terms: "text[]" = search_terms,
    }
}

/// The `search_terms` of a message row: the terms of its text and caption.
fn search_terms(row: &MessageRow) -> String {
    let texts = [row.text.as_deref(), row.caption.as_deref()];
    sql::text_array_literal(&crate::search::terms(texts.into_iter().flatten()))
}

table! {
    /// One row of `ticket_notes`: an internal note on a ticket, seen only by the team.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct NoteRow in "ticket_notes" {
        /// The note.
        id: Uuid = "uuid",
        /// Its ticket.
        ticket_id: Uuid = "uuid",
        /// Its place in the ticket (the ticket stream version that added it).
        seq: i64 = "bigint",
        /// The agent who wrote it.
        agent_id: Uuid = "uuid",
        /// Its text.
        text: String = "text",
        /// When.
        created_at: DateTime<Utc> = "timestamptz",
    }
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
    let mut ticket_ids: HashSet<Uuid> = batch
        .iter()
        .filter_map(|envelope| match (&envelope.stream, &envelope.event) {
            (StreamId::Ticket(id), AnyEvent::Ticket(_)) => Some(id.as_uuid()),
            _ => None,
        })
        .collect();
    ticket_ids.extend(forgotten_tickets(batch));
    if ticket_ids.is_empty() {
        return Ok(());
    }

    let forgotten: Vec<Uuid> = forgotten_tickets(batch).collect();
    if !forgotten.is_empty() {
        // The rows in the table; the fold clears those it holds at the customer's
        // `customer.forgotten`, and writes them after this only when a later event changed
        // them (a row's version is its ticket stream's).
        forget_tickets(conn, target, &forgotten).await?;
    }
    let mut fold = Fold::default();
    let mut kept = KeptRows::<TicketRow>::of(kept, target);
    KeptRows::load(
        kept.as_deref_mut(),
        conn,
        ticket_ids,
        (&target.table(TicketRow::TABLE), TicketRow::COLUMNS, "id"),
        |row| row.id,
        &mut fold.tickets,
    )
    .await?;
    for envelope in batch {
        match (&envelope.stream, &envelope.event) {
            (StreamId::Ticket(id), AnyEvent::Ticket(event)) => {
                fold.event(id.as_uuid(), sql::version(envelope)?, event);
            }
            (StreamId::Customer(_), AnyEvent::Customer(CustomerEvent::Forgotten(forgotten))) => {
                fold.forget_tickets(&forgotten.tickets);
            }
            _ => {}
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
    let forgotten: Vec<Uuid> = forgotten_tickets(batch).collect();
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
            TicketEvent::ReplyDeliveryRetryRequested(e) => {
                referenced.insert(e.message_id.as_uuid());
            }
            _ => {}
        }
    }
    if posted.is_empty() && referenced.is_empty() && forgotten.is_empty() {
        return Ok(());
    }
    if !forgotten.is_empty() {
        // Rows already in the table; those this batch holds are cleared in the fold below, at
        // the customer's `customer.forgotten`, and written after this.
        forget_messages(conn, target, &forgotten).await?;
    }
    let mut fold = Fold::default();
    // Messages edited or delivered in this batch but posted in an earlier one.
    let older: Vec<Uuid> = referenced.difference(&posted).copied().collect();
    if !older.is_empty() {
        let sql = sql::select_sql(&target.table(MessageRow::TABLE), MessageRow::COLUMNS, "id");
        for row in sqlx::query_as::<_, MessageRow>(&sql)
            .bind(&older)
            .fetch_all(&mut *conn)
            .await?
        {
            fold.messages.insert(row.id, row);
        }
    }
    for envelope in batch {
        match (&envelope.stream, &envelope.event) {
            (StreamId::Ticket(id), AnyEvent::Ticket(event)) => {
                fold.message_event(id.as_uuid(), sql::version(envelope)?, event);
            }
            (StreamId::Customer(_), AnyEvent::Customer(CustomerEvent::Forgotten(forgotten))) => {
                fold.forget_messages(&forgotten.tickets);
            }
            _ => {}
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
        E::ReplyDeliveryRetryRequested(e) => e.at,
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
        let closed = ticket.status == TicketStatus::Closed;
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
                ticket.last_message_direction = Some(Direction::In);
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
                ticket.last_message_direction = Some(Direction::Out);
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
                    ticket.status = change.to;
                }
            }
            E::Resolved(step) => {
                if !closed {
                    ticket.status = TicketStatus::Resolved;
                    ticket.resolved_at = Some(step.at);
                    ticket.rating = None;
                    ticket.rating_comment = None;
                }
            }
            E::Reopened(_) => {
                if !closed {
                    ticket.status = TicketStatus::Open;
                    ticket.resolved_at = None;
                    ticket.rating = None;
                    ticket.rating_comment = None;
                }
            }
            E::Closed(step) => {
                ticket.status = TicketStatus::Closed;
                ticket.closed_at = Some(step.at);
            }
            E::PriorityChanged(change) => {
                ticket.priority = change.priority;
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
            E::ReplyDelivered(_)
            | E::ReplyDeliveryFailed(_)
            | E::ReplyDeliveryRetryRequested(_) => {}
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
                    let previous = previous_version(message, edited.at);
                    match &mut message.edits {
                        Value::Array(versions) => versions.push(previous),
                        other => *other = Value::Array(vec![previous]),
                    }
                    set_content(message, &edited.content);
                    message.kind = edited.kind;
                    message.edited_at = Some(edited.at);
                    message.version = version;
                    self.dirty_messages.push(id);
                }
            }
            E::ReplyDelivered(delivered) => {
                let id = delivered.message_id.as_uuid();
                if let Some(message) = update(&mut self.messages, &id, version) {
                    message.delivery_state = Some(DeliveryState::Delivered);
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
                    message.delivery_state = Some(DeliveryState::Failed);
                    message.failure_reason = Some(failed.reason.clone());
                    message.failure_retryable = Some(failed.retryable);
                    message.delivery_updated_at = Some(failed.at);
                    message.version = version;
                    self.dirty_messages.push(id);
                }
            }
            E::ReplyDeliveryRetryRequested(retry) => {
                let id = retry.message_id.as_uuid();
                if let Some(message) = update(&mut self.messages, &id, version) {
                    // Pending again; the failure stays in the log, not on the row.
                    message.delivery_state = Some(DeliveryState::Pending);
                    message.failure_reason = None;
                    message.failure_retryable = None;
                    message.delivery_updated_at = Some(retry.at);
                    message.version = version;
                    self.dirty_messages.push(id);
                }
            }
            _ => {}
        }
    }

    /// Clears what the tickets of a forgotten customer kept of their words.
    fn forget_tickets(&mut self, tickets: &[TicketId]) {
        for ticket in tickets {
            let id = ticket.as_uuid();
            if let Some(row) = self.tickets.get_mut(&id) {
                forget_ticket(row);
                self.dirty_tickets.insert(id);
            }
        }
    }

    /// Clears the customer's messages this batch holds on the tickets of a forgotten customer.
    fn forget_messages(&mut self, tickets: &[TicketId]) {
        let tickets: HashSet<Uuid> = tickets.iter().map(|ticket| ticket.as_uuid()).collect();
        for message in self.messages.values_mut() {
            if tickets.contains(&message.ticket_id) && message.direction == Direction::In {
                forget_message(message);
                self.dirty_messages.push(message.id);
            }
        }
    }

    fn put_message(&mut self, message: MessageRow) {
        self.dirty_messages.push(message.id);
        self.messages.insert(message.id, message);
    }
}

/// The tickets whose customer a `customer.forgotten` of `batch` forgets.
fn forgotten_tickets(batch: &[Envelope]) -> impl Iterator<Item = Uuid> + '_ {
    batch
        .iter()
        .flat_map(|envelope| match &envelope.event {
            AnyEvent::Customer(CustomerEvent::Forgotten(forgotten)) => forgotten.tickets.as_slice(),
            _ => &[],
        })
        .map(|ticket| ticket.as_uuid())
}

/// A ticket row once its customer is forgotten: no subject, no preview of their words, no
/// rating comment. The same whatever the row held, so that a rebuild (from the stand-ins) and
/// the live row (from the plain words) agree.
fn forget_ticket(row: &mut TicketRow) {
    row.subject = String::new();
    if row.last_message_direction == Some(Direction::In) {
        row.last_message_preview = Some(String::new());
    }
    row.rating_comment = None;
}

/// A customer message once its customer is forgotten: its kind, ids and times stay; every
/// word, file, place and contact goes, also from the versions before each edit.
fn forget_message(row: &mut MessageRow) {
    row.text = None;
    row.caption = None;
    row.file_id = None;
    row.file_unique_id = None;
    row.details = None;
    row.forward_origin = None;
    row.forwarded_at = None;
    row.media = None;
    row.media_group_id = None;
    if let Value::Array(versions) = &mut row.edits {
        for version in versions {
            if let Value::Object(fields) = version {
                fields.insert("text".into(), Value::Null);
                fields.insert("caption".into(), Value::Null);
            }
        }
    }
}

/// [`forget_ticket`] on the rows of `tickets` in the table.
async fn forget_tickets(
    conn: &mut PgConnection,
    target: Target,
    tickets: &[Uuid],
) -> Result<(), ApplyError> {
    let sql = format!(
        "update {} set subject = '', rating_comment = null, \
                last_message_preview = case when last_message_direction = 'in' then '' \
                                            else last_message_preview end \
          where id = any($1)",
        target.table(TicketRow::TABLE)
    );
    sqlx::query(&sql).bind(tickets).execute(&mut *conn).await?;
    Ok(())
}

/// [`forget_message`] on the rows of `tickets` in the table.
async fn forget_messages(
    conn: &mut PgConnection,
    target: Target,
    tickets: &[Uuid],
) -> Result<(), ApplyError> {
    let sql = format!(
        "update {} set text = null, caption = null, file_id = null, file_unique_id = null, \
                details = null, forward_origin = null, forwarded_at = null, media = null, \
                media_group_id = null, search_terms = '{{}}', \
                edits = (select coalesce(jsonb_agg(v || '{{\"text\": null, \"caption\": null}}' \
                                                   order by n), '[]') \
                           from jsonb_array_elements(edits) with ordinality as e(v, n)) \
          where ticket_id = any($1) and direction = 'in'",
        target.table(MessageRow::TABLE)
    );
    sqlx::query(&sql).bind(tickets).execute(&mut *conn).await?;
    Ok(())
}

/// The id of a message a ticket row points at.
struct MessageRef {
    id: Uuid,
}

fn opened_row(id: Uuid, version: i64, opened: &domain::ticket::TicketOpened) -> TicketRow {
    TicketRow {
        id,
        customer_id: opened.customer.0,
        channel: opened.channel,
        status: TicketStatus::New,
        priority: Priority::default(),
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

/// The words of a customer message: its text, else its caption (or a venue's title, a poll's
/// question, a checklist's title).
fn body_text(content: &MessageContent) -> Option<&str> {
    match &content.body {
        MessageBody::Text { text } => Some(text.as_str()),
        MessageBody::Venue { title, .. } if content.caption.is_none() => Some(title.as_str()),
        MessageBody::Poll { question, .. } => Some(question.as_str()),
        MessageBody::Checklist { title, .. } => Some(title.as_str()),
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
        direction: Direction::In,
        author_agent_id: None,
        kind: posted.kind,
        text: None,
        caption: None,
        file_id: None,
        file_unique_id: None,
        details: None,
        forward_origin: None,
        forwarded_at: None,
        media: None,
        media_group_id: None,
        telegram_message_id: Some(posted.telegram_message_id.0),
        reply_to_telegram_message_id: posted.reply_to.map(|id| id.0),
        template_id: None,
        delivery_state: None,
        delivered_telegram_message_id: None,
        failure_reason: None,
        failure_retryable: None,
        delivery_updated_at: None,
        edited_at: None,
        edits: Value::Array(Vec::new()),
        created_at: posted.at,
        version,
    };
    set_content(&mut row, &posted.content);
    row
}

/// The version of a customer message an edit at `edited_at` replaces, as kept in `edits`:
/// `{"kind", "text", "caption", "edited_at"}`.
fn previous_version(row: &MessageRow, edited_at: DateTime<Utc>) -> Value {
    json!({
        "kind": sql::message_kind(row.kind),
        "text": row.text,
        "caption": row.caption,
        "edited_at": edited_at,
    })
}

/// Writes a customer message's content into its row (on post and on edit).
fn set_content(row: &mut MessageRow, content: &MessageContent) {
    let file = content.body.file();
    let text = match &content.body {
        MessageBody::Text { text } => Some(text.clone()),
        _ => None,
    };
    row.text = text;
    row.file_id = file.map(|f| f.file_id.clone());
    row.file_unique_id = file.map(|f| f.file_unique_id.clone());
    row.details = with_entities(details(&content.body), content);
    row.media = media(content);
    row.caption.clone_from(&content.caption);
    row.forward_origin = content.forwarded_from.as_ref().map(forward_origin);
    row.forwarded_at = content.forwarded_at;
    row.media_group_id.clone_from(&content.media_group_id);
}

/// `details` with the formatting of the text or caption under `entities` (`[{type, offset,
/// length, url?, language?, custom_emoji_id?, user_id?}]`, offsets in UTF-16 code units),
/// when it has any.
fn with_entities(details: Option<Value>, content: &MessageContent) -> Option<Value> {
    if content.entities.is_empty() {
        return details;
    }
    let mut object = match details {
        Some(Value::Object(object)) => object,
        _ => serde_json::Map::new(),
    };
    object.insert("entities".to_owned(), json!(content.entities));
    Some(Value::Object(object))
}

/// What a body holds besides its text and file, for `messages.details`.
fn details(body: &MessageBody) -> Option<Value> {
    match body {
        MessageBody::Text { .. }
        | MessageBody::Photo { .. }
        | MessageBody::Video { .. }
        | MessageBody::Audio { .. }
        | MessageBody::Voice { .. }
        | MessageBody::VideoNote { .. }
        | MessageBody::Animation { .. } => None,
        MessageBody::Document { file_name, .. } => {
            file_name.as_ref().map(|name| json!({ "file_name": name }))
        }
        MessageBody::Sticker { emoji, .. } => emoji.as_ref().map(|emoji| json!({ "emoji": emoji })),
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
        MessageBody::Dice { emoji, value } => Some(json!({ "emoji": emoji, "value": value })),
        MessageBody::Poll {
            question,
            options,
            quiz,
            multiple_answers,
        } => Some(json!({
            "question": question,
            "options": options,
            "quiz": quiz,
            "multiple_answers": multiple_answers,
        })),
        MessageBody::Story { chat_id, story_id } => {
            Some(json!({ "chat_id": chat_id, "story_id": story_id }))
        }
        MessageBody::Checklist { title, tasks } => Some(json!({
            "title": title,
            "tasks": tasks
                .iter()
                .map(|task| json!({ "text": task.text, "done": task.done }))
                .collect::<Vec<_>>(),
        })),
        MessageBody::PaidMedia { star_count, media } => {
            Some(json!({ "star_count": star_count, "media": media }))
        }
        MessageBody::Service { action, message } => Some(json!({
            "action": action,
            "message_id": message.map(|id| id.0),
        })),
        MessageBody::Unsupported { kind } => Some(json!({ "kind": kind })),
    }
}

/// The file of a customer message with everything Telegram told about it, for
/// `messages.media`: `kind`, `file_id`, `file_unique_id`, and, when known, `file_name`,
/// `mime_type`, `file_size`, `width`, `height`, `duration`, `thumbnail` (`file_id`,
/// `file_unique_id`, `width`, `height`, `file_size`), `title`, `performer`, `set_name`,
/// `emoji`, `animated`, `video`. `None` for a message without a file.
fn media(content: &MessageContent) -> Option<Value> {
    let file = content.body.file()?;
    let details = content.media.as_deref().cloned().unwrap_or_default();
    let (file_name, emoji) = match &content.body {
        MessageBody::Document { file_name, .. } => (file_name.clone().or(details.file_name), None),
        MessageBody::Sticker { emoji, .. } => (details.file_name, emoji.clone()),
        _ => (details.file_name, None),
    };
    let mut media = serde_json::Map::new();
    media.insert("kind".into(), json!(sql::message_kind(content.kind())));
    media.insert("file_id".into(), json!(file.file_id));
    media.insert("file_unique_id".into(), json!(file.file_unique_id));
    let mut put = |key: &str, value: Value| {
        if !value.is_null() {
            media.insert(key.to_owned(), value);
        }
    };
    put("file_name", json!(file_name));
    put("mime_type", json!(details.mime_type));
    put("file_size", json!(details.file_size));
    put("width", json!(details.width));
    put("height", json!(details.height));
    put("duration", json!(details.duration));
    put(
        "thumbnail",
        json!(details.thumbnail.map(|thumbnail| json!({
            "file_id": thumbnail.file.file_id,
            "file_unique_id": thumbnail.file.file_unique_id,
            "width": thumbnail.width,
            "height": thumbnail.height,
            "file_size": thumbnail.file_size,
        }))),
    );
    put("title", json!(details.title));
    put("performer", json!(details.performer));
    put("set_name", json!(details.set_name));
    put("emoji", json!(emoji));
    put("animated", json!(details.animated));
    put("video", json!(details.video));
    Some(Value::Object(media))
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

/// The kind of a reply whose first media is of `kind`.
const fn media_message_kind(kind: MediaKind) -> MessageKind {
    match kind {
        MediaKind::Photo => MessageKind::Photo,
        MediaKind::Video => MessageKind::Video,
        MediaKind::Document => MessageKind::Document,
        MediaKind::Audio => MessageKind::Audio,
        MediaKind::Voice => MessageKind::Voice,
        MediaKind::Animation => MessageKind::Animation,
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
        direction: Direction::Out,
        author_agent_id: Some(reply.agent.as_uuid()),
        kind: first.map_or(MessageKind::Text, |m| media_message_kind(m.kind)),
        text: reply.content.text.clone(),
        caption: None,
        file_id: first.map(|m| m.file_id.clone()),
        file_unique_id: None,
        media: first.map(|m| json!({ "kind": sql::media_kind(m.kind), "file_id": m.file_id })),
        details,
        forward_origin: None,
        forwarded_at: None,
        media_group_id: None,
        telegram_message_id: None,
        reply_to_telegram_message_id: reply.reply_to.map(|id| id.0),
        template_id: reply.template.map(|t| t.as_uuid()),
        delivery_state: Some(DeliveryState::Pending),
        delivered_telegram_message_id: None,
        failure_reason: None,
        failure_retryable: None,
        delivery_updated_at: None,
        edited_at: None,
        edits: Value::Array(Vec::new()),
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
    static UPSERT: sql::Upsert = sql::Upsert::new(
        TicketRow::TABLE,
        TicketRow::WRITTEN,
        &["id"],
        sql::OnConflict::NEWER,
    );
    TicketRow::bind(sqlx::query(UPSERT.text(target)), &rows)
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
            sql::insert_sql(&target.table(MessageRow::TABLE), MessageRow::WRITTEN)
        });
        MessageRow::bind(sqlx::query(sql), &new)
            .execute(&mut *conn)
            .await?;
    }
    if !known.is_empty() {
        static UPSERT: sql::Upsert = sql::Upsert::new(
            MessageRow::TABLE,
            MessageRow::WRITTEN,
            &["id"],
            sql::OnConflict::NEWER,
        );
        MessageRow::bind(sqlx::query(UPSERT.text(target)), &known)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
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
    static UPSERT: sql::Upsert = sql::Upsert::new(
        NoteRow::TABLE,
        NoteRow::WRITTEN,
        &["id"],
        sql::OnConflict::Keep,
    );
    let rows: Vec<&NoteRow> = rows.iter().collect();
    NoteRow::bind(sqlx::query(UPSERT.text(target)), &rows)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
