//! How events are stored: a stable type name, a schema version and a JSON payload.
//!
//! The log stores `event_type` text, `schema_version` and the payload. The stored name comes
//! from an explicit table, never from a Rust variant name, so renaming code never breaks old
//! data. Old payload versions stay readable forever: `decode` reads them through their old
//! struct and converts (upcasts) them to the current one. Writing always uses the current
//! version.
//!
//! This module must not know about any storage: it only maps events to and from serde.

use serde::{Deserializer, Serialize};

use crate::{agent::AgentEvent, broadcast::BroadcastEvent, customer::CustomerEvent};
use crate::{settings::SettingsEvent, ticket::TicketEvent};

/// An event enum the log can store and read back.
pub trait DomainEvent: Sized + Serialize {
    // `Serialize` writes the payload only (no type tag).

    /// Stable stored name, e.g. `"ticket.opened"`. Never derived from a Rust variant name.
    fn event_type(&self) -> &'static str;

    /// Schema version of the payload this code writes.
    fn schema_version(&self) -> u32;

    /// Reads any stored version of any event type of this aggregate (upcasting old versions).
    ///
    /// # Errors
    /// [`DecodeError`] when the type or version is unknown or the payload does not fit it.
    fn decode<'de, D: Deserializer<'de>>(
        event_type: &str,
        schema_version: u32,
        payload: D,
    ) -> Result<Self, DecodeError>;
}

/// Why a stored event could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No aggregate knows this event type.
    #[error("unknown event type `{event_type}`")]
    UnknownType {
        /// The stored type name.
        event_type: String,
    },
    /// The event type is known but this schema version is not.
    #[error("unknown schema version {schema_version} of event type `{event_type}`")]
    UnknownVersion {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
    },
    /// The payload does not match the schema of its type and version.
    #[error("bad payload for `{event_type}` v{schema_version}: {message}")]
    BadPayload {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// What serde reported.
        message: String,
    },
}

impl DecodeError {
    /// A payload that serde could not read.
    pub fn bad_payload(
        event_type: &str,
        schema_version: u32,
        error: impl std::fmt::Display,
    ) -> Self {
        Self::BadPayload {
            event_type: event_type.to_owned(),
            schema_version,
            message: error.to_string(),
        }
    }
}

/// One stored form an event enum can read: its type name and schema version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredForm {
    /// The stored type name.
    pub event_type: &'static str,
    /// The schema version.
    pub schema_version: u32,
    /// Whether this code still writes this version (`false` for upcast-only versions).
    pub current: bool,
}

/// Lists every stored form of an event enum, so tests can check that each one has a sample.
pub trait EventCatalog {
    /// Every (type, version) pair this enum reads; exactly one current version per type.
    const STORED_FORMS: &'static [StoredForm];
}

/// Implements [`DomainEvent`] and [`EventCatalog`] for an event enum whose variants each wrap one
/// payload struct:
///
/// ```text
/// event_codec!(TicketEvent {
///     Opened(TicketOpened) = "ticket.opened" v 2, upcast [1 => TicketOpenedV1];
///     Assigned(TicketAssigned) = "ticket.assigned" v 1;
/// });
/// ```
///
/// Each upcast type must convert into the current payload with `From`.
macro_rules! event_codec {
    (
        $enum:ident {
            $(
                $variant:ident($payload:ty) = $name:literal v $version:literal
                $(, upcast [ $( $old_version:literal => $old:ty ),+ $(,)? ] )?
            );* $(;)?
        }
    ) => {
        impl $crate::codec::EventCatalog for $enum {
            const STORED_FORMS: &'static [$crate::codec::StoredForm] = &[
                $(
                    $( $(
                        $crate::codec::StoredForm {
                            event_type: $name,
                            schema_version: $old_version,
                            current: false,
                        },
                    )+ )?
                    $crate::codec::StoredForm {
                        event_type: $name,
                        schema_version: $version,
                        current: true,
                    },
                )*
            ];
        }

        impl $crate::codec::DomainEvent for $enum {
            fn event_type(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $name, )*
                }
            }

            fn schema_version(&self) -> u32 {
                match self {
                    $( Self::$variant(_) => $version, )*
                }
            }

            fn decode<'de, D: ::serde::Deserializer<'de>>(
                event_type: &str,
                schema_version: u32,
                payload: D,
            ) -> Result<Self, $crate::codec::DecodeError> {
                let bad = |error: D::Error| {
                    $crate::codec::DecodeError::bad_payload(event_type, schema_version, error)
                };
                match event_type {
                    $(
                        $name => match schema_version {
                            $version => <$payload as ::serde::Deserialize>::deserialize(payload)
                                .map(Self::$variant)
                                .map_err(bad),
                            $( $(
                                $old_version => <$old as ::serde::Deserialize>::deserialize(payload)
                                    .map(|old| Self::$variant(<$payload>::from(old)))
                                    .map_err(bad),
                            )+ )?
                            _ => Err($crate::codec::DecodeError::UnknownVersion {
                                event_type: event_type.to_owned(),
                                schema_version,
                            }),
                        },
                    )*
                    _ => Err($crate::codec::DecodeError::UnknownType {
                        event_type: event_type.to_owned(),
                    }),
                }
            }
        }
    };
}
pub(crate) use event_codec;

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
}

impl DomainEvent for AnyEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Ticket(e) => e.event_type(),
            Self::Customer(e) => e.event_type(),
            Self::Agent(e) => e.event_type(),
            Self::Broadcast(e) => e.event_type(),
            Self::Settings(e) => e.event_type(),
        }
    }

    fn schema_version(&self) -> u32 {
        match self {
            Self::Ticket(e) => e.schema_version(),
            Self::Customer(e) => e.schema_version(),
            Self::Agent(e) => e.schema_version(),
            Self::Broadcast(e) => e.schema_version(),
            Self::Settings(e) => e.schema_version(),
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
    Settings(SettingsEvent)
);
