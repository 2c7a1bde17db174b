//! Relay cursor connections: page requests, opaque cursors, and the connection built from a
//! page of rows. Lists use keyset pagination on `(sort key, id)`, forwards (`first`, `after`)
//! and backwards (`last`, `before`); edges are always in the list's order.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{OutputType, Result};
use chrono::{DateTime, Utc};
use projections::page::Page;

use super::context::Api;
use super::error::{Code, error};

/// The page size when `first` is not given.
pub const DEFAULT_PAGE: usize = 25;

/// The most characters a free-text filter may have.
pub const MAX_SEARCH: usize = 200;

/// The most characters of any other text filter (a tag, a name).
pub const MAX_TEXT_FILTER: usize = 100;

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A page request after validation: which end of the range between the cursors to start
/// from, and how many rows to return.
#[derive(Debug, Clone)]
pub struct PageRequest {
    /// Rows to return (one more is fetched to learn whether more follow).
    pub size: usize,
    /// The decoded `after` cursor: the sort key and the id of a row.
    pub after: Option<(String, String)>,
    /// The decoded `before` cursor.
    pub before: Option<(String, String)>,
    /// `last` was asked: the page is the end of the range, next to `before`.
    pub from_end: bool,
}

impl PageRequest {
    /// The SQL `limit`: one more row than the page, to know whether more follow.
    pub fn limit(&self) -> i64 {
        i64::try_from(self.size + 1).unwrap_or(i64::MAX)
    }

    /// The read model's page: the cursors decoded by `key` (a cursor's sort key and id).
    ///
    /// # Errors
    /// What `key` returns for a cursor of another list.
    pub fn keyset<K>(&self, key: impl Fn(&str, &str) -> Result<K>) -> Result<Page<K>> {
        Ok(Page {
            after: self.after.as_ref().map(|(k, id)| key(k, id)).transpose()?,
            before: self.before.as_ref().map(|(k, id)| key(k, id)).transpose()?,
            from_end: self.from_end,
            limit: self.limit(),
        })
    }
}

/// The Relay paging arguments of a connection field, as given.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageArgs<'a> {
    /// `first`: the first rows after `after`.
    pub first: Option<i32>,
    /// `after`: a cursor.
    pub after: Option<&'a str>,
    /// `last`: the last rows before `before`.
    pub last: Option<i32>,
    /// `before`: a cursor.
    pub before: Option<&'a str>,
}

impl<'a> PageArgs<'a> {
    /// The arguments as a resolver receives them.
    pub fn new(
        first: Option<i32>,
        after: &'a Option<String>,
        last: Option<i32>,
        before: &'a Option<String>,
    ) -> Self {
        PageArgs {
            first,
            after: after.as_deref(),
            last,
            before: before.as_deref(),
        }
    }
}

/// Checks `first` or `last` against [`super::context::Limits::max_page`] and decodes the
/// cursors. Without `first` and `last`, the page is the first [`DEFAULT_PAGE`] rows.
///
/// # Errors
/// `VALIDATION` for `first` and `last` together, either below 0 or above the limit, or a
/// cursor this API did not issue.
pub fn page(api: &Api, args: PageArgs<'_>) -> Result<PageRequest> {
    let max = api.limits.max_page;
    let bounded = |name: &str, value: i32| match usize::try_from(value) {
        Ok(size) if size <= max => Ok(size),
        _ => Err(error(
            Code::Validation,
            format!("{name} must be between 0 and {max}"),
        )),
    };
    let (size, from_end) = match (args.first, args.last) {
        (Some(_), Some(_)) => {
            return Err(error(
                Code::Validation,
                "first and last cannot be used together: page forwards with first and after, \
                 or backwards with last and before",
            ));
        }
        (Some(first), None) => (bounded("first", first)?, false),
        (None, Some(last)) => (bounded("last", last)?, true),
        (None, None) => (DEFAULT_PAGE.min(max), false),
    };
    Ok(PageRequest {
        size,
        after: args.after.map(decode_cursor).transpose()?,
        before: args.before.map(decode_cursor).transpose()?,
        from_end,
    })
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

/// Decodes the parts of a cursor whose sort key is a time in microseconds (see [`cursor`]).
///
/// # Errors
/// `VALIDATION` when a part does not parse.
pub fn time_key<Id: std::str::FromStr>(key: &str, id: &str) -> Result<(DateTime<Utc>, Id)> {
    let at = DateTime::from_timestamp_micros(cursor_part(key)?)
        .ok_or_else(|| error(Code::Validation, "not a cursor of this list"))?;
    Ok((at, cursor_part(id)?))
}

/// Builds a connection from rows fetched with [`PageRequest::limit`], in list order: the extra
/// row, if any, lies beyond the page's far end (after it going forwards, before it going
/// backwards) and only says that more rows follow there.
///
/// `hasNextPage` going forwards and `hasPreviousPage` going backwards say whether more rows
/// lie beyond the page in the range; the other one says whether the request named a cursor on
/// that side (the row it came from lies there), as the Relay cursor connections spec allows.
pub fn connection<Row, Node: OutputType>(
    request: &PageRequest,
    mut rows: Vec<Row>,
    cursor_of: impl Fn(&Row) -> String,
    node_of: impl Fn(Row) -> Node,
) -> Connection<String, Node> {
    let more = rows.len() > request.size;
    let (has_previous, has_next) = if request.from_end {
        let extra = rows.len().saturating_sub(request.size);
        rows.drain(..extra);
        (more, request.before.is_some())
    } else {
        rows.truncate(request.size);
        (request.after.is_some(), more)
    };
    let mut connection = Connection::new(has_previous, has_next);
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

/// The complexity of a connection field: its children once per requested item (`first` or
/// `last`; the larger when both are given, which [`page`] refuses).
pub fn connection_complexity(first: Option<i32>, last: Option<i32>, child: usize) -> usize {
    let size = first
        .max(last)
        .map_or(DEFAULT_PAGE, |size| usize::try_from(size).unwrap_or(0));
    size.max(1).saturating_mul(child).saturating_add(1)
}
