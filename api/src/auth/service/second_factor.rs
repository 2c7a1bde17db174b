//! Two-factor sign-in: enrolling an authenticator app, answering the challenge `login` hands
//! out, disabling, and an admin's reset after a lost device.
//!
//! The secret and the recovery codes live in their own tables (migration 0020); the agent's
//! stream records only that a second factor was enrolled, disabled or reset and that a
//! recovery code was spent.

use app::commands::CommandContext;
use chrono::{DateTime, Utc};
use domain::agent::{Agent, AgentCommand};
use domain::{AgentId, StreamId};
use uuid::Uuid;

use super::{AuthError, AuthService, Session, limited};
use crate::auth::second_factor as totp;
use crate::auth::{store, tokens};

/// How long the challenge between password and code stays open.
const CHALLENGE_MINUTES: i64 = 5;
/// Wrong codes one challenge takes before it is refused (sign in again for another).
const CHALLENGE_ATTEMPTS: i32 = 5;

/// What `login` ends in.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn(Session),
    /// The password was right; now the second factor (see
    /// [`AuthService::login_second_factor`]).
    SecondFactorRequired(Challenge),
}

/// The single-use token that carries a right password over to the second factor.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// Send it back with the code.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// A pending enrolment: what an authenticator app needs. `Debug` never shows it.
#[derive(Clone)]
pub struct Enrolment {
    /// The shared secret, base32, for typing into the app.
    pub secret: String,
    /// The same as an `otpauth://totp/…` URI, for a QR code.
    pub otpauth_uri: String,
}

impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// What proves the second factor.
#[derive(Debug, Clone, Copy)]
pub enum Proof<'a> {
    /// A code from the authenticator app.
    Code(&'a str),
    /// One of the one-time recovery codes.
    RecoveryCode(&'a str),
}

impl AuthService {
    /// Opens a challenge for `agent`, whose password was just right.
    pub(super) async fn open_challenge(&self, agent: AgentId) -> Result<Challenge, AuthError> {
        let token = tokens::random_secret();
        let expires_at = Utc::now() + chrono::Duration::minutes(CHALLENGE_MINUTES);
        store::insert_challenge(
            &self.inner.pool,
            agent.as_uuid(),
            &tokens::digest(&token),
            expires_at,
        )
        .await?;
        Ok(Challenge { token, expires_at })
    }

    /// Answers a sign-in challenge with a second factor; a session (and a device token) when
    /// it is right. A challenge works once, for minutes, and for a few wrong codes; wrong
    /// codes of an agent are throttled over all their challenges too.
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for an unknown, expired, spent or exhausted challenge
    /// or a wrong or replayed code, [`AuthError::RateLimited`] while the agent's codes are
    /// throttled.
    pub async fn login_second_factor(
        &self,
        challenge: &str,
        proof: Proof<'_>,
        device_token: Option<&str>,
    ) -> Result<Session, AuthError> {
        let mut tx = self.inner.pool.begin().await?;
        let row = store::lock_challenge(&mut tx, &tokens::digest(challenge.trim()))
            .await?
            .filter(|row| row.used_at.is_none() && row.expires_at > Utc::now())
            .ok_or(AuthError::Unauthenticated(
                "the sign-in challenge is unknown, expired or spent; sign in again",
            ))?;
        if row.attempts >= CHALLENGE_ATTEMPTS {
            return Err(AuthError::Unauthenticated(
                "too many wrong codes for this sign-in; sign in again",
            ));
        }
        let agent = AgentId::from_uuid(row.agent_id);
        match self.check_proof(&mut tx, agent, proof).await {
            Ok(()) => {}
            Err(refused @ AuthError::Unauthenticated(_)) => {
                store::challenge_failed(&mut tx, row.id).await?;
                tx.commit().await?;
                return Err(refused);
            }
            Err(other) => return Err(other),
        }
        store::challenge_used(&mut tx, row.id).await?;
        tx.commit().await?;
        if let Proof::RecoveryCode(_) = proof {
            self.record_recovery_code_used(agent).await?;
        }
        let role = self.active_role(agent).await?;
        let credentials = store::credentials_by_agent(&self.inner.pool, agent.as_uuid())
            .await?
            .ok_or(AuthError::Unauthenticated("unknown agent"))?;
        let device = device_token
            .filter(|token| token.len() <= 2048)
            .and_then(|token| self.inner.keys.verify_device(token.trim()))
            .filter(|claims| claims.sub == agent.as_uuid());
        let mut session = self
            .start_session(agent, role, Uuid::now_v7(), &credentials, false)
            .await?;
        session.device_token = Some(self.device_token(agent, device.map(|d| d.did)));
        Ok(session)
    }

    /// Checks a proof of `agent`'s second factor, spending what it uses (the code's time
    /// step, or the recovery code) within `conn`'s transaction.
    async fn check_proof(
        &self,
        conn: &mut sqlx::PgConnection,
        agent: AgentId,
        proof: Proof<'_>,
    ) -> Result<(), AuthError> {
        let codes = &self.inner.limits.codes;
        let key = agent.as_uuid();
        limited(codes.check(&key, std::time::Instant::now()))?;
        let right = match proof {
            Proof::Code(code) => self.spend_code(conn, agent, code).await?,
            Proof::RecoveryCode(code) => self.spend_recovery_code(conn, agent, code).await?,
        };
        match right {
            Ok(()) => {
                codes.succeeded(&key);
                Ok(())
            }
            Err(reason) => {
                if let Some((_, true)) = codes.failed_first(&key, std::time::Instant::now()) {
                    // The audit trail learns that someone is guessing codes, once per series
                    // of delays; the refusal does not wait for (or fail with) the record.
                    let at = Utc::now();
                    let recorded = self
                        .record(
                            agent,
                            agent,
                            AgentCommand::RecordSecondFactorThrottled { at },
                        )
                        .await;
                    if let Err(error) = recorded {
                        tracing::warn!(%agent, %error, "cannot record delayed second-factor codes");
                    }
                }
                Err(AuthError::Unauthenticated(reason))
            }
        }
    }

    /// Accepts a TOTP code of the confirmed second factor once.
    async fn spend_code(
        &self,
        conn: &mut sqlx::PgConnection,
        agent: AgentId,
        code: &str,
    ) -> Result<Result<(), &'static str>, AuthError> {
        let Some(factor) = store::second_factor(&self.inner.pool, agent.as_uuid())
            .await?
            .filter(|factor| factor.confirmed)
        else {
            return Ok(Err("no second factor is enrolled"));
        };
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        let Some(step) = totp::matching_step(&factor.secret, code, now) else {
            return Ok(Err("wrong code"));
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if store::accept_step(conn, agent.as_uuid(), step).await? {
            Ok(Ok(()))
        } else {
            Ok(Err("this code was used already; wait for the next one"))
        }
    }

    /// Spends one of the agent's unused recovery codes.
    async fn spend_recovery_code(
        &self,
        conn: &mut sqlx::PgConnection,
        agent: AgentId,
        code: &str,
    ) -> Result<Result<(), &'static str>, AuthError> {
        let unused = store::unused_recovery_codes(&self.inner.pool, agent.as_uuid()).await?;
        let code = code.to_owned();
        let hashes: Vec<String> = unused.iter().map(|(_, hash)| hash.clone()).collect();
        let found = tokio::task::spawn_blocking(move || totp::find_recovery_code(&code, &hashes))
            .await
            .map_err(|error| AuthError::Internal(error.to_string()))?;
        match found.and_then(|index| unused.get(index)) {
            Some((id, _)) if store::spend_recovery_code(conn, *id).await? => Ok(Ok(())),
            _ => Ok(Err("wrong recovery code")),
        }
    }

    async fn record_recovery_code_used(&self, agent: AgentId) -> Result<(), AuthError> {
        let left = store::recovery_codes_left(&self.inner.pool, agent.as_uuid()).await?;
        self.record(
            agent,
            agent,
            AgentCommand::RecordRecoveryCodeUsed {
                remaining: u32::try_from(left).unwrap_or(0),
                at: Utc::now(),
            },
        )
        .await
    }

    async fn record(
        &self,
        agent: AgentId,
        by: AgentId,
        command: AgentCommand,
    ) -> Result<(), AuthError> {
        let ctx = CommandContext::new(eventlog::Actor::new(
            eventlog::ActorKind::Agent,
            by.to_string(),
        ));
        self.inner
            .commands
            .execute::<Agent>(StreamId::Agent(agent), &command, &ctx)
            .await
            .map_err(|error| AuthError::Internal(error.to_string()))?;
        Ok(())
    }

    /// Starts enrolling an authenticator app for `agent`, who proves it is them with their
    /// current password (a copied access token alone must not tie the account to someone
    /// else's phone). Again, while unconfirmed: a new secret replaces the pending one. Nothing
    /// changes at sign-in until [`AuthService::confirm_second_factor`].
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for a wrong password (wrong passwords here are throttled
    /// with the agent's wrong codes), [`AuthError::Conflict`] when a second factor is enrolled
    /// already.
    pub async fn enrol_second_factor(
        &self,
        agent: AgentId,
        current_password: &str,
    ) -> Result<Enrolment, AuthError> {
        let state = self.current_agent(agent).await?;
        let codes = &self.inner.limits.codes;
        let key = agent.as_uuid();
        limited(codes.check(&key, std::time::Instant::now()))?;
        let credentials = store::credentials_by_agent(&self.inner.pool, key)
            .await?
            .ok_or(AuthError::Unauthenticated("unknown agent"))?;
        let (password, stored) = (current_password.to_owned(), credentials.password_hash);
        let matches =
            tokio::task::spawn_blocking(move || crate::auth::password::verify(&password, &stored))
                .await
                .unwrap_or(false);
        if !matches {
            codes.failed(&key, std::time::Instant::now());
            return Err(AuthError::Unauthenticated("the current password is wrong"));
        }
        let secret = totp::new_secret();
        let uri = totp::otpauth_uri(&secret, &state.personal.email)
            .or_else(|| totp::otpauth_uri(&secret, &agent.to_string()))
            .ok_or_else(|| AuthError::Internal("cannot build an otpauth URI".to_owned()))?;
        if !store::begin_second_factor(&self.inner.pool, agent.as_uuid(), &secret).await? {
            return Err(AuthError::Conflict(
                "a second factor is enrolled already; disable it first to enrol another",
            ));
        }
        Ok(Enrolment {
            secret: totp::secret_base32(&secret),
            otpauth_uri: uri,
        })
    }

    /// Confirms the pending enrolment with a first code from the app: from now on sign-in
    /// asks for a code. Returns the ten recovery codes (shown once; only hashes are kept) and
    /// a new session: every other session of the agent ends, and a restricted sign-in becomes
    /// a full one.
    ///
    /// # Errors
    /// [`AuthError::Conflict`] without a pending enrolment, [`AuthError::Invalid`] for a wrong
    /// code, [`AuthError::RateLimited`] after many wrong codes.
    pub async fn confirm_second_factor(
        &self,
        agent: AgentId,
        code: &str,
    ) -> Result<(Vec<String>, Session), AuthError> {
        let factor = match store::second_factor(&self.inner.pool, agent.as_uuid()).await? {
            Some(factor) if factor.confirmed => {
                return Err(AuthError::Conflict(
                    "the second factor is confirmed already",
                ));
            }
            Some(factor) => factor,
            None => {
                return Err(AuthError::Conflict(
                    "nothing to confirm: start with enrolSecondFactor",
                ));
            }
        };
        let codes = &self.inner.limits.codes;
        let key = agent.as_uuid();
        limited(codes.check(&key, std::time::Instant::now()))?;
        let now = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
        let Some(step) = totp::matching_step(&factor.secret, code, now) else {
            codes.failed(&key, std::time::Instant::now());
            return Err(AuthError::Invalid(
                "wrong code: enter the code the app shows now (is the phone's clock right?)"
                    .to_owned(),
            ));
        };
        codes.succeeded(&key);
        let recovery = totp::new_recovery_codes();
        let hashes = {
            let recovery = recovery.clone();
            tokio::task::spawn_blocking(move || {
                recovery
                    .iter()
                    .map(|code| totp::hash_recovery_code(code))
                    .collect::<Vec<_>>()
            })
            .await
            .map_err(|error| AuthError::Internal(error.to_string()))?
        };
        let step = i64::try_from(step).unwrap_or(i64::MAX);
        if !store::confirm_second_factor(&self.inner.pool, agent.as_uuid(), step, &hashes).await? {
            return Err(AuthError::Conflict(
                "the enrolment changed meanwhile: start again with enrolSecondFactor",
            ));
        }
        self.record(
            agent,
            agent,
            AgentCommand::RecordSecondFactorEnrolled { at: Utc::now() },
        )
        .await?;
        let role = self.active_role(agent).await?;
        self.end_sessions(agent).await?;
        let credentials = store::credentials_by_agent(&self.inner.pool, agent.as_uuid())
            .await?
            .ok_or(AuthError::Unauthenticated("unknown agent"))?;
        let session = self
            .start_session(agent, role, Uuid::now_v7(), &credentials, false)
            .await?;
        Ok((recovery, session))
    }

    /// Turns the agent's own second factor off, proven with a current code (or a recovery
    /// code). When the team requires one of their role, their next sign-in is restricted to
    /// enrolling again.
    ///
    /// # Errors
    /// [`AuthError::Conflict`] without a second factor, [`AuthError::Unauthenticated`] for a
    /// wrong or replayed code, [`AuthError::RateLimited`] after many wrong codes.
    pub async fn disable_second_factor(
        &self,
        agent: AgentId,
        proof: Proof<'_>,
    ) -> Result<(), AuthError> {
        if !store::has_second_factor(&self.inner.pool, agent.as_uuid()).await? {
            return Err(AuthError::Conflict("no second factor is enrolled"));
        }
        let mut tx = self.inner.pool.begin().await?;
        self.check_proof(&mut tx, agent, proof).await?;
        tx.commit().await?;
        store::remove_second_factor(&self.inner.pool, agent.as_uuid()).await?;
        self.record(
            agent,
            agent,
            AgentCommand::RecordSecondFactorRemoved {
                by: agent,
                at: Utc::now(),
            },
        )
        .await
    }

    /// An admin removes `agent`'s second factor (a lost device): the secret, the recovery
    /// codes and open challenges go, and every session of the agent ends. `false` when they
    /// had none.
    ///
    /// # Errors
    /// When the database or the log fails, or the agent is unknown or deactivated.
    pub async fn reset_second_factor(
        &self,
        agent: AgentId,
        by: AgentId,
    ) -> Result<bool, AuthError> {
        self.current_agent(agent).await?;
        let removed = store::remove_second_factor(&self.inner.pool, agent.as_uuid()).await?;
        self.end_sessions(agent).await?;
        self.record(
            agent,
            by,
            AgentCommand::RecordSecondFactorRemoved { by, at: Utc::now() },
        )
        .await?;
        Ok(removed)
    }
}
