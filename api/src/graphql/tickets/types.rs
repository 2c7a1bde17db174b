//! What a ticket holds, as GraphQL shows it: its status and priority, and the messages and
//! notes of its conversation.

use async_graphql::{Enum, ID, Json, SimpleObject};
use chrono::{DateTime, Utc};

use crate::graphql::ids;
use crate::read::tickets::{MessageRow, NoteRow};

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

    /// The status a read model stores as `value`.
    pub fn from_sql(value: &str) -> Self {
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

    /// The priority the read model stores as `value`.
    pub fn from_sql(value: &str) -> Self {
        match value {
            "low" => PriorityValue::Low,
            "high" => PriorityValue::High,
            "urgent" => PriorityValue::Urgent,
            _ => PriorityValue::Normal,
        }
    }
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

impl From<NoteRow> for Note {
    fn from(row: NoteRow) -> Self {
        Note {
            id: ids::global("Note", row.id),
            note_id: ID(row.id.to_string()),
            seq: row.seq,
            agent_id: ID(row.agent_id.to_string()),
            text: row.text,
            created_at: row.created_at,
        }
    }
}
