//! Read-your-writes: every mutation returns the log `position` it wrote; a query passing
//! `consistency: {atLeast: position}` (or the `X-Ledgerdesk-Consistency` header) waits, at
//! most [`super::context::Limits::consistency_timeout`], until the read models have applied it.

use async_graphql::{Context, InputObject, Result};
use eventlog::Position;

use super::context::Api;
use super::error::{Code, error};

/// The HTTP header that asks every query of a request to see at least a position.
pub const CONSISTENCY_HEADER: &str = "x-ledgerdesk-consistency";

/// The position a query must see, as set by the header (request data).
#[derive(Debug, Clone, Copy)]
pub struct HeaderConsistency(pub Position);

/// What a query must at least see.
#[derive(Debug, Clone, InputObject)]
pub struct ConsistencyInput {
    /// A `position` a mutation returned: the query waits until the read models include it.
    pub at_least: String,
}

/// Waits until the read models include the requested position (from the argument, or else the
/// header), if any.
///
/// # Errors
/// `VALIDATION` for a malformed position, `TIMEOUT` when the read models do not get there in
/// time, `INTERNAL` when a projection stopped on an event before it.
pub async fn consistent(ctx: &Context<'_>, input: Option<&ConsistencyInput>) -> Result<()> {
    let position = match input {
        Some(input) => Some(input.at_least.trim().parse::<Position>().map_err(|_| {
            error(
                Code::Validation,
                "consistency.atLeast is not a position this API returned",
            )
        })?),
        None => ctx.data_opt::<HeaderConsistency>().map(|header| header.0),
    };
    let Some(position) = position else {
        return Ok(());
    };
    let api = ctx.data_unchecked::<Api>();
    let names: Vec<&str> = api.projections.iter().map(|p| p.name()).collect();
    match projections::wait_for(&api.pool, &names, position, api.limits.consistency_timeout).await {
        Ok(()) => Ok(()),
        Err(projections::WaitError::Timeout {
            waited, lagging, ..
        }) => Err(error(
            Code::Timeout,
            format!(
                "the read models did not reach the position within {} ms (behind: {})",
                waited.as_millis(),
                lagging.join(", ")
            ),
        )),
        Err(other) => Err(super::error::failed(
            "read models cannot reach the position",
            other,
        )),
    }
}

/// Waits until the read model `model` has applied the log up to `position`, for a
/// subscription item about the event there.
///
/// # Errors
/// `TIMEOUT` when it does not get there within `timeout` (the client resubscribes),
/// `INTERNAL` when it cannot be read.
pub async fn wait_for_model(
    pool: &sqlx::PgPool,
    model: &str,
    position: Position,
    timeout: std::time::Duration,
) -> Result<()> {
    projections::wait_for(pool, &[model], position, timeout)
        .await
        .map_err(|detail| match detail {
            projections::WaitError::Timeout { .. } => error(
                Code::Timeout,
                format!("the {model} read model is behind; resubscribe to retry"),
            ),
            other => super::error::failed("a read model cannot be read", other),
        })
}
