//! GraphiQL, served from the binary: its page (with a field for the token that signs the
//! requests and the WebSocket's `connection_init`) and the pinned files it runs on, so it works
//! without internet access. The files and their licences are in `api/assets/graphiql/`;
//! `scripts/fetch-graphiql.sh` reproduces them.

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::state::AppState;

/// The page, as `GET /graphql` serves it.
const PAGE: &str = include_str!("../../assets/graphiql/index.html");

const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Each file under `/graphql/assets/`: its name there (with its version, so a cached copy is
/// never stale), type and bytes.
const ASSETS: [(&str, &str, &[u8]); 4] = [
    (
        "graphiql-3.9.0.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/graphiql.min.js"),
    ),
    (
        "graphiql-3.9.0.min.css",
        CSS,
        include_bytes!("../../assets/graphiql/graphiql.min.css"),
    ),
    (
        "react-18.3.1.production.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/react.production.min.js"),
    ),
    (
        "react-dom-18.3.1.production.min.js",
        JAVASCRIPT,
        include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
    ),
];

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/graphql/assets/{name}", get(asset))
}

/// `GET /graphql`: the GraphiQL page.
pub(super) async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(known, _, _)| *known == name) {
        Some((_, content_type, bytes)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // The name changes with the version.
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            *bytes,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_refers_to_each_asset_and_to_nothing_outside() {
        for (name, _, _) in ASSETS {
            assert!(
                PAGE.contains(&format!("\"/graphql/assets/{name}\"")),
                "{name} is not on the page"
            );
        }
        assert!(
            !PAGE.contains("http://") && !PAGE.contains("https://") && !PAGE.contains("//unpkg")
        );
    }
}
