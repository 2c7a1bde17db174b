//! Sending a file an agent uploaded to Ledgerdesk (`POST /media`): the first send uploads it to
//! Telegram as a multipart body streamed from media storage, with the method of its kind
//! (`sendPhoto`, `sendVideo`, `sendAudio`, `sendVoice`, `sendDocument`, `sendAnimation`), and
//! records the file id Telegram answers; every later send goes by that id.

use domain::content::MediaKind;
use teloxide::Bot;
use teloxide::types::{ChatId, ReplyParameters};
use uuid::Uuid;

use super::call::{self, CallError};

/// One upload to send.
#[derive(Debug)]
pub(super) struct Upload {
    pub(super) id: Uuid,
    pub(super) kind: MediaKind,
    pub(super) chat: ChatId,
    pub(super) caption: Option<String>,
    pub(super) reply_to: Option<ReplyParameters>,
}

fn refused(description: &str) -> CallError {
    CallError::Api {
        code: 0,
        description: description.to_owned(),
    }
}

/// A storage or database failure: worth trying again later.
fn unavailable(error: &media::MediaError) -> CallError {
    tracing::warn!(%error, "cannot read an upload to send");
    CallError::Unreadable { status: 503 }
}

/// The file id Telegram gave the upload at an earlier send, if any.
pub(super) async fn known_file_id(
    media: Option<&media::MediaService>,
    id: Uuid,
) -> Result<Option<String>, CallError> {
    let media = media.ok_or_else(|| refused("this server keeps no media to upload"))?;
    match media.upload_row(id).await {
        Ok(Some(row)) => Ok(row.telegram_file_id),
        Ok(None) => Err(refused("the uploaded file is gone")),
        Err(error) => Err(unavailable(&error)),
    }
}

/// The method and the field of the file, for `kind`.
const fn method_of(kind: MediaKind) -> (&'static str, &'static str) {
    match kind {
        MediaKind::Photo => ("sendPhoto", "photo"),
        MediaKind::Video => ("sendVideo", "video"),
        MediaKind::Document => ("sendDocument", "document"),
        MediaKind::Audio => ("sendAudio", "audio"),
        MediaKind::Voice => ("sendVoice", "voice"),
        MediaKind::Animation => ("sendAnimation", "animation"),
    }
}

/// Uploads the file and sends it; records the file id Telegram gives it. Returns the message
/// id.
pub(super) async fn send(
    bot: &Bot,
    media: Option<&media::MediaService>,
    upload: Upload,
) -> Result<i32, CallError> {
    let media = media.ok_or_else(|| refused("this server keeps no media to upload"))?;
    let row = match media.upload_row(upload.id).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err(refused("the uploaded file is gone")),
        Err(error) => return Err(unavailable(&error)),
    };
    let stream = match media.read(&media::upload_key(upload.id), None).await {
        Ok(stream) => stream,
        Err(media::MediaError::Storage(media::StorageError::Missing)) => {
            return Err(refused("the uploaded file is gone from storage"));
        }
        Err(error) => return Err(unavailable(&error)),
    };
    let (method, field) = method_of(upload.kind);
    let size = u64::try_from(row.size).unwrap_or_default();
    let part =
        reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), size)
            .file_name(row.file_name.clone())
            .mime_str(&row.mime_type)
            .map_err(|_| refused("the upload's type is not a MIME type"))?;
    let mut form = reqwest::multipart::Form::new()
        .text("chat_id", upload.chat.0.to_string())
        .part(field, part);
    if let Some(caption) = upload.caption {
        form = form.text("caption", caption);
    }
    if let Some(reply) = upload.reply_to {
        let json = serde_json::to_string(&reply)
            .map_err(|_| refused("the reply parameters cannot be written"))?;
        form = form.text("reply_parameters", json);
    }
    let result = call::call_multipart(bot, method, form).await?;
    let message_id = result
        .get("message_id")
        .and_then(serde_json::Value::as_i64)
        .and_then(|id| i32::try_from(id).ok())
        .ok_or(CallError::Unreadable { status: 200 })?;
    // A photo comes back in several sizes: the largest is the one sent.
    let sent = match result.get(field) {
        Some(serde_json::Value::Array(sizes)) => sizes.last(),
        other => other,
    };
    match sent
        .and_then(|file| file.get("file_id"))
        .and_then(serde_json::Value::as_str)
    {
        Some(file_id) => {
            if let Err(error) = media.record_telegram_file_id(upload.id, file_id).await {
                // The message went out: the next send uploads the file again.
                tracing::warn!(%error, "cannot record the file id of an upload");
            }
        }
        None => tracing::warn!(method, "Telegram answered an upload without its file id"),
    }
    Ok(message_id)
}
