//! What messages carry: customer messages as Telegram delivers them, agent replies and
//! broadcast media, with their validation.
//!
//! Everything here except ids and kinds is personal data (text, captions, file ids, locations,
//! contacts, forward origins). Events keep these types in a nested `content` field so they can
//! be encrypted later without reshaping the events.

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
    fn validate(&self) -> Result<(), InvalidInput> {
        validate::required("file id", &self.file_id, validate::MAX_FILE_ID_CHARS)?;
        validate::required(
            "file unique id",
            &self.file_unique_id,
            validate::MAX_FILE_ID_CHARS,
        )
    }
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
        }
    }

    fn validate(&self) -> Result<(), InvalidInput> {
        match self {
            Self::Text { text } => {
                validate::required("message text", text, validate::MAX_TEXT_CHARS)
            }
            Self::Photo { file }
            | Self::Video { file }
            | Self::Audio { file }
            | Self::Voice { file }
            | Self::VideoNote { file }
            | Self::Animation { file } => file.validate(),
            Self::Document { file, file_name } => {
                file.validate()?;
                validate::optional("file name", file_name.as_deref(), validate::MAX_NAME_CHARS)
            }
            Self::Sticker { file, emoji } => {
                file.validate()?;
                validate::optional("sticker emoji", emoji.as_deref(), 16)
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
                validate::required("venue title", title, validate::MAX_NAME_CHARS)?;
                validate::at_most("venue address", address, validate::MAX_REASON_CHARS)
            }
            Self::Contact {
                phone_number,
                first_name,
                last_name,
                user_id: _,
            } => {
                validate::required("contact phone number", phone_number, 32)?;
                validate::required("contact first name", first_name, validate::MAX_NAME_CHARS)?;
                validate::optional(
                    "contact last name",
                    last_name.as_deref(),
                    validate::MAX_NAME_CHARS,
                )
            }
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
        validate::at_most("forward origin name", name, validate::MAX_NAME_CHARS)
    }
}

/// Everything personal in a customer message: the body, its caption and where it was forwarded
/// from. Kept together so it can be encrypted as one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageContent {
    /// The message itself.
    pub body: MessageBody,
    /// The caption under media, at most 1024 characters.
    pub caption: Option<String>,
    /// Where a forwarded message came from.
    pub forwarded_from: Option<ForwardOrigin>,
}

impl MessageContent {
    /// A plain text message.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            body: MessageBody::Text { text: text.into() },
            caption: None,
            forwarded_from: None,
        }
    }

    /// The kind of the body.
    #[must_use]
    pub const fn kind(&self) -> MessageKind {
        self.body.kind()
    }

    /// Checks the bounds of every part.
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
            validate::at_most("caption", caption, validate::MAX_CAPTION_CHARS)?;
        }
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

/// A media file sent by Telegram file id (uploaded earlier through the bot).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMedia {
    /// How to send it.
    pub kind: MediaKind,
    /// Telegram's file id.
    pub file_id: String,
}

impl OutgoingMedia {
    /// Checks the file id.
    ///
    /// # Errors
    /// A blank or overlong file id.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        validate::required("file id", &self.file_id, validate::MAX_FILE_ID_CHARS)
    }
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
mod tests {
    use super::*;

    fn photo() -> MessageBody {
        MessageBody::Photo {
            file: TelegramFile {
                file_id: "AgAD".into(),
                file_unique_id: "AQAD".into(),
            },
        }
    }

    #[test]
    fn a_caption_is_accepted_on_media_only() {
        let mut content = MessageContent {
            body: photo(),
            caption: Some("look".into()),
            forwarded_from: None,
        };
        assert_eq!(content.validate(), Ok(()));
        content.body = MessageBody::Text { text: "hi".into() };
        assert!(content.validate().is_err());
    }

    #[test]
    fn a_caption_longer_than_telegram_allows_is_rejected() {
        let content = MessageContent {
            body: photo(),
            caption: Some("x".repeat(1025)),
            forwarded_from: None,
        };
        assert_eq!(
            content.validate(),
            Err(InvalidInput::TooLong {
                field: "caption",
                max: 1024,
                actual: 1025
            })
        );
    }

    #[test]
    fn a_location_off_the_globe_is_rejected() {
        let content = MessageContent {
            body: MessageBody::Location {
                latitude: 91.0,
                longitude: 0.0,
            },
            caption: None,
            forwarded_from: None,
        };
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
