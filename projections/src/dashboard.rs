//! Read model "dashboard": per-ticket timings for the team's dashboard, and its queries.
//!
//! Owns `dashboard_tickets`: one row per ticket with its status, category, when it was opened,
//! first answered and (last) resolved, and the seconds each took. Fed by `ticket.*` events.
//! Its reads are in [`queries`]; they read the live tables.
//!
//! A row records the ticket stream version it reflects and skips older events, so replays
//! change nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use domain::ticket::{TicketEvent, TicketStatus};
use domain::{AnyEvent, StreamId};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::projection::{ApplyError, Envelope, Kept, KeptRows, Target, read_model};
use crate::sql;
use crate::table::{StoredText, Table, Text, table};

pub mod queries;

pub use queries::{DAILY_MEDIANS_SQL, DailyMedians};

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
    let Some(rows) = KeptRows::<DashboardRow>::of(kept, target) else {
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

table! {
    /// One row of `dashboard_tickets`: a ticket's status, category and timings.
    #[derive(Debug, Clone, PartialEq)]
    pub struct DashboardRow in "dashboard_tickets" {
        /// The ticket.
        ticket_id: Uuid = "uuid",
        /// Its category, if any.
        category_id: Option<Uuid> = "uuid",
        /// Its status.
        #[sqlx(try_from = "Text<TicketStatus>")]
        status: TicketStatus = "text",
        /// When it was opened.
        opened_at: DateTime<Utc> = "timestamptz",
        /// The first agent reply.
        first_response_at: Option<DateTime<Utc>> = "timestamptz",
        /// Seconds from opening to the first agent reply.
        first_response_seconds: Option<f64> = "double precision",
        /// The last resolve, cleared by a reopen (kept through a close).
        resolved_at: Option<DateTime<Utc>> = "timestamptz",
        /// Seconds from opening to that resolve.
        resolution_seconds: Option<f64> = "double precision",
        /// The ticket stream's version this row reflects.
        version: i64 = "bigint",
    }
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
    let mut kept = KeptRows::<DashboardRow>::of(kept, target);
    let mut rows: HashMap<Uuid, DashboardRow> = HashMap::with_capacity(ids.len());
    KeptRows::load(
        kept.as_deref_mut(),
        conn,
        ids,
        (
            &target.table(DashboardRow::TABLE),
            DashboardRow::COLUMNS,
            "ticket_id",
        ),
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
    rows: &HashMap<Uuid, DashboardRow>,
    dirty: &HashSet<Uuid>,
) -> Result<(), ApplyError> {
    let rows: Vec<&DashboardRow> = dirty.iter().filter_map(|id| rows.get(id)).collect();
    if rows.is_empty() {
        return Ok(());
    }
    static UPSERT: sql::Upsert = sql::Upsert::new(
        DashboardRow::TABLE,
        DashboardRow::WRITTEN,
        &["ticket_id"],
        sql::OnConflict::NEWER,
    );
    DashboardRow::bind(sqlx::query(UPSERT.text(target)), &rows)
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
fn fold(
    rows: &mut HashMap<Uuid, DashboardRow>,
    id: Uuid,
    version: i64,
    event: &TicketEvent,
) -> bool {
    use TicketEvent as E;
    let Some(row) = rows.get_mut(&id) else {
        if let E::Opened(opened) = event {
            rows.insert(
                id,
                DashboardRow {
                    ticket_id: id,
                    category_id: opened.category.map(|c| c.as_uuid()),
                    status: TicketStatus::New,
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
    let closed = row.status == TicketStatus::Closed;
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
            row.status = change.to;
        }
        E::Resolved(step) if !closed => {
            row.status = TicketStatus::Resolved;
            row.resolved_at = Some(step.at);
            row.resolution_seconds = Some(seconds(row.opened_at, step.at));
        }
        E::Reopened(_) if !closed => {
            row.status = TicketStatus::Open;
            row.resolved_at = None;
            row.resolution_seconds = None;
        }
        E::Closed(_) => row.status = TicketStatus::Closed,
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

/// How many tickets are in one status, the status as stored text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusCount {
    /// `new`, `open`, `pending`, `resolved` or `closed`.
    pub status: String,
    /// Tickets in it.
    pub tickets: i64,
}

/// [`queries::by_status`], the statuses as stored text.
///
/// # Errors
/// The database's, or a status the code does not know.
pub async fn tickets_by_status(conn: &mut PgConnection) -> sqlx::Result<Vec<StatusCount>> {
    Ok(queries::by_status(conn)
        .await?
        .into_iter()
        .map(|count| StatusCount {
            status: count.status.as_str().to_owned(),
            tickets: count.tickets,
        })
        .collect())
}

/// How many tickets of one category are in one status, the status as stored text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryCount {
    /// The category (`None`: uncategorised).
    pub category_id: Option<Uuid>,
    /// The status.
    pub status: String,
    /// Tickets.
    pub tickets: i64,
}

/// [`queries::by_category`], the statuses as stored text.
///
/// # Errors
/// The database's, or a status the code does not know.
pub async fn tickets_by_category(conn: &mut PgConnection) -> sqlx::Result<Vec<CategoryCount>> {
    Ok(queries::by_category(conn)
        .await?
        .into_iter()
        .map(|count| CategoryCount {
            category_id: count.category_id,
            status: count.status.as_str().to_owned(),
            tickets: count.tickets,
        })
        .collect())
}

/// [`queries::daily_medians`] on one connection.
///
/// # Errors
/// The database's.
pub async fn daily_medians(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<DailyMedians>> {
    queries::daily_medians(conn, from, to).await
}
