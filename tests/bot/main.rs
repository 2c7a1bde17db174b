//! The Telegram bot end to end: a real server and real Postgres, with Telegram's servers
//! replaced by a local fake Bot API server that the real teloxide client talks to.

mod delivery;
mod fake_telegram;
