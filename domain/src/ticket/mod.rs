//! The ticket aggregate: one support conversation between a customer and the team
//! (`ticket-<uuid>` stream).
//!
//! A ticket owns its own rules: the status lifecycle (new → open → pending → resolved → closed,
//! reopen from resolved), no agent reply or note on a closed ticket, a customer message after
//! "resolved" reopening it within the reopen window, rating only after resolve, and delivery
//! outcomes only for replies it has. It does not own "one open ticket per customer": that rule
//! spans tickets and lives with the customer (see [`crate::flow`]).

mod command;
mod event;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};

pub use command::{
    AddInternalNote, EditCustomerMessage, OpenTicket, PostCustomerMessage, ReplyAsAgent,
    TicketCommand, TicketError,
};
pub use event::{
    Actor, AgentReplied, CategoryChanged, Channel, CustomerMessageEdited, CustomerMessagePosted,
    LifecycleStep, NoteAdded, NoteContent, Priority, PriorityChanged, RatingComment,
    ReplyDelivered, ReplyDeliveryFailed, ReplyDeliveryRetryRequested, StatusChanged, TagChanged,
    TicketAssigned, TicketEvent, TicketOpened, TicketOpenedV1, TicketRated, TicketStatus,
    TicketUnassigned, WorkStatus,
};

use crate::content::{CustomerMessage, TelegramMessageId};
use crate::decider::Decider;
use crate::ids::{AgentId, CategoryId, CustomerId, MessageId, TicketId};
use crate::validate::{self, InvalidInput};

/// Where an agent reply stands with Telegram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Not yet sent, or sending.
    Pending,
    /// Telegram accepted it.
    Delivered(TelegramMessageId),
    /// Telegram refused it.
    Failed {
        /// Whether sending again may work.
        retryable: bool,
    },
}

/// A ticket that has been opened. Read it; change it only through events.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketState {
    /// The ticket.
    pub id: TicketId,
    /// Whose ticket.
    pub customer: CustomerId,
    /// Its category.
    pub category: Option<CategoryId>,
    /// Where the conversation happens.
    pub channel: Channel,
    /// Where it stands.
    pub status: TicketStatus,
    /// How urgent.
    pub priority: Priority,
    /// Who owns it.
    pub assignee: Option<AgentId>,
    /// Its tags, trimmed and lower-cased.
    pub tags: BTreeSet<String>,
    /// When it was opened.
    pub opened_at: DateTime<Utc>,
    /// When it was last resolved, while resolved or closed after a resolve.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The CSAT rating of the current resolve.
    pub rating: Option<u8>,
    /// Every message id used on the ticket (customer messages, replies, notes). Hashed, not
    /// ordered: a busy ticket holds thousands, and every reply looks one up and adds one.
    pub message_ids: HashSet<MessageId>,
    /// Customer messages by Telegram id, to find them on edit.
    pub customer_messages: BTreeMap<TelegramMessageId, MessageId>,
    /// Agent replies and their delivery.
    pub replies: HashMap<MessageId, Delivery>,
}

/// A ticket's state: not opened yet, or opened (in any status).
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Ticket {
    /// No `ticket.opened` yet.
    #[default]
    NotOpened,
    /// Opened; see the status for where it stands.
    Opened(Box<TicketState>),
}

impl Ticket {
    /// The state, once opened.
    #[must_use]
    pub fn state(&self) -> Option<&TicketState> {
        match self {
            Self::NotOpened => None,
            Self::Opened(state) => Some(state),
        }
    }

    /// The status, once opened.
    #[must_use]
    pub fn status(&self) -> Option<TicketStatus> {
        self.state().map(|t| t.status)
    }
}

impl TicketState {
    /// Whether a customer message at `at` still reopens this resolved ticket.
    #[must_use]
    pub fn within_reopen_window(&self, window: TimeDelta, at: DateTime<Utc>) -> bool {
        self.status == TicketStatus::Resolved
            && self
                .resolved_at
                .is_some_and(|resolved| at <= resolved + window.max(TimeDelta::zero()))
    }

    fn decide(&self, command: &TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        use TicketCommand as C;
        use TicketEvent as E;
        use TicketStatus as S;

        let closed = self.status == S::Closed;
        match command {
            C::Open(_) => Err(TicketError::AlreadyOpened),
            // Delivery outcomes and ratings may arrive after the close.
            C::RecordDelivery {
                message_id,
                telegram_message_id,
                at,
            } => match self.replies.get(message_id) {
                None => Err(TicketError::UnknownMessage),
                Some(Delivery::Delivered(id)) if id == telegram_message_id => Ok(vec![]),
                Some(Delivery::Delivered(_)) => Err(TicketError::AlreadyDelivered),
                Some(_) => Ok(vec![E::ReplyDelivered(ReplyDelivered {
                    message_id: *message_id,
                    telegram_message_id: *telegram_message_id,
                    at: *at,
                })]),
            },
            C::RecordDeliveryFailure {
                message_id,
                reason,
                retryable,
                at,
            } => {
                validate::required("failure reason", reason, validate::MAX_REASON_CHARS)?;
                match self.replies.get(message_id) {
                    None => Err(TicketError::UnknownMessage),
                    Some(Delivery::Delivered(_)) => Err(TicketError::AlreadyDelivered),
                    Some(_) => Ok(vec![E::ReplyDeliveryFailed(ReplyDeliveryFailed {
                        message_id: *message_id,
                        reason: reason.clone(),
                        retryable: *retryable,
                        at: *at,
                    })]),
                }
            }
            C::Rate {
                rating,
                comment,
                at,
            } => {
                if !(1..=5).contains(rating) {
                    return Err(InvalidInput::OutOfRange {
                        field: "rating",
                        min: 1,
                        max: 5,
                    }
                    .into());
                }
                validate::optional("comment", comment.as_deref(), validate::MAX_REASON_CHARS)?;
                if self.resolved_at.is_none() || !matches!(self.status, S::Resolved | S::Closed) {
                    return Err(TicketError::NotResolved);
                }
                if self.rating.is_some() {
                    return Err(TicketError::AlreadyRated);
                }
                Ok(vec![E::Rated(TicketRated {
                    rating: *rating,
                    at: *at,
                    content: RatingComment {
                        comment: comment.clone(),
                    },
                })])
            }
            C::Close { .. } if closed => Ok(vec![]),
            _ if closed => Err(TicketError::Closed),
            C::Close { by, at } => Ok(vec![E::Closed(LifecycleStep { by: *by, at: *at })]),
            C::RetryDelivery { message_id, by, at } => match self.replies.get(message_id) {
                None => Err(TicketError::UnknownMessage),
                Some(Delivery::Delivered(_)) => Err(TicketError::AlreadyDelivered),
                // Already on its way (asked before, or never failed): nothing to do.
                Some(Delivery::Pending) => Ok(vec![]),
                Some(Delivery::Failed { .. }) => Ok(vec![E::ReplyDeliveryRetryRequested(
                    ReplyDeliveryRetryRequested {
                        message_id: *message_id,
                        by: *by,
                        at: *at,
                    },
                )]),
            },
            C::PostCustomerMessage(post) => self.post_customer_message(post),
            C::EditCustomerMessage(edit) => {
                edit.content.validate()?;
                let message_id = self
                    .customer_messages
                    .get(&edit.telegram_message_id)
                    .ok_or(TicketError::UnknownMessage)?;
                Ok(vec![E::CustomerMessageEdited(CustomerMessageEdited {
                    message_id: *message_id,
                    telegram_message_id: edit.telegram_message_id,
                    kind: edit.content.kind(),
                    at: edit.at,
                    content: edit.content.clone(),
                })])
            }
            C::ReplyAsAgent(reply) => {
                reply.content.validate()?;
                self.fresh_message_id(reply.message_id)?;
                let reply_to = reply
                    .reply_to
                    .map(|quoted| self.telegram_id_of(quoted))
                    .transpose()?;
                let mut events = vec![E::AgentReplied(AgentReplied {
                    message_id: reply.message_id,
                    agent: reply.agent,
                    template: reply.template,
                    at: reply.at,
                    content: reply.content.clone(),
                    reply_to,
                })];
                if self.status == S::New {
                    events.push(self.status_change(
                        S::Open,
                        Actor::Agent {
                            agent_id: reply.agent,
                        },
                        reply.at,
                    ));
                }
                Ok(events)
            }
            C::AddInternalNote(note) => {
                validate::required("note", &note.text, validate::MAX_TEXT_CHARS)?;
                self.fresh_message_id(note.note_id)?;
                Ok(vec![E::NoteAdded(NoteAdded {
                    note_id: note.note_id,
                    agent: note.agent,
                    at: note.at,
                    content: NoteContent {
                        text: note.text.clone(),
                    },
                })])
            }
            C::Assign { agent, .. } if self.assignee == Some(*agent) => Ok(vec![]),
            C::Assign { agent, by, at } => Ok(vec![E::Assigned(TicketAssigned {
                agent: *agent,
                by: *by,
                at: *at,
            })]),
            C::Unassign { by, at } => Ok(self
                .assignee
                .map(|agent| {
                    E::Unassigned(TicketUnassigned {
                        agent,
                        by: *by,
                        at: *at,
                    })
                })
                .into_iter()
                .collect()),
            C::SetStatus { status, by, at } => match self.status {
                S::Resolved => Err(TicketError::Resolved),
                current if current == TicketStatus::from(*status) => Ok(vec![]),
                _ => Ok(vec![self.status_change((*status).into(), *by, *at)]),
            },
            C::Resolve { .. } if self.status == S::Resolved => Ok(vec![]),
            C::Resolve { by, at } => Ok(vec![E::Resolved(LifecycleStep { by: *by, at: *at })]),
            C::Reopen { by, at } if self.status == S::Resolved => {
                Ok(vec![E::Reopened(LifecycleStep { by: *by, at: *at })])
            }
            C::Reopen { .. } => Err(TicketError::NotResolved),
            C::SetPriority { priority, .. } if self.priority == *priority => Ok(vec![]),
            C::SetPriority { priority, by, at } => Ok(vec![E::PriorityChanged(PriorityChanged {
                priority: *priority,
                by: *by,
                at: *at,
            })]),
            C::ChangeCategory { category, .. } if self.category == *category => Ok(vec![]),
            C::ChangeCategory { category, by, at } => {
                Ok(vec![E::CategoryChanged(CategoryChanged {
                    category: *category,
                    by: *by,
                    at: *at,
                })])
            }
            C::AddTag { tag, by, at } => {
                let tag = normalize_tag(tag)?;
                if self.tags.contains(&tag) {
                    return Ok(vec![]);
                }
                validate::count("tags", self.tags.len() + 1, validate::MAX_TAGS)?;
                Ok(vec![E::TagAdded(TagChanged {
                    tag,
                    by: *by,
                    at: *at,
                })])
            }
            C::RemoveTag { tag, by, at } => {
                let tag = tag.trim().to_lowercase();
                if !self.tags.contains(&tag) {
                    return Ok(vec![]);
                }
                Ok(vec![E::TagRemoved(TagChanged {
                    tag,
                    by: *by,
                    at: *at,
                })])
            }
        }
    }

    fn post_customer_message(
        &self,
        post: &PostCustomerMessage,
    ) -> Result<Vec<TicketEvent>, TicketError> {
        post.message.content.validate()?;
        if self
            .customer_messages
            .contains_key(&post.message.telegram_message_id)
        {
            // Telegram delivered the same update again.
            return Ok(vec![]);
        }
        self.fresh_message_id(post.message.message_id)?;
        let mut events = Vec::with_capacity(2);
        match self.status {
            TicketStatus::Resolved if self.within_reopen_window(post.reopen_window, post.at) => {
                events.push(TicketEvent::Reopened(LifecycleStep {
                    by: Actor::Customer,
                    at: post.at,
                }));
            }
            TicketStatus::Resolved => return Err(TicketError::ReopenWindowPassed),
            TicketStatus::Closed => return Err(TicketError::Closed),
            TicketStatus::New | TicketStatus::Open => {}
            TicketStatus::Pending => {
                events.push(self.status_change(TicketStatus::Open, Actor::Customer, post.at));
            }
        }
        events.push(TicketEvent::CustomerMessagePosted(posted(
            &post.message,
            post.at,
        )));
        Ok(events)
    }

    fn fresh_message_id(&self, id: MessageId) -> Result<(), TicketError> {
        if self.message_ids.contains(&id) {
            return Err(TicketError::DuplicateMessageId);
        }
        Ok(())
    }

    /// The Telegram id of a message of this ticket a reply may quote: a customer message, or
    /// a reply Telegram accepted.
    fn telegram_id_of(&self, message: MessageId) -> Result<TelegramMessageId, TicketError> {
        if let Some(delivery) = self.replies.get(&message) {
            return match delivery {
                Delivery::Delivered(id) => Ok(*id),
                Delivery::Pending | Delivery::Failed { .. } => Err(TicketError::NotQuotable),
            };
        }
        self.customer_messages
            .iter()
            .find_map(|(telegram, ours)| (*ours == message).then_some(*telegram))
            .ok_or(if self.message_ids.contains(&message) {
                TicketError::NotQuotable
            } else {
                TicketError::UnknownMessage
            })
    }

    fn status_change(&self, to: TicketStatus, by: Actor, at: DateTime<Utc>) -> TicketEvent {
        TicketEvent::StatusChanged(StatusChanged {
            from: self.status,
            to,
            by,
            at,
        })
    }

    fn apply(&mut self, event: &TicketEvent) {
        use TicketEvent as E;
        match event {
            E::Opened(_) => {}
            E::CustomerMessagePosted(posted) => {
                self.message_ids.insert(posted.message_id);
                self.customer_messages
                    .insert(posted.telegram_message_id, posted.message_id);
            }
            E::CustomerMessageEdited(_) => {}
            E::AgentReplied(reply) => {
                self.message_ids.insert(reply.message_id);
                self.replies.insert(reply.message_id, Delivery::Pending);
            }
            E::NoteAdded(note) => {
                self.message_ids.insert(note.note_id);
            }
            E::Assigned(assigned) => self.assignee = Some(assigned.agent),
            E::Unassigned(_) => self.assignee = None,
            E::StatusChanged(change) => {
                // Only the working statuses travel through this event; lifecycle steps have
                // their own, so a stray stored value cannot bypass them.
                if matches!(
                    change.to,
                    TicketStatus::New | TicketStatus::Open | TicketStatus::Pending
                ) && self.status != TicketStatus::Closed
                {
                    self.status = change.to;
                }
            }
            E::Resolved(step) => {
                if self.status != TicketStatus::Closed {
                    self.status = TicketStatus::Resolved;
                    self.resolved_at = Some(step.at);
                    self.rating = None;
                }
            }
            E::Reopened(_) => {
                if self.status != TicketStatus::Closed {
                    self.status = TicketStatus::Open;
                    self.resolved_at = None;
                    self.rating = None;
                }
            }
            E::Closed(_) => self.status = TicketStatus::Closed,
            E::PriorityChanged(change) => self.priority = change.priority,
            E::CategoryChanged(change) => self.category = change.category,
            E::TagAdded(change) => {
                self.tags.insert(change.tag.clone());
            }
            E::TagRemoved(change) => {
                self.tags.remove(&change.tag);
            }
            E::ReplyDelivered(delivered) => {
                if let Some(delivery) = self.replies.get_mut(&delivered.message_id) {
                    *delivery = Delivery::Delivered(delivered.telegram_message_id);
                }
            }
            E::ReplyDeliveryFailed(failed) => {
                if let Some(delivery) = self.replies.get_mut(&failed.message_id) {
                    *delivery = Delivery::Failed {
                        retryable: failed.retryable,
                    };
                }
            }
            E::ReplyDeliveryRetryRequested(retry) => {
                if let Some(delivery) = self.replies.get_mut(&retry.message_id) {
                    *delivery = Delivery::Pending;
                }
            }
            E::Rated(rated) => {
                if self.resolved_at.is_some() {
                    self.rating = Some(rated.rating);
                }
            }
        }
    }
}

/// Trims and lower-cases a tag, and checks its bounds.
fn normalize_tag(tag: &str) -> Result<String, InvalidInput> {
    let tag = tag.trim().to_lowercase();
    validate::required("tag", &tag, validate::MAX_TAG_CHARS)?;
    if tag.chars().any(char::is_control) {
        return Err(InvalidInput::Malformed {
            field: "tag",
            why: "it contains control characters",
        });
    }
    Ok(tag)
}

fn posted(message: &CustomerMessage, at: DateTime<Utc>) -> CustomerMessagePosted {
    CustomerMessagePosted {
        message_id: message.message_id,
        telegram_message_id: message.telegram_message_id,
        reply_to: message.reply_to,
        kind: message.content.kind(),
        at,
        content: message.content.clone(),
    }
}

impl Decider for Ticket {
    type Command = TicketCommand;
    type Event = TicketEvent;
    type Error = TicketError;

    fn decide(&self, command: &TicketCommand) -> Result<Vec<TicketEvent>, TicketError> {
        match (self, command) {
            (Self::NotOpened, TicketCommand::Open(open)) => {
                open.first_message.content.validate()?;
                Ok(vec![
                    TicketEvent::Opened(TicketOpened {
                        ticket_id: open.ticket_id,
                        customer: open.customer,
                        category: open.category,
                        channel: open.channel,
                        at: open.at,
                    }),
                    TicketEvent::CustomerMessagePosted(posted(&open.first_message, open.at)),
                ])
            }
            (Self::NotOpened, _) => Err(TicketError::NotOpened),
            (Self::Opened(state), command) => state.decide(command),
        }
    }

    fn evolve(self, event: &TicketEvent) -> Self {
        match (self, event) {
            (Self::NotOpened, TicketEvent::Opened(opened)) => Self::Opened(Box::new(TicketState {
                id: opened.ticket_id,
                customer: opened.customer,
                category: opened.category,
                channel: opened.channel,
                status: TicketStatus::New,
                priority: Priority::default(),
                assignee: None,
                tags: BTreeSet::new(),
                opened_at: opened.at,
                resolved_at: None,
                rating: None,
                message_ids: HashSet::new(),
                customer_messages: BTreeMap::new(),
                replies: HashMap::new(),
            })),
            // Events before the opening cannot happen in a well-formed stream; ignoring them
            // keeps evolve total.
            (Self::NotOpened, _) => Self::NotOpened,
            (Self::Opened(mut state), event) => {
                state.apply(event);
                Self::Opened(state)
            }
        }
    }
}
