//! Broadcast content, audiences, events and their stored names.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::interaction::{ButtonPressed, PreviewFailed, PreviewRequested, PreviewSent};
use crate::codec::event_enum;
use crate::content::{OutgoingMedia, TelegramMessageId};
use crate::ids::{AgentId, BroadcastId, CategoryId, CustomerId};
use crate::ticket::TicketStatus;

/// What pressing an inline button does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ButtonAction {
    /// Opens a link (`https://`, `http://` or `tg://`).
    Url {
        /// The link.
        url: String,
    },
    /// Sends callback data back to the bot (at most 64 bytes).
    Callback {
        /// The data.
        data: String,
    },
}

/// An inline button under the broadcast message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineButton {
    /// The button's label.
    pub label: String,
    /// What it does.
    pub action: ButtonAction,
}

/// How Telegram reads a broadcast's text (its `parse_mode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextFormat {
    /// As written: no formatting.
    #[default]
    Plain,
    /// Telegram's HTML subset (`<b>`, `<i>`, `<a href>`, …).
    Html,
    /// Telegram's MarkdownV2.
    MarkdownV2,
}

/// What a broadcast sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastContent {
    /// The text (a caption when there is media: at most 1024 characters, else 4096).
    pub text: Option<String>,
    /// How Telegram reads the text (drafts written before formats existed are plain).
    #[serde(default)]
    pub format: TextFormat,
    /// One photo, video, document… by Telegram file id.
    pub media: Option<OutgoingMedia>,
    /// Inline keyboard, row by row.
    pub buttons: Vec<Vec<InlineButton>>,
    /// Whether the message carries an "unsubscribe" button below the others (on unless the
    /// author turned it off; drafts written before the button existed have it).
    #[serde(default = "unsubscribe_by_default")]
    pub unsubscribe_button: bool,
}

const fn unsubscribe_by_default() -> bool {
    true
}

/// Who a broadcast goes to. Opted-out, blocked and banned customers are always excluded,
/// whatever the segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Audience {
    /// Every customer.
    AllCustomers,
    /// Customers with a ticket in this status.
    ByTicketStatus {
        /// The status.
        status: TicketStatus,
    },
    /// Customers with a ticket in this category.
    ByCategory {
        /// The category.
        category: CategoryId,
    },
    /// Customers whose Telegram client uses this language.
    ByLanguage {
        /// IETF language tag, e.g. `de`.
        language: String,
    },
    /// Exactly these customers.
    Explicit {
        /// The customers (no duplicates, at most 10 000).
        customers: Vec<CustomerId>,
    },
}

/// `broadcast.drafted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastDrafted {
    /// The new broadcast.
    pub broadcast_id: BroadcastId,
    /// Who drafted it.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who it goes to.
    pub audience: Audience,
    /// What it sends.
    pub content: BroadcastContent,
}

/// What a broadcast sent in schema version 1 of `broadcast.drafted` and `broadcast.edited`:
/// plain text, and no unsubscribe button chosen (it gets one, the default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastContentV1 {
    /// The text.
    pub text: Option<String>,
    /// One medium by file id.
    pub media: Option<OutgoingMedia>,
    /// Inline keyboard, row by row.
    pub buttons: Vec<Vec<InlineButton>>,
}

impl From<BroadcastContentV1> for BroadcastContent {
    fn from(v1: BroadcastContentV1) -> Self {
        Self {
            text: v1.text,
            format: TextFormat::Plain,
            media: v1.media,
            buttons: v1.buttons,
            unsubscribe_button: true,
        }
    }
}

/// `broadcast.drafted` v1, written before text formats and the unsubscribe button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastDraftedV1 {
    /// The new broadcast.
    pub broadcast_id: BroadcastId,
    /// Who drafted it.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who it goes to.
    pub audience: Audience,
    /// What it sends.
    pub content: BroadcastContentV1,
}

impl From<BroadcastDraftedV1> for BroadcastDrafted {
    fn from(v1: BroadcastDraftedV1) -> Self {
        Self {
            broadcast_id: v1.broadcast_id,
            by: v1.by,
            at: v1.at,
            audience: v1.audience,
            content: v1.content.into(),
        }
    }
}

/// `broadcast.edited` v1, written before text formats and the unsubscribe button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastEditedV1 {
    /// Who edited.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who it goes to.
    pub audience: Audience,
    /// What it sends.
    pub content: BroadcastContentV1,
}

impl From<BroadcastEditedV1> for BroadcastEdited {
    fn from(v1: BroadcastEditedV1) -> Self {
        Self {
            by: v1.by,
            at: v1.at,
            audience: v1.audience,
            content: v1.content.into(),
        }
    }
}

/// `broadcast.edited`: the whole draft after the edit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastEdited {
    /// Who edited.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
    /// Who it goes to.
    pub audience: Audience,
    /// What it sends.
    pub content: BroadcastContent,
}

/// `broadcast.scheduled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastScheduled {
    /// When sending should start.
    pub send_at: DateTime<Utc>,
    /// Who scheduled.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `broadcast.started` (v2): sending began; the audience is frozen.
///
/// When `frozen` (every start since v2), the `broadcast.audience_frozen` events of the same
/// append list every recipient and every customer left out. A v1 start carried only the size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastStarted {
    /// How many customers the frozen audience holds (those to send to).
    pub audience_size: u32,
    /// Who started it (`None`: the scheduler).
    pub by: Option<AgentId>,
    /// When.
    pub at: DateTime<Utc>,
    /// Customers of the segment left out at the start (each skipped, with its reason).
    pub excluded: u32,
    /// Whether the `broadcast.audience_frozen` events that follow list the audience.
    pub frozen: bool,
}

/// `broadcast.started` v1, written before the audience was recorded: the size only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastStartedV1 {
    /// How many customers the snapshot held.
    pub audience_size: u32,
    /// Who started it (`None`: the scheduler).
    pub by: Option<AgentId>,
    /// When.
    pub at: DateTime<Utc>,
}

impl From<BroadcastStartedV1> for BroadcastStarted {
    fn from(v1: BroadcastStartedV1) -> Self {
        Self {
            audience_size: v1.audience_size,
            by: v1.by,
            at: v1.at,
            excluded: 0,
            frozen: false,
        }
    }
}

/// Why a customer gets no broadcast message: left out when the audience froze, or skipped at
/// send time because their state changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Opted out of broadcasts.
    OptedOut,
    /// Blocked the bot.
    BlockedBot,
    /// Banned.
    Banned,
    /// Listed in an explicit audience but never wrote to the bot (no such customer).
    UnknownCustomer,
}

impl SkipReason {
    /// The reason's stored name (`opted_out`, `blocked_bot`, `banned`, `unknown_customer`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OptedOut => "opted_out",
            Self::BlockedBot => "blocked_bot",
            Self::Banned => "banned",
            Self::UnknownCustomer => "unknown_customer",
        }
    }
}

/// A customer of the segment left out when the audience froze.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Excluded {
    /// The customer (or, for [`SkipReason::UnknownCustomer`], the id listed).
    pub customer: CustomerId,
    /// Why.
    pub reason: SkipReason,
}

/// A broadcast's audience as resolved from the read models when it starts: who gets the
/// message, and who of the segment does not and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAudience {
    /// The segment it was resolved from; the start is refused when the draft's differs.
    pub segment: Audience,
    /// The recipients (no duplicates).
    pub recipients: Vec<CustomerId>,
    /// The customers left out (none of them a recipient).
    pub excluded: Vec<Excluded>,
}

/// `broadcast.audience_frozen`: one batch of the audience frozen at the start (at most
/// [`super::FROZEN_BATCH`] customers in all), written in the start's append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudienceFrozen {
    /// Recipients of this batch.
    #[serde(default)]
    pub recipients: Vec<CustomerId>,
    /// Customers of this batch left out, each counted as skipped.
    #[serde(default)]
    pub excluded: Vec<Excluded>,
}

/// What happened with one recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    /// Telegram accepted the message.
    Delivered {
        /// Telegram's id for it.
        telegram_message_id: TelegramMessageId,
    },
    /// Telegram refused it.
    Failed {
        /// What Telegram said.
        reason: String,
        /// Whether sending again may work.
        retryable: bool,
    },
    /// Not sent: the customer may no longer receive broadcasts.
    Skipped {
        /// Why.
        reason: SkipReason,
    },
}

/// One recipient's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientOutcome {
    /// The recipient.
    pub customer: CustomerId,
    /// What happened.
    pub outcome: Outcome,
}

/// `broadcast.outcomes_recorded`: outcomes of at most 100 recipients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomesRecorded {
    /// When.
    pub at: DateTime<Utc>,
    /// The batch.
    pub outcomes: Vec<RecipientOutcome>,
}

/// `broadcast.paused`, `broadcast.resumed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastStep {
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `broadcast.unscheduled`, `broadcast.completed`, `broadcast.cancelled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastEnded {
    /// Who (`None`: the sender worker or the scheduler).
    pub by: Option<AgentId>,
    /// When.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Everything that can happen to a broadcast.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum BroadcastEvent {
        /// Drafted.
        Drafted(BroadcastDrafted) = "broadcast.drafted" v 2, upcast [1 => BroadcastDraftedV1];
        /// Draft edited.
        Edited(BroadcastEdited) = "broadcast.edited" v 2, upcast [1 => BroadcastEditedV1];
        /// Scheduled (or rescheduled).
        Scheduled(BroadcastScheduled) = "broadcast.scheduled" v 1;
        /// Back to draft.
        Unscheduled(BroadcastEnded) = "broadcast.unscheduled" v 1;
        /// Sending began.
        Started(BroadcastStarted) = "broadcast.started" v 2, upcast [1 => BroadcastStartedV1];
        /// A batch of the frozen audience.
        AudienceFrozen(AudienceFrozen) = "broadcast.audience_frozen" v 1;
        /// A batch of outcomes.
        OutcomesRecorded(OutcomesRecorded) = "broadcast.outcomes_recorded" v 1;
        /// Sending paused.
        Paused(BroadcastStep) = "broadcast.paused" v 1;
        /// Sending resumed.
        Resumed(BroadcastStep) = "broadcast.resumed" v 1;
        /// Every recipient has an outcome.
        Completed(BroadcastEnded) = "broadcast.completed" v 1;
        /// Abandoned.
        Cancelled(BroadcastEnded) = "broadcast.cancelled" v 1;
        /// A customer pressed a callback button.
        ButtonPressed(ButtonPressed) = "broadcast.button_pressed" v 1;
        /// A preview of the draft was asked for.
        PreviewRequested(PreviewRequested) = "broadcast.preview_requested" v 1;
        /// Telegram accepted a preview.
        PreviewSent(PreviewSent) = "broadcast.preview_sent" v 1;
        /// A preview did not go out.
        PreviewFailed(PreviewFailed) = "broadcast.preview_failed" v 1;
    }
}
