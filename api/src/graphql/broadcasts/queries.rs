//! `broadcasts` and `broadcast`, from the `broadcasts` read model.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result};
use projections::broadcasts::queries as broadcasts;

use super::types::{Broadcast, BroadcastStateValue};
use crate::auth::Permission;
use crate::graphql::consistency::{ConsistencyInput, consistent};
use crate::graphql::context::Api;
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard::Need;
use crate::graphql::ids;
use crate::graphql::pagination::{
    PageArgs, connection, connection_complexity, cursor, page, time_key,
};

/// `broadcasts` and `broadcast`.
#[derive(Debug, Default)]
pub struct BroadcastQuery;

#[Object]
impl BroadcastQuery {
    /// Broadcasts, newest first, optionally in one state.
    #[graphql(
        guard = "Need(Permission::ReadBroadcasts)",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "a list field's GraphQL arguments: four for paging, then its filters"
    )]
    async fn broadcasts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        state: Option<BroadcastStateValue>,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Connection<String, Broadcast>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        let keyset = request.keyset(time_key)?;
        let rows = broadcasts::list(&api.pool, state.map(Into::into), &keyset)
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.created_at.timestamp_micros(), row.id),
            Broadcast::from,
        ))
    }

    /// One broadcast, by uuid or global id.
    #[graphql(guard = "Need(Permission::ReadBroadcasts)")]
    async fn broadcast(
        &self,
        ctx: &Context<'_>,
        id: ID,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Broadcast> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        broadcasts::by_id(&api.pool, ids::uuid_of("Broadcast", &id)?)
            .await
            .map_err(database)?
            .map(Broadcast::from)
            .ok_or_else(|| error(Code::NotFound, "no such broadcast"))
    }
}
