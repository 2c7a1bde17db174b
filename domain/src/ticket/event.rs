//! Ticket events, their payloads and stored names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::event_enum;
use crate::content::{MessageContent, MessageKind, ReplyContent, TelegramMessageId};
use crate::ids::{AgentId, CategoryId, CustomerId, MessageId, TemplateId, TicketId};

/// Who did something to a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    /// A support agent, in the panel.
    Agent {
        /// Which agent.
        agent_id: AgentId,
    },
    /// The ticket's customer, on Telegram.
    Customer,
    /// Ledgerdesk itself (auto-close, schedules).
    System,
}

/// Where the conversation happens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// The customer's private chat with the bot.
    #[default]
    Telegram,
}

/// The lifecycle of a ticket: new → open → pending → resolved → closed, with reopen from
/// resolved back to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    /// Nobody has worked on it yet.
    New,
    /// An agent is working on it.
    Open,
    /// Waiting for the customer.
    Pending,
    /// Solved; the customer may still reopen it within the reopen window, and may rate it.
    Resolved,
    /// Final; nothing more can be said on it.
    Closed,
}

/// The statuses an agent sets while working a ticket (resolve, close and reopen have their own
/// commands and events because other rules hang on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkStatus {
    /// Being worked on.
    Open,
    /// Waiting for the customer.
    Pending,
}

impl From<WorkStatus> for TicketStatus {
    fn from(status: WorkStatus) -> Self {
        match status {
            WorkStatus::Open => Self::Open,
            WorkStatus::Pending => Self::Pending,
        }
    }
}

/// How urgent a ticket is.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Can wait.
    Low,
    /// The default.
    #[default]
    Normal,
    /// Soon.
    High,
    /// Now.
    Urgent,
}

/// `ticket.opened` v2: a customer started a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketOpened {
    /// The new ticket.
    pub ticket_id: TicketId,
    /// Whose ticket it is.
    pub customer: CustomerId,
    /// The category, when categories are used.
    pub category: Option<CategoryId>,
    /// Where the conversation happens (added in v2).
    pub channel: Channel,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.opened` v1, written before tickets had a channel. Every v1 ticket came from Telegram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketOpenedV1 {
    /// The new ticket.
    pub ticket_id: TicketId,
    /// Whose ticket it is.
    pub customer: CustomerId,
    /// The category, when categories are used.
    pub category: Option<CategoryId>,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<TicketOpenedV1> for TicketOpened {
    fn from(v1: TicketOpenedV1) -> Self {
        Self {
            ticket_id: v1.ticket_id,
            customer: v1.customer,
            category: v1.category,
            channel: Channel::Telegram,
            at: v1.at,
        }
    }
}

/// `ticket.customer_message_posted`: the customer wrote on the ticket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMessagePosted {
    /// Our id for the message.
    pub message_id: MessageId,
    /// Telegram's id for it.
    pub telegram_message_id: TelegramMessageId,
    /// The Telegram message it replies to.
    pub reply_to: Option<TelegramMessageId>,
    /// What kind of message (readable without the content).
    pub kind: MessageKind,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: body, caption, forward origin.
    pub content: MessageContent,
}

/// `ticket.customer_message_edited`: the customer edited a message on Telegram.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMessageEdited {
    /// Our id for the message.
    pub message_id: MessageId,
    /// Telegram's id for it.
    pub telegram_message_id: TelegramMessageId,
    /// What kind of message it is now.
    pub kind: MessageKind,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: the new body, caption and forward origin.
    pub content: MessageContent,
}

/// `ticket.agent_replied`: an agent answered the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReplied {
    /// Our id for the reply; delivery outcomes refer to it.
    pub message_id: MessageId,
    /// Who replied.
    pub agent: AgentId,
    /// The quick-reply template it started from.
    pub template: Option<TemplateId>,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: text and media.
    pub content: ReplyContent,
    /// Telegram's id of the message in the customer's chat it answers (absent in replies
    /// recorded before replies could quote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<TelegramMessageId>,
}

/// The text of an internal note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteContent {
    /// At most 4096 characters.
    pub text: String,
}

/// `ticket.note_added`: an agent left a note only agents see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteAdded {
    /// Our id for the note.
    pub note_id: MessageId,
    /// Who wrote it.
    pub agent: AgentId,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: the text.
    pub content: NoteContent,
}

/// `ticket.assigned`: an agent now owns the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketAssigned {
    /// The new assignee.
    pub agent: AgentId,
    /// Who assigned.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.unassigned`: nobody owns the ticket any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketUnassigned {
    /// The previous assignee.
    pub agent: AgentId,
    /// Who unassigned.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.status_changed`: the ticket moved between new, open and pending.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChanged {
    /// The status before.
    pub from: TicketStatus,
    /// The status now.
    pub to: TicketStatus,
    /// Who moved it.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.resolved`, `ticket.reopened`, `ticket.closed`: a lifecycle step and who took it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleStep {
    /// Who took the step.
    pub by: Actor,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.priority_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PriorityChanged {
    /// The new priority.
    pub priority: Priority,
    /// Who changed it.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.category_changed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryChanged {
    /// The new category (`None`: uncategorised).
    pub category: Option<CategoryId>,
    /// Who changed it.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.tag_added` and `ticket.tag_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagChanged {
    /// The tag, trimmed and lower-cased.
    pub tag: String,
    /// Who changed it.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.reply_delivered`: Telegram accepted an agent reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyDelivered {
    /// The reply.
    pub message_id: MessageId,
    /// Telegram's id for the sent message.
    pub telegram_message_id: TelegramMessageId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.reply_delivery_failed`: Telegram refused an agent reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyDeliveryFailed {
    /// The reply.
    pub message_id: MessageId,
    /// What Telegram said, for agents.
    pub reason: String,
    /// Whether sending again may work (rate limit, network) or not (bot blocked).
    pub retryable: bool,
    /// When.
    pub at: DateTime<Utc>,
}

/// `ticket.reply_delivery_retry_requested`: an agent asked for a failed reply to be sent
/// again; it is pending until its next outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyDeliveryRetryRequested {
    /// The reply.
    pub message_id: MessageId,
    /// Who asked.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// The free-text part of a CSAT rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingComment {
    /// At most 1024 characters.
    pub comment: Option<String>,
}

/// `ticket.rated`: the customer rated the resolved ticket (CSAT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketRated {
    /// 1 (bad) to 5 (great).
    pub rating: u8,
    /// When.
    pub at: DateTime<Utc>,
    /// Personal data: the comment.
    pub content: RatingComment,
}

event_enum! {
    /// Everything that can happen to a ticket.
    #[derive(Debug, Clone, PartialEq)]
    pub enum TicketEvent {
        /// The ticket was opened.
        Opened(TicketOpened) = "ticket.opened" v 2, upcast [1 => TicketOpenedV1];
        /// The customer wrote.
        CustomerMessagePosted(CustomerMessagePosted) = "ticket.customer_message_posted" v 1;
        /// The customer edited a message.
        CustomerMessageEdited(CustomerMessageEdited) = "ticket.customer_message_edited" v 1;
        /// An agent replied.
        AgentReplied(AgentReplied) = "ticket.agent_replied" v 1;
        /// An agent left an internal note.
        NoteAdded(NoteAdded) = "ticket.note_added" v 1;
        /// An agent was assigned.
        Assigned(TicketAssigned) = "ticket.assigned" v 1;
        /// The assignee was removed.
        Unassigned(TicketUnassigned) = "ticket.unassigned" v 1;
        /// Moved between new, open and pending.
        StatusChanged(StatusChanged) = "ticket.status_changed" v 1;
        /// Resolved.
        Resolved(LifecycleStep) = "ticket.resolved" v 1;
        /// Reopened after resolve.
        Reopened(LifecycleStep) = "ticket.reopened" v 1;
        /// Closed for good.
        Closed(LifecycleStep) = "ticket.closed" v 1;
        /// Priority changed.
        PriorityChanged(PriorityChanged) = "ticket.priority_changed" v 1;
        /// Category changed.
        CategoryChanged(CategoryChanged) = "ticket.category_changed" v 1;
        /// A tag was added.
        TagAdded(TagChanged) = "ticket.tag_added" v 1;
        /// A tag was removed.
        TagRemoved(TagChanged) = "ticket.tag_removed" v 1;
        /// A reply reached Telegram.
        ReplyDelivered(ReplyDelivered) = "ticket.reply_delivered" v 1;
        /// A reply did not reach Telegram.
        ReplyDeliveryFailed(ReplyDeliveryFailed) = "ticket.reply_delivery_failed" v 1;
        /// An agent asked for a failed reply to be sent again.
        ReplyDeliveryRetryRequested(ReplyDeliveryRetryRequested) =
            "ticket.reply_delivery_retry_requested" v 1;
        /// The customer rated the ticket.
        Rated(TicketRated) = "ticket.rated" v 1;
    }
}
