//! Decisions that write to more than one stream, returned as events per stream.
//!
//! # Who owns "one open ticket per customer"
//!
//! The rule spans tickets, so no single ticket can enforce it. The **customer** aggregate owns
//! it: the customer stream records the lifecycle of the customer's tickets
//! (`customer.ticket_opened`, `…_resolved`, `…_reopened`, `…_closed`, `…_recategorized`), so the
//! customer state knows, per category, which ticket is active and which were resolved when.
//! Routing an incoming message — post to the active ticket, reopen a recently resolved one, or
//! open a new one — is then a pure decision over the customer and at most one ticket.
//!
//! Every decision that changes a ticket's lifecycle therefore writes two streams: the ticket's
//! and its customer's. The functions here take the states they need and return a [`Decision`]:
//! the events per stream. The command service appends all of them atomically in one call, with
//! optimistic concurrency on each stream written, so two messages racing to open a ticket for
//! the same customer conflict on the customer stream and one of them is retried (and then
//! posts to the ticket the other opened).
//!
//! - [`route_customer_message`]: a message from Telegram. Call [`message_target`] first to learn
//!   which ticket stream to load (if any).
//! - [`decide_for_ticket`]: any other ticket command; adds the customer notes its events imply
//!   and rejects it when it would leave two active tickets in one category (reopening, or
//!   moving a ticket into a category that already has one).
//!
//! A ticket command that touches no lifecycle (a reply, a note, a tag) yields a decision with
//! the ticket stream only, so using [`decide_for_ticket`] for every ticket command is safe.

use chrono::{DateTime, TimeDelta, Utc};

use crate::any_event::AnyEvent;
use crate::content::CustomerMessage;
use crate::customer::{
    Customer, CustomerCommand, CustomerError, CustomerEvent, CustomerProfile, CustomerState,
    TicketNoted, TicketStepNoted,
};
use crate::decider::Decider;
use crate::ids::{CategoryId, CustomerId, StreamId, TicketId};
use crate::ticket::{
    Channel, OpenTicket, PostCustomerMessage, Ticket, TicketCommand, TicketError, TicketEvent,
    TicketStatus,
};

/// The events one stream receives from a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamWrite {
    /// The stream.
    pub stream: StreamId,
    /// Its new events, in order (never empty).
    pub events: Vec<AnyEvent>,
}

/// What one decision writes: events per stream, to append atomically. Streams that receive
/// nothing are left out; an empty decision means there is nothing to do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decision {
    /// One entry per stream written, customer stream first.
    pub writes: Vec<StreamWrite>,
}

impl Decision {
    /// Adds the events for `stream`, if any.
    fn push<E: Into<AnyEvent>>(&mut self, stream: StreamId, events: Vec<E>) {
        if !events.is_empty() {
            self.writes.push(StreamWrite {
                stream,
                events: events.into_iter().map(Into::into).collect(),
            });
        }
    }

    /// Whether nothing is written.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The events written to `stream` (empty when none).
    #[must_use]
    pub fn events_for(&self, stream: StreamId) -> &[AnyEvent] {
        self.writes
            .iter()
            .find(|write| write.stream == stream)
            .map_or(&[], |write| write.events.as_slice())
    }
}

/// Why a multi-stream decision was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// The customer side refused (banned, a second active ticket in a category, bad profile).
    #[error(transparent)]
    Customer(#[from] CustomerError),
    /// The ticket side refused.
    #[error(transparent)]
    Ticket(#[from] TicketError),
    /// The caller loaded another ticket than [`message_target`] names.
    #[error("the message must go to ticket {expected:?}, but ticket {given:?} was loaded")]
    WrongTicket {
        /// The ticket the message goes to (`None`: a new one).
        expected: Option<TicketId>,
        /// The ticket that was passed in.
        given: Option<TicketId>,
    },
    /// The ticket belongs to another customer than the one passed in.
    #[error("ticket belongs to customer {owner}, not {given}")]
    WrongCustomer {
        /// The ticket's customer.
        owner: CustomerId,
        /// The customer passed in.
        given: CustomerId,
    },
}

/// A message from a customer on Telegram, to route to the right ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteCustomerMessage {
    /// The sender.
    pub customer: CustomerId,
    /// Their profile as Telegram sent it with the message (registers or updates the customer).
    pub profile: CustomerProfile,
    /// The category the message belongs to (`None` when categories are not used).
    pub category: Option<CategoryId>,
    /// The id for the ticket, should a new one be needed.
    pub new_ticket_id: TicketId,
    /// Where the conversation happens.
    pub channel: Channel,
    /// The message.
    pub message: CustomerMessage,
    /// The reopen window from the settings.
    pub reopen_window: TimeDelta,
    /// When it arrived.
    pub at: DateTime<Utc>,
}

/// Which ticket a customer message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageTarget {
    /// An existing ticket: the active one, or a resolved one within the reopen window. Load it
    /// and pass it to [`route_customer_message`].
    Existing(TicketId),
    /// A new ticket: pass no ticket.
    New,
}

/// Which ticket a message from `customer` in `category` at `at` goes to.
#[must_use]
pub fn message_target(
    customer: &Customer,
    category: Option<CategoryId>,
    reopen_window: TimeDelta,
    at: DateTime<Utc>,
) -> MessageTarget {
    customer
        .state()
        .and_then(|state| {
            state
                .active_ticket(category)
                .or_else(|| state.reopenable_ticket(category, reopen_window, at))
        })
        .map_or(MessageTarget::New, MessageTarget::Existing)
}

/// What routing did with the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteOutcome {
    /// Posted to the active ticket.
    Posted,
    /// Reopened a resolved ticket and posted to it.
    Reopened,
    /// Opened a new ticket with it.
    Opened,
    /// Telegram delivered the same message again; nothing to write.
    AlreadyPosted,
}

/// The result of routing: where the message went and what to write.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutedMessage {
    /// The ticket the message went to.
    pub ticket_id: TicketId,
    /// What happened.
    pub outcome: RouteOutcome,
    /// The events per stream.
    pub decision: Decision,
}

/// Routes a customer message: registers or updates the customer, then posts to the active
/// ticket of the category, reopens the most recently resolved one within the reopen window, or
/// opens a new ticket. `ticket` must be the ticket [`message_target`] names (or `None` for
/// [`MessageTarget::New`]).
///
/// A message from a customer who had blocked the bot also records that they unblocked it.
///
/// # Errors
/// [`CustomerError::Banned`] for a banned customer, [`FlowError::WrongTicket`] when the wrong
/// ticket was loaded, and any validation error of the message or profile.
pub fn route_customer_message(
    customer: &Customer,
    ticket: Option<&Ticket>,
    cmd: &RouteCustomerMessage,
) -> Result<RoutedMessage, FlowError> {
    let mut customer_events = customer_side_of_message(customer, cmd)?;
    let customer_after = fold(customer.clone(), &customer_events);

    let given = ticket.and_then(Ticket::state).map(|t| t.id);
    let target = message_target(&customer_after, cmd.category, cmd.reopen_window, cmd.at);
    let (ticket_before, ticket_events) = match target {
        MessageTarget::Existing(id) => {
            let Some(ticket) = ticket.filter(|_| given == Some(id)) else {
                return Err(FlowError::WrongTicket {
                    expected: Some(id),
                    given,
                });
            };
            check_owner(ticket, cmd.customer)?;
            let post = TicketCommand::PostCustomerMessage(PostCustomerMessage {
                message: cmd.message.clone(),
                reopen_window: cmd.reopen_window,
                at: cmd.at,
            });
            match ticket.decide(&post) {
                Ok(events) => (ticket.clone(), events),
                // The customer's notes missed a close or a resolve: correct them and start a
                // new ticket, as the customer would have seen had the notes been there.
                Err(TicketError::Closed | TicketError::ReopenWindowPassed) => {
                    customer_events.extend(stale_ticket_note(ticket));
                    (Ticket::NotOpened, open_ticket(cmd)?)
                }
                Err(error) => return Err(error.into()),
            }
        }
        MessageTarget::New => {
            if given.is_some() {
                return Err(FlowError::WrongTicket {
                    expected: None,
                    given,
                });
            }
            (Ticket::NotOpened, open_ticket(cmd)?)
        }
    };

    let outcome = if ticket_events.is_empty() {
        RouteOutcome::AlreadyPosted
    } else if matches!(ticket_events.first(), Some(TicketEvent::Opened(_))) {
        RouteOutcome::Opened
    } else if matches!(ticket_events.first(), Some(TicketEvent::Reopened(_))) {
        RouteOutcome::Reopened
    } else {
        RouteOutcome::Posted
    };
    let ticket_after = fold(ticket_before.clone(), &ticket_events);
    let ticket_id = ticket_after
        .state()
        .map_or(cmd.new_ticket_id, |state| state.id);

    customer_events.extend(customer_notes(&ticket_before, &ticket_events));
    check_one_active_ticket(customer, &customer_events, ticket_id)?;

    let mut decision = Decision::default();
    decision.push(cmd.customer.stream(), customer_events);
    decision.push(ticket_id.stream(), ticket_events);
    Ok(RoutedMessage {
        ticket_id,
        outcome,
        decision,
    })
}

/// Decides any ticket command with its effect on the customer stream: lifecycle steps
/// (open, resolve, reopen, close, category change) are noted on the customer, and a command
/// that would leave the customer two active tickets in one category is rejected.
///
/// # Errors
/// The ticket's own rejections, [`CustomerError::AnotherTicketOpen`],
/// [`CustomerError::NotRegistered`] and [`FlowError::WrongCustomer`].
pub fn decide_for_ticket(
    customer: &Customer,
    ticket: &Ticket,
    command: &TicketCommand,
) -> Result<Decision, FlowError> {
    let owner = match (ticket.state(), command) {
        (Some(state), _) => state.customer,
        (None, TicketCommand::Open(open)) => open.customer,
        (None, _) => return Err(TicketError::NotOpened.into()),
    };
    let registered = customer.state().ok_or(CustomerError::NotRegistered)?;
    if registered.id != owner {
        return Err(FlowError::WrongCustomer {
            owner,
            given: registered.id,
        });
    }
    let ticket_events = ticket.decide(command)?;
    let notes = customer_notes(ticket, &ticket_events);
    // An opened ticket keeps its id; only an opening needs the events folded (and then the
    // state folded is empty, so the copy costs nothing).
    let ticket_id = match ticket.state() {
        Some(state) => Some(state.id),
        None => fold(ticket.clone(), &ticket_events)
            .state()
            .map(|state| state.id),
    };
    if let Some(ticket_id) = ticket_id {
        check_one_active_ticket(customer, &notes, ticket_id)?;
    }

    let mut decision = Decision::default();
    decision.push(owner.stream(), notes);
    if let Some(ticket_id) = ticket_id {
        decision.push(ticket_id.stream(), ticket_events);
    }
    Ok(decision)
}

/// The customer notes a ticket's new events imply, given the ticket before them.
#[must_use]
pub fn customer_notes(ticket: &Ticket, events: &[TicketEvent]) -> Vec<CustomerEvent> {
    let mut notes = Vec::new();
    // Most commands (replies, notes, tags) imply no note: skip copying the ticket, whose state
    // grows with every message.
    let noted = |event: &TicketEvent| {
        matches!(
            event,
            TicketEvent::Opened(_)
                | TicketEvent::Resolved(_)
                | TicketEvent::Reopened(_)
                | TicketEvent::Closed(_)
                | TicketEvent::CategoryChanged(_)
        )
    };
    if !events.iter().any(noted) {
        return notes;
    }
    let mut state = ticket.clone();
    for event in events {
        let ticket_id = match (&state, event) {
            (_, TicketEvent::Opened(opened)) => opened.ticket_id,
            (Ticket::Opened(t), _) => t.id,
            (Ticket::NotOpened, _) => continue,
        };
        let category = state.state().and_then(|t| t.category);
        let noted = |category, at| TicketNoted {
            ticket_id,
            category,
            at,
        };
        let step = |at| TicketStepNoted { ticket_id, at };
        let was_closed = state.status() == Some(TicketStatus::Closed);
        let note = match event {
            TicketEvent::Opened(opened) => Some(CustomerEvent::TicketOpened(noted(
                opened.category,
                opened.at,
            ))),
            _ if was_closed => None,
            TicketEvent::Resolved(s) => Some(CustomerEvent::TicketResolved(step(s.at))),
            TicketEvent::Reopened(s) => Some(CustomerEvent::TicketReopened(noted(category, s.at))),
            TicketEvent::Closed(s) => Some(CustomerEvent::TicketClosed(step(s.at))),
            TicketEvent::CategoryChanged(c) => {
                Some(CustomerEvent::TicketRecategorized(noted(c.category, c.at)))
            }
            _ => None,
        };
        notes.extend(note);
        state = state.evolve(event);
    }
    notes
}

/// Registration, profile update and unblock implied by a message.
fn customer_side_of_message(
    customer: &Customer,
    cmd: &RouteCustomerMessage,
) -> Result<Vec<CustomerEvent>, FlowError> {
    let Some(state) = customer.state() else {
        return Ok(customer.decide(&CustomerCommand::Register {
            customer_id: cmd.customer,
            profile: cmd.profile.clone(),
            at: cmd.at,
        })?);
    };
    if state.id != cmd.customer {
        return Err(FlowError::WrongCustomer {
            owner: state.id,
            given: cmd.customer,
        });
    }
    if state.banned {
        return Err(CustomerError::Banned.into());
    }
    let mut events = customer.decide(&CustomerCommand::UpdateProfile {
        profile: cmd.profile.clone(),
        at: cmd.at,
    })?;
    events.extend(customer.decide(&CustomerCommand::RecordBotUnblocked { at: cmd.at })?);
    Ok(events)
}

fn open_ticket(cmd: &RouteCustomerMessage) -> Result<Vec<TicketEvent>, TicketError> {
    Ticket::NotOpened.decide(&TicketCommand::Open(OpenTicket {
        ticket_id: cmd.new_ticket_id,
        customer: cmd.customer,
        category: cmd.category,
        channel: cmd.channel,
        first_message: cmd.message.clone(),
        at: cmd.at,
    }))
}

/// The note that brings the customer's view of a closed or long-resolved ticket up to date.
fn stale_ticket_note(ticket: &Ticket) -> Option<CustomerEvent> {
    let state = ticket.state()?;
    let at = state.resolved_at.unwrap_or(state.opened_at);
    let step = TicketStepNoted {
        ticket_id: state.id,
        at,
    };
    match state.status {
        TicketStatus::Closed => Some(CustomerEvent::TicketClosed(step)),
        TicketStatus::Resolved => Some(CustomerEvent::TicketResolved(step)),
        _ => None,
    }
}

fn check_owner(ticket: &Ticket, customer: CustomerId) -> Result<(), FlowError> {
    match ticket.state() {
        Some(state) if state.customer != customer => Err(FlowError::WrongCustomer {
            owner: state.customer,
            given: customer,
        }),
        _ => Ok(()),
    }
}

/// Rejects notes that would leave two active tickets in one category. A command that writes
/// no notes (a reply, an internal note, a tag) cannot break the rule, so the customer's state
/// is not copied for it.
fn check_one_active_ticket(
    customer: &Customer,
    notes: &[CustomerEvent],
    ticket_id: TicketId,
) -> Result<(), FlowError> {
    if notes.is_empty() {
        return Ok(());
    }
    let after = fold(customer.clone(), notes);
    let Some(state) = after.state() else {
        return Ok(());
    };
    if state.one_active_ticket_per_category() {
        return Ok(());
    }
    Err(CustomerError::AnotherTicketOpen {
        existing: conflicting_ticket(state, ticket_id).unwrap_or(ticket_id),
    }
    .into())
}

fn conflicting_ticket(state: &CustomerState, ticket_id: TicketId) -> Option<TicketId> {
    let category = state.tickets.get(&ticket_id)?.category;
    state
        .tickets
        .iter()
        .find(|(id, t)| {
            **id != ticket_id
                && t.category == category
                && t.lifecycle == crate::customer::TicketLifecycle::Active
        })
        .map(|(id, _)| *id)
}

fn fold<D: Decider>(state: D, events: &[D::Event]) -> D {
    events
        .iter()
        .fold(state, |state, event| state.evolve(event))
}

#[cfg(test)]
mod tests;
