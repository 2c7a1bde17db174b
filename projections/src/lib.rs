//! Projections: the projector runtime (checkpoints, batching, rebuild) and one module per
//! Postgres read model.

mod projection;

pub mod broadcasts;
pub mod customers;
pub mod dashboard;
pub mod directory;
pub mod models;
pub mod tickets;

mod sql;

pub use projection::{ApplyError, Envelope, Projection, SHADOW_SCHEMA, Target};
