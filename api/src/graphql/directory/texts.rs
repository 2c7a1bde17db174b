//! `botTexts` and `setBotText`: what the bot says to customers by itself, per language.
//!
//! Every text has a built-in English and Russian version; admins (`ManageSettings`) replace
//! them per language or add languages of their own (see `domain::settings::texts` for how a
//! customer's language picks one). The texts are read from the settings stream itself, so a
//! change shows at once.

use async_graphql::{Context, Enum, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use domain::StreamId;
use domain::settings::{BotText, Settings, SettingsCommand};

use crate::auth::Permission;
use crate::graphql::commands::{context, position, timed};
use crate::graphql::context::Api;
use crate::graphql::error;
use crate::graphql::guard::{Need, signed_in_agent};

/// Which of the bot's own texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum BotTextKey {
    /// The answer to `/start` (the English one is also the `greeting` setting).
    Greeting,
    /// The answer to `/help`.
    Help,
    /// Below the greeting, above the topic buttons, when categories exist.
    CategoryQuestion,
    /// The answer to a topic button (at most 200 characters).
    CategoryChosen,
    /// The answer to a button of a removed topic (at most 200 characters).
    CategoryGone,
    /// The answer to a button the bot no longer knows (at most 200 characters).
    ButtonExpired,
    /// The satisfaction question after a resolve, above the 1–5 buttons.
    RatingPrompt,
    /// The answer to a rating button (at most 200 characters).
    RatingThanks,
    /// The answer to a second rating (at most 200 characters).
    AlreadyRated,
    /// The answer to a rating of a ticket that cannot be rated now (at most 200 characters).
    CannotRate,
    /// The answer to `/close` when a ticket was closed.
    TicketClosed,
    /// The answer to `/close` when nothing was open.
    NoOpenTicket,
    /// The label of the unsubscribe button under a broadcast (at most 64 characters).
    UnsubscribeButton,
    /// The answer to `/stop` or to the unsubscribe button (at most 200 characters).
    Unsubscribed,
    /// Said after the greeting when `/start` opted a customer back into broadcasts.
    Resubscribed,
    /// The answer to a callback button of a broadcast (at most 200 characters).
    BroadcastButtonThanks,
}

impl From<BotTextKey> for BotText {
    fn from(key: BotTextKey) -> Self {
        match key {
            BotTextKey::Greeting => BotText::Greeting,
            BotTextKey::Help => BotText::Help,
            BotTextKey::CategoryQuestion => BotText::CategoryQuestion,
            BotTextKey::CategoryChosen => BotText::CategoryChosen,
            BotTextKey::CategoryGone => BotText::CategoryGone,
            BotTextKey::ButtonExpired => BotText::ButtonExpired,
            BotTextKey::RatingPrompt => BotText::RatingPrompt,
            BotTextKey::RatingThanks => BotText::RatingThanks,
            BotTextKey::AlreadyRated => BotText::AlreadyRated,
            BotTextKey::CannotRate => BotText::CannotRate,
            BotTextKey::TicketClosed => BotText::TicketClosed,
            BotTextKey::NoOpenTicket => BotText::NoOpenTicket,
            BotTextKey::UnsubscribeButton => BotText::UnsubscribeButton,
            BotTextKey::Unsubscribed => BotText::Unsubscribed,
            BotTextKey::Resubscribed => BotText::Resubscribed,
            BotTextKey::BroadcastButtonThanks => BotText::BroadcastButtonThanks,
        }
    }
}

impl From<BotText> for BotTextKey {
    fn from(text: BotText) -> Self {
        match text {
            BotText::Greeting => BotTextKey::Greeting,
            BotText::Help => BotTextKey::Help,
            BotText::CategoryQuestion => BotTextKey::CategoryQuestion,
            BotText::CategoryChosen => BotTextKey::CategoryChosen,
            BotText::CategoryGone => BotTextKey::CategoryGone,
            BotText::ButtonExpired => BotTextKey::ButtonExpired,
            BotText::RatingPrompt => BotTextKey::RatingPrompt,
            BotText::RatingThanks => BotTextKey::RatingThanks,
            BotText::AlreadyRated => BotTextKey::AlreadyRated,
            BotText::CannotRate => BotTextKey::CannotRate,
            BotText::TicketClosed => BotTextKey::TicketClosed,
            BotText::NoOpenTicket => BotTextKey::NoOpenTicket,
            BotText::UnsubscribeButton => BotTextKey::UnsubscribeButton,
            BotText::Unsubscribed => BotTextKey::Unsubscribed,
            BotText::Resubscribed => BotTextKey::Resubscribed,
            BotText::BroadcastButtonThanks => BotTextKey::BroadcastButtonThanks,
        }
    }
}

/// One of the bot's texts in one language.
#[derive(Debug, Clone, SimpleObject)]
pub struct BotTextEntry {
    /// Which text.
    pub key: BotTextKey,
    /// The language: a primary language subtag such as `en` or `ru`.
    pub language: String,
    /// What a customer whose Telegram speaks this language gets.
    pub text: String,
    /// The admins' text, when they set one for this language.
    pub custom_text: Option<String>,
    /// The built-in text in this language, if there is one.
    pub built_in_text: Option<String>,
    /// The longest text allowed, in characters.
    pub max_length: i32,
}

/// Input of `setBotText`.
#[derive(Debug, InputObject)]
pub struct SetBotTextInput {
    /// Which text.
    pub key: BotTextKey,
    /// The language: two or three lower-case letters (`en`, `ru`, `de`…). At most 30
    /// languages besides the built-in ones.
    pub language: String,
    /// The text (see `BotText.maxLength`); null restores the built-in one (for a language
    /// without one: the English text).
    pub text: Option<String>,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// What `setBotText` did.
#[derive(Debug, Clone, SimpleObject)]
pub struct BotTextPayload {
    /// The log position written; null when nothing changed.
    pub position: Option<String>,
    /// True when the idempotency key was used before and this is the first call's result.
    pub replayed: bool,
}

/// `botTexts`.
#[derive(Debug, Default)]
pub struct BotTextQuery;

#[Object]
impl BotTextQuery {
    /// The bot's texts: every text in every language that has some (English, Russian and
    /// the languages admins added), or in `language` only. Admins only.
    #[graphql(name = "botTexts", guard = "Need(Permission::ManageSettings)")]
    async fn bot_texts(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(max_length = 3))] language: Option<String>,
    ) -> Result<Vec<BotTextEntry>> {
        let api = ctx.data_unchecked::<Api>();
        let settings = api
            .commands
            .state::<Settings>(StreamId::Settings)
            .await
            .map_err(|failure| error::internal("reading the settings failed", failure))?;
        let languages = match language {
            Some(language) => {
                domain::settings::texts::check_language(&language).map_err(|invalid| {
                    error::error(error::Code::Validation, invalid.to_string())
                })?;
                vec![language]
            }
            None => settings.text_languages(),
        };
        let mut entries = Vec::with_capacity(languages.len() * BotText::ALL.len());
        for language in &languages {
            for key in BotText::ALL {
                entries.push(BotTextEntry {
                    key: key.into(),
                    language: language.clone(),
                    text: settings.bot_text(key, Some(language)).to_owned(),
                    custom_text: settings.custom_bot_text(key, language).map(str::to_owned),
                    built_in_text: key.built_in(language).map(str::to_owned),
                    max_length: i32::try_from(key.max_chars()).unwrap_or(i32::MAX),
                });
            }
        }
        Ok(entries)
    }
}

/// `setBotText`.
#[derive(Debug, Default)]
pub struct BotTextMutation;

#[Object]
impl BotTextMutation {
    /// Replaces one of the bot's texts in one language, or (`text: null`) restores the
    /// built-in one. The English greeting is the `greeting` setting (`setGreeting`).
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn set_bot_text(
        &self,
        ctx: &Context<'_>,
        input: SetBotTextInput,
    ) -> Result<BotTextPayload> {
        let api = ctx.data_unchecked::<Api>();
        let command = SettingsCommand::SetBotText {
            key: input.key.into(),
            language: input.language,
            text: input.text,
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let command_ctx = context(ctx, "setBotText", input.idempotency_key.as_deref())?;
        let executed = timed(
            "settings",
            api.commands
                .execute::<Settings>(StreamId::Settings, &command, &command_ctx),
        )
        .await
        .map_err(error::command)?;
        Ok(BotTextPayload {
            position: position(&executed),
            replayed: executed.replayed,
        })
    }
}
