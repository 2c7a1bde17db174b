//! The broadcast aggregate: one message sent to many customers (`broadcast-<uuid>` stream).
//!
//! Lifecycle: draft (edited freely) → scheduled (or back to draft) → running ⇄ paused →
//! completed, or cancelled at any point before completion.
//!
//! Starting freezes the audience in the log. The audience is resolved outside the domain (a
//! read-model query that lists the segment's customers and leaves out the opted-out, blocked
//! and banned ones, with their reasons) and handed to [`BroadcastCommand::Start`]; the start
//! records `broadcast.started` and, in the same append, `broadcast.audience_frozen` events of
//! at most [`FROZEN_BATCH`] customers each, listing every recipient and every customer left
//! out. A customer who arrives later is in none of them. An audience holds at most
//! [`crate::validate::MAX_AUDIENCE`] customers (recipients and left-out together).
//!
//! The sender then records outcomes in batches of at most 100 recipients, each recipient of
//! the frozen audience once, and nobody else; the batch that leaves no recipient pending also
//! completes the broadcast. Outcomes of messages that were in flight may still be recorded
//! after a cancel, so the counters match what Telegram accepted. Broadcasts started before the
//! audience was recorded keep the old checks (never more outcomes than the size, recipients of
//! an explicit list only) and are completed by [`BroadcastCommand::Complete`]. Whether one
//! customer may receive a broadcast is [`crate::customer::CustomerState::accepts_broadcasts`].
//!
//! Button presses and previews are in [`interaction`].

mod event;
pub mod interaction;
#[cfg(test)]
mod tests;
mod validation;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

pub use event::{
    Audience, AudienceFrozen, BroadcastContent, BroadcastDrafted, BroadcastEdited, BroadcastEnded,
    BroadcastEvent, BroadcastScheduled, BroadcastStarted, BroadcastStartedV1, BroadcastStep,
    ButtonAction, Excluded, InlineButton, Outcome, OutcomesRecorded, RecipientOutcome,
    ResolvedAudience, SkipReason, TextFormat,
};
pub use interaction::{
    ButtonPressed, Interactions, MAX_PRESSES_PER_CUSTOMER, MAX_PREVIEWS, PreviewFailed,
    PreviewOutcome, PreviewRequested, PreviewSent, PreviewStatus,
};

/// Most customers (recipients and left-out together) one `broadcast.audience_frozen` event
/// lists: about 60 KB of JSON for recipients, well under the log's 1 MiB per payload.
pub const FROZEN_BATCH: usize = 5_000;

use crate::decider::Decider;
use crate::ids::{AgentId, BroadcastId, CustomerId};
use crate::validate::{self, InvalidInput};
use validation::{validate_audience, validate_content, validate_outcome};

/// Everything one can ask of a broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastCommand {
    /// Write a new draft.
    Draft {
        /// The id for it.
        broadcast_id: BroadcastId,
        /// Who it goes to.
        audience: Audience,
        /// What it sends.
        content: BroadcastContent,
        /// Who drafts.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace the draft's audience and content.
    Edit {
        /// Who it goes to.
        audience: Audience,
        /// What it sends.
        content: BroadcastContent,
        /// Who edits.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Send it later (or move the time of a scheduled one).
    Schedule {
        /// When sending should start; must be in the future.
        send_at: DateTime<Utc>,
        /// Who schedules.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Take a scheduled broadcast back to draft.
    Unschedule {
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Start sending to a frozen audience.
    Start {
        /// The audience, resolved from the read models just before.
        audience: ResolvedAudience,
        /// Who starts it (`None`: the scheduler, which may only start a scheduled broadcast
        /// whose time has come).
        by: Option<AgentId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record a batch of outcomes (1 to 100 recipients).
    RecordOutcomes {
        /// The batch.
        outcomes: Vec<RecipientOutcome>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Stop sending for now.
    Pause {
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Go on sending.
    Resume {
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Mark it done once every recipient has an outcome.
    Complete {
        /// When.
        at: DateTime<Utc>,
    },
    /// Abandon it.
    Cancel {
        /// Who (`None`: the system).
        by: Option<AgentId>,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record a customer's press of a callback button (once started, also when finished).
    PressButton {
        /// Who pressed.
        customer: CustomerId,
        /// The button's place among all the broadcast's buttons, row by row, from 0.
        index: u8,
        /// When.
        at: DateTime<Utc>,
    },
    /// Send the draft to one chat before the broadcast starts.
    RequestPreview {
        /// An id for the preview.
        preview_id: uuid::Uuid,
        /// The Telegram user whose private chat gets it.
        chat: i64,
        /// Who asks.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record how a preview went (the delivery worker).
    RecordPreviewOutcome {
        /// The preview.
        preview_id: uuid::Uuid,
        /// How it went.
        outcome: PreviewOutcome,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Why a broadcast command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BroadcastError {
    /// No such broadcast.
    #[error("this broadcast does not exist")]
    NotDrafted,
    /// Drafting twice.
    #[error("this broadcast already exists")]
    AlreadyDrafted,
    /// Editing after the draft stage.
    #[error("this broadcast can only be changed while it is a draft")]
    NotDraft,
    /// Scheduling in the past.
    #[error("the scheduled time must be in the future")]
    ScheduleInPast,
    /// Scheduling or starting twice.
    #[error("this broadcast has already started")]
    AlreadyStarted,
    /// Pausing, resuming, recording or completing before the start.
    #[error("this broadcast has not started")]
    NotStarted,
    /// Anything after completion or cancellation.
    #[error("this broadcast is finished")]
    Finished,
    /// A recipient recorded twice.
    #[error("customer {0} already has an outcome")]
    DuplicateRecipient(CustomerId),
    /// A recipient outside an explicit audience.
    #[error("customer {0} is not in this broadcast's audience")]
    NotInAudience(CustomerId),
    /// More outcomes than the frozen audience holds.
    #[error("more outcomes than recipients (the audience holds {audience_size})")]
    MoreOutcomesThanAudience {
        /// The frozen audience size.
        audience_size: u32,
    },
    /// The scheduler starting a broadcast that is not scheduled, or not yet due.
    #[error("this broadcast is not due")]
    NotDue,
    /// The audience was resolved from another segment than the draft's (it was edited
    /// meanwhile).
    #[error("the broadcast's audience changed while it was being resolved; start it again")]
    AudienceChanged,
    /// A customer both a recipient and left out, or listed twice.
    #[error("customer {0} is listed twice in the resolved audience")]
    ListedTwice(CustomerId),
    /// Completing before every recipient has an outcome.
    #[error("only {recorded} of {audience_size} recipients have an outcome")]
    Incomplete {
        /// Outcomes recorded.
        recorded: u32,
        /// The frozen audience size.
        audience_size: u32,
    },
    /// A press of a button the broadcast does not have, or one that is not a callback button.
    #[error("this broadcast has no callback button number {0}")]
    NoSuchButton(u8),
    /// Asking for more previews than allowed.
    #[error("this broadcast has had its {max} previews")]
    TooManyPreviews {
        /// The limit.
        max: usize,
    },
    /// An outcome for a preview nobody asked for.
    #[error("no such preview of this broadcast")]
    UnknownPreview,
    /// An input out of bounds.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

/// Where a broadcast stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastStatus {
    /// Being written.
    Draft,
    /// Waiting for its time.
    Scheduled(DateTime<Utc>),
    /// Being sent.
    Running,
    /// Sending stopped for now.
    Paused,
    /// Every recipient has an outcome.
    Completed,
    /// Abandoned.
    Cancelled,
}

impl BroadcastStatus {
    /// Whether nothing more can happen.
    #[must_use]
    pub const fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }

    /// Whether sending has begun (running, paused or finished after a start).
    #[must_use]
    pub const fn has_started(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Completed)
    }
}

/// Outcome counts so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Delivered.
    pub delivered: u32,
    /// Failed.
    pub failed: u32,
    /// Skipped.
    pub skipped: u32,
}

impl Tally {
    /// All outcomes.
    #[must_use]
    pub const fn total(&self) -> u32 {
        self.delivered
            .saturating_add(self.failed)
            .saturating_add(self.skipped)
    }
}

/// A drafted broadcast. Read it; change it only through events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastState {
    /// The broadcast.
    pub id: BroadcastId,
    /// Where it stands.
    pub status: BroadcastStatus,
    /// Who it goes to.
    pub audience: Audience,
    /// What it sends.
    pub content: BroadcastContent,
    /// The frozen audience size (recipients to send to), once started.
    pub audience_size: u32,
    /// Whether it started (also when cancelled afterwards).
    pub started: bool,
    /// Whether the log lists its audience (every broadcast started by this version).
    pub frozen: bool,
    /// The frozen recipients, when `frozen`.
    pub recipients: BTreeSet<CustomerId>,
    /// Customers of the segment left out at the start (counted as skipped by the read model).
    pub excluded: u32,
    /// Recipients with an outcome.
    pub recorded: BTreeSet<CustomerId>,
    /// Outcome counts.
    pub tally: Tally,
    /// Button presses and previews.
    pub interactions: Interactions,
}

/// A broadcast's state: not drafted, or drafted (in any status).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Broadcast {
    /// No draft yet.
    #[default]
    NotDrafted,
    /// Drafted; see the status.
    Drafted(Box<BroadcastState>),
}

impl Broadcast {
    /// The state, once drafted.
    #[must_use]
    pub fn state(&self) -> Option<&BroadcastState> {
        match self {
            Self::NotDrafted => None,
            Self::Drafted(state) => Some(state),
        }
    }
}

impl BroadcastState {
    /// The frozen recipients without an outcome yet, in ascending id order.
    pub fn pending(&self) -> impl Iterator<Item = CustomerId> + '_ {
        self.recipients
            .iter()
            .copied()
            .filter(|customer| !self.recorded.contains(customer))
    }

    /// How many frozen recipients have no outcome yet.
    #[must_use]
    pub fn pending_count(&self) -> usize {
        (self.audience_size as usize).saturating_sub(self.recorded.len())
    }

    fn start(
        &self,
        audience: &ResolvedAudience,
        by: Option<AgentId>,
        at: DateTime<Utc>,
    ) -> Result<Vec<BroadcastEvent>, BroadcastError> {
        use BroadcastStatus as S;
        match (self.status, by) {
            (S::Scheduled(due), None) if due <= at => {}
            (S::Draft | S::Scheduled(_), None) => return Err(BroadcastError::NotDue),
            (S::Draft | S::Scheduled(_), Some(_)) => {}
            _ => return Err(BroadcastError::AlreadyStarted),
        }
        if audience.segment != self.audience {
            return Err(BroadcastError::AudienceChanged);
        }
        validate::count(
            "customers in the audience",
            audience.recipients.len() + audience.excluded.len(),
            validate::MAX_AUDIENCE,
        )?;
        let listed = match &self.audience {
            Audience::Explicit { customers } => Some(customers.iter().collect::<BTreeSet<_>>()),
            _ => None,
        };
        let mut seen = BTreeSet::new();
        let everyone = audience
            .recipients
            .iter()
            .chain(audience.excluded.iter().map(|excluded| &excluded.customer));
        for customer in everyone {
            if !seen.insert(*customer) {
                return Err(BroadcastError::ListedTwice(*customer));
            }
            if listed.as_ref().is_some_and(|list| !list.contains(customer)) {
                return Err(BroadcastError::NotInAudience(*customer));
            }
        }
        let audience_size = u32::try_from(audience.recipients.len()).unwrap_or(u32::MAX);
        let mut events = vec![BroadcastEvent::Started(BroadcastStarted {
            audience_size,
            by,
            at,
            excluded: u32::try_from(audience.excluded.len()).unwrap_or(u32::MAX),
            frozen: true,
        })];
        for batch in audience.recipients.chunks(FROZEN_BATCH) {
            events.push(BroadcastEvent::AudienceFrozen(AudienceFrozen {
                recipients: batch.to_vec(),
                excluded: vec![],
            }));
        }
        for batch in audience.excluded.chunks(FROZEN_BATCH) {
            events.push(BroadcastEvent::AudienceFrozen(AudienceFrozen {
                recipients: vec![],
                excluded: batch.to_vec(),
            }));
        }
        if audience_size == 0 {
            events.push(BroadcastEvent::Completed(BroadcastEnded { by: None, at }));
        }
        Ok(events)
    }

    fn record_outcomes(
        &self,
        outcomes: &[RecipientOutcome],
        at: DateTime<Utc>,
    ) -> Result<Vec<BroadcastEvent>, BroadcastError> {
        if outcomes.is_empty() {
            return Err(InvalidInput::Empty {
                field: "outcome batch",
            }
            .into());
        }
        validate::count(
            "outcomes in one batch",
            outcomes.len(),
            validate::MAX_OUTCOME_BATCH,
        )?;
        let mut batch = BTreeSet::new();
        for outcome in outcomes {
            validate_outcome(outcome)?;
            if self.recorded.contains(&outcome.customer) || !batch.insert(outcome.customer) {
                return Err(BroadcastError::DuplicateRecipient(outcome.customer));
            }
            if self.frozen {
                if !self.recipients.contains(&outcome.customer) {
                    return Err(BroadcastError::NotInAudience(outcome.customer));
                }
            } else if let Audience::Explicit { customers } = &self.audience
                && !customers.contains(&outcome.customer)
            {
                return Err(BroadcastError::NotInAudience(outcome.customer));
            }
        }
        if self.recorded.len() + outcomes.len() > self.audience_size as usize {
            return Err(BroadcastError::MoreOutcomesThanAudience {
                audience_size: self.audience_size,
            });
        }
        let mut events = vec![BroadcastEvent::OutcomesRecorded(OutcomesRecorded {
            at,
            outcomes: outcomes.to_vec(),
        })];
        let last = self.recorded.len() + outcomes.len() == self.audience_size as usize;
        if self.frozen && last && !self.status.is_finished() {
            events.push(BroadcastEvent::Completed(BroadcastEnded { by: None, at }));
        }
        Ok(events)
    }

    fn decide(&self, command: &BroadcastCommand) -> Result<Vec<BroadcastEvent>, BroadcastError> {
        use BroadcastCommand as C;
        use BroadcastEvent as E;
        use BroadcastStatus as S;
        let status = self.status;
        match command {
            C::Draft { .. } => Err(BroadcastError::AlreadyDrafted),
            // Presses and preview outcomes come also after the end.
            C::PressButton {
                customer,
                index,
                at,
            } => self.press_button(*customer, *index, *at),
            C::RecordPreviewOutcome {
                preview_id,
                outcome,
                at,
            } => self.record_preview(*preview_id, outcome, *at),
            C::Cancel { .. } if status == S::Cancelled => Ok(vec![]),
            // Messages in flight when it was cancelled still get their outcome.
            C::RecordOutcomes { outcomes, at } if status == S::Cancelled && self.started => {
                self.record_outcomes(outcomes, *at)
            }
            _ if status.is_finished() => Err(BroadcastError::Finished),
            C::Cancel { by, at } => Ok(vec![E::Cancelled(BroadcastEnded { by: *by, at: *at })]),
            C::RequestPreview {
                preview_id,
                chat,
                by,
                at,
            } => self.request_preview(*preview_id, *chat, *by, *at),
            C::Edit {
                audience,
                content,
                by,
                at,
            } => {
                if status != S::Draft {
                    return Err(BroadcastError::NotDraft);
                }
                validate_audience(audience)?;
                validate_content(content)?;
                if *audience == self.audience && *content == self.content {
                    return Ok(vec![]);
                }
                Ok(vec![E::Edited(BroadcastEdited {
                    by: *by,
                    at: *at,
                    audience: audience.clone(),
                    content: content.clone(),
                })])
            }
            C::Schedule { send_at, by, at } => match status {
                S::Scheduled(current) if current == *send_at => Ok(vec![]),
                S::Draft | S::Scheduled(_) if send_at <= at => Err(BroadcastError::ScheduleInPast),
                S::Draft | S::Scheduled(_) => Ok(vec![E::Scheduled(BroadcastScheduled {
                    send_at: *send_at,
                    by: *by,
                    at: *at,
                })]),
                _ => Err(BroadcastError::AlreadyStarted),
            },
            C::Unschedule { by, at } => match status {
                S::Draft => Ok(vec![]),
                S::Scheduled(_) => Ok(vec![E::Unscheduled(BroadcastEnded {
                    by: Some(*by),
                    at: *at,
                })]),
                _ => Err(BroadcastError::AlreadyStarted),
            },
            C::Start { audience, by, at } => self.start(audience, *by, *at),
            _ if !status.has_started() => Err(BroadcastError::NotStarted),
            C::RecordOutcomes { outcomes, at } => self.record_outcomes(outcomes, *at),
            C::Pause { by, at } if status == S::Running => {
                Ok(vec![E::Paused(BroadcastStep { by: *by, at: *at })])
            }
            C::Resume { by, at } if status == S::Paused => {
                Ok(vec![E::Resumed(BroadcastStep { by: *by, at: *at })])
            }
            C::Pause { .. } | C::Resume { .. } => Ok(vec![]),
            C::Complete { at } => {
                let recorded = self.tally.total();
                if recorded < self.audience_size {
                    return Err(BroadcastError::Incomplete {
                        recorded,
                        audience_size: self.audience_size,
                    });
                }
                Ok(vec![E::Completed(BroadcastEnded { by: None, at: *at })])
            }
        }
    }

    fn apply(&mut self, event: &BroadcastEvent) {
        use BroadcastEvent as E;
        use BroadcastStatus as S;
        self.interactions.apply(event);
        match event {
            E::Drafted(_) => {}
            E::Edited(edited) => {
                if self.status == S::Draft {
                    self.audience = edited.audience.clone();
                    self.content = edited.content.clone();
                }
            }
            E::Scheduled(scheduled) => {
                if matches!(self.status, S::Draft | S::Scheduled(_)) {
                    self.status = S::Scheduled(scheduled.send_at);
                }
            }
            E::Unscheduled(_) => {
                if matches!(self.status, S::Scheduled(_)) {
                    self.status = S::Draft;
                }
            }
            E::Started(started) => {
                if matches!(self.status, S::Draft | S::Scheduled(_)) {
                    self.status = S::Running;
                    self.started = true;
                    self.frozen = started.frozen;
                    self.excluded = started.excluded;
                    self.audience_size = started.audience_size;
                }
            }
            E::AudienceFrozen(frozen) => {
                if self.frozen {
                    self.recipients.extend(frozen.recipients.iter().copied());
                }
            }
            E::OutcomesRecorded(recorded) => {
                for outcome in &recorded.outcomes {
                    if !self.recorded.insert(outcome.customer) {
                        continue;
                    }
                    let counter = match outcome.outcome {
                        Outcome::Delivered { .. } => &mut self.tally.delivered,
                        Outcome::Failed { .. } => &mut self.tally.failed,
                        Outcome::Skipped { .. } => &mut self.tally.skipped,
                    };
                    *counter = counter.saturating_add(1);
                }
            }
            E::Paused(_) => {
                if self.status == S::Running {
                    self.status = S::Paused;
                }
            }
            E::Resumed(_) => {
                if self.status == S::Paused {
                    self.status = S::Running;
                }
            }
            E::Completed(_) => {
                if !self.status.is_finished() {
                    self.status = S::Completed;
                }
            }
            E::Cancelled(_) => {
                if !self.status.is_finished() {
                    self.status = S::Cancelled;
                }
            }
            E::ButtonPressed(_)
            | E::PreviewRequested(_)
            | E::PreviewSent(_)
            | E::PreviewFailed(_) => {}
        }
    }
}

impl Decider for Broadcast {
    type Command = BroadcastCommand;
    type Event = BroadcastEvent;
    type Error = BroadcastError;

    fn decide(&self, command: &BroadcastCommand) -> Result<Vec<BroadcastEvent>, BroadcastError> {
        match (self, command) {
            (
                Self::NotDrafted,
                BroadcastCommand::Draft {
                    broadcast_id,
                    audience,
                    content,
                    by,
                    at,
                },
            ) => {
                validate_audience(audience)?;
                validate_content(content)?;
                Ok(vec![BroadcastEvent::Drafted(BroadcastDrafted {
                    broadcast_id: *broadcast_id,
                    by: *by,
                    at: *at,
                    audience: audience.clone(),
                    content: content.clone(),
                })])
            }
            (Self::NotDrafted, _) => Err(BroadcastError::NotDrafted),
            (Self::Drafted(state), command) => state.decide(command),
        }
    }

    fn evolve(self, event: &BroadcastEvent) -> Self {
        match (self, event) {
            (Self::NotDrafted, BroadcastEvent::Drafted(drafted)) => {
                Self::Drafted(Box::new(BroadcastState {
                    id: drafted.broadcast_id,
                    status: BroadcastStatus::Draft,
                    audience: drafted.audience.clone(),
                    content: drafted.content.clone(),
                    audience_size: 0,
                    started: false,
                    frozen: false,
                    recipients: BTreeSet::new(),
                    excluded: 0,
                    recorded: BTreeSet::new(),
                    tally: Tally::default(),
                    interactions: Interactions::default(),
                }))
            }
            (Self::NotDrafted, _) => Self::NotDrafted,
            (Self::Drafted(mut state), event) => {
                state.apply(event);
                Self::Drafted(state)
            }
        }
    }
}
