//! Read model "dashboard": per-ticket timings for the team's dashboard, and its queries.
//!
//! Owns `dashboard_tickets`: one row per ticket with its status, category, when it was opened,
//! first answered and (last) resolved, and the seconds each took. Fed by `ticket.*` events.
//! The query functions below ([`tickets_by_status`], [`tickets_by_category`],
//! [`daily_medians`]) are what the API calls; they read the live tables.
//!
//! A row records the ticket stream version it reflects and skips older events, so replays
//! change nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use domain::ticket::{TicketEvent, TicketStatus};
use domain::{AnyEvent, StreamId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Kept, KeptRows, Target, read_model};
use crate::sql::{self, Column, col};

/// The "dashboard" read model (table `dashboard_tickets`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Dashboard;

const TABLES: &[&str] = &["dashboard_tickets"];

read_model!(
    Dashboard,
    name: "dashboard",
    version: 1,
    tables: TABLES,
    keeping: apply_keeping,
    changes: changes,
    wants: wants,
);

/// Whether `batch` may change a row: not when every event it wants is a reply to a ticket whose
/// kept row has its first response already (replies after the first change nothing here).
fn changes(target: Target, batch: &[Envelope], kept: &mut Kept) -> bool {
    let Some(rows) = KeptRows::<Row>::of(kept, target) else {
        return true;
    };
    batch
        .iter()
        .filter(|envelope| wants(envelope))
        .any(|envelope| {
            let (StreamId::Ticket(id), AnyEvent::Ticket(TicketEvent::AgentReplied(_))) =
                (&envelope.stream, &envelope.event)
            else {
                return true;
            };
            rows.get(&id.as_uuid())
                .is_none_or(|row| row.first_response_at.is_none())
        })
}

/// The ticket events that change a ticket's counts and times.
fn wants(envelope: &Envelope) -> bool {
    matches!(
        (&envelope.stream, &envelope.event),
        (StreamId::Ticket(_), AnyEvent::Ticket(event)) if matters(event)
    )
}

const COLUMNS: &[Column] = &[
    ("ticket_id", "uuid"),
    ("category_id", "uuid"),
    ("status", "text"),
    ("opened_at", "timestamptz"),
    ("first_response_at", "timestamptz"),
    ("first_response_seconds", "double precision"),
    ("resolved_at", "timestamptz"),
    ("resolution_seconds", "double precision"),
    ("version", "bigint"),
];

#[derive(Debug, Clone, sqlx::FromRow)]
struct Row {
    ticket_id: Uuid,
    category_id: Option<Uuid>,
    status: String,
    opened_at: DateTime<Utc>,
    first_response_at: Option<DateTime<Utc>>,
    first_response_seconds: Option<f64>,
    resolved_at: Option<DateTime<Utc>>,
    resolution_seconds: Option<f64>,
    version: i64,
}

/// Applies `batch`, taking the rows it touches from `kept` where they are (see [`KeptRows`])
/// and from the table otherwise, and keeping every row it holds.
async fn apply_keeping(
    conn: &mut PgConnection,
    target: Target,
    batch: &[Envelope],
    kept: &mut Kept,
) -> Result<(), ApplyError> {
    let ids: HashSet<Uuid> = batch
        .iter()
        .filter_map(|envelope| match (&envelope.stream, &envelope.event) {
            (StreamId::Ticket(id), AnyEvent::Ticket(event)) if matters(event) => Some(id.as_uuid()),
            _ => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut kept = KeptRows::<Row>::of(kept, target);
    let mut rows: HashMap<Uuid, Row> = HashMap::with_capacity(ids.len());
    KeptRows::load(
        kept.as_deref_mut(),
        conn,
        ids,
        (&target.table("dashboard_tickets"), COLUMNS, "ticket_id"),
        |row| row.ticket_id,
        &mut rows,
    )
    .await?;
    let mut dirty = HashSet::new();
    for envelope in batch {
        if let (StreamId::Ticket(id), AnyEvent::Ticket(event)) = (&envelope.stream, &envelope.event)
            && matters(event)
        {
            let id = id.as_uuid();
            if fold(&mut rows, id, sql::version(envelope)?, event) {
                dirty.insert(id);
            }
        }
    }
    write(conn, target, &rows, &dirty).await?;
    KeptRows::keep(kept, rows);
    Ok(())
}

/// Writes the `dirty` rows of `rows`.
async fn write(
    conn: &mut PgConnection,
    target: Target,
    rows: &HashMap<Uuid, Row>,
    dirty: &HashSet<Uuid>,
) -> Result<(), ApplyError> {
    let rows: Vec<&Row> = dirty.iter().filter_map(|id| rows.get(id)).collect();
    if rows.is_empty() {
        return Ok(());
    }
    static UPSERT: sql::Upsert = sql::Upsert::new(
        "dashboard_tickets",
        COLUMNS,
        &["ticket_id"],
        sql::OnConflict::NEWER,
    );
    sqlx::query(UPSERT.text(target))
        .bind(col!(rows, ticket_id))
        .bind(col!(rows, category_id))
        .bind(col!(rows, status))
        .bind(col!(rows, opened_at))
        .bind(col!(rows, first_response_at))
        .bind(col!(rows, first_response_seconds))
        .bind(col!(rows, resolved_at))
        .bind(col!(rows, resolution_seconds))
        .bind(col!(rows, version))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Whether the dashboard cares about this event. Others do not even bump the row's version:
/// skipping them is harmless because a row only moves forward.
const fn matters(event: &TicketEvent) -> bool {
    use TicketEvent as E;
    matches!(
        event,
        E::Opened(_)
            | E::AgentReplied(_)
            | E::StatusChanged(_)
            | E::Resolved(_)
            | E::Reopened(_)
            | E::Closed(_)
            | E::CategoryChanged(_)
    )
}

/// Folds one event into the rows; whether a row changed.
fn fold(rows: &mut HashMap<Uuid, Row>, id: Uuid, version: i64, event: &TicketEvent) -> bool {
    use TicketEvent as E;
    let Some(row) = rows.get_mut(&id) else {
        if let E::Opened(opened) = event {
            rows.insert(
                id,
                Row {
                    ticket_id: id,
                    category_id: opened.category.map(|c| c.as_uuid()),
                    status: "new".to_owned(),
                    opened_at: opened.at,
                    first_response_at: None,
                    first_response_seconds: None,
                    resolved_at: None,
                    resolution_seconds: None,
                    version,
                },
            );
            return true;
        }
        return false;
    };
    if version <= row.version {
        return false;
    }
    // Replies after the first change nothing here. Leaving the row (and its version) alone is
    // safe: applying such a reply again is just as much a no-op, since the first response stays.
    if matches!(event, E::AgentReplied(_)) && row.first_response_at.is_some() {
        return false;
    }
    row.version = version;
    let closed = row.status == "closed";
    match event {
        E::AgentReplied(reply) if row.first_response_at.is_none() => {
            row.first_response_at = Some(reply.at);
            row.first_response_seconds = Some(seconds(row.opened_at, reply.at));
        }
        E::StatusChanged(change)
            if matches!(
                change.to,
                TicketStatus::New | TicketStatus::Open | TicketStatus::Pending
            ) && !closed =>
        {
            row.status = sql::ticket_status(change.to).to_owned();
        }
        E::Resolved(step) if !closed => {
            row.status = "resolved".to_owned();
            row.resolved_at = Some(step.at);
            row.resolution_seconds = Some(seconds(row.opened_at, step.at));
        }
        E::Reopened(_) if !closed => {
            row.status = "open".to_owned();
            row.resolved_at = None;
            row.resolution_seconds = None;
        }
        E::Closed(_) => row.status = "closed".to_owned(),
        E::CategoryChanged(change) => row.category_id = change.category.map(|c| c.as_uuid()),
        _ => {}
    }
    true
}

#[expect(
    clippy::cast_precision_loss,
    reason = "milliseconds fit an f64 exactly for any real duration"
)]
fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// How many tickets are in one status.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatusCount {
    /// `new`, `open`, `pending`, `resolved` or `closed`.
    pub status: String,
    /// Tickets in it.
    pub tickets: i64,
}

/// Tickets per status (statuses without tickets are absent):
///
/// ```sql
/// select status, count(*) as tickets from dashboard_tickets group by status order by status
/// ```
///
/// # Errors
/// The database's.
pub async fn tickets_by_status(conn: &mut PgConnection) -> sqlx::Result<Vec<StatusCount>> {
    sqlx::query_as(
        "select status, count(*) as tickets from public.dashboard_tickets \
         group by status order by status",
    )
    .fetch_all(conn)
    .await
}

/// How many tickets of one category are in one status.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct CategoryCount {
    /// The category (`None`: uncategorised).
    pub category_id: Option<Uuid>,
    /// The status.
    pub status: String,
    /// Tickets.
    pub tickets: i64,
}

/// Tickets per category and status:
///
/// ```sql
/// select category_id, status, count(*) as tickets from dashboard_tickets
/// group by category_id, status order by category_id nulls first, status
/// ```
///
/// # Errors
/// The database's.
pub async fn tickets_by_category(conn: &mut PgConnection) -> sqlx::Result<Vec<CategoryCount>> {
    sqlx::query_as(
        "select category_id, status, count(*) as tickets from public.dashboard_tickets \
         group by category_id, status order by category_id nulls first, status",
    )
    .fetch_all(conn)
    .await
}

/// One day (UTC) of the team's response and resolution times.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct DailyMedians {
    /// The day, in UTC.
    pub day: NaiveDate,
    /// Tickets first answered that day.
    pub responded: i64,
    /// Median seconds from opening to the first agent reply, over those tickets.
    pub median_first_response_seconds: Option<f64>,
    /// Tickets resolved that day (and not reopened since).
    pub resolved: i64,
    /// Median seconds from opening to the resolve, over those tickets.
    pub median_resolution_seconds: Option<f64>,
}

/// The SQL of [`daily_medians`]: tickets count on the day of their first response (for the
/// first-response median) and on the day of their last resolve (for the resolution median).
pub const DAILY_MEDIANS_SQL: &str = "\
with responses as (
    select (first_response_at at time zone 'utc')::date as day, count(*) as n,
           percentile_cont(0.5) within group (order by first_response_seconds) as median
    from public.dashboard_tickets
    where first_response_at >= $1 and first_response_at < $2
    group by 1
), resolutions as (
    select (resolved_at at time zone 'utc')::date as day, count(*) as n,
           percentile_cont(0.5) within group (order by resolution_seconds) as median
    from public.dashboard_tickets
    where resolved_at >= $1 and resolved_at < $2
    group by 1
)
select coalesce(a.day, b.day) as day,
       coalesce(a.n, 0) as responded, a.median as median_first_response_seconds,
       coalesce(b.n, 0) as resolved, b.median as median_resolution_seconds
from responses a full join resolutions b on a.day = b.day
order by 1";

/// Median first-response and resolution times per UTC day in `[from, to)`; days without either
/// are absent. See [`DAILY_MEDIANS_SQL`].
///
/// # Errors
/// The database's.
pub async fn daily_medians(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<DailyMedians>> {
    sqlx::query_as(DAILY_MEDIANS_SQL)
        .bind(from)
        .bind(to)
        .fetch_all(conn)
        .await
}
