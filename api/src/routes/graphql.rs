//! HTTP and WebSocket transport of the schema.
//!
//! `POST /graphql` takes each query text's parsed document from the
//! [`crate::graphql::documents::DocumentCache`] and records every request's latency by operation in
//! `/metrics`. `GET /graphql/ws` speaks both GraphQL WebSocket protocols ([`socket`]). Both give
//! the errors raised before execution their codes ([`crate::graphql::request_errors`]), and
//! both refuse a request with text Postgres cannot store before it runs
//! ([`crate::graphql::unstorable`]).

use std::net::SocketAddr;
use std::time::Instant;

use async_graphql::{BatchRequest, BatchResponse};
use async_graphql_axum::GraphQLResponse;
use axum::Extension;
use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde_json::json;

use crate::auth::Authentication;
use crate::graphql::auth::ClientAddr;
use crate::graphql::consistency::CONSISTENCY_HEADER;
use crate::graphql::consistency::HeaderConsistency;
use crate::graphql::context::Api;
use crate::graphql::introspection::DescriptionKeys;
use crate::graphql::{request_errors, unstorable};
use crate::state::AppState;

pub(crate) mod socket;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/graphql", get(super::graphiql::page).post(graphql))
        .route("/graphql/ws", get(websocket))
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })),
    )
        .into_response()
}

pub(super) fn bearer(value: &str) -> Option<&str> {
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
    // One deadline for the whole request: its body's arrival and every operation of it.
    let deadline = tokio::time::Instant::now() + limits.request_timeout;
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
    let Ok(read) = tokio::time::timeout_at(deadline, to_bytes(body, limits.max_body_bytes)).await
    else {
        return refuse(
            StatusCode::REQUEST_TIMEOUT,
            "TIMEOUT",
            &format!(
                "the request body did not arrive within {} s",
                limits.request_timeout.as_secs_f64()
            ),
        );
    };
    let Ok(bytes) = read else {
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
    let peer = connect.map(|Extension(ConnectInfo(addr))| addr.ip());
    let client = ClientAddr::of(peer, &headers, &state.api.auth.config().trusted_proxies);
    let run = |mut request: async_graphql::Request| {
        let prepared = state.documents.prepare(&mut request, limits.max_selections);
        let operation = prepared.label;
        // A document too large to check, and text Postgres cannot store, are refused before
        // anything runs (see the module). Nothing else looks at a refused document: it may
        // be built to make any walk through its fragments long.
        let (refusal, described) = match prepared.refusal {
            Some(refusal) => (Some(refusal), DescriptionKeys::default()),
            None => (
                unstorable::refusal(&mut request),
                DescriptionKeys::of(&mut request),
            ),
        };
        // Kept to name the code of an error raised before execution.
        let text = request.query.clone();
        let mut request = request.data(authentication.clone()).data(client.clone());
        if let Some(consistency) = consistency {
            request = request.data(consistency);
        }
        let schema = &state.schema;
        async move {
            let started = Instant::now();
            let mut response = match refusal {
                Some(refusal) => async_graphql::Response::from_errors(vec![refusal]),
                None => tokio::time::timeout_at(deadline, schema.execute(request))
                    .await
                    .unwrap_or_else(|_| timed_out(limits.request_timeout)),
            };
            described.describe(&mut response);
            request_errors::fill_in(&mut response.errors, &text);
            shorten_messages(&mut response.errors);
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

/// Longest error message sent. A parse error quotes the line it failed on, and a document
/// written on one line may be as long as the body: its answer would be as large again.
const MAX_MESSAGE_BYTES: usize = 1_024;

/// Cuts messages longer than [`MAX_MESSAGE_BYTES`] (on a character boundary, marked with `…`).
pub(super) fn shorten_messages(errors: &mut [async_graphql::ServerError]) {
    for error in errors {
        if error.message.len() > MAX_MESSAGE_BYTES {
            let mut end = MAX_MESSAGE_BYTES;
            while !error.message.is_char_boundary(end) {
                end -= 1;
            }
            error.message.truncate(end);
            error.message.push('…');
        }
    }
}

/// The answer to an operation stopped at its deadline. Dropping its future stopped it: nothing
/// of it runs on (async-graphql checks a document inline, and the bound on a document's size
/// keeps that short, see [`crate::graphql::expansion`]).
pub(super) fn timed_out(timeout: std::time::Duration) -> async_graphql::Response {
    let mut error = async_graphql::ServerError::new(
        format!(
            "the request took longer than {} s and was stopped; a mutation may have taken \
             effect: retry it with the same idempotency key",
            timeout.as_secs_f64()
        ),
        None,
    );
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", crate::graphql::error::Code::Timeout.as_str());
    error.extensions = Some(extensions);
    async_graphql::Response::from_errors(vec![error])
}

async fn websocket(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    let upgrade = upgrade.protocols(socket::Protocol::NAMES);
    let Some(protocol) = upgrade
        .selected_protocol()
        .and_then(|name| socket::Protocol::from_name(name.as_bytes()))
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            "ask for the graphql-transport-ws or graphql-ws protocol in Sec-WebSocket-Protocol",
        );
    };
    let schema = state.schema.clone();
    let documents = state.documents.clone();
    let sockets = state.sockets.clone();
    let api: Api = state.api.as_ref().clone();
    let largest = api.limits.max_body_bytes;
    upgrade
        .read_buffer_size(SOCKET_READ_BUFFER)
        .max_message_size(largest)
        .max_frame_size(largest)
        .on_upgrade(move |socket| {
            socket::serve(
                socket,
                socket::Shared {
                    schema,
                    api,
                    documents,
                    sockets,
                },
                protocol,
            )
        })
}

/// How much of a client's data one read of a socket takes in. A socket keeps a buffer of
/// this size and zero-fills it before each read, and it is read every time it is woken, so
/// each delivery to a subscriber paid a `memset` of tungstenite's default 128 KiB, and each
/// open socket kept 128 KiB resident. Clients send small messages (`subscribe` with its
/// query); a larger one, up to the request body limit, is read in several pieces.
const SOCKET_READ_BUFFER: usize = 4 * 1024;
