//! The agents' web app at `/`: the files `npm run build` wrote to `panel/dist`, embedded in
//! the binary at compile time (or, when the binary was built without them, one page saying
//! how to build them; `api/build.rs` decides).
//!
//! It is the router's fallback, so every route of the server (`/graphql`, `/healthz`,
//! `/readyz`, `/metrics`, the webhook, and routes added later) wins over it. What it answers:
//!
//! - a file of the build, by its path, with its content type; a compressed copy made at build
//!   time (`.br`, `.gz`) when the browser accepts one; hashed files under `/assets/` are
//!   cached for a year as immutable, everything else is revalidated (`no-cache`);
//! - for any other `GET` a browser navigates to (it accepts `text/html`), the panel's
//!   `index.html`, whose own router shows the screen of that path — except under the
//!   server's own prefixes ([`SERVER_PATHS`]) and for paths naming a file (a dot in the last
//!   segment), which answer 404 as before;
//! - every answer carries a strict Content-Security-Policy: scripts, styles, images and
//!   connections from this origin only (its WebSocket included), no inline script or style,
//!   no frames.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use include_dir::{Dir, File, include_dir};

#[cfg(panel_built)]
static FILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../panel/dist");
#[cfg(not(panel_built))]
static FILES: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/assets/panel-missing");

/// Whether this binary carries the built panel (false: the page saying how to build it).
pub const BUILT: bool = cfg!(panel_built);

/// Path prefixes of the server's own (and those kept for its HTTP endpoints to come): a path
/// under one of them is never answered with the panel's page.
pub const SERVER_PATHS: [&str; 7] = [
    "/graphql",
    "/healthz",
    "/readyz",
    "/metrics",
    "/media",
    "/telegram",
    "/api",
];

/// The panel shows broadcasts at `/broadcasts` and `/broadcasts/<id>`; deeper paths
/// (`/broadcasts/<id>/recipients.csv`) are the server's.
const BROADCASTS: &str = "/broadcasts/";

/// Hashed file names, which never change content: cached as immutable.
const HASHED_DIR: &str = "assets/";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The answer to whatever no route of the server took.
pub(super) async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = uri.path();
    let relative = path.trim_start_matches('/');
    if !relative.is_empty()
        && !is_precompressed_copy(relative)
        && let Some(file) = FILES.get_file(relative)
    {
        return serve(file, relative, &headers);
    }
    if is_server_path(path) || names_a_file(path) || !accepts_html(&headers) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match FILES.get_file("index.html") {
        Some(index) => serve(index, "index.html", &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Whether `path` is one of the server's own, or lies under one.
pub fn is_server_path(path: &str) -> bool {
    if let Some(rest) = path.strip_prefix(BROADCASTS)
        && rest.trim_end_matches('/').contains('/')
    {
        return true;
    }
    SERVER_PATHS.iter().any(|prefix| {
        path == *prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

fn names_a_file(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|last| last.contains('.'))
}

fn is_precompressed_copy(relative: &str) -> bool {
    [".br", ".gz"].iter().any(|suffix| {
        relative
            .strip_suffix(suffix)
            .is_some_and(|original| FILES.get_file(original).is_some())
    })
}

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|accept| accept.contains("text/html") || accept.contains("*/*"))
}

/// The compressed copy to send, by the client's `Accept-Encoding`: brotli, then gzip.
pub fn choose_encoding(accept_encoding: Option<&str>, available: &[&str]) -> Option<&'static str> {
    let accepted: Vec<&str> = accept_encoding
        .unwrap_or_default()
        .split(',')
        .filter_map(|item| {
            let mut parts = item.split(';');
            let coding = parts.next()?.trim();
            let refused = parts.any(|param| {
                param
                    .trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (!refused).then_some(coding)
        })
        .collect();
    [("br", "br"), ("gzip", "gz")]
        .into_iter()
        .find(|(coding, suffix)| {
            available.contains(suffix)
                && accepted
                    .iter()
                    .any(|accepted| accepted.eq_ignore_ascii_case(coding))
        })
        .map(|(coding, _)| coding)
}

fn content_type(relative: &str) -> &'static str {
    let extension = relative.rsplit('.').next().unwrap_or_default();
    match extension {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        _ => "application/octet-stream",
    }
}

/// The Content-Security-Policy of every answer of the panel. The WebSocket of this origin
/// is named as well as `'self'`, for browsers that do not count `ws:` as the same origin.
pub fn content_security_policy(host: Option<&str>) -> String {
    let socket = host
        .filter(|host| {
            !host.is_empty()
                && host.len() <= 255
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map(|host| format!(" ws://{host} wss://{host}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob:; \
         media-src 'self' blob:; font-src 'self'; connect-src 'self'{socket}; \
         manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

fn serve(file: &'static File<'static>, relative: &str, request: &HeaderMap) -> Response {
    let available: Vec<&str> = ["br", "gz"]
        .into_iter()
        .filter(|suffix| FILES.get_file(format!("{relative}.{suffix}")).is_some())
        .collect();
    let accept = request
        .get(header::ACCEPT_ENCODING)
        .and_then(|value| value.to_str().ok());
    let (body, encoding) = match choose_encoding(accept, &available) {
        Some(coding) => {
            let suffix = if coding == "br" { "br" } else { "gz" };
            match FILES.get_file(format!("{relative}.{suffix}")) {
                Some(copy) => (copy.contents(), Some(coding)),
                None => (file.contents(), None),
            }
        }
        None => (file.contents(), None),
    };
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(relative)),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if relative.starts_with(HASHED_DIR) {
            IMMUTABLE
        } else {
            REVALIDATE
        }),
    );
    if let Some(coding) = encoding {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    if !available.is_empty() {
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    let host = request
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(host)) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_servers_own_paths_are_never_the_panels() {
        for path in [
            "/graphql",
            "/graphql/ws",
            "/healthz",
            "/metrics",
            "/media/abc",
            "/broadcasts/1/report.csv",
            "/telegram/webhook",
        ] {
            assert!(is_server_path(path), "{path}");
        }
        for path in [
            "/",
            "/tickets/1",
            "/graphqlish",
            "/inbox",
            "/mediation",
            "/broadcasts",
            "/broadcasts/1",
            "/broadcasts/1/",
        ] {
            assert!(!is_server_path(path), "{path}");
        }
    }

    #[test]
    fn brotli_then_gzip_as_accepted_and_available() {
        let both = ["br", "gz"];
        assert_eq!(
            choose_encoding(Some("gzip, deflate, br"), &both),
            Some("br")
        );
        assert_eq!(choose_encoding(Some("gzip"), &both), Some("gzip"));
        assert_eq!(choose_encoding(Some("br;q=0, gzip"), &both), Some("gzip"));
        assert_eq!(choose_encoding(Some("br"), &["gz"]), None);
        assert_eq!(choose_encoding(None, &both), None);
        assert_eq!(choose_encoding(Some("identity"), &both), None);
    }

    #[test]
    fn the_policy_allows_this_origin_only_and_names_its_socket() {
        let policy = content_security_policy(Some("desk.example:8080"));
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(policy.contains("ws://desk.example:8080 wss://desk.example:8080"));
        assert!(!policy.contains("unsafe"), "{policy}");
        let odd = content_security_policy(Some("evil.example; script-src *"));
        assert!(!odd.contains("evil"), "{odd}");
    }

    #[test]
    fn the_embedded_files_have_an_index_page() {
        let index = FILES
            .get_file("index.html")
            .map(File::contents)
            .unwrap_or_default();
        let text = String::from_utf8_lossy(index);
        if BUILT {
            assert!(text.contains("type=\"module\""), "{text}");
            assert!(!text.contains("<script>"), "no inline script: {text}");
        } else {
            assert!(text.contains("npm run build"), "{text}");
        }
    }
}
