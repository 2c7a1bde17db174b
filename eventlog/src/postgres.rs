//! The Postgres backend: the embedded default, one database for the log and the read models.
//!
//! # Gap-free order without a global write lock
//!
//! A plain identity column does not give readers a safe order: positions are taken when a row
//! is inserted but become visible when its transaction commits, so position 11 can be visible
//! while 10 is still to commit. A reader that moved its cursor past 11 would never see 10.
//!
//! The two known fixes are to serialize appends (one lock around "take position, commit"; every
//! append waits for the one before, and group commit is lost) or to let readers see only what
//! can no longer change. We take the second:
//!
//! - each event row records `tx_id`, the 64-bit id of the transaction that wrote it;
//! - the log's order is `(tx_id, position)`; [`Position`] is that pair, opaque to users;
//! - a reader only reads rows below a *horizon*: a transaction id under which every append has
//!   ended, so nothing can ever commit below it and the prefix a reader sees is final. The
//!   server's `pg_snapshot_xmin` (its oldest running transaction) is one such line, but any
//!   long transaction on the server, appending or not, holds it back. Appends therefore register
//!   themselves before they take a transaction id (migration 0019), and `postgres/horizon.rs`
//!   computes a line from the registered appends alone; a read takes the larger of the two.
//!   That module has the argument.
//!
//! Appends to different streams never wait for each other and keep Postgres' group commit. The
//! cost is latency, not throughput: an event becomes readable once every append that took an id
//! before its own has ended, so one long appending transaction holds readers back (not writers;
//! [`PostgresLog::held_back_by`] names it). Other transactions, in this database or another of
//! the server, hold nobody back. Rolled-back transactions simply end; they leave nothing behind
//! to wait for.
//!
//! Per-stream order agrees with the log order because `append_events` (see the migration), and
//! the single statement that appends one event to one stream, read every stream's version
//! before they write anything: a transaction can only append version n+1 after seeing version
//! n committed, so it takes its transaction id after that commit and sorts after it.
//!
//! # Group commit
//!
//! Concurrent appends of one process are queued and written in batches, one transaction per
//! batch, each request keeping its own outcome; `postgres/batch.rs` has the rules.
//! `append_batch` (migrations 0008, 0009) reads every stream of the batch before it writes, so
//! the argument above covers it as it covers a lone append.
//!
//! # Waking subscribers
//!
//! A subscription reads pages until it is caught up, then sleeps until it is woken: by an append
//! through this same [`PostgresLog`] (in-process, immediately), by a `NOTIFY` from another
//! process, or by a poll timer (so a lost notification only delays). Appends do not `NOTIFY`
//! inside their own transaction: Postgres serializes the commits of notifying transactions,
//! which would undo the point above. A background task sends one coalesced `NOTIFY` after
//! commits instead. When rows exist past the cursor but are not yet readable (held back by an
//! older open append), the subscription re-reads after a short, growing pause. A
//! subscription keeps one pooled connection for its reads while it lives, so each live process
//! holds one per follower of the whole log (the projections' shared reader, the API's hub, the
//! bot's delivery).
//!
//! # Layout
//!
//! This module holds [`PostgresLog`] (its options, the reads and the subscriptions) and wires
//! its parts together; the parts depend on each other in one direction only:
//!
//! - `postgres/batch.rs`: the queue and the batches (group commit), [`AppendStats`];
//! - `postgres/append.rs`: lone appends, the idempotency lookup and the stream version;
//! - `postgres/notify.rs`: the wake-ups of subscriptions (local, `NOTIFY`, the listener);
//! - `postgres/encoded.rs`: a request checked and laid out as the SQL arrays, and the
//!   conversions of stored numbers and database errors that all of them use.
//!
//! - `postgres/audit.rs`: verifying the hash chains, and the signed anchors of the whole log;
//! - `postgres/transfer.rs`: export of the log as JSON Lines, and import into an empty log.
//!
//! `batch` uses `append` (a batch the database refuses goes again request by request),
//! `append` uses `notify` (every commit is announced), and none of them uses this module.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::postgres::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

mod append;
pub mod audit;
mod batch;
mod encoded;
mod horizon;
pub mod keys;
mod notify;
pub mod transfer;

pub use batch::AppendStats;
pub use horizon::{HeldBackBy, REGISTRY_CLASS};

use append::Appender;
use batch::Batcher;
use encoded::{Encoded, backend, to_u64};
use horizon::Horizon;
use notify::Wakeups;

use crate::seal::{self, Personal, SubjectOf};
use crate::{
    AppendOutcome, AppendRequest, Direction, Error, EventLog, ExpectedVersion, Metadata, Page,
    Position, Receipt, RecordedEvent, limits,
};

/// The columns of an event row, in [`EventRow`]'s order.
macro_rules! event_columns {
    () => {
        "position, tx_id, stream_id, stream_version, event_id, event_type, schema_version, \
         payload, metadata, recorded_at, prev_hash, hash"
    };
}

/// Tuning of the Postgres log. The defaults suit production.
#[derive(Debug, Clone)]
pub struct PostgresLogOptions {
    /// Events read per query while a subscription catches up.
    pub batch_size: usize,
    /// How long a caught-up subscription waits for a wake-up before it looks anyway.
    pub poll_interval: Duration,
    /// How many batches of appends this process writes at once (group commit, see the module
    /// docs). Appends that arrive while that many are being written wait and go out together
    /// in the next batch. `0` writes every append alone.
    ///
    /// The default, 1, gives the largest batches: with two at once, a batch often started
    /// with the one request that had just arrived, paying a transaction and a commit of its
    /// own. Under the reply benchmark's load, 1 wrote about 5 % more replies per second than 2
    /// on the same machine; the append benchmark at 32 writers was the same with either.
    pub append_batches: usize,
    /// What is personal in the events appended, sealed under their subjects' keys (see
    /// [`crate::seal`]). Without it every field is stored plain; reading opens sealed fields
    /// either way.
    pub personal: Option<Arc<dyn Personal>>,
}

impl Default for PostgresLogOptions {
    fn default() -> Self {
        PostgresLogOptions {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            append_batches: 1,
            personal: None,
        }
    }
}

impl PostgresLogOptions {
    /// The same options, sealing what `personal` describes.
    #[must_use]
    pub fn sealing(mut self, personal: Arc<dyn Personal>) -> Self {
        self.personal = Some(personal);
        self
    }
}

/// The event log stored in Postgres. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PostgresLog {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: PgPool,
    options: PostgresLogOptions,
    /// Wakes subscriptions after local commits and other processes' notifications. Its
    /// background tasks stop on [`PostgresLog::stop_background`], or when the log is dropped
    /// and no batch is still being written.
    wakeups: Arc<Wakeups>,
    /// Lone appends (the idempotency lookup and the stream version too).
    lone: Appender,
    /// Appends waiting to be written together, and the batches being written.
    batcher: Arc<Batcher>,
    /// The largest read horizon learned from the registered appends.
    horizon: Horizon,
    /// When the registered appends were first seen (their age, see `held_back_by`).
    sightings: horizon::Sightings,
    /// The subjects of streams named by their first event, which never changes.
    openings: std::sync::Mutex<std::collections::HashMap<String, Option<String>>>,
}

/// The most stream subjects remembered; past it the memory starts over.
const OPENINGS_KEPT: usize = 100_000;

impl PostgresLog {
    /// A log over `pool`, whose database has the schema of the workspace's `migrations/` (the
    /// application applies them before it opens the log).
    pub fn new(pool: PgPool) -> Self {
        PostgresLog::with_options(pool, PostgresLogOptions::default())
    }

    /// A log over `pool` with non-default tuning.
    pub fn with_options(pool: PgPool, options: PostgresLogOptions) -> Self {
        let wakeups = Arc::new(Wakeups::new(pool.clone()));
        let lone = Appender::new(pool.clone(), Arc::clone(&wakeups));
        let batcher = Arc::new(Batcher::new(lone.clone(), options.append_batches));
        PostgresLog {
            inner: Arc::new(Inner {
                pool,
                options,
                wakeups,
                lone,
                batcher,
                horizon: Horizon::new(),
                sightings: horizon::Sightings::default(),
                openings: std::sync::Mutex::default(),
            }),
        }
    }

    /// The connection pool the log uses.
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Stops the log's background tasks (the notifier and the listener of other processes'
    /// appends). Call it before closing the pool at shutdown, or the listener reports that it
    /// lost its connection. Subscriptions keep working by polling.
    pub fn stop_background(&self) {
        self.inner.wakeups.stop();
    }

    /// The position of the last committed event, whether readers see it yet or not (an event
    /// stays unreadable while an older transaction is still to commit, see
    /// [`EventLog::head`]); [`Position::START`] when the log is empty. No position this log
    /// handed out is beyond it, so a cursor beyond it comes from elsewhere.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn last_committed(&self) -> Result<Position, Error> {
        let last: Option<(i64, i64)> = sqlx::query_as(
            "select tx_id, position from events order by tx_id desc, position desc limit 1",
        )
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        Ok(last.map_or(Position::START, |(tx, seq)| {
            Position::from_parts(to_u64(tx), to_u64(seq))
        }))
    }

    /// How this log's appends were written so far (batches and their sizes).
    pub fn append_stats(&self) -> AppendStats {
        self.inner.batcher.stats()
    }

    /// Appends several independent requests, each all or nothing with its own outcome (in the
    /// same order), written together where their streams allow: the same as calling
    /// [`EventLog::append`] for each at once, in one transaction when nothing is refused.
    /// A request sees what the requests before it appended.
    pub async fn append_many(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Vec<Result<AppendOutcome, Error>> {
        let mut outcomes: Vec<Option<Result<AppendOutcome, Error>>> = Vec::new();
        let mut queued = Vec::new();
        let mut at = Vec::new();
        for mut request in requests {
            if let Err(err) = self.seal(&mut request).await {
                outcomes.push(Some(Err(err)));
                continue;
            }
            match Encoded::new(&request) {
                Err(err) => outcomes.push(Some(Err(err))),
                Ok(encoded) if encoded.key.is_none() && encoded.streams.is_empty() => {
                    outcomes.push(Some(Ok(AppendOutcome::Appended(Receipt::default()))));
                }
                Ok(encoded) => {
                    at.push(outcomes.len());
                    outcomes.push(None);
                    queued.push((request, encoded));
                }
            }
        }
        for (index, outcome) in at
            .into_iter()
            .zip(self.inner.batcher.append_queued(queued).await)
        {
            outcomes[index] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(not_answered))
            .collect()
    }

    /// One page of the log after `after`, and whether more rows exist past the cursor that
    /// are not readable yet.
    async fn read_page(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<(Vec<RecordedEvent>, bool), Error> {
        if limit == 0 {
            return Ok((Vec::new(), false));
        }
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        let (mut events, held_back) =
            read_page_on(&mut conn, &self.inner.horizon, after, limit).await?;
        open_on(&mut *conn, &mut events).await?;
        Ok((events, held_back))
    }

    /// Up to `limit` events after `after` that pass `filter`, in log order, looking at no
    /// more than `scan` events (at most [`limits::PAGE_SIZE`]): a filter that matches little
    /// costs a bounded read per call, and the caller continues from [`FilteredPage::next`].
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn read_filtered(
        &self,
        after: Position,
        limit: usize,
        filter: &EventFilter,
        scan: usize,
    ) -> Result<FilteredPage, Error> {
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        // One line for both statements: below it nothing can commit any more, so the
        // second statement scans exactly the rows the first one did.
        let horizon = self.fresh_horizon(&mut conn).await?;
        let line: i64 = sqlx::query_scalar(
            "select greatest(pg_snapshot_xmin(pg_current_snapshot())::text::bigint, $1)",
        )
        .bind(horizon)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
        let (tx, seq) = position_params(after);
        let scan = clamp_limit(scan);
        let rows = sqlx::query_as::<_, EventRow>(concat!(
            "with scanned as (select ",
            event_columns!(),
            " from events where (tx_id, position) > ($1, $2) and tx_id < $3 \
              order by tx_id, position limit $4) \
             select * from scanned \
              where ($5::text[] is null or event_type = any($5)) \
                and ($6::text is null or starts_with(stream_id, $6)) \
                and ($7::timestamptz is null or recorded_at >= $7) \
                and ($8::timestamptz is null or recorded_at < $8) \
              order by tx_id, position limit $9"
        ))
        .bind(tx)
        .bind(seq)
        .bind(line)
        .bind(scan)
        .bind(filter.types.as_deref())
        .bind(filter.stream_prefix.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(clamp_limit(limit.saturating_add(1)))
        .fetch_all(&mut *conn)
        .await
        .map_err(backend)?;
        let mut events = rows
            .into_iter()
            .map(EventRow::into_event)
            .collect::<Result<Vec<_>, _>>()?;
        open_on(&mut *conn, &mut events).await?;
        if events.len() > limit {
            events.truncate(limit);
            let next = events.last().map_or(after, |e| e.position);
            return Ok(FilteredPage {
                events,
                next,
                more: true,
            });
        }
        let last: Option<(i64, i64, i64)> = sqlx::query_as(
            "select tx_id, position, count(*) over () from (select tx_id, position from events \
              where (tx_id, position) > ($1, $2) and tx_id < $3 \
              order by tx_id, position limit $4) as s \
              order by tx_id desc, position desc limit 1",
        )
        .bind(tx)
        .bind(seq)
        .bind(line)
        .bind(scan)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        Ok(match last {
            None => FilteredPage {
                events,
                next: after,
                more: false,
            },
            Some((tx, seq, scanned)) => FilteredPage {
                events,
                next: Position::from_parts(to_u64(tx), to_u64(seq)),
                more: scanned >= scan,
            },
        })
    }

    /// Seals the personal fields of `request`'s events (see [`crate::seal`]) under their
    /// subjects' keys, making the keys that do not exist yet.
    async fn seal(&self, request: &mut AppendRequest) -> Result<(), Error> {
        let Some(personal) = self.inner.options.personal.clone() else {
            return Ok(());
        };
        let mut todo = Vec::new();
        for (s, append) in request.streams.iter().enumerate() {
            for (e, event) in append.events.iter().enumerate() {
                let fields = personal.fields(event);
                if fields.is_empty() {
                    continue;
                }
                let subject = match personal.subject(&append.stream, event) {
                    SubjectOf::Nobody => continue,
                    SubjectOf::Named(subject) => Some(subject),
                    SubjectOf::Opening { name } => {
                        let opens = append.expected == ExpectedVersion::NoStream;
                        match append.events.first().filter(|_| opens) {
                            Some(first) => name(&first.payload),
                            None => self.opening_subject(&append.stream, name).await?,
                        }
                    }
                };
                let Some(subject) = subject else {
                    return Err(Error::Invalid(format!(
                        "an event of stream {} holds personal data of nobody known",
                        append.stream
                    )));
                };
                todo.push((s, e, subject, fields));
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let mut subjects: Vec<String> = todo
            .iter()
            .map(|(_, _, subject, _)| subject.clone())
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        let keys = keys::ensure(&self.inner.pool, &subjects).await?;
        for (s, e, subject, fields) in todo {
            let event = &mut request.streams[s].events[e];
            let key = keys.get(&subject).ok_or_else(|| {
                Error::Backend(format!("no key could be made for {subject}").into())
            })?;
            let (event_type, event_id) = (event.event_type.clone(), event.event_id);
            let Some(payload) = event.payload.as_object_mut() else {
                continue;
            };
            for field in fields {
                let Some(value) = payload.get_mut(field.key) else {
                    continue;
                };
                if seal::sealed_subject(value).is_some() {
                    continue;
                }
                *value = seal::seal(
                    key,
                    &event_type,
                    event_id,
                    field.key,
                    &subject,
                    value,
                    field.forgotten,
                )
                .map_err(|err| Error::Backend(Box::new(err)))?;
            }
        }
        Ok(())
    }

    /// The subject named by the first event of `stream`.
    async fn opening_subject(
        &self,
        stream: &str,
        name: fn(&serde_json::Value) -> Option<String>,
    ) -> Result<Option<String>, Error> {
        if let Some(known) = self.openings().get(stream) {
            return Ok(known.clone());
        }
        let first: Option<serde_json::Value> = sqlx::query_scalar(
            "select payload from events where stream_id = $1 and stream_version = 0",
        )
        .bind(stream)
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        let Some(first) = first else {
            return Ok(None);
        };
        let subject = name(&first);
        let mut openings = self.openings();
        if openings.len() >= OPENINGS_KEPT {
            openings.clear();
        }
        openings.insert(stream.to_owned(), subject.clone());
        Ok(subject)
    }

    fn openings(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Option<String>>> {
        self.inner
            .openings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens the sealed fields of `events` with the keys that exist now (see [`crate::seal`]).
    ///
    /// # Errors
    /// When the keys cannot be read, or a sealed field does not open under its subject's key.
    pub async fn open(&self, events: &mut [RecordedEvent]) -> Result<(), Error> {
        open_on(&self.inner.pool, events).await
    }

    /// The oldest transaction holding this log's readers back, if any: an append still running
    /// (events committed after it took its id stay unreadable until it ends). Transactions that
    /// do not append, in this database or another, never hold readers back.
    ///
    /// # Errors
    /// When the database cannot be read.
    pub async fn held_back_by(&self) -> Result<Option<HeldBackBy>, Error> {
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        horizon::oldest_append(&mut conn, &self.inner.sightings).await
    }

    /// The current read horizon, computed now (see `postgres/horizon.rs`).
    async fn fresh_horizon(&self, conn: &mut sqlx::PgConnection) -> Result<i64, Error> {
        self.inner.horizon.refresh(conn).await
    }
}

/// Which events a filtered read keeps (every condition given must hold).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these event types.
    pub types: Option<Vec<String>>,
    /// Only streams whose id starts with this.
    pub stream_prefix: Option<String>,
    /// Only events recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only events recorded before this time.
    pub to: Option<DateTime<Utc>>,
}

/// A page of a filtered read.
#[derive(Debug, Clone)]
pub struct FilteredPage {
    /// The events that passed the filter.
    pub events: Vec<RecordedEvent>,
    /// Where the next read continues: the last event returned when the page is full, else
    /// the last event looked at (`after` when none was).
    pub next: Position,
    /// Whether events past `next` may pass the filter (the page filled up, or the scan
    /// stopped at its bound); false once the readable end of the log was reached.
    pub more: bool,
}

/// [`PostgresLog::read_page`] on `conn`. Reads below the larger of the server's oldest running
/// transaction and the horizon learned from the registered appends; when rows past the cursor
/// are held back, computes the horizon again and reads once more if that frees them.
async fn read_page_on(
    conn: &mut sqlx::PgConnection,
    horizon: &Horizon,
    after: Position,
    limit: usize,
) -> Result<(Vec<RecordedEvent>, bool), Error> {
    let events = read_below(conn, horizon.known(), after, limit).await?;
    if !events.is_empty() {
        return Ok((events, false));
    }
    let (tx, seq) = position_params(after);
    // Ordered and limited like the page query, so that even a generic plan walks the
    // primary key from the cursor instead of scanning the table (an `exists` without the
    // order may be planned as a sequential scan, which reads the whole log when caught up).
    let held_back: Option<i64> = sqlx::query_scalar(
        "select tx_id from events where (tx_id, position) > ($1, $2) \
         order by tx_id, position limit 1",
    )
    .bind(tx)
    .bind(seq)
    .fetch_optional(&mut *conn)
    .await
    .map_err(backend)?;
    let Some(first) = held_back else {
        return Ok((Vec::new(), false));
    };
    // A horizon computed now (or a few milliseconds ago, see `Horizon::refresh`) may free
    // them; rows it does not free wait for an append still running, and the caller pauses.
    if horizon.refresh(conn).await? > first {
        let events = read_below(conn, horizon.known(), after, limit).await?;
        if !events.is_empty() {
            return Ok((events, false));
        }
    }
    Ok((Vec::new(), true))
}

/// [`PostgresLog::open`], reading the keys on `db`.
async fn open_on(db: impl sqlx::PgExecutor<'_>, events: &mut [RecordedEvent]) -> Result<(), Error> {
    let mut subjects: Vec<String> = events
        .iter()
        .flat_map(|event| seal::subjects(&event.payload))
        .map(str::to_owned)
        .collect();
    if subjects.is_empty() {
        return Ok(());
    }
    subjects.sort_unstable();
    subjects.dedup();
    let keys = keys::existing(db, &subjects).await?;
    for event in events {
        seal::open(event, &keys).map_err(|err| Error::Backend(Box::new(err)))?;
    }
    Ok(())
}

/// Up to `limit` events after `after` whose transaction id lies below the server's oldest
/// running transaction or below `horizon`, whichever line is higher: both are final.
async fn read_below(
    conn: &mut sqlx::PgConnection,
    horizon: i64,
    after: Position,
    limit: usize,
) -> Result<Vec<RecordedEvent>, Error> {
    let (tx, seq) = position_params(after);
    let rows = sqlx::query_as::<_, EventRow>(concat!(
        "select ",
        event_columns!(),
        " from events \
          where (tx_id, position) > ($1, $2) \
            and tx_id < greatest(pg_snapshot_xmin(pg_current_snapshot())::text::bigint, $4) \
          order by tx_id, position \
          limit $3"
    ))
    .bind(tx)
    .bind(seq)
    .bind(clamp_limit(limit))
    .bind(horizon)
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    rows.into_iter().map(EventRow::into_event).collect()
}

impl EventLog for PostgresLog {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        self.append_many(vec![request])
            .await
            .pop()
            .unwrap_or_else(not_answered)
    }

    async fn applied(&self, key: &str) -> Result<Option<Receipt>, Error> {
        self.inner.lone.applied(key).await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from: u64,
        direction: Direction,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, Error> {
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        let query = match direction {
            Direction::Forwards => concat!(
                "select ",
                event_columns!(),
                " from events where stream_id = $1 and stream_version >= $2 \
                  order by stream_version limit $3"
            ),
            Direction::Backwards => concat!(
                "select ",
                event_columns!(),
                " from events where stream_id = $1 and stream_version <= $2 \
                  order by stream_version desc limit $3"
            ),
        };
        let rows = sqlx::query_as::<_, EventRow>(query)
            .bind(stream)
            .bind(from)
            .bind(clamp_limit(limit))
            .fetch_all(&self.inner.pool)
            .await
            .map_err(backend)?;
        if rows.is_empty() && self.stream_version(stream).await?.is_none() {
            return Err(Error::StreamNotFound {
                stream: stream.to_owned(),
            });
        }
        let mut events = rows
            .into_iter()
            .map(EventRow::into_event)
            .collect::<Result<Vec<_>, _>>()?;
        self.open(&mut events).await?;
        Ok(events)
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        self.inner.lone.stream_version(stream).await
    }

    async fn read_all(&self, after: Position, limit: usize) -> Result<Page, Error> {
        let (events, _) = self.read_page(after, limit).await?;
        let next = events.last().map_or(after, |e| e.position);
        Ok(Page { events, next })
    }

    async fn head(&self) -> Result<Position, Error> {
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        let horizon = self.fresh_horizon(&mut conn).await?;
        let head: Option<(i64, i64)> = sqlx::query_as(
            "select tx_id, position from events \
              where tx_id < greatest(pg_snapshot_xmin(pg_current_snapshot())::text::bigint, $1) \
              order by tx_id desc, position desc limit 1",
        )
        .bind(horizon)
        .fetch_optional(&mut *conn)
        .await
        .map_err(backend)?;
        Ok(head.map_or(Position::START, |(tx, seq)| {
            Position::from_parts(to_u64(tx), to_u64(seq))
        }))
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, Error> {
        let (tx, seq) = position_params(after);
        let mut conn = self.inner.pool.acquire().await.map_err(backend)?;
        let horizon = self.fresh_horizon(&mut conn).await?;
        let count: i64 = sqlx::query_scalar(
            "select count(*) from (select 1 from events \
              where (tx_id, position) > ($1, $2) \
                and tx_id < greatest(pg_snapshot_xmin(pg_current_snapshot())::text::bigint, $4) \
              order by tx_id, position limit $3) as counted",
        )
        .bind(tx)
        .bind(seq)
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .bind(horizon)
        .fetch_one(&mut *conn)
        .await
        .map_err(backend)?;
        Ok(to_u64(count))
    }

    fn subscribe_all(&self, after: Position) -> BoxStream<'static, Result<RecordedEvent, Error>> {
        self.inner.wakeups.start_listener();
        let state = Subscription {
            wake: self.inner.wakeups.subscribe(),
            log: self.clone(),
            conn: None,
            cursor: after,
            buffer: VecDeque::new(),
            held_back: None,
            failed: false,
        };
        futures::stream::unfold(state, Subscription::next).boxed()
    }
}

const HELD_BACK_LONGEST_PAUSE: Duration = Duration::from_millis(100);

/// The pauses before reading rows held back by an older open transaction again: 1 ms, doubling.
const HELD_BACK_PAUSES: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(1))
    .with_factor(2.0)
    .with_max_delay(HELD_BACK_LONGEST_PAUSE)
    .without_max_times();

struct Subscription {
    log: PostgresLog,
    /// The connection it reads on, kept between reads: a connection given back to the pool
    /// costs a round trip each time, and a live subscription reads hundreds of times a second.
    conn: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    wake: watch::Receiver<u64>,
    cursor: Position,
    buffer: VecDeque<RecordedEvent>,
    /// The pauses of the current wait for held-back rows (`None`: not waiting).
    held_back: Option<ExponentialBackoff>,
    failed: bool,
}

impl Subscription {
    /// The next page after the cursor, on the kept connection (taken from the pool when there
    /// is none; given back after an error).
    async fn read_page(&mut self, limit: usize) -> Result<(Vec<RecordedEvent>, bool), Error> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self
                .conn
                .insert(self.log.inner.pool.acquire().await.map_err(backend)?),
        };
        let page = match read_page_on(conn, &self.log.inner.horizon, self.cursor, limit).await {
            Ok((mut events, held_back)) => open_on(&mut **conn, &mut events)
                .await
                .map(|()| (events, held_back)),
            Err(err) => Err(err),
        };
        if page.is_err() {
            self.conn = None;
        }
        page
    }

    async fn next(mut self) -> Option<(Result<RecordedEvent, Error>, Self)> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(event) = self.buffer.pop_front() {
                self.cursor = event.position;
                return Some((Ok(event), self));
            }
            // Mark wake-ups seen before reading, so one that arrives during the read is kept.
            self.wake.borrow_and_update();
            let batch = self.log.inner.options.batch_size;
            match self.read_page(batch).await {
                Ok((events, _)) if !events.is_empty() => {
                    self.held_back = None;
                    self.buffer.extend(events);
                }
                Ok((_, true)) => {
                    let pauses = self
                        .held_back
                        .get_or_insert_with(|| HELD_BACK_PAUSES.build());
                    tokio::time::sleep(pauses.next().unwrap_or(HELD_BACK_LONGEST_PAUSE)).await;
                }
                Ok((_, false)) => {
                    self.held_back = None;
                    let poll = self.log.inner.options.poll_interval;
                    // An error here means the log is gone; the timer still ends the wait.
                    let _ = tokio::time::timeout(poll, self.wake.changed()).await;
                }
                Err(err) => {
                    self.failed = true;
                    return Some((Err(err), self));
                }
            }
        }
    }
}

fn not_answered() -> Result<AppendOutcome, Error> {
    Err(Error::Backend("the append was not answered".into()))
}

#[derive(sqlx::FromRow)]
struct EventRow {
    position: i64,
    tx_id: i64,
    stream_id: String,
    stream_version: i64,
    event_id: Uuid,
    event_type: String,
    schema_version: i32,
    payload: serde_json::Value,
    metadata: sqlx::types::Json<Metadata>,
    recorded_at: DateTime<Utc>,
    prev_hash: Option<Vec<u8>>,
    hash: Vec<u8>,
}

impl EventRow {
    fn into_event(self) -> Result<RecordedEvent, Error> {
        Ok(RecordedEvent {
            position: Position::from_parts(to_u64(self.tx_id), to_u64(self.position)),
            stream_id: self.stream_id,
            stream_version: to_u64(self.stream_version),
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: u32::try_from(self.schema_version).unwrap_or(0),
            payload: self.payload,
            metadata: self.metadata.0,
            recorded_at: self.recorded_at,
            prev_hash: self.prev_hash,
            hash: self.hash,
        })
    }
}

fn position_params(p: Position) -> (i64, i64) {
    let (tx, seq) = p.parts();
    (
        i64::try_from(tx).unwrap_or(i64::MAX),
        i64::try_from(seq).unwrap_or(i64::MAX),
    )
}

fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit.clamp(1, limits::PAGE_SIZE)).unwrap_or(1)
}
