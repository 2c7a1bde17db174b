//! `GET /media/{id}`: a file of a message, fetched from Telegram on first request and then
//! served from storage; `POST /media`: an agent uploads a file to send in a reply.
//!
//! Who may read: a caller who may read tickets and whose scope covers the message's ticket,
//! as of now. The caller is the one of the `Authorization` header, or the one a signed URL
//! names (`exp`, `by`, `sig` in the query, see [`crate::media_refs::signed_url`]): a signed URL
//! still checks that caller's current role and categories (or that the token is not revoked),
//! so a URL handed out before a change does not outlive it.
//!
//! Answers: `Content-Type` from the stored type, `Content-Disposition` (inline for images,
//! audio and video; attachment otherwise) with a sanitized name, `X-Content-Type-Options:
//! nosniff`, a sandboxing `Content-Security-Policy`, `ETag` (the content's sha256) with
//! `If-None-Match`, `Cache-Control: private`, one byte range (`Range: bytes=…`, 206; 416 for
//! a range outside the file).

use std::ops::Range;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Authentication, Caller, Permission, Principal};
use crate::media_refs::{MediaRef, Target, resolve};
use crate::state::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/media", post(upload))
        .route("/media/{id}", get(serve))
}

/// A signed URL's query.
#[derive(Debug, Deserialize)]
struct Signed {
    exp: Option<i64>,
    by: Option<String>,
    sig: Option<String>,
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(json!({ "error": message, "code": code })),
    )
        .into_response()
}

/// Whether `row` is a customer's file message whose file was forgotten with the customer: a
/// message of a kind that always has a file, recorded without one (the read models clear it
/// at `customer.forgotten`).
fn forgotten(row: &projections::tickets::MessageRow) -> bool {
    use domain::content::MessageKind as K;
    row.direction == projections::tickets::Direction::In
        && row.file_id.is_none()
        && matches!(
            row.kind,
            K::Photo
                | K::Video
                | K::Document
                | K::Audio
                | K::Voice
                | K::VideoNote
                | K::Sticker
                | K::Animation
        )
}

fn not_found() -> Response {
    refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "no such media")
}

fn bearer(headers: &HeaderMap) -> Option<Option<&str>> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok();
    Some(value.and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }))
}

/// The caller of a request: from a signed URL, else from the bearer credential.
async fn caller(
    state: &AppState,
    id: &str,
    signed: &Signed,
    headers: &HeaderMap,
) -> Result<Caller, Response> {
    let auth = &state.api.auth;
    if signed.sig.is_some() || signed.exp.is_some() || signed.by.is_some() {
        let (Some(media), Some(exp), Some(by), Some(sig)) = (
            state.api.media.as_ref(),
            signed.exp,
            signed.by.as_deref(),
            signed.sig.as_deref(),
        ) else {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "a signed media URL needs exp, by and sig",
            ));
        };
        let now = chrono::Utc::now().timestamp();
        if let Err(why) = media.signer().verify(id, exp, by, sig, now) {
            return Err(refuse(StatusCode::FORBIDDEN, "FORBIDDEN", &why.to_string()));
        }
        let Ok(principal) = by.parse::<Principal>() else {
            return Err(refuse(StatusCode::FORBIDDEN, "FORBIDDEN", "unknown signer"));
        };
        return match auth.caller_now(&principal).await {
            Ok(caller) => Ok(caller),
            Err(crate::auth::AuthError::Unauthenticated(why)) => {
                Err(refuse(StatusCode::FORBIDDEN, "FORBIDDEN", why))
            }
            Err(_) => Err(unavailable()),
        };
    }
    let authentication = match bearer(headers) {
        Some(Some(token)) => auth.authenticate(Some(token)).await,
        Some(None) => Authentication::Refused("use Authorization: Bearer <token>"),
        None => Authentication::Anonymous,
    };
    match authentication {
        Authentication::Authenticated(caller) => Ok(caller),
        Authentication::Refused(why) => {
            Err(refuse(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", why))
        }
        Authentication::Unavailable => Err(unavailable()),
        Authentication::Anonymous => Err(refuse(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "send Authorization: Bearer <token>, or use the signed url of the media",
        )),
    }
}

fn unavailable() -> Response {
    let mut response = refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "the database cannot be reached; try again",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

async fn serve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(signed): Query<Signed>,
    headers: HeaderMap,
) -> Response {
    let Some(media) = state.api.media.clone() else {
        return not_found();
    };
    let Ok(reference) = id.parse::<MediaRef>() else {
        return not_found();
    };
    let caller = match caller(&state, &id, &signed, &headers).await {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !caller.may(Permission::ReadTickets) {
        return refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this caller may not read tickets",
        );
    }
    let pool = &state.api.pool;
    let row = match projections::tickets::queries::message(pool, reference.message).await {
        Ok(Some(row)) => row,
        Ok(None) => return not_found(),
        Err(error) => return database(&error),
    };
    let Some(resolved) = resolve(reference, &row) else {
        if forgotten(&row) {
            return refuse(
                StatusCode::GONE,
                "FORGOTTEN",
                "the customer's personal data was forgotten, with their files",
            );
        }
        return not_found();
    };
    match projections::tickets::queries::category(pool, resolved.ticket).await {
        Ok(Some(category)) if caller.ticket_scope().covers(category) => {}
        // A ticket outside the caller's categories is as good as absent to them.
        Ok(_) => return not_found(),
        Err(error) => return database(&error),
    }
    let (key, name) = match &resolved.target {
        Target::Upload(upload) => match media.upload_row(*upload).await {
            Ok(Some(row)) => (media::upload_key(row.id), Some(row.file_name)),
            Ok(None) => return not_found(),
            Err(error) => return media_error(&error, &resolved.metadata),
        },
        Target::Telegram(source) => (source.key(), resolved.file_name.clone()),
    };
    // Twice at most: a copy deleted from storage behind our back is forgotten and fetched
    // again.
    for _ in 0..2 {
        let object = match &resolved.target {
            Target::Telegram(source) => media.telegram_file(source).await,
            Target::Upload(_) => match media.object(&key).await {
                Ok(Some(object)) => Ok(object),
                Ok(None) => return not_found(),
                Err(error) => Err(error),
            },
        };
        let object = match object {
            Ok(object) => object,
            Err(error) => return media_error(&error, &resolved.metadata),
        };
        match respond(&media, &object, name.as_deref(), &headers).await {
            Err(media::MediaError::Storage(media::StorageError::Missing)) => {
                tracing::warn!(key = %object.key, "a stored media copy is missing; fetching it again");
                if let Err(error) = media.forget(&object.key).await {
                    return media_error(&error, &resolved.metadata);
                }
                if matches!(resolved.target, Target::Upload(_)) {
                    return refuse(StatusCode::GONE, "GONE", "the uploaded file is gone");
                }
            }
            Err(error) => return media_error(&error, &resolved.metadata),
            Ok(response) => return response,
        }
    }
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "UNAVAILABLE",
        "the stored copy could not be read",
    )
}

fn database(error: &sqlx::Error) -> Response {
    if eventlog::is_unavailable(error) {
        return unavailable();
    }
    tracing::error!(%error, "media: database error");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
}

fn media_error(error: &media::MediaError, metadata: &Value) -> Response {
    use media::{FetchError, MediaError};
    match error {
        MediaError::Fetch(FetchError::TooLarge { size }) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(json!({
                "error": "too large to fetch through the Bot API (20 MB); a local Bot API \
                          server lifts the limit (see docs/operations.md)",
                "code": "TOO_LARGE_TO_FETCH",
                "size": size,
                "media": metadata,
            })),
        )
            .into_response(),
        MediaError::Fetch(FetchError::Gone(_)) => {
            refuse(StatusCode::GONE, "GONE", "Telegram no longer has this file")
        }
        MediaError::Fetch(FetchError::NoBot) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "no Telegram bot is configured to fetch files with",
        ),
        MediaError::Fetch(FetchError::Unavailable(why)) => {
            tracing::warn!(reason = %why, "cannot fetch a file from Telegram");
            let mut response = refuse(
                StatusCode::BAD_GATEWAY,
                "UNAVAILABLE",
                "the file could not be fetched from Telegram; try again",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
            response
        }
        MediaError::TimedOut => refuse(
            StatusCode::GATEWAY_TIMEOUT,
            "UNAVAILABLE",
            "fetching the file from Telegram took too long; try again",
        ),
        MediaError::Database(error) => database(error),
        MediaError::Storage(error) => {
            tracing::error!(%error, "media storage failed");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the media storage failed",
            )
        }
    }
}

/// Types a browser may show inline; anything else is offered as a download.
fn inline(mime: &str) -> bool {
    matches!(
        mime,
        "image/jpeg" | "image/png" | "image/gif" | "image/webp"
    ) || mime.starts_with("video/")
        || mime.starts_with("audio/")
}

/// The `Content-Disposition` of `name`: an ASCII fallback and the UTF-8 name (RFC 6266).
fn disposition(mime: &str, name: Option<&str>) -> String {
    let kind = if inline(mime) { "inline" } else { "attachment" };
    let Some(name) = name.map(media::sanitize_file_name) else {
        return kind.to_owned();
    };
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// The one range of a `Range` header within `size` bytes: `Ok(None)` for no header (or one
/// this server does not split, such as several ranges: the whole file is sent), `Err(())` for
/// a range outside the file.
fn range(headers: &HeaderMap, size: u64) -> Result<Option<Range<u64>>, ()> {
    let Some(value) = headers.get(header::RANGE) else {
        return Ok(None);
    };
    let Some(spec) = value
        .to_str()
        .ok()
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (start, end) = spec.split_once('-').ok_or(())?;
    let (start, end) = (start.trim(), end.trim());
    let parsed = if start.is_empty() {
        let suffix: u64 = end.parse().map_err(|_| ())?;
        if suffix == 0 {
            return Err(());
        }
        size.saturating_sub(suffix)..size
    } else {
        let start: u64 = start.parse().map_err(|_| ())?;
        let end = if end.is_empty() {
            size
        } else {
            end.parse::<u64>()
                .map_err(|_| ())?
                .saturating_add(1)
                .min(size)
        };
        start..end
    };
    if parsed.start >= size || parsed.start >= parsed.end {
        return Err(());
    }
    Ok(Some(parsed))
}

/// The answer for a stored object.
async fn respond(
    media: &media::MediaService,
    object: &media::ObjectRow,
    name: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, media::MediaError> {
    let size = u64::try_from(object.size).unwrap_or_default();
    let etag = format!("\"{}\"", object.sha256);
    let mut common = HeaderMap::new();
    let mut put = |name: header::HeaderName, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            common.insert(name, value);
        }
    };
    put(header::ETAG, &etag);
    put(header::CACHE_CONTROL, "private, max-age=300");
    put(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    put(header::ACCEPT_RANGES, "bytes");
    put(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; sandbox",
    );
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',').any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/") == etag
            })
        });
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    put(header::CONTENT_TYPE, &object.mime_type);
    put(
        header::CONTENT_DISPOSITION,
        &disposition(&object.mime_type, name),
    );
    let wanted = match range(headers, size) {
        Ok(wanted) => wanted,
        Err(()) => {
            put(header::CONTENT_RANGE, &format!("bytes */{size}"));
            return Ok((StatusCode::RANGE_NOT_SATISFIABLE, common).into_response());
        }
    };
    let status = match &wanted {
        Some(r) => {
            put(
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{size}", r.start, r.end - 1),
            );
            StatusCode::PARTIAL_CONTENT
        }
        None => StatusCode::OK,
    };
    let length = wanted.as_ref().map_or(size, |r| r.end - r.start);
    put(header::CONTENT_LENGTH, &length.to_string());
    let body = if size == 0 {
        Body::empty()
    } else {
        Body::from_stream(media.read(&object.key, wanted).await?)
    };
    Ok((status, common, body).into_response())
}

/// Query of `POST /media`: the kind to send the file as, overriding the one its type gives.
#[derive(Debug, Deserialize)]
struct UploadQuery {
    kind: Option<String>,
}

const KINDS: [&str; 6] = ["photo", "video", "audio", "voice", "document", "animation"];

async fn upload(
    State(state): State<AppState>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Response {
    let Some(media) = state.api.media.clone() else {
        return not_found();
    };
    let headers = request.headers().clone();
    let caller = match caller(
        &state,
        "",
        &Signed {
            exp: None,
            by: None,
            sig: None,
        },
        &headers,
    )
    .await
    {
        Ok(caller) => caller,
        Err(response) => return response,
    };
    if !caller.may(Permission::WriteTickets) {
        return refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "this caller may not reply to tickets",
        );
    }
    let uploader = match &caller {
        Caller::Agent { id, .. } => id.as_uuid(),
        Caller::Integrator { created_by, .. } => created_by.as_uuid(),
    };
    let kind = match query.kind.as_deref() {
        None => None,
        Some(kind) if KINDS.contains(&kind) => Some(kind),
        Some(_) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "VALIDATION",
                "kind must be photo, video, audio, voice, document or animation",
            );
        }
    };
    let limit = media.config().upload_limit;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return too_large(limit);
    }
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if mime.as_deref().is_some_and(|m| m.starts_with("multipart/")) {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "VALIDATION",
            "send the file itself as the body, with its Content-Type and X-File-Name",
        );
    }
    let name = headers
        .get("x-file-name")
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .unwrap_or("file")
        .to_owned();
    let body = request
        .into_body()
        .into_data_stream()
        .map_err(|error| error.to_string());
    match media
        .upload(uploader, &name, mime.as_deref(), kind, body)
        .await
    {
        Ok(row) => (
            StatusCode::CREATED,
            axum::Json(json!({
                "id": row.id,
                "kind": row.kind,
                "mimeType": row.mime_type,
                "size": row.size,
                "fileName": row.file_name,
            })),
        )
            .into_response(),
        Err(media::MediaError::Storage(media::StorageError::TooLarge { limit })) => {
            too_large(limit)
        }
        Err(media::MediaError::Storage(media::StorageError::Source(why))) => refuse(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            &format!("the upload was cut off: {why}"),
        ),
        Err(error) => media_error(&error, &Value::Null),
    }
}

fn too_large(limit: u64) -> Response {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "TOO_LARGE",
        &format!("a file may have at most {limit} bytes (LEDGERDESK_MEDIA_MAX_UPLOAD_BYTES)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_range(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::RANGE,
            HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")),
        );
        headers
    }

    #[test]
    fn ranges_within_the_file_are_read_and_others_refused() {
        let r = |v: &str| range(&with_range(v), 100);
        assert_eq!(range(&HeaderMap::new(), 100), Ok(None));
        assert_eq!(r("bytes=0-9"), Ok(Some(0..10)));
        assert_eq!(r("bytes=90-"), Ok(Some(90..100)));
        assert_eq!(r("bytes=-10"), Ok(Some(90..100)));
        assert_eq!(r("bytes=50-500"), Ok(Some(50..100)));
        assert_eq!(r("bytes=-500"), Ok(Some(0..100)));
        assert_eq!(r("bytes=0-1,5-6"), Ok(None));
        assert_eq!(r("items=0-1"), Ok(None));
        assert_eq!(r("bytes=100-"), Err(()));
        assert_eq!(r("bytes=5-4"), Err(()));
        assert_eq!(r("bytes=-0"), Err(()));
        assert_eq!(r("bytes=x-1"), Err(()));
    }

    #[test]
    fn only_media_types_show_inline_and_names_are_encoded() {
        assert_eq!(
            disposition("image/png", Some("a\"b.png")),
            "inline; filename=\"a_b.png\"; filename*=UTF-8''a_b.png"
        );
        assert_eq!(
            disposition("text/html", Some("é.html")),
            "attachment; filename=\"_.html\"; filename*=UTF-8''%C3%A9.html"
        );
        assert_eq!(disposition("image/svg+xml", None), "attachment");
    }
}
