//! The HTTP transport's bounds: body size, content type, batch size, depth, introspection.

use serde_json::{Value, json};

use crate::support::{Server, code, test_config};

#[tokio::test]
async fn requests_outside_the_bounds_are_refused_with_a_clear_error() {
    let server = Server::start("bounds").await;
    let page = server.http.get(server.url()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );

    let huge = "x".repeat(300 * 1024);
    let response = server
        .http
        .post(server.url())
        .json(&json!({ "query": format!("{{ me {{ email }} }} # {huge}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(code(&body), Some("VALIDATION"));

    let response = server
        .http
        .post(server.url())
        .header("content-type", "text/plain")
        .body("{ me { email } }")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);

    let response = server
        .http
        .post(server.url())
        .header("content-type", "application/json")
        .body("{ not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let batch: Vec<Value> = (0..11)
        .map(|_| json!({ "query": "{ me { email } }" }))
        .collect();
    let response = server
        .http
        .post(server.url())
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    let mut deep = String::from("name");
    for _ in 0..20 {
        deep = format!("ofType {{ {deep} }}");
    }
    let body = server
        .gql(
            None,
            &format!("{{ __schema {{ types {{ fields {{ type {{ {deep} }} }} }} }} }}"),
            json!({}),
        )
        .await;
    let message = body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(message.contains("nested too deep"), "{body}");

    let allowed = server
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert_eq!(allowed["data"]["__schema"]["queryType"]["name"], "Query");
    server.stop().await;

    let mut config = test_config();
    config.limits.introspection = false;
    let closed = Server::start_with("nointrospection", config).await;
    let refused = closed
        .gql(None, "{ __schema { queryType { name } } }", json!({}))
        .await;
    assert!(
        refused.get("errors").is_some() || refused["data"]["__schema"].is_null(),
        "{refused}"
    );
    closed.stop().await;
}

/// The text of the server's `/metrics`.
async fn metrics(server: &Server) -> String {
    server
        .http
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The `ledgerdesk_graphql_requests_total` count of `operation`, over both results. The
/// recorder is the process's, shared by every server of this test binary: counts only grow.
fn requests(text: &str, operation: &str) -> u64 {
    let prefix = format!("ledgerdesk_graphql_requests_total{{operation=\"{operation}\",");
    text.lines()
        .filter(|line| line.starts_with(&prefix))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn a_repeated_operation_answers_as_a_fresh_one_and_metrics_name_it_by_its_root_field() {
    let server = Server::start("known_documents").await;
    let admin = server.admin().await;
    let token = Some(admin.token.as_str());
    // Each text with variables that fit and variables that may not: whatever the rules answer
    // to the second on a fresh text (a refusal, except for a null given to a non-null variable
    // used where null is allowed, which async-graphql's rules let through), the same text,
    // parsed once and kept, must answer the same.
    let cases = [
        (
            "query($status: [TicketStatusValue!]) { tickets(first: 2, filter: {status: $status}) { edges { node { id } } } }",
            json!({ "status": ["OPEN"] }),
            json!({ "status": ["OPEN", "NOPE"] }),
        ),
        (
            "query($filter: TicketFilter) { tickets(first: 2, filter: $filter) { edges { node { id } } } }",
            json!({ "filter": { "unassigned": true } }),
            json!({ "filter": { "unassigned": true, "statuz": "OPEN" } }),
        ),
        (
            "query($first: Int!) { tickets(first: $first) { edges { node { id } } } }",
            json!({ "first": 2 }),
            json!({ "first": "two" }),
        ),
        (
            "query($first: Int!) { tickets(first: $first) { pageInfo { hasNextPage } } }",
            json!({ "first": 2 }),
            json!({ "first": null }),
        ),
        (
            "query($first: Int = 3) { tickets(first: $first) { edges { cursor } } }",
            json!({ "first": 2 }),
            json!({ "first": 2.5 }),
        ),
        (
            "mutation($input: ReplyToTicketInput!) { replyToTicket(input: $input) { position } }",
            json!({ "input": { "ticketId": "nope", "text": "hi" } }),
            json!({ "input": { "text": "hi" } }),
        ),
    ];
    for (text, fitting, bad) in cases {
        let fresh = server.gql(token, text, bad.clone()).await;
        let allowed = bad
            .as_object()
            .is_some_and(|bad| bad.values().any(Value::is_null));
        assert_eq!(
            fresh["errors"][0]["message"].is_string(),
            !allowed,
            "{text}: {fresh}"
        );
        let first = server.gql(token, text, fitting.clone()).await;
        let second = server.gql(token, text, fitting.clone()).await;
        assert_eq!(first, second, "{text}");
        let again = server.gql(token, text, bad).await;
        assert_eq!(again, fresh, "{text}: answered as on a fresh text");
    }

    // The limits still apply to a kept text: complexity with its variables.
    let nested = "query($n: Int, $m: Int) { tickets(first: $n) { edges { node { messages(first: $m) { edges { node { id } } } } } } }";
    let small = json!({ "n": 2, "m": 2 });
    server.ok(&admin.token, nested, small.clone()).await;
    server.ok(&admin.token, nested, small).await;
    let big = server
        .gql(token, nested, json!({ "n": 100, "m": 100 }))
        .await;
    assert!(
        big["errors"][0]["message"]
            .as_str()
            .is_some_and(|message| message.contains("too complex")),
        "{big}"
    );
    assert!(big["data"].is_null(), "{big}");

    // A request naming an operation its text does not have is refused, each time.
    let before = metrics(&server).await;
    for _ in 0..2 {
        let body: Value = server
            .http
            .post(server.url())
            .bearer_auth(&admin.token)
            .json(&json!({ "query": "query Mine { me { email } }", "operationName": "Other" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            body["errors"][0]["message"]
                .as_str()
                .is_some_and(|message| message.contains("Unknown operation")),
            "{body}"
        );
    }
    // `/metrics` names a request by the root field it runs, never by the client's names,
    // and puts the rest under `other`.
    let named = "query WhateverTheClientCallsIt { tickets(first: 1) { edges { cursor } } }";
    server.ok(&admin.token, named, json!({})).await;
    let after = metrics(&server).await;
    assert!(
        requests(&after, "tickets") > requests(&before, "tickets"),
        "{after}"
    );
    assert!(
        requests(&after, "other") >= requests(&before, "other") + 2,
        "{after}"
    );
    assert!(!after.contains("WhateverTheClientCallsIt"), "{after}");
    assert!(!after.contains("\"Other\""), "{after}");
    assert!(
        after.contains("ledgerdesk_graphql_request_duration_seconds_bucket{operation=\"tickets\","),
        "{after}"
    );
    server.stop().await;
}
