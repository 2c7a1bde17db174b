//! Shared support for Ledgerdesk's tests and benchmarks, used only as a dev-dependency.
//!
//! - [`TestDatabase`] and [`DatabaseName`]: a database of a test's own on the server
//!   `DATABASE_URL` names, dropped with the value, also when the test panics.
//! - [`eventually`]: waits for a condition by polling it, never by a fixed sleep.
//! - [`env_or`]: a benchmark's setting from the environment, with its default.
//! - [`DatabaseProxy`]: a TCP proxy between the application and Postgres that a test cuts and
//!   restores, to play a database outage.
//! - `telegram` (feature `telegram`): a fake Telegram Bot API server for teloxide to talk to.
//! - `application` (feature `app`): the whole of Ledgerdesk on a free port and a database of
//!   its own. It depends on the root package, so only that package's tests and benchmarks
//!   turn it on.
//!
//! Nothing here mocks Ledgerdesk's own code: tests run the real thing against a real Postgres.

pub mod database;
pub mod proxy;
pub mod settings;
pub mod wait;

#[cfg(feature = "app")]
pub mod application;
#[cfg(feature = "telegram")]
pub mod telegram;

#[cfg(feature = "app")]
pub use application::TestApp;
pub use database::{DatabaseName, TestDatabase};
pub use proxy::DatabaseProxy;
pub use settings::env_or;
pub use wait::eventually;
