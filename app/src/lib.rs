//! Running Ledgerdesk: what sits between the storage (`eventlog`) and the parts that serve
//! people (the API, the bot).
//!
//! - [`commands`]: the command service, the write path of the product. It loads a stream (or the
//!   two streams of a flow), folds it into the domain's state, asks the decider and appends what
//!   it decided, retrying on conflicts. One [`commands::CommandService`] is built at start-up and
//!   handed to every part that writes; its clones share one memory of states.
//! - [`as_of`]: a stream as it was at a version or a moment, folded with the domain's own
//!   fold, for auditors.
//! - [`audit_trail`]: appending the panel's own audit trail (sign-ins, tokens, replays).
//! - [`database`]: setting up the one Postgres database that holds the log and the read models:
//!   the pool policy, the migrations, and whether the schema is ready to serve.
//! - [`forget`]: forgetting a customer's personal data (their key, and the record of it).
//! - [`ownership`]: "one owner per database" for the singletons (each projection, the delivery
//!   worker), through a Postgres advisory lock held on the owner's own connection.
//! - [`personal`]: what is personal in the events, sealed by the log under each customer's
//!   key so that forgetting the key forgets it (crypto-shredding), and the log opened so.
//! - [`serving_role`]: the Postgres role the server runs as, created and granted after the
//!   migrations, which can append to the log but never change it.

pub mod as_of;
pub mod audit_trail;
pub mod commands;
pub mod database;
pub mod forget;
pub mod ownership;
pub mod personal;
pub mod serving_role;
