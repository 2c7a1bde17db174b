//! GraphiQL works without internet access: the page and everything it loads come from the
//! server, and its Token field signs both the HTTP requests and the WebSocket.

use serde_json::json;

use crate::protocol::node_script;
use crate::support::Server;

/// The values of every `src="…"` and `href="…"` attribute of `html`.
fn references(html: &str) -> Vec<String> {
    ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| {
            html.split(attribute)
                .skip(1)
                .filter_map(|rest| rest.split('"').next())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn graphiql_and_every_file_it_loads_are_served_by_the_api() {
    let server = Server::start("graphiql_offline").await;
    let page = server.http.get(server.url()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("GraphiQL"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://") && !html.contains("src=\"//"),
        "the page refers to nothing outside the server: {html}"
    );
    let files = references(&html);
    let local: Vec<_> = files
        .iter()
        .filter(|file| !file.starts_with("data:"))
        .collect();
    assert_eq!(
        local.len(),
        4,
        "GraphiQL, its stylesheet, React, ReactDOM: {files:?}"
    );
    for file in local {
        assert!(file.starts_with("/graphql/assets/"), "{file}");
        let response = server
            .http
            .get(format!("http://{}{file}", server.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{file}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if file.ends_with(".css") {
            "text/css"
        } else {
            "text/javascript"
        };
        assert!(content_type.starts_with(expected), "{file}: {content_type}");
        let body = response.bytes().await.unwrap();
        assert!(body.len() > 10_000, "{file}: {} bytes", body.len());
    }
    let missing = server
        .http
        .get(format!("http://{}/graphql/assets/nope.js", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn the_token_field_signs_http_requests_and_the_websocket_connection_init() {
    let server = Server::start("graphiql_token").await;
    let admin = server.admin().await;
    let outcome = node_script(
        "graphiql-page.mjs",
        vec![
            format!("http://{}", server.addr),
            admin.token.clone(),
            "{ me { email } }".to_owned(),
        ],
    )
    .await;
    let bearer = format!("Bearer {}", admin.token);
    let options = &outcome["options"];
    assert_eq!(
        options["headers"]["Authorization"],
        json!(bearer),
        "{outcome}"
    );
    assert_eq!(
        options["wsConnectionParams"]["authorization"],
        json!(bearer),
        "{outcome}"
    );
    assert_eq!(
        options["subscriptionUrl"],
        json!(format!("ws://{}/graphql/ws", server.addr))
    );
    let me = json!({ "data": { "me": { "email": "admin@example.com" } } });
    assert_eq!(outcome["http"], me, "over HTTP: {outcome}");
    assert_eq!(outcome["ws"], me, "over the WebSocket: {outcome}");
    assert_eq!(outcome["stored"], json!(admin.token), "kept for the tab");
    server.stop().await;
}
