//! The team and the desk's settings: agents (invite, role, categories, deactivation), ticket
//! categories, quick-reply templates, the greeting and the bot's texts per language.

pub mod agents;
pub mod loader;
pub mod queries;
pub mod settings;
pub mod texts;
pub mod types;

pub use agents::AgentMutation;
pub use loader::AgentLoader;
pub use queries::DirectoryQuery;
pub use settings::SettingsMutation;
pub use texts::{BotTextMutation, BotTextQuery};
pub use types::{Agent, Category, Template};
