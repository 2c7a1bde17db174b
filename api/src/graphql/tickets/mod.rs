//! Tickets: the list and one ticket with its conversation, notes and history; the mutations
//! that work a ticket; and its subscriptions (a ticket's events, the live ticket list, new
//! messages).

pub mod media;
pub mod mutations;
pub mod queries;
pub mod subscriptions;
pub mod ticket;
pub mod ticket_list;
pub mod types;

pub use mutations::{MediaInput, MediaKindValue, TicketMutation};
pub use queries::{TicketFilter, TicketOrder, TicketQuery, visible_ticket};
pub use subscriptions::{AddedMessage, MessageAddedEvent, TicketSubscription};
pub use ticket::Ticket;
pub use ticket_list::{TicketChange, TicketsChangedFilter};
pub use types::{Message, MessageDirection, Note, PriorityValue, TicketStatusValue};
