//! Customers by Telegram id, loaded in batches through async-graphql's `DataLoader`: a page of
//! tickets asking for their customers costs one query, not one per ticket.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use projections::customers::{CustomerRow, queries};
use sqlx::PgPool;

/// Loads rows of the `customers` read model by Telegram id.
#[derive(Debug, Clone)]
pub struct CustomerLoader {
    pool: PgPool,
}

impl CustomerLoader {
    /// A loader reading from `pool`.
    pub fn new(pool: PgPool) -> Self {
        CustomerLoader { pool }
    }
}

impl Loader<i64> for CustomerLoader {
    type Value = CustomerRow;
    type Error = Arc<sqlx::Error>;

    async fn load(&self, keys: &[i64]) -> Result<HashMap<i64, CustomerRow>, Self::Error> {
        let rows = queries::by_ids(&self.pool, keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|row| (row.id, row)).collect())
    }
}
