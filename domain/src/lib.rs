//! The pure model of Ledgerdesk: ids, commands, events and deciders.
//!
//! This crate owns the business rules of the product and nothing else. It does no IO, reads no
//! clock and draws no random numbers: time and ids arrive inside commands, so every decision is a
//! pure function of (state, command) and can be replayed and tested exhaustively.
//!
//! Each aggregate is a [`Decider`]: a `Default` initial state, [`Decider::decide`] turning a
//! command into events (or a typed rejection), and a total [`Decider::evolve`] folding events
//! into the next state. The aggregates are:
//!
//! - [`ticket`]: one support conversation (`ticket-<uuid>` stream);
//! - [`customer`]: a Telegram user and the lifecycle of their tickets (`customer-<telegram id>`);
//! - [`agent`]: a member of the support team (`agent-<uuid>`);
//! - [`broadcast`]: a message sent to many customers (`broadcast-<uuid>`);
//! - [`settings`]: categories, templates, greeting and reopen window (the single `settings` stream).
//!
//! [`audit`] holds the panel's own audit trail (sign-ins, sign-outs, API tokens, exports,
//! replays): records appended as they happen, with no decider.
//!
//! Decisions that must write to two streams at once (opening a ticket also notes it on the
//! customer's stream) live in [`flow`] and return a [`flow::Decision`] listing the events per
//! stream, which the command service appends atomically.
//!
//! Every event enum implements [`DomainEvent`]: a stable stored name, a schema version and a
//! decoder that reads every version ever written (upcasting old payloads). Each aggregate
//! declares its enum with the [`codec`]'s macro, which names each variant's stored form once;
//! [`AnyEvent`] gathers the aggregates' events for code that reads the whole log.
//!
//! Personal data (names, usernames, phone numbers, message text, captions, file ids, contact
//! data) always sits in a nested `personal` or `content` field of an event payload, so it can be
//! encrypted later without reshaping events.

pub mod agent;
mod any_event;
pub mod audit;
pub mod broadcast;
pub mod codec;
pub mod content;
pub mod customer;
mod decider;
pub mod flow;
pub mod ids;
pub mod settings;
pub mod ticket;
pub mod validate;

#[cfg(test)]
pub(crate) mod testkit;

pub use any_event::AnyEvent;
pub use codec::{DecodeError, DomainEvent};
pub use decider::Decider;
pub use ids::{
    AgentId, AuditStream, BroadcastId, CategoryId, CustomerId, MessageId, StreamId, StreamIdError,
    TemplateId, TicketId,
};
pub use validate::InvalidInput;
