//! Customers: the people who write to the bot, and their moderation (ban, unban).

pub mod loader;
pub mod mutations;
pub mod queries;
pub mod types;

pub use loader::{CustomerKey, CustomerLoader};
pub use mutations::CustomerMutation;
pub use queries::{CustomerQuery, visible_customer};
pub use types::{Customer, customer_key};
