//! Reading what can be read of an update teloxide could not read.
//!
//! teloxide refuses a whole message when one part of it does not match its types: a text
//! that quotes a message of another chat (`external_reply`), a field of a newer Bot API
//! version, a value Telegram shaped differently. What the customer sent must not be lost for
//! it. So the message is read again without the parts Ledgerdesk does not keep (quotes,
//! entities, keyboards, link previews…); when teloxide still cannot read it, the essentials are
//! read from the JSON by hand: the chat, the sender, the message id and date, the text or
//! caption, and the kind, recorded as an unsupported message of that kind when it is not
//! text. Only when even that fails is the update [`Inbound::Unreadable`]: the caller keeps it
//! among the unrecorded updates for an admin. An unreadable update of a kind the bot does not
//! handle anyway (a channel post, a button press outside…) is ignored.

use chrono::{DateTime, Utc};
use domain::CustomerId;
use domain::content::{MessageBody, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use serde_json::{Map, Value};
use teloxide::types::{Message, MessageKind};

use super::{Inbound, IncomingMessage, Sender};

/// The fields of a message Ledgerdesk reads; a second reading keeps only these, as the others
/// (quotes, entities, keyboards…) can only stand in teloxide's way.
const KEPT: &[&str] = &[
    "message_id",
    "from",
    "chat",
    "date",
    "edit_date",
    "media_group_id",
    "forward_origin",
    "text",
    "caption",
    "animation",
    "audio",
    "contact",
    "document",
    "paid_media",
    "game",
    "venue",
    "location",
    "photo",
    "poll",
    "checklist",
    "sticker",
    "story",
    "video",
    "video_note",
    "voice",
    "dice",
    "pinned_message",
];

/// Update kinds Telegram knows that the bot does not handle (see [`super::read`]): one teloxide
/// cannot read is not for us either.
const NOT_OURS: &[&str] = &[
    "channel_post",
    "edited_channel_post",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
    "message_reaction_count",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "purchased_paid_media",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
];

/// Content fields, in the order teloxide tries them (a venue before the location that comes
/// with it, an animation before its document copy): the first present names the kind.
const KINDS: &[&str] = &[
    "animation",
    "audio",
    "contact",
    "document",
    "paid_media",
    "game",
    "venue",
    "location",
    "photo",
    "poll",
    "checklist",
    "sticker",
    "story",
    "video",
    "video_note",
    "voice",
    "dice",
    "invoice",
    "giveaway",
    "giveaway_winners",
    "pinned_message",
];

/// Reads `update` (the JSON teloxide could not read) as well as it can.
pub(super) fn read(update: &Value, now: DateTime<Utc>) -> Inbound {
    let unreadable = |reason| Inbound::Unreadable { reason };
    let Some(fields) = update.as_object() else {
        return unreadable("an update that is not a JSON object");
    };
    let (edited, message) = match (fields.get("message"), fields.get("edited_message")) {
        (Some(message), _) => (false, message),
        (None, Some(message)) => (true, message),
        (None, None) => {
            return if NOT_OURS.iter().any(|kind| fields.contains_key(*kind)) {
                Inbound::Ignored {
                    reason: "unreadable update of a kind the bot does not handle",
                }
            } else {
                unreadable("an update of a kind this code does not know")
            };
        }
    };
    let Some(message) = message.as_object() else {
        return unreadable("a message that is not a JSON object");
    };
    match message
        .get("chat")
        .and_then(|chat| chat.get("type"))
        .and_then(Value::as_str)
    {
        Some("private") => {}
        Some(_) => {
            return Inbound::Ignored {
                reason: "unreadable message outside a private chat",
            };
        }
        None => return unreadable("a message without a chat type"),
    }
    if let Some(parsed) = reread(message) {
        let mut inbound = if edited {
            super::interpret_edit(&parsed, now)
        } else {
            super::interpret_message(&parsed)
        };
        // The replied message was left out of the second reading; its id is all we keep.
        if let Inbound::Message { message: read, .. } = &mut inbound {
            read.reply_to = replied(message);
        }
        return inbound;
    }
    by_hand(message, edited, now).unwrap_or(Inbound::Unreadable {
        reason: "a private message without a readable sender, id or date",
    })
}

/// The date the idempotency key of the update takes: the message's, or for an edit the edit's.
pub(super) fn stamp(update: &Value) -> String {
    let date = |message: &Value, field: &str| message.get(field).and_then(Value::as_i64);
    let stamp = match (update.get("message"), update.get("edited_message")) {
        (Some(message), _) => date(message, "date"),
        (None, Some(message)) => date(message, "edit_date").or_else(|| date(message, "date")),
        (None, None) => None,
    };
    stamp.map(|unix| unix.to_string()).unwrap_or_default()
}

/// The message as teloxide reads it with only the [`KEPT`] fields, and, failing that, without
/// its forward origin as well.
fn reread(message: &Map<String, Value>) -> Option<Message> {
    let mut kept: Map<String, Value> = message
        .iter()
        .filter(|(key, _)| KEPT.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    // From text: teloxide reads kinds from borrowed keys, which a `Value` cannot lend.
    let read = |kept: &Map<String, Value>| {
        serde_json::from_str::<Message>(&Value::Object(kept.clone()).to_string())
            .ok()
            // Read, but without its content: no better than reading by hand.
            .filter(|message| !matches!(message.kind, MessageKind::Empty {}))
    };
    if let Some(parsed) = read(&kept) {
        return Some(parsed);
    }
    kept.remove("forward_origin");
    read(&kept)
}

fn replied(message: &Map<String, Value>) -> Option<TelegramMessageId> {
    message
        .get("reply_to_message")?
        .get("message_id")?
        .as_i64()
        .and_then(|id| i32::try_from(id).ok())
        .map(TelegramMessageId)
}

/// The essentials, read from the JSON: `None` when there is no sender, id or date.
fn by_hand(message: &Map<String, Value>, edited: bool, now: DateTime<Utc>) -> Option<Inbound> {
    let from = message.get("from")?.as_object()?;
    let customer = CustomerId(from.get("id")?.as_i64().filter(|id| *id > 0)?);
    let text = |field: &str| from.get(field).and_then(Value::as_str).map(str::to_owned);
    let sender = Sender {
        customer,
        profile: CustomerProfile {
            first_name: text("first_name").unwrap_or_default(),
            last_name: text("last_name"),
            username: text("username"),
            language_code: text("language_code"),
        },
    };
    let telegram_message_id =
        TelegramMessageId(i32::try_from(message.get("message_id")?.as_i64()?).ok()?);
    let date = |field: &str| {
        message
            .get(field)
            .and_then(Value::as_i64)
            .and_then(|unix| DateTime::from_timestamp(unix, 0))
    };
    let at = date("date")?;
    let caption = message
        .get("caption")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let media_group_id = message
        .get("media_group_id")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let content = match message.get("text").and_then(Value::as_str) {
        Some(text) => MessageContent::text(text),
        None => {
            let kind = KINDS
                .iter()
                .find(|kind| message.contains_key(**kind))
                .copied()
                .unwrap_or("unknown");
            MessageContent {
                caption,
                media_group_id,
                ..MessageContent::of(MessageBody::Unsupported {
                    kind: kind.to_owned(),
                })
            }
        }
    };
    Some(if edited {
        Inbound::Edited {
            sender,
            telegram_message_id,
            content,
            at: date("edit_date").unwrap_or(now),
        }
    } else {
        Inbound::Message {
            sender,
            message: IncomingMessage {
                telegram_message_id,
                reply_to: replied(message),
                content,
            },
            at,
        }
    })
}
