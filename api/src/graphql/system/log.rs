//! The log for auditors: `events` pages through it with filters, `auditVerify` checks one
//! stream's hash chain and its latest anchor.
//!
//! Both bound their work per request: `events` looks at no more than [`SCAN`] events per call
//! (a filter that matches little returns a short page and a cursor to go on from), and
//! `auditVerify` checks at most [`VERIFY_EVENTS`] events per call (and says where to go on).

use async_graphql::connection::{Edge, EmptyFields, PageInfo};
use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use eventlog::Position;
use eventlog::postgres::EventFilter;
use eventlog::postgres::audit::{self, BrokenLink, Problem};

use crate::auth::Permission;
use crate::graphql::context::Api;
use crate::graphql::error::{Code, error, failed};
use crate::graphql::events::{LogEvent, parse_cursor};
use crate::graphql::guard::Need;
use crate::graphql::pagination::{DEFAULT_PAGE, connection_complexity};
use crate::graphql::system::subscriptions::{MAX_FILTER_CHARS, MAX_TYPES};

/// Most events one `events` query looks at.
pub const SCAN: usize = 10_000;

/// Most events one `auditVerify` call checks.
pub const VERIFY_EVENTS: u64 = 10_000;

/// A page of the log (`events`). Relay-shaped; `pageInfo.endCursor` is where the next page
/// starts, which may lie past the last edge when the filter skipped events.
#[derive(SimpleObject)]
pub struct EventLogPage {
    /// The events, each with its cursor.
    pub edges: Vec<Edge<String, LogEvent, EmptyFields>>,
    /// The events alone.
    pub nodes: Vec<LogEvent>,
    /// `hasNextPage`: more events may follow `endCursor` (false once the readable end of the
    /// log was reached: new events may still come later). `endCursor`: pass it as `after`.
    pub page_info: PageInfo,
}

impl std::fmt::Debug for EventLogPage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLogPage")
            .field("nodes", &self.nodes)
            .field("has_next_page", &self.page_info.has_next_page)
            .field("end_cursor", &self.page_info.end_cursor)
            .finish_non_exhaustive()
    }
}

/// What is wrong at a broken link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum ChainProblem {
    /// The event's type, payload or metadata no longer give its hash.
    Altered,
    /// The event's previous hash is not the previous event's hash.
    PreviousHash,
    /// A version of the stream is missing.
    MissingVersion,
    /// The event comes before the version it follows in the log's order.
    OutOfOrder,
    /// An anchor names this event, and the log no longer holds it.
    Removed,
    /// An anchor names this event with another hash.
    AnchorDiffers,
    /// The anchor that names this event does not match its signature: it was changed, and
    /// what it names cannot be relied on.
    AnchorSignature,
    /// The anchor that names this event is signed by a key other than the server's anchor
    /// key: a forged anchor.
    AnchorKeyUnknown,
}

impl From<Problem> for ChainProblem {
    fn from(problem: Problem) -> Self {
        match problem {
            Problem::Altered => ChainProblem::Altered,
            Problem::PreviousHash => ChainProblem::PreviousHash,
            Problem::MissingVersion => ChainProblem::MissingVersion,
            Problem::OutOfOrder => ChainProblem::OutOfOrder,
            Problem::Removed => ChainProblem::Removed,
            Problem::AnchorDiffers => ChainProblem::AnchorDiffers,
            Problem::AnchorSignature => ChainProblem::AnchorSignature,
            Problem::AnchorKeyUnknown => ChainProblem::AnchorKeyUnknown,
        }
    }
}

/// The first link of a stream that does not hold.
#[derive(Debug, Clone, SimpleObject)]
pub struct ChainBreak {
    /// The version where the chain breaks.
    pub version: i64,
    /// The position of the event found there (null when the log holds none).
    pub position: Option<String>,
    /// What is wrong.
    pub problem: ChainProblem,
    /// What the chain (or the anchor) says the hash should be (hex).
    pub expected_hash: Option<String>,
    /// What the log holds (hex).
    pub stored_hash: Option<String>,
}

impl From<BrokenLink> for ChainBreak {
    fn from(link: BrokenLink) -> Self {
        ChainBreak {
            version: i64::try_from(link.version).unwrap_or(i64::MAX),
            position: link.position.map(|p| p.to_string()),
            problem: link.problem.into(),
            expected_hash: link.expected.as_ref().map(hex::encode),
            stored_hash: link.stored.as_ref().map(hex::encode),
        }
    }
}

/// One stream's hash chain, checked (`auditVerify`).
#[derive(Debug, Clone, SimpleObject)]
pub struct StreamAudit {
    /// The stream.
    pub stream: String,
    /// The first version checked.
    pub from_version: i64,
    /// How many events were checked.
    pub events_checked: i64,
    /// Continue with `fromVersion: nextVersion` to check the rest (null: checked to the end,
    /// or broken).
    pub next_version: Option<i64>,
    /// True when no broken link was found.
    pub holds: bool,
    /// The first broken link, by the chain or by the latest anchor of the stream.
    pub broken: Option<ChainBreak>,
    /// The latest version of the stream a signed anchor names (null: no anchor covers it
    /// yet). That anchor's signature is checked (`broken.problem` `ANCHOR_SIGNATURE` or
    /// `ANCHOR_KEY_UNKNOWN` when it does not hold); the chain of all anchors is checked by
    /// `ledgerdesk audit verify`.
    pub anchored_version: Option<i64>,
    /// Whether the anchor's key was compared with the server's anchor key. False when the
    /// server has none (`LEDGERDESK_ANCHOR_KEY_FILE` does not exist): the signature was then
    /// checked against the key stored with the anchor only, which shows a changed anchor but
    /// not one signed with another key. Null when no anchor covers the stream.
    pub anchor_key_checked: Option<bool>,
}

/// `events` and `auditVerify`.
#[derive(Debug, Default)]
pub struct LogQuery;

#[Object]
impl LogQuery {
    /// The log's events after `after`, in log order, with their whole envelope; admins,
    /// auditors and API tokens with `events:read`. Filters combine; each call looks at no
    /// more than 10,000 events, so a filter that matches little may give a short (even empty)
    /// page with `hasNextPage`: go on from `pageInfo.endCursor`.
    #[graphql(
        name = "events",
        guard = "Need(Permission::ReadEvents)",
        complexity = "connection_complexity(first, None, child_complexity)"
    )]
    #[expect(clippy::too_many_arguments, reason = "the query's arguments, one each")]
    async fn events_page(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            desc = "Start after this cursor (a `cursor` or `endCursor`); from the \
                          beginning of the log when absent."
        )]
        after: Option<String>,
        #[graphql(desc = "At most this many events (default 25, at most the page limit).")]
        first: Option<i32>,
        #[graphql(desc = "Only events of streams starting with this.")] stream_prefix: Option<
            String,
        >,
        #[graphql(desc = "Only events of these exact types.")] types: Option<Vec<String>>,
        #[graphql(desc = "Only events recorded at or after this time.")] from: Option<
            DateTime<Utc>,
        >,
        #[graphql(desc = "Only events recorded before this time.")] to: Option<DateTime<Utc>>,
    ) -> Result<EventLogPage> {
        let api = ctx.data_unchecked::<Api>();
        let after = parse_cursor(after)?.unwrap_or(Position::START);
        let size = match first {
            None => DEFAULT_PAGE,
            Some(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX),
            Some(_) => return Err(error(Code::Validation, "`first` may not be negative")),
        };
        if size > api.limits.max_page {
            return Err(error(
                Code::Validation,
                format!("`first` is at most {}", api.limits.max_page),
            ));
        }
        if let Some(types) = &types
            && (types.len() > MAX_TYPES || types.iter().any(|t| t.len() > MAX_FILTER_CHARS))
        {
            return Err(error(
                Code::Validation,
                format!(
                    "filter on at most {MAX_TYPES} types of at most {MAX_FILTER_CHARS} characters"
                ),
            ));
        }
        if stream_prefix
            .as_ref()
            .is_some_and(|prefix| prefix.len() > MAX_FILTER_CHARS)
        {
            return Err(error(
                Code::Validation,
                format!("a stream prefix has at most {MAX_FILTER_CHARS} characters"),
            ));
        }
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Err(error(Code::Validation, "`from` comes after `to`"));
        }
        if after != Position::START
            && after
                > api
                    .log
                    .last_committed()
                    .await
                    .map_err(|e| failed("cannot read the log", e))?
        {
            return Err(error(
                Code::Validation,
                "this cursor is beyond the end of the log: is it from another database?",
            ));
        }
        let filter = EventFilter {
            types,
            stream_prefix,
            from,
            to,
        };
        let page = if size == 0 {
            eventlog::postgres::FilteredPage {
                events: Vec::new(),
                next: after,
                more: true,
            }
        } else {
            api.log
                .read_filtered(after, size, &filter, SCAN)
                .await
                .map_err(|e| failed("cannot read the log", e))?
        };
        let nodes: Vec<LogEvent> = page.events.iter().map(LogEvent::from).collect();
        let edges = nodes
            .iter()
            .map(|node| Edge::new(node.cursor.clone(), node.clone()))
            .collect();
        Ok(EventLogPage {
            edges,
            page_info: PageInfo {
                has_previous_page: after != Position::START,
                has_next_page: page.more,
                start_cursor: nodes.first().map(|n| n.cursor.clone()),
                end_cursor: Some(page.next.to_string()),
            },
            nodes,
        })
    }

    /// Recomputes the hash chain of one stream from `fromVersion` (at most 10,000 events per
    /// call; go on from `nextVersion`), checks the signature of the stream's latest anchor
    /// against the server's anchor key, and compares the stream with that anchor, which shows
    /// removed newest events. Admins, auditors and API tokens with
    /// `events:read`. `NOT_FOUND` for a stream the log has never held.
    #[graphql(guard = "Need(Permission::ReadEvents)")]
    async fn audit_verify(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "The stream, as `LogEvent.stream` shows it (`ticket-<uuid>`, …).")]
        stream_id: String,
        #[graphql(desc = "The first version to check (default 0).")] from_version: Option<i64>,
    ) -> Result<StreamAudit> {
        if stream_id.is_empty() || stream_id.chars().count() > eventlog::limits::STREAM_ID_CHARS {
            return Err(error(
                Code::Validation,
                format!(
                    "a stream id has 1 to {} characters",
                    eventlog::limits::STREAM_ID_CHARS
                ),
            ));
        }
        let from = u64::try_from(from_version.unwrap_or(0))
            .map_err(|_| error(Code::Validation, "`fromVersion` may not be negative"))?;
        let api = ctx.data_unchecked::<Api>();
        let checked = match audit::verify_stream(
            api.log.pool(),
            &stream_id,
            from,
            VERIFY_EVENTS,
            &api.anchor_keys,
        )
        .await
        {
            Ok(checked) => checked,
            Err(eventlog::Error::StreamNotFound { .. }) => {
                return Err(error(Code::NotFound, "the log holds no such stream"));
            }
            Err(other) => return Err(failed("cannot verify the stream", other)),
        };
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        Ok(StreamAudit {
            stream: checked.stream,
            from_version: to_i64(checked.from_version),
            events_checked: to_i64(checked.events),
            next_version: checked.next_version.map(to_i64),
            holds: checked.broken.is_none(),
            broken: checked.broken.map(ChainBreak::from),
            anchored_version: checked.anchored_version.map(to_i64),
            anchor_key_checked: checked.anchored_version.map(|_| checked.anchor_key_checked),
        })
    }
}
