//! The panel's own audit trail: who signed in (or was refused) from where, who signed out,
//! which API tokens were created and revoked, which exports and replays were run
//! (`audit-<agent uuid>`, `audit-anonymous`, `audit-operations` streams).
//!
//! These events are records, not decisions: nothing is decided on them, so they have no
//! decider and are appended as they happen. They never carry a password, a token or its
//! digest, a second-factor code, nor the email typed in a refused sign-in (it may be a
//! password typed in the wrong field); a refused sign-in names the account only when one
//! matches. What changes an agent's rights (role, categories, deactivation, password, second
//! factor) is on the agent's own stream (`agent.*`), where the command service decides it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::codec::event_enum;
use crate::ids::AgentId;

/// `audit.signed_in`: an agent signed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedIn {
    /// Who.
    pub agent: AgentId,
    /// The client's address, when known.
    pub address: Option<String>,
    /// Whether a second factor (a code or a recovery code) completed the sign-in.
    pub second_factor: bool,
    /// When.
    pub at: DateTime<Utc>,
}

/// `audit.sign_in_refused`: sign-ins were refused. Recorded at most once per account (or
/// unknown account) and address per window, counting the refusals since the last record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInRefused {
    /// The account tried, when the email named one.
    pub agent: Option<AgentId>,
    /// The client's address, when known.
    pub address: Option<String>,
    /// Why the last one was refused: `wrong_credentials`, `rate_limited`, `deactivated`.
    pub reason: String,
    /// Refusals counted by this record (this one and those not recorded before it).
    pub attempts: u32,
    /// When the first of them happened.
    pub since: DateTime<Utc>,
    /// When.
    pub at: DateTime<Utc>,
}

/// `audit.signed_out`: an agent signed out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOut {
    /// Who.
    pub agent: AgentId,
    /// Whether every session of the agent ended, rather than this sign-in.
    pub everywhere: bool,
    /// When.
    pub at: DateTime<Utc>,
}

/// `audit.api_token_created`: an admin created an integrator's API token (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenCreated {
    /// The token's id.
    pub token_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Who created it.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `audit.api_token_revoked`: an admin revoked an API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRevoked {
    /// The token's id.
    pub token_id: Uuid,
    /// Who revoked it.
    pub by: AgentId,
    /// When.
    pub at: DateTime<Utc>,
}

/// `audit.replay_run`: `ledgerdesk replay` ran (a rebuild, or a verification).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayRun {
    /// The read models rebuilt or verified.
    pub projections: Vec<String>,
    /// Whether it compared (`--verify`) rather than replaced.
    pub verify: bool,
    /// How it ended: `rebuilt`, `equal`, `different`, `failed`.
    pub outcome: String,
    /// For a verification, the rows that differed.
    #[serde(default)]
    pub differing_rows: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub at: DateTime<Utc>,
}

/// `audit.export_made`: the log (or a part of it) was exported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportMade {
    /// The first position asked for, if any.
    pub from: Option<String>,
    /// The last position asked for, if any.
    pub to: Option<String>,
    /// The stream prefix asked for, if any.
    pub stream_prefix: Option<String>,
    /// Events written.
    pub events: u64,
    /// When.
    pub at: DateTime<Utc>,
}

event_enum! {
    /// Everything the panel's audit trail records.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum AuditEvent {
        /// An agent signed in.
        SignedIn(SignedIn) = "audit.signed_in" v 1;
        /// Sign-ins were refused (counted per account and address).
        SignInRefused(SignInRefused) = "audit.sign_in_refused" v 1;
        /// An agent signed out.
        SignedOut(SignedOut) = "audit.signed_out" v 1;
        /// An API token was created.
        ApiTokenCreated(ApiTokenCreated) = "audit.api_token_created" v 1;
        /// An API token was revoked.
        ApiTokenRevoked(ApiTokenRevoked) = "audit.api_token_revoked" v 1;
        /// `ledgerdesk replay` ran.
        ReplayRun(ReplayRun) = "audit.replay_run" v 1;
        /// The log was exported.
        ExportMade(ExportMade) = "audit.export_made" v 1;
    }
}
