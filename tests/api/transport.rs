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
