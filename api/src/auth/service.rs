//! Sign-in, token rotation, sign-out and password changes, and turning a bearer credential
//! into a [`Caller`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use app::commands::{CommandContext, CommandError, CommandService};
use chrono::{DateTime, Utc};
use domain::agent::{Agent, AgentCommand, Role};
use domain::audit::{AuditEvent, SignInRefused, SignedIn, SignedOut};
use domain::settings::{Settings, TwoFactorPolicy};
use domain::{AgentId, AuditStream, StreamId};
use eventlog::postgres::PostgresLog;
use sqlx::PgPool;
use uuid::Uuid;

use super::caller::{Authentication, Caller, Principal, Scope};
use super::jwt::{AccessClaims, Keys};
use super::password::{self, WeakPassword};
use super::sessions::{SessionCache, TokenState};
use super::throttle::Backoff;
use super::{store, tokens};

mod second_factor;

pub use second_factor::{Challenge, Enrolment, LoginOutcome, Proof};

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
    /// Failed sign-ins a minute one client address may make (whatever the accounts) before
    /// each further failure doubles its delay.
    pub logins_per_ip_per_minute: u32,
    /// Failed sign-ins a minute one account may take from one client address before each
    /// further failure doubles that pair's delay.
    pub logins_per_account_per_minute: u32,
    /// Failed sign-ins a minute one account may take from all addresses together before each
    /// further failure doubles its delay. A device that signed in to the account before (its
    /// device cookie or token) is not held by this limit, so nobody can lock the owner out.
    pub logins_per_account_any_address_per_minute: u32,
    /// The longest delay failed sign-ins (and wrong second-factor codes) grow to.
    pub login_max_delay: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client's address (the throttles'
    /// key). Requests from anywhere else are keyed by their peer address, whatever they send.
    pub trusted_proxies: Vec<ipnet::IpNet>,
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
            logins_per_account_any_address_per_minute: 20,
            login_max_delay: Duration::from_secs(15 * 60),
            trusted_proxies: Vec::new(),
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
    /// The request is not allowed in this state (e.g. enrolling a second factor twice).
    #[error("{0}")]
    Conflict(&'static str),
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
    /// True on a restricted sign-in: the team requires a second factor of this role and the
    /// agent has none, so they may only enrol one.
    pub must_enrol_second_factor: bool,
    /// After a full sign-in: the device token that lets this device past the per-account
    /// limit next time (also set as a cookie by the GraphQL layer).
    pub device_token: Option<String>,
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
    limits: Limits,
    sessions: SessionCache,
    /// Counts the credentials this process ended (sessions, API tokens), so that open
    /// sockets check theirs at once rather than at their next periodic check.
    ended: tokio::sync::watch::Sender<u64>,
    /// Refused sign-ins counted for the audit trail.
    refusals: super::trail::Refusals,
}

/// The throttles of sign-in (see [`super::throttle`]).
struct Limits {
    /// Failures by client address (an IPv6 address by its /64 network).
    per_ip: Backoff<Option<IpAddr>>,
    /// Failures by account and address.
    per_pair: Backoff<(u64, Option<IpAddr>)>,
    /// Failures by account, from any address; a known device passes.
    per_account: Backoff<u64>,
    /// Keys accounts (the email as typed, trimmed and lower-cased) by a 64-bit hash under a
    /// key drawn at start, so that a flood of made-up emails costs a few bytes each to
    /// remember, not the emails.
    accounts: std::collections::hash_map::RandomState,
    /// Wrong second-factor codes by agent, over all their challenges.
    codes: Backoff<Uuid>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Limits")
    }
}

/// Most keys each throttle remembers.
const THROTTLE_KEYS: usize = 100_000;
/// Wrong second-factor codes a minute an agent may enter before delays grow.
const CODES_PER_MINUTE: u32 = 5;
/// How long a device token is honoured after its sign-in.
const DEVICE_TOKEN_DAYS: i64 = 180;

impl Limits {
    fn new(config: &AuthConfig) -> Self {
        let max = config.login_max_delay;
        Limits {
            per_ip: Backoff::new(config.logins_per_ip_per_minute, max, THROTTLE_KEYS),
            per_pair: Backoff::new(config.logins_per_account_per_minute, max, THROTTLE_KEYS),
            per_account: Backoff::new(
                config.logins_per_account_any_address_per_minute,
                max,
                THROTTLE_KEYS,
            ),
            codes: Backoff::new(CODES_PER_MINUTE, max, THROTTLE_KEYS),
            accounts: std::collections::hash_map::RandomState::new(),
        }
    }

    fn account(&self, email: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.accounts, email)
    }
}

/// The address a throttle counts: an IPv6 address stands for its /64 network, which one
/// client usually holds whole (an IPv4-mapped address is the IPv4 address).
fn throttled_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            )),
        },
    }
}

/// `RATE_LIMITED` for a throttle's wait.
fn limited(result: Result<(), Duration>) -> Result<(), AuthError> {
    result.map_err(|wait| AuthError::RateLimited(wait.as_secs_f64().ceil().max(1.0) as u64))
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
                limits: Limits::new(&config),
                keys: Keys::from_secret(&secret),
                sessions: SessionCache::new(config.session_check_ttl),
                ended: tokio::sync::watch::Sender::new(0),
                refusals: super::trail::Refusals::new(),
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

    /// How it was configured.
    pub fn config(&self) -> &AuthConfig {
        &self.inner.config
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
        let must_enrol_second_factor = claims.enrol;
        // Role, categories and deactivation as of the log, read for every request: a change
        // applies to the first request that starts after it was written, whatever the token
        // says and however far the read models lag.
        let state = self.current_agent(id).await?;
        Ok(Caller::Agent {
            id,
            role: state.role,
            categories: state.categories.iter().map(|c| c.as_uuid()).collect(),
            must_change_password,
            must_enrol_second_factor,
        })
    }

    /// The caller a signed media URL names, as of now: the agent's role and categories read
    /// from the log (refused once deactivated), or the API token while it is not revoked.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for a deactivated agent or a revoked token.
    pub async fn caller_now(&self, principal: &Principal) -> Result<Caller, AuthError> {
        match principal {
            Principal::Agent(id) => {
                let state = self.current_agent(*id).await?;
                Ok(Caller::Agent {
                    id: *id,
                    role: state.role,
                    categories: state.categories.iter().map(|c| c.as_uuid()).collect(),
                    must_change_password: false,
                    must_enrol_second_factor: false,
                })
            }
            Principal::Token(id) => {
                let row = store::api_token_by_id(&self.inner.pool, *id)
                    .await?
                    .ok_or(AuthError::Unauthenticated("unknown or revoked API token"))?;
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
        }
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

    /// Signs an agent in with email and password, from client address `ip`, on a device that
    /// may hold a device token from an earlier sign-in to this account.
    ///
    /// Failures are throttled per address, per account and address, and per account (see
    /// [`AuthConfig`]); a valid device token of this account passes the per-account throttle,
    /// and successes count for nothing. An agent with a second factor gets a challenge to
    /// answer with [`AuthService::login_second_factor`] instead of a session.
    ///
    /// # Errors
    /// [`AuthError::RateLimited`] while a throttle holds, [`AuthError::Unauthenticated`] for a
    /// wrong email or password or a deactivated agent.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
        device_token: Option<&str>,
    ) -> Result<LoginOutcome, AuthError> {
        let outcome = self.check_login(email, password, ip, device_token).await;
        match &outcome {
            Ok(LoginOutcome::SignedIn(session)) => {
                self.record_sign_in(session.agent_id, ip, false).await?;
            }
            Ok(LoginOutcome::SecondFactorRequired(_)) => {}
            Err(AuthError::Unauthenticated(why)) => {
                let reason = if *why == "this account is deactivated" {
                    "deactivated"
                } else {
                    "wrong_credentials"
                };
                self.record_refusal(email, ip, reason).await;
            }
            Err(AuthError::RateLimited(_)) => {
                self.record_refusal(email, ip, "rate_limited").await;
            }
            Err(_) => {}
        }
        outcome
    }

    /// Records in the audit trail that `agent` signed in from `ip`. A sign-in that cannot be
    /// recorded does not happen: the error is returned.
    ///
    /// # Errors
    /// When the log fails.
    pub async fn record_sign_in(
        &self,
        agent: AgentId,
        ip: Option<IpAddr>,
        second_factor: bool,
    ) -> Result<(), AuthError> {
        let event = AuditEvent::SignedIn(SignedIn {
            agent,
            address: ip.map(|ip| ip.to_string()),
            second_factor,
            at: Utc::now(),
        });
        app::audit_trail::record(
            self.inner.commands.log(),
            AuditStream::Agent(agent),
            &event,
            eventlog::Actor::new(eventlog::ActorKind::Agent, agent.to_string()),
        )
        .await
        .map(|_| ())
        .map_err(AuthError::failed)
    }

    /// Counts a refused sign-in for the audit trail, and records it when it is the first of
    /// its account and address in the window (see `trail`). A refusal that cannot be recorded
    /// is refused all the same (and logged).
    async fn record_refusal(&self, email: &str, ip: Option<IpAddr>, reason: &str) {
        let email = email.trim().to_lowercase();
        if email.len() > 320 {
            return;
        }
        let account = self.inner.limits.account(&email);
        let Some((attempts, since)) =
            self.inner
                .refusals
                .refused((account, ip), std::time::Instant::now(), Utc::now())
        else {
            return;
        };
        let agent = match store::credentials_by_email(&self.inner.pool, &email).await {
            Ok(credentials) => credentials.map(|c| AgentId::from_uuid(c.agent_id)),
            Err(error) => {
                tracing::warn!(%error, "cannot record a refused sign-in");
                return;
            }
        };
        let event = AuditEvent::SignInRefused(SignInRefused {
            agent,
            address: ip.map(|ip| ip.to_string()),
            reason: reason.to_owned(),
            attempts,
            since,
            at: Utc::now(),
        });
        let stream = agent.map_or(AuditStream::Anonymous, AuditStream::Agent);
        if let Err(error) = app::audit_trail::record(
            self.inner.commands.log(),
            stream,
            &event,
            eventlog::Actor::system("sign-in"),
        )
        .await
        {
            tracing::warn!(%error, "cannot record a refused sign-in");
        }
    }

    /// Records in the audit trail that `agent` signed out.
    async fn record_sign_out(&self, agent: AgentId, everywhere: bool) -> Result<(), AuthError> {
        let event = AuditEvent::SignedOut(SignedOut {
            agent,
            everywhere,
            at: Utc::now(),
        });
        app::audit_trail::record(
            self.inner.commands.log(),
            AuditStream::Agent(agent),
            &event,
            eventlog::Actor::new(eventlog::ActorKind::Agent, agent.to_string()),
        )
        .await
        .map(|_| ())
        .map_err(AuthError::failed)
    }

    /// [`AuthService::login`] without the audit trail.
    async fn check_login(
        &self,
        email: &str,
        password: &str,
        ip: Option<IpAddr>,
        device_token: Option<&str>,
    ) -> Result<LoginOutcome, AuthError> {
        let email = email.trim().to_lowercase();
        if email.len() > 320 || password.len() > 4 * password::MAX_PASSWORD_CHARS {
            return Err(AuthError::Unauthenticated("wrong email or password"));
        }
        let limits = &self.inner.limits;
        let ip = ip.map(throttled_address);
        let account = limits.account(&email);
        let pair = (account, ip);
        let now = std::time::Instant::now();
        limited(limits.per_ip.check(&ip, now))?;
        limited(limits.per_pair.check(&pair, now))?;
        let credentials = store::credentials_by_email(&self.inner.pool, &email).await?;
        let device = match (&credentials, device_token) {
            (Some(credentials), Some(token)) if token.len() <= 2048 => self
                .inner
                .keys
                .verify_device(token.trim())
                .filter(|claims| claims.sub == credentials.agent_id),
            _ => None,
        };
        if device.is_none() {
            limited(limits.per_account.check(&account, now))?;
        }
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
            _ => {
                let now = std::time::Instant::now();
                limits.per_ip.failed(&ip, now);
                limits.per_pair.failed(&pair, now);
                limits.per_account.failed(&account, now);
                return Err(AuthError::Unauthenticated("wrong email or password"));
            }
        };
        limits.per_pair.succeeded(&pair);
        let agent = AgentId::from_uuid(credentials.agent_id);
        let role = self.active_role(agent).await?;
        if store::has_second_factor(&self.inner.pool, agent.as_uuid()).await? {
            let challenge = self.open_challenge(agent).await?;
            return Ok(LoginOutcome::SecondFactorRequired(challenge));
        }
        let restricted = self.policy().await?.requires(role);
        let mut session = self
            .start_session(agent, role, Uuid::now_v7(), &credentials, restricted)
            .await?;
        session.device_token = Some(self.device_token(agent, device.map(|d| d.did)));
        Ok(LoginOutcome::SignedIn(session))
    }

    /// A device token for `agent`, keeping the device's id when it had one.
    fn device_token(&self, agent: AgentId, device: Option<Uuid>) -> String {
        let now = Utc::now();
        self.inner.keys.issue_device(
            agent,
            device.unwrap_or_else(Uuid::now_v7),
            now,
            now + chrono::Duration::days(DEVICE_TOKEN_DAYS),
        )
    }

    /// Who must sign in with a second factor, as of the log.
    async fn policy(&self) -> Result<TwoFactorPolicy, AuthError> {
        self.inner
            .commands
            .state::<Settings>(StreamId::Settings)
            .await
            .map(|settings| settings.two_factor)
            .map_err(|error| AuthError::Internal(error.to_string()))
    }

    /// Whether a sign-in of `agent` in `role` must be restricted to enrolling a second factor.
    async fn must_enrol(&self, agent: AgentId, role: Role) -> Result<bool, AuthError> {
        if !self.policy().await?.requires(role) {
            return Ok(false);
        }
        Ok(!store::has_second_factor(&self.inner.pool, agent.as_uuid()).await?)
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
        restricted: bool,
    ) -> Result<Session, AuthError> {
        let mut conn = self.inner.pool.acquire().await?;
        self.issue(&mut conn, agent, role, family, credentials, restricted)
            .await
    }

    async fn issue(
        &self,
        conn: &mut sqlx::PgConnection,
        agent: AgentId,
        role: Role,
        family: Uuid,
        credentials: &store::Credentials,
        restricted: bool,
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
        let access_token = self.inner.keys.sign(
            &AccessClaims::new(
                agent,
                role,
                family,
                credentials.session_epoch,
                now,
                access_expires_at,
            )
            .restricted(restricted),
        );
        Ok(Session {
            agent_id: agent,
            role,
            access_token,
            access_expires_at,
            refresh_token,
            refresh_expires_at,
            must_change_password: credentials.must_change_password,
            must_enrol_second_factor: restricted,
            device_token: None,
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
        // The team may have started (or stopped) requiring a second factor since.
        let restricted = self.must_enrol(agent, role).await?;
        store::mark_refresh_used(&mut tx, row.id).await?;
        let session = self
            .issue(
                &mut tx,
                agent,
                role,
                row.family_id,
                &credentials,
                restricted,
            )
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
            return self.record_sign_out(agent, true).await;
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
        self.record_sign_out(agent, false).await
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
        let restricted = self.must_enrol(agent, role).await?;
        self.start_session(agent, role, Uuid::now_v7(), &credentials, restricted)
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

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::throttled_address;

    #[test]
    fn an_ipv6_address_is_throttled_by_its_network() {
        let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: std::net::IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(throttled_address(a), throttled_address(b));
        assert_ne!(throttled_address(a), throttled_address(other));
        let mapped: std::net::IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(throttled_address(mapped).to_string(), "192.0.2.7");
        let v4: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(throttled_address(v4), v4);
    }
}
