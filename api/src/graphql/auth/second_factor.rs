//! Two-factor sign-in as GraphQL shows it: enrolling an authenticator app, disabling it, an
//! admin's reset, the team's policy, and the helpers `login` shares with
//! `loginSecondFactor` (the device cookie, the `SECOND_FACTOR_REQUIRED` answer).

use async_graphql::{Context, ErrorExtensions, ID, Object, Result};
use chrono::Utc;
use domain::agent::Agent;
use domain::settings::{Settings, SettingsCommand};
use domain::{AgentId, StreamId};

use super::types::{
    AuthPayload, ClientAddr, ConfirmSecondFactorInput, ConfirmSecondFactorPayload,
    DisableSecondFactorInput, EnrolSecondFactorInput, EnrolSecondFactorPayload,
    ResetSecondFactorInput, SecondFactorRemovedPayload, SetTwoFactorPolicyInput,
    TwoFactorPolicyPayload, TwoFactorPolicyValue, device_cookie_header,
};
use crate::auth::{Challenge, Permission, Proof, Session};
use crate::graphql::commands::{context, timed, uuid};
use crate::graphql::context::Api;
use crate::graphql::error::{self, Code, internal};
use crate::graphql::guard::{Need, signed_in_agent};

/// How long the browser keeps the device cookie, in seconds (as long as the token inside).
const DEVICE_COOKIE_MAX_AGE: i64 = 180 * 24 * 3600;

/// The HTTP client of a sign-in. Signing in works over `POST /graphql` only, where the
/// client's address is known and throttled.
pub(super) fn http_client<'a>(ctx: &Context<'a>) -> Result<&'a ClientAddr> {
    ctx.data_opt::<ClientAddr>().ok_or_else(|| {
        error::error(
            Code::Validation,
            "sign in over HTTP (POST /graphql), not over a WebSocket",
        )
    })
}

/// The payload of a full sign-in; the device token also goes into the device cookie.
pub(super) fn signed_in(ctx: &Context<'_>, session: Session) -> AuthPayload {
    if let Some(token) = &session.device_token {
        ctx.append_http_header(
            "set-cookie",
            device_cookie_header(token, DEVICE_COOKIE_MAX_AGE),
        );
    }
    AuthPayload::from(session)
}

/// The answer of `login` for an agent with a second factor.
pub(super) fn second_factor_required(challenge: &Challenge) -> async_graphql::Error {
    let token = challenge.token.clone();
    let expires_at = challenge.expires_at.to_rfc3339();
    async_graphql::Error::new(
        "the password is right; now send a code from the authenticator app (or a recovery \
         code) with loginSecondFactor and this challenge",
    )
    .extend_with(move |_, extensions| {
        extensions.set("code", "SECOND_FACTOR_REQUIRED");
        extensions.set("challenge", token.clone());
        extensions.set("challengeExpiresAt", expires_at.clone());
    })
}

/// Exactly one of a code and a recovery code.
pub(super) fn proof<'a>(code: Option<&'a str>, recovery: Option<&'a str>) -> Result<Proof<'a>> {
    match (code, recovery) {
        (Some(code), None) => Ok(Proof::Code(code)),
        (None, Some(recovery)) => Ok(Proof::RecoveryCode(recovery)),
        _ => Err(error::error(
            Code::Validation,
            "send exactly one of code and recoveryCode",
        )),
    }
}

/// The second-factor mutations.
#[derive(Debug, Default)]
pub struct SecondFactorMutation;

#[Object]
impl SecondFactorMutation {
    /// Starts enrolling an authenticator app for the signed-in agent, who confirms it is them
    /// with their current password: the secret and an `otpauth://` URI to show as a QR code.
    /// Nothing changes at sign-in until `confirmSecondFactor`; enrolling again before that
    /// replaces the secret. Works on a restricted sign-in.
    async fn enrol_second_factor(
        &self,
        ctx: &Context<'_>,
        input: EnrolSecondFactorInput,
    ) -> Result<EnrolSecondFactorPayload> {
        let agent = signed_in_agent(ctx)?;
        let api = ctx.data_unchecked::<Api>();
        let enrolment = api
            .auth
            .enrol_second_factor(agent, &input.current_password)
            .await
            .map_err(|error| error.extend())?;
        Ok(EnrolSecondFactorPayload {
            secret: enrolment.secret,
            otpauth_uri: enrolment.otpauth_uri,
        })
    }

    /// Confirms the enrolment with the code the app shows now. From then on `login` asks for
    /// a code. Returns ten one-time recovery codes (shown once) and a new session; every other
    /// session of the agent ends.
    async fn confirm_second_factor(
        &self,
        ctx: &Context<'_>,
        input: ConfirmSecondFactorInput,
    ) -> Result<ConfirmSecondFactorPayload> {
        let agent = signed_in_agent(ctx)?;
        let api = ctx.data_unchecked::<Api>();
        let (recovery_codes, session) = api
            .auth
            .confirm_second_factor(agent, &input.code)
            .await
            .map_err(|error| error.extend())?;
        Ok(ConfirmSecondFactorPayload {
            recovery_codes,
            session: AuthPayload::from(session),
        })
    }

    /// Turns the signed-in agent's second factor off, proven with the code the app shows now
    /// (or a recovery code). Where the team requires one of their role, their next sign-in
    /// is restricted to enrolling again.
    async fn disable_second_factor(
        &self,
        ctx: &Context<'_>,
        input: DisableSecondFactorInput,
    ) -> Result<SecondFactorRemovedPayload> {
        let agent = signed_in_agent(ctx)?;
        let proof = proof(input.code.as_deref(), input.recovery_code.as_deref())?;
        let api = ctx.data_unchecked::<Api>();
        api.auth
            .disable_second_factor(agent, proof)
            .await
            .map_err(|error| error.extend())?;
        Ok(SecondFactorRemovedPayload {
            agent_id: ID(agent.to_string()),
            removed: true,
        })
    }

    /// For an agent who lost their device (admins; not for themselves): removes their second
    /// factor and recovery codes and ends every session of theirs. They sign in with their password alone next,
    /// and enrol again (at once, where the team requires it).
    #[graphql(guard = "Need(Permission::ManageAgents)")]
    async fn reset_second_factor(
        &self,
        ctx: &Context<'_>,
        input: ResetSecondFactorInput,
    ) -> Result<SecondFactorRemovedPayload> {
        let by = signed_in_agent(ctx)?;
        let agent = AgentId::from_uuid(uuid("Agent", &input.agent_id)?);
        let api = ctx.data_unchecked::<Api>();
        match api
            .commands
            .state::<Agent>(StreamId::Agent(agent))
            .await
            .map_err(|e| internal("cannot read the agent", e))?
        {
            Agent::Invited(state) if state.active => {}
            Agent::Invited(_) => {
                return Err(error::error(Code::Conflict, "this agent is deactivated"));
            }
            Agent::NotInvited => return Err(error::error(Code::NotFound, "no such agent")),
        }
        let removed = api
            .auth
            .reset_second_factor(agent, by)
            .await
            .map_err(|error| error.extend())?;
        Ok(SecondFactorRemovedPayload {
            agent_id: ID(agent.to_string()),
            removed,
        })
    }

    /// Sets who must sign in with a second factor (admins). An agent it covers who has none
    /// gets a restricted sign-in that can only enrol one, from their next sign-in or token
    /// refresh on.
    #[graphql(guard = "Need(Permission::ManageSettings)")]
    async fn set_two_factor_policy(
        &self,
        ctx: &Context<'_>,
        input: SetTwoFactorPolicyInput,
    ) -> Result<TwoFactorPolicyPayload> {
        let command = SettingsCommand::SetTwoFactorPolicy {
            policy: input.policy.into(),
            by: signed_in_agent(ctx)?,
            at: Utc::now(),
        };
        let api = ctx.data_unchecked::<Api>();
        let command_ctx = context(ctx, "setTwoFactorPolicy", None)?;
        timed(
            "settings",
            api.commands
                .execute::<Settings>(StreamId::Settings, &command, &command_ctx),
        )
        .await
        .map_err(error::command)?;
        Ok(TwoFactorPolicyPayload {
            policy: input.policy,
        })
    }
}

/// The second-factor queries.
#[derive(Debug, Default)]
pub struct SecondFactorQuery;

#[Object]
impl SecondFactorQuery {
    /// Who must sign in with a second factor, as of the log.
    #[graphql(guard = "Need(Permission::ReadDirectory)")]
    async fn two_factor_policy(&self, ctx: &Context<'_>) -> Result<TwoFactorPolicyValue> {
        let api = ctx.data_unchecked::<Api>();
        let settings = api
            .commands
            .state::<Settings>(StreamId::Settings)
            .await
            .map_err(|e| internal("cannot read the settings", e))?;
        Ok(settings.two_factor.into())
    }
}
