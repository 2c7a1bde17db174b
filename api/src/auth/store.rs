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

pub(crate) async fn touch_api_token(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("update api_tokens set last_used_at = now() where id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// How many API tokens exist (active or revoked).
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
