//! Reads of the "directory" read model (`agents`, `categories`, `templates`). They are short
//! lists an admin curates, so they come whole, not paged.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// The most rows a directory list returns; a desk has far fewer.
const MAX_DIRECTORY: i64 = 1_000;

/// One row of `agents`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub category_ids: Vec<Uuid>,
    pub active: bool,
    pub invited_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

/// Agents by name (only active ones unless `inactive`), or the one with `id`.
///
/// # Errors
/// The database's.
pub async fn agents(
    pool: &PgPool,
    id: Option<Uuid>,
    inactive: bool,
) -> sqlx::Result<Vec<AgentRow>> {
    sqlx::query_as(
        "select id, email, name, role, category_ids, active, invited_at, deactivated_at \
         from agents \
         where ($1::uuid is null or id = $1) and (active or $2) \
         order by lower(name), id limit $3",
    )
    .bind(id)
    .bind(inactive)
    .bind(MAX_DIRECTORY)
    .fetch_all(pool)
    .await
}

/// The categories an agent works, `None` when the agent is not in the read model.
///
/// # Errors
/// The database's.
pub async fn agent_categories(pool: &PgPool, agent: Uuid) -> sqlx::Result<Option<Vec<Uuid>>> {
    sqlx::query_scalar("select category_ids from agents where id = $1")
        .bind(agent)
        .fetch_optional(pool)
        .await
}

/// One row of `categories`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CategoryRow {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// Categories by name (only current ones unless `removed`), or the one with `id`.
///
/// # Errors
/// The database's.
pub async fn categories(
    pool: &PgPool,
    id: Option<Uuid>,
    removed: bool,
) -> sqlx::Result<Vec<CategoryRow>> {
    sqlx::query_as(
        "select id, name, created_at, updated_at, removed_at from categories \
         where ($1::uuid is null or id = $1) and (removed_at is null or $2) \
         order by lower(name), id limit $3",
    )
    .bind(id)
    .bind(removed)
    .bind(MAX_DIRECTORY)
    .fetch_all(pool)
    .await
}

/// How many of these categories exist and are not removed.
///
/// # Errors
/// The database's.
pub async fn current_categories_among(pool: &PgPool, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from categories where id = any($1) and removed_at is null")
        .bind(ids)
        .fetch_one(pool)
        .await
}

/// One row of `templates`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    pub id: Uuid,
    pub title: String,
    pub text: String,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub removed_at: Option<DateTime<Utc>>,
}

/// Templates by title (only current ones unless `removed`), or the one with `id`.
///
/// # Errors
/// The database's.
pub async fn templates(
    pool: &PgPool,
    id: Option<Uuid>,
    removed: bool,
) -> sqlx::Result<Vec<TemplateRow>> {
    sqlx::query_as(
        "select id, title, text, created_by, created_at, updated_at, removed_at from templates \
         where ($1::uuid is null or id = $1) and (removed_at is null or $2) \
         order by lower(title), id limit $3",
    )
    .bind(id)
    .bind(removed)
    .bind(MAX_DIRECTORY)
    .fetch_all(pool)
    .await
}
