//! The write side of the API: one mutation per domain command, each taking one `input` and
//! answering a payload with the log `position` it wrote (null when nothing changed) and the ids
//! involved.
//!
//! Resolvers check the caller, build the command with server-side ids and time, and send it
//! through [`app::commands::CommandService`]; they hold no business rules (the deciders
//! do) and no SQL beyond the guards' and the broadcast audience count.
//!
//! Inputs may carry an `idempotencyKey`: a retried mutation with the same key (from the same
//! caller, to the same mutation) has one effect and answers with the first result.

pub mod broadcasts;
pub mod customers;
pub mod settings;
pub mod tickets;

use app::commands::{CommandContext, Executed};
use async_graphql::{ID, Result};
use eventlog::Position;

use super::Api;
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
