//! A fake Telegram Bot API server that the real teloxide client talks to.
//!
//! Telegram's servers are out of reach in tests, so each test starts one of these on
//! `127.0.0.1:0` and points a `teloxide::Bot` at it ([`FakeTelegram::bot`]). It answers the way
//! the Bot API does, as far as Ledgerdesk uses it:
//!
//! - requests arrive at `/bot{token}/{Method}`; method names are matched case-insensitively
//!   (teloxide sends `SendMessage`), and parameters come as JSON or as multipart/form-data
//!   (teloxide sends `sendPhoto` & co. as multipart even for file ids);
//! - every call is recorded as it arrives, in order, as a [`Call`];
//! - `getUpdates` serves the updates a test queued with [`FakeTelegram::push_update`],
//!   dropping those below `offset` as Telegram does, and long-polls (at most a second) when
//!   there is none;
//! - `getMe` describes the bot; `getWebhookInfo` reports no webhook; every `send*` method,
//!   `forwardMessage` and `editMessage*` answer with a `Message` teloxide can parse (message ids
//!   count up from 1, the chat is the `chat_id` asked for); `copyMessage` answers a
//!   `MessageId`; any other method (`setWebhook`, `deleteWebhook`, `answerCallbackQuery`,
//!   `sendChatAction`, `setMyCommands`…) answers `true`;
//! - scripted failures ([`Failure`]) answer the next calls of a method
//!   ([`FakeTelegram::fail_next`]) or the next sends to a chat ([`FakeTelegram::fail_chat`]);
//!   [`FakeTelegram::block_chat`] makes every later send to a chat answer 403 "bot was blocked";
//!   [`FakeTelegram::slow_down`] makes a method answer late;
//!   [`FakeTelegram::go_down`] answers every call with one failure until
//!   [`FakeTelegram::come_back`] (an outage of any length);
//! - [`FakeTelegram::enforce_caps`] makes it enforce Telegram's rate limits (so many sends a
//!   second over all chats, one a second per chat), answering 429 with `retry_after` beyond.
//!
//! Multipart parameters are recorded as JSON strings, except those whose text is a JSON object
//! or array (teloxide sends `reply_markup` that way), which are recorded parsed; an uploaded
//! file is recorded as `{"file_name": …, "size": …}`. Read them through [`Call`]'s helpers,
//! which accept both forms (`chat_id` is a number in JSON and a string in multipart).
//!
//! Files: [`FakeTelegram::add_file`] makes a file `getFile` describes and
//! `/file/bot{token}/{path}` serves (counted in [`FakeTelegram::downloads`]), with a
//! [`FileServing`] to play a slow download, a connection dropped halfway, a 404, or a file over
//! the Bot API's 20 MB limit (`getFile` answers "file is too big"). `getFile` of an unknown file
//! id answers 400.
//!
//! Waiting: use [`FakeTelegram::wait_for_calls`] (polls until enough calls arrived or a
//! timeout passes, through [`crate::eventually`]), never a fixed sleep.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use teloxide::Bot;
use tokio::sync::Notify;

use crate::eventually;

/// The token of [`FakeTelegram::bot`]. Its numeric prefix is the bot's user id.
pub const TOKEN: &str = "4242424242:AAFake-token_for-tests";

/// The bot's user id, as `getMe` and sent messages report it.
pub const BOT_ID: i64 = 4_242_424_242;

/// The bot's username, as `getMe` reports it.
pub const BOT_USERNAME: &str = "ledgerdesk_test_bot";

/// The longest a `getUpdates` call waits for an update before answering an empty list.
const LONG_POLL_CAP: Duration = Duration::from_secs(1);

/// One request the server received.
#[derive(Debug, Clone, PartialEq)]
pub struct Call {
    /// The method name, lower-cased (`sendmessage`).
    pub method: String,
    /// The parameters, as a JSON object.
    pub params: Value,
    /// The bot token from the URL.
    pub token: String,
    /// The scripted failure this call was answered with, if any.
    pub failure: Option<Failure>,
    /// The id of the message the call was answered with (sends and edits that succeeded).
    pub message_id: Option<i32>,
    /// When the call arrived.
    pub at: std::time::Instant,
}

impl Call {
    /// A parameter as text: a JSON string as is, a number or bool in its JSON form.
    pub fn param(&self, name: &str) -> Option<String> {
        match self.params.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// A parameter holding JSON (`reply_markup`…), parsed whether it came as JSON or as
    /// multipart text.
    pub fn json_param(&self, name: &str) -> Option<Value> {
        match self.params.get(name)? {
            Value::String(s) => serde_json::from_str(s).ok(),
            Value::Null => None,
            other => Some(other.clone()),
        }
    }

    /// `chat_id` as a number (`None` for `@channel` names or when absent).
    pub fn chat_id(&self) -> Option<i64> {
        chat_id_of(&self.params)
    }

    /// `text`, or else `caption`.
    pub fn text(&self) -> Option<String> {
        self.param("text").or_else(|| self.param("caption"))
    }

    /// True when the call was answered successfully.
    pub fn succeeded(&self) -> bool {
        self.failure.is_none()
    }
}

/// A scripted failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// 429 "Too Many Requests: retry after N" with `parameters.retry_after` = N seconds.
    RetryAfter(u32),
    /// 403 "Forbidden: bot was blocked by the user".
    Blocked,
    /// 400 with the description "Bad Request: {0}" (e.g. "wrong file identifier/HTTP URL
    /// specified").
    BadRequest(String),
    /// Any error answer: this HTTP status and `error_code`, this description. Beware that
    /// teloxide's own request path waits 10 seconds before reading any 5xx answer (the
    /// delivery worker reads answers itself and does not).
    Api {
        /// HTTP status and `error_code`.
        code: u16,
        /// `description`.
        description: String,
    },
    /// An answer that is not the Bot API's: this HTTP status with an HTML page, as a proxy in
    /// front of Telegram answers when it cannot reach it.
    Page(u16),
    /// The connection breaks after the response headers: teloxide sees a network error.
    Dropped,
}

/// How the fake serves a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileServing {
    /// At once, whole.
    Normal,
    /// In ten pieces, this long apart.
    Slow(Duration),
    /// Half of it, then the connection breaks.
    Dropped,
    /// `getFile` answers, the download answers 404.
    Missing,
    /// Over the Bot API's download limit: `getFile` answers "Bad Request: file is too big".
    TooBig,
}

#[derive(Debug, Clone)]
struct FakeFile {
    file_id: String,
    bytes: Bytes,
    serving: FileServing,
    downloads: usize,
}

/// Which calls a script applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Calls of this (lower-cased) method.
    Method(String),
    /// Sends to this chat.
    Chat(i64),
}

#[derive(Debug)]
struct Script {
    target: Target,
    failure: Failure,
    remaining: u32,
}

#[derive(Debug, Default)]
struct Inner {
    calls: Vec<Call>,
    updates: VecDeque<Value>,
    next_update_id: i64,
    scripts: Vec<Script>,
    blocked: HashSet<i64>,
    next_message_id: i32,
    /// Methods (lower-cased) answered only after this long, as a slow Telegram would.
    delays: Vec<(String, Duration)>,
    /// While set, every call is answered with this.
    outage: Option<Failure>,
    /// Files by their path.
    files: Vec<(String, FakeFile)>,
    /// Telegram's rate limits, when the test asked for them.
    caps: Option<Caps>,
}

/// Telegram's limits as the fake enforces them (see [`FakeTelegram::enforce_caps`]).
#[derive(Debug)]
struct Caps {
    /// Sends a second over all chats.
    per_second: f64,
    /// The bucket: the sends allowed at once after a quiet moment.
    burst: f64,
    tokens: f64,
    refilled: std::time::Instant,
    /// The last accepted send to each chat.
    last_to_chat: std::collections::HashMap<i64, std::time::Instant>,
    /// Sends answered 429 because of the caps.
    refused: u64,
}

impl Caps {
    /// Whether a send to `chat` now stays within the caps; takes its place if so.
    fn admit(&mut self, chat: Option<i64>) -> bool {
        let now = std::time::Instant::now();
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        self.refilled = now;
        // One a second per chat, allowing for the network's jitter.
        let chat_ok = chat.is_none_or(|chat| {
            self.last_to_chat
                .get(&chat)
                .is_none_or(|last| now.duration_since(*last) >= Duration::from_millis(900))
        });
        if !chat_ok || self.tokens < 1.0 {
            self.refused += 1;
            return false;
        }
        self.tokens -= 1.0;
        if let Some(chat) = chat {
            self.last_to_chat.insert(chat, now);
        }
        true
    }
}

#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<Inner>,
    /// Signalled when an update is queued.
    update_queued: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test thread must not hide the calls from the others.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A running fake Bot API server. Stops when dropped.
#[derive(Debug)]
pub struct FakeTelegram {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeTelegram {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start() -> FakeTelegram {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Telegram server");
        let addr = listener.local_addr().expect("local address");
        let server = tokio::spawn(async move {
            // The server runs until the test drops it.
            let _ = axum::serve(listener, app).await;
        });
        FakeTelegram {
            addr,
            shared,
            server,
        }
    }

    /// The API base URL to give `Bot::set_api_url`.
    pub fn url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}", self.addr)).expect("a valid URL")
    }

    /// A real teloxide bot with [`TOKEN`], talking to this server.
    pub fn bot(&self) -> Bot {
        self.bot_with_token(TOKEN)
    }

    /// A real teloxide bot with another token, talking to this server.
    pub fn bot_with_token(&self, token: &str) -> Bot {
        Bot::new(token).set_api_url(self.url())
    }

    /// Queues an update for `getUpdates` and returns its `update_id`. An update without
    /// `update_id` gets the next free one; with one, later automatic ids continue after it.
    pub fn push_update(&self, mut update: Value) -> i64 {
        let id = {
            let mut inner = self.shared.lock();
            let id = match update.get("update_id").and_then(Value::as_i64) {
                Some(id) => id,
                None => {
                    let id = inner.next_update_id.max(1);
                    update["update_id"] = json!(id);
                    id
                }
            };
            inner.next_update_id = inner.next_update_id.max(id + 1);
            inner.updates.push_back(update);
            id
        };
        self.shared.update_queued.notify_waiters();
        id
    }

    /// Updates queued and not yet confirmed by an `offset`.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The calls of one method (any case: `sendMessage`, `SendMessage`), in order.
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        let method = method.to_lowercase();
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|call| call.method == method)
            .cloned()
            .collect()
    }

    /// Waits until at least `n` calls of `method` arrived and returns all of them; panics with
    /// the calls seen when `timeout` passes first.
    pub async fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> Vec<Call> {
        eventually(
            async || {
                let calls = self.calls_of(method);
                if calls.len() >= n {
                    Ok(calls)
                } else {
                    Err(format!(
                        "expected {n} {method} calls, got {}; all calls: {:#?}",
                        calls.len(),
                        self.calls()
                    ))
                }
            },
            timeout,
        )
        .await
    }

    /// Answers the next `times` calls of `method` with `failure`.
    pub fn fail_next(&self, method: &str, failure: Failure, times: u32) {
        self.shared.lock().scripts.push(Script {
            target: Target::Method(method.to_lowercase()),
            failure,
            remaining: times,
        });
    }

    /// Answers the next `times` sends (any `send*`, `forward*`, `copy*` method) to `chat_id`
    /// with `failure`.
    pub fn fail_chat(&self, chat_id: i64, failure: Failure, times: u32) {
        self.shared.lock().scripts.push(Script {
            target: Target::Chat(chat_id),
            failure,
            remaining: times,
        });
    }

    /// From now on every call of `method` is answered `delay` after it arrived (it is
    /// recorded at once), as a slow Telegram would: it widens the time a handler is busy.
    pub fn slow_down(&self, method: &str, delay: Duration) {
        self.shared
            .lock()
            .delays
            .push((method.to_lowercase(), delay));
    }

    /// From now on every send to `chat_id` answers 403 "Forbidden: bot was blocked by the user".
    pub fn block_chat(&self, chat_id: i64) {
        self.shared.lock().blocked.insert(chat_id);
    }

    /// From now on every call (any method, any chat) is answered with `failure`.
    pub fn go_down(&self, failure: Failure) {
        self.shared.lock().outage = Some(failure);
    }

    /// Ends [`FakeTelegram::go_down`].
    pub fn come_back(&self) {
        self.shared.lock().outage = None;
    }

    /// Lifts [`FakeTelegram::block_chat`].
    pub fn unblock_chat(&self, chat_id: i64) {
        self.shared.lock().blocked.remove(&chat_id);
    }

    /// From now on enforces Telegram's limits on sends: at most `per_second` over all chats
    /// (a token bucket holding a tenth of a second's worth, at least 2, so a sender pacing at
    /// exactly the rate never meets it) and one a second per chat. A send over them is
    /// answered 429 "Too Many Requests: retry after 1" with `retry_after` 1, as Telegram does.
    pub fn enforce_caps(&self, per_second: u32) {
        let burst = (f64::from(per_second) / 10.0).max(2.0);
        self.shared.lock().caps = Some(Caps {
            per_second: f64::from(per_second),
            burst,
            tokens: burst,
            refilled: std::time::Instant::now(),
            last_to_chat: std::collections::HashMap::new(),
            refused: 0,
        });
    }

    /// Sends answered 429 because of [`FakeTelegram::enforce_caps`].
    pub fn refused_by_caps(&self) -> u64 {
        self.shared
            .lock()
            .caps
            .as_ref()
            .map_or(0, |caps| caps.refused)
    }

    /// How many sends each chat accepted (Telegram answered with a message).
    pub fn accepted_per_chat(&self) -> std::collections::HashMap<i64, usize> {
        let mut counts = std::collections::HashMap::new();
        for call in &self.shared.lock().calls {
            if call.message_id.is_some()
                && is_send(&call.method)
                && let Some(chat) = call.chat_id()
            {
                *counts.entry(chat).or_insert(0) += 1;
            }
        }
        counts
    }

    /// How many calls arrived so far (cheaper than [`FakeTelegram::calls`]).
    pub fn call_count(&self) -> usize {
        self.shared.lock().calls.len()
    }

    /// Makes a file with `file_id` (and `file_unique_id` `u-{file_id}`) that `getFile`
    /// describes and the file path serves as `serving` says.
    pub fn add_file(&self, file_id: &str, bytes: impl Into<Bytes>, serving: FileServing) {
        let mut inner = self.shared.lock();
        let path = format!("files/file_{}.bin", inner.files.len());
        inner.files.push((
            path,
            FakeFile {
                file_id: file_id.to_owned(),
                bytes: bytes.into(),
                serving,
                downloads: 0,
            },
        ));
    }

    /// How many times the file with `file_id` was downloaded (requests of its path).
    pub fn downloads(&self, file_id: &str) -> usize {
        self.shared
            .lock()
            .files
            .iter()
            .filter(|(_, file)| file.file_id == file_id)
            .map(|(_, file)| file.downloads)
            .sum()
    }
}

/// `getFile`: the file's path and size.
fn get_file(shared: &Shared, params: &Value) -> Response {
    let wanted = params
        .get("file_id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let inner = shared.lock();
    let Some((path, file)) = inner.files.iter().find(|(_, file)| file.file_id == wanted) else {
        return api_error(400, "Bad Request: invalid file_id");
    };
    if file.serving == FileServing::TooBig {
        return api_error(400, "Bad Request: file is too big");
    }
    ok(json!({
        "file_id": file.file_id,
        "file_unique_id": format!("u-{}", file.file_id),
        "file_size": file.bytes.len(),
        "file_path": path,
    }))
}

/// `/file/bot{token}/{path}`: the file's bytes, as its serving says.
fn download(shared: &Shared, path: &str) -> Response {
    use futures::StreamExt;
    let file = {
        let mut inner = shared.lock();
        let Some((_, file)) = inner.files.iter_mut().find(|(p, _)| p == path) else {
            return StatusCode::NOT_FOUND.into_response();
        };
        file.downloads += 1;
        file.clone()
    };
    let bytes = file.bytes;
    match file.serving {
        FileServing::Normal | FileServing::TooBig => {
            ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
        }
        FileServing::Missing => StatusCode::NOT_FOUND.into_response(),
        FileServing::Slow(pause) => {
            let piece = bytes.len().div_ceil(10).max(1);
            let pieces: Vec<Bytes> = bytes.chunks(piece).map(Bytes::copy_from_slice).collect();
            let stream = futures::stream::iter(pieces).then(move |piece| async move {
                tokio::time::sleep(pause).await;
                Ok::<_, std::io::Error>(piece)
            });
            Response::builder()
                .header(header::CONTENT_LENGTH, bytes.len())
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        FileServing::Dropped => {
            let half = bytes.slice(..bytes.len() / 2);
            let stream = futures::stream::iter([
                Ok(half),
                Err(std::io::Error::other("connection dropped by the fake")),
            ]);
            Response::builder()
                .header(header::CONTENT_LENGTH, bytes.len())
                .body(Body::from_stream(stream))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// True for methods that post a message into a chat.
fn is_send(method: &str) -> bool {
    (method.starts_with("send") && method != "sendchataction")
        || method.starts_with("forward")
        || method.starts_with("copy")
}

fn chat_id_of(params: &Value) -> Option<i64> {
    match params.get("chat_id")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `(token, lower-cased method)` from `/…/bot{token}/{Method}`.
fn route(uri: &Uri) -> Option<(String, String)> {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let at = segments.iter().position(|s| s.starts_with("bot"))?;
    let token = segments[at].strip_prefix("bot")?;
    let method = segments.get(at + 1)?;
    Some((token.to_owned(), method.to_lowercase()))
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if let Some(rest) = request.uri().path().strip_prefix("/file/") {
        return match rest.split_once('/') {
            Some((bot, path)) if bot.starts_with("bot") => download(&shared, path),
            _ => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let Some((token, method)) = route(request.uri()) else {
        return api_error(404, "Not Found");
    };
    let params = match read_params(request).await {
        Ok(params) => params,
        Err(why) => return api_error(400, &format!("Bad Request: {why}")),
    };

    let mut call = Call {
        method: method.clone(),
        params: params.clone(),
        token,
        failure: None,
        message_id: None,
        at: std::time::Instant::now(),
    };
    let (failure, delay) = {
        let mut inner = shared.lock();
        let delay = inner
            .delays
            .iter()
            .find(|(slow, _)| *slow == method)
            .map(|(_, delay)| *delay);
        let failure = scripted_failure(&mut inner, &method, &params);
        if failure.is_none() && answers_with_message(&method) {
            inner.next_message_id += 1;
            call.message_id = Some(inner.next_message_id);
        }
        call.failure.clone_from(&failure);
        inner.calls.push(call.clone());
        (failure, delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    if let Some(failure) = failure {
        return failure_response(&failure);
    }

    match method.as_str() {
        "getupdates" => ok(Value::Array(long_poll(&shared, &params).await)),
        "getme" => ok(json!({
            "id": BOT_ID,
            "is_bot": true,
            "first_name": "Ledgerdesk",
            "username": BOT_USERNAME,
            "can_join_groups": false,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
            "can_connect_to_business": false,
            "has_main_web_app": false,
        })),
        "getwebhookinfo" => ok(json!({
            "url": "",
            "has_custom_certificate": false,
            "pending_update_count": 0,
        })),
        "copymessage" => ok(json!({ "message_id": call.message_id })),
        "getfile" => get_file(&shared, &params),
        "sendmediagroup" => {
            let id = call.message_id.unwrap_or_default();
            ok(json!([message(&method, &params, id)]))
        }
        _ => match call.message_id {
            Some(id) => ok(message(&method, &params, id)),
            None => ok(Value::Bool(true)),
        },
    }
}

/// Whether a successful call of `method` answers with a message (and so takes a message id).
fn answers_with_message(method: &str) -> bool {
    is_send(method) || method.starts_with("editmessage")
}

fn scripted_failure(inner: &mut Inner, method: &str, params: &Value) -> Option<Failure> {
    if let Some(outage) = &inner.outage {
        return Some(outage.clone());
    }
    let chat = chat_id_of(params);
    let send = is_send(method);
    if send && chat.is_some_and(|chat| inner.blocked.contains(&chat)) {
        return Some(Failure::Blocked);
    }
    if send
        && let Some(caps) = inner.caps.as_mut()
        && !caps.admit(chat)
    {
        return Some(Failure::RetryAfter(1));
    }
    let script = inner.scripts.iter_mut().find(|s| {
        s.remaining > 0
            && match &s.target {
                Target::Method(m) => m == method,
                Target::Chat(c) => send && chat == Some(*c),
            }
    })?;
    script.remaining -= 1;
    let failure = script.failure.clone();
    inner.scripts.retain(|s| s.remaining > 0);
    Some(failure)
}

/// The queued updates at or after `offset` (those below are confirmed and dropped), waiting up
/// to the request's `timeout` (capped at [`LONG_POLL_CAP`]) for one to arrive.
async fn long_poll(shared: &Shared, params: &Value) -> Vec<Value> {
    let offset = params.get("offset").and_then(as_i64).unwrap_or(i64::MIN);
    let limit = params
        .get("limit")
        .and_then(as_i64)
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0)
        .unwrap_or(100);
    let timeout = params
        .get("timeout")
        .and_then(as_i64)
        .and_then(|t| u64::try_from(t).ok())
        .map_or(Duration::ZERO, Duration::from_secs)
        .min(LONG_POLL_CAP);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Register for the wake-up before looking, so a push in between is not missed.
        let queued = shared.update_queued.notified();
        {
            let mut inner = shared.lock();
            inner.updates.retain(|u| {
                u.get("update_id")
                    .and_then(Value::as_i64)
                    .is_none_or(|id| id >= offset)
            });
            if !inner.updates.is_empty() {
                return inner.updates.iter().take(limit).cloned().collect();
            }
        }
        if tokio::time::timeout_at(deadline, queued).await.is_err() {
            return Vec::new();
        }
    }
}

fn as_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The request's parameters as a JSON object, from a JSON or multipart body.
async fn read_params(request: Request) -> Result<Value, String> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if content_type.starts_with("multipart/form-data") {
        let mut multipart = Multipart::from_request(request, &())
            .await
            .map_err(|e| e.body_text())?;
        let mut params = Map::new();
        while let Some(field) = multipart.next_field().await.map_err(|e| e.body_text())? {
            let name = field.name().unwrap_or_default().to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let bytes = field.bytes().await.map_err(|e| e.body_text())?;
            let value = match file_name {
                Some(file_name) => json!({ "file_name": file_name, "size": bytes.len() }),
                None => multipart_text(&bytes),
            };
            params.insert(name, value);
        }
        return Ok(Value::Object(params));
    }
    let body = axum::body::to_bytes(request.into_body(), 64 << 20)
        .await
        .map_err(|e| e.to_string())?;
    if body.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice(&body) {
        Ok(Value::Object(params)) => Ok(Value::Object(params)),
        Ok(_) => Err("parameters must be a JSON object".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// A multipart text field: parsed when it holds a JSON object or array, else a string.
fn multipart_text(bytes: &Bytes) -> Value {
    let text = String::from_utf8_lossy(bytes).into_owned();
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(value) = serde_json::from_str(&text)
    {
        return value;
    }
    Value::String(text)
}

fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

fn api_error(code: u16, description: &str) -> Response {
    error_body(code, description, None)
}

fn error_body(code: u16, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({ "ok": false, "error_code": code, "description": description });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (status, Json(body)).into_response()
}

fn failure_response(failure: &Failure) -> Response {
    match failure {
        Failure::RetryAfter(seconds) => error_body(
            429,
            &format!("Too Many Requests: retry after {seconds}"),
            Some(json!({ "retry_after": seconds })),
        ),
        Failure::Blocked => api_error(403, "Forbidden: bot was blocked by the user"),
        Failure::BadRequest(why) => api_error(400, &format!("Bad Request: {why}")),
        Failure::Api { code, description } => api_error(*code, description),
        Failure::Page(status) => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>Bad Gateway</h1></body></html>",
        )
            .into_response(),
        Failure::Dropped => {
            // Headers go out, then the body fails: hyper cuts the connection.
            let broken = futures::stream::once(async {
                Err::<Bytes, _>(std::io::Error::other("connection dropped by the fake"))
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(broken))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
    }
}

/// A JSON body.
struct Json(Value);

impl IntoResponse for Json {
    fn into_response(self) -> Response {
        (
            [(header::CONTENT_TYPE, "application/json")],
            self.0.to_string(),
        )
            .into_response()
    }
}

/// The `Message` a successful call answers with: sent by the bot into the chat asked for,
/// carrying what the call sent.
fn message(method: &str, params: &Value, id: i32) -> Value {
    let chat_id = chat_id_of(params).unwrap_or_default();
    let chat = if chat_id >= 0 {
        json!({ "id": chat_id, "type": "private", "first_name": "Customer" })
    } else {
        json!({ "id": chat_id, "type": "group", "title": "Group" })
    };
    let date = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut message = json!({
        "message_id": id,
        "date": date,
        "chat": chat,
        "from": {
            "id": BOT_ID,
            "is_bot": true,
            "first_name": "Ledgerdesk",
            "username": BOT_USERNAME,
        },
    });
    let file = |name: &str| {
        let id = params
            .get(name)
            .and_then(Value::as_str)
            .map_or_else(|| format!("uploaded-{id}"), str::to_owned);
        json!({ "file_id": id, "file_unique_id": format!("u-{id}") })
    };
    let with = |mut base: Value, extra: Value| {
        if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
            base.extend(extra);
        }
        base
    };
    let media = match method {
        "sendphoto" => Some((
            "photo",
            json!([with(file("photo"), json!({ "width": 640, "height": 480 }))]),
        )),
        "sendvideo" => Some((
            "video",
            with(
                file("video"),
                json!({ "width": 640, "height": 480, "duration": 3, "mime_type": "video/mp4" }),
            ),
        )),
        "senddocument" => Some((
            "document",
            with(file("document"), json!({ "mime_type": "application/pdf" })),
        )),
        "sendaudio" => Some((
            "audio",
            with(
                file("audio"),
                json!({ "duration": 3, "mime_type": "audio/mpeg" }),
            ),
        )),
        "sendvoice" => Some((
            "voice",
            with(
                file("voice"),
                json!({ "duration": 3, "mime_type": "audio/ogg" }),
            ),
        )),
        "sendanimation" => Some((
            "animation",
            with(
                file("animation"),
                json!({ "width": 320, "height": 240, "duration": 2, "mime_type": "video/mp4" }),
            ),
        )),
        _ => None,
    };
    match media {
        Some((field, value)) => {
            message[field] = value;
            if let Some(caption) = params.get("caption").and_then(Value::as_str) {
                message["caption"] = json!(caption);
            }
        }
        None => {
            let text = params
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or("message");
            message["text"] = json!(text);
        }
    }
    if let Some(markup) = params.get("reply_markup") {
        let markup = match markup {
            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
            other => other.clone(),
        };
        if markup.get("inline_keyboard").is_some() {
            message["reply_markup"] = markup;
        }
    }
    message
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use teloxide::prelude::*;
    use teloxide::types::{FileId, InputFile, MediaKind, MessageKind, UpdateKind};

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn sends_answer_messages_that_teloxide_parses() {
        let fake = FakeTelegram::start().await;
        let bot = fake.bot();

        let text = bot.send_message(ChatId(77), "hello").await.unwrap();
        assert_eq!(text.chat.id, ChatId(77));
        assert_eq!(text.text(), Some("hello"));

        let photo = bot
            .send_photo(ChatId(77), InputFile::file_id(FileId("PHOTO-1".into())))
            .caption("look")
            .await
            .unwrap();
        assert!(photo.id.0 > text.id.0);
        let MessageKind::Common(common) = &photo.kind else {
            panic!("not a common message: {photo:?}")
        };
        assert!(
            matches!(common.media_kind, MediaKind::Photo(_)),
            "{photo:?}"
        );
        assert_eq!(photo.caption(), Some("look"));

        for (method, sent) in [
            (
                "sendvideo",
                bot.send_video(ChatId(77), InputFile::file_id(FileId("V".into())))
                    .await,
            ),
            (
                "senddocument",
                bot.send_document(ChatId(77), InputFile::file_id(FileId("D".into())))
                    .await,
            ),
            (
                "sendaudio",
                bot.send_audio(ChatId(77), InputFile::file_id(FileId("A".into())))
                    .await,
            ),
            (
                "sendvoice",
                bot.send_voice(ChatId(77), InputFile::file_id(FileId("O".into())))
                    .await,
            ),
            (
                "sendanimation",
                bot.send_animation(ChatId(77), InputFile::file_id(FileId("N".into())))
                    .await,
            ),
        ] {
            let sent = sent.unwrap_or_else(|e| panic!("{method}: {e}"));
            let MessageKind::Common(common) = &sent.kind else {
                panic!("{method}: not a common message: {sent:?}")
            };
            assert!(
                !matches!(common.media_kind, MediaKind::Text(_)),
                "{method}: {sent:?}"
            );
        }

        let calls = fake.calls_of("SendPhoto");
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].chat_id(), Some(77));
        assert_eq!(calls[0].param("photo").as_deref(), Some("PHOTO-1"));
        assert_eq!(calls[0].text().as_deref(), Some("look"));
        assert_eq!(calls[0].token, TOKEN);
        assert_eq!(calls[0].message_id, Some(photo.id.0));
    }

    #[tokio::test]
    async fn scripted_failures_reach_teloxide_as_telegram_errors() {
        let fake = FakeTelegram::start().await;
        let bot = fake.bot();

        fake.fail_next("sendMessage", Failure::RetryAfter(7), 1);
        let error = bot.send_message(ChatId(1), "x").await.unwrap_err();
        assert!(
            matches!(error, teloxide::RequestError::RetryAfter(s) if s.seconds() == 7),
            "{error:?}"
        );

        fake.block_chat(2);
        let error = bot.send_message(ChatId(2), "x").await.unwrap_err();
        assert!(
            matches!(
                error,
                teloxide::RequestError::Api(teloxide::ApiError::BotBlocked)
            ),
            "{error:?}"
        );

        fake.fail_chat(3, Failure::BadRequest("chat not found".into()), 1);
        let error = bot.send_message(ChatId(3), "x").await.unwrap_err();
        assert!(matches!(error, teloxide::RequestError::Api(_)), "{error:?}");
        bot.send_message(ChatId(3), "x").await.unwrap();

        fake.fail_next("sendMessage", Failure::Dropped, 1);
        let error = bot.send_message(ChatId(4), "x").await.unwrap_err();
        assert!(
            matches!(error, teloxide::RequestError::Network(_)),
            "{error:?}"
        );
        bot.send_message(ChatId(4), "x").await.unwrap();

        let calls = fake.calls_of("sendmessage");
        let failed: Vec<_> = calls.iter().map(|c| c.failure.clone()).collect();
        assert_eq!(
            failed,
            [
                Some(Failure::RetryAfter(7)),
                Some(Failure::Blocked),
                Some(Failure::BadRequest("chat not found".into())),
                None,
                Some(Failure::Dropped),
                None,
            ]
        );
    }

    #[tokio::test]
    async fn get_updates_serves_the_queue_and_drops_confirmed_updates() {
        let fake = FakeTelegram::start().await;
        let bot = fake.bot();
        let me = bot.get_me().await.unwrap();
        assert_eq!(me.user.id.0, u64::try_from(BOT_ID).unwrap());

        let first = fake.push_update(json!({
            "message": {
                "message_id": 1, "date": 1_700_000_000,
                "chat": { "id": 9, "type": "private", "first_name": "Ann" },
                "from": { "id": 9, "is_bot": false, "first_name": "Ann" },
                "text": "hi"
            }
        }));
        let second = fake.push_update(json!({
            "message": {
                "message_id": 2, "date": 1_700_000_001,
                "chat": { "id": 9, "type": "private", "first_name": "Ann" },
                "from": { "id": 9, "is_bot": false, "first_name": "Ann" },
                "text": "again"
            }
        }));
        assert_eq!(second, first + 1);

        let updates = bot.get_updates().timeout(1).await.unwrap();
        assert_eq!(updates.len(), 2);
        assert!(
            updates
                .iter()
                .all(|u| matches!(u.kind, UpdateKind::Message(_)))
        );
        let offset = i32::try_from(second + 1).unwrap();
        let updates = bot.get_updates().offset(offset).timeout(0).await.unwrap();
        assert!(updates.is_empty());
        assert_eq!(fake.pending_updates(), 0);

        // A long poll returns as soon as an update arrives.
        let waiting = tokio::spawn({
            let bot = bot.clone();
            async move { bot.get_updates().offset(offset).timeout(10).await }
        });
        // The push comes once the poll is there (its call is recorded before it waits).
        fake.wait_for_calls("getUpdates", 3, WAIT).await;
        fake.push_update(json!({
            "message": {
                "message_id": 3, "date": 1_700_000_002,
                "chat": { "id": 9, "type": "private", "first_name": "Ann" },
                "from": { "id": 9, "is_bot": false, "first_name": "Ann" },
                "text": "third"
            }
        }));
        let got = waiting.await.unwrap().unwrap();
        assert_eq!(got.len(), 1);
        assert!(bot.delete_webhook().await.is_ok());
        assert!(
            bot.answer_callback_query(teloxide::types::CallbackQueryId("cq-1".to_owned()))
                .await
                .is_ok()
        );
    }
}
