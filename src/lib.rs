//! The `ledgerdesk` binary's library: settings, telemetry and the wiring that turns them into a
//! running application. `main.rs` only parses the command line and calls in here.

pub mod audit;
pub mod cli;
pub mod telemetry;

mod generate;
mod replay;
mod startup;

pub use cli::{ServingRole, serving_url};
pub use generate::generate;
pub use replay::{replay, verify};
pub use startup::{AnchorSettings, Application, Settings, create_agent, migrate};
