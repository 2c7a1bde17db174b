//! `agents`, `categories` and `templates`: the team and its settings, from the `directory`
//! read model. They are short lists an admin curates, so they come whole, not paged.

use async_graphql::{Context, Object, Result};
use projections::directory::queries as directory;

use super::types::{Agent, Category, Template};
use crate::auth::Permission;
use crate::graphql::consistency::{ConsistencyInput, consistent};
use crate::graphql::context::Api;
use crate::graphql::error::database;
use crate::graphql::guard::Need;

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
        let rows = directory::agents(&api.pool, include_inactive)
            .await
            .map_err(database)?;
        Ok(rows.into_iter().map(Agent::from).collect())
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
        let rows = directory::categories(&api.pool, include_removed)
            .await
            .map_err(database)?;
        Ok(rows.into_iter().map(Category::from).collect())
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
        let rows = directory::templates(&api.pool, include_removed)
            .await
            .map_err(database)?;
        Ok(rows.into_iter().map(Template::from).collect())
    }
}
