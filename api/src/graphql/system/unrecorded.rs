//! `unrecordedUpdates`: the Telegram updates the bot could never record (the log refused what
//! they would write, or a stored event they depend on cannot be read), kept with their raw
//! JSON and the error so the queue moved on and nothing the customer sent is out of sight.
//! Admins only: the raw updates are personal data.

use async_graphql::connection::Connection;
use async_graphql::{Context, Json, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use projections::unrecorded;

use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::error::database;
use crate::graphql::guard::Need;
use crate::graphql::pagination::{
    PageArgs, connection, connection_complexity, cursor, page, time_key,
};

/// A Telegram update the bot could not record.
#[derive(Debug, Clone, SimpleObject)]
pub struct UnrecordedUpdate {
    /// Telegram's `update_id` (a decimal number).
    pub update_id: String,
    /// The update as Telegram sent it, NUL characters replaced by U+FFFD.
    pub raw_update: Json<serde_json::Value>,
    /// Why it could not be recorded.
    pub error: String,
    /// When the bot gave up on it (the latest time, when Telegram delivered it again).
    pub recorded_at: DateTime<Utc>,
}

impl From<unrecorded::UnrecordedUpdate> for UnrecordedUpdate {
    fn from(row: unrecorded::UnrecordedUpdate) -> Self {
        UnrecordedUpdate {
            update_id: row.update_id.to_string(),
            raw_update: Json(row.raw_update.0),
            error: row.error,
            recorded_at: row.recorded_at,
        }
    }
}

/// `unrecordedUpdates`.
#[derive(Debug, Default)]
pub struct UnrecordedQuery;

#[Object]
impl UnrecordedQuery {
    /// Telegram updates the bot could never record, newest first. Admins only.
    #[graphql(
        guard = "Need(Permission::ManageSettings)",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    async fn unrecorded_updates(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Connection<String, UnrecordedUpdate>> {
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        let keyset = request.keyset(time_key)?;
        let rows = unrecorded::list(&api.pool, &keyset)
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.recorded_at.timestamp_micros(), &row.update_key),
            UnrecordedUpdate::from,
        ))
    }
}
