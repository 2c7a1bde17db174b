//! How events are stored: a stable type name, a schema version and a JSON payload.
//!
//! The log stores `event_type` text, `schema_version` and the payload. The stored name is
//! written out beside each variant, never derived from a Rust variant name, so renaming code
//! never breaks old data. Old payload versions stay readable forever: `decode` reads them through their old
//! struct and converts (upcasts) them to the current one. Writing always uses the current
//! version.
//!
//! Each aggregate declares its event enum with `event_enum!`, which names every variant's
//! stored form once, next to the variant. This module knows no aggregate: the aggregates use it,
//! and [`crate::AnyEvent`] gathers them.
//!
//! This module must not know about any storage: it only maps events to and from serde.

use serde::{Deserializer, Serialize};

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

/// Declares an aggregate's event enum, each variant wrapping one payload struct, with the
/// stored form of each variant written once, beside it, and implements [`DomainEvent`],
/// [`EventCatalog`] and `Serialize` (the payload alone, no type tag) for it:
///
/// ```text
/// event_enum! {
///     /// Everything that can happen to a ticket.
///     #[derive(Debug, Clone, PartialEq)]
///     pub enum TicketEvent {
///         /// The ticket was opened.
///         Opened(TicketOpened) = "ticket.opened" v 2, upcast [1 => TicketOpenedV1];
///         /// An agent was assigned.
///         Assigned(TicketAssigned) = "ticket.assigned" v 1;
///     }
/// }
/// ```
///
/// The string is the stored name, never derived from the variant's name; `v` is the schema
/// version this code writes; each upcast type reads an older version and must convert into the
/// current payload with `From`.
macro_rules! event_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $enum:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident($payload:ty) = $name:literal v $version:literal
                $(, upcast [ $( $old_version:literal => $old:ty ),+ $(,)? ] )?
            );* $(;)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $enum {
            $(
                $(#[$variant_meta])*
                $variant($payload),
            )*
        }

        impl ::serde::Serialize for $enum {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                match self {
                    $( Self::$variant(payload) => payload.serialize(serializer), )*
                }
            }
        }

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
pub(crate) use event_enum;
