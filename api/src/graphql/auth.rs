//! `me` and the session mutations: `login`, `refreshToken`, `logout`, `changePassword`.

use std::net::IpAddr;

use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject,
};
use chrono::{DateTime, Utc};
use domain::StreamId;
use domain::agent::{Agent, Role};

use super::Api;
use super::error::internal;
use super::guard::{caller, signed_in_agent};
use crate::auth::{Caller, Session};

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

/// `me`.
#[derive(Debug, Default)]
pub struct MeQuery;

#[Object]
impl MeQuery {
    /// Who the credential belongs to. Works for every authenticated caller, even one who must
    /// first change their password.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        let api = ctx.data_unchecked::<Api>();
        match caller(ctx)? {
            Caller::Agent {
                id,
                must_change_password,
                ..
            } => {
                let state = api
                    .commands
                    .state::<Agent>(StreamId::Agent(*id))
                    .await
                    .map_err(|error| internal("cannot read the agent", error))?;
                let Agent::Invited(state) = state else {
                    return Err(internal("signed-in agent has no history", id));
                };
                Ok(Me {
                    agent_id: Some(ID(id.to_string())),
                    email: Some(state.personal.email),
                    name: Some(state.personal.name),
                    role: Some(state.role.into()),
                    category_ids: state.categories.iter().map(|c| ID(c.to_string())).collect(),
                    must_change_password: *must_change_password,
                    api_token_id: None,
                    scopes: Vec::new(),
                })
            }
            Caller::Integrator {
                token_id, scopes, ..
            } => Ok(Me {
                agent_id: None,
                email: None,
                name: None,
                role: None,
                category_ids: Vec::new(),
                must_change_password: false,
                api_token_id: Some(ID(token_id.to_string())),
                scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            }),
        }
    }
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

/// The session mutations.
#[derive(Debug, Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs in with email and password. Rate limited per client address and per account
    /// (`RATE_LIMITED` with `extensions.retryAfter` seconds).
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let api = ctx.data_unchecked::<Api>();
        let ip = ctx.data_opt::<ClientAddr>().and_then(|addr| addr.0);
        api.auth
            .login(&input.email, &input.password, ip)
            .await
            .map(AuthPayload::from)
            .map_err(|error| error.extend())
    }

    /// Trades a refresh token for a new session. Each refresh token works once; presenting
    /// one again revokes every session of that sign-in.
    async fn refresh_token(
        &self,
        ctx: &Context<'_>,
        input: RefreshTokenInput,
    ) -> Result<AuthPayload> {
        let api = ctx.data_unchecked::<Api>();
        api.auth
            .refresh(&input.refresh_token)
            .await
            .map(AuthPayload::from)
            .map_err(|error| error.extend())
    }

    /// Ends this sign-in (its refresh tokens stop working), or every session with
    /// `everywhere: true` (access tokens included).
    async fn logout(&self, ctx: &Context<'_>, input: LogoutInput) -> Result<LogoutPayload> {
        let agent = signed_in_agent(ctx)?;
        let api = ctx.data_unchecked::<Api>();
        api.auth
            .logout(agent, input.refresh_token.as_deref(), input.everywhere)
            .await
            .map_err(|error| error.extend())?;
        Ok(LogoutPayload { ok: true })
    }

    /// Changes the signed-in agent's password. Every other session ends; the new session is
    /// returned.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        input: ChangePasswordInput,
    ) -> Result<AuthPayload> {
        let agent = signed_in_agent(ctx)?;
        let api = ctx.data_unchecked::<Api>();
        api.auth
            .change_password(agent, &input.current_password, &input.new_password)
            .await
            .map(AuthPayload::from)
            .map_err(|error| error.extend())
    }
}
