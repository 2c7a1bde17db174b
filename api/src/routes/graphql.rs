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

mod socket;

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
    let peer = connect.map(|Extension(ConnectInfo(addr))| addr.ip());
    let client = ClientAddr::of(peer, &headers, &state.api.auth.config().trusted_proxies);
    let run = |mut request: async_graphql::Request| {
        let operation = state.documents.prepare(&mut request);
        // Text Postgres cannot store is refused before anything runs (see the module).
        let unstorable = unstorable::refusal(&mut request);
        let described = DescriptionKeys::of(&mut request);
        // Kept to name the code of an error raised before execution.
        let text = request.query.clone();
        let mut request = request.data(authentication.clone()).data(client.clone());
        if let Some(consistency) = consistency {
            request = request.data(consistency);
        }
        let schema = &state.schema;
        async move {
            let started = Instant::now();
            let mut response = match unstorable {
                Some(refusal) => async_graphql::Response::from_errors(vec![refusal]),
                None => schema.execute(request).await,
            };
            described.describe(&mut response);
            request_errors::fill_in(&mut response.errors, &text);
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
    let api: Api = state.api.as_ref().clone();
    let largest = api.limits.max_body_bytes;
    upgrade
        .read_buffer_size(SOCKET_READ_BUFFER)
        .max_message_size(largest)
        .max_frame_size(largest)
        .on_upgrade(move |socket| socket::serve(socket, schema, api, protocol))
}

/// How much of a client's data one read of a socket takes in. A socket keeps a buffer of
/// this size and zero-fills it before each read, and it is read every time it is woken, so
/// each delivery to a subscriber paid a `memset` of tungstenite's default 128 KiB, and each
/// open socket kept 128 KiB resident. Clients send small messages (`subscribe` with its
/// query); a larger one, up to the request body limit, is read in several pieces.
const SOCKET_READ_BUFFER: usize = 4 * 1024;
