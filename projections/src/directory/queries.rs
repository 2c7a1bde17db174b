//! The reads of the "directory" read model: the team, ticket categories and quick-reply
//! templates. They are short lists an admin curates, read whole (up to [`MOST_LISTED`] rows).

use std::sync::LazyLock;

use sqlx::PgExecutor;
use uuid::Uuid;

use super::{AgentRow, CategoryRow, TemplateRow};
use crate::table::select_list;

/// The most rows a directory list returns; a desk has far fewer.
pub const MOST_LISTED: i64 = 1_000;

/// The team by name (case-insensitive, then id): active agents, and deactivated ones too with
/// `include_inactive`.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn agents(
    db: impl PgExecutor<'_>,
    include_inactive: bool,
) -> sqlx::Result<Vec<AgentRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from agents where (active or $1) order by lower(name), id limit $2",
            select_list::<AgentRow>(None)
        )
    });
    sqlx::query_as(&SQL)
        .bind(include_inactive)
        .bind(MOST_LISTED)
        .fetch_all(db)
        .await
}

/// The agents with these ids that exist, active or not (in no particular order).
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn agents_by_ids(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<Vec<AgentRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from agents where id = any($1)",
            select_list::<AgentRow>(None)
        )
    });
    sqlx::query_as(&SQL).bind(ids).fetch_all(db).await
}

/// One agent, active or not.
///
/// # Errors
/// The database's, or a row the code cannot read.
pub async fn agent(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<AgentRow>> {
    Ok(agents_by_ids(db, &[id]).await?.pop())
}

/// The categories an agent works (empty: all), or `None` when there is no such agent.
///
/// # Errors
/// The database's.
pub async fn agent_categories(
    db: impl PgExecutor<'_>,
    agent: Uuid,
) -> sqlx::Result<Option<Vec<Uuid>>> {
    sqlx::query_scalar("select category_ids from agents where id = $1")
        .bind(agent)
        .fetch_optional(db)
        .await
}

/// Ticket categories by name (case-insensitive, then id): current ones, and removed ones too
/// with `include_removed`.
///
/// # Errors
/// The database's.
pub async fn categories(
    db: impl PgExecutor<'_>,
    include_removed: bool,
) -> sqlx::Result<Vec<CategoryRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from categories where (removed_at is null or $1) \
             order by lower(name), id limit $2",
            select_list::<CategoryRow>(None)
        )
    });
    sqlx::query_as(&SQL)
        .bind(include_removed)
        .bind(MOST_LISTED)
        .fetch_all(db)
        .await
}

/// One category, removed or not.
///
/// # Errors
/// The database's.
pub async fn category(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<CategoryRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from categories where id = $1",
            select_list::<CategoryRow>(None)
        )
    });
    sqlx::query_as(&SQL).bind(id).fetch_optional(db).await
}

/// How many of these categories exist and are not removed.
///
/// # Errors
/// The database's.
pub async fn current_categories(db: impl PgExecutor<'_>, ids: &[Uuid]) -> sqlx::Result<i64> {
    sqlx::query_scalar("select count(*) from categories where id = any($1) and removed_at is null")
        .bind(ids)
        .fetch_one(db)
        .await
}

/// Quick-reply templates by title (case-insensitive, then id): current ones, and removed ones
/// too with `include_removed`.
///
/// # Errors
/// The database's.
pub async fn templates(
    db: impl PgExecutor<'_>,
    include_removed: bool,
) -> sqlx::Result<Vec<TemplateRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from templates where (removed_at is null or $1) \
             order by lower(title), id limit $2",
            select_list::<TemplateRow>(None)
        )
    });
    sqlx::query_as(&SQL)
        .bind(include_removed)
        .bind(MOST_LISTED)
        .fetch_all(db)
        .await
}

/// One template, removed or not.
///
/// # Errors
/// The database's.
pub async fn template(db: impl PgExecutor<'_>, id: Uuid) -> sqlx::Result<Option<TemplateRow>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "select {} from templates where id = $1",
            select_list::<TemplateRow>(None)
        )
    });
    sqlx::query_as(&SQL).bind(id).fetch_optional(db).await
}
