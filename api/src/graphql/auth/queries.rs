//! `me` and the API token list.

use async_graphql::{Context, ID, Object, Result};
use domain::StreamId;
use domain::agent::Agent;

use super::types::{ApiToken, Me};
use crate::auth::store;
use crate::auth::{Caller, Permission};
use crate::graphql::context::Api;
use crate::graphql::error::{database, failed, internal};
use crate::graphql::guard::{Need, caller};

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
                must_enrol_second_factor,
                ..
            } => {
                let state = api
                    .commands
                    .state::<Agent>(StreamId::Agent(*id))
                    .await
                    .map_err(|error| failed("cannot read the agent", error))?;
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
                    second_factor_enrolled: state.second_factor,
                    must_enrol_second_factor: *must_enrol_second_factor,
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
                second_factor_enrolled: false,
                must_enrol_second_factor: false,
                api_token_id: Some(ID(token_id.to_string())),
                scopes: scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            }),
        }
    }
}

#[async_graphql::ComplexObject]
impl ApiToken {
    /// Its id, as `revokeApiToken` takes it.
    async fn api_token_id(&self) -> ID {
        ID(self.id.to_string())
    }
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
        let tokens = store::list_api_tokens(&api.pool).await.map_err(database)?;
        Ok(tokens.into_iter().map(ApiToken::from).collect())
    }
}
