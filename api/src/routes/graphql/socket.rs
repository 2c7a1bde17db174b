//! GraphQL over WebSocket: both protocols, served here rather than by async-graphql's socket
//! driver, whose close codes differ from the protocol documents (a refused `connection_init`
//! closes with 1002, a `subscribe` before it with 1011, a reused operation id silently replaces
//! the operation, no `connection_init` timeout, and the legacy protocol drops the socket without
//! a close frame after `connection_error`). The schema still runs every operation
//! (`execute_stream_with_session_data`); this module owns only the conversation.
//!
//! `graphql-transport-ws` (<https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md>),
//! to the letter:
//!
//! | event | close |
//! |---|---|
//! | a message that is not JSON, of an unknown type or shape, or binary | `4400: <what is wrong>` |
//! | `subscribe` before `connection_ack` | `4401: Unauthorized` |
//! | `connection_init` whose credential is refused | `4403: Forbidden: <why>` |
//! | `connection_init` whose credential cannot be checked (the database is unreachable) | `1013: Try Again Later` |
//! | no `connection_init` within [`crate::graphql::Limits::socket_init_timeout`] | `4408: Connection initialisation timeout` |
//! | `subscribe` with the id of an operation still running | `4409: Subscriber for <id> already exists` |
//! | a second `connection_init` | `4429: Too many initialisation requests` |
//! | `connection_init` of a caller who already holds [`crate::graphql::Limits::max_sockets_per_caller`] sockets | `4429: Too many sockets: at most <n> per agent` |
//! | no running operation and no message for [`crate::graphql::Limits::socket_idle_timeout`] | `1001: Idle timeout` |
//! | the server stops (a restart, a deploy) | `1001: Going away: the server is stopping` |
//!
//! A `subscribe` beyond [`crate::graphql::Limits::max_socket_subscriptions`] running operations
//! is refused alone (an `error` message with code `TOO_MANY_SUBSCRIPTIONS`); the socket stays.
//! A document is bounded as over HTTP ([`crate::graphql::expansion`]), and a query or mutation
//! sent over the socket has the same deadline ([`crate::graphql::Limits::request_timeout`]).
//! A message the client has not taken within that deadline drops the connection: a client that
//! stops reading cannot hold a socket, and its place in the bounds, for ever.
//!
//! An operation refused as a whole before it ran (parse or validation errors, a bad variable)
//! gets an `error` message with the errors and no `complete`; any other result is `next`, and
//! the end of the operation `complete`. `ping` is answered with `pong` at any time.
//!
//! The legacy `graphql-ws` protocol of subscriptions-transport-ws has no close codes of its
//! own: every event above sends `connection_error` with the reason as `payload.message` and
//! then closes the socket with the same code, with a close frame. `start` reusing the id of a
//! running operation replaces it, as that protocol's server did.
//!
//! Once accepted, the credential is checked again every
//! [`crate::graphql::Limits::socket_credential_check`], and at once when this process ends a
//! credential; when it ends, the socket is closed with
//! 4403 and the reason (in either protocol without `connection_error`, which answers the
//! connection's set-up). A check that cannot reach the database ends nothing: the socket stays
//! open and the next check decides. A message larger than the body limit closes it with 1009.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Response, ServerError, Variables};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{BoxStream, SplitSink};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_stream::StreamMap;

use crate::auth::{Authentication, Caller};
use crate::graphql::context::Api;
use crate::graphql::documents::{DocumentCache, operation_of};
use crate::graphql::{ApiSchema, guard, request_errors, unstorable};

/// Which of the two protocols a socket speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// `graphql-transport-ws`.
    TransportWs,
    /// The legacy `graphql-ws` of subscriptions-transport-ws.
    Legacy,
}

impl Protocol {
    /// Both, in the order the server prefers them.
    pub(super) const NAMES: [&'static str; 2] = ["graphql-transport-ws", "graphql-ws"];

    /// The protocol of a `Sec-WebSocket-Protocol` name.
    pub(super) fn from_name(name: &[u8]) -> Option<Protocol> {
        match name {
            b"graphql-transport-ws" => Some(Protocol::TransportWs),
            b"graphql-ws" => Some(Protocol::Legacy),
            _ => None,
        }
    }
}

/// The close codes of `graphql-transport-ws`, also used by the legacy protocol.
mod code {
    pub(super) const BAD_REQUEST: u16 = 4400;
    pub(super) const UNAUTHORIZED: u16 = 4401;
    pub(super) const FORBIDDEN: u16 = 4403;
    pub(super) const INIT_TIMEOUT: u16 = 4408;
    pub(super) const SUBSCRIBER_EXISTS: u16 = 4409;
    pub(super) const TOO_MANY_INITS: u16 = 4429;
    /// The caller holds as many sockets as allowed (the same code: too many).
    pub(super) const TOO_MANY_SOCKETS: u16 = 4429;
    /// RFC 6455 "going away": closed for having been idle.
    pub(super) const IDLE: u16 = 1001;
    /// RFC 6455 "going away" too: the server is stopping (connect again).
    pub(super) const GOING_AWAY: u16 = 1001;
    /// RFC 6455 "message too big".
    pub(super) const MESSAGE_TOO_BIG: u16 = 1009;
    /// RFC 6455 "try again later": the database could not be reached.
    pub(super) const TRY_AGAIN_LATER: u16 = 1013;
}

/// Longest close reason a close frame carries (RFC 6455: 125 bytes of payload, 2 of them the
/// code).
const MAX_REASON_BYTES: usize = 123;

/// How long a socket stays open after its close frame, for the client's close frame. The
/// client's system drops a close frame it has not read yet when the socket is closed with
/// data unread (a reset), so a socket closed for a message too big (whose rest is never read)
/// always waits this long.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Why the server ends a socket.
#[derive(Debug)]
struct Close {
    code: u16,
    reason: String,
    /// Whether the legacy protocol says it in `connection_error` first: for the events of the
    /// connection's set-up and of the protocol itself, not for a credential that ended later,
    /// a message too big or a client's `connection_terminate`.
    connection_error: bool,
}

impl Close {
    fn new(code: u16, reason: impl Into<String>) -> Close {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON_BYTES {
            let mut end = MAX_REASON_BYTES;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Close {
            code,
            reason,
            connection_error: true,
        }
    }

    /// A close the legacy protocol does not explain in `connection_error`.
    fn without_connection_error(self) -> Close {
        Close {
            connection_error: false,
            ..self
        }
    }

    fn bad_request(what: impl Into<String>) -> Close {
        Close::new(code::BAD_REQUEST, what)
    }
}

type Sink = SplitSink<WebSocket, Message>;
type Operation = BoxStream<'static, Option<Response>>;
type Check = Pin<Box<dyn Future<Output = Authentication> + Send>>;

/// What every socket of the process shares.
pub(super) struct Shared {
    pub(super) schema: ApiSchema,
    pub(super) api: Api,
    pub(super) documents: Arc<DocumentCache>,
    pub(super) sockets: Arc<Sockets>,
}

/// The accepted sockets of each caller (an agent, or an API token), to bound them.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One accepted socket of a caller; counted until dropped.
#[derive(Debug)]
struct SocketSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    caller: String,
}

impl Sockets {
    /// A slot for one more socket of `caller`, unless they hold `max` already.
    fn open(&self, caller: String, max: usize) -> Option<SocketSlot> {
        let mut open = lock(&self.open);
        let count = open.entry(caller.clone()).or_default();
        if *count >= max {
            if *count == 0 {
                open.remove(&caller);
            }
            return None;
        }
        *count += 1;
        Some(SocketSlot {
            open: self.open.clone(),
            caller,
        })
    }

    /// How many callers hold a socket (every entry goes with its caller's last socket).
    #[cfg(test)]
    fn callers(&self) -> usize {
        lock(&self.open).len()
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        if let Some(count) = open.get_mut(&self.caller) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Counts stay consistent under a panic elsewhere: every change is one statement.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves one socket until either side ends it.
pub(super) async fn serve(socket: WebSocket, shared: Shared, protocol: Protocol) {
    let Shared {
        schema,
        api,
        documents,
        sockets,
    } = shared;
    let (sink, mut stream) = socket.split();
    let mut socket = Conversation {
        protocol,
        sink,
        schema,
        documents,
        max_selections: api.limits.max_selections,
        request_timeout: api.limits.request_timeout,
        max_operations: api.limits.max_socket_subscriptions,
        session: None,
        operations: StreamMap::new(),
    };
    let (credential, accepted) = tokio::sync::watch::channel(None);
    let ended = credential_ended(api.clone(), accepted);
    tokio::pin!(ended);
    let init_timeout = tokio::time::sleep(api.limits.socket_init_timeout);
    tokio::pin!(init_timeout);
    let idle_timeout = api.limits.socket_idle_timeout;
    let idle = tokio::time::sleep(idle_timeout);
    tokio::pin!(idle);
    // This socket's place in its caller's count, once accepted.
    let mut slot: Option<SocketSlot> = None;
    let mut init_received = false;
    // The credential of `connection_init`, while it is being checked.
    let mut check: Option<(Option<String>, Check)> = None;
    let largest = api.limits.max_body_bytes;

    // The server stopping closes the socket, so that clients connect again at once (to
    // another instance, or this one restarted) rather than wait on feeds that ended.
    let stopping = api.live.stopping();
    let stopped = stopping.cancelled();
    tokio::pin!(stopped);

    let close = loop {
        tokio::select! {
            () = &mut stopped => {
                break Some(Close::new(code::GOING_AWAY, "Going away: the server is stopping")
                    .without_connection_error());
            }
            read = stream.next() => {
                // Any message from the client, a ping too, shows it is there.
                idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                let text = match read {
                    None | Some(Ok(Message::Close(_))) => break None,
                    Some(Err(err)) => break is_too_big(&err).then(|| Close::new(
                        code::MESSAGE_TOO_BIG,
                        format!("a message is larger than {largest} bytes"),
                    ).without_connection_error()),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Binary(_))) => {
                        break Some(Close::bad_request("messages are JSON text, not binary"));
                    }
                    Some(Ok(Message::Text(text))) => text,
                };
                let message = match ClientMessage::parse(protocol, text.as_str()) {
                    Ok(message) => message,
                    Err(close) => break Some(close),
                };
                let step = match message {
                    ClientMessage::Init(_) if init_received => {
                        Err(Close::new(code::TOO_MANY_INITS, "Too many initialisation requests"))
                    }
                    ClientMessage::Init(payload) => {
                        init_received = true;
                        let token = connection_token(&payload);
                        let auth = api.auth.clone();
                        let checked = token.clone();
                        check = Some((token, Box::pin(async move {
                            auth.authenticate(checked.as_deref()).await
                        })));
                        Ok(())
                    }
                    other => socket.on_message(other).await,
                };
                if let Err(close) = step {
                    break Some(close);
                }
            }
            checked = async {
                match check.as_mut() {
                    Some((_, check)) => check.await,
                    None => std::future::pending().await,
                }
            }, if check.is_some() => {
                let token = check.take().and_then(|(token, _)| token);
                let caller = match checked {
                    Authentication::Authenticated(caller) => caller,
                    Authentication::Refused(reason) => {
                        break Some(Close::new(code::FORBIDDEN, format!("Forbidden: {reason}")));
                    }
                    Authentication::Unavailable => break Some(Close::new(
                        code::TRY_AGAIN_LATER,
                        "Try Again Later: the database cannot be reached; the credential was not refused",
                    )),
                    Authentication::Anonymous => break Some(Close::new(
                        code::FORBIDDEN,
                        "Forbidden: send {\"authorization\": \"Bearer <token>\"} in connection_init",
                    )),
                };
                let max = api.limits.max_sockets_per_caller;
                let Some(taken) = sockets.open(caller.actor().id, max) else {
                    break Some(Close::new(
                        code::TOO_MANY_SOCKETS,
                        format!("Too many sockets: at most {max} per agent"),
                    ));
                };
                slot = Some(taken);
                idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
                credential.send_replace(Some((token, caller.clone())));
                socket.accept(caller).await;
            }
            () = &mut idle, if socket.session.is_some() && socket.operations.is_empty() => {
                break Some(Close::new(code::IDLE, "Idle timeout").without_connection_error());
            }
            () = &mut init_timeout, if !init_received => {
                break Some(Close::new(code::INIT_TIMEOUT, "Connection initialisation timeout"));
            }
            Some((id, result)) = socket.operations.next(), if !socket.operations.is_empty() => {
                if socket.on_result(id, result).await.is_err() {
                    break None;
                }
                // What the server sends is traffic too: the idle time counts from the last.
                idle.as_mut().reset(tokio::time::Instant::now() + idle_timeout);
            }
            reason = &mut ended => {
                break Some(Close::new(code::FORBIDDEN, reason).without_connection_error());
            }
        }
    };
    let Some(close) = close else { return };
    socket.close(close, &mut stream).await;
    // The caller's count goes down once the socket is closed.
    drop(slot);
}

/// What a client sent, checked against the protocol's message shapes.
enum ClientMessage {
    /// `connection_init` with its payload (`{}` when absent).
    Init(Value),
    /// `subscribe` (legacy: `start`).
    Subscribe { id: String, payload: Value },
    /// `complete` (legacy: `stop`).
    Complete { id: String },
    /// `ping`, with its payload.
    Ping(Option<Value>),
    /// `pong`.
    Pong,
    /// Legacy `connection_terminate`.
    Terminate,
}

impl ClientMessage {
    fn parse(protocol: Protocol, text: &str) -> Result<ClientMessage, Close> {
        let Ok(Value::Object(mut message)) = serde_json::from_str::<Value>(text) else {
            return Err(Close::bad_request("a message must be a JSON object"));
        };
        let Some(Value::String(kind)) = message.remove("type") else {
            return Err(Close::bad_request(
                "a message needs a 'type' property of type string",
            ));
        };
        let payload = message.remove("payload");
        let payload_object = |payload: Option<Value>| match payload {
            None | Some(Value::Null) => Ok(None),
            Some(object @ Value::Object(_)) => Ok(Some(object)),
            Some(_) => Err(Close::bad_request(format!(
                "'{kind}' expects 'payload' to be an object or null"
            ))),
        };
        let id = |message: &mut serde_json::Map<String, Value>| match message.remove("id") {
            Some(Value::String(id)) if !id.is_empty() => Ok(id),
            _ => Err(Close::bad_request(format!(
                "'{kind}' needs a non-empty string 'id'"
            ))),
        };
        let (subscribe, complete) = match protocol {
            Protocol::TransportWs => ("subscribe", "complete"),
            Protocol::Legacy => ("start", "stop"),
        };
        match kind.as_str() {
            "connection_init" => Ok(ClientMessage::Init(
                payload_object(payload)?.unwrap_or_else(|| json!({})),
            )),
            kind if kind == subscribe => {
                let id = id(&mut message)?;
                let payload = payload.filter(subscribe_payload_is_valid).ok_or_else(|| {
                    Close::bad_request(format!(
                        "'{subscribe}' needs a payload with a string 'query' and optional \
                             'variables', 'operationName' and 'extensions'"
                    ))
                })?;
                Ok(ClientMessage::Subscribe { id, payload })
            }
            kind if kind == complete => Ok(ClientMessage::Complete {
                id: id(&mut message)?,
            }),
            "ping" if protocol == Protocol::TransportWs => {
                Ok(ClientMessage::Ping(payload_object(payload)?))
            }
            "pong" if protocol == Protocol::TransportWs => {
                payload_object(payload)?;
                Ok(ClientMessage::Pong)
            }
            "connection_terminate" if protocol == Protocol::Legacy => Ok(ClientMessage::Terminate),
            other => Err(Close::bad_request(format!(
                "a client does not send messages of type '{other}'"
            ))),
        }
    }
}

/// Whether a `subscribe` payload has the protocol's shape.
fn subscribe_payload_is_valid(payload: &Value) -> bool {
    let optional = |name: &str, valid: fn(&Value) -> bool| {
        payload
            .get(name)
            .is_none_or(|value| value.is_null() || valid(value))
    };
    payload.get("query").is_some_and(Value::is_string)
        && optional("variables", Value::is_object)
        && optional("operationName", Value::is_string)
        && optional("extensions", Value::is_object)
}

/// The state of an accepted socket: its operations, and the data they run with.
struct Conversation {
    protocol: Protocol,
    sink: Sink,
    schema: ApiSchema,
    /// Parsed documents, shared with HTTP; they bound a document's size too.
    documents: Arc<DocumentCache>,
    max_selections: usize,
    /// The deadline of a query or mutation (a subscription runs until it ends).
    request_timeout: Duration,
    /// Most operations running at once.
    max_operations: usize,
    /// The caller, once `connection_init` was accepted.
    session: Option<Arc<Data>>,
    /// Running operations by id. Each ends with `None`, to send `complete`.
    operations: StreamMap<String, Operation>,
}

/// A message to the client about operation `id`.
#[derive(serde::Serialize)]
struct Outgoing<'a, P> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    payload: P,
}

/// The socket could not be written to: it is gone, or its client took nothing for the
/// request deadline.
#[derive(Debug)]
struct Gone;

impl Conversation {
    async fn send(&mut self, message: Value) -> Result<(), Gone> {
        self.write(message.to_string()).await
    }

    /// Writes `text`, waiting at most the request deadline for the client to take it: a
    /// client that stops reading would otherwise hold the socket (and its place in the bounds)
    /// for as long as its connection lives.
    async fn write(&mut self, text: String) -> Result<(), Gone> {
        match tokio::time::timeout(
            self.request_timeout,
            self.sink.send(Message::Text(text.into())),
        )
        .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) | Err(_) => Err(Gone),
        }
    }

    /// `connection_init` was accepted for `caller`.
    async fn accept(&mut self, caller: Caller) {
        let mut data = Data::default();
        data.insert(Authentication::Authenticated(caller));
        data.insert(guard::OnSocket);
        self.session = Some(Arc::new(data));
        // A socket that cannot be written to ends at its next read.
        let _ = self.send(json!({ "type": "connection_ack" })).await;
    }

    /// Every message but `connection_init`.
    async fn on_message(&mut self, message: ClientMessage) -> Result<(), Close> {
        match message {
            ClientMessage::Init(_) => unreachable!("answered by the caller"),
            ClientMessage::Ping(payload) => {
                let pong = match payload {
                    Some(payload) => json!({ "type": "pong", "payload": payload }),
                    None => json!({ "type": "pong" }),
                };
                let _ = self.send(pong).await;
            }
            ClientMessage::Pong => {}
            ClientMessage::Terminate => return Err(Close::new(1000, "").without_connection_error()),
            ClientMessage::Subscribe { id, payload } => {
                let Some(session) = self.session.clone() else {
                    return Err(Close::new(code::UNAUTHORIZED, "Unauthorized"));
                };
                if self.operations.contains_key(&id) {
                    match self.protocol {
                        Protocol::TransportWs => {
                            return Err(Close::new(
                                code::SUBSCRIBER_EXISTS,
                                format!("Subscriber for {id} already exists"),
                            ));
                        }
                        Protocol::Legacy => {
                            self.operations.remove(&id);
                        }
                    }
                }
                if self.operations.len() >= self.max_operations {
                    self.refuse(&id, self.too_many()).await;
                    return Ok(());
                }
                let text = payload["query"].as_str().unwrap_or_default().to_owned();
                let mut request = async_graphql::Request::new(text.clone());
                if let Some(name) = payload.get("operationName").and_then(Value::as_str) {
                    request = request.operation_name(name);
                }
                if let Some(variables @ Value::Object(_)) = payload.get("variables") {
                    request = request.variables(Variables::from_json(variables.clone()));
                }
                let prepared = self.documents.prepare(&mut request, self.max_selections);
                let refusal = prepared
                    .refusal
                    .or_else(|| unstorable::refusal(&mut request));
                let results = match refusal {
                    Some(refusal) => {
                        futures::stream::once(async { Response::from_errors(vec![refusal]) })
                            .boxed()
                    }
                    None if is_subscription(&mut request) => self
                        .schema
                        .execute_stream_with_session_data(request, session)
                        .boxed(),
                    None => {
                        // A query or mutation answers once, within the deadline.
                        let timeout = self.request_timeout;
                        let mut results = self
                            .schema
                            .execute_stream_with_session_data(request, session);
                        futures::stream::once(async move {
                            match tokio::time::timeout(timeout, results.next()).await {
                                Ok(Some(response)) => response,
                                Ok(None) => Response::default(),
                                Err(_) => super::timed_out(timeout),
                            }
                        })
                        .boxed()
                    }
                };
                let results = results
                    .map(move |mut response| {
                        request_errors::fill_in(&mut response.errors, &text);
                        super::shorten_messages(&mut response.errors);
                        Some(response)
                    })
                    .chain(futures::stream::once(async { None }))
                    .boxed();
                self.operations.insert(id, results);
            }
            ClientMessage::Complete { id } => {
                let running = self.operations.remove(&id).is_some();
                // The legacy protocol confirms a stop; the newer one sends nothing more.
                if running && self.protocol == Protocol::Legacy {
                    let _ = self.send(json!({ "type": "complete", "id": id })).await;
                }
            }
        }
        Ok(())
    }

    /// The error of a `subscribe` beyond the socket's bound.
    fn too_many(&self) -> ServerError {
        let mut error = ServerError::new(
            format!(
                "this socket already runs {} operations, the most it may: complete one, or \
                 open another socket",
                self.max_operations
            ),
            None,
        );
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", TOO_MANY_SUBSCRIPTIONS);
        error.extensions = Some(extensions);
        error
    }

    /// Refuses operation `id` alone: `error` over `graphql-transport-ws`; the legacy protocol
    /// has no such message, so a result with the error, then `complete`.
    async fn refuse(&mut self, id: &str, error: ServerError) {
        match self.protocol {
            Protocol::TransportWs => {
                let _ = self
                    .send(json!({ "type": "error", "id": id, "payload": [error] }))
                    .await;
            }
            Protocol::Legacy => {
                let response = Response::from_errors(vec![error]);
                let _ = self
                    .send(json!({ "type": "data", "id": id, "payload": response }))
                    .await;
                let _ = self.send(json!({ "type": "complete", "id": id })).await;
            }
        }
    }

    /// A result of operation `id`, or its end (`None`).
    async fn on_result(&mut self, id: String, result: Option<Response>) -> Result<(), Gone> {
        let Some(response) = result else {
            self.operations.remove(&id);
            return self.send(json!({ "type": "complete", "id": id })).await;
        };
        let refused = self.protocol == Protocol::TransportWs
            && response.data == async_graphql::Value::Null
            && !response.errors.is_empty()
            && response.errors.iter().all(request_errors::is_request_error);
        // Written straight from the response: a result goes to every subscriber of a feed.
        let text = if refused {
            // The operation never ran: `error` ends it, without `complete`.
            self.operations.remove(&id);
            serde_json::to_string(&Outgoing {
                kind: "error",
                id: &id,
                payload: &response.errors,
            })
        } else {
            let kind = match self.protocol {
                Protocol::TransportWs => "next",
                Protocol::Legacy => "data",
            };
            serde_json::to_string(&Outgoing {
                kind,
                id: &id,
                payload: &response,
            })
        };
        let Ok(text) = text else {
            tracing::error!(operation = %id, "a result could not be written as JSON");
            return Ok(());
        };
        self.write(text).await
    }

    /// Ends the socket with `close` (the legacy protocol first says why in `connection_error`)
    /// and waits a moment for the client's close frame.
    async fn close(mut self, close: Close, stream: &mut futures::stream::SplitStream<WebSocket>) {
        if self.protocol == Protocol::Legacy && close.connection_error {
            let message = json!({
                "type": "connection_error",
                "payload": { "message": close.reason },
            });
            let _ = self.send(message).await;
        }
        let code = close.code;
        let frame = CloseFrame {
            code,
            reason: close.reason.into(),
        };
        let closing = tokio::time::timeout(
            self.request_timeout,
            self.sink.send(Message::Close(Some(frame))),
        );
        if !matches!(closing.await, Ok(Ok(()))) {
            return;
        }
        let answered = async { while let Some(Ok(_)) = stream.next().await {} };
        if code == code::MESSAGE_TOO_BIG {
            // The rest of the message cannot be read any more (the reader stops at its
            // error), so the wait is the only chance the client has to read the frame.
            tokio::time::sleep(CLOSE_LINGER).await;
        } else {
            let _ = tokio::time::timeout(CLOSE_LINGER, answered).await;
        }
    }
}

/// The code of a `subscribe` refused because its socket runs as many operations as allowed.
pub(crate) const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";

/// Whether `request` (its document already parsed) runs a subscription. One that names no
/// operation it has is left to the schema, which refuses it.
fn is_subscription(request: &mut async_graphql::Request) -> bool {
    let name = request.operation_name.clone();
    request.parsed_query().ok().is_some_and(|document| {
        operation_of(document, name.as_deref())
            .is_some_and(|operation| operation.ty == OperationType::Subscription)
    })
}

/// Whether a socket's read failed on a message or frame above the size limit.
fn is_too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

/// The credential of a `connection_init` payload: `authorization` (with or without `Bearer`)
/// or `token`.
fn connection_token(payload: &Value) -> Option<String> {
    payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(|value| value.as_str())
        .map(|value| super::bearer(value).unwrap_or(value).to_owned())
        .or_else(|| {
            payload
                .get("token")
                .and_then(|value| value.as_str())
                .map(str::to_owned)
        })
}

/// The credential `connection_init` accepted, and whom it authenticated.
type Accepted = Option<(Option<String>, Caller)>;

/// Resolves, with the reason, once the accepted credential no longer authenticates: checked
/// every period and whenever this process ends a credential; never before a credential was
/// accepted. (A change of the agent's role or categories needs no new socket: each operation
/// and each item a subscription delivers is checked against the agent's state as of the log,
/// see [`guard::LiveScope`].)
async fn credential_ended(
    api: Api,
    mut accepted: tokio::sync::watch::Receiver<Accepted>,
) -> &'static str {
    let Ok(Some((token, _))) = accepted.wait_for(Option::is_some).await.map(|a| a.clone()) else {
        // The socket ended before a credential was accepted.
        return std::future::pending().await;
    };
    let period = api.limits.socket_credential_check;
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A credential this process ends is checked at once, not at the next tick.
    let mut ended = api.auth.watch_ended_credentials();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            Ok(()) = ended.changed() => {}
        }
        match api.auth.authenticate(token.as_deref()).await {
            // Not checked is not refused: the next check decides.
            Authentication::Authenticated(_) | Authentication::Unavailable => {}
            Authentication::Refused(reason) => return reason,
            Authentication::Anonymous => return "the credential is gone",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_reason_is_cut_to_fit_a_close_frame_on_a_character_boundary() {
        let close = Close::new(code::FORBIDDEN, "é".repeat(100));
        assert!(close.reason.len() <= MAX_REASON_BYTES);
        assert_eq!(close.reason.len(), 122);
    }

    #[test]
    fn a_caller_holds_at_most_its_bound_of_sockets_and_leaves_nothing_behind() {
        let sockets = Sockets::default();
        let first = sockets.open("a".to_owned(), 2);
        let second = sockets.open("a".to_owned(), 2);
        assert!(first.is_some() && second.is_some());
        assert!(sockets.open("a".to_owned(), 2).is_none());
        assert!(
            sockets.open("b".to_owned(), 2).is_some(),
            "another caller has room"
        );
        drop(first);
        let third = sockets.open("a".to_owned(), 2);
        assert!(third.is_some(), "a closed socket frees its place");
        drop((second, third));
        assert_eq!(
            sockets.callers(),
            0,
            "no caller is kept once their sockets are gone"
        );
    }

    #[test]
    fn messages_of_the_wrong_shape_are_bad_requests() {
        for text in [
            "not json",
            "[]",
            r#"{"type": 1}"#,
            r#"{"type": "subscribe", "payload": {"query": "{ me { id } }"}}"#,
            r#"{"type": "subscribe", "id": "", "payload": {"query": "{ me { id } }"}}"#,
            r#"{"type": "subscribe", "id": "1", "payload": {"variables": {}}}"#,
            r#"{"type": "subscribe", "id": "1", "payload": {"query": "{ a }", "variables": []}}"#,
            r#"{"type": "connection_init", "payload": "token"}"#,
            r#"{"type": "complete"}"#,
            r#"{"type": "next", "id": "1", "payload": {}}"#,
            r#"{"type": "start", "id": "1", "payload": {"query": "{ a }"}}"#,
        ] {
            match ClientMessage::parse(Protocol::TransportWs, text) {
                Err(close) => assert_eq!(close.code, code::BAD_REQUEST, "{text}"),
                Ok(_) => panic!("accepted {text}"),
            }
        }
        assert!(
            ClientMessage::parse(
                Protocol::Legacy,
                r#"{"type": "start", "id": "1", "payload": {"query": "{ a }"}}"#
            )
            .is_ok()
        );
    }
}
