//! The Telegram bot: inbound updates become commands, a delivery worker sends replies back.
//!
//! - [`update`] reads a Telegram [`Update`](teloxide::types::Update) into an [`update::Inbound`]:
//!   what the customer did, in our own terms, or why the update is ignored.
//! - [`inbound`] turns an [`update::Inbound`] into commands on the log, with the update id as
//!   the idempotency key, and answers the customer where the bot must (greeting, help).
//! - [`webhook`] and [`polling`] are the two ways updates arrive.
//! - [`delivery`] follows the log and sends agent replies and satisfaction prompts to Telegram,
//!   recording each outcome as an event.
//! - [`callback`] is the format of the data behind inline buttons, shared by both directions.
//! - [`config`] holds the settings.

pub mod callback;
pub mod config;
pub mod delivery;
pub mod inbound;
pub mod polling;
pub mod update;
pub mod webhook;
