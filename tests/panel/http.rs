//! How the panel's files are served, seen over plain HTTP: content types, caching,
//! compression, the Content-Security-Policy, client routes answered with the app, and the
//! server's own paths never answered with it.

use reqwest::header;

use crate::Desk;

fn html(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header(header::ACCEPT, "text/html,application/xhtml+xml")
}

#[tokio::test]
async fn the_app_and_its_files_are_served_with_types_caching_compression_and_a_strict_policy() {
    let desk = Desk::start("http").await;
    // No automatic decompression: the test sees the bytes as sent.
    let client = reqwest::Client::builder().no_gzip().build().unwrap();

    let index = html(client.get(desk.app.url("/")))
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(index.status(), 200);
    let headers = index.headers().clone();
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "frame-ancestors 'none'",
    ] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(
        policy.contains(&format!("ws://{}", desk.app.addr())),
        "{policy}"
    );
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("http"),
        "{policy}"
    );
    // The index is small: served compressed only when it was worth compressing.
    let index_html = {
        let response = html(client.get(desk.app.url("/"))).send().await.unwrap();
        response.text().await.unwrap()
    };
    assert!(
        !index_html.contains("<script>"),
        "no inline script: {index_html}"
    );
    assert!(
        !index_html.contains("//"),
        "nothing from elsewhere: {index_html}"
    );

    // Each script and stylesheet of the page: hashed, immutable, compressed on request.
    let assets: Vec<&str> = index_html
        .split(['"', '\''])
        .filter(|part| part.starts_with("/assets/"))
        .collect();
    assert!(
        assets.iter().any(|asset| asset.ends_with(".js")),
        "{index_html}"
    );
    assert!(
        assets.iter().any(|asset| asset.ends_with(".css")),
        "{index_html}"
    );
    for asset in &assets {
        let plain = client.get(desk.app.url(asset)).send().await.unwrap();
        assert_eq!(plain.status(), 200, "{asset}");
        let expected_type = if asset.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(plain.headers()[header::CONTENT_TYPE], expected_type);
        assert_eq!(
            plain.headers()[header::CACHE_CONTROL],
            "public, max-age=31536000, immutable"
        );
        assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
        let plain_len = plain.bytes().await.unwrap().len();
        for (accept, coding) in [("gzip, deflate, br", "br"), ("gzip", "gzip")] {
            let compressed = client
                .get(desk.app.url(asset))
                .header(header::ACCEPT_ENCODING, accept)
                .send()
                .await
                .unwrap();
            assert_eq!(compressed.headers()[header::CONTENT_ENCODING], coding);
            assert_eq!(compressed.headers()[header::VARY], "accept-encoding");
            let len = compressed.bytes().await.unwrap().len();
            assert!(
                len * 2 < plain_len,
                "{asset} {coding}: {len} of {plain_len}"
            );
        }
        // The compressed copies are not files of their own.
        let copy = client
            .get(desk.app.url(&format!("{asset}.gz")))
            .send()
            .await
            .unwrap();
        assert_eq!(copy.status(), 404, "{asset}.gz");
    }

    // A client route is answered with the app; a missing file or an API path is not.
    let route = html(
        client.get(
            desk.app
                .url("/tickets/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"),
        ),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(route.status(), 200);
    assert_eq!(route.text().await.unwrap(), index_html);
    for path in [
        "/assets/missing-abc123.js",
        "/favicon.ico",
        "/media/abc",
        "/broadcasts/0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b/report",
        "/graphql/nope",
        "/telegram/other",
    ] {
        let response = html(client.get(desk.app.url(path))).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    // A request that is not a page visit (an API client) gets no page either.
    let json = client
        .get(desk.app.url("/inbox"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 404);
    let post = client.post(desk.app.url("/inbox")).send().await.unwrap();
    assert_eq!(post.status(), 404);

    // The server's own routes still answer as themselves.
    let health = html(client.get(desk.app.url("/healthz")))
        .send()
        .await
        .unwrap();
    assert_eq!(health.headers()[header::CONTENT_TYPE], "application/json");
    let graphiql = html(client.get(desk.app.url("/graphql")))
        .send()
        .await
        .unwrap();
    assert!(graphiql.text().await.unwrap().contains("GraphiQL"));
    let webhook = client
        .post(desk.app.url(crate::WEBHOOK_PATH))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 401, "the webhook, without its secret");
    desk.stop().await;
}
