//! Who is calling (`me`), signing in and out, and integrator API tokens.

pub mod mutations;
pub mod queries;
pub mod types;

pub use mutations::{ApiTokenMutation, AuthMutation};
pub use queries::{ApiTokenQuery, MeQuery};
pub use types::{ClientAddr, RoleValue};
