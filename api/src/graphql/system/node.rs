//! `node(id:)`: any object with a global id, fetched again by it (Relay's object
//! identification). Each kind needs the permission its own query needs, and tickets (with
//! their messages and notes) keep the caller's category scope. An object that does not exist,
//! or that the caller may not see, is `null`; a malformed id is an error.

use async_graphql::{Context, ID, Interface, Object, Result};
use projections::broadcasts::queries as broadcasts;
use projections::directory::queries as directory;
use projections::tickets::queries as tickets;

use crate::auth::Permission;
use crate::graphql::broadcasts::Broadcast;
use crate::graphql::consistency::{ConsistencyInput, consistent};
use crate::graphql::context::Api;
use crate::graphql::customers::{Customer, visible_customer};
use crate::graphql::directory::{Agent, Category, Template};
use crate::graphql::error::{Code, database, error};
use crate::graphql::events::EventActor;
use crate::graphql::guard;
use crate::graphql::ids;
use crate::graphql::tickets::{Message, Note, Ticket, visible_ticket};

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
    /// A message of a ticket.
    Message(Message),
    /// A note on a ticket.
    Note(Note),
    /// Who caused an event.
    EventActor(EventActor),
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

/// `None` for a `NOT_FOUND` error (an absent node), the rest unchanged.
fn absent<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(e)
            if e.extensions
                .as_ref()
                .and_then(|extensions| extensions.get("code"))
                == Some(&async_graphql::Value::from(Code::NotFound.as_str())) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Whether the caller may see a ticket, as the ticket's own fields decide.
async fn ticket_visible(ctx: &Context<'_>, ticket: uuid::Uuid) -> Result<bool> {
    Ok(absent(crate::graphql::guard::visible_ticket(ctx, ticket).await)?.is_some())
}

#[Object]
impl NodeQuery {
    /// The object with this global id; null when it does not exist or the caller may not see
    /// it (`VALIDATION` for an id this API did not hand out, `FORBIDDEN` for a kind of object
    /// the caller may never read).
    async fn node(
        &self,
        ctx: &Context<'_>,
        id: ID,
        consistency: Option<ConsistencyInput>,
    ) -> Result<Option<Node>> {
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
                let ticket = uuid()?;
                Ok(absent(visible_ticket(ctx, ticket).await)?.map(Node::Ticket))
            }
            "Message" => {
                need(ctx, Permission::ReadTickets).await?;
                let Some(row) = tickets::message(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                else {
                    return Ok(None);
                };
                Ok(ticket_visible(ctx, row.ticket_id)
                    .await?
                    .then(|| Node::Message(row.into())))
            }
            "Note" => {
                need(ctx, Permission::ReadTickets).await?;
                let Some(row) = tickets::note(&api.pool, uuid()?).await.map_err(database)? else {
                    return Ok(None);
                };
                Ok(ticket_visible(ctx, row.ticket_id)
                    .await?
                    .then(|| Node::Note(row.into())))
            }
            "EventActor" => {
                // Actors show on events, which the event feed (`events`) and a ticket's
                // history give: either permission reads them. The actor is its id's content.
                let caller = guard::current(ctx).await?;
                if !(caller.may(Permission::ReadEvents) || caller.may(Permission::ReadTickets)) {
                    return Err(error(
                        Code::Forbidden,
                        "you may not read this kind of object",
                    ));
                }
                EventActor::from_key(&key)
                    .map(|actor| Some(Node::EventActor(actor)))
                    .ok_or_else(|| error(Code::Validation, "not a valid id"))
            }
            "Customer" => {
                need(ctx, Permission::ReadCustomers).await?;
                let key = key
                    .parse()
                    .map_err(|_| error(Code::Validation, "not a valid id"))?;
                Ok(visible_customer(ctx, key).await?.map(Node::Customer))
            }
            "Agent" => {
                need(ctx, Permission::ReadDirectory).await?;
                Ok(directory::agent(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(|row| Node::Agent(row.into())))
            }
            "Category" => {
                need(ctx, Permission::ReadDirectory).await?;
                Ok(directory::category(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(|row| Node::Category(row.into())))
            }
            "Template" => {
                need(ctx, Permission::ReadDirectory).await?;
                Ok(directory::template(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(|row| Node::Template(row.into())))
            }
            "Broadcast" => {
                need(ctx, Permission::ReadBroadcasts).await?;
                Ok(broadcasts::by_id(&api.pool, uuid()?)
                    .await
                    .map_err(database)?
                    .map(|row| Node::Broadcast(row.into())))
            }
            _ => Err(error(Code::Validation, "not a valid id")),
        }
    }
}
