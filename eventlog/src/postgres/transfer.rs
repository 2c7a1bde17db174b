//! The log out and in: export as JSON Lines, import into an empty log.
//!
//! One line per event, in log order, with the event's whole envelope:
//!
//! ```json
//! {"position":"…","stream":"ticket-…","version":0,"id":"…","type":"ticket.opened",
//!  "schema_version":1,"recorded_at":"2026-12-07T12:00:00.123456Z","payload":{…},
//!  "metadata":{…},"hash":"<64 hex>","previous_hash":null}
//! ```
//!
//! `payload` and `metadata` are written in Postgres' canonical `jsonb` text, the text the hash
//! chain covers ([`crate::chain`]), so any reader can recompute the hashes from the file alone.
//!
//! [`export`] streams rows straight to the writer (constant memory). [`import`] reads such a
//! file into an empty log in one transaction, all or nothing: it checks that positions only
//! grow (a reordered file is refused), that each stream's versions follow each other and each
//! `previous_hash` is the stream's previous `hash`, and the database checks that every event's
//! content gives its `hash` as stored. The first line that fails is named. Events keep their
//! streams, versions, ids, times and hashes, and the log's order; their positions are the new
//! log's own (a position names a place in one database's log). It keeps, per stream, the last
//! version and hash seen, so its memory grows with the number of streams, not of events.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::PostgresLog;
use super::encoded::{backend, to_u64};
use crate::{Error, EventLog, Metadata, Position, limits};

/// Which events to export.
#[derive(Debug, Clone, Default)]
pub struct ExportScope {
    /// From this position on (inclusive).
    pub from: Option<Position>,
    /// Up to this position (inclusive); never past the log's head when the export starts.
    pub to: Option<Position>,
    /// Only streams whose id starts with this.
    pub stream_prefix: Option<String>,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exported {
    /// Events written.
    pub events: u64,
    /// The position of the last event written.
    pub last: Option<Position>,
}

#[derive(Debug, sqlx::FromRow)]
struct ExportRow {
    tx_id: i64,
    position: i64,
    stream_id: String,
    stream_version: i64,
    event_id: Uuid,
    event_type: String,
    schema_version: i32,
    recorded_at: DateTime<Utc>,
    payload: String,
    metadata: String,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
}

/// Writes the events of `scope` to `out` as JSON Lines, in log order, up to the log's head
/// when the export starts. `progress` is called every few thousand events with the count.
///
/// # Errors
/// When the database cannot be read or `out` cannot be written.
pub async fn export(
    log: &PostgresLog,
    scope: &ExportScope,
    out: &mut impl Write,
    mut progress: impl FnMut(u64),
) -> Result<Exported, Error> {
    let head = log.head().await?;
    let to = scope.to.map_or(head, |to| to.min(head));
    let (from_tx, from_seq) = params(scope.from.unwrap_or(Position::START));
    let (to_tx, to_seq) = params(to);
    let mut rows = sqlx::query_as::<_, ExportRow>(
        "select tx_id, position, stream_id, stream_version, event_id, event_type, \
                schema_version, recorded_at, payload::text as payload, \
                metadata::text as metadata, prev_hash, hash \
           from events \
          where (tx_id, position) >= ($1, $2) and (tx_id, position) <= ($3, $4) \
            and ($5::text is null or starts_with(stream_id, $5)) \
          order by tx_id, position",
    )
    .bind(from_tx)
    .bind(from_seq)
    .bind(to_tx)
    .bind(to_seq)
    .bind(scope.stream_prefix.as_deref())
    .fetch(log.pool());
    let mut exported = Exported::default();
    let mut line = Vec::with_capacity(4096);
    while let Some(row) = rows.next().await {
        let row = row.map_err(backend)?;
        line.clear();
        let position = Position::from_parts(to_u64(row.tx_id), to_u64(row.position));
        write_line(&mut line, position, &row).map_err(io)?;
        out.write_all(&line).map_err(io)?;
        exported.events += 1;
        exported.last = Some(position);
        if exported.events.is_multiple_of(4096) {
            progress(exported.events);
        }
    }
    out.flush().map_err(io)?;
    progress(exported.events);
    Ok(exported)
}

fn write_line(line: &mut Vec<u8>, position: Position, row: &ExportRow) -> std::io::Result<()> {
    write!(line, "{{\"position\":\"{position}\",\"stream\":")?;
    serde_json::to_writer(&mut *line, &row.stream_id)?;
    write!(
        line,
        ",\"version\":{},\"id\":\"{}\",\"type\":",
        row.stream_version, row.event_id
    )?;
    serde_json::to_writer(&mut *line, &row.event_type)?;
    write!(
        line,
        ",\"schema_version\":{},\"recorded_at\":\"{}\",\"payload\":{},\"metadata\":{},\
         \"hash\":\"{}\",\"previous_hash\":",
        row.schema_version,
        row.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        row.payload,
        row.metadata,
        hex::encode(&row.hash),
    )?;
    match &row.prev_hash {
        Some(prev) => write!(line, "\"{}\"}}", hex::encode(prev))?,
        None => line.extend_from_slice(b"null}"),
    }
    line.push(b'\n');
    Ok(())
}

fn io(err: impl std::error::Error + Send + Sync + 'static) -> Error {
    Error::Backend(Box::new(err))
}

/// Why an import was refused. Nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The log already holds events.
    #[error("the log is not empty: import only into a new database")]
    NotEmpty,
    /// A line of the file is malformed, out of order, or breaks a hash chain.
    #[error("line {line}: {reason}")]
    Refused {
        /// The line, counted from 1.
        line: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Read(#[from] std::io::Error),
    /// The database failed.
    #[error(transparent)]
    Log(#[from] Error),
}

/// What an import appended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    /// Events appended.
    pub events: u64,
    /// Streams they belong to.
    pub streams: u64,
}

/// A line of the file, as far as the import checks it in Rust (the payload is only checked
/// to be JSON; the database reads it from the line itself).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    position: Position,
    stream: String,
    version: u64,
    #[expect(
        dead_code,
        reason = "checked to be a uuid here, stored from the line by SQL"
    )]
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    schema_version: u32,
    #[expect(
        dead_code,
        reason = "checked to be a time here, stored from the line by SQL"
    )]
    recorded_at: DateTime<Utc>,
    #[expect(
        dead_code,
        reason = "checked to be JSON here, stored from the line by SQL"
    )]
    payload: serde::de::IgnoredAny,
    #[expect(
        dead_code,
        reason = "checked to decode here, stored from the line by SQL"
    )]
    metadata: Metadata,
    hash: String,
    previous_hash: Option<String>,
}

/// Events sent to the database at once.
const IMPORT_BATCH: usize = 2_000;

/// Appends the events of `input` (JSON Lines as [`export`] writes them) to the empty log of
/// `pool`, in one transaction, checking every line as the module docs say. `pool` must
/// connect as the log's owner: only the owner may write the times events were recorded.
/// `progress` is called after each batch with the lines read.
///
/// # Errors
/// [`ImportError`]: nothing was imported.
pub async fn import(
    pool: &PgPool,
    input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<Imported, ImportError> {
    let mut tx = pool.begin().await.map_err(backend)?;
    // No append may slip in meanwhile (a lock is not a write: the append registration of
    // migration 0019 still comes first).
    sqlx::query("lock table events in share row exclusive mode")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let any: bool = sqlx::query_scalar("select exists (select 1 from events)")
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    if any {
        return Err(ImportError::NotEmpty);
    }
    let mut heads: HashMap<String, (u64, [u8; 32], u64)> = HashMap::new();
    let mut last_position: Option<(Position, u64)> = None;
    let mut batch_lines: Vec<String> = Vec::with_capacity(IMPORT_BATCH);
    let mut batch_numbers: Vec<i64> = Vec::with_capacity(IMPORT_BATCH);
    let mut imported = Imported::default();
    let mut number = 0_u64;
    for text in input.lines() {
        let text = text?;
        number += 1;
        if text.trim().is_empty() {
            continue;
        }
        check_line(&text, number, &mut heads, &mut last_position)?;
        batch_lines.push(text);
        batch_numbers.push(i64::try_from(number).unwrap_or(i64::MAX));
        if batch_lines.len() == IMPORT_BATCH {
            imported.events += insert_batch(&mut tx, &mut batch_lines, &mut batch_numbers).await?;
            progress(number);
        }
    }
    imported.events += insert_batch(&mut tx, &mut batch_lines, &mut batch_numbers).await?;
    imported.streams = heads.len() as u64;
    tx.commit().await.map_err(backend)?;
    progress(number);
    Ok(imported)
}

fn check_line(
    text: &str,
    number: u64,
    heads: &mut HashMap<String, (u64, [u8; 32], u64)>,
    last_position: &mut Option<(Position, u64)>,
) -> Result<(), ImportError> {
    let refuse = |reason: String| ImportError::Refused {
        line: number,
        reason,
    };
    // Postgres cannot store a NUL character in text or jsonb.
    if text.contains("\\u0000") {
        return Err(refuse(
            "holds a NUL character, which the log cannot store".into(),
        ));
    }
    let line: Line =
        serde_json::from_str(text).map_err(|e| refuse(format!("not an event line: {e}")))?;
    if line.stream.is_empty() || line.stream.chars().count() > limits::STREAM_ID_CHARS {
        return Err(refuse(format!(
            "a stream id has 1 to {} characters",
            limits::STREAM_ID_CHARS
        )));
    }
    if line.event_type.is_empty() || line.event_type.chars().count() > limits::EVENT_TYPE_CHARS {
        return Err(refuse(format!(
            "an event type has 1 to {} characters",
            limits::EVENT_TYPE_CHARS
        )));
    }
    if line.schema_version == 0 || i32::try_from(line.schema_version).is_err() {
        return Err(refuse("the schema version is out of range".into()));
    }
    if let Some((previous, previous_line)) = *last_position
        && line.position <= previous
    {
        return Err(refuse(format!(
            "position {} does not come after {previous} of line {previous_line}: the lines \
             are out of the log's order",
            line.position
        )));
    }
    *last_position = Some((line.position, number));
    let hash = hash_of(&line.hash).ok_or_else(|| refuse("`hash` is not 64 hex digits".into()))?;
    let previous_hash = match &line.previous_hash {
        None => None,
        Some(text) => Some(
            hash_of(text).ok_or_else(|| refuse("`previous_hash` is not 64 hex digits".into()))?,
        ),
    };
    match heads.get_mut(&line.stream) {
        None => {
            if line.version != 0 || previous_hash.is_some() {
                return Err(refuse(format!(
                    "stream {} starts at version {} with a previous hash: its earlier events \
                     are missing",
                    line.stream, line.version
                )));
            }
            heads.insert(line.stream, (0, hash, number));
        }
        Some((version, last_hash, last_line)) => {
            if line.version != *version + 1 {
                return Err(refuse(format!(
                    "stream {} has version {} after version {version} (line {last_line})",
                    line.stream, line.version
                )));
            }
            if previous_hash != Some(*last_hash) {
                return Err(refuse(format!(
                    "stream {} version {}: `previous_hash` is not the hash of version {version} \
                     (line {last_line})",
                    line.stream, line.version
                )));
            }
            *version = line.version;
            *last_hash = hash;
            *last_line = number;
        }
    }
    Ok(())
}

fn hash_of(text: &str) -> Option<[u8; 32]> {
    let mut hash = [0; 32];
    hex::decode_to_slice(text, &mut hash).ok()?;
    Some(hash)
}

/// Appends the batch's lines in order, and restores the idempotency keys their metadata
/// names; refuses the batch when an event's content does not give its hash.
async fn insert_batch(
    tx: &mut sqlx::PgTransaction<'_>,
    lines: &mut Vec<String>,
    numbers: &mut Vec<i64>,
) -> Result<u64, ImportError> {
    if lines.is_empty() {
        return Ok(0);
    }
    let count = lines.len() as u64;
    let bad: Option<i64> = sqlx::query_scalar(
        "with input as ( \
             select u.line, u.doc::jsonb as j \
               from unnest($1::bigint[], $2::text[]) as u (line, doc)), \
         inserted as ( \
             insert into events (stream_id, stream_version, event_id, event_type, \
                                 schema_version, payload, metadata, recorded_at, prev_hash, \
                                 hash) \
             select j->>'stream', (j->>'version')::bigint, (j->>'id')::uuid, j->>'type', \
                    (j->>'schema_version')::integer, j->'payload', j->'metadata', \
                    (j->>'recorded_at')::timestamptz, decode(j->>'previous_hash', 'hex'), \
                    decode(j->>'hash', 'hex') \
               from input order by line \
             returning event_id, \
                       hash = event_hash(prev_hash, event_type, payload::text, \
                                         metadata::text) as holds), \
         keys as ( \
             insert into idempotency_keys as k (key, event_ids) \
             select j->'metadata'->>'idempotency_key', \
                    array_agg((j->>'id')::uuid order by line) \
               from input where j->'metadata' ? 'idempotency_key' \
              group by 1 \
             on conflict (key) do update set event_ids = k.event_ids || excluded.event_ids) \
         select min(i.line) from inserted n join input i on (i.j->>'id')::uuid = n.event_id \
          where not n.holds",
    )
    .bind(&*numbers)
    .bind(&*lines)
    .fetch_one(&mut **tx)
    .await
    .map_err(
        |err| match err.as_database_error().and_then(|db| db.constraint()) {
            Some(constraint) => ImportError::Refused {
                line: numbers.first().map_or(0, |n| to_u64(*n)),
                reason: format!(
                    "the database refused the batch starting here ({constraint}): an event id or \
                 stream version appears twice"
                ),
            },
            None => ImportError::Log(backend(err)),
        },
    )?;
    if let Some(line) = bad {
        return Err(ImportError::Refused {
            line: to_u64(line),
            reason: "the event's type, payload or metadata do not give its `hash`".into(),
        });
    }
    lines.clear();
    numbers.clear();
    Ok(count)
}

fn params(p: Position) -> (i64, i64) {
    let (tx, seq) = p.parts();
    (
        i64::try_from(tx).unwrap_or(i64::MAX),
        i64::try_from(seq).unwrap_or(i64::MAX),
    )
}
