//! Role checks. Every resolver that reads or changes data carries `guard = "Need(…)"`; the few
//! that only need a signed-in agent call [`signed_in_agent`].

use async_graphql::{Context, Guard, Result};

use super::error::{Code, error};
use crate::auth::{Authentication, Caller, Permission, TicketScope};

/// Allows the field when the caller holds the permission: `UNAUTHENTICATED` without a valid
/// credential, `FORBIDDEN` without the permission.
#[derive(Debug, Clone, Copy)]
pub struct Need(pub Permission);

impl Guard for Need {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let caller = caller(ctx)?;
        if caller.may(self.0) {
            return Ok(());
        }
        Err(match caller {
            Caller::Agent {
                must_change_password: true,
                ..
            } => error(
                Code::Forbidden,
                "change your one-time password first (mutation changePassword)",
            ),
            Caller::Agent { role, .. } => error(
                Code::Forbidden,
                format!("the {} role may not do this", role_name(*role)),
            ),
            Caller::Integrator { .. } => {
                error(Code::Forbidden, "this API token's scopes do not allow this")
            }
        })
    }
}

fn role_name(role: domain::agent::Role) -> &'static str {
    match role {
        domain::agent::Role::Admin => "admin",
        domain::agent::Role::Agent => "agent",
        domain::agent::Role::Auditor => "auditor",
    }
}

/// The authenticated caller, or `UNAUTHENTICATED`.
pub fn caller<'a>(ctx: &Context<'a>) -> Result<&'a Caller> {
    match ctx.data_opt::<Authentication>() {
        Some(Authentication::Authenticated(caller)) => Ok(caller),
        Some(Authentication::Refused(reason)) => Err(error(Code::Unauthenticated, *reason)),
        Some(Authentication::Anonymous) | None => Err(error(
            Code::Unauthenticated,
            "sign in first: send Authorization: Bearer <access token or API token>",
        )),
    }
}

/// The signed-in agent (integrators have no password or session), or an error.
pub fn signed_in_agent(ctx: &Context<'_>) -> Result<domain::AgentId> {
    caller(ctx)?.agent_id().ok_or_else(|| {
        error(
            Code::Forbidden,
            "only a signed-in agent can do this, not an API token",
        )
    })
}

/// The agent a ticket command is done in the name of: the signed-in agent, or for an API
/// token the admin who created it. A token's commands carry the token as their actor (who
/// sent them) and the admin as the agent (whose reply or note it is), so the customer and the
/// panel see an author and the audit trail sees the integration. A token whose admin has been
/// deactivated or is no longer an admin writes nothing (`FORBIDDEN`); its read scopes still
/// work, and an admin revokes it as any other.
///
/// # Errors
/// `UNAUTHENTICATED` without a caller, `FORBIDDEN` for a token whose admin may no longer act,
/// `INTERNAL` when the agent cannot be read.
pub async fn acting_agent(ctx: &Context<'_>) -> Result<domain::AgentId> {
    match caller(ctx)? {
        Caller::Agent { id, .. } => Ok(*id),
        Caller::Integrator { created_by, .. } => {
            let api = ctx.data_unchecked::<super::context::Api>();
            let agent = api
                .commands
                .state::<domain::agent::Agent>(domain::StreamId::Agent(*created_by))
                .await
                .map_err(|e| super::error::internal("cannot read the agent", e))?;
            match agent {
                domain::agent::Agent::Invited(state)
                    if state.active && state.role == domain::agent::Role::Admin =>
                {
                    Ok(*created_by)
                }
                _ => Err(error(
                    Code::Forbidden,
                    "the admin who created this API token is no longer an active admin: \
                     create a new token",
                )),
            }
        }
    }
}

/// Which tickets the caller may see and work: an agent (role `agent`) with categories sees
/// only tickets in them, read from the `agents` read model; every other caller sees all.
///
/// # Errors
/// `UNAUTHENTICATED` without a caller, `INTERNAL` when the database fails.
pub async fn ticket_scope(ctx: &Context<'_>) -> Result<TicketScope> {
    let api = ctx.data_unchecked::<super::context::Api>();
    scope_of(&api.pool, caller(ctx)?)
        .await
        .map_err(super::error::database)
}

/// [`ticket_scope`] of `caller`, outside a request.
///
/// # Errors
/// When the database fails.
pub async fn scope_of(pool: &sqlx::PgPool, caller: &Caller) -> sqlx::Result<TicketScope> {
    match caller {
        Caller::Agent {
            id,
            role: domain::agent::Role::Agent,
            ..
        } => {
            let categories =
                projections::directory::queries::agent_categories(pool, id.as_uuid()).await?;
            Ok(match categories {
                Some(categories) if !categories.is_empty() => TicketScope::Categories(categories),
                _ => TicketScope::All,
            })
        }
        _ => Ok(TicketScope::All),
    }
}

/// Refuses a ticket the caller may not work on, for commands: a caller whose scope is every
/// ticket passes without a read (the command loads the ticket from the log, and an unknown
/// ticket is rejected there with `NOT_FOUND`); a category-scoped agent passes only for a
/// ticket the read model files under one of their categories, as [`visible_ticket`] checks.
///
/// # Errors
/// `NOT_FOUND` for a ticket outside the caller's categories.
pub async fn may_work_on(ctx: &Context<'_>, ticket: uuid::Uuid) -> Result<()> {
    let scope = ticket_scope(ctx).await?;
    if scope == TicketScope::All {
        return Ok(());
    }
    ticket_in(ctx, &scope, ticket).await.map(|_| ())
}

/// The ticket's category if the caller may see it, else `NOT_FOUND` (a ticket outside an
/// agent's categories is as good as absent to them).
///
/// # Errors
/// `NOT_FOUND` for an unknown or out-of-scope ticket.
pub async fn visible_ticket(ctx: &Context<'_>, ticket: uuid::Uuid) -> Result<Option<uuid::Uuid>> {
    let scope = ticket_scope(ctx).await?;
    ticket_in(ctx, &scope, ticket).await
}

/// The ticket's category if the read model has it within `scope`, else `NOT_FOUND`.
///
/// # Errors
/// `NOT_FOUND` for an unknown or out-of-scope ticket.
pub async fn ticket_in(
    ctx: &Context<'_>,
    scope: &TicketScope,
    ticket: uuid::Uuid,
) -> Result<Option<uuid::Uuid>> {
    let api = ctx.data_unchecked::<super::context::Api>();
    let row = projections::tickets::queries::category(&api.pool, ticket)
        .await
        .map_err(super::error::database)?;
    match row {
        Some(category) if scope.covers(category) => Ok(category),
        _ => Err(error(Code::NotFound, "no such ticket")),
    }
}
