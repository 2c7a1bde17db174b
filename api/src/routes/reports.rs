//! `GET /broadcasts/{id}/recipients.csv`: a broadcast's recipients and their outcomes as a
//! CSV file, for admins to open in a spreadsheet.
//!
//! It takes the API's credentials (`Authorization: Bearer <access token or API token>`) and
//! the permission that reads broadcasts, checked against the caller's state in the log as for
//! GraphQL; names are filled in only for callers who may also read customers. The body is
//! streamed a page of [`PAGE`] recipients at a time (one short query each, in Telegram id
//! order), so a report of 100,000 recipients takes constant memory and holds no connection
//! between pages. At most [`MAX_CONCURRENT`] reports are written at once per process (another
//! is answered 429), and each ends after [`DEADLINE`].
//!
//! Cells an agent or Telegram wrote (names, reasons) could start with `=`, `+`, `-` or `@`,
//! which a spreadsheet runs as a formula: such a cell gets a leading `'` ([`cell`]).

use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use projections::broadcasts::queries as broadcasts;
use projections::broadcasts::report::{self, ReportRow};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::auth::{Authentication, Permission};
use crate::state::AppState;

/// Recipients read and written per page.
pub(crate) const PAGE: i64 = 1_000;

/// Reports written at once by one process.
const MAX_CONCURRENT: usize = 4;

/// The longest a report may take; a client reading slower gets a cut file.
const DEADLINE: Duration = Duration::from_secs(600);

static WRITING: Semaphore = Semaphore::const_new(MAX_CONCURRENT);

/// The report's columns, in order.
const COLUMNS: [&str; 10] = [
    "customer_id",
    "state",
    "reason",
    "retryable",
    "telegram_message_id",
    "updated_at",
    "button_presses",
    "first_name",
    "last_name",
    "username",
];

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/broadcasts/{id}/recipients.csv", get(recipients_csv))
}

fn refuse(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })),
    )
        .into_response()
}

async fn recipients_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let authentication = match authorization.map(super::graphql::bearer) {
        Some(Some(token)) => state.api.auth.authenticate(Some(token)).await,
        Some(None) => Authentication::Refused("use Authorization: Bearer <token>"),
        None => Authentication::Anonymous,
    };
    let caller = match authentication {
        Authentication::Authenticated(caller) => caller,
        Authentication::Refused(reason) => {
            return refuse(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", reason);
        }
        Authentication::Anonymous => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "sign in first: send Authorization: Bearer <access token or API token>",
            );
        }
        Authentication::Unavailable => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the database cannot be reached; try again shortly",
            );
        }
    };
    if !caller.may(Permission::ReadBroadcasts) {
        return refuse(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "reading broadcasts is not allowed to this caller",
        );
    }
    let Ok(broadcast) = crate::graphql::ids::uuid_of("Broadcast", &id.as_str().into()) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "VALIDATION",
            "not a broadcast id (a uuid or a Broadcast global id)",
        );
    };
    let pool = state.api.pool.clone();
    match broadcasts::by_id(&pool, broadcast).await {
        Ok(Some(_)) => {}
        Ok(None) => return refuse(StatusCode::NOT_FOUND, "NOT_FOUND", "no such broadcast"),
        Err(error) => {
            tracing::error!(%error, "cannot read the broadcast for its report");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "the broadcast cannot be read now; try again shortly",
            );
        }
    }
    let Ok(permit) = WRITING.try_acquire() else {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            "too many reports are being written; try again in a minute",
        );
    };
    let names = caller.may(Permission::ReadCustomers);
    let body = Body::from_stream(rows(pool, broadcast, names).map(move |chunk| {
        // Held until the last page is written (or the client goes).
        let _permit = &permit;
        chunk
    }));
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"broadcast-{broadcast}-recipients.csv\""
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Where the writing of a report stands.
struct Cursor {
    pool: PgPool,
    broadcast: Uuid,
    names: bool,
    /// The last Telegram id written; `None` before the header row.
    after: Option<i64>,
    done: bool,
    deadline: tokio::time::Instant,
}

/// The report's bytes: the header row, then a chunk per page of recipients.
fn rows(
    pool: PgPool,
    broadcast: Uuid,
    names: bool,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let cursor = Cursor {
        pool,
        broadcast,
        names,
        after: None,
        done: false,
        deadline: tokio::time::Instant::now() + DEADLINE,
    };
    futures::stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        let Some(after) = cursor.after else {
            cursor.after = Some(i64::MIN);
            return Some((Ok(write(|csv| csv.write_record(COLUMNS))), cursor));
        };
        if tokio::time::Instant::now() >= cursor.deadline {
            cursor.done = true;
            tracing::warn!(broadcast.id = %cursor.broadcast, "a recipient report ran out of time");
            let error = std::io::Error::other("the report took too long");
            return Some((Err(error), cursor));
        }
        let page = tokio::time::timeout_at(
            cursor.deadline,
            report::page(&cursor.pool, cursor.broadcast, after, PAGE, cursor.names),
        )
        .await;
        let rows = match page {
            Ok(Ok(rows)) => rows,
            Ok(Err(error)) => {
                cursor.done = true;
                tracing::error!(%error, broadcast.id = %cursor.broadcast,
                    "cannot read a page of a recipient report; the file is cut");
                return Some((Err(std::io::Error::other("the database failed")), cursor));
            }
            Err(_) => {
                cursor.done = true;
                return Some((
                    Err(std::io::Error::other("the report took too long")),
                    cursor,
                ));
            }
        };
        if rows.len() < usize::try_from(PAGE).unwrap_or(usize::MAX) {
            cursor.done = true;
        }
        let last = rows.last()?;
        cursor.after = Some(last.customer_id);
        let chunk = write(|csv| {
            for row in &rows {
                csv.write_record(record(row))?;
            }
            Ok(())
        });
        Some((Ok(chunk), cursor))
    })
}

/// The bytes `fill` writes through a CSV writer (RFC 4180 quoting, `\r\n` line ends).
fn write(fill: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>) -> Bytes {
    let mut csv = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(64 * 1024));
    // Writing to memory fails only on a record of the wrong length, which `record` rules out.
    if let Err(error) = fill(&mut csv) {
        tracing::error!(%error, "cannot write a report row");
    }
    Bytes::from(csv.into_inner().unwrap_or_default())
}

/// One recipient's cells, in [`COLUMNS`] order.
fn record(row: &ReportRow) -> [String; 10] {
    let text = |value: &Option<String>| cell(value.as_deref().unwrap_or_default());
    [
        row.customer_id.to_string(),
        cell(&row.state),
        text(&row.reason),
        row.retryable.map(|r| r.to_string()).unwrap_or_default(),
        row.telegram_message_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        row.updated_at.to_rfc3339(),
        row.button_presses.to_string(),
        text(&row.first_name),
        text(&row.last_name),
        text(&row.username),
    ]
}

/// `value` made safe for a spreadsheet: one starting with `=`, `+`, `-` or `@` (a formula to
/// Excel, LibreOffice and Google Sheets), or with a tab or carriage return (which some of them
/// skip before looking), gets a leading `'`, which they show as text. Quoting is the CSV
/// writer's.
fn cell(value: &str) -> String {
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_are_made_text() {
        for (value, safe) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1+2", "'+1+2"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("Anna", "Anna"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(cell(value), safe, "{value:?}");
        }
    }

    #[test]
    fn quotes_and_line_breaks_stay_inside_their_cell() {
        let bytes = write(|csv| csv.write_record(["a,b", "say \"hi\"", "two\nlines"]));
        assert_eq!(&bytes[..], b"\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
    }
}
