//! What a message carries besides its words, as GraphQL shows it: its file with everything
//! Telegram told about it ([`Media`]), and the typed parts of the kinds that are neither text
//! nor a file (dice, polls, stories, checklists, paid media, chat events, unsupported kinds).
//!
//! All of it is read from the `messages` row (`media` and `details`, see
//! `projections::tickets`); a value the row does not hold (a message recorded before it was
//! kept) reads as null.

use async_graphql::{ComplexObject, Context, ID, Result, SimpleObject};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{Permission, Principal};
use crate::graphql::context::Api;
use crate::graphql::guard::{self, Need};
use crate::media_refs::{MediaRef, Part, signed_url};

/// A file of a message with what Telegram told about it. Which fields are set depends on the
/// kind: dimensions for photos, videos, animations, stickers and video notes; a duration for
/// videos, animations, music, voice and video notes; title and performer for music; set name,
/// emoji and the animated/video flags for stickers. Messages recorded before these details
/// were kept have the kind and ids only.
#[derive(Debug, Clone, PartialEq, SimpleObject, Deserialize)]
#[graphql(complex)]
pub struct Media {
    /// Which file of which message this is (set by the message that holds it).
    #[graphql(skip)]
    #[serde(skip)]
    pub reference: Option<MediaRef>,
    /// photo, video, document, audio, voice, video_note, sticker or animation.
    pub kind: String,
    /// Telegram's id to download or resend the file (valid for this bot only).
    pub file_id: String,
    /// Telegram's lasting id of the file (null for media agents sent).
    #[serde(default)]
    pub file_unique_id: Option<String>,
    /// The file name the sender's client reported.
    #[serde(default)]
    pub file_name: Option<String>,
    /// The MIME type the sender's client reported.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// The size in bytes (a Float: files can pass 2^31 bytes).
    #[serde(default)]
    pub file_size: Option<f64>,
    /// Width in pixels (a video note's diameter).
    #[serde(default)]
    pub width: Option<i32>,
    /// Height in pixels.
    #[serde(default)]
    pub height: Option<i32>,
    /// Length in seconds.
    #[serde(default)]
    pub duration: Option<i32>,
    /// A small preview image.
    #[serde(default)]
    pub thumbnail: Option<Thumbnail>,
    /// A music file's title.
    #[serde(default)]
    pub title: Option<String>,
    /// A music file's performer.
    #[serde(default)]
    pub performer: Option<String>,
    /// The sticker set a sticker belongs to.
    #[serde(default)]
    pub set_name: Option<String>,
    /// The emoji a sticker stands for.
    #[serde(default)]
    pub emoji: Option<String>,
    /// Whether a sticker is animated (TGS).
    #[serde(default, rename = "animated")]
    pub is_animated: Option<bool>,
    /// Whether a sticker is a video (WEBM).
    #[serde(default, rename = "video")]
    pub is_video: Option<bool>,
}

impl Media {
    /// The same media, as the file `reference` names.
    #[must_use]
    pub fn named(mut self, reference: MediaRef) -> Self {
        self.reference = Some(reference);
        self
    }

    /// A signed URL of `part` of this media's message for the caller.
    async fn url_of(&self, ctx: &Context<'_>, part: Option<Part>) -> Result<Option<String>> {
        let api = ctx.data_unchecked::<Api>();
        let (Some(media), Some(reference)) = (api.media.as_ref(), self.reference) else {
            return Ok(None);
        };
        let caller = guard::current(ctx).await?;
        let reference = MediaRef {
            part: part.unwrap_or(reference.part),
            ..reference
        };
        Ok(Some(signed_url(media, reference, Principal::of(&caller))))
    }
}

#[ComplexObject]
impl Media {
    /// The media id: `GET /media/{mediaId}` serves the file to a caller who may read the
    /// ticket (with `Authorization: Bearer …`).
    async fn media_id(&self) -> Option<String> {
        self.reference.map(|reference| reference.to_string())
    }

    /// A URL of the file for this caller, signed and valid for minutes (see
    /// LEDGERDESK_MEDIA_URL_TTL_SECS): for `<img>`, `<video>` and `<audio>`, which cannot
    /// send an Authorization header. Relative to the API's origin. Null when the server keeps
    /// no media.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        self.url_of(ctx, None).await
    }

    /// A signed URL of the file's preview (a photo's smallest size, a video's or document's
    /// thumbnail), when Telegram sent one.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn thumbnail_url(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        if self.thumbnail.is_none() {
            return Ok(None);
        }
        self.url_of(ctx, Some(Part::Thumbnail)).await
    }
}

/// A small preview image of a file.
#[derive(Debug, Clone, PartialEq, SimpleObject, Deserialize)]
pub struct Thumbnail {
    /// Telegram's id to download the preview.
    pub file_id: String,
    /// Telegram's lasting id of the preview.
    pub file_unique_id: String,
    /// Width in pixels.
    pub width: i32,
    /// Height in pixels.
    pub height: i32,
    /// The size in bytes.
    #[serde(default)]
    pub file_size: Option<f64>,
}

/// An animated emoji with a random value.
#[derive(Debug, Clone, PartialEq, SimpleObject, Deserialize)]
pub struct Dice {
    /// 🎲, 🎯, 🏀, ⚽, 🎳 or 🎰.
    pub emoji: String,
    /// The value it landed on (1–6; 1–5 for 🏀 and ⚽; 1–64 for 🎰).
    pub value: i32,
}

/// A poll or quiz a customer sent.
#[derive(Debug, Clone, PartialEq, SimpleObject, Deserialize)]
pub struct Poll {
    /// The question.
    pub question: String,
    /// The answers offered, in order.
    pub options: Vec<String>,
    /// Whether it is a quiz (one right answer).
    pub quiz: bool,
    /// Whether several answers may be chosen.
    pub multiple_answers: bool,
}

/// A story a customer forwarded.
#[derive(Debug, Clone, PartialEq, SimpleObject)]
pub struct Story {
    /// The Telegram chat that posted it.
    pub chat_id: ID,
    /// The story's id in that chat.
    pub story_id: ID,
}

/// A checklist a customer sent.
#[derive(Debug, Clone, PartialEq, SimpleObject, Deserialize)]
pub struct Checklist {
    /// Its title.
    pub title: String,
    /// Its tasks, in order.
    pub tasks: Vec<ChecklistTask>,
}

/// One task of a checklist.
#[derive(Debug, Clone, PartialEq, SimpleObject, Deserialize)]
pub struct ChecklistTask {
    /// What it says.
    pub text: String,
    /// Whether it was marked done.
    pub done: bool,
}

/// Media behind a payment in Telegram Stars.
#[derive(Debug, Clone, PartialEq, SimpleObject, Deserialize)]
pub struct PaidMedia {
    /// The price in Stars.
    pub star_count: i32,
    /// The kind of each medium: photo, video, or preview (not visible before paying).
    pub media: Vec<String>,
}

/// The typed parts of a message that is neither text nor a file, read from its row's details;
/// for an agent reply, the media it sent.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    pub(super) dice: Option<Dice>,
    pub(super) poll: Option<Poll>,
    pub(super) story: Option<Story>,
    pub(super) checklist: Option<Checklist>,
    pub(super) paid_media: Option<PaidMedia>,
    pub(super) service_action: Option<String>,
    pub(super) unsupported_kind: Option<String>,
    pub(super) reply_media: Vec<Media>,
}

impl Extras {
    /// The media an agent reply sent, from its row's details (`[{kind, file_id}]`).
    pub(super) fn of_reply(details: Option<&Value>) -> Self {
        Self {
            reply_media: details
                .and_then(Value::as_array)
                .map(|items| items.iter().filter_map(read).collect())
                .unwrap_or_default(),
            ..Self::default()
        }
    }

    /// The parts of a message of `kind` whose row holds `details`.
    pub(super) fn of(kind: &str, details: Option<&Value>) -> Self {
        let Some(details) = details else {
            return Self::default();
        };
        let text = |field: &str| {
            details
                .get(field)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let id = |field: &str| {
            details
                .get(field)
                .filter(|value| value.is_number())
                .map(|value| ID(value.to_string()))
        };
        match kind {
            "dice" => Self {
                dice: read(details),
                ..Self::default()
            },
            "poll" => Self {
                poll: read(details),
                ..Self::default()
            },
            "story" => Self {
                story: id("chat_id")
                    .zip(id("story_id"))
                    .map(|(chat_id, story_id)| Story { chat_id, story_id }),
                ..Self::default()
            },
            "checklist" => Self {
                checklist: read(details),
                ..Self::default()
            },
            "paid_media" => Self {
                paid_media: read(details),
                ..Self::default()
            },
            "service" => Self {
                service_action: text("action"),
                ..Self::default()
            },
            "unsupported" => Self {
                unsupported_kind: text("kind"),
                ..Self::default()
            },
            _ => Self::default(),
        }
    }
}

fn read<T: serde::de::DeserializeOwned>(value: &Value) -> Option<T> {
    T::deserialize(value).ok()
}

/// The media of a row's `media` column; `None` when absent or unreadable.
pub(super) fn media(value: Option<&Value>) -> Option<Media> {
    value.and_then(read)
}
