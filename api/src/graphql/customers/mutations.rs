//! `banCustomer` and `unbanCustomer` (`ModerateCustomers`, signed-in agents only: the events
//! name the agent), and `forgetCustomer` (`ForgetCustomers`: signed-in admins only).

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Utc;
use domain::customer::{Customer, CustomerCommand};
use domain::{CustomerId, StreamId};

use crate::auth::{Permission, TicketScope};
use crate::graphql::commands::{context, position, timed};
use crate::graphql::context::Api;
use crate::graphql::error::{self, Code, error};
use crate::graphql::guard::{self, Need, signed_in_agent};

use super::queries::visible_customer;

/// Input of `banCustomer`.
#[derive(Debug, InputObject)]
pub struct BanCustomerInput {
    /// The customer's Telegram user id.
    pub customer_id: ID,
    /// Why (at most 1024 characters; shown to the team only).
    pub reason: Option<String>,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `unbanCustomer`.
#[derive(Debug, InputObject)]
pub struct UnbanCustomerInput {
    /// The customer's Telegram user id.
    pub customer_id: ID,
    /// Makes a retry harmless.
    pub idempotency_key: Option<String>,
}

/// Input of `forgetCustomer`.
#[derive(Debug, InputObject)]
pub struct ForgetCustomerInput {
    /// The customer's Telegram user id.
    pub customer_id: ID,
}

/// What `forgetCustomer` did.
#[derive(Debug, Clone, SimpleObject)]
pub struct ForgetCustomerPayload {
    /// The customer's Telegram user id.
    pub customer_id: ID,
    /// False when the key was already gone (forgotten before): forgetting again is harmless.
    pub key_deleted: bool,
    /// How many tickets the customer had (their rows are cleared in the read models).
    pub tickets: i32,
    /// Events of the customer stored before personal data was sealed: their personal fields
    /// stay in the append-only log (the read models are cleared all the same).
    pub events_stored_before_sealing: i32,
    /// Stored copies of the customer's files that were deleted.
    pub files_deleted: i32,
}

/// What a customer mutation did.
#[derive(Debug, Clone, SimpleObject)]
pub struct CustomerPayload {
    /// The log position written; null when nothing changed (already banned, say).
    pub position: Option<String>,
    /// The customer's Telegram user id.
    pub customer_id: ID,
    /// True when the idempotency key was used before and this is the first call's result.
    pub replayed: bool,
}

fn customer_id(id: &ID) -> Result<CustomerId> {
    id.trim()
        .parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .map(CustomerId)
        .ok_or_else(|| error(Code::Validation, "customerId must be a Telegram user id"))
}

async fn run(
    ctx: &Context<'_>,
    mutation: &str,
    key: Option<&str>,
    customer: CustomerId,
    command: &CustomerCommand,
) -> Result<CustomerPayload> {
    // An agent limited to categories moderates only the customers they may see.
    if guard::ticket_scope(ctx).await? != TicketScope::All
        && visible_customer(ctx, customer.0).await?.is_none()
    {
        return Err(error(Code::NotFound, "no such customer"));
    }
    let api = ctx.data_unchecked::<Api>();
    let command_ctx = context(ctx, mutation, key)?;
    let executed = timed(
        "customer",
        api.commands
            .execute::<Customer>(StreamId::Customer(customer), command, &command_ctx),
    )
    .await
    .map_err(error::command)?;
    Ok(CustomerPayload {
        position: position(&executed),
        customer_id: ID(customer.0.to_string()),
        replayed: executed.replayed,
    })
}

/// The customer mutations.
#[derive(Debug, Default)]
pub struct CustomerMutation;

#[Object]
impl CustomerMutation {
    /// Refuses the customer's messages from now on (no change when already banned).
    #[graphql(guard = "Need(Permission::ModerateCustomers)")]
    async fn ban_customer(
        &self,
        ctx: &Context<'_>,
        input: BanCustomerInput,
    ) -> Result<CustomerPayload> {
        let by = signed_in_agent(ctx)?;
        let customer = customer_id(&input.customer_id)?;
        let command = CustomerCommand::Ban {
            by,
            reason: input.reason,
            at: Utc::now(),
        };
        let key = input.idempotency_key.as_deref();
        run(ctx, "banCustomer", key, customer, &command).await
    }

    /// Forgets the customer's personal data everywhere (names, username, their messages'
    /// words and files, places, contacts): their key is deleted, `customer.forgotten` is
    /// recorded with the admin as its actor, and the read models clear their rows. The
    /// history keeps its shape. Harmless when repeated.
    #[graphql(guard = "Need(Permission::ForgetCustomers)")]
    async fn forget_customer(
        &self,
        ctx: &Context<'_>,
        input: ForgetCustomerInput,
    ) -> Result<ForgetCustomerPayload> {
        signed_in_agent(ctx)?;
        let customer = customer_id(&input.customer_id)?;
        let actor = context(ctx, "forgetCustomer", None)?.actor;
        let api = ctx.data_unchecked::<Api>();
        let forgotten = match app::forget::forget_customer(&api.log, customer, actor).await {
            Ok(forgotten) => forgotten,
            Err(app::forget::ForgetError::UnknownCustomer(_)) => {
                return Err(error(Code::NotFound, "no such customer"));
            }
            Err(app::forget::ForgetError::Log(e)) if e.is_unavailable() => {
                return Err(error::unavailable());
            }
            Err(e) => return Err(error::internal("cannot forget the customer", e)),
        };
        let files = match &api.media {
            Some(media) if !forgotten.files.is_empty() => media
                .delete_telegram_copies(&forgotten.files)
                .await
                .map_err(|e| error::internal("cannot delete the customer's stored files", e))?,
            _ => 0,
        };
        let count = |n: u64| i32::try_from(n).unwrap_or(i32::MAX);
        Ok(ForgetCustomerPayload {
            customer_id: ID(customer.0.to_string()),
            key_deleted: forgotten.key_deleted,
            tickets: count(forgotten.tickets.len() as u64),
            events_stored_before_sealing: count(forgotten.plain_events),
            files_deleted: count(files),
        })
    }

    /// Lifts a ban (no change when not banned).
    #[graphql(guard = "Need(Permission::ModerateCustomers)")]
    async fn unban_customer(
        &self,
        ctx: &Context<'_>,
        input: UnbanCustomerInput,
    ) -> Result<CustomerPayload> {
        let by = signed_in_agent(ctx)?;
        let customer = customer_id(&input.customer_id)?;
        let command = CustomerCommand::Unban { by, at: Utc::now() };
        let key = input.idempotency_key.as_deref();
        run(ctx, "unbanCustomer", key, customer, &command).await
    }
}
