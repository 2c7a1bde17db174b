//! Updates posted by Telegram to our own HTTP server.
//!
//! [`routes`] mounts one `POST` route at the webhook URL's path, on the same axum server as
//! the API. Each request must carry the secret in `X-Telegram-Bot-Api-Secret-Token` (compared
//! in constant time); anything else is answered 401 and records nothing. A body that is not an
//! update is answered 400 and records nothing; a body over [`MAX_UPDATE_BYTES`] 413.
//!
//! An update teloxide cannot read is handed on with its JSON, as polling does, and read as far
//! as it can be (see [`crate::update`]).
//!
//! The answer comes after the update is handled: 200 when it is recorded, ignored, refused
//! for good or kept among the updates that can never be recorded, 500 when the log failed for
//! a reason that may pass, so that Telegram delivers it again (handling is idempotent, see
//! [`crate::inbound`]).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use teloxide::types::Update;

use crate::inbound::{Handled, Inbox};
use crate::update;

/// The header Telegram sends the secret in.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// The largest update body accepted. Updates are small JSON (media come as file ids); 1 MiB
/// leaves a wide margin.
pub const MAX_UPDATE_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
struct Webhook {
    inbox: Arc<Inbox>,
    secret: Arc<SecretString>,
}

/// The webhook route at `path`, handing updates to `inbox` when they carry `secret`.
pub fn routes(path: &str, inbox: Arc<Inbox>, secret: SecretString) -> Router {
    Router::new()
        .route(path, post(receive))
        .layer(DefaultBodyLimit::max(MAX_UPDATE_BYTES))
        .with_state(Webhook {
            inbox,
            secret: Arc::new(secret),
        })
}

async fn receive(State(webhook): State<Webhook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let given = headers
        .get(SECRET_HEADER)
        .map(|value| value.as_bytes())
        .unwrap_or_default();
    if !same_secret(given, webhook.secret.expose_secret().as_bytes()) {
        tracing::warn!("webhook request without the right secret token refused");
        return StatusCode::UNAUTHORIZED;
    }
    let mut update: Update = match serde_json::from_slice(&body) {
        Ok(update) => update,
        Err(error) => {
            // The position only: the body may hold personal data.
            tracing::warn!(
                line = error.line(),
                column = error.column(),
                "webhook body is not a Telegram update"
            );
            return StatusCode::BAD_REQUEST;
        }
    };
    // teloxide keeps nothing of an update it cannot read (and no content of a message whose
    // kind it does not know); the JSON is read again from the body, so that
    // `crate::update` reads what it can.
    if update::needs_raw(&update)
        && let Ok(raw) = serde_json::from_slice(&body)
    {
        update::with_raw(&mut update, raw);
    }
    match webhook.inbox.handle_raw(&update, Some(&body)).await {
        Ok(
            Handled::Recorded
            | Handled::Duplicate
            | Handled::Ignored(_)
            | Handled::Refused(_)
            | Handled::Unrecorded(_),
        ) => StatusCode::OK,
        Err(error) => {
            tracing::error!(update_id = update.id.0, %error, "update not recorded, Telegram will retry");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

/// Compares in constant time, so the time taken does not tell how much of a guess was right
/// (a length that differs answers at once; the length is no secret).
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.ct_eq(expected).into()
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn only_the_exact_secret_matches() {
        assert!(same_secret(b"abc-123", b"abc-123"));
        assert!(!same_secret(b"abc-124", b"abc-123"));
        assert!(!same_secret(b"abc-12", b"abc-123"));
        assert!(!same_secret(b"", b"abc-123"));
    }
}
