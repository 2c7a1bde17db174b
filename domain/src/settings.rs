//! The settings aggregate: one per installation (the single `settings` stream).
//!
//! Holds ticket categories, quick-reply templates, the greeting the bot sends to new customers,
//! the bot's other texts per language ([`texts`]) and the reopen window (how long after a resolve a customer message still reopens the
//! ticket). Commands that depend on a setting carry its value, read from this state by the
//! caller, so that the other aggregates stay independent of this stream.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::codec::event_enum;
use crate::decider::Decider;
use crate::ids::{AgentId, CategoryId, TemplateId};
use crate::validate::{self, InvalidInput};

pub mod texts;

pub use texts::BotText;

/// The reopen window before anyone sets one: 7 days.
pub const DEFAULT_REOPEN_WINDOW_SECS: u64 = 7 * 24 * 3600;
/// The longest reopen window: 30 days.
pub const MAX_REOPEN_WINDOW_HOURS: u16 = 30 * 24;
/// Most categories.
pub const MAX_CATEGORIES: usize = 50;
/// Most quick-reply templates.
pub const MAX_TEMPLATES: usize = 200;

/// `settings.category_added`, `settings.category_renamed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryNamed {
    /// The category.
    pub category_id: CategoryId,
    /// Its name.
    pub name: String,
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `settings.category_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryRemoved {
    /// The category.
    pub category_id: CategoryId,
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// The text of a quick-reply template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateContent {
    /// Shown in the picker.
    pub title: String,
    /// Inserted into the reply.
    pub text: String,
}

/// `settings.template_added`, `settings.template_edited`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateSaved {
    /// The template.
    pub template_id: TemplateId,
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
    /// Title and text.
    pub content: TemplateContent,
}

/// `settings.template_removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateRemoved {
    /// The template.
    pub template_id: TemplateId,
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `settings.greeting_set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GreetingSet {
    /// The greeting (`None`: no greeting).
    pub text: Option<String>,
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `settings.reopen_window_set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReopenWindowSet {
    /// The window in seconds.
    pub seconds: u64,
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// Who must sign in with a second factor (an authenticator app) besides their password.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TwoFactorPolicy {
    /// Nobody must; anyone may enrol.
    #[default]
    Optional,
    /// Admins must.
    Admins,
    /// Everyone must.
    Everyone,
}

impl TwoFactorPolicy {
    /// Whether an agent in `role` must have a second factor.
    #[must_use]
    pub fn requires(self, role: crate::agent::Role) -> bool {
        match self {
            TwoFactorPolicy::Optional => false,
            TwoFactorPolicy::Admins => role == crate::agent::Role::Admin,
            TwoFactorPolicy::Everyone => true,
        }
    }
}

/// `settings.two_factor_policy_set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TwoFactorPolicySet {
    /// The policy from now on.
    pub policy: TwoFactorPolicy,
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `settings.bot_text_set`: an admin replaced (or, with `text: None`, restored) one of the
/// bot's texts in one language. The English greeting is never set this way: it is
/// `settings.greeting_set`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotTextSet {
    /// Which text.
    pub key: BotText,
    /// The language (primary subtag, such as `ru`).
    pub language: String,
    /// The admins' text (`None`: the built-in one again).
    pub text: Option<String>,
    /// Who.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Everything that can happen to the settings.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum SettingsEvent {
        /// A category was added.
        CategoryAdded(CategoryNamed) = "settings.category_added" v 1;
        /// A category was renamed.
        CategoryRenamed(CategoryNamed) = "settings.category_renamed" v 1;
        /// A category was removed (tickets keep its id).
        CategoryRemoved(CategoryRemoved) = "settings.category_removed" v 1;
        /// A template was added.
        TemplateAdded(TemplateSaved) = "settings.template_added" v 1;
        /// A template was edited.
        TemplateEdited(TemplateSaved) = "settings.template_edited" v 1;
        /// A template was removed.
        TemplateRemoved(TemplateRemoved) = "settings.template_removed" v 1;
        /// The greeting was set.
        GreetingSet(GreetingSet) = "settings.greeting_set" v 1;
        /// The reopen window was set.
        ReopenWindowSet(ReopenWindowSet) = "settings.reopen_window_set" v 1;
        /// Who must sign in with a second factor changed.
        TwoFactorPolicySet(TwoFactorPolicySet) = "settings.two_factor_policy_set" v 1;
        /// One of the bot's texts was set in one language.
        BotTextSet(BotTextSet) = "settings.bot_text_set" v 1;
    }
}

/// Everything one can ask of the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettingsCommand {
    /// Add a category.
    AddCategory {
        /// The id for it.
        category_id: CategoryId,
        /// Its name, unique ignoring case.
        name: String,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Rename a category.
    RenameCategory {
        /// The category.
        category_id: CategoryId,
        /// The new name.
        name: String,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove a category.
    RemoveCategory {
        /// The category.
        category_id: CategoryId,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Add a quick-reply template.
    AddTemplate {
        /// The id for it.
        template_id: TemplateId,
        /// Its title.
        title: String,
        /// Its text.
        text: String,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Change a template.
    EditTemplate {
        /// The template.
        template_id: TemplateId,
        /// The new title.
        title: String,
        /// The new text.
        text: String,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Remove a template.
    RemoveTemplate {
        /// The template.
        template_id: TemplateId,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Set or clear the greeting.
    SetGreeting {
        /// The greeting, or `None` for none.
        text: Option<String>,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Replace one of the bot's texts in one language, or (`text: None`) restore the built-in
    /// one. For the greeting in English this is [`SettingsCommand::SetGreeting`].
    SetBotText {
        /// Which text.
        key: BotText,
        /// The language: two or three lower-case letters.
        language: String,
        /// The text, at most [`BotText::max_chars`] characters; `None` for the built-in one.
        text: Option<String>,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Set the reopen window.
    SetReopenWindow {
        /// How long after a resolve a message still reopens the ticket (0 to 30 days).
        window: TimeDelta,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
    /// Set who must sign in with a second factor.
    SetTwoFactorPolicy {
        /// The policy.
        policy: TwoFactorPolicy,
        /// Who.
        by: AgentId,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Why a settings command was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// Adding a category with a used id.
    #[error("this category already exists")]
    CategoryExists,
    /// Two categories with the same name.
    #[error("a category named \"{0}\" already exists")]
    DuplicateCategoryName(String),
    /// No such category.
    #[error("there is no such category")]
    UnknownCategory,
    /// Adding a template with a used id.
    #[error("this template already exists")]
    TemplateExists,
    /// No such template.
    #[error("there is no such template")]
    UnknownTemplate,
    /// An input out of bounds.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

/// The current settings. Read them; change them only through events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Categories by id, with their names.
    pub categories: BTreeMap<CategoryId, String>,
    /// Quick-reply templates by id.
    pub templates: BTreeMap<TemplateId, TemplateContent>,
    /// The greeting for new customers, in the default language (English).
    pub greeting: Option<String>,
    /// The admins' texts by text and language, except the English greeting.
    pub bot_texts: BTreeMap<(BotText, String), String>,
    /// The reopen window in seconds.
    pub reopen_window_secs: u64,
    /// Who must sign in with a second factor.
    pub two_factor: TwoFactorPolicy,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            categories: BTreeMap::new(),
            templates: BTreeMap::new(),
            greeting: None,
            bot_texts: BTreeMap::new(),
            reopen_window_secs: DEFAULT_REOPEN_WINDOW_SECS,
            two_factor: TwoFactorPolicy::Optional,
        }
    }
}

impl Settings {
    /// The reopen window, to put into ticket commands.
    #[must_use]
    pub fn reopen_window(&self) -> TimeDelta {
        i64::try_from(self.reopen_window_secs)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .unwrap_or(TimeDelta::MAX)
    }

    /// The admins' version of `key` in `language`, if they set one.
    #[must_use]
    pub fn custom_bot_text(&self, key: BotText, language: &str) -> Option<&str> {
        if key == BotText::Greeting && language == texts::DEFAULT_LANGUAGE {
            return self.greeting.as_deref();
        }
        self.bot_texts
            .get(&(key, language.to_owned()))
            .map(String::as_str)
    }

    /// The text `key` for a customer whose Telegram client speaks `language_code` (see
    /// [`texts`] for the order of fallbacks).
    #[must_use]
    pub fn bot_text(&self, key: BotText, language_code: Option<&str>) -> &str {
        let language = texts::language_of(language_code);
        self.custom_bot_text(key, &language)
            .or_else(|| key.built_in(&language))
            .or_else(|| self.custom_bot_text(key, texts::DEFAULT_LANGUAGE))
            .unwrap_or_else(|| key.built_in(texts::DEFAULT_LANGUAGE).unwrap_or_default())
    }

    /// The languages that have a text of their own: the built-in ones and those admins added.
    #[must_use]
    pub fn text_languages(&self) -> Vec<String> {
        let mut languages: Vec<String> = texts::BUILT_IN_LANGUAGES
            .iter()
            .map(|language| (*language).to_owned())
            .collect();
        for (_, language) in self.bot_texts.keys() {
            if !languages.contains(language) {
                languages.push(language.clone());
            }
        }
        languages
    }

    fn set_bot_text(
        &self,
        key: BotText,
        language: &str,
        text: Option<&String>,
        by: AgentId,
        at: DateTime<Utc>,
    ) -> Result<Vec<SettingsEvent>, SettingsError> {
        texts::check_language(language)?;
        validate::optional("bot text", text.map(String::as_str), key.max_chars())?;
        if key == BotText::Greeting && language == texts::DEFAULT_LANGUAGE {
            return self.decide(&SettingsCommand::SetGreeting {
                text: text.cloned(),
                by,
                at,
            });
        }
        if self.custom_bot_text(key, language) == text.map(String::as_str) {
            return Ok(vec![]);
        }
        let added = !self.text_languages().iter().any(|known| known == language);
        if added && text.is_some() {
            let custom = self.text_languages().len() - texts::BUILT_IN_LANGUAGES.len();
            validate::count("languages", custom + 1, texts::MAX_TEXT_LANGUAGES)?;
        }
        Ok(vec![SettingsEvent::BotTextSet(BotTextSet {
            key,
            language: language.to_owned(),
            text: text.cloned(),
            by,
            at,
        })])
    }

    /// Whether tickets are filed by category (at least one category exists).
    #[must_use]
    pub fn uses_categories(&self) -> bool {
        !self.categories.is_empty()
    }

    fn category_name(&self, id: CategoryId, name: &str) -> Result<String, SettingsError> {
        let name = name.trim().to_owned();
        validate::required("category name", &name, validate::MAX_NAME_CHARS)?;
        let folded = name.to_lowercase();
        if self
            .categories
            .iter()
            .any(|(other, existing)| *other != id && existing.to_lowercase() == folded)
        {
            return Err(SettingsError::DuplicateCategoryName(name));
        }
        Ok(name)
    }
}

fn template(title: &str, text: &str) -> Result<TemplateContent, InvalidInput> {
    validate::required("template title", title, validate::MAX_NAME_CHARS)?;
    validate::required("template text", text, validate::MAX_TEXT_CHARS)?;
    Ok(TemplateContent {
        title: title.trim().to_owned(),
        text: text.to_owned(),
    })
}

impl Decider for Settings {
    type Command = SettingsCommand;
    type Event = SettingsEvent;
    type Error = SettingsError;

    fn decide(&self, command: &SettingsCommand) -> Result<Vec<SettingsEvent>, SettingsError> {
        use SettingsCommand as C;
        use SettingsEvent as E;
        match command {
            C::AddCategory {
                category_id,
                name,
                by,
                at,
            } => {
                if self.categories.contains_key(category_id) {
                    return Err(SettingsError::CategoryExists);
                }
                validate::count("categories", self.categories.len() + 1, MAX_CATEGORIES)?;
                Ok(vec![E::CategoryAdded(CategoryNamed {
                    category_id: *category_id,
                    name: self.category_name(*category_id, name)?,
                    by: *by,
                    at: *at,
                })])
            }
            C::RenameCategory {
                category_id,
                name,
                by,
                at,
            } => {
                let current = self
                    .categories
                    .get(category_id)
                    .ok_or(SettingsError::UnknownCategory)?;
                let name = self.category_name(*category_id, name)?;
                if *current == name {
                    return Ok(vec![]);
                }
                Ok(vec![E::CategoryRenamed(CategoryNamed {
                    category_id: *category_id,
                    name,
                    by: *by,
                    at: *at,
                })])
            }
            C::RemoveCategory {
                category_id,
                by,
                at,
            } => {
                if !self.categories.contains_key(category_id) {
                    return Err(SettingsError::UnknownCategory);
                }
                Ok(vec![E::CategoryRemoved(CategoryRemoved {
                    category_id: *category_id,
                    by: *by,
                    at: *at,
                })])
            }
            C::AddTemplate {
                template_id,
                title,
                text,
                by,
                at,
            } => {
                if self.templates.contains_key(template_id) {
                    return Err(SettingsError::TemplateExists);
                }
                validate::count("templates", self.templates.len() + 1, MAX_TEMPLATES)?;
                Ok(vec![E::TemplateAdded(TemplateSaved {
                    template_id: *template_id,
                    by: *by,
                    at: *at,
                    content: template(title, text)?,
                })])
            }
            C::EditTemplate {
                template_id,
                title,
                text,
                by,
                at,
            } => {
                let current = self
                    .templates
                    .get(template_id)
                    .ok_or(SettingsError::UnknownTemplate)?;
                let content = template(title, text)?;
                if *current == content {
                    return Ok(vec![]);
                }
                Ok(vec![E::TemplateEdited(TemplateSaved {
                    template_id: *template_id,
                    by: *by,
                    at: *at,
                    content,
                })])
            }
            C::RemoveTemplate {
                template_id,
                by,
                at,
            } => {
                if !self.templates.contains_key(template_id) {
                    return Err(SettingsError::UnknownTemplate);
                }
                Ok(vec![E::TemplateRemoved(TemplateRemoved {
                    template_id: *template_id,
                    by: *by,
                    at: *at,
                })])
            }
            C::SetGreeting { text, by, at } => {
                validate::optional("greeting", text.as_deref(), validate::MAX_TEXT_CHARS)?;
                if *text == self.greeting {
                    return Ok(vec![]);
                }
                Ok(vec![E::GreetingSet(GreetingSet {
                    text: text.clone(),
                    by: *by,
                    at: *at,
                })])
            }
            C::SetBotText {
                key,
                language,
                text,
                by,
                at,
            } => self.set_bot_text(*key, language, text.as_ref(), *by, *at),
            C::SetReopenWindow { window, by, at } => {
                let seconds = u64::try_from(window.num_seconds())
                    .ok()
                    .filter(|secs| *secs <= u64::from(MAX_REOPEN_WINDOW_HOURS) * 3600)
                    .ok_or(InvalidInput::OutOfRange {
                        field: "reopen window in hours",
                        min: 0,
                        max: i64::from(MAX_REOPEN_WINDOW_HOURS),
                    })?;
                if seconds == self.reopen_window_secs {
                    return Ok(vec![]);
                }
                Ok(vec![E::ReopenWindowSet(ReopenWindowSet {
                    seconds,
                    by: *by,
                    at: *at,
                })])
            }
            C::SetTwoFactorPolicy { policy, .. } if *policy == self.two_factor => Ok(vec![]),
            C::SetTwoFactorPolicy { policy, by, at } => {
                Ok(vec![E::TwoFactorPolicySet(TwoFactorPolicySet {
                    policy: *policy,
                    by: *by,
                    at: *at,
                })])
            }
        }
    }

    fn evolve(mut self, event: &SettingsEvent) -> Self {
        use SettingsEvent as E;
        match event {
            E::CategoryAdded(named) | E::CategoryRenamed(named) => {
                self.categories
                    .insert(named.category_id, named.name.clone());
            }
            E::CategoryRemoved(removed) => {
                self.categories.remove(&removed.category_id);
            }
            E::TemplateAdded(saved) | E::TemplateEdited(saved) => {
                self.templates
                    .insert(saved.template_id, saved.content.clone());
            }
            E::TemplateRemoved(removed) => {
                self.templates.remove(&removed.template_id);
            }
            E::GreetingSet(set) => self.greeting.clone_from(&set.text),
            E::ReopenWindowSet(set) => self.reopen_window_secs = set.seconds,
            E::TwoFactorPolicySet(set) => self.two_factor = set.policy,
            E::BotTextSet(set) => {
                let slot = (set.key, set.language.clone());
                match &set.text {
                    Some(text) => {
                        self.bot_texts.insert(slot, text.clone());
                    }
                    None => {
                        self.bot_texts.remove(&slot);
                    }
                }
            }
        }
        self
    }
}

#[cfg(test)]
mod tests;
