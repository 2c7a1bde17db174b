//! The Telegram bot: inbound updates become commands, a delivery worker sends replies back.
//! Built in a later issue; this crate holds only its place in the workspace.
