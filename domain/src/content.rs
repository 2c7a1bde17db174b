//! What messages carry: customer messages as Telegram delivers them, agent replies and
//! broadcast media, with their validation.
//!
//! Everything here except ids and kinds is personal data (text, captions, file ids, locations,
//! contacts, forward origins). Events keep these types in a nested `content` field so they can
//! be encrypted later without reshaping the events.
//!
//! A customer message is a fact: it is bounded only by the generous customer limits of
//! [`crate::validate`] (Telegram's own limits lie well within them), never by the limits on
//! what agents write. Fields added over time are optional and absent from older payloads, so
//! every stored event keeps decoding.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::MessageId;
use crate::validate::{self, InvalidInput};

/// A message id as Telegram numbers it inside one chat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TelegramMessageId(pub i32);

/// A file stored by Telegram: `file_id` lets the bot send or download it, `file_unique_id`
/// identifies the same file across bots and over time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TelegramFile {
    /// Id to download or resend the file (bot-specific).
    pub file_id: String,
    /// Stable id of the file itself.
    pub file_unique_id: String,
}

impl TelegramFile {
    /// The file with these ids.
    #[must_use]
    pub fn new(file_id: impl Into<String>, file_unique_id: impl Into<String>) -> Self {
        Self {
            file_id: file_id.into(),
            file_unique_id: file_unique_id.into(),
        }
    }

    fn validate(&self) -> Result<(), InvalidInput> {
        validate::required("file id", &self.file_id, CUSTOMER_TEXT)?;
        validate::required("file unique id", &self.file_unique_id, CUSTOMER_TEXT)
    }
}

/// The customer limit on any one text (see [`crate::validate`]).
const CUSTOMER_TEXT: usize = validate::MAX_CUSTOMER_TEXT_CHARS;

fn customer_text(field: &'static str, value: &str) -> Result<(), InvalidInput> {
    validate::at_most(field, value, CUSTOMER_TEXT)
}

fn customer_optional(field: &'static str, value: Option<&str>) -> Result<(), InvalidInput> {
    value.map_or(Ok(()), |value| customer_text(field, value))
}

/// A small preview image of a media file, as Telegram sends it along.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thumbnail {
    /// The preview's file.
    pub file: TelegramFile,
    /// Its width in pixels.
    pub width: u32,
    /// Its height in pixels.
    pub height: u32,
    /// Its size in bytes, when Telegram says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
}

/// What Telegram tells about the file of a media message besides its ids. Every field is
/// optional: Telegram gives some only for some kinds (a duration for sound and video, a
/// performer for music, a set name for stickers), and messages recorded before these were
/// kept have none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaDetails {
    /// The file name the sender's client reported (animations, videos, music; a document's
    /// name is in its body).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The MIME type the sender's client reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    /// The size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// Width in pixels (photos, videos, animations, stickers; a video note's diameter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Height in pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Length in seconds (videos, animations, music, voice and video notes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u32>,
    /// A preview image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail: Option<Thumbnail>,
    /// A music file's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A music file's performer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub performer: Option<String>,
    /// The sticker set a sticker belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_name: Option<String>,
    /// Whether a sticker is animated (TGS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
    /// Whether a sticker is a video (WEBM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<bool>,
}

impl MediaDetails {
    /// Whether Telegram told nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn validate(&self) -> Result<(), InvalidInput> {
        customer_optional("file name", self.file_name.as_deref())?;
        customer_optional("MIME type", self.mime_type.as_deref())?;
        customer_optional("title", self.title.as_deref())?;
        customer_optional("performer", self.performer.as_deref())?;
        customer_optional("sticker set name", self.set_name.as_deref())?;
        self.thumbnail
            .as_ref()
            .map_or(Ok(()), |thumbnail| thumbnail.file.validate())
    }
}

/// One task of a checklist a customer sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistTask {
    /// What the task says.
    pub text: String,
    /// Whether it was marked done.
    pub done: bool,
}

/// What kind of message a customer sent; safe to show without the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// Plain text.
    Text,
    /// A photo.
    Photo,
    /// A video.
    Video,
    /// A file.
    Document,
    /// A music file.
    Audio,
    /// A voice message.
    Voice,
    /// A round video message.
    VideoNote,
    /// A sticker.
    Sticker,
    /// A GIF or silent video.
    Animation,
    /// A point on the map.
    Location,
    /// A named place on the map.
    Venue,
    /// A shared phone contact.
    Contact,
    /// An animated emoji with a random value (dice, darts, slot machine…).
    Dice,
    /// A poll or quiz.
    Poll,
    /// A forwarded story.
    Story,
    /// A checklist.
    Checklist,
    /// Media behind a payment in Telegram Stars.
    PaidMedia,
    /// Something that happened in the chat rather than something written (a message was
    /// pinned…).
    Service,
    /// A kind of message Ledgerdesk does not model (a game, a giveaway, an invoice, or a kind
    /// newer than this code): kept so the team sees the customer wrote.
    Unsupported,
}

impl MessageKind {
    /// Whether Telegram allows a caption on this kind.
    #[must_use]
    pub const fn takes_caption(self) -> bool {
        matches!(
            self,
            Self::Photo
                | Self::Video
                | Self::Document
                | Self::Audio
                | Self::Voice
                | Self::Animation
                | Self::PaidMedia
                | Self::Unsupported
        )
    }
}

/// The body of a customer message, one variant per Telegram message kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageBody {
    /// Plain text.
    Text {
        /// The text, at most 4096 characters.
        text: String,
    },
    /// A photo (the largest size Telegram offered).
    Photo {
        /// The photo file.
        file: TelegramFile,
    },
    /// A video.
    Video {
        /// The video file.
        file: TelegramFile,
    },
    /// A file.
    Document {
        /// The document file.
        file: TelegramFile,
        /// The file name the customer's client reported.
        file_name: Option<String>,
    },
    /// A music file.
    Audio {
        /// The audio file.
        file: TelegramFile,
    },
    /// A voice message.
    Voice {
        /// The voice file.
        file: TelegramFile,
    },
    /// A round video message.
    VideoNote {
        /// The video note file.
        file: TelegramFile,
    },
    /// A sticker.
    Sticker {
        /// The sticker file.
        file: TelegramFile,
        /// The emoji the sticker stands for.
        emoji: Option<String>,
    },
    /// A GIF or silent video.
    Animation {
        /// The animation file.
        file: TelegramFile,
    },
    /// A point on the map.
    Location {
        /// Degrees, -90 to 90.
        latitude: f64,
        /// Degrees, -180 to 180.
        longitude: f64,
    },
    /// A named place on the map.
    Venue {
        /// Degrees, -90 to 90.
        latitude: f64,
        /// Degrees, -180 to 180.
        longitude: f64,
        /// The place's name.
        title: String,
        /// The place's address.
        address: String,
    },
    /// A shared phone contact.
    Contact {
        /// The contact's phone number.
        phone_number: String,
        /// The contact's first name.
        first_name: String,
        /// The contact's last name.
        last_name: Option<String>,
        /// The contact's Telegram user id, when Telegram knows it.
        user_id: Option<i64>,
    },
    /// An animated emoji with a random value.
    Dice {
        /// The emoji thrown (🎲, 🎯, 🏀, ⚽, 🎳, 🎰).
        emoji: String,
        /// The value it landed on.
        value: u8,
    },
    /// A poll or quiz.
    Poll {
        /// The question.
        question: String,
        /// The answers offered, in order.
        options: Vec<String>,
        /// Whether it is a quiz (one right answer).
        quiz: bool,
        /// Whether several answers may be chosen.
        multiple_answers: bool,
    },
    /// A forwarded story.
    Story {
        /// The chat that posted the story.
        chat_id: i64,
        /// The story's id in that chat.
        story_id: u64,
    },
    /// A checklist.
    Checklist {
        /// Its title.
        title: String,
        /// Its tasks, in order.
        tasks: Vec<ChecklistTask>,
    },
    /// Media behind a payment in Telegram Stars.
    PaidMedia {
        /// The price in Stars.
        star_count: u32,
        /// The kind of each medium: `photo`, `video` or `preview` (not visible before paying).
        media: Vec<String>,
    },
    /// Something that happened in the chat.
    Service {
        /// What happened, as Telegram names the field (`pinned_message`,
        /// `write_access_allowed`, …).
        action: String,
        /// The message it concerns (the pinned message), when there is one.
        message: Option<TelegramMessageId>,
    },
    /// A kind of message Ledgerdesk does not model.
    Unsupported {
        /// What kind, as Telegram names the field (`game`, `giveaway`, `invoice`, …).
        kind: String,
    },
}

impl MessageBody {
    /// The kind of this body.
    #[must_use]
    pub const fn kind(&self) -> MessageKind {
        match self {
            Self::Text { .. } => MessageKind::Text,
            Self::Photo { .. } => MessageKind::Photo,
            Self::Video { .. } => MessageKind::Video,
            Self::Document { .. } => MessageKind::Document,
            Self::Audio { .. } => MessageKind::Audio,
            Self::Voice { .. } => MessageKind::Voice,
            Self::VideoNote { .. } => MessageKind::VideoNote,
            Self::Sticker { .. } => MessageKind::Sticker,
            Self::Animation { .. } => MessageKind::Animation,
            Self::Location { .. } => MessageKind::Location,
            Self::Venue { .. } => MessageKind::Venue,
            Self::Contact { .. } => MessageKind::Contact,
            Self::Dice { .. } => MessageKind::Dice,
            Self::Poll { .. } => MessageKind::Poll,
            Self::Story { .. } => MessageKind::Story,
            Self::Checklist { .. } => MessageKind::Checklist,
            Self::PaidMedia { .. } => MessageKind::PaidMedia,
            Self::Service { .. } => MessageKind::Service,
            Self::Unsupported { .. } => MessageKind::Unsupported,
        }
    }

    /// The file the body carries, if any.
    #[must_use]
    pub const fn file(&self) -> Option<&TelegramFile> {
        match self {
            Self::Photo { file }
            | Self::Video { file }
            | Self::Document { file, .. }
            | Self::Audio { file }
            | Self::Voice { file }
            | Self::VideoNote { file }
            | Self::Sticker { file, .. }
            | Self::Animation { file } => Some(file),
            _ => None,
        }
    }

    /// Checks the customer bounds (see [`crate::validate`]): a file must have its ids,
    /// coordinates must lie on the globe, and no text may pass the customer limit.
    fn validate(&self) -> Result<(), InvalidInput> {
        match self {
            Self::Text { text } => validate::required("message text", text, CUSTOMER_TEXT),
            Self::Photo { file }
            | Self::Video { file }
            | Self::Audio { file }
            | Self::Voice { file }
            | Self::VideoNote { file }
            | Self::Animation { file } => file.validate(),
            Self::Document { file, file_name } => {
                file.validate()?;
                customer_optional("file name", file_name.as_deref())
            }
            Self::Sticker { file, emoji } => {
                file.validate()?;
                customer_optional("sticker emoji", emoji.as_deref())
            }
            Self::Location {
                latitude,
                longitude,
            } => coordinates(*latitude, *longitude),
            Self::Venue {
                latitude,
                longitude,
                title,
                address,
            } => {
                coordinates(*latitude, *longitude)?;
                customer_text("venue title", title)?;
                customer_text("venue address", address)
            }
            Self::Contact {
                phone_number,
                first_name,
                last_name,
                user_id: _,
            } => {
                customer_text("contact phone number", phone_number)?;
                customer_text("contact first name", first_name)?;
                customer_optional("contact last name", last_name.as_deref())
            }
            Self::Dice { emoji, value: _ } => customer_text("dice emoji", emoji),
            Self::Poll {
                question, options, ..
            } => {
                customer_text("poll question", question)?;
                validate::count("poll options", options.len(), validate::MAX_CUSTOMER_ITEMS)?;
                options
                    .iter()
                    .try_for_each(|option| customer_text("poll option", option))
            }
            Self::Story { .. } => Ok(()),
            Self::Checklist { title, tasks } => {
                customer_text("checklist title", title)?;
                validate::count("checklist tasks", tasks.len(), validate::MAX_CUSTOMER_ITEMS)?;
                tasks
                    .iter()
                    .try_for_each(|task| customer_text("checklist task", &task.text))
            }
            Self::PaidMedia { media, .. } => {
                validate::count("paid media", media.len(), validate::MAX_CUSTOMER_ITEMS)?;
                media
                    .iter()
                    .try_for_each(|kind| customer_text("paid media kind", kind))
            }
            Self::Service { action, .. } => customer_text("service action", action),
            Self::Unsupported { kind } => customer_text("message kind", kind),
        }
    }
}

fn coordinates(latitude: f64, longitude: f64) -> Result<(), InvalidInput> {
    if !(-90.0..=90.0).contains(&latitude) {
        return Err(InvalidInput::OutOfRange {
            field: "latitude",
            min: -90,
            max: 90,
        });
    }
    if !(-180.0..=180.0).contains(&longitude) {
        return Err(InvalidInput::OutOfRange {
            field: "longitude",
            min: -180,
            max: 180,
        });
    }
    Ok(())
}

/// Where a forwarded message originally came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ForwardOrigin {
    /// A Telegram user who allows linking to their account.
    User {
        /// Their Telegram user id.
        user_id: i64,
        /// Their display name.
        name: String,
    },
    /// A Telegram user who hides their account.
    HiddenUser {
        /// The name they forward under.
        name: String,
    },
    /// A group chat.
    Chat {
        /// The chat id.
        chat_id: i64,
        /// The chat title.
        title: String,
    },
    /// A channel post.
    Channel {
        /// The channel id.
        chat_id: i64,
        /// The channel title.
        title: String,
        /// The post's id in the channel.
        message_id: TelegramMessageId,
    },
}

impl ForwardOrigin {
    fn validate(&self) -> Result<(), InvalidInput> {
        let name = match self {
            Self::User { name, .. } | Self::HiddenUser { name } => name,
            Self::Chat { title, .. } | Self::Channel { title, .. } => title,
        };
        customer_text("forward origin name", name)
    }
}

/// Everything personal in a customer message: the body, its caption, what Telegram told about
/// its file, and where it was forwarded from. Kept together so it can be encrypted as one
/// field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageContent {
    /// The message itself.
    pub body: MessageBody,
    /// The caption under media (1024 characters, 4096 for Telegram Premium users).
    pub caption: Option<String>,
    /// Where a forwarded message came from.
    pub forwarded_from: Option<ForwardOrigin>,
    /// When the forwarded message was first sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forwarded_at: Option<DateTime<Utc>>,
    /// What Telegram told about the body's file besides its ids (boxed: most messages have
    /// none, and the content travels inside every command and event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<Box<MediaDetails>>,
    /// The album the message belongs to: Telegram sends each photo, video, document or music
    /// file of an album as a message of its own, all with the same group id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_group_id: Option<String>,
    /// How the text (or, for media, the caption) is formatted and what it links to, as
    /// Telegram marks it: bold, links, mentions, code… (empty for plain text).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<TextEntity>,
}

/// A marked span of a message's text or caption, as Telegram's `MessageEntity` has it.
/// Offsets and lengths count UTF-16 code units, as Telegram counts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextEntity {
    /// Telegram's type: `bold`, `italic`, `underline`, `strikethrough`, `spoiler`, `code`,
    /// `pre`, `text_link`, `url`, `mention`, `hashtag`, `cashtag`, `bot_command`, `email`,
    /// `phone_number`, `blockquote`, `expandable_blockquote`, `text_mention`, `custom_emoji`
    /// (kept as sent, so types Telegram adds later are kept too).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where it starts, in UTF-16 code units from the start of the text.
    pub offset: u32,
    /// Its length in UTF-16 code units.
    pub length: u32,
    /// The target of a `text_link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The programming language of a `pre` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The custom emoji of a `custom_emoji` (its text is the plain emoji it stands for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_emoji_id: Option<String>,
    /// The Telegram user a `text_mention` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<u64>,
}

impl TextEntity {
    /// A span of `kind` with nothing more to it (bold, a hashtag…).
    #[must_use]
    pub fn new(kind: impl Into<String>, offset: u32, length: u32) -> Self {
        Self {
            kind: kind.into(),
            offset,
            length,
            url: None,
            language: None,
            custom_emoji_id: None,
            user_id: None,
        }
    }

    fn validate(&self) -> Result<(), InvalidInput> {
        customer_text("text entity type", &self.kind)?;
        customer_optional("text link", self.url.as_deref())?;
        customer_optional("code language", self.language.as_deref())?;
        customer_optional("custom emoji id", self.custom_emoji_id.as_deref())
    }
}

impl MessageBody {
    /// The body as it reads once its sender is forgotten: the same kind, with every text, file
    /// id, place and contact emptied (coordinates 0, counts and flags kept where they are not
    /// personal).
    #[must_use]
    pub fn forgotten(&self) -> Self {
        let file = || TelegramFile::new("", "");
        match self {
            Self::Text { .. } => Self::Text {
                text: String::new(),
            },
            Self::Photo { .. } => Self::Photo { file: file() },
            Self::Video { .. } => Self::Video { file: file() },
            Self::Document { .. } => Self::Document {
                file: file(),
                file_name: None,
            },
            Self::Audio { .. } => Self::Audio { file: file() },
            Self::Voice { .. } => Self::Voice { file: file() },
            Self::VideoNote { .. } => Self::VideoNote { file: file() },
            Self::Sticker { .. } => Self::Sticker {
                file: file(),
                emoji: None,
            },
            Self::Animation { .. } => Self::Animation { file: file() },
            Self::Location { .. } => Self::Location {
                latitude: 0.0,
                longitude: 0.0,
            },
            Self::Venue { .. } => Self::Venue {
                latitude: 0.0,
                longitude: 0.0,
                title: String::new(),
                address: String::new(),
            },
            Self::Contact { .. } => Self::Contact {
                phone_number: String::new(),
                first_name: String::new(),
                last_name: None,
                user_id: None,
            },
            Self::Dice { .. } => Self::Dice {
                emoji: String::new(),
                value: 0,
            },
            Self::Poll {
                quiz,
                multiple_answers,
                ..
            } => Self::Poll {
                question: String::new(),
                options: Vec::new(),
                quiz: *quiz,
                multiple_answers: *multiple_answers,
            },
            Self::Story { .. } => Self::Story {
                chat_id: 0,
                story_id: 0,
            },
            Self::Checklist { .. } => Self::Checklist {
                title: String::new(),
                tasks: Vec::new(),
            },
            Self::PaidMedia { .. } => Self::PaidMedia {
                star_count: 0,
                media: Vec::new(),
            },
            Self::Service { .. } => Self::Service {
                action: String::new(),
                message: None,
            },
            Self::Unsupported { .. } => Self::Unsupported {
                kind: String::new(),
            },
        }
    }
}

impl MessageContent {
    /// The content as it reads once its sender is forgotten: the body's kind and nothing
    /// personal (no caption, forward origin, file details or album).
    #[must_use]
    pub fn forgotten(&self) -> Self {
        Self::of(self.body.forgotten())
    }

    /// A plain text message.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self::of(MessageBody::Text { text: text.into() })
    }

    /// `body` alone: no caption, not forwarded, nothing more known about its file.
    #[must_use]
    pub const fn of(body: MessageBody) -> Self {
        Self {
            body,
            caption: None,
            forwarded_from: None,
            forwarded_at: None,
            media: None,
            media_group_id: None,
            entities: Vec::new(),
        }
    }

    /// The kind of the body.
    #[must_use]
    pub const fn kind(&self) -> MessageKind {
        self.body.kind()
    }

    /// Checks the bounds of every part: the customer limits of [`crate::validate`], which
    /// nothing Telegram delivers reaches.
    ///
    /// # Errors
    /// The first bound broken.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        self.body.validate()?;
        if let Some(caption) = &self.caption {
            if !self.kind().takes_caption() {
                return Err(InvalidInput::Malformed {
                    field: "caption",
                    why: "this kind of message cannot have a caption",
                });
            }
            customer_text("caption", caption)?;
        }
        if let Some(media) = &self.media {
            media.validate()?;
        }
        customer_optional("media group id", self.media_group_id.as_deref())?;
        validate::count(
            "text entities",
            self.entities.len(),
            validate::MAX_CUSTOMER_TEXT_CHARS,
        )?;
        self.entities.iter().try_for_each(TextEntity::validate)?;
        self.forwarded_from
            .as_ref()
            .map_or(Ok(()), ForwardOrigin::validate)
    }
}

/// A message a customer sent on Telegram, as the bot hands it to the domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CustomerMessage {
    /// Our id for the message (generated outside the domain).
    pub message_id: MessageId,
    /// Telegram's id for the message in the customer's chat.
    pub telegram_message_id: TelegramMessageId,
    /// The Telegram message this one replies to, if any.
    pub reply_to: Option<TelegramMessageId>,
    /// The personal part.
    pub content: MessageContent,
}

/// The kinds of media an agent or a broadcast can send by Telegram file id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A photo.
    Photo,
    /// A video.
    Video,
    /// A file.
    Document,
    /// A music file.
    Audio,
    /// A voice message.
    Voice,
    /// A GIF or silent video.
    Animation,
}

/// How a file an agent uploaded to Ledgerdesk is named in [`OutgoingMedia::file_id`] until
/// Telegram has it: this prefix, then the upload's uuid. Telegram's own file ids use only
/// letters, digits, `-` and `_`, so the two never meet. The delivery worker uploads such a file
/// and reuses the id Telegram gives it for later sends.
pub const UPLOAD_FILE_ID_PREFIX: &str = "upload:";

/// A media file sent by Telegram file id (uploaded earlier through the bot), or a file an
/// agent uploaded to Ledgerdesk ([`UPLOAD_FILE_ID_PREFIX`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMedia {
    /// How to send it.
    pub kind: MediaKind,
    /// Telegram's file id.
    pub file_id: String,
}

impl OutgoingMedia {
    /// The upload this medium sends, when it is one (see [`UPLOAD_FILE_ID_PREFIX`]).
    #[must_use]
    pub fn upload(&self) -> Option<uuid::Uuid> {
        upload_of(&self.file_id)
    }

    /// Checks the file id.
    ///
    /// # Errors
    /// A blank or overlong file id.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        validate::required("file id", &self.file_id, validate::MAX_FILE_ID_CHARS)
    }
}

/// The upload a file id names, when it names one (see [`UPLOAD_FILE_ID_PREFIX`]).
#[must_use]
pub fn upload_of(file_id: &str) -> Option<uuid::Uuid> {
    file_id
        .strip_prefix(UPLOAD_FILE_ID_PREFIX)
        .and_then(|id| uuid::Uuid::try_parse(id).ok())
}

/// What an agent sends to a customer: text and/or media. Personal data as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyContent {
    /// The text, at most 4096 characters.
    pub text: Option<String>,
    /// Media by Telegram file id, at most 10.
    pub media: Vec<OutgoingMedia>,
}

impl ReplyContent {
    /// A text-only reply.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: Some(text.into()),
            media: Vec::new(),
        }
    }

    /// Checks that the reply says something and fits Telegram's limits.
    ///
    /// # Errors
    /// An empty reply, overlong text, too many media or a bad file id.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        if self.text.is_none() && self.media.is_empty() {
            return Err(InvalidInput::Empty { field: "reply" });
        }
        validate::optional("reply text", self.text.as_deref(), validate::MAX_TEXT_CHARS)?;
        validate::count("attachments", self.media.len(), validate::MAX_REPLY_MEDIA)?;
        self.media.iter().try_for_each(OutgoingMedia::validate)
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::*;

    fn photo() -> MessageBody {
        MessageBody::Photo {
            file: TelegramFile::new("AgAD", "AQAD"),
        }
    }

    #[test]
    fn a_caption_is_accepted_on_media_only() {
        let mut content = MessageContent {
            caption: Some("look".into()),
            ..MessageContent::of(photo())
        };
        assert_eq!(content.validate(), Ok(()));
        content.body = MessageBody::Text { text: "hi".into() };
        assert!(content.validate().is_err());
    }

    #[test]
    fn what_telegram_premium_allows_is_kept_and_only_absurd_lengths_are_refused() {
        // Premium captions, long file names, forward names, venue titles, phone numbers:
        // facts a customer already sent, far above the limits on what agents write.
        let long = |n| "x".repeat(n);
        let content = MessageContent {
            caption: Some(long(4096)),
            forwarded_from: Some(ForwardOrigin::HiddenUser { name: long(300) }),
            ..MessageContent::of(MessageBody::Document {
                file: TelegramFile::new("BQAD", "AgAD"),
                file_name: Some(long(255)),
            })
        };
        assert_eq!(content.validate(), Ok(()));
        let venue = MessageContent::of(MessageBody::Venue {
            latitude: 1.0,
            longitude: 2.0,
            title: long(500),
            address: long(2000),
        });
        assert_eq!(venue.validate(), Ok(()));
        let contact = MessageContent::of(MessageBody::Contact {
            phone_number: long(64),
            first_name: long(200),
            last_name: None,
            user_id: None,
        });
        assert_eq!(contact.validate(), Ok(()));
        let absurd = MessageContent {
            caption: Some(long(validate::MAX_CUSTOMER_TEXT_CHARS + 1)),
            ..MessageContent::of(photo())
        };
        assert_eq!(
            absurd.validate(),
            Err(InvalidInput::TooLong {
                field: "caption",
                max: validate::MAX_CUSTOMER_TEXT_CHARS,
                actual: validate::MAX_CUSTOMER_TEXT_CHARS + 1
            })
        );
    }

    #[test]
    fn content_written_before_media_details_were_kept_still_reads() {
        let old = serde_json::json!({
            "body": {"type": "photo", "file": {"file_id": "AgAD", "file_unique_id": "AQAD"}},
            "caption": "look",
            "forwarded_from": null
        });
        let content: MessageContent = serde_json::from_value(old.clone()).unwrap();
        assert_eq!(content.media, None);
        assert_eq!(content.forwarded_at, None);
        assert_eq!(content.media_group_id, None);
        // And it is written back exactly as it was.
        assert_eq!(serde_json::to_value(&content).unwrap(), old);
    }

    #[test]
    fn a_location_off_the_globe_is_rejected() {
        let content = MessageContent::of(MessageBody::Location {
            latitude: 91.0,
            longitude: 0.0,
        });
        assert!(matches!(
            content.validate(),
            Err(InvalidInput::OutOfRange {
                field: "latitude",
                ..
            })
        ));
    }

    #[test]
    fn an_empty_reply_is_rejected() {
        let reply = ReplyContent {
            text: None,
            media: vec![],
        };
        assert_eq!(
            reply.validate(),
            Err(InvalidInput::Empty { field: "reply" })
        );
    }

    #[test]
    fn an_upload_is_named_by_its_prefix_and_a_telegram_file_id_never_is() {
        let id = uuid::Uuid::from_u128(7);
        let upload = OutgoingMedia {
            kind: MediaKind::Document,
            file_id: format!("{UPLOAD_FILE_ID_PREFIX}{id}"),
        };
        assert_eq!(upload.upload(), Some(id));
        assert_eq!(upload.validate(), Ok(()));
        for file_id in ["AgADBAAD", "upload:", "upload:not-a-uuid", "xupload:0"] {
            assert_eq!(upload_of(file_id), None, "{file_id}");
        }
    }

    #[test]
    fn a_media_only_reply_is_accepted() {
        let reply = ReplyContent {
            text: None,
            media: vec![OutgoingMedia {
                kind: MediaKind::Photo,
                file_id: "AgAD".into(),
            }],
        };
        assert_eq!(reply.validate(), Ok(()));
    }
}
