//! `node(id:)`: any object with a global id, fetched again by it (Relay's object
//! identification). Each kind needs the permission its own query needs, and tickets keep the
//! caller's category scope.

use async_graphql::{Context, ID, Interface, Object, Result};
use projections::broadcasts::queries as broadcasts;
use projections::directory::queries as directory;

use crate::auth::Permission;
use crate::graphql::broadcasts::Broadcast;
use crate::graphql::consistency::{ConsistencyInput, consistent};
use crate::graphql::context::Api;
use crate::graphql::customers::{Customer, visible_customer};
use crate::graphql::directory::{Agent, Category, Template};
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard;
use crate::graphql::ids;
use crate::graphql::tickets::{Ticket, visible_ticket};

/// An object with a global id.
#[derive(Debug, Interface)]
#[graphql(field(name = "id", ty = "&ID", desc = "Global id."))]
pub enum Node {
    /// A ticket.
    Ticket(Ticket),
    /// A customer.
    Customer(Customer),
    /// A team member.
    Agent(Agent),
    /// A ticket category.
    Category(Category),
    /// A quick-reply template.
    Template(Template),
    /// A broadcast.
    Broadcast(Broadcast),
}

/// `node`.
#[derive(Debug, Default)]
pub struct NodeQuery;

async fn need(ctx: &Context<'_>, permission: Permission) -> Result<()> {
    if guard::current(ctx).await?.may(permission) {
        Ok(())
    } else {
        Err(error(
            Code::Forbidden,
            "you may not read this kind of object",
        ))
    }
}

fn not_found() -> async_graphql::Error {
    error(Code::NotFound, "no such object")
}

#[Object]
impl NodeQuery {
    /// The object with this global id; `NOT_FOUND` when it does not exist or the caller may
    /// not see it.
    async fn node(
        &self,
        ctx: &Context<'_>,
        id: ID,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Node> {
        guard::caller(ctx)?;
        consistent(ctx, consistency.as_ref()).await?;
        let api = ctx.data_unchecked::<Api>();
        let (kind, key) = ids::parse(&id)?;
        let uuid = || -> Result<uuid::Uuid> {
            key.parse()
                .map_err(|_| error(Code::Validation, "not a valid id"))
        };
        match kind.as_str() {
            "Ticket" => {
                need(ctx, Permission::ReadTickets).await?;
                visible_ticket(ctx, uuid()?).await.map(Node::Ticket)
            }
            "Customer" => {
                need(ctx, Permission::ReadCustomers).await?;
                let key = key
                    .parse()
                    .map_err(|_| error(Code::Validation, "not a valid id"))?;
                visible_customer(ctx, key)
                    .await?
                    .map(Node::Customer)
                    .ok_or_else(not_found)
            }
            "Agent" => {
                need(ctx, Permission::ReadDirectory).await?;
                directory::agent(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(|row| Node::Agent(row.into()))
                    .ok_or_else(not_found)
            }
            "Category" => {
                need(ctx, Permission::ReadDirectory).await?;
                directory::category(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(|row| Node::Category(row.into()))
                    .ok_or_else(not_found)
            }
            "Template" => {
                need(ctx, Permission::ReadDirectory).await?;
                directory::template(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(|row| Node::Template(row.into()))
                    .ok_or_else(not_found)
            }
            "Broadcast" => {
                need(ctx, Permission::ReadBroadcasts).await?;
                broadcasts::by_id(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(|row| Node::Broadcast(row.into()))
                    .ok_or_else(not_found)
            }
            _ => Err(not_found()),
        }
    }
}
