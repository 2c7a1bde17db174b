//! Customers: the people who write to the bot, and their moderation (ban, unban).

pub mod loader;
pub mod mutations;
pub mod queries;
pub mod types;

pub use loader::CustomerLoader;
pub use mutations::CustomerMutation;
pub use queries::CustomerQuery;
pub use types::{Customer, customer_key};
