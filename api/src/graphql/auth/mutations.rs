//! The session mutations (`login`, `refreshToken`, `logout`, `changePassword`) and the API
//! token mutations (created and revoked by admins, shown once).

use std::collections::BTreeSet;

use app::audit_trail;
use async_graphql::{Context, ErrorExtensions, ID, Object, Result};
use chrono::Utc;
use domain::AuditStream;
use domain::audit::{ApiTokenCreated, ApiTokenRevoked, AuditEvent};
use uuid::Uuid;

use super::second_factor::{http_client, proof, second_factor_required, signed_in};
use super::types::{
    AuthPayload, ChangePasswordInput, CreateApiTokenInput, CreateApiTokenPayload, LoginInput,
    LoginSecondFactorInput, LogoutInput, LogoutPayload, RefreshTokenInput, RevokeApiTokenInput,
    RevokeApiTokenPayload,
};
use crate::auth::store;
use crate::auth::{LoginOutcome, Permission, Scope, tokens};
use crate::graphql::context::Api;
use crate::graphql::error::{Code, database, error, failed};
use crate::graphql::guard::{Need, signed_in_agent};

/// Most API tokens one deployment keeps (active or revoked).
const MAX_API_TOKENS: i64 = 1_000;

/// The session mutations.
#[derive(Debug, Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs in with email and password (over `POST /graphql` only).
    ///
    /// Failed attempts are slowed down by growing delays per client address, per account and
    /// address, and per account (`RATE_LIMITED` with `extensions.retryAfter` seconds); a device
    /// that signed in to this account before (its device cookie, or `deviceToken`) is not held
    /// by the per-account delay. An agent with a second factor gets the error
    /// `SECOND_FACTOR_REQUIRED` with `extensions.challenge` to answer with
    /// `loginSecondFactor`.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> Result<AuthPayload> {
        let api = ctx.data_unchecked::<Api>();
        let client = http_client(ctx)?;
        let device = input
            .device_token
            .as_deref()
            .or(client.device_cookie.as_deref());
        match api
            .auth
            .login(&input.email, &input.password, client.ip, device)
            .await
            .map_err(|error| error.extend())?
        {
            LoginOutcome::SignedIn(session) => Ok(signed_in(ctx, session)),
            LoginOutcome::SecondFactorRequired(challenge) => {
                Err(second_factor_required(&challenge))
            }
        }
    }

    /// Finishes a sign-in that `login` answered with `SECOND_FACTOR_REQUIRED`: the challenge
    /// and a code from the authenticator app (or one recovery code). A challenge works once,
    /// for five minutes and five wrong codes; wrong codes are also slowed down per account.
    async fn login_second_factor(
        &self,
        ctx: &Context<'_>,
        input: LoginSecondFactorInput,
    ) -> Result<AuthPayload> {
        let api = ctx.data_unchecked::<Api>();
        let client = http_client(ctx)?;
        let proof = proof(input.code.as_deref(), input.recovery_code.as_deref())?;
        let device = input
            .device_token
            .as_deref()
            .or(client.device_cookie.as_deref());
        let session = api
            .auth
            .login_second_factor(&input.challenge, proof, device)
            .await
            .map_err(|error| error.extend())?;
        api.auth
            .record_sign_in(session.agent_id, client.ip, true)
            .await
            .map_err(|error| error.extend())?;
        Ok(signed_in(ctx, session))
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

/// The API token mutations.
#[derive(Debug, Default)]
pub struct ApiTokenMutation;

#[Object]
impl ApiTokenMutation {
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
        let count = store::count_api_tokens(&api.pool).await.map_err(database)?;
        if count >= MAX_API_TOKENS {
            return Err(error(
                Code::Conflict,
                format!("at most {MAX_API_TOKENS} API tokens can exist"),
            ));
        }
        let token = tokens::new_api_token();
        let id = Uuid::now_v7();
        let scopes: Vec<String> = scopes.iter().map(|s| s.as_str().to_owned()).collect();
        store::insert_api_token(
            &api.pool,
            id,
            name,
            &scopes,
            &tokens::digest(&token),
            by.as_uuid(),
        )
        .await
        .map_err(database)?;
        let event = AuditEvent::ApiTokenCreated(ApiTokenCreated {
            token_id: id,
            name: name.to_owned(),
            scopes: scopes.clone(),
            by,
            at: Utc::now(),
        });
        if let Err(failure) =
            audit_trail::record(&api.log, AuditStream::Agent(by), &event, actor(by)).await
        {
            // A token the audit trail does not know of must not work: it is revoked, and its
            // secret never shown.
            let _ = store::revoke_api_token(&api.pool, id).await;
            return Err(failed(
                "cannot record the API token in the audit trail",
                failure,
            ));
        }
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
        let by = signed_in_agent(ctx)?;
        let api = ctx.data_unchecked::<Api>();
        let (found, revoked) = store::revoke_api_token(&api.pool, id)
            .await
            .map_err(database)?;
        if revoked {
            api.auth.credentials_ended();
            let event = AuditEvent::ApiTokenRevoked(ApiTokenRevoked {
                token_id: id,
                by,
                at: Utc::now(),
            });
            audit_trail::record(&api.log, AuditStream::Agent(by), &event, actor(by))
                .await
                .map_err(|failure| {
                    failed("cannot record the revocation in the audit trail", failure)
                })?;
        }
        if !found {
            return Err(error(Code::NotFound, "no such API token"));
        }
        Ok(RevokeApiTokenPayload {
            api_token_id: input.api_token_id,
            revoked,
        })
    }
}

/// The actor of an agent's own action.
fn actor(agent: domain::AgentId) -> eventlog::Actor {
    eventlog::Actor::new(eventlog::ActorKind::Agent, agent.to_string())
}
