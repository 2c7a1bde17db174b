//! Development tools for Ledgerdesk: what demos, benchmarks and tests use, and the running
//! service does not.
//!
//! - [`generate`]: writes a realistic, valid support history into an empty log.
//!
//! Nothing here is linked into the service's libraries; the `ledgerdesk generate` command
//! reaches the generator through this crate.

pub mod generate;
