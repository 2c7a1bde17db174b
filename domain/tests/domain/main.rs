//! The domain crate's integration tests, as one test binary.
//!
//! - `fixtures`: stored JSON samples of every event and schema version decode, and current
//!   versions are written exactly as stored.
//! - `*_properties`: random command sequences never panic, `evolve` is total, and the
//!   invariants hold after every step.

mod broadcast_properties;
mod fixtures;
mod routing_properties;
mod samples;
mod support;
mod ticket_properties;
