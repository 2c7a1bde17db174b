//! Team management (admins only): invite agents, change their role and categories, deactivate
//! them.

use std::collections::BTreeSet;

use async_graphql::{Context, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use domain::agent::{Agent, AgentCommand};
use domain::{AgentId, CategoryId, StreamId};
use projections::directory::queries as directory;
use uuid::Uuid;

use crate::auth::{NewAgent, Permission};
use crate::graphql::auth::RoleValue;
use crate::graphql::commands::{position, timed};
use crate::graphql::context::Api;
use crate::graphql::error::{self, Code, database, error};
use crate::graphql::guard::{Need, caller, signed_in_agent};
use crate::graphql::ids;

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

/// Team mutations.
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
        let known = directory::current_categories(&api.pool, &uuids)
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
}

async fn run(ctx: &Context<'_>, agent: AgentId, command: &AgentCommand) -> Result<AgentPayload> {
    let api = ctx.data_unchecked::<Api>();
    let executed = timed(
        "agent",
        api.commands.execute::<Agent>(
            StreamId::Agent(agent),
            command,
            &Api::context_for(caller(ctx)?),
        ),
    )
    .await
    .map_err(error::command)?;
    Ok(AgentPayload {
        agent_id: ID(agent.to_string()),
        position: position(&executed),
    })
}
