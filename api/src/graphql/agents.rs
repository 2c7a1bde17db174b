//! Team management (admins only): invite agents, change their role and categories, deactivate
//! them; and integrator API tokens (created and revoked by admins, shown once).

use std::collections::BTreeSet;

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use domain::agent::{Agent, AgentCommand};
use domain::{AgentId, CategoryId, StreamId};
use uuid::Uuid;

use super::auth::RoleValue;
use super::error::{self, Code, database, error};
use super::guard::{Need, caller, signed_in_agent};
use super::mutations::position;
use super::{Api, ids};
use crate::auth::{NewAgent, Permission, Scope, tokens};

/// Most API tokens one deployment keeps (active or revoked).
const MAX_API_TOKENS: i64 = 1_000;

fn agent_id(id: &ID) -> Result<AgentId> {
    Ok(AgentId::from_uuid(ids::uuid_of("Agent", id)?))
}

/// Input of `inviteAgent`.
#[derive(Debug, InputObject)]
pub struct InviteAgentInput {
    /// Their sign-in email.
    #[graphql(validator(max_length = 254))]
    pub email: String,
    /// Their display name.
    #[graphql(validator(max_length = 100))]
    pub name: String,
    /// Their role.
    pub role: RoleValue,
}

/// Result of `inviteAgent`.
#[derive(Debug, SimpleObject)]
pub struct InviteAgentPayload {
    /// The new agent.
    pub agent_id: ID,
    /// Shown once: hand it over; the agent must change it at first sign-in.
    pub one_time_password: String,
    /// The log position of the invitation.
    pub position: Option<String>,
}

/// Input of `changeAgentRole`.
#[derive(Debug, InputObject)]
pub struct ChangeAgentRoleInput {
    /// The agent.
    pub agent_id: ID,
    /// The new role.
    pub role: RoleValue,
}

/// Input of `setAgentCategories`.
#[derive(Debug, InputObject)]
pub struct SetAgentCategoriesInput {
    /// The agent.
    pub agent_id: ID,
    /// The full set of categories whose tickets they work (empty: all tickets).
    #[graphql(validator(max_items = 100))]
    pub category_ids: Vec<ID>,
}

/// Input of `deactivateAgent`.
#[derive(Debug, InputObject)]
pub struct DeactivateAgentInput {
    /// The agent.
    pub agent_id: ID,
}

/// Result of the agent mutations.
#[derive(Debug, SimpleObject)]
pub struct AgentPayload {
    /// The agent changed.
    pub agent_id: ID,
    /// The log position written (null when nothing changed).
    pub position: Option<String>,
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
#[derive(Debug, SimpleObject, sqlx::FromRow)]
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

#[async_graphql::ComplexObject]
impl ApiToken {
    /// Its id, as `revokeApiToken` takes it.
    async fn api_token_id(&self) -> ID {
        ID(self.id.to_string())
    }
}

/// Team and token mutations.
#[derive(Debug, Default)]
pub struct AgentMutation;

#[Object]
impl AgentMutation {
    /// Invites an agent with a one-time password (shown once in the payload).
    #[graphql(guard = "Need(Permission::ManageAgents)")]
    async fn invite_agent(
        &self,
        ctx: &Context<'_>,
        input: InviteAgentInput,
    ) -> Result<InviteAgentPayload> {
        let api = ctx.data_unchecked::<Api>();
        let by = signed_in_agent(ctx)?;
        let created = api
            .auth
            .create_agent(
                NewAgent {
                    email: input.email,
                    name: input.name,
                    role: input.role.into(),
                    password: None,
                    by: Some(by),
                },
                &Api::context_for(caller(ctx)?),
            )
            .await
            .map_err(|error| error.extend())?;
        Ok(InviteAgentPayload {
            agent_id: ID(created.agent_id.to_string()),
            one_time_password: created.one_time_password.unwrap_or_default(),
            position: created.position.map(|position| position.to_string()),
        })
    }

    /// Changes an agent's role. Their sessions end, so the new role applies at once.
    #[graphql(guard = "Need(Permission::ManageAgents)")]
    async fn change_agent_role(
        &self,
        ctx: &Context<'_>,
        input: ChangeAgentRoleInput,
    ) -> Result<AgentPayload> {
        let agent = agent_id(&input.agent_id)?;
        let by = signed_in_agent(ctx)?;
        let command = AgentCommand::ChangeRole {
            role: input.role.into(),
            by,
            at: Utc::now(),
        };
        let payload = run(ctx, agent, &command).await?;
        if payload.position.is_some() {
            let api = ctx.data_unchecked::<Api>();
            api.auth
                .end_all_sessions(agent)
                .await
                .map_err(|error| error.extend())?;
        }
        Ok(payload)
    }

    /// Sets the categories whose tickets an agent works (empty: all).
    #[graphql(guard = "Need(Permission::ManageAgents)")]
    async fn set_agent_categories(
        &self,
        ctx: &Context<'_>,
        input: SetAgentCategoriesInput,
    ) -> Result<AgentPayload> {
        let agent = agent_id(&input.agent_id)?;
        let by = signed_in_agent(ctx)?;
        let categories = input
            .category_ids
            .iter()
            .map(|id| ids::uuid_of("Category", id).map(CategoryId::from_uuid))
            .collect::<Result<BTreeSet<_>>>()?;
        let api = ctx.data_unchecked::<Api>();
        let uuids: Vec<Uuid> = categories.iter().map(CategoryId::as_uuid).collect();
        let known: i64 = sqlx::query_scalar(
            "select count(*) from categories where id = any($1) and removed_at is null",
        )
        .bind(&uuids)
        .fetch_one(&api.pool)
        .await
        .map_err(database)?;
        if usize::try_from(known).unwrap_or(0) != uuids.len() {
            return Err(error(
                Code::NotFound,
                "a category in categoryIds does not exist",
            ));
        }
        let command = AgentCommand::AssignCategories {
            categories: categories.into_iter().collect(),
            by,
            at: Utc::now(),
        };
        run(ctx, agent, &command).await
    }

    /// Deactivates an agent: they can no longer sign in and their sessions end at once.
    #[graphql(guard = "Need(Permission::ManageAgents)")]
    async fn deactivate_agent(
        &self,
        ctx: &Context<'_>,
        input: DeactivateAgentInput,
    ) -> Result<AgentPayload> {
        let agent = agent_id(&input.agent_id)?;
        let by = signed_in_agent(ctx)?;
        let command = AgentCommand::Deactivate { by, at: Utc::now() };
        let payload = run(ctx, agent, &command).await?;
        let api = ctx.data_unchecked::<Api>();
        api.auth
            .end_all_sessions(agent)
            .await
            .map_err(|error| error.extend())?;
        Ok(payload)
    }

    /// Creates an integrator API token. The token is in the payload and never shown again.
    #[graphql(guard = "Need(Permission::ManageApiTokens)")]
    async fn create_api_token(
        &self,
        ctx: &Context<'_>,
        input: CreateApiTokenInput,
    ) -> Result<CreateApiTokenPayload> {
        let by = signed_in_agent(ctx)?;
        let scopes = input
            .scopes
            .iter()
            .map(|scope| scope.trim().parse::<Scope>())
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|unknown| error(Code::Validation, unknown.to_string()))?;
        let name = input.name.trim();
        if name.is_empty() {
            return Err(error(Code::Validation, "name must not be blank"));
        }
        let api = ctx.data_unchecked::<Api>();
        let count: i64 = sqlx::query_scalar("select count(*) from api_tokens")
            .fetch_one(&api.pool)
            .await
            .map_err(database)?;
        if count >= MAX_API_TOKENS {
            return Err(error(
                Code::Conflict,
                format!("at most {MAX_API_TOKENS} API tokens can exist"),
            ));
        }
        let token = tokens::new_api_token();
        let id = Uuid::now_v7();
        let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
        sqlx::query(
            "insert into api_tokens (id, name, scopes, token_hash, created_by)
             values ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(name)
        .bind(&scopes)
        .bind(tokens::digest(&token))
        .bind(by.as_uuid())
        .execute(&api.pool)
        .await
        .map_err(database)?;
        tracing::info!(token_id = %id, ?scopes, by = %by, "API token created");
        Ok(CreateApiTokenPayload {
            api_token_id: ID(id.to_string()),
            token,
            scopes,
        })
    }

    /// Revokes an API token: it stops working at once.
    #[graphql(guard = "Need(Permission::ManageApiTokens)")]
    async fn revoke_api_token(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiTokenInput,
    ) -> Result<RevokeApiTokenPayload> {
        let id: Uuid = input
            .api_token_id
            .parse()
            .map_err(|_| error(Code::Validation, "not an API token id"))?;
        let api = ctx.data_unchecked::<Api>();
        let (found, revoked): (bool, bool) = sqlx::query_as(
            "with target as (select id, revoked_at from api_tokens where id = $1),
                  revoked as (update api_tokens set revoked_at = now()
                              where id = $1 and revoked_at is null returning id)
             select exists(select 1 from target), exists(select 1 from revoked)",
        )
        .bind(id)
        .fetch_one(&api.pool)
        .await
        .map_err(database)?;
        if !found {
            return Err(error(Code::NotFound, "no such API token"));
        }
        Ok(RevokeApiTokenPayload {
            api_token_id: input.api_token_id,
            revoked,
        })
    }
}

async fn run(ctx: &Context<'_>, agent: AgentId, command: &AgentCommand) -> Result<AgentPayload> {
    let api = ctx.data_unchecked::<Api>();
    let executed = api
        .commands
        .execute::<Agent>(
            StreamId::Agent(agent),
            command,
            &Api::context_for(caller(ctx)?),
        )
        .await
        .map_err(error::command)?;
    Ok(AgentPayload {
        agent_id: ID(agent.to_string()),
        position: position(&executed),
    })
}

/// The token list.
#[derive(Debug, Default)]
pub struct ApiTokenQuery;

#[Object]
impl ApiTokenQuery {
    /// Every API token, newest first (never their secrets).
    #[graphql(guard = "Need(Permission::ManageApiTokens)")]
    async fn api_tokens(&self, ctx: &Context<'_>) -> Result<Vec<ApiToken>> {
        let api = ctx.data_unchecked::<Api>();
        sqlx::query_as(
            "select id, name, scopes, created_at, revoked_at, last_used_at
             from api_tokens order by created_at desc limit 1000",
        )
        .fetch_all(&api.pool)
        .await
        .map_err(database)
    }
}
