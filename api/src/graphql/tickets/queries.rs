//! `tickets` and `ticket`. Agents limited to categories see only their tickets
//! ([`guard::ticket_scope`]).

use async_graphql::connection::Connection;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use domain::ticket::TicketStatus;
use projections::tickets::queries::{self as tickets, TicketFilter as Criteria};
use uuid::Uuid;

use super::ticket::Ticket;
use super::types::{PriorityValue, TicketStatusValue};
use crate::auth::{Permission, TicketScope};
use crate::graphql::consistency::{ConsistencyInput, consistent};
use crate::graphql::context::Api;
use crate::graphql::customers::customer_key;
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard::{self, Need};
use crate::graphql::ids;
use crate::graphql::pagination::{
    MAX_SEARCH, MAX_TEXT_FILTER, PageArgs, bounded, connection, connection_complexity, cursor,
    page, time_key,
};

/// Which tickets `tickets` returns; every field narrows the list.
#[derive(Debug, Clone, Default, InputObject)]
pub struct TicketFilter {
    /// Any of these statuses.
    pub status: Option<Vec<TicketStatusValue>>,
    /// Assigned to this agent (agent uuid or global id).
    pub assignee: Option<ID>,
    /// `true`: only unassigned tickets; `false`: only assigned ones.
    pub unassigned: Option<bool>,
    /// In this category (category uuid or global id).
    pub category: Option<ID>,
    /// Of this priority.
    pub priority: Option<PriorityValue>,
    /// Carrying this tag.
    pub tag: Option<String>,
    /// Of this customer (Telegram user id or global id).
    pub customer: Option<ID>,
    /// Words in any message (text or caption) or in the subject; at most 200 characters.
    pub search: Option<String>,
}

/// The order of `tickets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Enum)]
pub enum TicketOrder {
    /// Most recent activity first (the default). A ticket moves to the top with each change.
    #[default]
    LastActivityDesc,
    /// Newest first. A ticket never moves in it: page by it while tickets change.
    CreatedAtDesc,
    /// Oldest first. A ticket never moves in it: page by it while tickets change.
    CreatedAtAsc,
}

impl From<TicketOrder> for tickets::TicketOrder {
    fn from(order: TicketOrder) -> Self {
        match order {
            TicketOrder::LastActivityDesc => tickets::TicketOrder::LastActivityDesc,
            TicketOrder::CreatedAtDesc => tickets::TicketOrder::CreatedAtDesc,
            TicketOrder::CreatedAtAsc => tickets::TicketOrder::CreatedAtAsc,
        }
    }
}

/// A [`TicketFilter`] checked, in the read model's terms, within the caller's scope.
fn criteria(filter: &TicketFilter, scope: &TicketScope) -> Result<Criteria> {
    let mut statuses: Vec<TicketStatus> = filter
        .status
        .iter()
        .flatten()
        .map(|status| TicketStatus::from(*status))
        .collect();
    statuses.sort_unstable();
    statuses.dedup();
    Ok(Criteria {
        statuses,
        assignee: filter
            .assignee
            .as_ref()
            .map(|id| ids::uuid_of("Agent", id))
            .transpose()?,
        unassigned: filter.unassigned,
        category: filter
            .category
            .as_ref()
            .map(|id| ids::uuid_of("Category", id))
            .transpose()?,
        priority: filter.priority.map(Into::into),
        tag: bounded("filter.tag", filter.tag.as_deref(), MAX_TEXT_FILTER)?.map(str::to_owned),
        customer: filter.customer.as_ref().map(customer_key).transpose()?,
        search: bounded("filter.search", filter.search.as_deref(), MAX_SEARCH)?.map(str::to_owned),
        categories: scope.categories().map(<[Uuid]>::to_vec),
    })
}

/// `tickets` and `ticket`.
#[derive(Debug, Default)]
pub struct TicketQuery;

#[Object]
impl TicketQuery {
    /// Tickets the caller may see, filtered and ordered, a page at a time.
    #[graphql(
        guard = "Need(Permission::ReadTickets)",
        complexity = "connection_complexity(first, last, child_complexity)"
    )]
    #[expect(
        clippy::too_many_arguments,
        reason = "a list field's GraphQL arguments: four for paging, then its filters"
    )]
    async fn tickets(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<TicketFilter>,
        order_by: Option<TicketOrder>,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Connection<String, Ticket>> {
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        let request = page(api, PageArgs::new(first, &after, last, &before))?;
        let scope = guard::ticket_scope(ctx).await?;
        let criteria = criteria(&filter.unwrap_or_default(), &scope)?;
        let order = tickets::TicketOrder::from(order_by.unwrap_or_default());
        let keyset = request.keyset(time_key)?;
        let rows = tickets::list(&api.pool, &criteria, order, &keyset)
            .await
            .map_err(database)?;
        Ok(connection(
            &request,
            rows,
            |row| cursor(order.key(row).timestamp_micros(), row.id),
            Ticket::from,
        ))
    }

    /// One ticket, by uuid or global id; `NOT_FOUND` when it does not exist or is outside the
    /// caller's categories.
    #[graphql(guard = "Need(Permission::ReadTickets)")]
    async fn ticket(
        &self,
        ctx: &Context<'_>,
        id: ID,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Ticket> {
        consistent(ctx, consistency.as_ref()).await?;
        let id = ids::uuid_of("Ticket", &id)?;
        visible_ticket(ctx, id).await
    }
}

/// The ticket if it exists and the caller may see it, else `NOT_FOUND`.
///
/// # Errors
/// `NOT_FOUND`, or `INTERNAL` when the database fails.
pub async fn visible_ticket(ctx: &Context<'_>, id: Uuid) -> Result<Ticket> {
    guard::visible_ticket(ctx, id).await?;
    let api = ctx.data_unchecked::<Api>();
    tickets::by_ids(&api.pool, &[id])
        .await
        .map_err(database)?
        .into_iter()
        .next()
        .map(Ticket::from)
        .ok_or_else(|| error(Code::NotFound, "no such ticket"))
}
