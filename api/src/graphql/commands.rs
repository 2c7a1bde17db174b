//! How mutations run commands: one mutation per domain command, each taking one `input` and
//! answering a payload with the log `position` it wrote (null when nothing changed) and the ids
//! involved.
//!
//! Resolvers check the caller, build the command with server-side ids and time, and send it
//! through [`app::commands::CommandService`] with [`timed`], which records how long it
//! took in `/metrics`; they hold no business rules (the deciders do).
//!
//! Inputs may carry an `idempotencyKey`: a retried mutation with the same key (from the same
//! caller, to the same mutation) has one effect and answers with the first result. The key is
//! stored with a SHA-256 digest of the mutation's name and arguments (see [`input_digest`]), so
//! the same key sent with another input is refused (`CONFLICT`) instead of answered with the
//! result of different work.

use std::future::Future;
use std::time::Instant;

use app::commands::{CommandContext, CommandError, Executed};
use async_graphql::{Context, ID, Name, Result, Value};
use eventlog::Position;
use sha2::{Digest, Sha256};

use super::context::Api;
use super::error::{Code, error};
use super::guard::caller;

/// The longest idempotency key a client may send.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// The context for the caller's command in mutation `mutation` (the field `ctx` resolves),
/// under the client's idempotency key if any. The key is namespaced by mutation and caller, so
/// one caller's key can never replay another caller's result, and carries the digest of the
/// mutation's arguments.
///
/// # Errors
/// `UNAUTHENTICATED` without a caller; `VALIDATION` for a blank or overlong key.
pub(crate) fn context(
    ctx: &Context<'_>,
    mutation: &str,
    idempotency_key: Option<&str>,
) -> Result<CommandContext> {
    let caller = caller(ctx)?;
    let command_ctx = Api::context_for(caller);
    let Some(key) = idempotency_key else {
        return Ok(command_ctx);
    };
    let length = key.chars().count();
    if key.trim().is_empty() || length > MAX_IDEMPOTENCY_KEY_CHARS {
        return Err(error(
            Code::Validation,
            format!("idempotencyKey must be 1 to {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
        ));
    }
    let actor = caller.actor();
    let digest = input_digest(mutation, &ctx.field().arguments()?);
    Ok(command_ctx
        .idempotent(stored_key(
            mutation,
            &format!("{:?}:{}", actor.kind, actor.id),
            key,
        ))
        .with_input_digest(digest))
}

/// The most characters the log keeps of an idempotency key.
const MAX_STORED_KEY_CHARS: usize = 200;

/// The key as the log stores it: `graphql:{mutation}:{caller}:{key}`, or, when that is longer
/// than the log keeps, `graphql:{mutation}:sha256:{hex}` over that same text, so that every key
/// of up to [`MAX_IDEMPOTENCY_KEY_CHARS`] characters works for every caller and mutation. (A
/// key that fits is kept as it is, so keys stored before this form existed still match.)
fn stored_key(mutation: &str, caller: &str, key: &str) -> String {
    let full = format!("graphql:{mutation}:{caller}:{key}");
    if full.chars().count() <= MAX_STORED_KEY_CHARS {
        return full;
    }
    format!(
        "graphql:{mutation}:sha256:{}",
        hex::encode(Sha256::digest(full.as_bytes()))
    )
}

/// The SHA-256 digest of a mutation's name and arguments (variables substituted), as one
/// canonical text: object fields sorted by name, enum values written as strings, and the
/// `idempotencyKey` field of each argument left out. Two requests get the same digest exactly
/// when they carry the same values, however the client ordered or spelled them (inline or as
/// variables).
pub(crate) fn input_digest(mutation: &str, arguments: &[(Name, Value)]) -> [u8; 32] {
    let mut arguments: Vec<&(Name, Value)> = arguments.iter().collect();
    arguments.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    let mut text = String::new();
    canonical_string(mutation, &mut text);
    for (name, value) in arguments {
        text.push(' ');
        canonical_string(name.as_str(), &mut text);
        text.push(':');
        canonical(value, &mut text, true);
    }
    Sha256::digest(text.as_bytes()).into()
}

/// Writes `value` as canonical JSON text; `argument` drops the top level's `idempotencyKey`.
fn canonical(value: &Value, out: &mut String, argument: bool) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => canonical_string(text, out),
        Value::Enum(name) => canonical_string(name.as_str(), out),
        Value::Boolean(true) => out.push_str("true"),
        Value::Boolean(false) => out.push_str("false"),
        Value::Binary(bytes) => canonical_string(&hex::encode(bytes), out),
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out, false);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            let mut fields: Vec<_> = fields
                .iter()
                .filter(|(name, _)| !(argument && name.as_str() == "idempotencyKey"))
                .collect();
            fields.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
            out.push('{');
            for (i, (name, field)) in fields.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_string(name.as_str(), out);
                out.push(':');
                canonical(field, out, false);
            }
            out.push('}');
        }
    }
}

/// Writes `text` as a JSON string.
fn canonical_string(text: &str, out: &mut String) {
    // Serializing a `str` to JSON cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
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
        Err(CommandError::Conflict { .. }) => "contended",
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

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use async_graphql::{Name, Value};

    use super::{MAX_IDEMPOTENCY_KEY_CHARS, MAX_STORED_KEY_CHARS, input_digest, stored_key};

    #[test]
    fn every_valid_key_fits_the_log_and_stays_distinct() {
        let caller = format!("Integrator:{}", uuid::Uuid::now_v7());
        let long = "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS);
        let other = format!("{}j", "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS - 1));
        let mutation = "setCustomerAutoReplyDisabledForEveryone";
        let stored = stored_key(mutation, &caller, &long);
        assert!(stored.chars().count() <= MAX_STORED_KEY_CHARS, "{stored}");
        assert_eq!(stored, stored_key(mutation, &caller, &long));
        assert_ne!(stored, stored_key(mutation, &caller, &other));
        assert_ne!(stored, stored_key(mutation, "Agent:x", &long));
        assert_ne!(stored, stored_key("tagTicket", &caller, &long));
        // A key that fits is kept as it is.
        assert_eq!(
            stored_key("tagTicket", "Agent:a", "k1"),
            "graphql:tagTicket:Agent:a:k1"
        );
    }

    fn input(json: serde_json::Value) -> Vec<(Name, Value)> {
        vec![(Name::new("input"), Value::from_json(json).unwrap())]
    }

    #[test]
    fn the_digest_ignores_field_order_and_the_key_itself() {
        let first =
            input(serde_json::json!({"ticketId": "a", "text": "hi", "idempotencyKey": "k1"}));
        let second =
            input(serde_json::json!({"idempotencyKey": "k2", "text": "hi", "ticketId": "a"}));
        assert_eq!(
            input_digest("reply", &first),
            input_digest("reply", &second)
        );
    }

    #[test]
    fn the_digest_tells_inputs_and_mutations_apart() {
        let first = input(serde_json::json!({"ticketId": "a", "text": "hi"}));
        let other_text = input(serde_json::json!({"ticketId": "a", "text": "hi!"}));
        let other_ticket = input(serde_json::json!({"ticketId": "b", "text": "hi"}));
        let nested_key =
            input(serde_json::json!({"ticketId": "a", "text": "hi", "x": {"idempotencyKey": 1}}));
        let digest = input_digest("reply", &first);
        assert_ne!(digest, input_digest("reply", &other_text));
        assert_ne!(digest, input_digest("reply", &other_ticket));
        assert_ne!(digest, input_digest("note", &first));
        assert_ne!(digest, input_digest("reply", &nested_key));
    }
}
