//! What happens around a broadcast besides sending it: customers pressing its callback
//! buttons, and previews of the draft sent to one chat before it starts.
//!
//! A press is recorded once the broadcast has started (running, paused, completed, or
//! cancelled after its start), for a button that exists and sends callback data; at most
//! [`MAX_PRESSES_PER_CUSTOMER`] presses of one customer are kept, so a customer tapping away
//! cannot grow the stream without bound. The caller makes each Telegram update one command
//! (its idempotency key), so a press delivered twice is recorded once.
//!
//! A preview is asked for while the broadcast is a draft or scheduled; the event carries the
//! content as it was then, and the delivery worker sends exactly that and records the outcome.
//! At most [`MAX_PREVIEWS`] previews per broadcast.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::{BroadcastContent, BroadcastEvent, ButtonAction, InlineButton};
use super::{BroadcastError, BroadcastState, BroadcastStatus};
use crate::content::TelegramMessageId;
use crate::ids::{AgentId, CustomerId};
use crate::validate::{self, InvalidInput};

/// Most presses of one customer recorded per broadcast; later ones are answered, not kept.
pub const MAX_PRESSES_PER_CUSTOMER: u32 = 20;

/// Most previews one broadcast may ask for.
pub const MAX_PREVIEWS: usize = 50;

/// `broadcast.button_pressed`: a customer pressed a callback button of the broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonPressed {
    /// Who pressed it.
    pub customer: CustomerId,
    /// The button's place among all the broadcast's buttons, row by row, from 0.
    pub index: u8,
    /// Its label, as the broadcast had it.
    pub label: String,
    /// Its callback data, as the broadcast had it.
    pub data: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// `broadcast.preview_requested`: send the draft, as it is now, to one chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewRequested {
    /// The preview's id (its outcome names it).
    pub preview_id: Uuid,
    /// The Telegram user whose private chat gets it.
    pub chat: i64,
    /// Who asked.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
    /// What is sent: the draft's content at the time of asking.
    pub content: BroadcastContent,
}

/// `broadcast.preview_sent`: Telegram accepted the preview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewSent {
    /// The preview.
    pub preview_id: Uuid,
    /// Telegram's id of the message in the chat.
    pub telegram_message_id: TelegramMessageId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `broadcast.preview_failed`: Telegram refused the preview (or could not be reached).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviewFailed {
    /// The preview.
    pub preview_id: Uuid,
    /// What Telegram said.
    pub reason: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// How a preview ended, as the delivery worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewOutcome {
    /// Telegram accepted it.
    Sent {
        /// Telegram's id of the message.
        telegram_message_id: TelegramMessageId,
    },
    /// It did not go out.
    Failed {
        /// Telegram's description (at most 1024 characters).
        reason: String,
    },
}

/// Where one preview stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewStatus {
    /// Asked for; not sent yet.
    Pending {
        /// The chat it goes to.
        chat: i64,
    },
    /// Telegram accepted it.
    Sent(TelegramMessageId),
    /// It did not go out: why.
    Failed(String),
}

/// What a broadcast remembers of presses and previews.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interactions {
    /// Whether sending ever started (a cancelled broadcast may have).
    pub started: bool,
    /// Presses recorded per customer.
    pub presses: BTreeMap<CustomerId, u32>,
    /// Every preview asked for.
    pub previews: BTreeMap<Uuid, PreviewStatus>,
}

impl Interactions {
    pub(super) fn apply(&mut self, event: &BroadcastEvent) {
        match event {
            BroadcastEvent::Started(_) => self.started = true,
            BroadcastEvent::ButtonPressed(pressed) => {
                let count = self.presses.entry(pressed.customer).or_default();
                *count = count.saturating_add(1);
            }
            BroadcastEvent::PreviewRequested(requested) => {
                self.previews
                    .entry(requested.preview_id)
                    .or_insert(PreviewStatus::Pending {
                        chat: requested.chat,
                    });
            }
            BroadcastEvent::PreviewSent(sent) => {
                if let Some(status) = self.previews.get_mut(&sent.preview_id) {
                    *status = PreviewStatus::Sent(sent.telegram_message_id);
                }
            }
            BroadcastEvent::PreviewFailed(failed) => {
                if let Some(status) = self.previews.get_mut(&failed.preview_id) {
                    *status = PreviewStatus::Failed(failed.reason.clone());
                }
            }
            _ => {}
        }
    }
}

/// The button at `index`, counting every button of `buttons` row by row from 0.
#[must_use]
pub fn button_at(buttons: &[Vec<InlineButton>], index: u8) -> Option<&InlineButton> {
    buttons.iter().flatten().nth(usize::from(index))
}

impl BroadcastState {
    pub(super) fn press_button(
        &self,
        customer: CustomerId,
        index: u8,
        at: DateTime<Utc>,
    ) -> Result<Vec<BroadcastEvent>, BroadcastError> {
        if !self.interactions.started {
            return Err(BroadcastError::NotStarted);
        }
        // Only a customer it went to has its buttons (a frozen audience says who).
        if self.frozen && !self.recipients.contains(&customer) {
            return Err(BroadcastError::NotInAudience(customer));
        }
        let Some(InlineButton {
            label,
            action: ButtonAction::Callback { data },
        }) = button_at(&self.content.buttons, index)
        else {
            return Err(BroadcastError::NoSuchButton(index));
        };
        let pressed = self
            .interactions
            .presses
            .get(&customer)
            .copied()
            .unwrap_or(0);
        if pressed >= MAX_PRESSES_PER_CUSTOMER {
            return Ok(vec![]);
        }
        Ok(vec![BroadcastEvent::ButtonPressed(ButtonPressed {
            customer,
            index,
            label: label.clone(),
            data: data.clone(),
            at,
        })])
    }

    pub(super) fn request_preview(
        &self,
        preview_id: Uuid,
        chat: i64,
        by: AgentId,
        at: DateTime<Utc>,
    ) -> Result<Vec<BroadcastEvent>, BroadcastError> {
        if !matches!(
            self.status,
            BroadcastStatus::Draft | BroadcastStatus::Scheduled(_)
        ) {
            return Err(BroadcastError::AlreadyStarted);
        }
        // Private chats have the user's id, which Telegram keeps below 2^52.
        if !(1..(1_i64 << 52)).contains(&chat) {
            return Err(InvalidInput::OutOfRange {
                field: "preview chat (a Telegram user id)",
                min: 1,
                max: (1_i64 << 52) - 1,
            }
            .into());
        }
        if self.interactions.previews.contains_key(&preview_id) {
            return Ok(vec![]);
        }
        if self.interactions.previews.len() >= MAX_PREVIEWS {
            return Err(BroadcastError::TooManyPreviews { max: MAX_PREVIEWS });
        }
        Ok(vec![BroadcastEvent::PreviewRequested(PreviewRequested {
            preview_id,
            chat,
            by,
            at,
            content: self.content.clone(),
        })])
    }

    pub(super) fn record_preview(
        &self,
        preview_id: Uuid,
        outcome: &PreviewOutcome,
        at: DateTime<Utc>,
    ) -> Result<Vec<BroadcastEvent>, BroadcastError> {
        match self.interactions.previews.get(&preview_id) {
            None => Err(BroadcastError::UnknownPreview),
            Some(PreviewStatus::Pending { .. }) => Ok(vec![match outcome {
                PreviewOutcome::Sent {
                    telegram_message_id,
                } => BroadcastEvent::PreviewSent(PreviewSent {
                    preview_id,
                    telegram_message_id: *telegram_message_id,
                    at,
                }),
                PreviewOutcome::Failed { reason } => {
                    validate::required("failure reason", reason, validate::MAX_REASON_CHARS)?;
                    BroadcastEvent::PreviewFailed(PreviewFailed {
                        preview_id,
                        reason: reason.clone(),
                        at,
                    })
                }
            }]),
            // The outcome is there already (a write retried after a lost answer).
            Some(_) => Ok(vec![]),
        }
    }
}
