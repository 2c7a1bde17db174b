//! Sign-in, token rotation, sign-out and password changes, and turning a bearer credential
//! into a [`Caller`].

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use app::commands::{CommandContext, CommandError, CommandService};
use chrono::{DateTime, Utc};
use domain::agent::{Agent, AgentCommand, Role};
use domain::{AgentId, StreamId};
use eventlog::postgres::PostgresLog;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sqlx::PgPool;
use uuid::Uuid;

use super::caller::{Authentication, Caller, Scope};
use super::jwt::Keys;
use super::password::{self, WeakPassword};
use super::sessions::{SessionCache, TokenState};
use super::{store, tokens};

/// The shortest access-token lifetime the production setting allows; anything shorter is for
/// tests of token expiry (and logged as such).
pub const MIN_PRODUCTION_ACCESS_TTL: Duration = Duration::from_secs(30);

/// How authentication behaves. Every field has a safe default.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// How long an access token lives (tokens are still accepted for five seconds of clock
    /// skew after they expire). Below [`MIN_PRODUCTION_ACCESS_TTL`] only for tests.
    pub access_ttl: Duration,
    /// How long a refresh token lives (each use replaces it with a new one).
    pub refresh_ttl: Duration,
    /// Sign-in attempts allowed per client IP per minute.
    pub logins_per_ip_per_minute: u32,
    /// Sign-in attempts allowed per account per minute.
    pub logins_per_account_per_minute: u32,
    /// How long an access token's session state (epoch, forced password change, whether its
    /// sign-in is still open) read from the database is trusted before it is read again. This
    /// process forgets it at once when it ends the agent's sessions or that sign-in itself; another instance's (or the CLI's) password change or
    /// sign-out everywhere ends sessions here within this bound. (Role, categories and
    /// deactivation are not remembered: they are read from the log on every request.) Zero
    /// reads the database on every request.
    pub session_check_ttl: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            logins_per_ip_per_minute: 20,
            logins_per_account_per_minute: 5,
            session_check_ttl: Duration::from_secs(1),
        }
    }
}

/// Why an authentication step failed. Messages are safe to show the caller.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong credentials, or a token that is unknown, expired or revoked.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// Too many attempts; try again after this many seconds.
    #[error("too many sign-in attempts; try again in {0} s")]
    RateLimited(u64),
    /// A new password or an input is unacceptable.
    #[error("{0}")]
    Invalid(String),
    /// The email belongs to another agent.
    #[error("another agent already uses this email")]
    EmailTaken,
    /// The database could not be reached: nothing was checked or changed (a credential is
    /// neither accepted nor refused). The same request may pass later.
    #[error("the database cannot be reached right now; try again later")]
    Unavailable,
    /// The database or the log failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// A failure of the database or the log: [`AuthError::Unavailable`] when it could not be
    /// reached, else [`AuthError::Internal`].
    fn failed<E: std::error::Error + 'static>(error: E) -> AuthError {
        if eventlog::is_unavailable(&error) {
            tracing::warn!(%error, "authentication: the database is unavailable");
            return AuthError::Unavailable;
        }
        AuthError::Internal(error.to_string())
    }
}

impl From<sqlx::Error> for AuthError {
    fn from(error: sqlx::Error) -> Self {
        if eventlog::is_unavailable(&error) {
            tracing::warn!(%error, "authentication: the database is unavailable");
            return AuthError::Unavailable;
        }
        tracing::error!(%error, "authentication query failed");
        AuthError::Internal("the database failed".to_owned())
    }
}

impl From<WeakPassword> for AuthError {
    fn from(error: WeakPassword) -> Self {
        AuthError::Invalid(error.to_string())
    }
}

/// A signed-in session: what `login`, `refreshToken` and `changePassword` hand back.
#[derive(Debug, Clone)]
pub struct Session {
    /// The agent.
    pub agent_id: AgentId,
    /// Their role.
    pub role: Role,
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// When it expires.
    pub access_expires_at: DateTime<Utc>,
    /// The single-use token that buys the next session.
    pub refresh_token: String,
    /// When that expires.
    pub refresh_expires_at: DateTime<Utc>,
    /// True until the agent sets their own password: only `changePassword`, `me` and `logout`
    /// work meanwhile.
    pub must_change_password: bool,
}

/// A newly created agent and, when none was given, the one-time password to hand over.
#[derive(Debug, Clone)]
pub struct CreatedAgent {
    /// The new agent.
    pub agent_id: AgentId,
    /// The generated password (shown once), `None` when the caller chose one.
    pub one_time_password: Option<String>,
    /// The log position of the invitation.
    pub position: Option<eventlog::Position>,
}

/// Authentication: keys, credentials, rate limits. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuthService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    commands: CommandService<PostgresLog>,
    keys: Keys,
    config: AuthConfig,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<String>,
    sessions: SessionCache,
    /// Counts the credentials this process ended (sessions, API tokens), so that open
    /// sockets check theirs at once rather than at their next periodic check.
    ended: tokio::sync::watch::Sender<u64>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

fn ttl(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl AuthService {
    /// The service writing through `commands`, over its log's database. Signs with `secret`
    /// when given (at least 32 bytes), otherwise with a key generated on first start and kept
    /// in the database, so every instance and every restart share it.
    ///
    /// # Errors
    /// When the secret is too short or the database fails.
    pub async fn new(
        commands: CommandService<PostgresLog>,
        secret: Option<&[u8]>,
        config: AuthConfig,
    ) -> Result<Self, AuthError> {
        let pool = commands.log().pool().clone();
        let secret = match secret {
            Some(secret) if secret.len() < 32 => {
                return Err(AuthError::Invalid(
                    "LEDGERDESK_JWT_SECRET must have at least 32 bytes".to_owned(),
                ));
            }
            Some(secret) => secret.to_vec(),
            None => {
                let fresh = hex::decode(tokens::random_secret()).unwrap_or_default();
                store::signing_key(&pool, &fresh).await?
            }
        };
        if config.access_ttl < MIN_PRODUCTION_ACCESS_TTL {
            tracing::warn!(
                seconds = config.access_ttl.as_secs_f64(),
                "access tokens live less than {} seconds: a setting for testing token expiry, \
                 not for production",
                MIN_PRODUCTION_ACCESS_TTL.as_secs()
            );
        }
        Ok(AuthService {
            inner: Arc::new(Inner {
                per_ip: DefaultKeyedRateLimiter::keyed(per_minute(config.logins_per_ip_per_minute)),
                per_account: DefaultKeyedRateLimiter::keyed(per_minute(
                    config.logins_per_account_per_minute,
                )),
                keys: Keys::from_secret(&secret),
                sessions: SessionCache::new(config.session_check_ttl),
                ended: tokio::sync::watch::Sender::new(0),
                commands,
                pool,
                config,
            }),
        })
    }

    /// Tells open sockets that a credential ended (call after the write committed): each
    /// checks its own again now.
    pub fn credentials_ended(&self) {
        self.inner.ended.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes each time this process ends a credential (see
    /// [`AuthService::credentials_ended`]).
    pub fn watch_ended_credentials(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.ended.subscribe()
    }

    /// The signing keys (tests forge tokens with them).
    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// Who a bearer credential (the text after `Bearer `) names.
    pub async fn authenticate(&self, bearer: Option<&str>) -> Authentication {
        let Some(token) = bearer.map(str::trim).filter(|token| !token.is_empty()) else {
            return Authentication::Anonymous;
        };
        if token.len() > 4096 {
            return Authentication::Refused("the credential is too long");
        }
        let result = if token.starts_with(tokens::API_TOKEN_PREFIX) {
            self.api_token(token).await
        } else {
            self.access_token(token).await
        };
        match result {
            Ok(caller) => Authentication::Authenticated(caller),
            Err(AuthError::Unauthenticated(reason)) => Authentication::Refused(reason),
            // A check that could not run refused nothing: the client keeps its credential
            // and tries again later.
            Err(AuthError::Unavailable) => Authentication::Unavailable,
            Err(_) => Authentication::Refused("the credential could not be checked"),
        }
    }

    async fn access_token(&self, token: &str) -> Result<Caller, AuthError> {
        let claims = self
            .inner
            .keys
            .verify(token)
            .map_err(AuthError::Unauthenticated)?;
        let must_change_password = match self.session_state(claims.sub, claims.sid).await? {
            (Some((epoch, must_change_password)), true) if epoch == claims.ver => {
                must_change_password
            }
            (Some(_), _) => {
                return Err(AuthError::Unauthenticated(
                    "the session has ended; sign in again",
                ));
            }
            (None, _) => return Err(AuthError::Unauthenticated("unknown agent")),
        };
        let id = AgentId::from_uuid(claims.sub);
        // Role, categories and deactivation as of the log, read for every request: a change
        // applies to the first request that starts after it was written, whatever the token
        // says and however far the read models lag.
        let state = self.current_agent(id).await?;
        Ok(Caller::Agent {
            id,
            role: state.role,
            categories: state.categories.iter().map(|c| c.as_uuid()).collect(),
            must_change_password,
        })
    }

    /// The agent's state as of the log; refused when the agent is unknown or deactivated.
    async fn current_agent(&self, agent: AgentId) -> Result<domain::agent::AgentState, AuthError> {
        match self
            .inner
            .commands
            .state::<Agent>(StreamId::Agent(agent))
            .await
        {
            Ok(Agent::Invited(state)) if state.active => Ok(state),
            Ok(Agent::Invited(_)) => Err(AuthError::Unauthenticated("this account is deactivated")),
            Ok(Agent::NotInvited) => Err(AuthError::Unauthenticated("unknown agent")),
            Err(error) => Err(AuthError::failed(error)),
        }
    }

    /// The agent's session epoch and forced-change flag, and whether the sign-in `sign_in` is
    /// still open, from the session memory when it is fresh (see
    /// [`AuthConfig::session_check_ttl`]), else from the database.
    async fn session_state(&self, agent: Uuid, sign_in: Uuid) -> Result<TokenState, AuthError> {
        let sessions = &self.inner.sessions;
        match sessions.get(agent, sign_in) {
            Ok(known) => Ok(known),
            Err(lookup) => {
                let state = store::session_state(&self.inner.pool, agent, sign_in).await?;
                sessions.remember(agent, sign_in, lookup, state);
                Ok(state)
            }
        }
    }

    /// Ends one sign-in in this process's memory, after the write that revoked it (whether it
    /// committed or not: it may have committed before an error came back).
    fn sign_in_ended(&self, sign_in: Uuid) {
        self.inner.sessions.forget_sign_in(sign_in);
        self.credentials_ended();
    }

    /// Ends every access token of `agent` in the database, then in this process's memory.
    async fn end_sessions(&self, agent: AgentId) -> Result<(), AuthError> {
        let ended = store::end_all_sessions(&self.inner.pool, agent.as_uuid()).await;
        // Forgotten even on an error: the write may have committed before the error came back.
        self.inner.sessions.forget(agent.as_uuid());
        self.credentials_ended();
        Ok(ended?)
    }

    async fn api_token(&self, token: &str) -> Result<Caller, AuthError> {
        let row = store::api_token(&self.inner.pool, &tokens::digest(token))
            .await?
            .ok_or(AuthError::Unauthenticated("unknown or revoked API token"))?;
        if row.stale {
            store::touch_api_token(&self.inner.pool, row.id).await?;
        }
        Ok(Caller::Integrator {
            token_id: row.id,
            scopes: row
                .scopes
                .iter()
                .filter_map(|s| s.parse::<Scope>().ok())
                .collect(),
            created_by: AgentId::from_uuid(row.created_by),
        })
    }

    /// Signs an agent in with email and password.
    ///
    /// # Errors
    /// [`AuthError::RateLimited`] past the per-IP or per-account limit,
    /// [`AuthError::Unauthenticated`] for a wrong email or password or a deactivated agent.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<Session, AuthError> {
        let email = email.trim().to_lowercase();
        if email.len() > 320 || password.len() > 4 * password::MAX_PASSWORD_CHARS {
            return Err(AuthError::Unauthenticated("wrong email or password"));
        }
        if let Some(ip) = ip {
            self.check_limit(self.inner.per_ip.check_key(&ip))?;
        }
        self.check_limit(self.inner.per_account.check_key(&email))?;
        let credentials = store::credentials_by_email(&self.inner.pool, &email).await?;
        let stored = credentials.as_ref().map_or_else(
            || password::decoy_hash().to_owned(),
            |c| c.password_hash.clone(),
        );
        let password = password.to_owned();
        let matches = tokio::task::spawn_blocking(move || password::verify(&password, &stored))
            .await
            .unwrap_or(false);
        let credentials = match credentials {
            Some(credentials) if matches => credentials,
            _ => return Err(AuthError::Unauthenticated("wrong email or password")),
        };
        let agent = AgentId::from_uuid(credentials.agent_id);
        let role = self.active_role(agent).await?;
        self.start_session(agent, role, Uuid::now_v7(), &credentials)
            .await
    }

    fn check_limit(
        &self,
        result: Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
    ) -> Result<(), AuthError> {
        result.map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AuthError::RateLimited(wait.as_secs().max(1))
        })
    }

    /// The agent's role, read from the log; refused when the agent is unknown or deactivated.
    async fn active_role(&self, agent: AgentId) -> Result<Role, AuthError> {
        match self
            .inner
            .commands
            .state::<Agent>(StreamId::Agent(agent))
            .await
        {
            Ok(Agent::Invited(state)) if state.active => Ok(state.role),
            Ok(_) => Err(AuthError::Unauthenticated("this account is deactivated")),
            Err(error) => Err(AuthError::failed(error)),
        }
    }

    async fn start_session(
        &self,
        agent: AgentId,
        role: Role,
        family: Uuid,
        credentials: &store::Credentials,
    ) -> Result<Session, AuthError> {
        let mut conn = self.inner.pool.acquire().await?;
        self.issue(&mut conn, agent, role, family, credentials)
            .await
    }

    async fn issue(
        &self,
        conn: &mut sqlx::PgConnection,
        agent: AgentId,
        role: Role,
        family: Uuid,
        credentials: &store::Credentials,
    ) -> Result<Session, AuthError> {
        let now = Utc::now();
        let access_expires_at = now + ttl(self.inner.config.access_ttl);
        let refresh_expires_at = now + ttl(self.inner.config.refresh_ttl);
        let refresh_token = tokens::random_secret();
        store::insert_refresh_token(
            conn,
            family,
            agent.as_uuid(),
            &tokens::digest(&refresh_token),
            refresh_expires_at,
        )
        .await?;
        let access_token = self.inner.keys.issue(
            agent,
            role,
            family,
            credentials.session_epoch,
            now,
            access_expires_at,
        );
        Ok(Session {
            agent_id: agent,
            role,
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
            must_change_password: credentials.must_change_password,
        })
    }

    /// Trades a refresh token for a new session. A token works once: presenting one that was
    /// already used revokes every token of its family (someone copied it).
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for an unknown, expired, revoked or reused token.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, AuthError> {
        let mut tx = self.inner.pool.begin().await?;
        let row = store::lock_refresh_token(&mut tx, &tokens::digest(refresh_token.trim()))
            .await?
            .ok_or(AuthError::Unauthenticated("unknown refresh token"))?;
        if row.revoked_at.is_some() {
            return Err(AuthError::Unauthenticated("the refresh token was revoked"));
        }
        if row.used_at.is_some() {
            let revoked = revoke_family(tx, row.family_id).await;
            self.sign_in_ended(row.family_id);
            revoked?;
            tracing::warn!(agent = %row.agent_id, family = %row.family_id,
                "a rotated refresh token was presented again; its family is revoked");
            return Err(AuthError::Unauthenticated(
                "the refresh token was already used; every session of this sign-in is revoked",
            ));
        }
        if row.expires_at <= Utc::now() {
            return Err(AuthError::Unauthenticated("the refresh token has expired"));
        }
        let agent = AgentId::from_uuid(row.agent_id);
        let role = match self.active_role(agent).await {
            Ok(role) => role,
            // Deactivated: this sign-in ends. A role that could not be read (the database
            // away) ends nothing: the client keeps its refresh token and tries again.
            Err(error @ AuthError::Unauthenticated(_)) => {
                let revoked = revoke_family(tx, row.family_id).await;
                self.sign_in_ended(row.family_id);
                revoked?;
                return Err(error);
            }
            Err(error) => return Err(error),
        };
        let credentials = store::credentials_by_agent(&self.inner.pool, row.agent_id)
            .await?
            .ok_or(AuthError::Unauthenticated("unknown agent"))?;
        store::mark_refresh_used(&mut tx, row.id).await?;
        let session = self
            .issue(&mut tx, agent, role, row.family_id, &credentials)
            .await?;
        tx.commit().await?;
        Ok(session)
    }

    /// Signs out: revokes the refresh token's family (this sign-in), or with `everywhere`
    /// every session of the agent, access tokens included.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn logout(
        &self,
        agent: AgentId,
        refresh_token: Option<&str>,
        everywhere: bool,
    ) -> Result<(), AuthError> {
        if everywhere {
            self.end_sessions(agent).await?;
            return Ok(());
        }
        if let Some(token) = refresh_token {
            let mut tx = self.inner.pool.begin().await?;
            if let Some(row) =
                store::lock_refresh_token(&mut tx, &tokens::digest(token.trim())).await?
                && row.agent_id == agent.as_uuid()
            {
                let revoked = revoke_family(tx, row.family_id).await;
                self.sign_in_ended(row.family_id);
                revoked?;
            } else {
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Changes the agent's own password after checking the current one. Every other session
    /// ends; a new one is returned. The log records that the password changed (never the
    /// password).
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for a wrong current password, [`AuthError::Invalid`] for
    /// a weak new one.
    pub async fn change_password(
        &self,
        agent: AgentId,
        current: &str,
        new: &str,
    ) -> Result<Session, AuthError> {
        password::check_strength(new)?;
        if current == new {
            return Err(AuthError::Invalid(
                "the new password must differ from the current one".to_owned(),
            ));
        }
        let credentials = store::credentials_by_agent(&self.inner.pool, agent.as_uuid())
            .await?
            .ok_or(AuthError::Unauthenticated("unknown agent"))?;
        let (current, stored) = (current.to_owned(), credentials.password_hash.clone());
        let new_owned = new.to_owned();
        let (matches, hash) = tokio::task::spawn_blocking(move || {
            (
                password::verify(&current, &stored),
                password::hash(&new_owned),
            )
        })
        .await
        .map_err(|error| AuthError::Internal(error.to_string()))?;
        if !matches {
            return Err(AuthError::Unauthenticated("the current password is wrong"));
        }
        let role = self.active_role(agent).await?;
        self.end_sessions(agent).await?;
        let epoch = store::set_password(&self.inner.pool, agent.as_uuid(), &hash, false).await;
        self.inner.sessions.forget(agent.as_uuid());
        let epoch = epoch?.ok_or(AuthError::Unauthenticated("unknown agent"))?;
        self.record_password_change(agent, agent).await?;
        let credentials = store::Credentials {
            session_epoch: epoch,
            must_change_password: false,
            ..credentials
        };
        self.start_session(agent, role, Uuid::now_v7(), &credentials)
            .await
    }

    async fn record_password_change(&self, agent: AgentId, by: AgentId) -> Result<(), AuthError> {
        let ctx = CommandContext::new(eventlog::Actor::new(
            eventlog::ActorKind::Agent,
            by.to_string(),
        ));
        self.inner
            .commands
            .execute::<Agent>(
                StreamId::Agent(agent),
                &AgentCommand::RecordPasswordChange { by, at: Utc::now() },
                &ctx,
            )
            .await
            .map_err(AuthError::failed)?;
        Ok(())
    }

    /// Invites a new agent with credentials: reserves the email, then records the invitation
    /// in the log. Without `password` a one-time password is generated, and the agent must
    /// change it at first sign-in.
    ///
    /// # Errors
    /// [`AuthError::EmailTaken`], [`AuthError::Invalid`] (bad email, name or password), or
    /// an internal error.
    pub async fn create_agent(
        &self,
        invite: NewAgent,
        ctx: &CommandContext,
    ) -> Result<CreatedAgent, AuthError> {
        let NewAgent {
            email,
            name,
            role,
            password,
            by,
        } = invite;
        let email = email.trim().to_lowercase();
        let (password, one_time) = match password {
            Some(password) => {
                password::check_strength(&password)?;
                (password, None)
            }
            None => {
                let generated = tokens::random_secret()[..24].to_owned();
                (generated.clone(), Some(generated))
            }
        };
        let agent_id = AgentId::from_uuid(Uuid::now_v7());
        let hash = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || password::hash(&password))
                .await
                .map_err(|error| AuthError::Internal(error.to_string()))?
        };
        if !store::insert_credentials(
            &self.inner.pool,
            agent_id.as_uuid(),
            &email,
            &hash,
            one_time.is_some(),
        )
        .await?
        {
            return Err(AuthError::EmailTaken);
        }
        let command = AgentCommand::Invite {
            agent_id,
            email,
            name,
            role,
            by,
            at: Utc::now(),
        };
        match self
            .inner
            .commands
            .execute::<Agent>(StreamId::Agent(agent_id), &command, ctx)
            .await
        {
            Ok(executed) => Ok(CreatedAgent {
                agent_id,
                one_time_password: one_time,
                position: executed.position,
            }),
            Err(error) => {
                let deleted = store::delete_credentials(&self.inner.pool, agent_id.as_uuid()).await;
                self.inner.sessions.forget(agent_id.as_uuid());
                deleted?;
                Err(match error {
                    CommandError::Rejected(rejection) => AuthError::Invalid(rejection.to_string()),
                    other => AuthError::failed(other),
                })
            }
        }
    }

    /// Ends every session of `agent` (after deactivation or a role change).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn end_all_sessions(&self, agent: AgentId) -> Result<(), AuthError> {
        self.end_sessions(agent).await
    }
}

/// Revokes every refresh token of a sign-in and commits.
async fn revoke_family(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    family: Uuid,
) -> Result<(), sqlx::Error> {
    store::revoke_family(&mut tx, family).await?;
    tx.commit().await
}

/// What inviting an agent needs.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Login email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// The password; `None` generates a one-time password.
    pub password: Option<String>,
    /// Who invites (`None`: the bootstrap admin).
    pub by: Option<AgentId>,
}
