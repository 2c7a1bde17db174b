//! [`AnyEvent`]: an event of any aggregate, for code that handles several streams at once.
//!
//! It depends on every aggregate's event enum and on [`crate::codec`]; neither depends on it.

use serde::{Deserializer, Serialize};

use crate::agent::AgentEvent;
use crate::audit::AuditEvent;
use crate::broadcast::BroadcastEvent;
use crate::codec::{DecodeError, DomainEvent, EventCatalog, StoredForm};
use crate::customer::CustomerEvent;
use crate::settings::SettingsEvent;
use crate::ticket::TicketEvent;

/// An event of any aggregate, for code that handles several streams at once (the command
/// service appending a [`crate::flow::Decision`], a projector reading the whole log).
///
/// Serializes as the inner payload; decodes by the prefix of the type name (`ticket.…`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum AnyEvent {
    /// `ticket.*`
    Ticket(TicketEvent),
    /// `customer.*`
    Customer(CustomerEvent),
    /// `agent.*`
    Agent(AgentEvent),
    /// `broadcast.*`
    Broadcast(BroadcastEvent),
    /// `settings.*`
    Settings(SettingsEvent),
    /// `audit.*`
    Audit(AuditEvent),
}

impl DomainEvent for AnyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Ticket(e) => e.event_type(),
            Self::Customer(e) => e.event_type(),
            Self::Agent(e) => e.event_type(),
            Self::Broadcast(e) => e.event_type(),
            Self::Settings(e) => e.event_type(),
            Self::Audit(e) => e.event_type(),
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            Self::Ticket(e) => e.schema_version(),
            Self::Customer(e) => e.schema_version(),
            Self::Agent(e) => e.schema_version(),
            Self::Broadcast(e) => e.schema_version(),
            Self::Settings(e) => e.schema_version(),
            Self::Audit(e) => e.schema_version(),
        }
    }

    fn decode<'de, D: Deserializer<'de>>(
        event_type: &str,
        schema_version: u32,
        payload: D,
    ) -> Result<Self, DecodeError> {
        let aggregate = event_type.split_once('.').map_or("", |(prefix, _)| prefix);
        match aggregate {
            "ticket" => TicketEvent::decode(event_type, schema_version, payload).map(Self::Ticket),
            "customer" => {
                CustomerEvent::decode(event_type, schema_version, payload).map(Self::Customer)
            }
            "agent" => AgentEvent::decode(event_type, schema_version, payload).map(Self::Agent),
            "broadcast" => {
                BroadcastEvent::decode(event_type, schema_version, payload).map(Self::Broadcast)
            }
            "settings" => {
                SettingsEvent::decode(event_type, schema_version, payload).map(Self::Settings)
            }
            "audit" => AuditEvent::decode(event_type, schema_version, payload).map(Self::Audit),
            _ => Err(DecodeError::UnknownType {
                event_type: event_type.to_owned(),
            }),
        }
    }
}

impl AnyEvent {
    /// The ticket event, if it is one.
    #[must_use]
    pub const fn as_ticket(&self) -> Option<&TicketEvent> {
        match self {
            Self::Ticket(event) => Some(event),
            _ => None,
        }
    }

    /// The customer event, if it is one.
    #[must_use]
    pub const fn as_customer(&self) -> Option<&CustomerEvent> {
        match self {
            Self::Customer(event) => Some(event),
            _ => None,
        }
    }

    /// Every stored form of every aggregate's events.
    #[must_use]
    pub fn all_stored_forms() -> Vec<StoredForm> {
        [
            TicketEvent::STORED_FORMS,
            CustomerEvent::STORED_FORMS,
            AgentEvent::STORED_FORMS,
            BroadcastEvent::STORED_FORMS,
            SettingsEvent::STORED_FORMS,
            AuditEvent::STORED_FORMS,
        ]
        .concat()
    }
}

macro_rules! any_event_from {
    ($($variant:ident($event:ty)),*) => {
        $(
            impl From<$event> for AnyEvent {
                fn from(event: $event) -> Self {
                    Self::$variant(event)
                }
            }
        )*
    };
}
any_event_from!(
    Ticket(TicketEvent),
    Customer(CustomerEvent),
    Agent(AgentEvent),
    Broadcast(BroadcastEvent),
    Settings(SettingsEvent),
    Audit(AuditEvent)
);
