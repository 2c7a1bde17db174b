//! `agents`, `categories` and `templates`: the team and its settings, from the `directory`
//! read model. They are short lists an admin curates, so they come whole, not paged.

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::Permission;
use crate::graphql::auth::RoleValue;
use crate::graphql::error::database;
use crate::graphql::guard::Need;
use crate::graphql::{Api, ConsistencyInput, consistent, ids};

/// The most rows a directory list returns; a desk has far fewer.
const MAX_DIRECTORY: i64 = 1_000;

/// A member of the team.
#[derive(Debug, Clone, SimpleObject)]
pub struct Agent {
    /// Global id.
    pub id: ID,
    /// The agent's uuid.
    pub agent_id: ID,
    /// Email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: RoleValue,
    /// The categories they work (none: all).
    pub category_ids: Vec<ID>,
    /// False once deactivated.
    pub active: bool,
    /// When they were invited.
    pub invited_at: DateTime<Utc>,
    /// When they were deactivated.
    pub deactivated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, sqlx::FromRow)]
struct AgentRow {
    id: Uuid,
    email: String,
    name: String,
    role: String,
    category_ids: Vec<Uuid>,
    active: bool,
    invited_at: DateTime<Utc>,
    deactivated_at: Option<DateTime<Utc>>,
}

impl From<AgentRow> for Agent {
    fn from(row: AgentRow) -> Self {
        Agent {
            id: ids::global("Agent", row.id),
            agent_id: ID(row.id.to_string()),
            email: row.email,
            name: row.name,
            role: match row.role.as_str() {
                "admin" => RoleValue::Admin,
                "auditor" => RoleValue::Auditor,
                _ => RoleValue::Agent,
            },
            category_ids: row
                .category_ids
                .into_iter()
                .map(|id| ID(id.to_string()))
                .collect(),
            active: row.active,
            invited_at: row.invited_at,
            deactivated_at: row.deactivated_at,
        }
    }
}

const AGENT_COLUMNS: &str =
    "id, email, name, role, category_ids, active, invited_at, deactivated_at";

/// Agents by name (only active ones unless `inactive`), or the one with `id`.
///
/// # Errors
/// The database's.
pub async fn load_agents(
    pool: &PgPool,
    id: Option<Uuid>,
    inactive: bool,
) -> sqlx::Result<Vec<Agent>> {
    let rows: Vec<AgentRow> = sqlx::query_as(&format!(
        "select {AGENT_COLUMNS} from agents \
         where ($1::uuid is null or id = $1) and (active or $2) \
         order by lower(name), id limit $3"
    ))
    .bind(id)
    .bind(inactive)
    .bind(MAX_DIRECTORY)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Agent::from).collect())
}

/// A ticket category.
#[derive(Debug, Clone, SimpleObject, sqlx::FromRow)]
pub struct Category {
    /// Global id.
    #[sqlx(skip)]
    pub id: ID,
    /// The category's uuid.
    #[sqlx(rename = "id")]
    #[graphql(skip)]
    pub uuid: Uuid,
    /// Name.
    pub name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last renamed.
    pub updated_at: DateTime<Utc>,
    /// When removed (old tickets keep the name).
    pub removed_at: Option<DateTime<Utc>>,
}

/// Categories by name (only current ones unless `removed`), or the one with `id`.
///
/// # Errors
/// The database's.
pub async fn load_categories(
    pool: &PgPool,
    id: Option<Uuid>,
    removed: bool,
) -> sqlx::Result<Vec<Category>> {
    let mut rows: Vec<Category> = sqlx::query_as(
        "select id, name, created_at, updated_at, removed_at from categories \
         where ($1::uuid is null or id = $1) and (removed_at is null or $2) \
         order by lower(name), id limit $3",
    )
    .bind(id)
    .bind(removed)
    .bind(MAX_DIRECTORY)
    .fetch_all(pool)
    .await?;
    for row in &mut rows {
        row.id = ids::global("Category", row.uuid);
    }
    Ok(rows)
}

/// A quick-reply template.
#[derive(Debug, Clone, SimpleObject, sqlx::FromRow)]
pub struct Template {
    /// Global id.
    #[sqlx(skip)]
    pub id: ID,
    /// The template's uuid.
    #[sqlx(rename = "id")]
    #[graphql(skip)]
    pub uuid: Uuid,
    /// Title.
    pub title: String,
    /// The reply text.
    pub text: String,
    #[graphql(skip)]
    pub created_by: Uuid,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last edited.
    pub updated_at: DateTime<Utc>,
    /// When removed.
    pub removed_at: Option<DateTime<Utc>>,
}

/// Templates by title (only current ones unless `removed`), or the one with `id`.
///
/// # Errors
/// The database's.
pub async fn load_templates(
    pool: &PgPool,
    id: Option<Uuid>,
    removed: bool,
) -> sqlx::Result<Vec<Template>> {
    let mut rows: Vec<Template> = sqlx::query_as(
        "select id, title, text, created_by, created_at, updated_at, removed_at from templates \
         where ($1::uuid is null or id = $1) and (removed_at is null or $2) \
         order by lower(title), id limit $3",
    )
    .bind(id)
    .bind(removed)
    .bind(MAX_DIRECTORY)
    .fetch_all(pool)
    .await?;
    for row in &mut rows {
        row.id = ids::global("Template", row.uuid);
    }
    Ok(rows)
}

/// `agents`, `categories` and `templates`.
#[derive(Debug, Default)]
pub struct DirectoryQuery;

#[Object]
impl DirectoryQuery {
    /// The team, by name; deactivated agents only with `includeInactive`.
    #[graphql(guard = "Need(Permission::ReadDirectory)")]
    async fn agents(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] include_inactive: bool,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Vec<Agent>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        load_agents(&api.pool, None, include_inactive)
            .await
            .map_err(database)
    }

    /// Ticket categories, by name; removed ones only with `includeRemoved`.
    #[graphql(guard = "Need(Permission::ReadDirectory)")]
    async fn categories(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] include_removed: bool,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Vec<Category>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        load_categories(&api.pool, None, include_removed)
            .await
            .map_err(database)
    }

    /// Quick-reply templates, by title; removed ones only with `includeRemoved`.
    #[graphql(guard = "Need(Permission::ReadDirectory)")]
    async fn templates(
        &self,
        ctx: &Context<'_>,
        #[graphql(default)] include_removed: bool,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Vec<Template>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        load_templates(&api.pool, None, include_removed)
            .await
            .map_err(database)
    }
}
