//! What a ticket holds, as GraphQL shows it: its status and priority, and the messages and
//! notes of its conversation.

use async_graphql::{ComplexObject, Context, Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};

use domain::ticket::{Priority, TicketStatus};
use std::sync::Arc;

use projections::StoredText;
use projections::delivery::DeliveryRetry as RetryRow;
use projections::tickets::{DeliveryState, Direction, MessageRow, NoteRow};
use tokio::sync::OnceCell;

use super::media::{self, Checklist, Dice, Extras, Media, PaidMedia, Poll, Story};
use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::error::database;
use crate::graphql::guard::{self, Need};
use crate::graphql::ids;
use crate::media_refs::{MediaRef, Part};

/// Where a ticket is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum TicketStatusValue {
    /// Opened, nobody answered yet.
    New,
    /// Being worked.
    Open,
    /// Waiting for the customer.
    Pending,
    /// Solved; the customer may reopen it within the reopen window.
    Resolved,
    /// Done for good.
    Closed,
}

impl From<TicketStatus> for TicketStatusValue {
    fn from(status: TicketStatus) -> Self {
        match status {
            TicketStatus::New => TicketStatusValue::New,
            TicketStatus::Open => TicketStatusValue::Open,
            TicketStatus::Pending => TicketStatusValue::Pending,
            TicketStatus::Resolved => TicketStatusValue::Resolved,
            TicketStatus::Closed => TicketStatusValue::Closed,
        }
    }
}

impl From<TicketStatusValue> for TicketStatus {
    fn from(status: TicketStatusValue) -> Self {
        match status {
            TicketStatusValue::New => TicketStatus::New,
            TicketStatusValue::Open => TicketStatus::Open,
            TicketStatusValue::Pending => TicketStatus::Pending,
            TicketStatusValue::Resolved => TicketStatus::Resolved,
            TicketStatusValue::Closed => TicketStatus::Closed,
        }
    }
}

/// How urgent a ticket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum PriorityValue {
    /// Low.
    Low,
    /// Normal (the default).
    Normal,
    /// High.
    High,
    /// Urgent.
    Urgent,
}

impl From<Priority> for PriorityValue {
    fn from(priority: Priority) -> Self {
        match priority {
            Priority::Low => PriorityValue::Low,
            Priority::Normal => PriorityValue::Normal,
            Priority::High => PriorityValue::High,
            Priority::Urgent => PriorityValue::Urgent,
        }
    }
}

impl From<PriorityValue> for Priority {
    fn from(priority: PriorityValue) -> Self {
        match priority {
            PriorityValue::Low => Priority::Low,
            PriorityValue::Normal => Priority::Normal,
            PriorityValue::High => Priority::High,
            PriorityValue::Urgent => Priority::Urgent,
        }
    }
}

/// Who sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum MessageDirection {
    /// From the customer.
    In,
    /// An agent's reply.
    Out,
}

impl From<Direction> for MessageDirection {
    fn from(direction: Direction) -> Self {
        match direction {
            Direction::In => MessageDirection::In,
            Direction::Out => MessageDirection::Out,
        }
    }
}

/// A customer message or an agent reply.
#[derive(Debug, Clone, SimpleObject)]
#[graphql(complex)]
pub struct Message {
    /// The ticket it was posted on.
    #[graphql(skip)]
    pub ticket: uuid::Uuid,
    /// Global id.
    pub id: ID,
    /// The message's uuid.
    pub message_id: ID,
    /// Its place in the ticket (the ticket stream version that posted it).
    pub seq: i64,
    /// In (customer) or out (agent).
    pub direction: MessageDirection,
    /// The replying agent, for replies.
    pub author_agent_id: Option<ID>,
    /// text, photo, video, document…
    pub kind: String,
    /// Its text.
    pub text: Option<String>,
    /// A media caption.
    pub caption: Option<String>,
    /// How a customer message's text (or, for media, its caption) is formatted and what it
    /// links to, as Telegram marked it, in text order (empty for plain text and for replies).
    pub entities: Vec<MessageEntity>,
    /// Telegram's file id of its media.
    pub file_id: Option<String>,
    /// Location, venue, contact, sticker emoji, document name; for replies, the media sent.
    pub details: Option<Json<serde_json::Value>>,
    /// Where a forwarded message came from.
    pub forward_origin: Option<Json<serde_json::Value>>,
    /// When a forwarded message was first sent.
    pub forwarded_at: Option<DateTime<Utc>>,
    /// Its file with everything Telegram told about it (null for text and the kinds without
    /// a file); for an agent reply, the first medium it sent.
    pub media: Option<Box<Media>>,
    /// The album a customer message belongs to: Telegram sends each file of an album as a
    /// message of its own, all with this id. See `album`.
    pub media_group_id: Option<String>,
    /// Telegram's id of the message in the customer's chat: for a customer message as it
    /// arrived, for an agent reply once Telegram accepted it (null while pending or failed).
    pub telegram_message_id: Option<i32>,
    /// The Telegram message it replies to (see `replyTo` for the message itself).
    pub reply_to_telegram_message_id: Option<i32>,
    /// The template a reply was written from.
    pub template_id: Option<ID>,
    /// The delivery state as the read model has it (`retrying` is told by the worker's table).
    #[graphql(skip)]
    pub stored_delivery_state: Option<DeliveryState>,
    /// The worker's retries of a pending reply, read once per message object.
    #[graphql(skip)]
    pub retry: Arc<OnceCell<Option<RetryRow>>>,
    /// Why delivery failed.
    pub failure_reason: Option<String>,
    /// When the customer last edited it.
    pub edited_at: Option<DateTime<Utc>>,
    /// The versions the message had before the customer's edits, oldest first (empty when
    /// never edited): the first is the message as sent. The current version is the message
    /// itself.
    pub edits: Vec<MessageEdit>,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// The message's uuid.
    #[graphql(skip)]
    pub uuid: uuid::Uuid,
    /// The parts of the kinds that are neither text nor a file, and the media an agent reply
    /// sent (boxed: most messages have none).
    #[graphql(skip)]
    pub extras: Box<Extras>,
}

/// A marked span of a message's text or caption: Telegram's `MessageEntity`. `offset` and
/// `length` count UTF-16 code units (as JavaScript string indices do). Spans may nest (bold
/// inside a link) and, in principle, overlap.
#[derive(Debug, Clone, PartialEq, SimpleObject)]
pub struct MessageEntity {
    /// `bold`, `italic`, `underline`, `strikethrough`, `spoiler`, `code`, `pre`,
    /// `text_link`, `url`, `mention`, `hashtag`, `cashtag`, `bot_command`, `email`,
    /// `phone_number`, `blockquote`, `expandable_blockquote`, `text_mention`,
    /// `custom_emoji`, or a type Telegram added later (show its text plainly).
    #[graphql(name = "type")]
    pub kind: String,
    /// Where it starts, in UTF-16 code units.
    pub offset: i32,
    /// How long it is, in UTF-16 code units.
    pub length: i32,
    /// The target of a `text_link`, as the customer's client sent it (check the scheme before
    /// making it a link).
    pub url: Option<String>,
    /// The programming language of a `pre` block.
    pub language: Option<String>,
    /// The custom emoji of a `custom_emoji` (the span's text is the plain emoji).
    pub custom_emoji_id: Option<String>,
    /// The Telegram user a `text_mention` names.
    pub user_id: Option<ID>,
}

/// An entity as the read model keeps it in a message's `details.entities`.
#[derive(serde::Deserialize)]
struct StoredEntity {
    #[serde(rename = "type")]
    kind: String,
    offset: u32,
    length: u32,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    custom_emoji_id: Option<String>,
    #[serde(default)]
    user_id: Option<u64>,
}

/// The entities of a customer message's row (unreadable ones are left out).
fn entities(details: Option<&serde_json::Value>) -> Vec<MessageEntity> {
    details
        .and_then(|details| details.get("entities"))
        .and_then(serde_json::Value::as_array)
        .map(|entities| {
            entities
                .iter()
                .filter_map(|entity| serde_json::from_value::<StoredEntity>(entity.clone()).ok())
                .filter_map(|entity| {
                    Some(MessageEntity {
                        kind: entity.kind,
                        offset: i32::try_from(entity.offset).ok()?,
                        length: i32::try_from(entity.length).ok()?,
                        url: entity.url,
                        language: entity.language,
                        custom_emoji_id: entity.custom_emoji_id,
                        user_id: entity.user_id.map(|id| ID(id.to_string())),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A version of a customer message that an edit replaced.
#[derive(Debug, Clone, SimpleObject, serde::Deserialize)]
pub struct MessageEdit {
    /// text, photo, video, document… (an edit may change a photo into another kind of media)
    pub kind: String,
    /// Its text.
    pub text: Option<String>,
    /// Its media caption.
    pub caption: Option<String>,
    /// When the customer's edit replaced this version.
    pub edited_at: DateTime<Utc>,
}

/// The versions kept in a message row's `edits` (unreadable entries are left out).
fn edits(row: &MessageRow) -> Vec<MessageEdit> {
    row.edits
        .as_array()
        .map(|versions| {
            versions
                .iter()
                .filter_map(|version| serde_json::from_value(version.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

impl From<MessageRow> for Message {
    fn from(row: MessageRow) -> Self {
        let edits = edits(&row);
        let entities = match row.direction {
            Direction::In => entities(row.details.as_ref()),
            Direction::Out => Vec::new(),
        };
        let mut extras = match row.direction {
            Direction::In => Extras::of(row.kind.as_str(), row.details.as_ref()),
            Direction::Out => Extras::of_reply(row.details.as_ref()),
        };
        let named = |part| MediaRef {
            message: row.id,
            part,
        };
        for (n, media) in extras.reply_media.iter_mut().enumerate() {
            media.reference = u8::try_from(n).ok().map(|n| named(Part::Item(n)));
        }
        Message {
            uuid: row.id,
            extras: Box::new(extras),
            forwarded_at: row.forwarded_at,
            media: media::media(row.media.as_ref())
                .map(|media| Box::new(media.named(named(Part::Main)))),
            media_group_id: row.media_group_id,
            ticket: row.ticket_id,
            id: ids::global("Message", row.id),
            message_id: ID(row.id.to_string()),
            seq: row.seq,
            direction: row.direction.into(),
            author_agent_id: row.author_agent_id.map(|id| ID(id.to_string())),
            kind: row.kind.as_str().to_owned(),
            text: row.text,
            caption: row.caption,
            entities,
            file_id: row.file_id,
            details: row.details.map(Json),
            forward_origin: row.forward_origin.map(Json),
            telegram_message_id: row
                .telegram_message_id
                .or(row.delivered_telegram_message_id),
            reply_to_telegram_message_id: row.reply_to_telegram_message_id,
            template_id: row.template_id.map(|id| ID(id.to_string())),
            stored_delivery_state: row.delivery_state,
            retry: Arc::default(),
            failure_reason: row.failure_reason,
            edited_at: row.edited_at,
            edits,
            created_at: row.created_at,
        }
    }
}

/// A reply the bot keeps trying to deliver after transient failures (network errors,
/// Telegram's server errors).
#[derive(Debug, Clone, SimpleObject)]
pub struct DeliveryRetry {
    /// Failed attempts so far.
    pub attempts: i32,
    /// When the first attempt failed; the bot gives up (and the reply becomes `failed`) once
    /// the configured retry window has passed since then.
    pub first_failed_at: DateTime<Utc>,
    /// When the bot tries next.
    pub next_attempt_at: DateTime<Utc>,
    /// Why the last attempt failed.
    pub last_error: String,
}

impl Message {
    /// The worker's retries of this reply, when it is pending and being retried.
    async fn retry_row(&self, ctx: &Context<'_>) -> Result<Option<RetryRow>> {
        if self.stored_delivery_state != Some(DeliveryState::Pending) {
            return Ok(None);
        }
        let api = ctx.data_unchecked::<Api>();
        let id = self.message_id.parse::<uuid::Uuid>()?;
        self.retry
            .get_or_try_init(|| async {
                projections::delivery::retry(&api.pool, id)
                    .await
                    .map_err(database)
            })
            .await
            .cloned()
    }
}

#[ComplexObject]
impl Message {
    /// Replies: `pending` (not sent yet, or being sent), `retrying` (sending failed for a
    /// passing reason and the bot tries again, see `deliveryRetry`), `delivered` or `failed`
    /// (see `failureReason`; `retryDelivery` sends it again). Null for customer messages.
    async fn delivery_state(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(match self.stored_delivery_state {
            Some(DeliveryState::Pending) if self.retry_row(ctx).await?.is_some() => {
                Some("retrying".to_owned())
            }
            state => state.map(|state| state.as_str().to_owned()),
        })
    }

    /// While the reply is `retrying`: its failed attempts, the next one and the last error.
    async fn delivery_retry(&self, ctx: &Context<'_>) -> Result<Option<DeliveryRetry>> {
        Ok(self.retry_row(ctx).await?.map(|row| DeliveryRetry {
            attempts: row.attempts,
            first_failed_at: row.first_failed_at,
            next_attempt_at: row.next_attempt_at,
            last_error: row.last_error,
        }))
    }

    /// A dice message: the emoji and the value it landed on.
    async fn dice(&self) -> Option<&Dice> {
        self.extras.dice.as_ref()
    }

    /// A poll or quiz: the question and the answers offered.
    async fn poll(&self) -> Option<&Poll> {
        self.extras.poll.as_ref()
    }

    /// A forwarded story: where it was posted.
    async fn story(&self) -> Option<&Story> {
        self.extras.story.as_ref()
    }

    /// A checklist: its title and tasks.
    async fn checklist(&self) -> Option<&Checklist> {
        self.extras.checklist.as_ref()
    }

    /// Paid media: the price in Stars and the kinds of media.
    async fn paid_media(&self) -> Option<&PaidMedia> {
        self.extras.paid_media.as_ref()
    }

    /// A chat event (kind `service`): what happened, as Telegram names it
    /// (`pinned_message`, `write_access_allowed`, …).
    async fn service_action(&self) -> Option<&str> {
        self.extras.service_action.as_deref()
    }

    /// A message of a kind Ledgerdesk does not model (kind `unsupported`): which kind, as
    /// Telegram names it (`game`, `giveaway`, `invoice`, … or `unknown`).
    async fn unsupported_kind(&self) -> Option<&str> {
        self.extras.unsupported_kind.as_deref()
    }

    /// The media of the album this message opens, first to last, its own included: on the
    /// first message of a Telegram album (messages sharing `mediaGroupId`), the files of all
    /// of them, so a client shows the album once, there, and skips the other messages of the
    /// group (their `album` is null); on an agent reply that sent several media, those.
    /// Null for every other message.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn album(&self, ctx: &Context<'_>) -> Result<Option<Vec<Media>>> {
        if self.extras.reply_media.len() > 1 {
            return Ok(Some(self.extras.reply_media.clone()));
        }
        let Some(group) = &self.media_group_id else {
            return Ok(None);
        };
        let api = ctx.data_unchecked::<Api>();
        let members = projections::tickets::queries::album(&api.pool, self.ticket, group)
            .await
            .map_err(database)?;
        if members.first().map(|(id, _)| *id) != Some(self.uuid) {
            return Ok(None);
        }
        Ok(Some(
            members
                .iter()
                .filter_map(|(id, media)| {
                    media::media(media.as_ref()).map(|media| {
                        media.named(MediaRef {
                            message: *id,
                            part: Part::Main,
                        })
                    })
                })
                .collect(),
        ))
    }

    /// The message it replies to: an agent's reply (by the id Telegram gave it on delivery) or
    /// a customer message, found by `replyToTelegramMessageId` in the customer's chat, on any
    /// of their tickets; null when it replies to nothing, to a message Ledgerdesk does not
    /// hold, or to one on a ticket the caller may not see.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn reply_to(&self, ctx: &Context<'_>) -> Result<Option<Message>> {
        let Some(telegram_id) = self.reply_to_telegram_message_id else {
            return Ok(None);
        };
        let api = ctx.data_unchecked::<Api>();
        let Some(row) = projections::tickets::queries::message_by_telegram_id(
            &api.pool,
            self.ticket,
            telegram_id,
        )
        .await
        .map_err(database)?
        else {
            return Ok(None);
        };
        if row.ticket_id != self.ticket {
            let scope = guard::ticket_scope(ctx).await?;
            let category = projections::tickets::queries::category(&api.pool, row.ticket_id)
                .await
                .map_err(database)?;
            if !matches!(category, Some(category) if scope.covers(category)) {
                return Ok(None);
            }
        }
        Ok(Some(row.into()))
    }
}

/// An internal note on a ticket, seen only by the team.
#[derive(Debug, Clone, SimpleObject)]
pub struct Note {
    /// Global id.
    pub id: ID,
    /// The note's uuid.
    pub note_id: ID,
    /// Its place in the ticket.
    pub seq: i64,
    /// The agent who wrote it.
    pub agent_id: ID,
    /// Its text.
    pub text: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<NoteRow> for Note {
    fn from(row: NoteRow) -> Self {
        Note {
            id: ids::global("Note", row.id),
            note_id: ID(row.id.to_string()),
            seq: row.seq,
            agent_id: ID(row.agent_id.to_string()),
            text: row.text,
            created_at: row.created_at,
        }
    }
}
