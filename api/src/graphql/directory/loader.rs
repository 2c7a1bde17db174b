//! Agents by id, loaded in batches through async-graphql's `DataLoader`: a page of tickets
//! asking for their assignees costs one query, not one per ticket.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use projections::directory::{AgentRow, queries};
use sqlx::PgPool;
use uuid::Uuid;

/// Loads rows of the `agents` read model by id, active or not.
#[derive(Debug, Clone)]
pub struct AgentLoader {
    pool: PgPool,
}

impl AgentLoader {
    /// A loader reading from `pool`.
    pub fn new(pool: PgPool) -> Self {
        AgentLoader { pool }
    }
}

impl Loader<Uuid> for AgentLoader {
    type Value = AgentRow;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, AgentRow>, Self::Error> {
        let rows = queries::agents_by_ids(&self.pool, keys)
            .await
            .map_err(Arc::new)?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}
