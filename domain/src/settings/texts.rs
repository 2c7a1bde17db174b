//! The texts the bot sends customers by itself, per language.
//!
//! Every [`BotText`] has a built-in text in English and Russian. Admins may replace any of them
//! per language, and add languages of their own ([`super::SettingsCommand::SetBotText`]). The
//! text a customer gets follows their Telegram client's `language_code`, reduced to its primary
//! subtag (`pt-BR` → `pt`), through [`super::Settings::bot_text`]:
//!
//! 1. the admins' text for that language;
//! 2. the built-in text for that language;
//! 3. the admins' text for English ([`DEFAULT_LANGUAGE`]);
//! 4. the built-in English text.
//!
//! The English greeting is the greeting set with `SetGreeting` (`settings.greeting_set`), so
//! that setting keeps its meaning: it is the greeting in the default language.

use serde::{Deserialize, Serialize};

use crate::validate::InvalidInput;

/// The language customers without a known language get, and the last fallback.
pub const DEFAULT_LANGUAGE: &str = "en";

/// The languages with built-in texts.
pub const BUILT_IN_LANGUAGES: [&str; 2] = ["en", "ru"];

/// Most languages with admins' texts.
pub const MAX_TEXT_LANGUAGES: usize = 30;

/// Longest answer to a button press, in characters (Telegram's limit for callback answers).
pub const MAX_BUTTON_ANSWER_CHARS: usize = 200;

/// Longest label of an inline button, in characters.
pub const MAX_BUTTON_LABEL_CHARS: usize = 64;

/// Longest message text, in characters (Telegram's limit).
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// A text the bot sends customers by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BotText {
    /// The answer to `/start`.
    Greeting,
    /// The answer to `/help`.
    Help,
    /// Below the greeting, above the topic buttons, when categories are used.
    CategoryQuestion,
    /// The answer to a topic button.
    CategoryChosen,
    /// The answer to a button of a topic that was removed.
    CategoryGone,
    /// The answer to a button the bot no longer knows.
    ButtonExpired,
    /// The satisfaction question after a resolve, above the 1–5 buttons.
    RatingPrompt,
    /// The answer to a rating button.
    RatingThanks,
    /// The answer to a second rating.
    AlreadyRated,
    /// The answer to a rating button of a ticket that cannot be rated now.
    CannotRate,
    /// The answer to `/close` when a ticket was closed.
    TicketClosed,
    /// The answer to `/close` when there was nothing to close.
    NoOpenTicket,
    /// The label of the button under a broadcast that opts the customer out of broadcasts.
    UnsubscribeButton,
    /// The answer to `/stop` or to the unsubscribe button: no more broadcasts.
    Unsubscribed,
    /// Said after the greeting when `/start` opted a customer back into broadcasts.
    Resubscribed,
    /// The answer to a callback button of a broadcast.
    BroadcastButtonThanks,
}

impl BotText {
    /// Every text, in a stable order.
    pub const ALL: [BotText; 16] = [
        BotText::Greeting,
        BotText::Help,
        BotText::CategoryQuestion,
        BotText::CategoryChosen,
        BotText::CategoryGone,
        BotText::ButtonExpired,
        BotText::RatingPrompt,
        BotText::RatingThanks,
        BotText::AlreadyRated,
        BotText::CannotRate,
        BotText::TicketClosed,
        BotText::NoOpenTicket,
        BotText::UnsubscribeButton,
        BotText::Unsubscribed,
        BotText::Resubscribed,
        BotText::BroadcastButtonThanks,
    ];

    /// The longest this text may be: answers to buttons are short on Telegram.
    #[must_use]
    pub const fn max_chars(self) -> usize {
        match self {
            BotText::CategoryChosen
            | BotText::CategoryGone
            | BotText::ButtonExpired
            | BotText::RatingThanks
            | BotText::AlreadyRated
            | BotText::CannotRate
            | BotText::Unsubscribed
            | BotText::BroadcastButtonThanks => MAX_BUTTON_ANSWER_CHARS,
            BotText::UnsubscribeButton => MAX_BUTTON_LABEL_CHARS,
            BotText::Greeting
            | BotText::Help
            | BotText::CategoryQuestion
            | BotText::RatingPrompt
            | BotText::TicketClosed
            | BotText::NoOpenTicket
            | BotText::Resubscribed => MAX_MESSAGE_CHARS,
        }
    }

    /// The built-in text in `language` (a primary subtag), if there is one.
    #[must_use]
    pub fn built_in(self, language: &str) -> Option<&'static str> {
        match language {
            "en" => Some(self.english()),
            "ru" => Some(self.russian()),
            _ => None,
        }
    }

    /// The built-in English text.
    #[must_use]
    pub const fn english(self) -> &'static str {
        match self {
            BotText::Greeting => {
                "Hello! Write your question here and our support team will answer in this chat."
            }
            BotText::Help => {
                "Write your question here, in any form: text, photos, files, voice messages, \
                 locations. Our support team answers in this chat.\n\n/start shows the greeting \
                 again (and lets you pick a topic, when there are several)\n/close closes your \
                 ticket once your question is answered\n/stop stops our announcements \
                 (answers to your questions still come)"
            }
            BotText::CategoryQuestion => "What is your question about? Pick a topic below.",
            BotText::CategoryChosen => "Thank you! Now write your question.",
            BotText::CategoryGone => {
                "This topic is no longer available. Send /start to see the current ones."
            }
            BotText::ButtonExpired => "This button no longer works.",
            BotText::RatingPrompt => {
                "Your request was resolved. How satisfied are you with our help? \
                 Tap 1 (not at all) to 5 (very)."
            }
            BotText::RatingThanks => "Thank you for your rating!",
            BotText::AlreadyRated => "You have already rated this ticket. Thank you!",
            BotText::CannotRate => "This ticket cannot be rated now.",
            BotText::TicketClosed => {
                "Your ticket is closed. Thank you! Write to us any time to open a new one."
            }
            BotText::NoOpenTicket => "You have no open ticket. Write to us any time to open one.",
            BotText::UnsubscribeButton => "Unsubscribe",
            BotText::Unsubscribed => {
                "You will no longer receive announcements. Replies to your questions still come \
                 here. Send /start to receive announcements again."
            }
            BotText::Resubscribed => "You will receive our announcements again.",
            BotText::BroadcastButtonThanks => "Thank you!",
        }
    }

    const fn russian(self) -> &'static str {
        match self {
            BotText::Greeting => {
                "Здравствуйте! Напишите свой вопрос здесь, и служба поддержки ответит вам в этом \
                 чате."
            }
            BotText::Help => {
                "Пишите нам в любой форме: текстом, фото, файлами, голосовыми сообщениями, \
                 геопозицией. Служба поддержки ответит в этом чате.\n\n/start снова покажет \
                 приветствие (и предложит выбрать тему, если их несколько)\n/close закроет \
                 обращение, когда ваш вопрос решён\n/stop отключит рассылки (ответы на \
                 ваши вопросы по-прежнему придут)"
            }
            BotText::CategoryQuestion => "О чём ваш вопрос? Выберите тему ниже.",
            BotText::CategoryChosen => "Спасибо! Теперь напишите ваш вопрос.",
            BotText::CategoryGone => {
                "Этой темы больше нет. Отправьте /start, чтобы увидеть актуальные темы."
            }
            BotText::ButtonExpired => "Эта кнопка больше не работает.",
            BotText::RatingPrompt => {
                "Ваше обращение решено. Оцените, пожалуйста, нашу помощь: нажмите от 1 \
                 (совсем плохо) до 5 (отлично)."
            }
            BotText::RatingThanks => "Спасибо за оценку!",
            BotText::AlreadyRated => "Вы уже оценили это обращение. Спасибо!",
            BotText::CannotRate => "Это обращение сейчас нельзя оценить.",
            BotText::TicketClosed => {
                "Ваше обращение закрыто. Спасибо! Напишите нам в любое время, если появится \
                 новый вопрос."
            }
            BotText::NoOpenTicket => {
                "У вас нет открытых обращений. Напишите нам в любое время, чтобы открыть новое."
            }
            BotText::UnsubscribeButton => "Отписаться",
            BotText::Unsubscribed => {
                "Вы больше не будете получать рассылки. Ответы на ваши вопросы по-прежнему \
                 приходят сюда. Отправьте /start, чтобы снова получать рассылки."
            }
            BotText::Resubscribed => "Вы снова будете получать наши рассылки.",
            BotText::BroadcastButtonThanks => "Спасибо!",
        }
    }
}

/// The language a Telegram `language_code` stands for: its primary subtag in lower case
/// (`en-US` → `en`), or [`DEFAULT_LANGUAGE`] when absent or not a language tag.
#[must_use]
pub fn language_of(code: Option<&str>) -> String {
    code.and_then(|code| {
        let primary = code.split(['-', '_']).next().unwrap_or_default();
        let primary = primary.to_ascii_lowercase();
        check_language(&primary).ok().map(|()| primary)
    })
    .unwrap_or_else(|| DEFAULT_LANGUAGE.to_owned())
}

/// Checks that `language` is a primary language subtag as [`language_of`] gives them: two or
/// three lower-case ASCII letters.
///
/// # Errors
/// [`InvalidInput::Malformed`].
pub fn check_language(language: &str) -> Result<(), InvalidInput> {
    if (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(InvalidInput::Malformed {
            field: "language",
            why: "two or three lower-case letters (ISO 639-1, such as \"en\" or \"ru\")",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_an_english_and_a_russian_version_within_its_bound() {
        for text in BotText::ALL {
            for language in BUILT_IN_LANGUAGES {
                let built_in = text.built_in(language).unwrap_or_default();
                assert!(!built_in.trim().is_empty(), "{text:?} in {language}");
                assert!(built_in.chars().count() <= text.max_chars(), "{text:?}");
            }
            assert_ne!(text.built_in("en"), text.built_in("ru"), "{text:?}");
        }
    }

    #[test]
    fn a_language_code_is_reduced_to_its_primary_subtag() {
        assert_eq!(language_of(Some("ru")), "ru");
        assert_eq!(language_of(Some("pt-BR")), "pt");
        assert_eq!(language_of(Some("EN_us")), "en");
        assert_eq!(language_of(Some("")), "en");
        assert_eq!(language_of(Some("x")), "en");
        assert_eq!(language_of(Some("klingon")), "en");
        assert_eq!(language_of(Some("r\u{0}")), "en");
        assert_eq!(language_of(None), "en");
    }
}
