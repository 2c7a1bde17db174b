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
//! An export of the whole log (no lower bound, no stream prefix) also carries the log's signed
//! anchors ([`super::audit`]), each as one line of its own kind, placed after the last event it
//! covers:
//!
//! ```json
//! {"anchor":{"position":"…","created_at":"…","previous_signature":"<128 hex>"|null,
//!  "heads_digest":"<64 hex>","public_key":"<64 hex>","signature":"<128 hex>",
//!  "heads":[{"stream":"ticket-…","version":3,"hash":"<64 hex>"},…]}}
//! ```
//!
//! `position` is the position the anchor signs, in the log it was written in; `heads` are in
//! byte order of their stream ids. [`import`] checks each anchor as it comes: every head must
//! be its stream's last event so far in the file, with that hash; the heads must give
//! `heads_digest`; the signature must hold for `public_key`; and `previous_signature` must be
//! the signature of the anchor line before it (null for the first). Whether the key is one to
//! trust is for `audit verify` to say. An imported anchor keeps the position it signs, and
//! records the position here of the last event before its line as the place it covers up to.
//!
//! [`export`] streams rows straight to the writer (constant memory, but for one anchor's
//! heads). [`import`] reads such a
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
use super::audit::{anchor_message, digest_head, signature_holds};
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
    /// Anchors written.
    pub anchors: u64,
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
    // The anchors name every stream's head: only a whole log can carry them.
    let with_anchors = scope.from.is_none() && scope.stream_prefix.is_none();
    let mut anchor = if with_anchors {
        next_anchor(log.pool(), 0, to).await?
    } else {
        None
    };
    while let Some(row) = rows.next().await {
        let row = row.map_err(backend)?;
        let position = Position::from_parts(to_u64(row.tx_id), to_u64(row.position));
        while let Some(due) = anchor.take_if(|a| a.covers() < position) {
            write_anchor(log.pool(), &due, out).await?;
            exported.anchors += 1;
            anchor = next_anchor(log.pool(), due.seq, to).await?;
        }
        line.clear();
        write_line(&mut line, position, &row).map_err(io)?;
        out.write_all(&line).map_err(io)?;
        exported.events += 1;
        exported.last = Some(position);
        if exported.events.is_multiple_of(4096) {
            progress(exported.events);
        }
    }
    while let Some(due) = anchor.take() {
        write_anchor(log.pool(), &due, out).await?;
        exported.anchors += 1;
        anchor = next_anchor(log.pool(), due.seq, to).await?;
    }
    out.flush().map_err(io)?;
    progress(exported.events);
    Ok(exported)
}

/// An anchor to export, without its heads.
#[derive(Debug, sqlx::FromRow)]
struct AnchorRow {
    seq: i64,
    tx_id: i64,
    position: i64,
    covers_tx_id: i64,
    covers_position: i64,
    created_at: DateTime<Utc>,
    previous_signature: Option<Vec<u8>>,
    heads_digest: Vec<u8>,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

impl AnchorRow {
    /// Where in this log it covers up to.
    fn covers(&self) -> Position {
        Position::from_parts(to_u64(self.covers_tx_id), to_u64(self.covers_position))
    }
}

/// The first anchor after `after` (a sequence number) that covers no more than `to`.
async fn next_anchor(pool: &PgPool, after: i64, to: Position) -> Result<Option<AnchorRow>, Error> {
    let (to_tx, to_seq) = params(to);
    sqlx::query_as(
        "select seq, tx_id, position, coalesce(covers_tx_id, tx_id) as covers_tx_id, \
                coalesce(covers_position, position) as covers_position, created_at, \
                previous_signature, heads_digest, public_key, signature \
           from log_anchors \
          where seq > $1 \
            and (coalesce(covers_tx_id, tx_id), coalesce(covers_position, position)) \
                <= ($2, $3) \
          order by seq limit 1",
    )
    .bind(after)
    .bind(to_tx)
    .bind(to_seq)
    .fetch_optional(pool)
    .await
    .map_err(backend)
}

/// Writes `anchor` as one line, its heads streamed from the database.
async fn write_anchor(
    pool: &PgPool,
    anchor: &AnchorRow,
    out: &mut impl Write,
) -> Result<(), Error> {
    let position = Position::from_parts(to_u64(anchor.tx_id), to_u64(anchor.position));
    let previous = anchor
        .previous_signature
        .as_ref()
        .map_or_else(|| "null".to_owned(), |s| format!("\"{}\"", hex::encode(s)));
    write!(
        out,
        "{{\"anchor\":{{\"position\":\"{position}\",\"created_at\":\"{}\",\
         \"previous_signature\":{previous},\"heads_digest\":\"{}\",\"public_key\":\"{}\",\
         \"signature\":\"{}\",\"heads\":[",
        anchor
            .created_at
            .to_rfc3339_opts(SecondsFormat::Micros, true),
        hex::encode(&anchor.heads_digest),
        hex::encode(&anchor.public_key),
        hex::encode(&anchor.signature),
    )
    .map_err(io)?;
    let mut heads = sqlx::query_as::<_, (String, i64, Vec<u8>)>(
        "select stream_id, stream_version, hash from log_anchor_heads \
          where anchor_seq = $1 order by stream_id collate \"C\"",
    )
    .bind(anchor.seq)
    .fetch(pool);
    let mut first = true;
    let mut line = Vec::with_capacity(256);
    while let Some(head) = heads.next().await {
        let (stream, version, hash) = head.map_err(backend)?;
        line.clear();
        if !first {
            line.push(b',');
        }
        first = false;
        line.extend_from_slice(b"{\"stream\":");
        serde_json::to_writer(&mut line, &stream).map_err(io)?;
        write!(
            line,
            ",\"version\":{version},\"hash\":\"{}\"}}",
            hex::encode(&hash)
        )
        .map_err(io)?;
        out.write_all(&line).map_err(io)?;
    }
    out.write_all(b"]}}\n").map_err(io)
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
    /// Anchors restored.
    pub anchors: u64,
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
    let any: bool = sqlx::query_scalar(
        "select exists (select 1 from events) or exists (select 1 from log_anchors)",
    )
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
    let mut previous_anchor: Option<Vec<u8>> = None;
    let mut number = 0_u64;
    for text in input.lines() {
        let text = text?;
        number += 1;
        if text.trim().is_empty() {
            continue;
        }
        if text.trim_start().starts_with(ANCHOR_LINE) {
            // The events it covers go in first: it records where the last of them is.
            imported.events += insert_batch(&mut tx, &mut batch_lines, &mut batch_numbers).await?;
            import_anchor(&mut tx, &text, number, &heads, &mut previous_anchor).await?;
            imported.anchors += 1;
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

/// How an anchor line starts, as [`export`] writes it.
const ANCHOR_LINE: &str = "{\"anchor\":";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorLine {
    anchor: AnchorRecord,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorRecord {
    position: Position,
    created_at: DateTime<Utc>,
    previous_signature: Option<String>,
    heads_digest: String,
    public_key: String,
    signature: String,
    heads: Vec<AnchorHead>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnchorHead {
    stream: String,
    version: u64,
    hash: String,
}

/// Checks the anchor line `text` against the events imported so far (`heads`: each stream's
/// last version and hash) and the anchor before it, and stores it with its heads.
async fn import_anchor(
    tx: &mut sqlx::PgTransaction<'_>,
    text: &str,
    number: u64,
    heads: &HashMap<String, (u64, [u8; 32], u64)>,
    previous: &mut Option<Vec<u8>>,
) -> Result<(), ImportError> {
    let refuse = |reason: String| ImportError::Refused {
        line: number,
        reason,
    };
    let AnchorLine { anchor } =
        serde_json::from_str(text).map_err(|e| refuse(format!("not an anchor line: {e}")))?;
    let bytes = |text: &str, len: usize, what: &str| {
        hex::decode(text)
            .ok()
            .filter(|b| b.len() == len)
            .ok_or_else(|| refuse(format!("`{what}` is not {} hex digits", len * 2)))
    };
    let previous_signature = match &anchor.previous_signature {
        Some(text) => Some(bytes(text, 64, "previous_signature")?),
        None => None,
    };
    let digest = bytes(&anchor.heads_digest, 32, "heads_digest")?;
    let public_key = bytes(&anchor.public_key, 32, "public_key")?;
    let signature = bytes(&anchor.signature, 64, "signature")?;
    if previous_signature != *previous {
        return Err(refuse(
            "the anchor does not follow the anchor line before it (one is missing or \
             replaced)"
                .into(),
        ));
    }
    let mut hasher = <sha2::Sha256 as sha2::Digest>::new();
    let mut streams = Vec::with_capacity(anchor.heads.len());
    let mut versions = Vec::with_capacity(anchor.heads.len());
    let mut hashes = Vec::with_capacity(anchor.heads.len());
    for head in &anchor.heads {
        let hash = hash_of(&head.hash)
            .ok_or_else(|| refuse("a head's `hash` is not 64 hex digits".into()))?;
        if streams
            .last()
            .is_some_and(|last: &String| last.as_bytes() >= head.stream.as_bytes())
        {
            return Err(refuse(format!(
                "the heads are not in byte order of their streams at {}",
                head.stream
            )));
        }
        match heads.get(&head.stream) {
            Some((version, last_hash, _)) if *version == head.version && *last_hash == hash => {}
            Some((version, _, line)) => {
                return Err(refuse(format!(
                    "the anchor names version {} of stream {} with hash {}, and the file's \
                     last event of it before this line is version {version} (line {line}) \
                     with another hash or version",
                    head.version, head.stream, head.hash
                )));
            }
            None => {
                return Err(refuse(format!(
                    "the anchor names stream {}, which has no event before this line",
                    head.stream
                )));
            }
        }
        digest_head(&mut hasher, &head.stream, head.version, &hash);
        streams.push(head.stream.clone());
        versions.push(i64::try_from(head.version).unwrap_or(i64::MAX));
        hashes.push(hash.to_vec());
    }
    let computed: [u8; 32] = sha2::Digest::finalize(hasher).into();
    if computed[..] != digest[..] {
        return Err(refuse(
            "the anchor's heads do not give its `heads_digest`".into(),
        ));
    }
    let count = anchor.heads.len() as u64;
    let message = anchor_message(
        previous_signature.as_deref(),
        anchor.position,
        count,
        &digest,
    );
    if !signature_holds(&public_key, &message, &signature) {
        return Err(refuse(
            "the anchor's signature does not hold for its content and public key".into(),
        ));
    }
    // The last event imported so far: this table was empty and is locked.
    let covers: Option<(i64, i64)> = sqlx::query_as(
        "select tx_id, position from events order by tx_id desc, position desc limit 1",
    )
    .fetch_optional(&mut **tx)
    .await
    .map_err(backend)?;
    let Some((covers_tx, covers_seq)) = covers else {
        return Err(refuse("an anchor comes before any event".into()));
    };
    let (tx_id, seq) = params(anchor.position);
    let stored: i64 = sqlx::query_scalar(
        "insert into log_anchors (tx_id, position, created_at, previous_signature, head_count, \
                                  heads_digest, public_key, signature, covers_tx_id, \
                                  covers_position) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) returning seq",
    )
    .bind(tx_id)
    .bind(seq)
    .bind(anchor.created_at)
    .bind(&previous_signature)
    .bind(i64::try_from(count).unwrap_or(i64::MAX))
    .bind(&digest)
    .bind(&public_key)
    .bind(&signature)
    .bind(covers_tx)
    .bind(covers_seq)
    .fetch_one(&mut **tx)
    .await
    .map_err(backend)?;
    sqlx::query(
        "insert into log_anchor_heads (anchor_seq, stream_id, stream_version, hash) \
         select $1, s, v, h from unnest($2::text[], $3::bigint[], $4::bytea[]) as u (s, v, h)",
    )
    .bind(stored)
    .bind(streams)
    .bind(versions)
    .bind(hashes)
    .execute(&mut **tx)
    .await
    .map_err(backend)?;
    *previous = Some(signature);
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
