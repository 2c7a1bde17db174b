//! `node(id:)`: any object with a global id, fetched again by it (Relay's object
//! identification). Each kind needs the permission its own query needs, and tickets keep the
//! caller's category scope.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::broadcasts::{Broadcast, load_broadcast};
use super::customers::{Customer, load_customer};
use super::directory::{Agent, Category, Template, load_agents, load_categories, load_templates};
use crate::auth::Permission;
use crate::graphql::error::{Code, database, error};
use crate::graphql::guard;
use crate::graphql::tickets::Ticket;
use crate::graphql::{Api, ConsistencyInput, consistent, ids};

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

fn need(ctx: &Context<'_>, permission: Permission) -> Result<()> {
    if guard::caller(ctx)?.may(permission) {
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
                need(ctx, Permission::ReadTickets)?;
                super::tickets::visible_ticket(ctx, uuid()?)
                    .await
                    .map(Node::Ticket)
            }
            "Customer" => {
                need(ctx, Permission::ReadCustomers)?;
                let key = key
                    .parse()
                    .map_err(|_| error(Code::Validation, "not a valid id"))?;
                load_customer(&api.pool, key)
                    .await
                    .map_err(database)?
                    .map(Node::Customer)
                    .ok_or_else(not_found)
            }
            "Agent" => {
                need(ctx, Permission::ReadDirectory)?;
                let mut agents = load_agents(&api.pool, Some(uuid()?), true)
                    .await
                    .map_err(database)?;
                agents.pop().map(Node::Agent).ok_or_else(not_found)
            }
            "Category" => {
                need(ctx, Permission::ReadDirectory)?;
                let mut categories = load_categories(&api.pool, Some(uuid()?), true)
                    .await
                    .map_err(database)?;
                categories.pop().map(Node::Category).ok_or_else(not_found)
            }
            "Template" => {
                need(ctx, Permission::ReadDirectory)?;
                let mut templates = load_templates(&api.pool, Some(uuid()?), true)
                    .await
                    .map_err(database)?;
                templates.pop().map(Node::Template).ok_or_else(not_found)
            }
            "Broadcast" => {
                need(ctx, Permission::ReadBroadcasts)?;
                load_broadcast(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(Node::Broadcast)
                    .ok_or_else(not_found)
            }
            _ => Err(not_found()),
        }
    }
}
