//! Verification: every read model rebuilt from the log into scratch tables and compared, row by
//! row, with the live tables, without touching them (`ledgerdesk replay --verify`).
//!
//! The scratch copy of `public.x` is a temporary table of the verification's own connection
//! (`pg_temp.x`, [`Target::Scratch`]), so nothing is left behind when the connection ends and
//! two verifications never meet. The live tables may keep moving while a server runs, so the
//! two copies are compared at one position of the log, in two steps:
//!
//! 1. each projection's scratch copy is built from the log up to where its live copy stood at
//!    the start (its checkpoint), a page at a time;
//! 2. one `repeatable read` transaction takes the live tables in `access share` mode (the
//!    projections go on writing; only a rebuild's swap waits), reads each live checkpoint in
//!    its snapshot, applies to the scratch copy the few events between the two positions, and
//!    compares the tables: both copies then stand at the same position, and the snapshot sees
//!    the live tables exactly as their checkpoint says.
//!
//! Rows are matched by their primary key; a table without one is compared as a multiset of
//! rows. Each differing row is reported (its table, key, and the columns whose values differ,
//! live and rebuilt), at most [`MAX_REPORTED`] per table, with the count of all of them.

use std::collections::BTreeMap;

use eventlog::{EventLog, Position};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection};

use super::applier::Decoded;
use super::context::Context;
use super::error::RuntimeError;
use super::ownership;
use super::report::RebuildProgress;
use crate::batch::{ApplyError, Envelope, Target};
use crate::checkpoint;
use crate::projection::Projection;

/// The most differing rows reported per table (all are counted).
pub const MAX_REPORTED: usize = 100;

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifyReport {
    /// One verdict per projection, in the order given.
    pub projections: Vec<Verdict>,
}

impl VerifyReport {
    /// Whether every projection was compared and every row matched.
    #[must_use]
    pub fn clean(&self) -> bool {
        self.projections
            .iter()
            .all(|verdict| verdict.problem.is_none() && verdict.differing_rows == 0)
    }
}

/// One projection's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The projection.
    pub projection: String,
    /// The position both copies stood at when compared.
    pub position: Position,
    /// Rows of the live tables compared.
    pub live_rows: u64,
    /// Rows that differ (counted over every table).
    pub differing_rows: u64,
    /// The differences, at most [`MAX_REPORTED`] rows per table.
    pub differences: Vec<Difference>,
    /// Why the projection could not be compared, when it could not.
    pub problem: Option<String>,
    /// The event the live copy stopped on, if it did (compared up to just before it).
    pub live_stopped_on: Option<String>,
}

/// One difference between a live row and the rebuilt one.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// The table.
    pub table: String,
    /// The row's primary key (an object of its key columns), or the whole row for a table
    /// without one.
    pub key: Value,
    /// The column that differs; `None` when the row is on one side only.
    pub column: Option<String>,
    /// The live value (the live row when `column` is `None`; null when absent).
    pub live: Value,
    /// The rebuilt value (the rebuilt row when `column` is `None`; null when absent).
    pub rebuilt: Value,
}

/// A projection under verification.
struct Checked {
    projection: std::sync::Arc<dyn Projection>,
    /// Where the scratch copy stands.
    position: Position,
    /// Where it must be built to before the comparison (the live checkpoint).
    target: Position,
    problem: Option<String>,
    live_stopped_on: Option<String>,
}

/// Verifies `projections` (see the module docs).
pub(super) async fn verify<L: EventLog>(
    cx: &Context<L>,
    pool: &sqlx::PgPool,
    projections: &[std::sync::Arc<dyn Projection>],
) -> Result<VerifyReport, RuntimeError> {
    let mut conn = ownership::connect(pool).await?;
    // Temporary tables live in the connection's local buffers: give them room before the
    // first one is made.
    conn.execute(sqlx::raw_sql("set temp_buffers = '256MB'"))
        .await?;
    let mut checked = Vec::with_capacity(projections.len());
    for projection in projections {
        let mut entry = Checked {
            projection: std::sync::Arc::clone(projection),
            position: Position::START,
            target: Position::START,
            problem: None,
            live_stopped_on: None,
        };
        if let Some(live) = checkpoint::load(&mut conn, projection.name(), Target::Live).await? {
            entry.target = live.position;
            if live.version != projection.version() {
                entry.problem = Some(format!(
                    "the live tables were built by version {} of the projection and this code \
                     is version {}: they are rebuilt when a server of this version starts \
                     (or run `ledgerdesk replay`); compare after that",
                    live.version,
                    projection.version()
                ));
            }
            entry.live_stopped_on = live.failure.map(|failure| {
                format!(
                    "event {} ({}) at position {}: {}",
                    failure.event_id, failure.event_type, failure.position, failure.error
                )
            });
        }
        if entry.problem.is_none() {
            create_scratch(&mut conn, projection.as_ref()).await?;
        }
        checked.push(entry);
    }
    let names: Vec<String> = checked
        .iter()
        .map(|c| c.projection.name().to_owned())
        .collect();

    // 1. Up to where each live copy stood at the start, a transaction per page.
    let mut events = 0_u64;
    let mut position = Position::START;
    let end = checked
        .iter()
        .map(|c| c.target)
        .max()
        .unwrap_or(Position::START);
    while position < end {
        let page = cx.log.read_all(position, cx.options.catch_up_page).await?;
        let short = page.events.len() < cx.options.catch_up_page;
        let decoded = Decoded::from_recorded(page.events);
        let mut tx = conn.begin().await?;
        apply_page(&mut tx, &mut checked, &decoded).await?;
        tx.commit().await?;
        events += decoded.events.len() as u64;
        position = decoded.last_position().unwrap_or(page.next);
        if let Some(progress) = &cx.progress {
            progress(&RebuildProgress {
                projections: names.clone(),
                events,
                position,
                done: false,
            });
        }
        if short || decoded.poison.is_some() {
            break;
        }
    }

    // 2. In one snapshot: the rest up to where the live copies stand now, and the comparison.
    let mut tx = conn.begin().await?;
    tx.execute(sqlx::raw_sql(
        "set transaction isolation level repeatable read",
    ))
    .await?;
    let tables: Vec<String> = checked
        .iter()
        .filter(|c| c.problem.is_none())
        .flat_map(|c| c.projection.tables().iter())
        .map(|table| format!("public.{table}"))
        .collect();
    if !tables.is_empty() {
        let sql = format!("lock table {} in access share mode", tables.join(", "));
        tx.execute(sqlx::raw_sql(&sql)).await?;
    }
    for entry in &mut checked {
        if let Some(live) = checkpoint::load(&mut tx, entry.projection.name(), Target::Live).await?
        {
            entry.target = live.position;
        }
    }
    let start = checked
        .iter()
        .filter(|c| c.problem.is_none())
        .map(|c| c.position)
        .min()
        .unwrap_or(Position::START);
    let end = checked
        .iter()
        .filter(|c| c.problem.is_none())
        .map(|c| c.target)
        .max()
        .unwrap_or(Position::START);
    let mut position = start;
    while position < end {
        let page = cx.log.read_all(position, cx.options.catch_up_page).await?;
        let short = page.events.len() < cx.options.catch_up_page;
        let decoded = Decoded::from_recorded(page.events);
        apply_page(&mut tx, &mut checked, &decoded).await?;
        events += decoded.events.len() as u64;
        position = decoded.last_position().unwrap_or(page.next);
        if short || decoded.poison.is_some() {
            break;
        }
    }
    let mut report = VerifyReport::default();
    for entry in checked {
        let mut verdict = Verdict {
            projection: entry.projection.name().to_owned(),
            position: entry.target,
            live_rows: 0,
            differing_rows: 0,
            differences: Vec::new(),
            problem: entry.problem,
            live_stopped_on: entry.live_stopped_on,
        };
        if verdict.problem.is_none() && entry.position < entry.target {
            verdict.problem = Some(format!(
                "the log ends at {} before the live checkpoint {}",
                entry.position, entry.target
            ));
        }
        if verdict.problem.is_none() {
            for table in entry.projection.tables() {
                compare(&mut tx, table, &mut verdict).await?;
            }
        }
        report.projections.push(verdict);
    }
    tx.rollback().await?;
    if let Some(progress) = &cx.progress {
        progress(&RebuildProgress {
            projections: names,
            events,
            position,
            done: true,
        });
    }
    let _ = conn.close().await;
    Ok(report)
}

/// Creates the projection's scratch tables, empty, as copies of the live ones.
async fn create_scratch(
    conn: &mut PgConnection,
    projection: &dyn Projection,
) -> Result<(), sqlx::Error> {
    for table in projection.tables() {
        let sql = format!(
            "drop table if exists pg_temp.{table};
             create temporary table {table} (like public.{table} including all)"
        );
        conn.execute(sqlx::raw_sql(&sql)).await?;
    }
    Ok(())
}

/// Applies the events of `page` each projection still needs (after its scratch position, up
/// to its target) to its scratch copy. A projection that cannot apply an event its live copy
/// applied gets a problem and no more events. Each batch runs in a savepoint of the caller's
/// transaction, so a failing one leaves the others' work in place.
async fn apply_page(
    conn: &mut PgConnection,
    checked: &mut [Checked],
    page: &Decoded,
) -> Result<(), RuntimeError> {
    for entry in checked.iter_mut().filter(|c| c.problem.is_none()) {
        let from = page
            .events
            .partition_point(|event| event.position <= entry.position);
        let to = page
            .events
            .partition_point(|event| event.position <= entry.target);
        let events: &[Envelope] = page.events.get(from..to).unwrap_or_default();
        if let Some(last) = events.last() {
            if events.iter().any(|event| entry.projection.wants(event)) {
                let mut savepoint = conn.begin().await?;
                let applied = entry
                    .projection
                    .apply(&mut savepoint, Target::Scratch, events)
                    .await;
                match applied {
                    Ok(()) => savepoint.commit().await?,
                    Err(ApplyError::Database(err)) if super::error::is_connection_failure(&err) => {
                        return Err(err.into());
                    }
                    Err(err) => {
                        savepoint.rollback().await?;
                        entry.problem = Some(format!(
                            "rebuilding stopped on a batch the live copy applied \
                             (events after {}): {err}",
                            entry.position
                        ));
                        continue;
                    }
                }
            }
            entry.position = last.position;
        }
        if let Some(poison) = &page.poison
            && poison.position <= entry.target
            && poison.position > entry.position
        {
            entry.problem = Some(format!(
                "event {} ({}) at position {} cannot be read, yet the live copy is past it: {}",
                poison.event_id, poison.event_type, poison.position, poison.error
            ));
        }
    }
    Ok(())
}

/// The primary-key columns of `public.table`, in key order (empty without a primary key).
async fn key_columns(conn: &mut PgConnection, table: &str) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select a.attname::text
         from pg_index i
         join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
         where i.indrelid = to_regclass('public.' || $1) and i.indisprimary
         order by array_position(i.indkey::int2[], a.attnum)",
    )
    .bind(table)
    .fetch_all(conn)
    .await
}

/// Compares `public.table` with `pg_temp.table`, adding what differs to `verdict`.
async fn compare(
    conn: &mut PgConnection,
    table: &str,
    verdict: &mut Verdict,
) -> Result<(), sqlx::Error> {
    let live_rows: i64 = sqlx::query_scalar(&format!("select count(*) from public.{table}"))
        .fetch_one(&mut *conn)
        .await?;
    verdict.live_rows += u64::try_from(live_rows).unwrap_or(0);
    let keys = key_columns(conn, table).await?;
    // Pairs (live row, rebuilt row) as JSON, null on the side a row is missing from.
    let pairs = if keys.is_empty() {
        format!(
            "(select to_jsonb(l) as live, null::jsonb as rebuilt
                from (table public.{table} except all table pg_temp.{table}) l)
             union all
             (select null::jsonb, to_jsonb(s)
                from (table pg_temp.{table} except all table public.{table}) s)"
        )
    } else {
        let on: Vec<String> = keys
            .iter()
            .map(|key| format!("l.{key} = s.{key}"))
            .collect();
        let order: Vec<String> = keys
            .iter()
            .map(|key| format!("coalesce(l.{key}, s.{key})"))
            .collect();
        format!(
            "select case when l.{first} is null then null else to_jsonb(l) end as live,
                    case when s.{first} is null then null else to_jsonb(s) end as rebuilt
             from public.{table} l full join pg_temp.{table} s on {on}
             where l.{first} is null or s.{first} is null or to_jsonb(l) <> to_jsonb(s)
             order by {order}",
            first = keys[0],
            on = on.join(" and "),
            order = order.join(", "),
        )
    };
    let differing: i64 =
        sqlx::query_scalar(&format!("select count(*) from ({pairs}) as differing"))
            .fetch_one(&mut *conn)
            .await?;
    verdict.differing_rows += u64::try_from(differing).unwrap_or(0);
    if differing == 0 {
        return Ok(());
    }
    let rows: Vec<(Option<Value>, Option<Value>)> = sqlx::query_as(&format!(
        "select * from ({pairs}) as differing limit {MAX_REPORTED}"
    ))
    .fetch_all(&mut *conn)
    .await?;
    for (live, rebuilt) in rows {
        let either = live.as_ref().or(rebuilt.as_ref());
        let key = if keys.is_empty() {
            either.cloned().unwrap_or(Value::Null)
        } else {
            Value::Object(
                keys.iter()
                    .map(|key| {
                        let value = either.and_then(|row| row.get(key)).cloned();
                        (key.clone(), value.unwrap_or(Value::Null))
                    })
                    .collect(),
            )
        };
        match (live, rebuilt) {
            (Some(Value::Object(live)), Some(Value::Object(rebuilt))) => {
                let columns: BTreeMap<&String, ()> =
                    live.keys().chain(rebuilt.keys()).map(|k| (k, ())).collect();
                for column in columns.keys() {
                    let (l, r) = (live.get(*column), rebuilt.get(*column));
                    if l != r {
                        verdict.differences.push(Difference {
                            table: table.to_owned(),
                            key: key.clone(),
                            column: Some((*column).clone()),
                            live: l.cloned().unwrap_or(Value::Null),
                            rebuilt: r.cloned().unwrap_or(Value::Null),
                        });
                    }
                }
            }
            (live, rebuilt) => verdict.differences.push(Difference {
                table: table.to_owned(),
                key,
                column: None,
                live: live.unwrap_or(Value::Null),
                rebuilt: rebuilt.unwrap_or(Value::Null),
            }),
        }
    }
    Ok(())
}
