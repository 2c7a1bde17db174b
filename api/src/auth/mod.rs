//! Who is calling, and what they may do.
//!
//! Every request carries at most one credential in `Authorization: Bearer …` (or, on a
//! WebSocket, in the `connection_init` payload):
//! - an **access token**: a short-lived JWT (HS256) naming an agent and their role, issued by
//!   `login` and `refreshToken`;
//! - an **API token** (`ldk_…`): an integrator's long-lived, scoped token, created by an admin.
//!
//! Either becomes a [`Caller`]; an agent's caller carries the role, categories and activity the
//! log has for them when the credential is checked (the role inside the token is not used), so
//! no permission lags the change that narrowed it. What a caller may do is one table,
//! [`Caller::may`]: a role (or a set of scopes) grants [`Permission`]s, and every resolver names
//! the permission it needs.
//! Which tickets an agent sees is a row-level rule on top ([`TicketScope`]).
//!
//! Passwords are argon2id hashes and refresh/API tokens are stored as sha256 digests, in
//! mutable tables (migration 0005); none of them ever reaches the event log or the logs.
//! Second factors (TOTP secrets, recovery-code hashes, sign-in challenges) have tables of their
//! own (migration 0020, [`second_factor`]); failed sign-ins are slowed down by growing delays
//! ([`throttle`]), which a device that signed in before passes per account.
//!
//! Sign-ins (and refused ones, counted per account and address), sign-outs and API tokens
//! created and revoked are recorded in the panel's audit trail ([`domain::audit`], `trail`),
//! never with a password, a token or a code.

mod caller;
pub(crate) mod jwt;
pub mod password;
pub mod second_factor;
mod service;
mod sessions;
pub(crate) mod store;
pub(crate) mod throttle;
pub mod tokens;
mod trail;

pub use caller::{Authentication, Caller, Permission, Principal, Scope, TicketScope, UnknownScope};
pub use jwt::{AccessClaims, DeviceClaims, Keys};
pub use service::{
    AuthConfig, AuthError, AuthService, Challenge, CreatedAgent, Enrolment, LoginOutcome,
    MIN_PRODUCTION_ACCESS_TTL, NewAgent, Proof, Session,
};
