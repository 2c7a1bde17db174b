//! The team and the desk's settings: agents (invite, role, categories, deactivation), ticket
//! categories, quick-reply templates and the greeting.

pub mod agents;
pub mod loader;
pub mod queries;
pub mod settings;
pub mod types;

pub use agents::AgentMutation;
pub use loader::AgentLoader;
pub use queries::DirectoryQuery;
pub use settings::SettingsMutation;
pub use types::{Agent, Category, Template};
