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
