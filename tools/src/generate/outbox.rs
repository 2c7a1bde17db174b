//! Deciding in memory and batching what was decided into large appends.
//!
//! Each aggregate the generator drives is a [`Tracked`] decider: its state and the version its
//! stream reaches once everything queued so far is appended. Decisions go into an [`Outbox`],
//! which encodes them exactly as the command service would (payload JSON, type, schema version,
//! metadata with actor and correlation) and packs whole decisions into append requests of at
//! most `batch_events` events and 100 streams, each stream expecting the exact version it was
//! at (or no stream). A decision is never split across two appends, so multi-stream decisions
//! stay atomic as they are in the real write path.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use domain::{AnyEvent, Decider, DomainEvent, StreamId};
use eventlog::{Actor, AppendRequest, ExpectedVersion, Metadata, NewEvent, StreamAppend, limits};
use uuid::Uuid;

use super::error::GenerateError;
use super::rng::Rng;

/// An aggregate's state and the version of its stream after everything queued so far.
#[derive(Debug, Clone)]
pub(super) struct Tracked<D> {
    pub(super) state: D,
    pub(super) version: Option<u64>,
    pub(super) stream: StreamId,
}

impl<D: Decider> Tracked<D> {
    pub(super) fn new(stream: StreamId) -> Self {
        Self {
            state: D::default(),
            version: None,
            stream,
        }
    }

    /// Folds events that were queued for this stream.
    pub(super) fn apply(&mut self, events: &[D::Event]) {
        for event in events {
            self.state = std::mem::take(&mut self.state).evolve(event);
            self.version = Some(self.version.map_or(0, |v| v + 1));
        }
    }
}

/// When a decision happened and who asked for it: the time and the metadata of its events.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    pub(super) at: DateTime<Utc>,
    pub(super) actor: Actor,
    pub(super) correlation: Uuid,
    pub(super) causation: Option<Uuid>,
}

/// The events one decision writes to one stream.
#[derive(Debug)]
pub(super) struct Write {
    pub(super) stream: StreamId,
    /// The stream's version before these events.
    pub(super) before: Option<u64>,
    pub(super) events: Vec<AnyEvent>,
}

/// Where decided events wait to be appended.
#[derive(Debug)]
pub(super) struct Outbox {
    /// Draws event ids (kept apart from the simulation's generator).
    rng: Rng,
    batch_events: usize,
    pending: AppendRequest,
    pending_events: usize,
    ready: Vec<AppendRequest>,
    /// Events queued so far, per type.
    pub(super) counts: BTreeMap<&'static str, u64>,
    /// Events queued so far.
    pub(super) events: u64,
}

impl Outbox {
    pub(super) fn new(rng: Rng, batch_events: usize) -> Self {
        Self {
            rng,
            batch_events: batch_events.clamp(1, limits::EVENTS_PER_APPEND),
            pending: AppendRequest::default(),
            pending_events: 0,
            ready: Vec::new(),
            counts: BTreeMap::new(),
            events: 0,
        }
    }

    /// Queues one decision; answers the id and type of each of its events, in order.
    pub(super) fn push(
        &mut self,
        writes: Vec<Write>,
        stamp: &Stamp,
    ) -> Result<Vec<(Uuid, &'static str)>, GenerateError> {
        let count: usize = writes.iter().map(|w| w.events.len()).sum();
        if count == 0 {
            return Ok(Vec::new());
        }
        let names: Vec<String> = writes.iter().map(|w| w.stream.name()).collect();
        let new_streams = names
            .iter()
            .filter(|name| !self.pending.streams.iter().any(|s| &s.stream == *name))
            .count();
        if self.pending_events + count > self.batch_events
            || self.pending.streams.len() + new_streams > limits::STREAMS_PER_APPEND
        {
            self.seal();
        }
        let metadata = Metadata {
            actor: stamp.actor.clone(),
            correlation_id: Some(stamp.correlation),
            causation_id: stamp.causation,
            idempotency_key: None,
        };
        let mut ids = Vec::with_capacity(count);
        for (write, name) in writes.into_iter().zip(names) {
            let mut encoded = Vec::with_capacity(write.events.len());
            for event in &write.events {
                let event_type = event.event_type();
                let new = NewEvent {
                    event_id: self.rng.uuid_v7(stamp.at),
                    event_type: event_type.to_owned(),
                    schema_version: event.schema_version(),
                    payload: serde_json::to_value(event)?,
                    metadata: metadata.clone(),
                };
                ids.push((new.event_id, event_type));
                *self.counts.entry(event_type).or_default() += 1;
                encoded.push(new);
            }
            self.pending_events += encoded.len();
            self.events += encoded.len() as u64;
            match self.pending.streams.iter_mut().find(|s| s.stream == name) {
                Some(stream) => stream.events.extend(encoded),
                None => self.pending.streams.push(StreamAppend {
                    stream: name,
                    expected: ExpectedVersion::from_current(write.before),
                    events: encoded,
                }),
            }
        }
        Ok(ids)
    }

    /// Closes the pending request: the next decision starts a new one.
    pub(super) fn seal(&mut self) {
        if !self.pending.streams.is_empty() {
            self.ready.push(std::mem::take(&mut self.pending));
            self.pending_events = 0;
        }
    }

    /// The requests that are complete, oldest first.
    pub(super) fn take_ready(&mut self) -> Vec<AppendRequest> {
        std::mem::take(&mut self.ready)
    }

    /// Every request left, the pending one included.
    pub(super) fn drain(&mut self) -> Vec<AppendRequest> {
        self.seal();
        self.take_ready()
    }
}

/// Decides `command` on one aggregate and queues its events.
pub(super) fn decide<D>(
    outbox: &mut Outbox,
    tracked: &mut Tracked<D>,
    command: &D::Command,
    stamp: &Stamp,
) -> Result<Vec<(Uuid, &'static str)>, GenerateError>
where
    D: Decider,
    D::Event: Clone + Into<AnyEvent>,
{
    let events = tracked
        .state
        .decide(command)
        .map_err(|error| GenerateError::rejected(tracked.stream, &error))?;
    let write = Write {
        stream: tracked.stream,
        before: tracked.version,
        events: events.iter().cloned().map(Into::into).collect(),
    };
    let ids = outbox.push(vec![write], stamp)?;
    tracked.apply(&events);
    Ok(ids)
}
