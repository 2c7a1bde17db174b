//! Projections: the projector runtime (checkpoints, batching, rebuild) and one module per
//! Postgres read model.

pub mod generate;
mod projection;

pub use projection::{ApplyError, Envelope, Projection, SHADOW_SCHEMA, Target};
