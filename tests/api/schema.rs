//! `schema.graphql` at the repository root is the schema the code serves.

/// Regenerate with `UPDATE_SCHEMA=1 cargo test --test api schema`.
#[test]
fn schema_graphql_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let sdl = api::graphql::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql differs from the schema the code serves; regenerate it with \
         `UPDATE_SCHEMA=1 cargo test --test api schema` and review the diff"
    );
}

#[test]
fn the_schema_describes_itself_and_names_the_date_time_specification() {
    let sdl = api::graphql::sdl();
    let description = api::graphql::introspection::SCHEMA_DESCRIPTION;
    assert!(
        sdl.contains(&format!("\"\"\"\n{description}\n\"\"\"\nschema {{")),
        "the schema block carries our description"
    );
    assert!(!sdl.contains("A GraphQL Schema defines the capabilities"));
    assert!(sdl.contains(
        "scalar DateTime @specifiedBy(url: \"https://datatracker.ietf.org/doc/html/rfc3339\")"
    ));
    assert!(!sdl.contains("Implement the DateTime<Utc> scalar"));
}

#[tokio::test]
async fn introspection_tells_the_same_schema_description_and_date_time_specification() {
    use serde_json::json;

    let server = crate::support::Server::start("introspection").await;
    let description = api::graphql::introspection::SCHEMA_DESCRIPTION;
    for query in [
        "{ __schema { description } }",
        "query Intro { s: __schema { d: description queryType { name } } }",
        "{ __schema { ...Described } } fragment Described on __Schema { description }",
    ] {
        let body = server.gql(None, query, json!({})).await;
        assert!(body["errors"].is_null(), "{query}: {body:#}");
        let schema = body["data"].as_object().unwrap().values().next().unwrap();
        let described = schema.as_object().unwrap().values().next().unwrap();
        assert_eq!(described, description, "{query}");
    }
    let scalar = server
        .gql(
            None,
            "{ __type(name: \"DateTime\") { specifiedByURL description } }",
            json!({}),
        )
        .await;
    assert_eq!(
        scalar["data"]["__type"]["specifiedByURL"],
        "https://datatracker.ietf.org/doc/html/rfc3339"
    );
    assert!(
        scalar["data"]["__type"]["description"]
            .as_str()
            .unwrap()
            .contains("RFC 3339")
    );
    server.stop().await;
}
