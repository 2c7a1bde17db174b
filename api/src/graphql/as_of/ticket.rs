//! `TicketAsOf`: a ticket folded from its stream up to a point, with the messages and notes it
//! had then. The status, priority, category, assignee, tags, resolve time and rating are the
//! domain's state ([`domain::ticket::TicketState`]); what that state does not keep (the text of
//! messages, their edits and delivery, the close time) is gathered from the same events.

use std::collections::HashMap;

use app::as_of::{self, Until};
use async_graphql::connection::Connection;
use async_graphql::{ComplexObject, Context, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::content::{MessageBody, MessageContent, ReplyContent};
use domain::ticket::{Ticket, TicketEvent};
use eventlog::postgres::PostgresLog;
use uuid::Uuid;

use super::{MAX_TICKET_EVENTS, fold_failed, seq_connection};
use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::guard::Need;
use crate::graphql::ids;
use crate::graphql::pagination::{PageArgs, connection_complexity, cursor, page};
use crate::graphql::tickets::types::MessageEdit;
use crate::graphql::tickets::{MessageDirection, Note, PriorityValue, TicketStatusValue};

/// A ticket as it was at a point of its stream, folded from the log.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct TicketAsOf {
    /// The ticket's uuid.
    pub ticket_id: ID,
    /// The customer's Telegram user id.
    pub customer_id: ID,
    /// The stream version of the last event folded.
    pub version: i64,
    /// When the log recorded the last event folded.
    pub recorded_at: DateTime<Utc>,
    /// Status then.
    pub status: TicketStatusValue,
    /// Priority then.
    pub priority: PriorityValue,
    /// Category then.
    pub category_id: Option<ID>,
    /// Assignee then.
    pub assignee_id: Option<ID>,
    /// Tags then, in order.
    pub tags: Vec<String>,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it was last resolved, while it was resolved (or closed after a resolve).
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was closed, if it was by then.
    pub closed_at: Option<DateTime<Utc>>,
    /// The customer's rating of the current resolve, if given by then.
    pub rating: Option<i32>,
    /// Customer messages by then.
    pub customer_message_count: i32,
    /// Agent replies by then.
    pub agent_message_count: i32,
    /// Internal notes by then.
    pub note_count: i32,
    #[graphql(skip)]
    messages: Vec<TicketMessageAsOf>,
    #[graphql(skip)]
    notes: Vec<Note>,
}

/// A customer message or an agent reply as it was at a point of its ticket's stream.
#[derive(Debug, Clone, SimpleObject)]
pub struct TicketMessageAsOf {
    /// The message's uuid.
    pub message_id: ID,
    /// Its place in the ticket (the stream version that posted it).
    pub seq: i64,
    /// In (customer) or out (agent).
    pub direction: MessageDirection,
    /// The replying agent, for replies.
    pub author_agent_id: Option<ID>,
    /// text, photo, video, document… (for a reply, the kind of its first medium, else text)
    pub kind: String,
    /// Its text.
    pub text: Option<String>,
    /// A media caption.
    pub caption: Option<String>,
    /// Telegram's file id of its (first) medium.
    pub file_id: Option<String>,
    /// Everything the event recorded of its content, as stored (the version current then).
    pub content: Json<serde_json::Value>,
    /// Telegram's id of the message: for a customer message as it arrived, for a reply once
    /// Telegram had accepted it by then.
    pub telegram_message_id: Option<i32>,
    /// The Telegram message it replies to.
    pub reply_to_telegram_message_id: Option<i32>,
    /// The template a reply was written from.
    pub template_id: Option<ID>,
    /// Replies: `pending`, `delivered` or `failed` as the log had it then. Null for customer
    /// messages.
    pub delivery_state: Option<String>,
    /// Why delivery failed, while failed.
    pub failure_reason: Option<String>,
    /// When the customer last edited it, by then.
    pub edited_at: Option<DateTime<Utc>>,
    /// The versions the message had before the edits made by then, oldest first.
    pub edits: Vec<MessageEdit>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    uuid: Uuid,
}

#[ComplexObject]
impl TicketAsOf {
    /// The conversation then: customer messages and agent replies in ticket order (`last`
    /// for the newest).
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
    ) -> Result<Connection<String, TicketMessageAsOf>> {
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        seq_connection(
            &request,
            &self.messages,
            |m| m.seq,
            |m| cursor(m.seq, m.uuid),
            Clone::clone,
        )
    }

    /// The internal notes then, in ticket order (`last` for the newest).
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
        seq_connection(
            &request,
            &self.notes,
            |n| n.seq,
            |n| cursor(n.seq, &n.note_id.0),
            Clone::clone,
        )
    }
}

/// What the fold gathers besides the domain's state.
#[derive(Default)]
struct Gathered {
    messages: Vec<TicketMessageAsOf>,
    by_id: HashMap<Uuid, usize>,
    notes: Vec<Note>,
    closed_at: Option<DateTime<Utc>>,
}

impl Gathered {
    fn message(&mut self, id: Uuid) -> Option<&mut TicketMessageAsOf> {
        self.by_id.get(&id).map(|index| &mut self.messages[*index])
    }

    fn push(&mut self, message: TicketMessageAsOf) {
        self.by_id.insert(message.uuid, self.messages.len());
        self.messages.push(message);
    }

    fn event(&mut self, version: i64, event: &TicketEvent) {
        use TicketEvent as E;
        match event {
            E::CustomerMessagePosted(posted) => {
                let (text, caption, file_id) = customer_parts(&posted.content);
                self.push(TicketMessageAsOf {
                    message_id: ID(posted.message_id.as_uuid().to_string()),
                    seq: version,
                    direction: MessageDirection::In,
                    author_agent_id: None,
                    kind: stored_name(&posted.kind),
                    text,
                    caption,
                    file_id,
                    content: Json(serde_json::to_value(&posted.content).unwrap_or_default()),
                    telegram_message_id: Some(posted.telegram_message_id.0),
                    reply_to_telegram_message_id: posted.reply_to.map(|id| id.0),
                    template_id: None,
                    delivery_state: None,
                    failure_reason: None,
                    edited_at: None,
                    edits: Vec::new(),
                    created_at: posted.at,
                    uuid: posted.message_id.as_uuid(),
                });
            }
            E::CustomerMessageEdited(edited) => {
                if let Some(message) = self.message(edited.message_id.as_uuid()) {
                    message.edits.push(MessageEdit {
                        kind: message.kind.clone(),
                        text: message.text.take(),
                        caption: message.caption.take(),
                        edited_at: edited.at,
                    });
                    let (text, caption, file_id) = customer_parts(&edited.content);
                    message.kind = stored_name(&edited.kind);
                    message.text = text;
                    message.caption = caption;
                    message.file_id = file_id;
                    message.content =
                        Json(serde_json::to_value(&edited.content).unwrap_or_default());
                    message.edited_at = Some(edited.at);
                }
            }
            E::AgentReplied(reply) => {
                let first = reply.content.media.first();
                self.push(TicketMessageAsOf {
                    message_id: ID(reply.message_id.as_uuid().to_string()),
                    seq: version,
                    direction: MessageDirection::Out,
                    author_agent_id: Some(ID(reply.agent.as_uuid().to_string())),
                    kind: first.map_or_else(|| "text".to_owned(), |m| stored_name(&m.kind)),
                    text: reply.content.text.clone(),
                    caption: None,
                    file_id: first.map(|m| m.file_id.clone()),
                    content: Json(reply_value(&reply.content)),
                    telegram_message_id: None,
                    reply_to_telegram_message_id: reply.reply_to.map(|id| id.0),
                    template_id: reply.template.map(|t| ID(t.as_uuid().to_string())),
                    delivery_state: Some("pending".to_owned()),
                    failure_reason: None,
                    edited_at: None,
                    edits: Vec::new(),
                    created_at: reply.at,
                    uuid: reply.message_id.as_uuid(),
                });
            }
            E::ReplyDelivered(delivered) => {
                if let Some(message) = self.message(delivered.message_id.as_uuid()) {
                    message.delivery_state = Some("delivered".to_owned());
                    message.telegram_message_id = Some(delivered.telegram_message_id.0);
                    message.failure_reason = None;
                }
            }
            E::ReplyDeliveryFailed(failed) => {
                if let Some(message) = self.message(failed.message_id.as_uuid()) {
                    message.delivery_state = Some("failed".to_owned());
                    message.failure_reason = Some(failed.reason.clone());
                }
            }
            E::ReplyDeliveryRetryRequested(retry) => {
                if let Some(message) = self.message(retry.message_id.as_uuid()) {
                    message.delivery_state = Some("pending".to_owned());
                    message.failure_reason = None;
                }
            }
            E::NoteAdded(note) => self.notes.push(Note {
                id: ids::global("Note", note.note_id.as_uuid()),
                note_id: ID(note.note_id.as_uuid().to_string()),
                seq: version,
                agent_id: ID(note.agent.as_uuid().to_string()),
                text: note.content.text.clone(),
                created_at: note.at,
            }),
            E::Closed(step) => self.closed_at = Some(step.at),
            _ => {}
        }
    }
}

/// The text, caption and file id of a customer message's content.
fn customer_parts(content: &MessageContent) -> (Option<String>, Option<String>, Option<String>) {
    let text = match &content.body {
        MessageBody::Text { text } => Some(text.clone()),
        _ => None,
    };
    let file_id = content.body.file().map(|file| file.file_id.clone());
    (text, content.caption.clone(), file_id)
}

fn reply_value(content: &ReplyContent) -> serde_json::Value {
    serde_json::to_value(content).unwrap_or_default()
}

/// The stored (serde) name of a unit enum value: `photo` for `MessageKind::Photo`.
fn stored_name(value: &impl serde::Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// The ticket `id` folded up to `until`; `None` when it was not opened by then.
pub(super) async fn fold(log: &PostgresLog, id: Uuid, until: Until) -> Result<Option<TicketAsOf>> {
    let stream = domain::TicketId(id).stream().name();
    let mut gathered = Gathered::default();
    let folded = as_of::fold::<Ticket, _>(
        log,
        &stream,
        until,
        MAX_TICKET_EVENTS,
        |recorded, event, state| {
            // Events before the opening change nothing, as in the domain's fold.
            if matches!(state, Ticket::Opened(_)) || matches!(event, TicketEvent::Opened(_)) {
                let version = i64::try_from(recorded.stream_version).unwrap_or(i64::MAX);
                gathered.event(version, event);
            }
        },
    )
    .await
    .map_err(|failure| fold_failed("ticket", failure))?;
    let (Some(state), Some(version), Some(recorded_at)) =
        (folded.state.state(), folded.version, folded.recorded_at)
    else {
        return Ok(None);
    };
    let count = |direction: MessageDirection| {
        let n = gathered
            .messages
            .iter()
            .filter(|m| m.direction == direction)
            .count();
        i32::try_from(n).unwrap_or(i32::MAX)
    };
    Ok(Some(TicketAsOf {
        ticket_id: ID(state.id.as_uuid().to_string()),
        customer_id: ID(state.customer.0.to_string()),
        version: i64::try_from(version).unwrap_or(i64::MAX),
        recorded_at,
        status: state.status.into(),
        priority: state.priority.into(),
        category_id: state.category.map(|c| ID(c.as_uuid().to_string())),
        assignee_id: state.assignee.map(|a| ID(a.as_uuid().to_string())),
        tags: state.tags.iter().cloned().collect(),
        created_at: state.opened_at,
        resolved_at: state.resolved_at,
        closed_at: gathered.closed_at,
        rating: state.rating.map(i32::from),
        customer_message_count: count(MessageDirection::In),
        agent_message_count: count(MessageDirection::Out),
        note_count: i32::try_from(gathered.notes.len()).unwrap_or(i32::MAX),
        messages: gathered.messages,
        notes: gathered.notes,
    }))
}
