//! `customers` and `customer`, from the `customers` read model. An agent limited to categories
//! sees a customer only through their tickets in those categories.

use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object, Result};
use projections::customers::queries as customers;

use super::types::{Customer, customer_key};
use crate::auth::{Permission, TicketScope};
use crate::graphql::consistency::{ConsistencyInput, consistent};
use crate::graphql::context::Api;
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard::{self, Need};
use crate::graphql::pagination::{
    MAX_TEXT_FILTER, PageArgs, bounded, connection, connection_complexity, cursor, page, time_key,
};

/// `customers` and `customer`.
#[derive(Debug, Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// Customers, newest first, optionally matching a name or username (at most 100
    /// characters), their ban, or whether they opted out of broadcasts (`/stop` or the
    /// unsubscribe button under a broadcast; `/start` opts them back in).
    #[graphql(
        guard = "Need(Permission::ReadCustomers)",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "a list field's GraphQL arguments: four for paging, then its filters"
    )]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        search: Option<String>,
        banned: Option<bool>,
        opted_out_of_broadcasts: Option<bool>,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Connection<String, Customer>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        let search = bounded("search", search.as_deref(), MAX_TEXT_FILTER)?;
        let keyset = request.keyset(time_key)?;
        let scope = guard::ticket_scope(ctx).await?;
        let filters = (banned, opted_out_of_broadcasts);
        let rows = customers::list(&api.pool, scope.categories(), search, filters, &keyset)
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(row.registered_at.timestamp_micros(), row.id),
            Customer::from,
        ))
    }

    /// One customer, by Telegram id or global id; `NOT_FOUND` when they never wrote or, for
    /// an agent limited to categories, have no ticket in them.
    #[graphql(guard = "Need(Permission::ReadCustomers)")]
    async fn customer(
        &self,
        ctx: &Context<'_>,
        id: ID,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Customer> {
        consistent(ctx, consistency.as_ref()).await?;
        visible_customer(ctx, customer_key(&id)?)
            .await?
            .ok_or_else(|| error(Code::NotFound, "no such customer"))
    }
}

/// The customer if they exist and the caller may see them: an agent limited to categories
/// sees only customers with a ticket in them, with the counters and open ticket of those
/// tickets only.
///
/// # Errors
/// As [`guard::ticket_scope`], or `INTERNAL` when the database fails.
pub async fn visible_customer(ctx: &Context<'_>, id: i64) -> Result<Option<Customer>> {
    let api = ctx.data_unchecked::<Api>();
    let row = match guard::ticket_scope(ctx).await? {
        TicketScope::All => customers::by_id(&api.pool, id).await,
        TicketScope::Categories(categories) => {
            customers::by_id_within(&api.pool, id, &categories).await
        }
    };
    Ok(row.map_err(database)?.map(Customer::from))
}
