//! Who is calling (`me`), signing in and out (with a second factor), and integrator API tokens.

pub mod mutations;
pub mod queries;
pub mod second_factor;
pub mod types;

pub use mutations::{ApiTokenMutation, AuthMutation};
pub use queries::{ApiTokenQuery, MeQuery};
pub use second_factor::{SecondFactorMutation, SecondFactorQuery};
pub use types::{ClientAddr, RoleValue};
