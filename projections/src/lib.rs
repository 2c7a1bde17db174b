//! Projections: the projector runtime (checkpoints, batching, rebuild) and one module per
//! Postgres read model.

mod projection;

pub use projection::{ApplyError, Envelope, Projection, SHADOW_SCHEMA, Target};
