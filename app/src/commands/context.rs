//! Who sends a command and why ([`CommandContext`]), stored with every event it appends.

use eventlog::{Actor, Metadata};
use uuid::Uuid;

/// Who sends a command and why: stored as the [`Metadata`] of every event it appends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandContext {
    /// Who asks.
    pub actor: Actor,
    /// Groups every event caused by one outside request.
    pub correlation_id: Option<Uuid>,
    /// The event or message that directly caused this command.
    pub causation_id: Option<Uuid>,
    /// Names this piece of work (a Telegram update id, a client mutation id): a second command
    /// with the same key has no effect and answers with the first result.
    pub idempotency_key: Option<String>,
    /// A digest of the input the idempotency key stands for (the caller's canonical encoding
    /// of its request), stored with the key: a later command under the key with another
    /// digest is refused with [`CommandError::KeyReused`](super::CommandError::KeyReused)
    /// rather than answered with the first result. `None` replays whatever the input.
    pub input_digest: Option<Vec<u8>>,
}

impl CommandContext {
    /// A context naming only the actor.
    pub fn new(actor: Actor) -> Self {
        CommandContext {
            actor,
            correlation_id: None,
            causation_id: None,
            idempotency_key: None,
            input_digest: None,
        }
    }

    /// The same context with a correlation id.
    pub fn correlated(mut self, correlation_id: Uuid) -> Self {
        self.correlation_id = Some(correlation_id);
        self
    }

    /// The same context with a causation id.
    pub fn caused_by(mut self, causation_id: Uuid) -> Self {
        self.causation_id = Some(causation_id);
        self
    }

    /// The same context under an idempotency key.
    pub fn idempotent(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The same context with a digest of the input its idempotency key stands for.
    pub fn with_input_digest(mut self, digest: impl Into<Vec<u8>>) -> Self {
        self.input_digest = Some(digest.into());
        self
    }

    /// The metadata stored with each event (the log adds the idempotency key itself).
    pub(super) fn metadata(&self) -> Metadata {
        Metadata {
            actor: self.actor.clone(),
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            idempotency_key: None,
        }
    }
}
