//! HTTP and WebSocket transport of the schema.
//!
//! `POST /graphql` takes each query text's parsed document from the
//! [`crate::graphql::documents::DocumentCache`] and records every request's latency by operation in
//! `/metrics`.

use std::net::SocketAddr;
use std::time::Instant;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource};
use async_graphql::{BatchRequest, BatchResponse, Data};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Extension;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::{SinkExt, StreamExt};
use serde_json::json;

use crate::auth::{Authentication, Caller};
use crate::graphql::ApiSchema;
use crate::graphql::auth::ClientAddr;
use crate::graphql::consistency::CONSISTENCY_HEADER;
use crate::graphql::consistency::HeaderConsistency;
use crate::graphql::context::Api;
use crate::graphql::guard;
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/graphql/ws", get(websocket))
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .title("Ledgerdesk GraphQL")
            .finish(),
    )
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })),
    )
        .into_response()
}

fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn graphql(
    State(state): State<AppState>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limits = &state.api.limits;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.starts_with("application/json")
                || value.starts_with("application/graphql-response+json")
        });
    if !json {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "VALIDATION",
            "send the request as application/json",
        );
    }
    let Ok(bytes) = to_bytes(body, limits.max_body_bytes).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "VALIDATION",
            &format!(
                "the request body is larger than {} bytes",
                limits.max_body_bytes
            ),
        );
    };
    let batch: BatchRequest = match serde_json::from_slice(&bytes) {
        Ok(batch) => batch,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "VALIDATION",
                &format!("the body is not a GraphQL request: {error}"),
            );
        }
    };
    if let BatchRequest::Batch(requests) = &batch
        && requests.len() > limits.max_batch
    {
        return refuse(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            &format!("a batch holds at most {} operations", limits.max_batch),
        );
    }
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let authentication = match authorization {
        Some(value) => match bearer(value) {
            Some(token) => state.api.auth.authenticate(Some(token)).await,
            None => Authentication::Refused("use Authorization: Bearer <token>"),
        },
        None => Authentication::Anonymous,
    };
    let consistency = match headers
        .get(CONSISTENCY_HEADER)
        .map(|v| v.to_str().ok().and_then(|v| v.trim().parse().ok()))
    {
        Some(Some(position)) => Some(HeaderConsistency(position)),
        Some(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "VALIDATION",
                "X-Ledgerdesk-Consistency is not a position this API returned",
            );
        }
        None => None,
    };
    let client = ClientAddr(connect.map(|Extension(ConnectInfo(addr))| addr.ip()));
    let run = |mut request: async_graphql::Request| {
        let operation = state.documents.prepare(&mut request);
        let mut request = request.data(authentication.clone()).data(client);
        if let Some(consistency) = consistency {
            request = request.data(consistency);
        }
        let schema = &state.schema;
        async move {
            let started = Instant::now();
            let response = schema.execute(request).await;
            crate::metrics::graphql_request(operation, response.is_ok(), started.elapsed());
            response
        }
    };
    let response = match batch {
        BatchRequest::Single(request) => BatchResponse::Single(run(request).await),
        // At once, answered in order, as the schema runs a batch.
        BatchRequest::Batch(requests) => BatchResponse::Batch(
            requests
                .into_iter()
                .map(run)
                .collect::<futures::stream::FuturesOrdered<_>>()
                .collect()
                .await,
        ),
    };
    GraphQLResponse(response).into_response()
}

async fn websocket(
    State(state): State<AppState>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let schema = state.schema.clone();
    let api: Api = state.api.as_ref().clone();
    let largest = api.limits.max_body_bytes;
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(SOCKET_READ_BUFFER)
        .max_message_size(largest)
        .max_frame_size(largest)
        .on_upgrade(move |socket| serve_socket(socket, schema, api, protocol))
}

/// How much of a client's data one read of a socket takes in. A socket keeps a buffer of
/// this size and zero-fills it before each read, and it is read every time it is woken, so
/// each delivery to a subscriber paid a `memset` of tungstenite's default 128 KiB, and each
/// open socket kept 128 KiB resident. Clients send small messages (`subscribe` with its
/// query); a larger one, up to the request body limit, is read in several pieces.
const SOCKET_READ_BUFFER: usize = 4 * 1024;

/// Close code of a socket whose credential ended while it was open.
const CREDENTIAL_ENDED: u16 = 4403;

/// Close code of a socket that sent a message larger than the limit (RFC 6455 "message too big").
const MESSAGE_TOO_BIG: u16 = 1009;

/// How long a socket closed for a message that is too big stays open after its close frame.
/// The rest of that message is never read, and a socket closed with data unread sends a reset,
/// which makes the client's system drop the close frame if the client has not read it yet.
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_millis(500);

/// Serves one WebSocket: the credential comes in `connection_init` and is checked again every
/// [`crate::graphql::Limits::socket_credential_check`] while the socket is open, so an expired or
/// revoked token, or an agent signed out, demoted or deactivated, stops receiving data: the
/// socket is closed with code 4403 and the reason.
async fn serve_socket(socket: WebSocket, schema: ApiSchema, api: Api, protocol: GraphQLProtocol) {
    let (mut sink, mut stream) = socket.split();
    let (credential, accepted) = tokio::sync::watch::channel(None);
    let ended = credential_ended(api.clone(), accepted);
    let largest = api.limits.max_body_bytes;
    let mut too_big = false;
    // The protocol ends at the first read error; remember whether it was a message too big.
    let messages = (&mut stream).inspect(|read| {
        if let Err(err) = read {
            too_big |= is_too_big(err);
        }
    });
    let close = {
        let serve = GraphQLWebSocket::new_with_pair(&mut sink, messages, schema, protocol)
            .on_connection_init(move |payload| async move {
                let token = connection_token(&payload);
                match api.auth.authenticate(token.as_deref()).await {
                    Authentication::Authenticated(caller) => {
                        credential.send_replace(Some((token, caller.clone())));
                        let mut data = Data::default();
                        data.insert(Authentication::Authenticated(caller));
                        data.insert(guard::OnSocket);
                        Ok(data)
                    }
                    Authentication::Refused(reason) => Err(reason.into()),
                    Authentication::Anonymous => Err(
                        "send {\"authorization\": \"Bearer <token>\"} in connection_init".into(),
                    ),
                }
            })
            .serve();
        tokio::select! {
            () = serve => None,
            reason = ended => Some(CloseFrame {
                code: CREDENTIAL_ENDED,
                reason: reason.into(),
            }),
        }
    };
    let close = close.or_else(|| {
        too_big.then(|| CloseFrame {
            code: MESSAGE_TOO_BIG,
            reason: format!("a message is larger than {largest} bytes").into(),
        })
    });
    let Some(close) = close else { return };
    let code = close.code;
    let _ = sink.send(Message::Close(Some(close))).await;
    if code == MESSAGE_TOO_BIG {
        // The rest of the message cannot be read any more (the socket's reader stops at its
        // error), so give the client time to read the close frame before the reset.
        tokio::time::sleep(CLOSE_LINGER).await;
    }
}

/// Whether a socket's read failed on a message or frame above the size limit.
fn is_too_big(err: &axum::Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<tungstenite::Error>())
        .is_some_and(|err| matches!(err, tungstenite::Error::Capacity(_)))
}

/// The credential of a `connection_init` payload: `authorization` (with or without `Bearer`)
/// or `token`.
fn connection_token(payload: &serde_json::Value) -> Option<String> {
    payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"))
        .and_then(|value| value.as_str())
        .map(|value| bearer(value).unwrap_or(value).to_owned())
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
/// accepted. (A change of the agent's role or categories needs no new
/// socket: each operation and each item a subscription delivers is checked against the
/// agent's state as of the log, see [`guard::LiveScope`].)
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
            Authentication::Authenticated(_) => {}
            Authentication::Refused(reason) => return reason,
            Authentication::Anonymous => return "the credential is gone",
        }
    }
}
