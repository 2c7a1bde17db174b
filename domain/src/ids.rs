//! Typed ids and the names of the streams they own.
//!
//! Ids are generated outside the domain (UUID v7 for new tickets, messages and broadcasts;
//! Telegram user ids for customers) and arrive inside commands. Each aggregate id knows its
//! stream name: `ticket-<uuid>`, `customer-<telegram id>`, `agent-<uuid>`, `broadcast-<uuid>`,
//! and the single `settings` stream.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// Wraps a UUID generated outside the domain.
            #[must_use]
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The wrapped UUID.
            #[must_use]
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }
    };
}

uuid_id!(
    /// A support ticket; owns the `ticket-<uuid>` stream.
    TicketId
);
uuid_id!(
    /// A member of the support team; owns the `agent-<uuid>` stream.
    AgentId
);
uuid_id!(
    /// A broadcast to many customers; owns the `broadcast-<uuid>` stream.
    BroadcastId
);
uuid_id!(
    /// One message inside a ticket: a customer message, an agent reply or an internal note.
    MessageId
);
uuid_id!(
    /// A quick-reply template kept in the settings.
    TemplateId
);
uuid_id!(
    /// A ticket category kept in the settings.
    CategoryId
);

/// A customer, identified by their Telegram user id; owns the `customer-<telegram id>` stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomerId(pub i64);

impl fmt::Display for CustomerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl TicketId {
    /// The stream holding this ticket's events.
    #[must_use]
    pub const fn stream(self) -> StreamId {
        StreamId::Ticket(self)
    }
}

impl CustomerId {
    /// The stream holding this customer's events.
    #[must_use]
    pub const fn stream(self) -> StreamId {
        StreamId::Customer(self)
    }
}

impl AgentId {
    /// The stream holding this agent's events.
    #[must_use]
    pub const fn stream(self) -> StreamId {
        StreamId::Agent(self)
    }
}

impl BroadcastId {
    /// The stream holding this broadcast's events.
    #[must_use]
    pub const fn stream(self) -> StreamId {
        StreamId::Broadcast(self)
    }
}

/// The name of the single settings stream.
pub const SETTINGS_STREAM: &str = "settings";

/// Which stream of the log an aggregate lives in. `Display` writes the stored stream name and
/// `FromStr` reads it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamId {
    /// `ticket-<uuid>`
    Ticket(TicketId),
    /// `customer-<telegram user id>`
    Customer(CustomerId),
    /// `agent-<uuid>`
    Agent(AgentId),
    /// `broadcast-<uuid>`
    Broadcast(BroadcastId),
    /// `settings`
    Settings,
    /// `audit-<agent uuid>`, `audit-anonymous`, `audit-operations`: the panel's audit trail.
    Audit(AuditStream),
}

/// Which stream of the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AuditStream {
    /// `audit-<uuid>`: what one agent's account saw (sign-ins, refusals, sign-outs, tokens).
    Agent(AgentId),
    /// `audit-anonymous`: refused sign-ins that named no account.
    Anonymous,
    /// `audit-operations`: exports and replays.
    Operations,
}

impl StreamId {
    /// The stored stream name, e.g. `ticket-0190…`.
    #[must_use]
    pub fn name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ticket(id) => write!(f, "ticket-{id}"),
            Self::Customer(id) => write!(f, "customer-{id}"),
            Self::Agent(id) => write!(f, "agent-{id}"),
            Self::Broadcast(id) => write!(f, "broadcast-{id}"),
            Self::Settings => f.write_str(SETTINGS_STREAM),
            Self::Audit(AuditStream::Agent(id)) => write!(f, "audit-{id}"),
            Self::Audit(AuditStream::Anonymous) => f.write_str("audit-anonymous"),
            Self::Audit(AuditStream::Operations) => f.write_str("audit-operations"),
        }
    }
}

/// A stream name that no aggregate owns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a Ledgerdesk stream name")]
pub struct StreamIdError(pub String);

impl FromStr for StreamId {
    type Err = StreamIdError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let bad = || StreamIdError(name.to_owned());
        if name == SETTINGS_STREAM {
            return Ok(Self::Settings);
        }
        let (kind, rest) = name.split_once('-').ok_or_else(bad)?;
        let uuid = || Uuid::parse_str(rest).map_err(|_| bad());
        match kind {
            "ticket" => Ok(Self::Ticket(TicketId(uuid()?))),
            "agent" => Ok(Self::Agent(AgentId(uuid()?))),
            "broadcast" => Ok(Self::Broadcast(BroadcastId(uuid()?))),
            "audit" => match rest {
                "anonymous" => Ok(Self::Audit(AuditStream::Anonymous)),
                "operations" => Ok(Self::Audit(AuditStream::Operations)),
                _ => Ok(Self::Audit(AuditStream::Agent(AgentId(uuid()?)))),
            },
            "customer" => rest
                .parse::<i64>()
                .map(|id| Self::Customer(CustomerId(id)))
                .map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_follow_the_documented_shape_and_parse_back() {
        let uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
        let cases = [
            (TicketId(uuid).stream(), format!("ticket-{uuid}")),
            (CustomerId(42).stream(), "customer-42".to_owned()),
            (CustomerId(-7).stream(), "customer--7".to_owned()),
            (AgentId(uuid).stream(), format!("agent-{uuid}")),
            (BroadcastId(uuid).stream(), format!("broadcast-{uuid}")),
            (StreamId::Settings, "settings".to_owned()),
            (
                StreamId::Audit(AuditStream::Agent(AgentId(uuid))),
                format!("audit-{uuid}"),
            ),
            (
                StreamId::Audit(AuditStream::Anonymous),
                "audit-anonymous".to_owned(),
            ),
            (
                StreamId::Audit(AuditStream::Operations),
                "audit-operations".to_owned(),
            ),
        ];
        for (stream, name) in cases {
            assert_eq!(stream.name(), name);
            assert_eq!(name.parse::<StreamId>(), Ok(stream));
        }
    }

    #[test]
    fn unknown_stream_names_are_rejected() {
        for name in [
            "",
            "ticket",
            "ticket-nope",
            "customer-x",
            "other-1",
            "settings-1",
            "audit-",
            "audit-other",
        ] {
            assert_eq!(
                name.parse::<StreamId>(),
                Err(StreamIdError(name.to_owned()))
            );
        }
    }
}
