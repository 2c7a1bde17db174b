//! How mutations run commands: one mutation per domain command, each taking one `input` and
//! answering a payload with the log `position` it wrote (null when nothing changed) and the ids
//! involved.
//!
//! Resolvers check the caller, build the command with server-side ids and time, and send it
//! through [`app::commands::CommandService`] with [`timed`], which records how long it
//! took in `/metrics`; they hold no business rules (the deciders do).
//!
//! Inputs may carry an `idempotencyKey`: a retried mutation with the same key (from the same
//! caller, to the same mutation) has one effect and answers with the first result.

use std::future::Future;
use std::time::Instant;

use app::commands::{CommandContext, CommandError, Executed};
use async_graphql::{ID, Result};
use eventlog::Position;

use super::context::Api;
use super::error::{Code, error};
use crate::auth::Caller;

/// The longest idempotency key a client may send.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// The context for `caller`'s command in mutation `mutation`, under the client's idempotency
/// key if any. The key is namespaced by mutation and caller, so one caller's key can never
/// replay another caller's result.
///
/// # Errors
/// `VALIDATION` for a blank or overlong key.
pub(crate) fn context(
    caller: &Caller,
    mutation: &str,
    idempotency_key: Option<&str>,
) -> Result<CommandContext> {
    let ctx = Api::context_for(caller);
    let Some(key) = idempotency_key else {
        return Ok(ctx);
    };
    let length = key.chars().count();
    if key.trim().is_empty() || length > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(error(
            Code::Validation,
            format!("idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
        ));
    }
    let actor = caller.actor();
    Ok(ctx.idempotent(format!(
        "graphql:{mutation}:{:?}:{}:{key}",
        actor.kind, actor.id
    )))
}

/// Runs a command for `aggregate` (`ticket`, `customer`, `agent`, `broadcast`, `settings`),
/// recording how long it took and how it ended in `/metrics`.
///
/// # Errors
/// The command's.
pub(crate) async fn timed<T, E>(
    aggregate: &'static str,
    command: impl Future<Output = Result<T, CommandError<E>>>,
) -> Result<T, CommandError<E>> {
    let started = Instant::now();
    let result = command.await;
    let outcome = match &result {
        Ok(_) => "ok",
        Err(CommandError::Rejected(_)) => "rejected",
        Err(CommandError::Conflict { .. }) => "conflict",
        Err(_) => "error",
    };
    crate::metrics::command_ran(aggregate, outcome, started.elapsed());
    result
}

/// The position a command wrote, as the API shows it.
pub(crate) fn position<E>(executed: &Executed<E>) -> Option<String> {
    executed.position.map(|p: Position| p.to_string())
}

/// A uuid from a mutation input (a bare uuid or a global id of `kind`).
///
/// # Errors
/// `VALIDATION` when it is neither.
pub(crate) fn uuid(kind: &str, id: &ID) -> Result<uuid::Uuid> {
    super::ids::uuid_of(kind, id)
}
