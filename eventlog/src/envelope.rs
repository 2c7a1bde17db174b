//! The envelope around every event: what an append sends and what a read returns.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::position::Position;

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A customer on Telegram.
    Customer,
    /// An agent (or admin, or auditor) in the panel.
    Agent,
    /// The Telegram bot acting on its own (greetings, delivery receipts).
    Bot,
    /// Ledgerdesk itself (migrations, schedulers, tooling).
    System,
    /// An integration holding an API token.
    Integrator,
}

/// The actor of an event: its kind and its id within that kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    /// What kind of actor.
    pub kind: ActorKind,
    /// Its id (a Telegram user id, an agent uuid, a token id, a process name…).
    pub id: String,
}

impl Actor {
    /// An actor of `kind` with `id`.
    pub fn new(kind: ActorKind, id: impl Into<String>) -> Self {
        Actor {
            kind,
            id: id.into(),
        }
    }

    /// Ledgerdesk itself, in the part named `component`.
    pub fn system(component: impl Into<String>) -> Self {
        Actor::new(ActorKind::System, component)
    }
}

/// Metadata stored with every event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Who caused the event.
    pub actor: Actor,
    /// Groups every event caused by one outside request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The event or message that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// The idempotency key of the append that wrote the event. Set by the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
}

impl Metadata {
    /// Metadata naming only the actor.
    pub fn new(actor: Actor) -> Self {
        Metadata {
            actor,
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
        }
    }

    /// The same metadata with a correlation id.
    pub fn correlated(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    /// The same metadata with a causation id.
    pub fn caused_by(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id of the event (uuid v7 by default).
    pub event_id: Uuid,
    /// The stable stored name of the event, e.g. `ticket.opened`.
    pub event_type: String,
    /// The version of the payload's shape, from 1.
    pub schema_version: u32,
    /// The event's data.
    pub payload: serde_json::Value,
    /// Who caused it and why.
    pub metadata: Metadata,
}

impl NewEvent {
    /// An event with a fresh v7 id and schema version 1.
    pub fn new(
        event_type: impl Into<String>,
        payload: serde_json::Value,
        metadata: Metadata,
    ) -> Self {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version: 1,
            payload,
            metadata,
        }
    }

    /// The same event with another schema version.
    pub fn with_schema_version(mut self, schema_version: u32) -> Self {
        self.schema_version = schema_version;
        self
    }
}

/// The version a stream must be at for an append to go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Whatever the stream holds, including nothing.
    Any,
    /// The stream must have no event yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version (versions start at 0).
    Exact(u64),
}

impl ExpectedVersion {
    /// The expectation for a stream whose current version is `current` (`None`: empty).
    pub fn from_current(current: Option<u64>) -> Self {
        match current {
            Some(v) => ExpectedVersion::Exact(v),
            None => ExpectedVersion::NoStream,
        }
    }

    /// True when a stream at `actual` satisfies this expectation.
    pub fn accepts(self, actual: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual.is_none(),
            ExpectedVersion::StreamExists => actual.is_some(),
            ExpectedVersion::Exact(v) => actual == Some(v),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(v) => write!(f, "version {v}"),
        }
    }
}

/// The events to append to one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream, e.g. `ticket-0190…`.
    pub stream: String,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// One atomic append to one or more streams.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AppendRequest {
    /// A key naming this piece of work (a Telegram update id, a client mutation id). A request
    /// with a key that was applied before appends nothing and answers with the first receipt.
    pub idempotency_key: Option<String>,
    /// A digest of the input the key stands for (at most
    /// [`limits::INPUT_DIGEST_BYTES`](crate::limits::INPUT_DIGEST_BYTES) bytes), stored with
    /// the key when it is first applied and handed back with its receipt, so that the caller
    /// can tell a retry of the same work from the key's reuse for other work. Ignored without
    /// a key.
    pub input_digest: Option<Vec<u8>>,
    /// The streams and their events. A stream may appear only once.
    pub streams: Vec<StreamAppend>,
}

impl AppendRequest {
    /// An append of `events` to one stream.
    pub fn to_stream(
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        AppendRequest::default().and_stream(stream, expected, events)
    }

    /// The same request, also appending `events` to another stream.
    pub fn and_stream(
        mut self,
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        self.streams.push(StreamAppend {
            stream: stream.into(),
            expected,
            events,
        });
        self
    }

    /// The same request under an idempotency key.
    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The same request with a digest of its input, stored with its idempotency key.
    pub fn with_input_digest(mut self, digest: impl Into<Vec<u8>>) -> Self {
        self.input_digest = Some(digest.into());
        self
    }

    /// How many events the request carries.
    pub fn event_count(&self) -> usize {
        self.streams.iter().map(|s| s.events.len()).sum()
    }
}

/// Where an appended event landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedEvent {
    /// The event's id.
    pub event_id: Uuid,
    /// Its stream.
    pub stream: String,
    /// Its version within the stream.
    pub version: u64,
    /// Its position in the whole log.
    pub position: Position,
}

/// What an append wrote, in log order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Receipt {
    /// The appended events.
    pub events: Vec<CommittedEvent>,
    /// On a replay ([`AppendOutcome::AlreadyApplied`], [`EventLog::applied`](crate::EventLog::applied)):
    /// the input digest stored with the key when it was first applied (`None` when that
    /// append gave none). `None` on a fresh append.
    pub input_digest: Option<Vec<u8>>,
}

impl Receipt {
    /// Whether work with input digest `digest` may be answered with this receipt: true unless
    /// both the stored digest and `digest` are known and differ (a key applied without a
    /// digest replays for any input, as keys did before digests were stored).
    pub fn same_input(&self, digest: Option<&[u8]>) -> bool {
        match (self.input_digest.as_deref(), digest) {
            (Some(stored), Some(given)) => stored == given,
            _ => true,
        }
    }

    /// The position of the last appended event (`None` when the append carried no event).
    pub fn last_position(&self) -> Option<Position> {
        self.events.last().map(|e| e.position)
    }

    /// The version `stream` reached with this append, if the append touched it.
    pub fn version_of(&self, stream: &str) -> Option<u64> {
        self.events
            .iter()
            .rev()
            .find(|e| e.stream == stream)
            .map(|e| e.version)
    }
}

/// The result of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum AppendOutcome {
    /// The events were appended now.
    Appended(Receipt),
    /// The idempotency key was applied before: nothing was appended; this is the first receipt.
    AlreadyApplied(Receipt),
}

impl AppendOutcome {
    /// The receipt, whether the events were appended now or before.
    pub fn receipt(&self) -> &Receipt {
        match self {
            AppendOutcome::Appended(r) | AppendOutcome::AlreadyApplied(r) => r,
        }
    }

    /// Takes the receipt out.
    pub fn into_receipt(self) -> Receipt {
        match self {
            AppendOutcome::Appended(r) | AppendOutcome::AlreadyApplied(r) => r,
        }
    }

    /// True when the append was an idempotent replay.
    pub fn is_replay(&self) -> bool {
        matches!(self, AppendOutcome::AlreadyApplied(_))
    }
}

/// Which way to read a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first.
    Forwards,
    /// Newest first.
    Backwards,
}

/// An event as stored, with its full envelope.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordedEvent {
    /// Its place in the whole log.
    pub position: Position,
    /// Its stream.
    pub stream_id: String,
    /// Its version within the stream (0, 1, 2…).
    pub stream_version: u64,
    /// Its unique id.
    pub event_id: Uuid,
    /// Its stable stored name.
    pub event_type: String,
    /// The version of the payload's shape.
    pub schema_version: u32,
    /// Its data.
    pub payload: serde_json::Value,
    /// Who caused it and why.
    pub metadata: Metadata,
    /// When the log recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The hash of the previous event of the stream (`None` for the first).
    pub prev_hash: Option<Vec<u8>>,
    /// sha256 over `prev_hash`, type, payload and metadata.
    pub hash: Vec<u8>,
}
