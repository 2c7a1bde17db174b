//! Customers by Telegram id, loaded in batches through async-graphql's `DataLoader`: a page of
//! tickets asking for their customers costs one query, not one per ticket.
//!
//! The loader serves every request at once, so a key names the view as well as the customer:
//! an agent limited to categories sees a customer's counters and open ticket within those
//! categories only ([`CustomerKey::within`]).

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use projections::customers::{CustomerRow, queries};
use sqlx::PgPool;
use uuid::Uuid;

/// A customer, as one caller may see them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomerKey {
    /// Their Telegram id.
    pub id: i64,
    /// The categories the caller is limited to (`None`: every ticket).
    pub within: Option<Arc<[Uuid]>>,
}

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

impl Loader<CustomerKey> for CustomerLoader {
    type Value = CustomerRow;
    type Error = Arc<sqlx::Error>;

    async fn load(
        &self,
        keys: &[CustomerKey],
    ) -> Result<HashMap<CustomerKey, CustomerRow>, Self::Error> {
        // One query per view: usually one view per batch.
        let mut views: HashMap<Option<Arc<[Uuid]>>, Vec<i64>> = HashMap::new();
        for key in keys {
            views.entry(key.within.clone()).or_default().push(key.id);
        }
        let mut found = HashMap::with_capacity(keys.len());
        for (within, ids) in views {
            let rows = match &within {
                None => queries::by_ids(&self.pool, &ids).await,
                Some(categories) => queries::by_ids_within(&self.pool, &ids, categories).await,
            }
            .map_err(Arc::new)?;
            found.extend(rows.into_iter().map(|row| {
                let key = CustomerKey {
                    id: row.id,
                    within: within.clone(),
                };
                (key, row)
            }));
        }
        Ok(found)
    }
}
