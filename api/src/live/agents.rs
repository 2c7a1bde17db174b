//! Agents' current state for the live feeds: what an agent may see is decided again for every
//! item a subscription delivers, from the agent's stream in the log, not from the state their
//! socket signed in with.
//!
//! Reading the agent's stream for every item of every subscription would cost a query per item
//! per subscriber. Instead the hub remembers each agent's state as last read from the log, and
//! its follower forgets an agent as soon as it sees an event of their stream, before it passes
//! that event (or anything after it) on. A remembered state is therefore current as of the
//! later of two positions: the log head read just before the agent's stream was, and the last
//! event the follower passed on. An item at log position `p` is checked against a remembered
//! state only when that covers `p`; otherwise (a feed reading the log ahead of the follower
//! while it catches up) the stream is read again. A narrowing thus applies to every item that
//! comes after it in the log.
//!
//! A read that started before a forget cannot put its older answer back: forgetting bumps a
//! generation, and an answer is kept only when the generation did not move while it was read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use domain::agent::{Agent, AgentEvent};
use domain::{Decider, DomainEvent};
use eventlog::postgres::PostgresLog;
use eventlog::{Direction, EventLog, Position};
use uuid::Uuid;

/// Events read per page while folding an agent's stream.
const PAGE: usize = 1_000;

/// An agent's state as the log had it, with the version of the last event folded.
#[derive(Debug, Clone, Default)]
pub struct AgentSnapshot {
    /// The agent.
    pub state: Agent,
    /// Their stream's version (`None`: no event).
    pub version: Option<u64>,
}

/// Why an agent's state could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AgentReadError {
    /// The log failed.
    #[error("cannot read the agent's stream: {0}")]
    Log(#[from] eventlog::Error),
    /// A stored event could not be decoded.
    #[error("cannot decode the agent's stream: {0}")]
    Decode(#[from] domain::DecodeError),
}

/// The agent of an `agent-<uuid>` stream.
fn agent_of(stream: &str) -> Option<Uuid> {
    stream.strip_prefix("agent-")?.parse().ok()
}

/// Folds the agent's stream from the log.
///
/// # Errors
/// When the log fails or an event cannot be decoded.
pub async fn read_agent(log: &PostgresLog, agent: Uuid) -> Result<AgentSnapshot, AgentReadError> {
    let stream = domain::StreamId::Agent(domain::AgentId::from_uuid(agent)).name();
    let mut snapshot = AgentSnapshot::default();
    let mut from = 0;
    loop {
        let page = match log
            .read_stream(&stream, from, Direction::Forwards, PAGE)
            .await
        {
            Ok(page) => page,
            Err(eventlog::Error::StreamNotFound { .. }) => Vec::new(),
            Err(error) => return Err(error.into()),
        };
        let full = page.len() == PAGE;
        for recorded in page {
            let event = AgentEvent::decode(
                &recorded.event_type,
                recorded.schema_version,
                &recorded.payload,
            )?;
            snapshot.state = std::mem::take(&mut snapshot.state).evolve(&event);
            snapshot.version = Some(recorded.stream_version);
            from = recorded.stream_version.saturating_add(1);
        }
        if !full {
            return Ok(snapshot);
        }
    }
}

/// The remembered states. One per hub.
#[derive(Debug, Default)]
pub(crate) struct AgentStates {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    generation: u64,
    /// The last event the hub's follower passed on.
    followed: Position,
    by_agent: HashMap<Uuid, (Position, Arc<AgentSnapshot>)>,
}

/// How current an agent's state must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// As the log has it now: read again.
    Now,
    /// Including every change up to this position.
    At(Position),
    /// As remembered (current as of the last event the hub passed on), read when unknown.
    Remembered,
}

impl AgentStates {
    /// The agent's state, as `fresh` as asked: remembered, or read from the log (and
    /// remembered).
    pub(crate) async fn get(
        &self,
        log: &PostgresLog,
        agent: Uuid,
        fresh: Freshness,
    ) -> Result<Arc<AgentSnapshot>, AgentReadError> {
        let generation = {
            let entries = self.lock();
            if let Some((read_at, known)) = entries.by_agent.get(&agent) {
                let current = match fresh {
                    Freshness::Now => false,
                    Freshness::At(at) => *read_at >= at || entries.followed >= at,
                    Freshness::Remembered => true,
                };
                if current {
                    return Ok(known.clone());
                }
            }
            entries.generation
        };
        // The head first: every event of the stream up to it is in what is read next.
        let head = log.head().await?;
        let read = Arc::new(read_agent(log, agent).await?);
        let mut entries = self.lock();
        if entries.generation == generation {
            entries.by_agent.insert(agent, (head, read.clone()));
        }
        Ok(read)
    }

    /// Notes that the follower is about to pass on the event at `position` of `stream`,
    /// forgetting the agent it is about.
    pub(crate) fn followed(&self, position: Position, stream: &str) {
        let mut entries = self.lock();
        if let Some(agent) = agent_of(stream) {
            entries.generation = entries.generation.wrapping_add(1);
            entries.by_agent.remove(&agent);
        }
        entries.followed = entries.followed.max(position);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves at worst an entry missing: keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
