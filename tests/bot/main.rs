//! The Telegram bot end to end: a real server and real Postgres, with Telegram's servers
//! replaced by a local fake Bot API server that the real teloxide client talks to.

#![expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
#![allow(
    unreachable_pub,
    dead_code,
    reason = "support code shared by test modules"
)]

mod support;

mod broadcast;
mod broadcasts;
mod content;
mod delivery;
mod fidelity;
mod fuzz;
mod inbound;
mod unstorable;
