//! `broadcasts` and `broadcast`, from the `broadcasts` read model.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, Utc};
use projections::broadcasts::queries as broadcasts;
use uuid::Uuid;

use super::types::{Broadcast, BroadcastStateValue};
use crate::auth::Permission;
use crate::graphql::consistency::{ConsistencyInput, consistent};
use crate::graphql::context::Api;
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard::Need;
use crate::graphql::ids;
use crate::graphql::pagination::{connection, connection_complexity, cursor, cursor_part, page};

/// `broadcasts` and `broadcast`.
#[derive(Debug, Default)]
pub struct BroadcastQuery;

#[Object]
impl BroadcastQuery {
    /// Broadcasts, newest first, optionally in one state.
    #[graphql(
        guard = "Need(Permission::ReadBroadcasts)",
        complexity = "connection_complexity(first, child_complexity)"
    )]
    async fn broadcasts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        state: Option<BroadcastStateValue>,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Connection<String, Broadcast>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, first, after.as_deref())?;
        let after = request
            .after
            .as_ref()
            .map(|(key, id)| -> Result<(DateTime<Utc>, Uuid)> {
                let at = DateTime::from_timestamp_micros(cursor_part(key)?)
                    .ok_or_else(|| error(Code::Validation, "not a cursor of this list"))?;
                Ok((at, cursor_part(id)?))
            })
            .transpose()?;
        let rows = broadcasts::list(&api.pool, state.map(Into::into), after, request.limit())
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
