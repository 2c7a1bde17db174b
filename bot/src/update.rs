//! TEMPORARY stand-in for the update reader (being written on the `update` branch).
#![allow(missing_docs, unreachable_pub, dead_code)]

use chrono::{DateTime, Utc};
use domain::CustomerId;
use domain::content::{MessageContent, TelegramMessageId};
use domain::customer::CustomerProfile;

use crate::callback::CallbackData;

#[derive(Debug, Clone, PartialEq)]
pub struct Sender {
    pub customer: CustomerId,
    pub profile: CustomerProfile,
}
#[derive(Debug, Clone, PartialEq)]
pub struct IncomingMessage {
    pub telegram_message_id: TelegramMessageId,
    pub reply_to: Option<TelegramMessageId>,
    pub content: MessageContent,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotCommand {
    Start,
    Close,
    Help,
}
#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Message {
        sender: Sender,
        message: IncomingMessage,
        at: DateTime<Utc>,
    },
    Command {
        sender: Sender,
        command: BotCommand,
        telegram_message_id: TelegramMessageId,
        at: DateTime<Utc>,
    },
    Edited {
        sender: Sender,
        telegram_message_id: TelegramMessageId,
        content: MessageContent,
        at: DateTime<Utc>,
    },
    Callback {
        sender: Sender,
        query_id: String,
        data: Option<CallbackData>,
        at: DateTime<Utc>,
    },
    BotBlocked {
        customer: CustomerId,
        at: DateTime<Utc>,
    },
    BotUnblocked {
        customer: CustomerId,
        at: DateTime<Utc>,
    },
    Ignored {
        reason: &'static str,
    },
}
pub fn interpret(_update: &teloxide::types::Update, _now: DateTime<Utc>) -> Inbound {
    Inbound::Ignored { reason: "stub" }
}
