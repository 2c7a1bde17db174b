//! Projections: the projector runtime (checkpoints, batching, rebuild) and one module per
//! Postgres read model. Built in a later issue; this crate holds only its place in the workspace.
