//! Which file a media id names, and the signed URLs of media.
//!
//! A media id names a file of a message: `<message uuid>` for its file (an agent reply's
//! first medium), `<message uuid>.thumb` for its preview (a photo's smallest size, a video's
//! thumbnail), `<message uuid>.<n>` for the n-th medium of an agent reply (from 0). The file
//! is found in the message's read-model row, so a media id is valid exactly as long as the
//! message is, and the ticket it belongs to decides who may read it.

use std::fmt;
use std::str::FromStr;

use chrono::Utc;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Principal;

/// Which file of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The message's file (a reply's first medium).
    Main,
    /// The file's preview.
    Thumbnail,
    /// The n-th medium of an agent reply.
    Item(u8),
}

/// A media id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaRef {
    /// The message.
    pub message: Uuid,
    /// Which of its files.
    pub part: Part,
}

impl fmt::Display for MediaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.part {
            Part::Main => write!(f, "{}", self.message),
            Part::Thumbnail => write!(f, "{}.thumb", self.message),
            Part::Item(n) => write!(f, "{}.{n}", self.message),
        }
    }
}

impl FromStr for MediaRef {
    type Err = ();

    fn from_str(value: &str) -> Result<Self, ()> {
        if value.len() > 64 {
            return Err(());
        }
        let (message, part) = match value.split_once('.') {
            None => (value, Part::Main),
            Some((message, "thumb")) => (message, Part::Thumbnail),
            Some((message, n)) if n.len() <= 2 && n.bytes().all(|b| b.is_ascii_digit()) => {
                (message, Part::Item(n.parse().map_err(|_| ())?))
            }
            Some(_) => return Err(()),
        };
        Ok(MediaRef {
            message: Uuid::try_parse(message).map_err(|_| ())?,
            part,
        })
    }
}

/// Where the bytes of a media id come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file Telegram holds.
    Telegram(media::TelegramSource),
    /// A file an agent uploaded.
    Upload(Uuid),
}

/// A media id resolved against its message row.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The ticket the message is on.
    pub ticket: Uuid,
    /// Where the bytes are.
    pub target: Target,
    /// The file name to offer, when there is one.
    pub file_name: Option<String>,
    /// What Telegram said about the file, for an answer that cannot give the file itself.
    pub metadata: Value,
}

/// The prefix of an uploaded file's id in an agent reply (see `domain::content`).
const UPLOAD_PREFIX: &str = domain::content::UPLOAD_FILE_ID_PREFIX;

/// The file `reference` names in `row`, if the row has one there.
pub fn resolve(reference: MediaRef, row: &projections::tickets::MessageRow) -> Option<Resolved> {
    let media = row.media.as_ref();
    let text = |value: Option<&Value>, field: &str| {
        value
            .and_then(|v| v.get(field))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let outgoing = |item: &Value| -> Option<Resolved> {
        let file_id = item.get("file_id").and_then(Value::as_str)?;
        let target = match file_id.strip_prefix(UPLOAD_PREFIX) {
            Some(upload) => Target::Upload(Uuid::try_parse(upload).ok()?),
            None => Target::Telegram(media::TelegramSource {
                file_id: file_id.to_owned(),
                file_unique_id: None,
                mime_type: None,
                file_size: None,
            }),
        };
        Some(Resolved {
            ticket: row.ticket_id,
            target,
            file_name: None,
            metadata: item.clone(),
        })
    };
    match (row.direction, reference.part) {
        (projections::tickets::Direction::Out, Part::Main | Part::Item(_)) => {
            let n = match reference.part {
                Part::Item(n) => usize::from(n),
                _ => 0,
            };
            let items = row.details.as_ref().and_then(Value::as_array);
            match items.and_then(|items| items.get(n)) {
                Some(item) => outgoing(item),
                None if n == 0 => media.and_then(outgoing),
                None => None,
            }
        }
        (projections::tickets::Direction::In, Part::Main) => {
            let media = media?;
            Some(Resolved {
                ticket: row.ticket_id,
                target: Target::Telegram(media::TelegramSource {
                    file_id: text(Some(media), "file_id")?,
                    file_unique_id: text(Some(media), "file_unique_id"),
                    mime_type: text(Some(media), "mime_type"),
                    file_size: media.get("file_size").and_then(Value::as_u64),
                }),
                file_name: text(Some(media), "file_name"),
                metadata: media.clone(),
            })
        }
        (projections::tickets::Direction::In, Part::Thumbnail) => {
            let thumbnail = media?.get("thumbnail")?;
            Some(Resolved {
                ticket: row.ticket_id,
                target: Target::Telegram(media::TelegramSource {
                    file_id: text(Some(thumbnail), "file_id")?,
                    file_unique_id: text(Some(thumbnail), "file_unique_id"),
                    mime_type: None,
                    file_size: thumbnail.get("file_size").and_then(Value::as_u64),
                }),
                file_name: None,
                metadata: thumbnail.clone(),
            })
        }
        _ => None,
    }
}

/// A signed URL of `reference` for `by`, valid for the configured minutes.
pub fn signed_url(media: &media::MediaService, reference: MediaRef, by: Principal) -> String {
    let expires = Utc::now().timestamp()
        + i64::try_from(media.config().url_ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let id = reference.to_string();
    let by = by.to_string();
    let sig = media.signer().sign(&id, expires, &by);
    format!("/media/{id}?exp={expires}&by={by}&sig={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_ids_read_back_as_written_and_odd_ones_are_refused() {
        let message = Uuid::now_v7();
        for part in [Part::Main, Part::Thumbnail, Part::Item(0), Part::Item(9)] {
            let reference = MediaRef { message, part };
            assert_eq!(reference.to_string().parse(), Ok(reference));
        }
        for bad in [
            "",
            "x",
            "1.2",
            &format!("{message}.x"),
            &format!("{message}.123"),
        ] {
            assert_eq!(bad.parse::<MediaRef>(), Err(()), "{bad}");
        }
    }
}
