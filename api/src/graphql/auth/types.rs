//! Who is calling and their sessions, as GraphQL shows them; integrator API tokens.

use std::net::IpAddr;

use async_graphql::{Enum, ID, InputObject, SimpleObject};
use chrono::{DateTime, Utc};
use domain::agent::Role;
use uuid::Uuid;

use crate::auth::Session;
use crate::auth::store::ListedApiToken;

/// The client's address, as request data (for rate limits).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

/// A team member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(name = "Role")]
pub enum RoleValue {
    /// Everything, including agents, settings and API tokens.
    Admin,
    /// Tickets (of their categories, or all when they have none), customers, broadcasts.
    Agent,
    /// Reads everything, including history and the event feed; changes nothing.
    Auditor,
}

impl From<Role> for RoleValue {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => RoleValue::Admin,
            Role::Agent => RoleValue::Agent,
            Role::Auditor => RoleValue::Auditor,
        }
    }
}

impl From<RoleValue> for Role {
    fn from(role: RoleValue) -> Self {
        match role {
            RoleValue::Admin => Role::Admin,
            RoleValue::Agent => Role::Agent,
            RoleValue::Auditor => Role::Auditor,
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, SimpleObject)]
pub struct Me {
    /// The agent's id; null for an API token.
    pub agent_id: Option<ID>,
    /// The agent's email.
    pub email: Option<String>,
    /// The agent's display name.
    pub name: Option<String>,
    /// The agent's role.
    pub role: Option<RoleValue>,
    /// The categories whose tickets the agent works (empty: all).
    pub category_ids: Vec<ID>,
    /// True until the agent replaces a one-time password.
    pub must_change_password: bool,
    /// The API token's id; null for an agent.
    pub api_token_id: Option<ID>,
    /// The API token's scopes.
    pub scopes: Vec<String>,
}

/// A new session.
#[derive(Debug, Clone, SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <accessToken>`.
    pub access_token: String,
    /// When it stops working; refresh before.
    pub access_token_expires_at: DateTime<Utc>,
    /// Single-use: `refreshToken` trades it for a new session. Keep it secret.
    pub refresh_token: String,
    /// When it stops working.
    pub refresh_token_expires_at: DateTime<Utc>,
    /// True until the agent replaces a one-time password.
    pub must_change_password: bool,
    /// The agent.
    pub agent_id: ID,
    /// Their role.
    pub role: RoleValue,
}

impl From<Session> for AuthPayload {
    fn from(session: Session) -> Self {
        AuthPayload {
            access_token: session.access_token,
            access_token_expires_at: session.access_expires_at,
            refresh_token: session.refresh_token,
            refresh_token_expires_at: session.refresh_expires_at,
            must_change_password: session.must_change_password,
            agent_id: ID(session.agent_id.to_string()),
            role: session.role.into(),
        }
    }
}

/// Input of `login`.
#[derive(Debug, InputObject)]
pub struct LoginInput {
    /// The agent's email.
    #[graphql(validator(max_length = 320))]
    pub email: String,
    /// Their password.
    #[graphql(secret, validator(max_length = 1024))]
    pub password: String,
}

/// Input of `refreshToken`.
#[derive(Debug, InputObject)]
pub struct RefreshTokenInput {
    /// The refresh token of the current session.
    #[graphql(secret, validator(max_length = 256))]
    pub refresh_token: String,
}

/// Input of `logout`.
#[derive(Debug, InputObject)]
pub struct LogoutInput {
    /// The refresh token of the session to end.
    #[graphql(secret, validator(max_length = 256))]
    pub refresh_token: Option<String>,
    /// End every session of this agent, on every device.
    #[graphql(default = false)]
    pub everywhere: bool,
}

/// Input of `changePassword`.
#[derive(Debug, InputObject)]
pub struct ChangePasswordInput {
    /// The current password.
    #[graphql(secret, validator(max_length = 1024))]
    pub current_password: String,
    /// The new one: 12 to 256 characters.
    #[graphql(secret, validator(max_length = 1024))]
    pub new_password: String,
}

/// Result of `logout`.
#[derive(Debug, Clone, SimpleObject)]
pub struct LogoutPayload {
    /// Always true: the session (or every session) has ended.
    pub ok: bool,
}

/// Input of `createApiToken`.
#[derive(Debug, InputObject)]
pub struct CreateApiTokenInput {
    /// What it is for (shown in the token list).
    #[graphql(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// Its scopes, e.g. `events:read`, `tickets:read`.
    #[graphql(validator(min_items = 1, max_items = 7))]
    pub scopes: Vec<String>,
}

/// Result of `createApiToken`.
#[derive(Debug, SimpleObject)]
pub struct CreateApiTokenPayload {
    /// The token's id.
    pub api_token_id: ID,
    /// Shown once: only a digest is kept.
    pub token: String,
    /// Its scopes.
    pub scopes: Vec<String>,
}

/// Input of `revokeApiToken`.
#[derive(Debug, InputObject)]
pub struct RevokeApiTokenInput {
    /// The token's id.
    pub api_token_id: ID,
}

/// Result of `revokeApiToken`.
#[derive(Debug, SimpleObject)]
pub struct RevokeApiTokenPayload {
    /// The token's id.
    pub api_token_id: ID,
    /// False when it was already revoked.
    pub revoked: bool,
}

/// An integrator API token (never its secret).
#[derive(Debug, SimpleObject)]
#[graphql(complex)]
pub struct ApiToken {
    /// Its id.
    #[graphql(skip)]
    pub id: Uuid,
    /// What it is for.
    pub name: String,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ListedApiToken> for ApiToken {
    fn from(row: ListedApiToken) -> Self {
        ApiToken {
            id: row.id,
            name: row.name,
            scopes: row.scopes,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        }
    }
}
