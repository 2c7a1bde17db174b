//! Tamper evidence: checking every stream's hash chain, and anchoring the whole log.
//!
//! # Verifying the chains
//!
//! [`verify`] reads the log in stream order (`stream_id`, `stream_version`, the order of the
//! unique index, so rows stream out of the index as they are read and nothing is sorted) and
//! recomputes each event's hash from the previous one ([`crate::chain`]). It keeps the state
//! of one stream at a time, so its memory does not grow with the log. For each stream it
//! reports the first link that does not hold: a version missing, a `prev_hash` that is not the
//! previous event's hash, an event whose content no longer gives its hash, or an event placed
//! in the log before the version it follows.
//!
//! # Anchors
//!
//! A chain cannot show that its newest events were removed: what is left is still a valid
//! chain. An anchor ([`write_anchor`]) records, at a log position, the last version and hash
//! of every stream that changed since the previous anchor, and signs them (ed25519) together
//! with the previous anchor's signature, so anchors form a chain of their own. Verification
//! checks each anchor's signature against the keys it trusts and its link to the one before,
//! and that every stream still holds the event its latest anchor names, with that hash. What
//! was appended after the newest anchor is covered by the next one; the interval between
//! anchors is how long a removal can go unseen.
//!
//! Signed message: `ledgerdesk-log-anchor-v1` and a NUL byte, the previous signature (4-byte
//! big-endian length, then its bytes; length 0 for the first anchor), the position's
//! transaction and sequence (8 bytes each, big-endian), the number of heads (8 bytes), and
//! `heads_digest`: sha256 over each head, in byte order of stream ids, as the stream id's
//! length (4 bytes) and bytes, the version (8 bytes) and the 32-byte hash.

use std::time::Duration;

use futures::{Stream, StreamExt, TryStreamExt};
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use super::PostgresLog;
use super::encoded::{backend, to_u64};
use crate::chain::event_hash;
use crate::{Error, EventLog, Position};

/// What is wrong at a broken link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The event's type, payload or metadata no longer give its stored hash: `expected` is
    /// the hash they give now, `stored` the one stored.
    Altered,
    /// The event's `prev_hash` is not the hash of the stream's previous event: `expected` is
    /// that event's hash, `stored` the event's `prev_hash`.
    PreviousHash,
    /// A version is missing: the link's `version` is the one expected, the event found next
    /// has a later one (`position` is that event's).
    MissingVersion,
    /// The event comes before the version it follows in the log's order.
    OutOfOrder,
    /// An anchor names this version of the stream, and the log no longer holds it: `expected`
    /// is the anchored hash.
    Removed,
    /// An anchor names this version with another hash than the log's (`expected`: the
    /// anchored hash, `stored`: the log's).
    AnchorDiffers,
    /// The anchor that names this version does not verify: its signature does not match its
    /// content (the anchor was changed), so what it names cannot be relied on.
    AnchorSignature,
    /// The anchor that names this version is signed by a key that is not trusted (an anchor
    /// forged with another key).
    AnchorKeyUnknown,
}

impl Problem {
    /// A short description for people.
    pub fn describe(self) -> &'static str {
        match self {
            Problem::Altered => "the event's type, payload or metadata no longer give its hash",
            Problem::PreviousHash => "the event's previous hash is not the previous event's hash",
            Problem::MissingVersion => "this version is missing from the stream",
            Problem::OutOfOrder => "the event comes before the version it follows in the log",
            Problem::Removed => "an anchor names this event and the log no longer holds it",
            Problem::AnchorDiffers => "an anchor names this event with another hash",
            Problem::AnchorSignature => "the anchor naming this event does not match its signature",
            Problem::AnchorKeyUnknown => {
                "the anchor naming this event is signed by a key that is not trusted"
            }
        }
    }

    /// The stable name of the problem (in the CLI's output and the API).
    pub fn name(self) -> &'static str {
        match self {
            Problem::Altered => "altered",
            Problem::PreviousHash => "previous_hash",
            Problem::MissingVersion => "missing_version",
            Problem::OutOfOrder => "out_of_order",
            Problem::Removed => "removed",
            Problem::AnchorDiffers => "anchor_differs",
            Problem::AnchorSignature => "anchor_signature",
            Problem::AnchorKeyUnknown => "anchor_key_unknown",
        }
    }
}

/// The first link of a stream that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The stream.
    pub stream: String,
    /// The version where the chain breaks.
    pub version: u64,
    /// The position of the event found there (`None` when there is none).
    pub position: Option<Position>,
    /// What the chain (or an anchor) says the hash should be.
    pub expected: Option<Vec<u8>>,
    /// What the log holds.
    pub stored: Option<Vec<u8>>,
    /// What is wrong.
    pub problem: Problem,
}

/// What to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyScope {
    /// Only this stream.
    pub stream: Option<String>,
    /// Only events from this position on (each stream's chain is taken up from the stored
    /// hash of its last event before it).
    pub from: Option<Position>,
}

/// Progress of a verification, for a progress display.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    /// Events checked so far.
    pub events: u64,
    /// Streams begun so far.
    pub streams: u64,
}

/// One stream being walked.
#[derive(Debug)]
struct Walk {
    stream: String,
    next_version: u64,
    last_hash: Option<Vec<u8>>,
    last_position: Option<Position>,
    broken: bool,
}

/// A row of the chain query.
#[derive(Debug, sqlx::FromRow)]
struct ChainRow {
    stream_id: String,
    stream_version: i64,
    tx_id: i64,
    position: i64,
    event_type: String,
    payload: String,
    metadata: String,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
    /// With a lower bound: the stored hash of the version before the stream's first event in
    /// range (`None` otherwise, and when that version is not in the log).
    before_hash: Option<Vec<u8>>,
}

/// Checks rows of the chain query in stream order, one stream at a time.
#[derive(Debug, Default)]
struct Walker {
    current: Option<Walk>,
    partial: bool,
}

impl Walker {
    /// `partial`: the rows start after a position, so a stream may start past version 0.
    fn new(partial: bool) -> Self {
        Walker {
            current: None,
            partial,
        }
    }

    /// Whether the row starts another stream.
    fn check(&mut self, row: &ChainRow) -> (bool, Option<BrokenLink>) {
        let version = to_u64(row.stream_version);
        let position = Position::from_parts(to_u64(row.tx_id), to_u64(row.position));
        let new_stream = self
            .current
            .as_ref()
            .is_none_or(|walk| walk.stream != row.stream_id);
        if new_stream {
            let mut walk = Walk {
                stream: row.stream_id.clone(),
                next_version: 0,
                last_hash: None,
                last_position: None,
                broken: false,
            };
            if self.partial && version > 0 {
                // Taken up from the stored hash of the version before; when that version is
                // not in the log, the link to it is reported missing.
                match &row.before_hash {
                    Some(before) => {
                        walk.next_version = version;
                        walk.last_hash = Some(before.clone());
                    }
                    None => walk.next_version = version - 1,
                }
            }
            self.current = Some(walk);
        }
        let Some(walk) = self.current.as_mut() else {
            return (new_stream, None);
        };
        if walk.broken {
            return (new_stream, None);
        }
        let broken = |problem, version, expected: Option<Vec<u8>>, stored: Option<Vec<u8>>| {
            Some(BrokenLink {
                stream: row.stream_id.clone(),
                version,
                position: Some(position),
                expected,
                stored,
                problem,
            })
        };
        let found = if version != walk.next_version {
            broken(
                Problem::MissingVersion,
                walk.next_version,
                walk.last_hash.clone(),
                row.prev_hash.clone(),
            )
        } else if row.prev_hash != walk.last_hash {
            broken(
                Problem::PreviousHash,
                version,
                walk.last_hash.clone(),
                row.prev_hash.clone(),
            )
        } else if walk.last_position.is_some_and(|last| position <= last) {
            broken(Problem::OutOfOrder, version, None, None)
        } else {
            let computed = event_hash(
                walk.last_hash.as_deref(),
                &row.event_type,
                &row.payload,
                &row.metadata,
            );
            if computed[..] == row.hash[..] {
                None
            } else {
                broken(
                    Problem::Altered,
                    version,
                    Some(computed.to_vec()),
                    Some(row.hash.clone()),
                )
            }
        };
        if found.is_some() {
            walk.broken = true;
        } else {
            walk.next_version = version + 1;
            walk.last_hash = Some(row.hash.clone());
            walk.last_position = Some(position);
        }
        (new_stream, found)
    }
}

/// The chain query: every event in stream order, streamed out of the unique index.
const CHAIN_ALL: &str = "select stream_id, stream_version, tx_id, position, event_type, \
     payload::text as payload, metadata::text as metadata, prev_hash, hash, \
     null::bytea as before_hash \
     from events where ($1::text is null or stream_id = $1) \
     order by stream_id, stream_version";

/// The chain query after a position: each stream's first event in range carries the stored
/// hash of the version before it.
const CHAIN_AFTER: &str = "select e.stream_id, e.stream_version, e.tx_id, e.position, \
     e.event_type, e.payload::text as payload, e.metadata::text as metadata, e.prev_hash, \
     e.hash, \
     case when e.stream_version > 0 and lag(e.stream_id) over w is distinct from e.stream_id \
          then (select p.hash from events p \
                 where p.stream_id = e.stream_id and p.stream_version = e.stream_version - 1) \
     end as before_hash \
     from events e \
     where ($1::text is null or e.stream_id = $1) and (e.tx_id, e.position) >= ($2, $3) \
     window w as (order by e.stream_id, e.stream_version) \
     order by e.stream_id, e.stream_version";

/// The outcome of a verification.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Events checked.
    pub events: u64,
    /// Streams checked.
    pub streams: u64,
    /// The first broken link of each broken stream, by the chains and then by the anchors.
    pub broken: Vec<BrokenLink>,
    /// Anchors checked, and what is wrong with any of them.
    pub anchors: AnchorCheck,
}

impl Verification {
    /// True when nothing is broken.
    pub fn holds(&self) -> bool {
        self.broken.is_empty() && self.anchors.problems.is_empty()
    }
}

/// Recomputes the hash chains of `scope` (every stream's by default) and checks the anchors
/// against `trusted` public keys (see [`check_anchors`]). `progress` is called every few
/// thousand events and `on_broken` for each broken link as it is found.
///
/// Memory stays flat: rows are streamed in stream order and only the stream being walked is
/// kept. The broken links are also collected in the outcome.
///
/// # Errors
/// When the database cannot be read.
pub async fn verify(
    pool: &PgPool,
    scope: &VerifyScope,
    trusted: &[[u8; 32]],
    mut progress: impl FnMut(Progress),
    mut on_broken: impl FnMut(&BrokenLink),
) -> Result<Verification, Error> {
    let mut outcome = Verification::default();
    {
        let mut conn = pool.acquire().await.map_err(backend)?;
        // The whole log is read in the unique index's order: a sort would hold it all before
        // the first row comes out. A range from a position on is read from the log's order
        // and sorted, as it is usually a small part of the log.
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(backend)?;
        if scope.from.is_none() {
            sqlx::query("set local enable_sort = off")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let rows = match scope.from {
            None => sqlx::query_as::<_, ChainRow>(CHAIN_ALL)
                .bind(scope.stream.as_deref())
                .fetch(&mut *tx),
            Some(from) => {
                let (tx_id, seq) = position_params(from);
                sqlx::query_as::<_, ChainRow>(CHAIN_AFTER)
                    .bind(scope.stream.as_deref())
                    .bind(tx_id)
                    .bind(seq)
                    .fetch(&mut *tx)
            }
        };
        walk_rows(
            rows,
            scope.from.is_some(),
            &mut outcome,
            &mut progress,
            &mut on_broken,
        )
        .await?;
        tx.rollback().await.map_err(backend)?;
    }
    outcome.anchors = check_anchors(pool, trusted).await?;
    let reported: std::collections::HashSet<String> =
        outcome.broken.iter().map(|b| b.stream.clone()).collect();
    let mut against = anchored_heads(pool, scope.stream.as_deref());
    while let Some(link) = against.try_next().await? {
        if !reported.contains(&link.stream) {
            on_broken(&link);
            outcome.broken.push(link);
        }
    }
    progress(Progress {
        events: outcome.events,
        streams: outcome.streams,
    });
    Ok(outcome)
}

async fn walk_rows(
    mut rows: impl Stream<Item = Result<ChainRow, sqlx::Error>> + Unpin,
    partial: bool,
    outcome: &mut Verification,
    progress: &mut impl FnMut(Progress),
    on_broken: &mut impl FnMut(&BrokenLink),
) -> Result<(), Error> {
    let mut walker = Walker::new(partial);
    while let Some(row) = rows.next().await {
        let row = row.map_err(backend)?;
        let (new_stream, found) = walker.check(&row);
        outcome.events += 1;
        if new_stream {
            outcome.streams += 1;
        }
        if let Some(link) = found {
            on_broken(&link);
            outcome.broken.push(link);
        }
        if outcome.events.is_multiple_of(4096) {
            progress(Progress {
                events: outcome.events,
                streams: outcome.streams,
            });
        }
    }
    Ok(())
}

/// What a bounded check of one stream found ([`verify_stream`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamVerification {
    /// The stream.
    pub stream: String,
    /// The first version checked.
    pub from_version: u64,
    /// Events checked.
    pub events: u64,
    /// The version to continue from when the stream goes on past the limit (`None`: checked
    /// to its end).
    pub next_version: Option<u64>,
    /// The first broken link found, by the chain or by the latest anchor of the stream.
    pub broken: Option<BrokenLink>,
    /// The latest anchored version of the stream, if an anchor covers it.
    pub anchored_version: Option<u64>,
    /// Whether that anchor's key was compared with trusted keys (false when none was given:
    /// its signature was then checked against the key stored with it only).
    pub anchor_key_checked: bool,
}

/// Checks at most `limit` events of `stream` from version `from_version` on (the chain is
/// taken up from the stored hash of the version before it), and the stream's latest anchored
/// head: the anchor that names it must verify (its heads give its digest, its signature
/// holds, and its key is one of `trusted`, any key when `trusted` is empty), and the log must
/// still hold the version it names with that hash. Bounded work for the API, but for the one
/// anchor's heads: a caller continues from `next_version`.
///
/// # Errors
/// [`Error::StreamNotFound`] for a stream without events and without anchors; a database
/// error.
pub async fn verify_stream(
    pool: &PgPool,
    stream: &str,
    from_version: u64,
    limit: u64,
    trusted: &[[u8; 32]],
) -> Result<StreamVerification, Error> {
    let from = i64::try_from(from_version).unwrap_or(i64::MAX);
    let take = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    let rows: Vec<ChainRow> = sqlx::query_as(
        "select e.stream_id, e.stream_version, e.tx_id, e.position, e.event_type, \
                e.payload::text as payload, e.metadata::text as metadata, e.prev_hash, e.hash, \
                case when e.stream_version = $2 and $2 > 0 \
                     then (select p.hash from events p \
                            where p.stream_id = e.stream_id and p.stream_version = $2 - 1) \
                end as before_hash \
           from events e where e.stream_id = $1 and e.stream_version >= $2 \
          order by e.stream_version limit $3",
    )
    .bind(stream)
    .bind(from)
    .bind(take + 1)
    .fetch_all(pool)
    .await
    .map_err(backend)?;
    let more = rows.len() as u64 > limit.max(1);
    let mut walker = Walker::new(from_version > 0);
    let mut broken = None;
    let mut events = 0;
    let mut last_version = None;
    for row in rows
        .iter()
        .take(usize::try_from(limit.max(1)).unwrap_or(usize::MAX))
    {
        if from_version > 0 && events == 0 && row.before_hash.is_none() {
            // The version before the range is not in the log, or the range starts past it.
            broken = Some(BrokenLink {
                stream: stream.to_owned(),
                version: from_version.saturating_sub(1),
                position: None,
                expected: None,
                stored: None,
                problem: Problem::MissingVersion,
            });
            break;
        }
        let (_, found) = walker.check(row);
        events += 1;
        last_version = Some(to_u64(row.stream_version));
        if found.is_some() {
            broken = found;
            break;
        }
    }
    let anchored = anchored_head(pool, stream).await?;
    if rows.is_empty() && anchored.is_none() && from_version == 0 {
        return Err(Error::StreamNotFound {
            stream: stream.to_owned(),
        });
    }
    let anchored_version = anchored.as_ref().map(|head| to_u64(head.version));
    if broken.is_none()
        && let Some(head) = anchored
    {
        let problem = match anchor_problem(pool, head.anchor, trusted).await? {
            Some(AnchorProblem::UntrustedKey { .. }) => Some(Problem::AnchorKeyUnknown),
            Some(_) => Some(Problem::AnchorSignature),
            None if head.stored.is_none() => Some(Problem::Removed),
            None if head.stored.as_ref() != Some(&head.hash) => Some(Problem::AnchorDiffers),
            None => None,
        };
        if let Some(problem) = problem {
            let version = to_u64(head.version);
            let position = stored_position(pool, stream, version).await?;
            broken = Some(BrokenLink {
                stream: stream.to_owned(),
                version,
                position,
                expected: Some(head.hash),
                stored: head.stored,
                problem,
            });
        }
    }
    Ok(StreamVerification {
        stream: stream.to_owned(),
        from_version,
        events,
        next_version: if more && broken.is_none() {
            last_version.map(|v| v + 1)
        } else {
            None
        },
        broken,
        anchored_version,
        anchor_key_checked: !trusted.is_empty(),
    })
}

/// The latest anchored head of one stream.
#[derive(Debug, sqlx::FromRow)]
struct AnchoredHead {
    /// The anchor that names it.
    anchor: i64,
    version: i64,
    /// The anchored hash.
    hash: Vec<u8>,
    /// The log's hash of that version (`None` when the log no longer holds it).
    stored: Option<Vec<u8>>,
}

/// The latest anchored head of `stream`.
async fn anchored_head(pool: &PgPool, stream: &str) -> Result<Option<AnchoredHead>, Error> {
    sqlx::query_as(
        "select h.anchor_seq as anchor, h.stream_version as version, h.hash, e.hash as stored \
           from (select anchor_seq, stream_id, stream_version, hash from log_anchor_heads \
                  where stream_id = $1 order by stream_version desc limit 1) h \
           left join events e \
             on e.stream_id = h.stream_id and e.stream_version = h.stream_version",
    )
    .bind(stream)
    .fetch_optional(pool)
    .await
    .map_err(backend)
}

async fn stored_position(
    pool: &PgPool,
    stream: &str,
    version: u64,
) -> Result<Option<Position>, Error> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "select tx_id, position from events where stream_id = $1 and stream_version = $2",
    )
    .bind(stream)
    .bind(i64::try_from(version).unwrap_or(i64::MAX))
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    Ok(row.map(|(tx, seq)| Position::from_parts(to_u64(tx), to_u64(seq))))
}

/// The streams whose latest anchored head the log no longer holds as anchored, streamed.
fn anchored_heads<'a>(
    pool: &'a PgPool,
    stream: Option<&'a str>,
) -> impl Stream<Item = Result<BrokenLink, Error>> + Unpin + 'a {
    sqlx::query_as::<
        _,
        (
            String,
            i64,
            Vec<u8>,
            Option<Vec<u8>>,
            Option<i64>,
            Option<i64>,
        ),
    >(
        "select h.stream_id, h.stream_version, h.hash, e.hash, e.tx_id, e.position \
           from (select distinct on (stream_id) stream_id, stream_version, hash \
                   from log_anchor_heads where ($1::text is null or stream_id = $1) \
                  order by stream_id, stream_version desc) h \
           left join events e \
             on e.stream_id = h.stream_id and e.stream_version = h.stream_version \
          where e.hash is distinct from h.hash",
    )
    .bind(stream)
    .fetch(pool)
    .map(|row| {
        let (stream, version, anchored, stored, tx, seq) = row.map_err(backend)?;
        Ok(BrokenLink {
            stream,
            version: to_u64(version),
            position: tx
                .zip(seq)
                .map(|(tx, seq)| Position::from_parts(to_u64(tx), to_u64(seq))),
            expected: Some(anchored),
            problem: if stored.is_some() {
                Problem::AnchorDiffers
            } else {
                Problem::Removed
            },
            stored,
        })
    })
}

/// What is wrong with one anchor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorProblem {
    /// Its signature does not verify with its own public key: the anchor was changed.
    BadSignature {
        /// The anchor's sequence number.
        seq: i64,
    },
    /// It is signed by a key that is not trusted.
    UntrustedKey {
        /// The anchor's sequence number.
        seq: i64,
        /// The key that signed it.
        public_key: Vec<u8>,
    },
    /// It does not link to the anchor before it (an anchor was removed, or replaced).
    Unlinked {
        /// The anchor's sequence number.
        seq: i64,
    },
}

impl std::fmt::Display for AnchorProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AnchorProblem::BadSignature { seq } => {
                write!(f, "anchor {seq}: its signature does not match its content")
            }
            AnchorProblem::UntrustedKey { seq, public_key } => write!(
                f,
                "anchor {seq}: signed by key {}, which is not trusted",
                hex::encode(public_key)
            ),
            AnchorProblem::Unlinked { seq } => write!(
                f,
                "anchor {seq}: does not follow the anchor before it (one was removed or replaced)"
            ),
        }
    }
}

/// The anchors checked.
#[derive(Debug, Clone, Default)]
pub struct AnchorCheck {
    /// How many anchors there are.
    pub anchors: u64,
    /// The position of the newest anchor, if any.
    pub newest: Option<Position>,
    /// What is wrong with any of them.
    pub problems: Vec<AnchorProblem>,
    /// False when no trusted key was given: signatures were checked against the anchors' own
    /// keys only, which shows a changed anchor but not a forged one.
    pub keys_trusted: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct AnchorRow {
    seq: i64,
    tx_id: i64,
    position: i64,
    previous_signature: Option<Vec<u8>>,
    head_count: i64,
    heads_digest: Vec<u8>,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

/// Checks every anchor: its heads against its digest, its signature against its key, its key
/// against `trusted` (any key when `trusted` is empty), and its link to the anchor before.
/// Holds one anchor at a time.
///
/// # Errors
/// When the database cannot be read.
pub async fn check_anchors(pool: &PgPool, trusted: &[[u8; 32]]) -> Result<AnchorCheck, Error> {
    let mut check = AnchorCheck {
        keys_trusted: !trusted.is_empty(),
        ..AnchorCheck::default()
    };
    let mut after = 0_i64;
    let mut previous: Option<Vec<u8>> = None;
    loop {
        let anchor: Option<AnchorRow> = sqlx::query_as(
            "select seq, tx_id, position, previous_signature, head_count, heads_digest, \
                    public_key, signature \
               from log_anchors where seq > $1 order by seq limit 1",
        )
        .bind(after)
        .fetch_optional(pool)
        .await
        .map_err(backend)?;
        let Some(anchor) = anchor else { break };
        after = anchor.seq;
        check.anchors += 1;
        check.newest = Some(Position::from_parts(
            to_u64(anchor.tx_id),
            to_u64(anchor.position),
        ));
        if let Some(problem) = signature_problem(pool, &anchor, trusted).await? {
            check.problems.push(problem);
        }
        if anchor.previous_signature != previous {
            check
                .problems
                .push(AnchorProblem::Unlinked { seq: anchor.seq });
        }
        previous = Some(anchor.signature);
    }
    Ok(check)
}

/// Checks anchor `seq` alone: its heads against its digest, its signature against its key,
/// and its key against `trusted` (any key when `trusted` is empty). `None`: it verifies.
///
/// # Errors
/// When the database cannot be read.
pub async fn anchor_problem(
    pool: &PgPool,
    seq: i64,
    trusted: &[[u8; 32]],
) -> Result<Option<AnchorProblem>, Error> {
    let anchor: Option<AnchorRow> = sqlx::query_as(
        "select seq, tx_id, position, previous_signature, head_count, heads_digest, \
                public_key, signature \
           from log_anchors where seq = $1",
    )
    .bind(seq)
    .fetch_optional(pool)
    .await
    .map_err(backend)?;
    match anchor {
        Some(anchor) => signature_problem(pool, &anchor, trusted).await,
        // Its heads are there and it is not: it was removed.
        None => Ok(Some(AnchorProblem::BadSignature { seq })),
    }
}

async fn signature_problem(
    pool: &PgPool,
    anchor: &AnchorRow,
    trusted: &[[u8; 32]],
) -> Result<Option<AnchorProblem>, Error> {
    let (count, digest) = heads_digest_of(pool, anchor.seq).await?;
    let message = anchor_message(
        anchor.previous_signature.as_deref(),
        Position::from_parts(to_u64(anchor.tx_id), to_u64(anchor.position)),
        count,
        &digest,
    );
    let content_holds = i64::try_from(count).ok() == Some(anchor.head_count)
        && digest[..] == anchor.heads_digest[..];
    Ok(
        if !(content_holds && signature_holds(&anchor.public_key, &message, &anchor.signature)) {
            Some(AnchorProblem::BadSignature { seq: anchor.seq })
        } else if !trusted.is_empty() && !trusted.iter().any(|k| k[..] == anchor.public_key[..]) {
            Some(AnchorProblem::UntrustedKey {
                seq: anchor.seq,
                public_key: anchor.public_key.clone(),
            })
        } else {
            None
        },
    )
}

/// Whether `signature` is `public_key`'s ed25519 signature of `message`.
pub(super) fn signature_holds(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(message, signature)
        .is_ok()
}

/// The number of heads of anchor `seq` and their digest, read in stream-id byte order.
async fn heads_digest_of(pool: &PgPool, seq: i64) -> Result<(u64, [u8; 32]), Error> {
    let mut rows = sqlx::query_as::<_, (String, i64, Vec<u8>)>(
        "select stream_id, stream_version, hash from log_anchor_heads \
          where anchor_seq = $1 order by stream_id collate \"C\"",
    )
    .bind(seq)
    .fetch(pool);
    let mut hasher = Sha256::new();
    let mut count = 0;
    while let Some(row) = rows.next().await {
        let (stream, version, hash) = row.map_err(backend)?;
        digest_head(&mut hasher, &stream, to_u64(version), &hash);
        count += 1;
    }
    Ok((count, hasher.finalize().into()))
}

pub(super) fn digest_head(hasher: &mut Sha256, stream: &str, version: u64, hash: &[u8]) {
    hasher.update(
        u32::try_from(stream.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    hasher.update(stream.as_bytes());
    hasher.update(version.to_be_bytes());
    hasher.update(hash);
}

pub(super) fn anchor_message(
    previous: Option<&[u8]>,
    at: Position,
    count: u64,
    digest: &[u8],
) -> Vec<u8> {
    let previous = previous.unwrap_or_default();
    let (tx, seq) = at.parts();
    let mut message = Vec::with_capacity(120);
    message.extend_from_slice(b"ledgerdesk-log-anchor-v1\0");
    message.extend_from_slice(
        &u32::try_from(previous.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    message.extend_from_slice(previous);
    message.extend_from_slice(&tx.to_be_bytes());
    message.extend_from_slice(&seq.to_be_bytes());
    message.extend_from_slice(&count.to_be_bytes());
    message.extend_from_slice(digest);
    message
}

/// The key that signs anchors: an ed25519 key pair from a 32-byte seed. Its `Debug` shows the
/// public key only.
pub struct AnchorKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for AnchorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnchorKey")
            .field("public_key", &hex::encode(self.public_key()))
            .finish_non_exhaustive()
    }
}

impl AnchorKey {
    /// The key pair of `seed`.
    ///
    /// # Errors
    /// [`Error::Invalid`] when the seed is not a valid ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, Error> {
        Ed25519KeyPair::from_seed_unchecked(seed)
            .map(|pair| AnchorKey { pair })
            .map_err(|_| Error::Invalid("not an ed25519 seed".into()))
    }

    /// The public key, which verifies the anchors.
    pub fn public_key(&self) -> [u8; 32] {
        let mut key = [0; 32];
        let bytes = self.pair.public_key().as_ref();
        if bytes.len() == 32 {
            key.copy_from_slice(bytes);
        }
        key
    }
}

/// The class of the advisory lock that lets one writer anchor at a time (`LDAN`).
const ANCHOR_LOCK_CLASS: i32 = i32::from_be_bytes(*b"LDAN");

/// An anchor just written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Its sequence number.
    pub seq: i64,
    /// The log position it covers: every event at or before it.
    pub position: Position,
    /// How many stream heads it records (those changed since the previous anchor).
    pub heads: u64,
}

/// Writes an anchor of the log up to its head, signed with `key`, unless nothing was
/// appended since the last anchor or another process is writing one now (`None`).
///
/// # Errors
/// When the database cannot be read or written.
pub async fn write_anchor(log: &PostgresLog, key: &AnchorKey) -> Result<Option<Anchor>, Error> {
    let head = log.head().await?;
    if head == Position::START {
        return Ok(None);
    }
    let pool = log.pool();
    let mut tx = pool.begin().await.map_err(backend)?;
    let locked: bool = sqlx::query_scalar("select pg_try_advisory_xact_lock($1, 0)")
        .bind(ANCHOR_LOCK_CLASS)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
    if !locked {
        return Ok(None);
    }
    let previous: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(
        "select coalesce(covers_tx_id, tx_id), coalesce(covers_position, position), signature \
           from log_anchors order by seq desc limit 1",
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(backend)?;
    // An imported anchor covers this log up to the place of its last event here, not up to
    // the position it signs (the other log's).
    let from = previous.as_ref().map_or(Position::START, |(tx, seq, _)| {
        Position::from_parts(to_u64(*tx), to_u64(*seq))
    });
    if from >= head {
        return Ok(None);
    }
    let (from_tx, from_seq) = position_params(from);
    let (head_tx, head_seq) = position_params(head);
    let mut heads: Vec<(String, i64, Vec<u8>)> = sqlx::query_as(
        "select distinct on (stream_id) stream_id, stream_version, hash from events \
          where (tx_id, position) > ($1, $2) and (tx_id, position) <= ($3, $4) \
          order by stream_id, stream_version desc",
    )
    .bind(from_tx)
    .bind(from_seq)
    .bind(head_tx)
    .bind(head_seq)
    .fetch_all(&mut *tx)
    .await
    .map_err(backend)?;
    heads.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut hasher = Sha256::new();
    for (stream, version, hash) in &heads {
        digest_head(&mut hasher, stream, to_u64(*version), hash);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    let count = heads.len() as u64;
    let previous_signature = previous.map(|(_, _, signature)| signature);
    let message = anchor_message(previous_signature.as_deref(), head, count, &digest);
    let signature = key.pair.sign(&message);
    let seq: i64 = sqlx::query_scalar(
        "insert into log_anchors (tx_id, position, previous_signature, head_count, \
                                  heads_digest, public_key, signature) \
         values ($1, $2, $3, $4, $5, $6, $7) returning seq",
    )
    .bind(head_tx)
    .bind(head_seq)
    .bind(previous_signature)
    .bind(i64::try_from(count).unwrap_or(i64::MAX))
    .bind(&digest[..])
    .bind(&key.public_key()[..])
    .bind(signature.as_ref())
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?;
    let (streams, rest): (Vec<String>, Vec<(i64, Vec<u8>)>) = heads
        .into_iter()
        .map(|(stream, version, hash)| (stream, (version, hash)))
        .unzip();
    let (versions, hashes): (Vec<i64>, Vec<Vec<u8>>) = rest.into_iter().unzip();
    sqlx::query(
        "insert into log_anchor_heads (anchor_seq, stream_id, stream_version, hash) \
         select $1, s, v, h from unnest($2::text[], $3::bigint[], $4::bytea[]) as u (s, v, h)",
    )
    .bind(seq)
    .bind(streams)
    .bind(versions)
    .bind(hashes)
    .execute(&mut *tx)
    .await
    .map_err(backend)?;
    tx.commit().await.map_err(backend)?;
    Ok(Some(Anchor {
        seq,
        position: head,
        heads: count,
    }))
}

/// Writes an anchor every `interval` until `stop` is cancelled. Failures are logged and tried
/// again at the next tick; the key is never logged.
pub async fn anchor_periodically(
    log: PostgresLog,
    key: AnchorKey,
    interval: Duration,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        match write_anchor(&log, &key).await {
            Ok(Some(anchor)) => tracing::debug!(
                seq = anchor.seq,
                position = %anchor.position,
                heads = anchor.heads,
                "log anchored"
            ),
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot anchor the log; trying again later"),
        }
    }
}

fn position_params(p: Position) -> (i64, i64) {
    let (tx, seq) = p.parts();
    (
        i64::try_from(tx).unwrap_or(i64::MAX),
        i64::try_from(seq).unwrap_or(i64::MAX),
    )
}
