//! Errors GraphQL raises before a resolver runs carry `extensions.code` like every other:
//! `GRAPHQL_PARSE_FAILED`, `GRAPHQL_VALIDATION_FAILED` or `BAD_USER_INPUT`, the same over HTTP
//! and over both WebSocket protocols.

use serde_json::{Value, json};

use crate::support::{Server, code};
use crate::ws::{Protocol, Ws};

/// `(what, query, variables, code)`: every kind of refused request.
fn cases() -> Vec<(&'static str, String, Value, &'static str)> {
    let mut deep = String::from("name");
    for _ in 0..20 {
        deep = format!("ofType {{ {deep} }}");
    }
    // Each connection multiplies its children by its `first`.
    let complex =
        "tickets(first: 100) { edges { node { messages(first: 100) { edges { node { id } } } } } }";
    let page = "totalCount";
    vec![
        (
            "a syntax error",
            "{ me { email }".into(),
            json!({}),
            "GRAPHQL_PARSE_FAILED",
        ),
        (
            "an empty query",
            String::new(),
            json!({}),
            "GRAPHQL_PARSE_FAILED",
        ),
        (
            "an unknown field",
            "{ me { nope } }".into(),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "an unknown argument",
            format!("{{ tickets(nope: 1) {{ {page} }} }}"),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "a missing argument",
            "{ ticket { ticketId } }".into(),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "an unknown enum value in the document",
            format!("{{ tickets(filter: {{status: [NOPE]}}) {{ {page} }} }}"),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "a query nested too deep",
            format!("{{ __schema {{ types {{ fields {{ type {{ {deep} }} }} }} }} }}"),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "a query too complex",
            format!("{{ {complex} }}"),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "an unknown operation name",
            "query A { __typename }".into(),
            json!({}),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "an unknown enum value in a variable",
            format!(
                "query($s: [TicketStatusValue!]) {{ tickets(filter: {{status: $s}}) {{ {page} }} }}"
            ),
            json!({ "s": ["NOPE"] }),
            "BAD_USER_INPUT",
        ),
        (
            "a variable of the wrong type",
            format!("query($n: Int) {{ tickets(first: $n) {{ {page} }} }}"),
            json!({ "n": "many" }),
            "BAD_USER_INPUT",
        ),
        (
            "a required variable without a value",
            "query($id: ID!) { ticket(id: $id) { ticketId } }".into(),
            json!({}),
            "BAD_USER_INPUT",
        ),
    ]
}

#[tokio::test]
async fn every_parse_and_validation_error_over_http_has_a_code() {
    let server = Server::start("error_codes_http").await;
    let admin = server.admin().await;
    for (what, query, variables, expected) in cases() {
        let mut request = json!({ "query": query, "variables": variables });
        if what == "an unknown operation name" {
            request["operationName"] = json!("B");
        }
        let body: Value = server
            .http
            .post(server.url())
            .bearer_auth(&admin.token)
            .json(&request)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(code(&body), Some(expected), "{what}: {body}");
        let errors = body["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .all(|error| error["extensions"]["code"].is_string()),
            "{what}: every error has a code: {body}"
        );
    }

    // A body without `query` at all.
    for request in [json!({}), json!({ "variables": {} })] {
        let body: Value = server
            .http
            .post(server.url())
            .json(&request)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            code(&body),
            Some("GRAPHQL_PARSE_FAILED"),
            "{request}: {body}"
        );
    }

    // A text seen before (its parsed document is kept) gets the same codes.
    let (_, query, _, _) = &cases()[9];
    for _ in 0..2 {
        let body = server
            .gql(Some(&admin.token), query, json!({ "s": ["NOPE"] }))
            .await;
        assert_eq!(code(&body), Some("BAD_USER_INPUT"), "{body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn every_parse_and_validation_error_over_websocket_has_the_same_code() {
    let server = Server::start("error_codes_ws").await;
    let admin = server.admin().await;
    for protocol in [Protocol::TransportWs, Protocol::Legacy] {
        let mut ws = Ws::connect(&server, protocol, &admin.token).await;
        for (n, (what, query, variables, expected)) in cases().into_iter().enumerate() {
            if what == "an unknown operation name" {
                continue;
            }
            let id = n.to_string();
            ws.subscribe(&id, &query, variables).await;
            assert_eq!(
                ws.error_code(&id).await,
                expected,
                "{what} over {protocol:?}"
            );
        }
        ws.close().await;
    }

    // `graphql-transport-ws` refuses such an operation with `error` (and no `complete`).
    let mut ws = Ws::connect(&server, Protocol::TransportWs, &admin.token).await;
    ws.subscribe("bad", "{ me { nope } }", json!({})).await;
    match ws.frame().await {
        crate::ws::Frame::Json(value) => {
            assert_eq!(value["type"], "error", "{value}");
            assert_eq!(
                value["payload"][0]["extensions"]["code"],
                "GRAPHQL_VALIDATION_FAILED"
            );
        }
        other => panic!("{other:?}"),
    }
    ws.subscribe("good", "{ __typename }", json!({})).await;
    assert_eq!(ws.data("good").await["__typename"], "Query");
    ws.completed("good").await;
    server.stop().await;
}
