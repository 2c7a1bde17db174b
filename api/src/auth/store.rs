//! The SQL of authentication: signing key, credentials, refresh tokens, API tokens.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// The signing key, created on first use.
pub(crate) async fn signing_key(pool: &PgPool, fresh: &[u8]) -> sqlx::Result<Vec<u8>> {
    sqlx::query(
        "insert into auth_signing_key (id, secret) values (true, $1) on conflict do nothing",
    )
    .bind(fresh)
    .execute(pool)
    .await?;
    sqlx::query_scalar("select secret from auth_signing_key where id")
        .fetch_one(pool)
        .await
}

/// An agent's credentials row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Credentials {
    pub agent_id: Uuid,
    pub password_hash: String,
    pub must_change_password: bool,
    pub session_epoch: i32,
}

pub(crate) async fn credentials_by_email(
    pool: &PgPool,
    email: &str,
) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as(
        "select agent_id, password_hash, must_change_password, session_epoch
         from agent_credentials where email = $1",
    )
    .bind(email)
    .fetch_optional(pool)
    .await
}

pub(crate) async fn credentials_by_agent(
    pool: &PgPool,
    agent: Uuid,
) -> sqlx::Result<Option<Credentials>> {
    sqlx::query_as(
        "select agent_id, password_hash, must_change_password, session_epoch
         from agent_credentials where agent_id = $1",
    )
    .bind(agent)
    .fetch_optional(pool)
    .await
}

/// The session state an access token is checked against on every request: the agent's epoch
/// and forced-change flag (`None`: unknown agent), and whether the sign-in (refresh-token
/// family) `sign_in` of that agent is still open (one of its refresh tokens is not revoked).
pub(crate) async fn session_state(
    pool: &PgPool,
    agent: Uuid,
    sign_in: Uuid,
) -> sqlx::Result<(Option<(i32, bool)>, bool)> {
    let row: (Option<i32>, Option<bool>, bool) = sqlx::query_as(
        "select c.session_epoch, c.must_change_password,
                exists(select 1 from refresh_tokens r
                       where r.family_id = $2 and r.agent_id = $1 and r.revoked_at is null)
         from (select 1) as one
         left join agent_credentials c on c.agent_id = $1",
    )
    .bind(agent)
    .bind(sign_in)
    .fetch_one(pool)
    .await?;
    Ok((row.0.zip(row.1), row.2))
}

/// Reserves `email` for a new agent. `false` when another agent already has it.
pub(crate) async fn insert_credentials(
    pool: &PgPool,
    agent: Uuid,
    email: &str,
    password_hash: &str,
    must_change_password: bool,
) -> sqlx::Result<bool> {
    let inserted = sqlx::query(
        "insert into agent_credentials (agent_id, email, password_hash, must_change_password)
         values ($1, $2, $3, $4) on conflict do nothing",
    )
    .bind(agent)
    .bind(email)
    .bind(password_hash)
    .bind(must_change_password)
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub(crate) async fn delete_credentials(pool: &PgPool, agent: Uuid) -> sqlx::Result<()> {
    sqlx::query("delete from agent_credentials where agent_id = $1")
        .bind(agent)
        .execute(pool)
        .await?;
    Ok(())
}

/// Sets a new password, clears the forced change and starts a new session epoch. Returns it.
pub(crate) async fn set_password(
    pool: &PgPool,
    agent: Uuid,
    password_hash: &str,
    must_change_password: bool,
) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar(
        "update agent_credentials
         set password_hash = $2, must_change_password = $3, password_changed_at = now(),
             session_epoch = session_epoch + 1
         where agent_id = $1 returning session_epoch",
    )
    .bind(agent)
    .bind(password_hash)
    .bind(must_change_password)
    .fetch_optional(pool)
    .await
}

/// Invalidates every access token of the agent, and every refresh token too.
pub(crate) async fn end_all_sessions(pool: &PgPool, agent: Uuid) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "update agent_credentials set session_epoch = session_epoch + 1 where agent_id = $1",
    )
    .bind(agent)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "update refresh_tokens set revoked_at = now() where agent_id = $1 and revoked_at is null",
    )
    .bind(agent)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

pub(crate) async fn insert_refresh_token(
    conn: &mut PgConnection,
    family: Uuid,
    agent: Uuid,
    digest: &[u8],
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into refresh_tokens (id, family_id, agent_id, token_hash, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(family)
    .bind(agent)
    .bind(digest)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A refresh token as found by its digest, locked for rotation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct RefreshRow {
    pub id: Uuid,
    pub family_id: Uuid,
    pub agent_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

pub(crate) async fn lock_refresh_token(
    conn: &mut PgConnection,
    digest: &[u8],
) -> sqlx::Result<Option<RefreshRow>> {
    sqlx::query_as(
        "select id, family_id, agent_id, expires_at, used_at, revoked_at
         from refresh_tokens where token_hash = $1 for update",
    )
    .bind(digest)
    .fetch_optional(conn)
    .await
}

pub(crate) async fn mark_refresh_used(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update refresh_tokens set used_at = now() where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub(crate) async fn revoke_family(conn: &mut PgConnection, family: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "update refresh_tokens set revoked_at = now() where family_id = $1 and revoked_at is null",
    )
    .bind(family)
    .execute(conn)
    .await?;
    Ok(())
}

/// An API token as found by its digest.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ApiTokenRow {
    pub id: Uuid,
    pub scopes: Vec<String>,
    pub created_by: Uuid,
    pub stale: bool,
}

pub(crate) async fn api_token(pool: &PgPool, digest: &[u8]) -> sqlx::Result<Option<ApiTokenRow>> {
    sqlx::query_as(
        "select id, scopes, created_by,
                coalesce(last_used_at < now() - interval '1 minute', true) as stale
         from api_tokens where token_hash = $1 and revoked_at is null",
    )
    .bind(digest)
    .fetch_optional(pool)
    .await
}

/// An unrevoked API token by its id (a signed media URL names its token by id).
pub(crate) async fn api_token_by_id(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<ApiTokenRow>> {
    sqlx::query_as(
        "select id, scopes, created_by, false as stale
         from api_tokens where id = $1 and revoked_at is null",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

pub(crate) async fn touch_api_token(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update api_tokens set last_used_at = now() where id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// How many API tokens exist (active or revoked).
/// The name of API token `id` (revoked ones too), for showing who an integrator actor was.
pub(crate) async fn api_token_name(pool: &PgPool, id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("select name from api_tokens where id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

pub(crate) async fn count_api_tokens(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from api_tokens")
        .fetch_one(pool)
        .await
}

/// Stores a new API token by its digest.
pub(crate) async fn insert_api_token(
    pool: &PgPool,
    id: Uuid,
    name: &str,
    scopes: &[String],
    digest: &[u8],
    created_by: Uuid,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into api_tokens (id, name, scopes, token_hash, created_by)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(name)
    .bind(scopes)
    .bind(digest)
    .bind(created_by)
    .execute(pool)
    .await?;
    Ok(())
}

/// Revokes an API token: whether it exists, and whether it was revoked now (not before).
pub(crate) async fn revoke_api_token(pool: &PgPool, id: Uuid) -> sqlx::Result<(bool, bool)> {
    sqlx::query_as(
        "with target as (select id, revoked_at from api_tokens where id = $1),
              revoked as (update api_tokens set revoked_at = now()
                          where id = $1 and revoked_at is null returning id)
         select exists(select 1 from target), exists(select 1 from revoked)",
    )
    .bind(id)
    .fetch_one(pool)
    .await
}

/// An API token as listed (never its digest).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ListedApiToken {
    pub id: Uuid,
    pub name: String,
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Every API token, newest first (at most 1,000, the most that can exist).
pub(crate) async fn list_api_tokens(pool: &PgPool) -> sqlx::Result<Vec<ListedApiToken>> {
    sqlx::query_as(
        "select id, name, scopes, created_at, revoked_at, last_used_at
         from api_tokens order by created_at desc limit 1000",
    )
    .fetch_all(pool)
    .await
}

/// An agent's second factor, as sign-in reads it. `Debug` never shows the secret.
#[derive(Clone, sqlx::FromRow)]
pub(crate) struct SecondFactorRow {
    pub secret: Vec<u8>,
    pub confirmed: bool,
}

impl std::fmt::Debug for SecondFactorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorRow")
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

/// The agent's second factor, confirmed or pending.
pub(crate) async fn second_factor(
    pool: &PgPool,
    agent: Uuid,
) -> sqlx::Result<Option<SecondFactorRow>> {
    sqlx::query_as(
        "select secret, confirmed_at is not null as confirmed
         from agent_second_factors where agent_id = $1",
    )
    .bind(agent)
    .fetch_optional(pool)
    .await
}

/// Whether the agent has a confirmed second factor.
pub(crate) async fn has_second_factor(pool: &PgPool, agent: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "select exists(select 1 from agent_second_factors
                       where agent_id = $1 and confirmed_at is not null)",
    )
    .bind(agent)
    .fetch_one(pool)
    .await
}

/// Starts (or restarts) a pending enrolment with `secret`. `false` when a confirmed second
/// factor exists (it is left alone).
pub(crate) async fn begin_second_factor(
    pool: &PgPool,
    agent: Uuid,
    secret: &[u8],
) -> sqlx::Result<bool> {
    let written = sqlx::query(
        "insert into agent_second_factors (agent_id, secret) values ($1, $2)
         on conflict (agent_id) do update
             set secret = excluded.secret, created_at = now(), last_step = null
             where agent_second_factors.confirmed_at is null",
    )
    .bind(agent)
    .bind(secret)
    .execute(pool)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// Accepts a code's time step once: `true` when `step` is later than every step accepted
/// before (and records it), `false` for a replayed or older code.
pub(crate) async fn accept_step(
    conn: &mut PgConnection,
    agent: Uuid,
    step: i64,
) -> sqlx::Result<bool> {
    let accepted = sqlx::query(
        "update agent_second_factors set last_step = $2
         where agent_id = $1 and (last_step is null or last_step < $2)",
    )
    .bind(agent)
    .bind(step)
    .execute(conn)
    .await?;
    Ok(accepted.rows_affected() == 1)
}

/// Confirms a pending enrolment and replaces the agent's recovery codes, in one transaction
/// with the step of the confirming code. `false` when there was nothing pending or the step
/// was used already.
pub(crate) async fn confirm_second_factor(
    pool: &PgPool,
    agent: Uuid,
    step: i64,
    recovery_hashes: &[String],
) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let confirmed = sqlx::query(
        "update agent_second_factors set confirmed_at = now(), last_step = $2
         where agent_id = $1 and confirmed_at is null
           and (last_step is null or last_step < $2)",
    )
    .bind(agent)
    .bind(step)
    .execute(&mut *tx)
    .await?;
    if confirmed.rows_affected() != 1 {
        return Ok(false);
    }
    replace_recovery_codes(&mut tx, agent, recovery_hashes).await?;
    tx.commit().await?;
    Ok(true)
}

async fn replace_recovery_codes(
    conn: &mut PgConnection,
    agent: Uuid,
    hashes: &[String],
) -> sqlx::Result<()> {
    sqlx::query("delete from agent_recovery_codes where agent_id = $1")
        .bind(agent)
        .execute(&mut *conn)
        .await?;
    let ids: Vec<Uuid> = hashes.iter().map(|_| Uuid::now_v7()).collect();
    sqlx::query(
        "insert into agent_recovery_codes (id, agent_id, code_hash)
         select id, $2, hash from unnest($1::uuid[], $3::text[]) as codes(id, hash)",
    )
    .bind(&ids)
    .bind(agent)
    .bind(hashes)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the agent's second factor, recovery codes and open challenges. `true` when there
/// was a second factor (confirmed or pending).
pub(crate) async fn remove_second_factor(pool: &PgPool, agent: Uuid) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let removed = sqlx::query("delete from agent_second_factors where agent_id = $1")
        .bind(agent)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from agent_recovery_codes where agent_id = $1")
        .bind(agent)
        .execute(&mut *tx)
        .await?;
    sqlx::query("delete from second_factor_challenges where agent_id = $1")
        .bind(agent)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(removed.rows_affected() == 1)
}

/// The agent's unused recovery codes: ids and hashes.
pub(crate) async fn unused_recovery_codes(
    pool: &PgPool,
    agent: Uuid,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "select id, code_hash from agent_recovery_codes
         where agent_id = $1 and used_at is null order by id",
    )
    .bind(agent)
    .fetch_all(pool)
    .await
}

/// Spends a recovery code once: `true` when it was unused until now.
pub(crate) async fn spend_recovery_code(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<bool> {
    let spent = sqlx::query(
        "update agent_recovery_codes set used_at = now() where id = $1 and used_at is null",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(spent.rows_affected() == 1)
}

/// How many unused recovery codes the agent has.
pub(crate) async fn recovery_codes_left(pool: &PgPool, agent: Uuid) -> sqlx::Result<i64> {
    sqlx::query_scalar(
        "select count(*) from agent_recovery_codes where agent_id = $1 and used_at is null",
    )
    .bind(agent)
    .fetch_one(pool)
    .await
}

/// Opens a second-factor challenge, stored by its digest; forgets the agent's expired ones.
pub(crate) async fn insert_challenge(
    pool: &PgPool,
    agent: Uuid,
    digest: &[u8],
    expires_at: DateTime<Utc>,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "delete from second_factor_challenges
         where agent_id = $1 and (expires_at < now() or used_at is not null)",
    )
    .bind(agent)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into second_factor_challenges (id, agent_id, token_hash, expires_at)
         values ($1, $2, $3, $4)",
    )
    .bind(Uuid::now_v7())
    .bind(agent)
    .bind(digest)
    .bind(expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// A challenge as found by its digest, locked while its code is checked.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct ChallengeRow {
    pub id: Uuid,
    pub agent_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub attempts: i32,
    pub used_at: Option<DateTime<Utc>>,
}

pub(crate) async fn lock_challenge(
    conn: &mut PgConnection,
    digest: &[u8],
) -> sqlx::Result<Option<ChallengeRow>> {
    sqlx::query_as(
        "select id, agent_id, expires_at, attempts, used_at
         from second_factor_challenges where token_hash = $1 for update",
    )
    .bind(digest)
    .fetch_optional(conn)
    .await
}

/// Counts a wrong code against a challenge.
pub(crate) async fn challenge_failed(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update second_factor_challenges set attempts = attempts + 1 where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Spends a challenge.
pub(crate) async fn challenge_used(conn: &mut PgConnection, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update second_factor_challenges set used_at = now() where id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
