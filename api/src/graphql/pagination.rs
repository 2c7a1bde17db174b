//! Relay cursor connections: page requests, opaque cursors, and the connection built from a
//! page of rows. Lists use keyset pagination on `(sort key, id)`.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, Result};

use super::context::Api;
use super::error::{Code, error};

/// The page size when `first` is not given.
pub const DEFAULT_PAGE: usize = 25;

/// The most characters a free-text filter may have.
pub const MAX_SEARCH: usize = 200;

/// The most characters of any other text filter (a tag, a name).
pub const MAX_TEXT_FILTER: usize = 100;

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A page request after validation: how many rows to return and where to start.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Rows to return (one more is fetched to learn whether a next page exists).
    pub size: usize,
    /// The decoded cursor: the sort key and the id of the last row seen.
    pub after: Option<(String, String)>,
}

impl PageRequest {
    /// The SQL `limit`: one more row than the page, to know whether more follow.
    pub fn limit(&self) -> i64 {
        i64::try_from(self.size + 1).unwrap_or(i64::MAX)
    }
}

/// Checks `first` against [`super::context::Limits::max_page`] and decodes `after`.
///
/// # Errors
/// `VALIDATION` for `first` below 0 or above the limit, or a cursor this API did not issue.
pub fn page(api: &Api, first: Option<i32>, after: Option<&str>) -> Result<PageRequest> {
    let max = api.limits.max_page;
    let size = match first {
        None => DEFAULT_PAGE.min(max),
        Some(first) => match usize::try_from(first) {
            Ok(size) if size <= max => size,
            _ => {
                return Err(error(
                    Code::Validation,
                    format!("first must be between 0 and {max}"),
                ));
            }
        },
    };
    let after = after.map(decode_cursor).transpose()?;
    Ok(PageRequest { size, after })
}

/// An opaque cursor for a row at sort key `key` with id `id`.
pub fn cursor(key: impl std::fmt::Display, id: impl std::fmt::Display) -> String {
    use base64::Engine;
    ENGINE.encode(format!("{key}\u{1f}{id}"))
}

fn decode_cursor(cursor: &str) -> Result<(String, String)> {
    use base64::Engine;
    let invalid = || error(Code::Validation, "not a cursor this API returned");
    if cursor.len() > 200 {
        return Err(invalid());
    }
    let bytes = ENGINE.decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (key, id) = text.split_once('\u{1f}').ok_or_else(invalid)?;
    Ok((key.to_owned(), id.to_owned()))
}

/// Parses one part of a decoded cursor.
///
/// # Errors
/// `VALIDATION` when it does not parse (a cursor of another list, or forged).
pub fn cursor_part<T: std::str::FromStr>(part: &str) -> Result<T> {
    part.parse()
        .map_err(|_| error(Code::Validation, "not a cursor of this list"))
}

/// Builds a forward connection from rows fetched with [`PageRequest::limit`]: the extra row,
/// if any, only says that a next page exists.
pub fn connection<Row, Node: OutputType>(
    request: &PageRequest,
    mut rows: Vec<Row>,
    cursor_of: impl Fn(&Row) -> String,
    node_of: impl Fn(Row) -> Node,
) -> Connection<String, Node> {
    let has_next = rows.len() > request.size;
    rows.truncate(request.size);
    let mut connection = Connection::new(request.after.is_some(), has_next);
    connection.edges = rows
        .into_iter()
        .map(|row| Edge::new(cursor_of(&row), node_of(row)))
        .collect();
    connection
}

/// Checks the length of a text filter.
///
/// # Errors
/// `VALIDATION` when it is longer than `max` characters.
pub fn bounded<'a>(name: &str, value: Option<&'a str>, max: usize) -> Result<Option<&'a str>> {
    match value.map(str::trim) {
        Some(text) if text.chars().count() > max => Err(error(
            Code::Validation,
            format!("{name} may have at most {max} characters"),
        )),
        Some("") | None => Ok(None),
        Some(text) => Ok(Some(text)),
    }
}

/// The complexity of a connection field: its children once per requested item.
pub fn connection_complexity(first: Option<i32>, child: usize) -> usize {
    let size = first.map_or(DEFAULT_PAGE, |first| usize::try_from(first).unwrap_or(0));
    size.max(1).saturating_mul(child).saturating_add(1)
}
