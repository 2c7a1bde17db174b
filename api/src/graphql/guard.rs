//! Role checks. Every resolver that reads or changes data carries `guard = "Need(…)"`; the few
//! that only need a signed-in agent call [`signed_in_agent`].
//!
//! Every check uses the caller's state as of the log: an HTTP request's caller is read from
//! the log when its credential is checked (once per request), and a WebSocket's, taken at
//! `connection_init`, is read again for each operation it starts ([`current`]) and for each
//! item a subscription delivers ([`LiveScope`]). A read model that lags never decides.

use std::borrow::Cow;

use async_graphql::{Context, Guard, Result};
use eventlog::Position;

use super::error::{Code, error, until_available};
use crate::auth::{Authentication, Caller, Permission, TicketScope};
use crate::live::LiveHub;
use crate::live::agents::Freshness;

/// Marks the operations of a WebSocket: their [`Authentication`] is the one `connection_init`
/// accepted, so the caller's role and categories are read again before use.
#[derive(Debug, Clone, Copy)]
pub struct OnSocket;

/// Allows the field when the caller holds the permission: `UNAUTHENTICATED` without a valid
/// credential, `FORBIDDEN` without the permission.
#[derive(Debug, Clone, Copy)]
pub struct Need(pub Permission);

impl Guard for Need {
    async fn check(&self, ctx: &Context<'_>) -> Result<()> {
        let caller = current(ctx).await?;
        refuse_unless(&caller, self.0)
    }
}

/// `FORBIDDEN` unless `caller` holds `permission`.
fn refuse_unless(caller: &Caller, permission: Permission) -> Result<()> {
    if caller.may(permission) {
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
        Caller::Agent {
            must_enrol_second_factor: true,
            ..
        } => error(
            Code::Forbidden,
            "your role must sign in with a second factor: enrol one first \
             (mutations enrolSecondFactor, confirmSecondFactor)",
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
        Some(Authentication::Unavailable) => Err(super::error::unavailable()),
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
                .map_err(|e| super::error::failed("cannot read the agent", e))?;
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

/// The caller as of the log: over HTTP the caller the request authenticated (read from the
/// log then), over a WebSocket the socket's caller read again now.
///
/// # Errors
/// `UNAUTHENTICATED` without a caller or for an agent deactivated since, `INTERNAL` when the
/// log cannot be read.
pub async fn current<'a>(ctx: &Context<'a>) -> Result<Cow<'a, Caller>> {
    let caller = caller(ctx)?;
    if ctx.data_opt::<OnSocket>().is_none() {
        return Ok(Cow::Borrowed(caller));
    }
    // An operation's top field reads the log; the fields under it (also those of each item a
    // subscription delivers, checked first by `LiveScope`) take the state remembered since,
    // which is at least as recent.
    let top = ctx
        .path_node
        .as_ref()
        .is_none_or(|node| node.parent.is_none());
    let fresh = if top {
        Freshness::Now
    } else {
        Freshness::Remembered
    };
    let api = ctx.data_unchecked::<super::context::Api>();
    refreshed(&api.live, caller, fresh).await.map(Cow::Owned)
}

/// `caller` with the role and categories the log has for them, as `fresh` as asked.
async fn refreshed(live: &LiveHub, caller: &Caller, fresh: Freshness) -> Result<Caller> {
    let Caller::Agent {
        id,
        must_change_password,
        must_enrol_second_factor,
        ..
    } = caller
    else {
        return Ok(caller.clone());
    };
    let snapshot = live
        .agent(id.as_uuid(), fresh)
        .await
        .map_err(|e| super::error::failed("cannot read the agent", e))?;
    match &snapshot.state {
        domain::agent::Agent::Invited(state) if state.active => Ok(Caller::Agent {
            id: *id,
            role: state.role,
            categories: state.categories.iter().map(|c| c.as_uuid()).collect(),
            must_change_password: *must_change_password,
            must_enrol_second_factor: *must_enrol_second_factor,
        }),
        _ => Err(error(Code::Unauthenticated, "this account is deactivated")),
    }
}

/// Which tickets the caller may see and work, as of the log (see [`current`]): an agent
/// (role `agent`) with categories sees only tickets in them; every other caller sees all.
///
/// # Errors
/// As [`current`].
pub async fn ticket_scope(ctx: &Context<'_>) -> Result<TicketScope> {
    Ok(current(ctx).await?.ticket_scope())
}

/// What a subscription checks each item against before delivering it: the caller's
/// permission and ticket scope as of the log at the item's position, so a change of role or
/// categories, or a deactivation, applies from the first item after it.
#[derive(Debug, Clone)]
pub struct LiveScope {
    live: LiveHub,
    caller: Caller,
    permission: Permission,
}

impl LiveScope {
    /// The scope of the subscription in `ctx`, which needs `permission`.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` without a caller.
    pub fn of(ctx: &Context<'_>, permission: Permission) -> Result<LiveScope> {
        let api = ctx.data_unchecked::<super::context::Api>();
        Ok(LiveScope {
            live: api.live.clone(),
            caller: caller(ctx)?.clone(),
            permission,
        })
    }

    /// The scope of a feed `caller` follows, which needs `permission` (outside a resolver:
    /// tests of the checks).
    pub fn new(live: LiveHub, caller: Caller, permission: Permission) -> LiveScope {
        LiveScope {
            live,
            caller,
            permission,
        }
    }

    /// The tickets the caller may see as of `at`. While the database cannot be reached the
    /// check waits for it (see [`until_available`]): the item is neither refused nor skipped.
    ///
    /// # Errors
    /// `UNAUTHENTICATED` for an agent deactivated since, `FORBIDDEN` when their role lost the
    /// permission, `INTERNAL` when the log cannot be read.
    pub async fn at(&self, at: Position) -> Result<TicketScope> {
        let caller =
            until_available(|| refreshed(&self.live, &self.caller, Freshness::At(at))).await?;
        refuse_unless(&caller, self.permission)?;
        Ok(caller.ticket_scope())
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
