//! Ticket commands and rejections.

use chrono::{DateTime, TimeDelta, Utc};

use super::event::{Actor, Channel, Priority, WorkStatus};
use crate::content::{CustomerMessage, MessageContent, ReplyContent, TelegramMessageId};
use crate::ids::{AgentId, CategoryId, CustomerId, MessageId, TemplateId, TicketId};
use crate::validate::InvalidInput;

/// Open a ticket with the customer's first message.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenTicket {
    /// The id for the new ticket.
    pub ticket_id: TicketId,
    /// Whose ticket.
    pub customer: CustomerId,
    /// The category, when categories are used.
    pub category: Option<CategoryId>,
    /// Where the conversation happens.
    pub channel: Channel,
    /// The message that opened it.
    pub first_message: CustomerMessage,
    /// When.
    pub at: DateTime<Utc>,
}

/// Post a customer message on the ticket. On a resolved ticket this reopens it when the
/// message arrives within `reopen_window` of the resolve (the window comes from the settings).
#[derive(Debug, Clone, PartialEq)]
pub struct PostCustomerMessage {
    /// The message.
    pub message: CustomerMessage,
    /// How long after a resolve a customer message still reopens the ticket.
    pub reopen_window: TimeDelta,
    /// When.
    pub at: DateTime<Utc>,
}

/// Record that the customer edited a message on Telegram.
#[derive(Debug, Clone, PartialEq)]
pub struct EditCustomerMessage {
    /// Telegram's id for the edited message.
    pub telegram_message_id: TelegramMessageId,
    /// The content after the edit.
    pub content: MessageContent,
    /// When.
    pub at: DateTime<Utc>,
}

/// Send the customer an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyAsAgent {
    /// The id for the reply (delivery outcomes refer to it).
    pub message_id: MessageId,
    /// Who replies.
    pub agent: AgentId,
    /// The quick-reply template it started from.
    pub template: Option<TemplateId>,
    /// Text and/or media.
    pub content: ReplyContent,
    /// The message of this ticket it answers (a customer message, or a reply Telegram has
    /// accepted): Telegram shows the reply quoting it.
    pub reply_to: Option<MessageId>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Leave a note only agents see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddInternalNote {
    /// The id for the note.
    pub note_id: MessageId,
    /// Who writes it.
    pub agent: AgentId,
    /// The note, at most 4096 characters.
    pub text: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Everything one can ask of a ticket.
#[derive(Debug, Clone, PartialEq)]
pub enum TicketCommand {
    /// Open a new ticket.
    Open(OpenTicket),
    /// Post a customer message (reopens a recently resolved ticket).
    PostCustomerMessage(PostCustomerMessage),
    /// Record a customer's edit.
    EditCustomerMessage(EditCustomerMessage),
    /// Reply to the customer.
    ReplyAsAgent(ReplyAsAgent),
    /// Add an internal note.
    AddInternalNote(AddInternalNote),
    /// Give the ticket to an agent.
    Assign {
        /// The new assignee.
        agent: AgentId,
        /// Who assigns.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Take the ticket away from its assignee.
    Unassign {
        /// Who unassigns.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Move the ticket to open or pending.
    SetStatus {
        /// The status wanted.
        status: WorkStatus,
        /// Who moves it.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Mark the ticket solved.
    Resolve {
        /// Who resolves.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Reopen a resolved ticket.
    Reopen {
        /// Who reopens.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Close the ticket for good.
    Close {
        /// Who closes.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change the priority.
    SetPriority {
        /// The new priority.
        priority: Priority,
        /// Who changes it.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change the category.
    ChangeCategory {
        /// The new category.
        category: Option<CategoryId>,
        /// Who changes it.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Add a tag (trimmed and lower-cased).
    AddTag {
        /// The tag.
        tag: String,
        /// Who adds it.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove a tag.
    RemoveTag {
        /// The tag.
        tag: String,
        /// Who removes it.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that Telegram accepted a reply.
    RecordDelivery {
        /// The reply.
        message_id: MessageId,
        /// Telegram's id for the sent message.
        telegram_message_id: TelegramMessageId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record that Telegram refused a reply.
    RecordDeliveryFailure {
        /// The reply.
        message_id: MessageId,
        /// What Telegram said.
        reason: String,
        /// Whether sending again may work.
        retryable: bool,
        /// When.
        at: DateTime<Utc>,
    },
    /// Send a reply whose delivery failed again (an agent asks for it).
    RetryDelivery {
        /// The reply.
        message_id: MessageId,
        /// Who asks.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record the customer's satisfaction rating.
    Rate {
        /// 1 to 5.
        rating: u8,
        /// Optional comment.
        comment: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Why a ticket command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    /// The ticket has not been opened.
    #[error("this ticket does not exist")]
    NotOpened,
    /// Opening a ticket twice.
    #[error("this ticket is already open")]
    AlreadyOpened,
    /// Anything but delivery outcomes and ratings on a closed ticket.
    #[error("this ticket is closed")]
    Closed,
    /// Reopening or rating a ticket that is not resolved.
    #[error("this ticket is not resolved")]
    NotResolved,
    /// Setting open/pending on a resolved ticket.
    #[error("this ticket is resolved; reopen it first")]
    Resolved,
    /// A customer message after the reopen window.
    #[error("this ticket was resolved too long ago to reopen; a new ticket is needed")]
    ReopenWindowPassed,
    /// A message id used twice.
    #[error("a message with this id already exists on the ticket")]
    DuplicateMessageId,
    /// A delivery outcome or edit for a message the ticket does not have.
    #[error("there is no such message on this ticket")]
    UnknownMessage,
    /// A reply quoting a note, or a reply Telegram has not accepted (yet).
    #[error("only a customer message or a delivered reply can be quoted")]
    NotQuotable,
    /// A failure or another Telegram id for a reply already delivered.
    #[error("this reply was already delivered")]
    AlreadyDelivered,
    /// A second rating for the same resolve.
    #[error("this ticket was already rated")]
    AlreadyRated,
    /// An input out of bounds.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}
