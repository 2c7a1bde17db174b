//! The delivery worker's calls to the Bot API: teloxide's HTTP client, URL scheme and payload
//! types, but our own reading of the answer.
//!
//! teloxide's request path sleeps 10 seconds before it even reads an answer with a 5xx status
//! (`DELAY_ON_SERVER_ERROR` in teloxide-core), which would stall a chat lane on every server
//! error; here every answer is read at once and the worker's own backoff decides when to try
//! again. Reading the answer ourselves also gives Telegram's `error_code`, so errors are told
//! apart by it rather than by their description, and an accepted message needs nothing of the
//! answer but its `message_id`: a message teloxide could not parse is still known as sent.
//!
//! Nothing here keeps an error's text that could hold the token (reqwest's errors carry the
//! request URL) or the message (an unreadable answer may echo it).

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use teloxide::Bot;
use teloxide::requests::Payload;

/// Why a call did not go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallError {
    /// Telegram asked the whole bot to wait this long (`parameters.retry_after`).
    RetryAfter(Duration),
    /// The group became a supergroup: the chat id is stale.
    Migrated,
    /// Telegram refused: its `error_code` (the HTTP status when it gave none) and description.
    Api { code: u16, description: String },
    /// The request or its answer was lost on the way.
    Network(&'static str),
    /// The answer is not the Bot API's JSON; the HTTP status.
    Unreadable { status: u16 },
}

/// The Bot API's envelope. `result` stays raw: each caller takes only what it needs from it.
#[derive(Debug, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    error_code: Option<u16>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
}

#[derive(Debug, Deserialize)]
struct Parameters {
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    migrate_to_chat_id: Option<i64>,
}

/// What a successful send answers: the message, of which only its id matters here.
#[derive(Debug, Deserialize)]
struct SentMessage {
    message_id: i32,
}

/// Calls the method of `payload` (as JSON: media go by file id or URL, never uploaded) and
/// returns its raw `result`.
pub(super) async fn call<P>(bot: &Bot, payload: &P) -> Result<serde_json::Value, CallError>
where
    P: Payload + Serialize,
{
    let mut url = bot.api_url();
    match url.path_segments_mut() {
        Ok(mut segments) => {
            segments.push(&format!("bot{}", bot.token()));
            segments.push(P::NAME);
        }
        Err(()) => {
            return Err(CallError::Api {
                code: 0,
                description: "the Bot API URL cannot take a path".to_owned(),
            });
        }
    }
    let body = serde_json::to_vec(payload).map_err(|_| CallError::Api {
        code: 0,
        description: "the request cannot be written as JSON".to_owned(),
    })?;
    let response = bot
        .client()
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|error| network(&error))?;
    read_answer(response).await
}

/// Sends a multipart body (a file uploaded with its parameters) to `method`; returns the raw
/// `result`.
pub(super) async fn call_multipart(
    bot: &Bot,
    method: &str,
    form: reqwest::multipart::Form,
) -> Result<serde_json::Value, CallError> {
    let mut url = bot.api_url();
    match url.path_segments_mut() {
        Ok(mut segments) => {
            segments.push(&format!("bot{}", bot.token()));
            segments.push(method);
        }
        Err(()) => {
            return Err(CallError::Api {
                code: 0,
                description: "the Bot API URL cannot take a path".to_owned(),
            });
        }
    }
    // Not teloxide's client: its whole-request timeout (17 s) would cut large uploads off.
    let response = upload_client()
        .post(url)
        .multipart(form)
        .send()
        .await
        .map_err(|error| network(&error))?;
    read_answer(response).await
}

/// The HTTP client of uploads: connect and read timeouts, none on the whole request.
fn upload_client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(120))
                .build()
                .unwrap_or_default()
        })
        .clone()
}

/// Reads the Bot API's answer: its `result`, or the error it stands for.
async fn read_answer(response: reqwest::Response) -> Result<serde_json::Value, CallError> {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|error| network(&error))?;
    let Ok(answer) = serde_json::from_slice::<Answer>(&bytes) else {
        return Err(CallError::Unreadable { status });
    };
    if answer.ok {
        return Ok(answer.result.unwrap_or(serde_json::Value::Null));
    }
    let parameters = answer.parameters.unwrap_or(Parameters {
        retry_after: None,
        migrate_to_chat_id: None,
    });
    if let Some(seconds) = parameters.retry_after {
        return Err(CallError::RetryAfter(Duration::from_secs(seconds)));
    }
    if parameters.migrate_to_chat_id.is_some() {
        return Err(CallError::Migrated);
    }
    Err(CallError::Api {
        code: answer.error_code.unwrap_or(status),
        description: answer
            .description
            .unwrap_or_else(|| format!("error {status} without a description")),
    })
}

/// Sends a message; returns Telegram's id for it.
pub(super) async fn send<P>(bot: &Bot, payload: &P) -> Result<i32, CallError>
where
    P: Payload + Serialize,
{
    let result = call(bot, payload).await?;
    parse::<SentMessage>(result).map(|sent| sent.message_id)
}

/// The part of an accepted call's `result` that matters. Only the message id is read, so any
/// message Telegram can describe passes; a `result` without one is not the Bot API's answer.
fn parse<T: DeserializeOwned>(result: serde_json::Value) -> Result<T, CallError> {
    serde_json::from_value(result).map_err(|_| CallError::Unreadable { status: 200 })
}

/// A network error named by its kind only (its text holds the URL, hence the token).
fn network(error: &reqwest::Error) -> CallError {
    CallError::Network(if error.is_timeout() {
        "network error: Telegram did not answer in time"
    } else if error.is_connect() {
        "network error: could not connect to Telegram"
    } else if error.is_body() || error.is_decode() {
        "network error: the answer was cut off"
    } else {
        "network error"
    })
}
