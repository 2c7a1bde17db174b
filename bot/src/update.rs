//! Reads a Telegram [`Update`] into our own terms: who wrote, what they sent, which command or
//! button they used, or why the update does not concern us.
//!
//! Only private chats with customers count. Everything else Telegram may deliver (groups,
//! channels, inline mode, poll answers, reactions…) becomes [`Inbound::Ignored`] with a short
//! reason the caller logs at INFO. In a private chat every message counts, whatever its kind
//! (see [`content`]): dice, polls, stories, checklists, paid media, service messages such as a
//! pin, and kinds unknown to this code are recorded as what can be shown of them. A message
//! teloxide cannot read is read again from its JSON (see [`raw`]).
//!
//! What the customer sent is kept as Telegram gave it, with one exception: Postgres cannot
//! store the NUL character (U+0000), so every NUL in the profile and the content read here is
//! replaced by U+FFFD REPLACEMENT CHARACTER (see [`eventlog::storable`]) and the message is
//! recorded rather than refused.
//!
//! A time Telegram gives that cannot be real (more than a day ahead of the time of reading, or
//! before 2013, when the Bot API did not exist yet) is replaced by the time of reading, so a
//! forged or garbled date never lands in the log (see [`plausible`]).
//!
//! This module is a pure function of the update and the current time: it does no IO, writes
//! nothing to the log and never answers Telegram. It must not panic on any input.

mod content;
mod raw;

use chrono::{DateTime, Utc};
use domain::CustomerId;
use domain::content::{MessageBody, MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;
use serde::Serialize;
use serde::de::DeserializeOwned;
use teloxide::types::{
    CallbackQuery, Chat, ChatMemberKind, ChatMemberUpdated, Message, Update, UpdateKind, User,
};

use crate::callback::CallbackData;

/// Who sent an update, as Telegram describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// The customer, by Telegram user id.
    pub customer: CustomerId,
    /// Their profile as Telegram shows it with this update.
    pub profile: CustomerProfile,
}

/// A private message as the customer sent it.
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    /// Telegram's id for the message in the customer's chat.
    pub telegram_message_id: TelegramMessageId,
    /// The message of the same chat this one replies to.
    pub reply_to: Option<TelegramMessageId>,
    /// What the message carries.
    pub content: MessageContent,
}

/// The bot commands customers can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BotCommand {
    /// `/start`: first contact, or a new conversation.
    Start,
    /// `/close`: the customer closes their ticket.
    Close,
    /// `/help`: what the bot can do.
    Help,
    /// `/stop`: no more broadcasts (replies to the customer's tickets still come).
    Stop,
}

/// What one update asks of us.
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    /// The customer wrote something.
    Message {
        /// Who wrote.
        sender: Sender,
        /// What they wrote.
        message: IncomingMessage,
        /// When Telegram says it was sent.
        at: DateTime<Utc>,
    },
    /// The customer sent one of our commands.
    Command {
        /// Who sent it.
        sender: Sender,
        /// Which command.
        command: BotCommand,
        /// The message carrying the command.
        telegram_message_id: TelegramMessageId,
        /// When Telegram says it was sent.
        at: DateTime<Utc>,
    },
    /// The customer edited a message they sent earlier.
    Edited {
        /// Who edited.
        sender: Sender,
        /// The message edited.
        telegram_message_id: TelegramMessageId,
        /// Its new content.
        content: MessageContent,
        /// When the edit happened (the time of reading when Telegram does not say).
        at: DateTime<Utc>,
    },
    /// The customer pressed an inline button.
    Callback {
        /// Who pressed it.
        sender: Sender,
        /// The query to answer so the customer's client stops waiting.
        query_id: String,
        /// What the button stands for; `None` when absent or not written by us.
        data: Option<CallbackData>,
        /// When we read it (Telegram gives no time for button presses).
        at: DateTime<Utc>,
    },
    /// The customer blocked the bot.
    BotBlocked {
        /// Who blocked it.
        customer: CustomerId,
        /// When.
        at: DateTime<Utc>,
    },
    /// The customer unblocked the bot (or restarted it after blocking).
    BotUnblocked {
        /// Who unblocked it.
        customer: CustomerId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A private message that cannot be read at all, not even from its JSON (no sender, id or
    /// date), or an update of a kind this code does not know: kept among the unrecorded
    /// updates for an admin to see.
    Unreadable {
        /// Why, in a few words.
        reason: &'static str,
    },
    /// Nothing for us to do.
    Ignored {
        /// Why, in a few words, for a debug log.
        reason: &'static str,
    },
}

/// Reads one update. `now` stands in for the time of events Telegram does not date (button
/// presses, edits without `edit_date`) and for dates that cannot be real (see [`plausible`]).
/// No text of the result holds a NUL character.
#[must_use]
pub fn interpret(update: &Update, now: DateTime<Utc>) -> Inbound {
    let mut inbound = storable(read(update, now));
    match &mut inbound {
        Inbound::Message { at, message, .. } => {
            *at = plausible(*at, now);
            forwarded_at_plausible(&mut message.content, now);
        }
        Inbound::Edited { at, content, .. } => {
            *at = plausible(*at, now);
            forwarded_at_plausible(content, now);
        }
        Inbound::Command { at, .. }
        | Inbound::Callback { at, .. }
        | Inbound::BotBlocked { at, .. }
        | Inbound::BotUnblocked { at, .. } => *at = plausible(*at, now),
        Inbound::Ignored { .. } | Inbound::Unreadable { .. } => {}
    }
    inbound
}

/// A forward date that cannot be real (see [`plausible`]; teloxide also stands in 1970 for a
/// missing one) is dropped: unlike the message's own date, nothing can stand in for it.
fn forwarded_at_plausible(content: &mut MessageContent, now: DateTime<Utc>) {
    content.forwarded_at = content.forwarded_at.filter(|at| plausible(*at, now) == *at);
}

/// Gives `update` its JSON `raw` where teloxide kept too little of it: an update it could not
/// read at all (`UpdateKind::Error`, which over polling teloxide fills with the JSON itself),
/// and a message it read without content (`MessageKind::Empty`, a kind or shape it does not
/// know). [`interpret`] then reads what it can from the JSON.
pub fn with_raw(update: &mut Update, raw: serde_json::Value) {
    if needs_raw(update) {
        update.kind = UpdateKind::Error(raw);
    }
}

/// Whether teloxide kept too little of `update` (see [`with_raw`]): nearly never, so callers
/// read the JSON again only then.
#[must_use]
pub fn needs_raw(update: &Update) -> bool {
    match &update.kind {
        UpdateKind::Message(message) | UpdateKind::EditedMessage(message) => {
            matches!(message.kind, teloxide::types::MessageKind::Empty {})
        }
        UpdateKind::Error(_) => true,
        _ => false,
    }
}

/// The date of the message (or the edit) in the JSON of an update teloxide could not read, as
/// the idempotency key of an update wants it (see [`crate::inbound::update_key`]); empty when
/// there is none.
#[must_use]
pub fn raw_stamp(update: &serde_json::Value) -> String {
    raw::stamp(update)
}

/// `at` when it can be the time of an update read at `now`, else `now`: a time more than a
/// day ahead of `now` (clocks differ by seconds, not days) or before 2013-01-01 (before the
/// Bot API existed) is not real.
#[must_use]
pub fn plausible(at: DateTime<Utc>, now: DateTime<Utc>) -> DateTime<Utc> {
    const EARLIEST: i64 = 1_356_998_400; // 2013-01-01T00:00:00Z
    if at.timestamp() < EARLIEST || at > now + chrono::TimeDelta::days(1) {
        now
    } else {
        at
    }
}

fn read(update: &Update, now: DateTime<Utc>) -> Inbound {
    let ignored = |reason| Inbound::Ignored { reason };
    match &update.kind {
        UpdateKind::Message(message) => interpret_message(message),
        UpdateKind::EditedMessage(message) => interpret_edit(message, now),
        UpdateKind::CallbackQuery(query) => interpret_callback(query, now),
        UpdateKind::MyChatMember(change) => interpret_membership(change),
        UpdateKind::ChannelPost(_) | UpdateKind::EditedChannelPost(_) => ignored("channel post"),
        UpdateKind::BusinessConnection(_)
        | UpdateKind::BusinessMessage(_)
        | UpdateKind::EditedBusinessMessage(_)
        | UpdateKind::DeletedBusinessMessages(_) => ignored("business account update"),
        UpdateKind::InlineQuery(_) | UpdateKind::ChosenInlineResult(_) => ignored("inline mode"),
        UpdateKind::Poll(_) | UpdateKind::PollAnswer(_) => ignored("poll update"),
        UpdateKind::MessageReaction(_) | UpdateKind::MessageReactionCount(_) => ignored("reaction"),
        UpdateKind::ShippingQuery(_)
        | UpdateKind::PreCheckoutQuery(_)
        | UpdateKind::PurchasedPaidMedia(_) => ignored("payment update"),
        UpdateKind::ChatMember(_)
        | UpdateKind::ChatJoinRequest(_)
        | UpdateKind::ChatBoost(_)
        | UpdateKind::RemovedChatBoost(_) => ignored("group or channel administration"),
        // Polling hands over the update's JSON here, and so does the webhook (see
        // `crate::webhook`).
        UpdateKind::Error(value) => raw::read(value, now),
    }
}

/// `inbound` with every NUL in what will be stored (the sender's profile, the content)
/// replaced by U+FFFD.
fn storable(inbound: Inbound) -> Inbound {
    match inbound {
        Inbound::Message {
            sender,
            mut message,
            at,
        } => {
            message.content = without_nul(message.content);
            Inbound::Message {
                sender: storable_sender(sender),
                message,
                at,
            }
        }
        Inbound::Command {
            sender,
            command,
            telegram_message_id,
            at,
        } => Inbound::Command {
            sender: storable_sender(sender),
            command,
            telegram_message_id,
            at,
        },
        Inbound::Edited {
            sender,
            telegram_message_id,
            content,
            at,
        } => Inbound::Edited {
            sender: storable_sender(sender),
            telegram_message_id,
            content: without_nul(content),
            at,
        },
        Inbound::Callback {
            sender,
            query_id,
            data,
            at,
        } => Inbound::Callback {
            sender: storable_sender(sender),
            query_id,
            data,
            at,
        },
        other @ (Inbound::BotBlocked { .. }
        | Inbound::BotUnblocked { .. }
        | Inbound::Ignored { .. }
        | Inbound::Unreadable { .. }) => other,
    }
}

fn storable_sender(sender: Sender) -> Sender {
    Sender {
        customer: sender.customer,
        profile: without_nul(sender.profile),
    }
}

/// `value` with every NUL in its strings replaced, through its JSON form: whatever fields the
/// domain's types gain, none is missed. Values without a NUL (nearly all) come back as they
/// were; one whose cleaned form would not read back (never, for the domain's own types) comes
/// back as it was too, and the log refuses it.
fn without_nul<T: Serialize + DeserializeOwned>(value: T) -> T {
    let Ok(mut json) = serde_json::to_value(&value) else {
        return value;
    };
    if !eventlog::storable::replace_nul(&mut json) {
        return value;
    }
    serde_json::from_value(json).unwrap_or(value)
}

fn interpret_message(message: &Message) -> Inbound {
    let sender = match private_sender(message) {
        Ok(sender) => sender,
        Err(reason) => return Inbound::Ignored { reason },
    };
    let content = content::of(message);
    let telegram_message_id = TelegramMessageId(message.id.0);
    // A forwarded "/help" is something the customer shows us, not something they ask of us.
    if content.forwarded_from.is_none()
        && let MessageBody::Text { text } = &content.body
        && let Some(command) = command(text)
    {
        return Inbound::Command {
            sender,
            command,
            telegram_message_id,
            at: message.date,
        };
    }
    Inbound::Message {
        sender,
        message: IncomingMessage {
            telegram_message_id,
            // `external_reply` points into another chat: no id of this chat to keep.
            reply_to: message
                .reply_to_message()
                .map(|replied| TelegramMessageId(replied.id.0)),
            content,
        },
        at: message.date,
    }
}

fn interpret_edit(message: &Message, now: DateTime<Utc>) -> Inbound {
    match private_sender(message) {
        Ok(sender) => Inbound::Edited {
            sender,
            telegram_message_id: TelegramMessageId(message.id.0),
            content: content::of(message),
            at: message.edit_date().copied().unwrap_or(now),
        },
        Err(reason) => Inbound::Ignored { reason },
    }
}

fn interpret_callback(query: &CallbackQuery, now: DateTime<Utc>) -> Inbound {
    // Our buttons only live in private chats; a press elsewhere is not a customer's.
    if query
        .message
        .as_ref()
        .is_some_and(|message| !message.chat().is_private())
    {
        return Inbound::Ignored {
            reason: "button pressed outside a private chat",
        };
    }
    let Some(sender) = sender(&query.from) else {
        return Inbound::Ignored {
            reason: "user id out of range",
        };
    };
    Inbound::Callback {
        sender,
        query_id: query.id.0.clone(),
        data: query.data.as_deref().and_then(CallbackData::parse),
        at: now,
    }
}

fn interpret_membership(change: &ChatMemberUpdated) -> Inbound {
    if !change.chat.is_private() {
        return Inbound::Ignored {
            reason: "bot membership changed outside a private chat",
        };
    }
    let Some(customer) = customer_id(&change.from) else {
        return Inbound::Ignored {
            reason: "user id out of range",
        };
    };
    let at = change.date;
    match change.new_chat_member.kind {
        ChatMemberKind::Banned(_) => Inbound::BotBlocked { customer, at },
        ChatMemberKind::Member(_) => Inbound::BotUnblocked { customer, at },
        _ => Inbound::Ignored {
            reason: "bot membership status of no interest",
        },
    }
}

/// The sender of a message in a private chat, or why it is not a customer's.
fn private_sender(message: &Message) -> Result<Sender, &'static str> {
    if !message.chat.is_private() {
        return Err(not_private(&message.chat));
    }
    let from = message
        .from
        .as_ref()
        .ok_or("private message without a sender")?;
    sender(from).ok_or("user id out of range")
}

fn not_private(chat: &Chat) -> &'static str {
    if chat.is_channel() {
        "channel message"
    } else {
        "group message"
    }
}

fn customer_id(user: &User) -> Option<CustomerId> {
    i64::try_from(user.id.0).ok().map(CustomerId)
}

fn sender(user: &User) -> Option<Sender> {
    Some(Sender {
        customer: customer_id(user)?,
        profile: CustomerProfile {
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            username: user.username.clone(),
            language_code: user.language_code.clone(),
        },
    })
}

/// `/start`, `/start@OurBot`, `/start payload`; any other `/word` is ordinary text.
fn command(text: &str) -> Option<BotCommand> {
    let rest = text.strip_prefix('/')?;
    let word = rest.split(char::is_whitespace).next().unwrap_or_default();
    // In a private chat an `@bot` suffix can only name us.
    let name = word.split_once('@').map_or(word, |(name, _bot)| name);
    if name.eq_ignore_ascii_case("start") {
        Some(BotCommand::Start)
    } else if name.eq_ignore_ascii_case("close") {
        Some(BotCommand::Close)
    } else if name.eq_ignore_ascii_case("help") {
        Some(BotCommand::Help)
    } else if name.eq_ignore_ascii_case("stop") {
        Some(BotCommand::Stop)
    } else {
        None
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::*;

    #[test]
    fn commands_are_read_with_a_bot_name_or_a_payload() {
        for (text, expected) in [
            ("/start", Some(BotCommand::Start)),
            ("/start@LedgerdeskBot", Some(BotCommand::Start)),
            ("/start ref-42", Some(BotCommand::Start)),
            ("/start@LedgerdeskBot ref-42", Some(BotCommand::Start)),
            ("/start\nhello", Some(BotCommand::Start)),
            ("/close", Some(BotCommand::Close)),
            ("/help", Some(BotCommand::Help)),
            ("/Help", Some(BotCommand::Help)),
            ("/stop", Some(BotCommand::Stop)),
            ("/STOP@LedgerdeskBot", Some(BotCommand::Stop)),
        ] {
            assert_eq!(command(text), expected, "{text:?}");
        }
    }

    #[test]
    fn other_slashes_are_plain_text() {
        for text in [
            "/", "/ start", "/starts", "/stops", "/closed", "start", " /start", "/@Bot", "",
            "/help_me", "a/help",
        ] {
            assert_eq!(command(text), None, "{text:?}");
        }
    }

    #[test]
    fn no_nul_reaches_the_profile_or_the_content() {
        let body = serde_json::json!({
            "update_id": 1,
            "message": {
                "message_id": 5,
                "from": {"id": 42, "is_bot": false, "first_name": "An\u{0}na",
                         "last_name": "\u{0}", "username": "a\u{0}", "language_code": "p\u{0}l"},
                "chat": {"id": 42, "first_name": "Anna", "type": "private"},
                "date": 1_763_895_600,
                "document": {"file_name": "in\u{0}voice.pdf", "file_id": "F\u{0}",
                             "file_unique_id": "U", "file_size": 10},
                "caption": "see \u{0} here"
            }
        });
        // As the webhook reads it: from the text.
        let update: Update = serde_json::from_str(&body.to_string()).unwrap();
        let Inbound::Message {
            sender, message, ..
        } = interpret(&update, Utc::now())
        else {
            panic!("not read as a message: {:?}", update.kind);
        };
        assert_eq!(sender.profile.first_name, "An\u{FFFD}na");
        assert_eq!(sender.profile.last_name.as_deref(), Some("\u{FFFD}"));
        assert_eq!(
            message.content.caption.as_deref(),
            Some("see \u{FFFD} here")
        );
        let stored = serde_json::to_value((&sender.profile, &message.content)).unwrap();
        assert_eq!(eventlog::storable::find_nul(&stored), None, "{stored}");
        match message.content.body {
            MessageBody::Document { file_name, .. } => {
                assert_eq!(file_name.as_deref(), Some("in\u{FFFD}voice.pdf"));
            }
            other => panic!("not a document: {other:?}"),
        }
    }
}
