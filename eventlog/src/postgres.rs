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
//! - a reader only reads rows with `tx_id < pg_snapshot_xmin(pg_current_snapshot())`. Every
//!   transaction below that line has ended, and any transaction still to take an id will take a
//!   larger one, so nothing can ever commit below it: the prefix a reader sees is final.
//!
//! Appends to different streams never wait for each other and keep Postgres' group commit. The
//! cost is latency, not throughput: an event becomes readable once every transaction that took
//! an id before its own has ended, so one long writing transaction holds readers back (not
//! writers). Rolled-back transactions simply end; they leave nothing behind to wait for.
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
//! older open transaction), the subscription re-reads after a short, growing pause. A
//! subscription keeps one pooled connection for its reads while it lives, so each live process
//! holds one per follower of the whole log (the projections' shared reader, the API's hub, the
//! bot's delivery).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

mod batch;

pub use batch::AppendStats;

use crate::{
    AppendOutcome, AppendRequest, CommittedEvent, Direction, Error, EventLog, ExpectedVersion,
    Metadata, Page, Position, Receipt, RecordedEvent, limits,
};

/// The columns of an event row, in [`EventRow`]'s order.
macro_rules! event_columns {
    () => {
        "position, tx_id, stream_id, stream_version, event_id, event_type, schema_version, \
         payload, metadata, recorded_at, prev_hash, hash"
    };
}

/// The channel on which appends are announced to other processes.
const CHANNEL: &str = "ledgerdesk_events";

/// The shortest time between two NOTIFYs: the most an announcement to other processes waits.
const NOTIFY_GAP: Duration = Duration::from_millis(5);

/// How many times an append whose every stream accepts any version is retried after losing a
/// race for the same version to a concurrent append.
const RACE_RETRIES: usize = 50;

/// The stream's last version and hash (`null`, `null` for an empty stream), read before the
/// statement writes anything. `$1` is the stream.
macro_rules! current_of_stream {
    () => {
        "cur as ( \
            select l.stream_version as v, l.hash as h \
              from (values (1)) as one (x) \
              left join lateral ( \
                  select e.stream_version, e.hash from events e \
                   where e.stream_id = $1 \
                   order by e.stream_version desc limit 1) as l on true), \
         ok as ( \
            select cur.v, cur.h from cur \
             where case $7::bigint \
                     when -2 then true \
                     when -1 then cur.v is null \
                     when -3 then cur.v is not null \
                     else coalesce(cur.v = $7::bigint, false) end)"
    };
}

/// Inserts the event from `ok` (the stream's checked current version and hash); `$2`..`$6`
/// are the event id, type, schema version, payload and metadata (JSON text). The `offset 0`
/// fences keep the planner from copying the casts into every place that uses them: each JSON
/// text is parsed once and its canonical text (what the hash covers) printed once.
macro_rules! insert_one_event {
    ($condition:literal) => {
        concat!(
            "ins as ( \
                insert into events (stream_id, stream_version, event_id, event_type, \
                                    schema_version, payload, metadata, prev_hash, hash) \
                select $1, coalesce(ok.v, -1) + 1, $2, $3, $4, j.payload, j.metadata, ok.h, \
                       event_hash(ok.h, $3, j.payload_text, j.metadata_text) \
                  from ok, ( \
                      select p.payload, p.metadata, \
                             p.payload::text as payload_text, p.metadata::text as metadata_text \
                        from (select $5::text::jsonb as payload, $6::text::jsonb as metadata \
                              offset 0) as p \
                      offset 0) as j ",
            $condition,
            " returning stream_version, tx_id, position) \
             select cur.v, ins.stream_version, ins.tx_id, ins.position \
               from cur left join ins on true"
        )
    };
}

/// One event to one stream, no idempotency key.
const APPEND_ONE: &str = concat!("with ", current_of_stream!(), ", ", insert_one_event!(""));

/// One event to one stream under idempotency key `$8`: the key is claimed only when the
/// expected version holds, the event inserted only when the claim went through.
const APPEND_ONE_KEYED: &str = concat!(
    "with ",
    current_of_stream!(),
    ", claim as ( \
        insert into idempotency_keys (key, event_ids) \
        select $8::text, array[$2::uuid] from ok \
        on conflict (key) do nothing \
        returning 1), ",
    insert_one_event!("where exists (select 1 from claim)")
);

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
}

impl Default for PostgresLogOptions {
    fn default() -> Self {
        PostgresLogOptions {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            append_batches: 1,
        }
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
    /// Bumped after every local commit and every notification: wakes subscriptions.
    wake: watch::Sender<u64>,
    /// Asks the notifier task to send a NOTIFY.
    notify_wanted: Arc<NotifyWanted>,
    /// The payload of this log's NOTIFYs, so its listener can tell its own from others': its
    /// own commits woke its subscriptions already.
    notify_token: String,
    notifier: OnceLock<()>,
    listener: OnceLock<()>,
    /// Appends waiting to be written together, and the batches being written.
    batcher: batch::Batcher,
    /// Cancelled by [`PostgresLog::stop_background`], or when the log is dropped: background
    /// tasks stop then.
    stop: DropGuard,
}

#[derive(Debug, Default)]
struct NotifyWanted {
    pending: AtomicBool,
    signal: Notify,
}

impl PostgresLog {
    /// A log over `pool`, whose database has the schema of the workspace's `migrations/` (the
    /// application applies them before it opens the log).
    pub fn new(pool: PgPool) -> Self {
        PostgresLog::with_options(pool, PostgresLogOptions::default())
    }

    /// A log over `pool` with non-default tuning.
    pub fn with_options(pool: PgPool, options: PostgresLogOptions) -> Self {
        PostgresLog {
            inner: Arc::new(Inner {
                pool,
                options,
                wake: watch::Sender::new(0),
                notify_wanted: Arc::default(),
                notify_token: Uuid::new_v4().simple().to_string(),
                notifier: OnceLock::new(),
                listener: OnceLock::new(),
                batcher: batch::Batcher::default(),
                stop: CancellationToken::new().drop_guard(),
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
        self.inner.stop.token().cancel();
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
        for request in requests {
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
        for (index, outcome) in at.into_iter().zip(self.append_queued(queued).await) {
            outcomes[index] = Some(outcome);
        }
        outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(not_answered))
            .collect()
    }

    /// Called after a commit: wakes local subscriptions now and other processes soon.
    fn announce(&self) {
        self.inner.wake.send_modify(|n| *n = n.wrapping_add(1));
        self.inner.notifier.get_or_init(|| {
            let wanted = Arc::clone(&self.inner.notify_wanted);
            let pool = self.inner.pool.clone();
            let token = self.inner.notify_token.clone();
            let stop = self.inner.stop.token().clone();
            tokio::spawn(notifier(pool, wanted, token, stop));
        });
        self.inner
            .notify_wanted
            .pending
            .store(true, Ordering::Release);
        self.inner.notify_wanted.signal.notify_one();
    }

    fn start_listener(&self) {
        self.inner.listener.get_or_init(|| {
            let pool = self.inner.pool.clone();
            let wake = self.inner.wake.clone();
            let token = self.inner.notify_token.clone();
            let stop = self.inner.stop.token().clone();
            tokio::spawn(listener(pool, wake, token, stop));
        });
    }

    async fn try_append(&self, encoded: &Encoded) -> Result<Vec<AppendRow>, sqlx::Error> {
        sqlx::query_as::<_, AppendRow>(
            "select event_id, stream_id, stream_version, tx_id, event_position, replayed \
             from append_events($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&encoded.key)
        .bind(&encoded.streams)
        .bind(&encoded.expected)
        .bind(&encoded.stream_of)
        .bind(&encoded.event_ids)
        .bind(&encoded.types)
        .bind(&encoded.schema_versions)
        .bind(&encoded.payloads)
        .bind(&encoded.metadata)
        .fetch_all(&self.inner.pool)
        .await
    }

    /// Appends the single event of a one-stream, one-event request with one statement.
    ///
    /// The statement reads the stream's last version and hash (through the
    /// `(stream_id, stream_version)` index) before it writes anything, as `append_events`
    /// does, so the gap-free argument above holds unchanged; the hash is computed by the
    /// inlined `event_hash`. An expected version that does not hold inserts nothing and
    /// answers the stream's actual version; a concurrent append that took the same version
    /// first fails the insert on `events_stream_version_key`. With an idempotency key, the
    /// key is claimed in the same statement, only when the version holds, and the event is
    /// inserted only when the claim went through.
    async fn try_append_one(&self, encoded: &Encoded) -> Result<Attempt, sqlx::Error> {
        let query = sqlx::query_as(if encoded.key.is_some() {
            APPEND_ONE_KEYED
        } else {
            APPEND_ONE
        })
        .bind(&encoded.streams[0])
        .bind(encoded.event_ids[0])
        .bind(&encoded.types[0])
        .bind(encoded.schema_versions[0])
        .bind(&encoded.payloads[0])
        .bind(&encoded.metadata[0])
        .bind(encoded.expected[0]);
        let query = match &encoded.key {
            Some(key) => query.bind(key),
            None => query,
        };
        let row: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
            query.fetch_one(&self.inner.pool).await?;
        let (actual, version, tx_id, position) = row;
        let (Some(version), Some(tx_id), Some(position)) = (version, tx_id, position) else {
            return Ok(Attempt::NotAppended { actual });
        };
        Ok(Attempt::Rows(vec![AppendRow {
            event_id: Some(encoded.event_ids[0]),
            stream_id: Some(encoded.streams[0].clone()),
            stream_version: Some(version),
            tx_id: Some(tx_id),
            event_position: Some(position),
            replayed: false,
        }]))
    }

    /// After losing a race: the first stream of the request that no longer accepts its append.
    async fn find_conflict(&self, request: &AppendRequest) -> Result<Option<Error>, Error> {
        for s in &request.streams {
            let actual = self.stream_version(&s.stream).await?;
            if !s.expected.accepts(actual) {
                return Ok(Some(Error::Conflict {
                    stream: s.stream.clone(),
                    expected: s.expected,
                    actual,
                }));
            }
        }
        Ok(None)
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
        read_page_on(&mut conn, after, limit).await
    }
}

/// [`PostgresLog::read_page`] on `conn`.
async fn read_page_on(
    conn: &mut sqlx::PgConnection,
    after: Position,
    limit: usize,
) -> Result<(Vec<RecordedEvent>, bool), Error> {
    let (tx, seq) = position_params(after);
    let rows = sqlx::query_as::<_, EventRow>(concat!(
        "select ",
        event_columns!(),
        " from events \
          where (tx_id, position) > ($1, $2) \
            and tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
          order by tx_id, position \
          limit $3"
    ))
    .bind(tx)
    .bind(seq)
    .bind(clamp_limit(limit))
    .fetch_all(&mut *conn)
    .await
    .map_err(backend)?;
    if !rows.is_empty() {
        let events = rows
            .into_iter()
            .map(EventRow::into_event)
            .collect::<Result<_, _>>()?;
        return Ok((events, false));
    }
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
    Ok((Vec::new(), held_back.is_some()))
}

impl PostgresLog {
    /// Appends one request in its own transaction, retrying lost races.
    async fn append_alone(
        &self,
        request: &AppendRequest,
        encoded: &Encoded,
    ) -> Result<AppendOutcome, Error> {
        // The common case, one event to one stream, takes one prepared statement; anything
        // else goes through `append_events`.
        let single = encoded.streams.len() == 1 && encoded.event_ids.len() == 1;
        let mut races = 0;
        loop {
            let attempt = if single {
                self.try_append_one(encoded).await
            } else {
                self.try_append(encoded).await.map(Attempt::Rows)
            };
            let err = match attempt {
                Ok(Attempt::Rows(rows)) => {
                    let replayed = rows.first().is_some_and(|r| r.replayed);
                    let receipt = receipt(rows);
                    if replayed {
                        return Ok(AppendOutcome::AlreadyApplied(receipt));
                    }
                    if !receipt.events.is_empty() {
                        self.announce();
                    }
                    return Ok(AppendOutcome::Appended(receipt));
                }
                Ok(Attempt::NotAppended { actual }) => {
                    // The key was applied before, or the stream was not at the expected
                    // version (a retry of an append that went through may see both).
                    if let Some(key) = &request.idempotency_key
                        && let Some(receipt) = self.applied(key).await?
                    {
                        return Ok(AppendOutcome::AlreadyApplied(receipt));
                    }
                    let stream = &request.streams[0];
                    let actual = actual.map(to_u64);
                    if !stream.expected.accepts(actual) {
                        return Err(Error::Conflict {
                            stream: stream.stream.clone(),
                            expected: stream.expected,
                            actual,
                        });
                    }
                    // The key's claim was rolled back meanwhile: try again.
                    if races >= RACE_RETRIES {
                        return Err(lost_races());
                    }
                    races += 1;
                    tokio::task::yield_now().await;
                    continue;
                }
                Err(err) => err,
            };
            // A refused append may be the retry of one that went through: answer with its receipt.
            let refusal = classify(&err, request);
            if !matches!(refusal, Refusal::Other)
                && let Some(key) = &request.idempotency_key
                && let Some(receipt) = self.applied(key).await?
            {
                return Ok(AppendOutcome::AlreadyApplied(receipt));
            }
            match refusal {
                Refusal::Conflict(conflict) => return Err(conflict),
                Refusal::Race if races < RACE_RETRIES => {
                    if let Some(conflict) = self.find_conflict(request).await? {
                        return Err(conflict);
                    }
                    races += 1;
                    tokio::task::yield_now().await;
                }
                Refusal::Race => return Err(lost_races()),
                Refusal::DuplicateEventId => {
                    return Err(Error::Invalid(
                        "an event id of this request is already in the log".into(),
                    ));
                }
                Refusal::Other => return Err(backend(err)),
            }
        }
    }
}

impl EventLog for PostgresLog {
    async fn append(&self, request: AppendRequest) -> Result<AppendOutcome, Error> {
        self.append_many(vec![request])
            .await
            .pop()
            .unwrap_or_else(not_answered)
    }

    async fn applied(&self, key: &str) -> Result<Option<Receipt>, Error> {
        let ids: Option<Vec<Uuid>> =
            sqlx::query_scalar("select event_ids from idempotency_keys where key = $1")
                .bind(key)
                .fetch_optional(&self.inner.pool)
                .await
                .map_err(backend)?;
        let Some(ids) = ids else { return Ok(None) };
        let rows = sqlx::query_as::<_, AppendRow>(
            "select event_id, stream_id, stream_version, tx_id, position as event_position, \
                    true as replayed \
             from events where event_id = any($1) order by tx_id, position",
        )
        .bind(&ids)
        .fetch_all(&self.inner.pool)
        .await
        .map_err(backend)?;
        Ok(Some(receipt(rows)))
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
        rows.into_iter().map(EventRow::into_event).collect()
    }

    async fn stream_version(&self, stream: &str) -> Result<Option<u64>, Error> {
        let version: Option<i64> =
            sqlx::query_scalar("select max(stream_version) from events where stream_id = $1")
                .bind(stream)
                .fetch_one(&self.inner.pool)
                .await
                .map_err(backend)?;
        Ok(version.map(to_u64))
    }

    async fn read_all(&self, after: Position, limit: usize) -> Result<Page, Error> {
        let (events, _) = self.read_page(after, limit).await?;
        let next = events.last().map_or(after, |e| e.position);
        Ok(Page { events, next })
    }

    async fn head(&self) -> Result<Position, Error> {
        let head: Option<(i64, i64)> = sqlx::query_as(
            "select tx_id, position from events \
              where tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
              order by tx_id desc, position desc limit 1",
        )
        .fetch_optional(&self.inner.pool)
        .await
        .map_err(backend)?;
        Ok(head.map_or(Position::START, |(tx, seq)| {
            Position::from_parts(to_u64(tx), to_u64(seq))
        }))
    }

    async fn count_after(&self, after: Position, cap: u64) -> Result<u64, Error> {
        let (tx, seq) = position_params(after);
        let count: i64 = sqlx::query_scalar(
            "select count(*) from (select 1 from events \
              where (tx_id, position) > ($1, $2) \
                and tx_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
              order by tx_id, position limit $3) as counted",
        )
        .bind(tx)
        .bind(seq)
        .bind(i64::try_from(cap).unwrap_or(i64::MAX))
        .fetch_one(&self.inner.pool)
        .await
        .map_err(backend)?;
        Ok(to_u64(count))
    }

    fn subscribe_all(&self, after: Position) -> BoxStream<'static, Result<RecordedEvent, Error>> {
        self.start_listener();
        let state = Subscription {
            wake: self.inner.wake.subscribe(),
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

const LISTEN_LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// The pauses before listening for notifications again after the channel failed: 100 ms,
/// doubling.
const LISTEN_PAUSES: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_factor(2.0)
    .with_max_delay(LISTEN_LONGEST_PAUSE)
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
        let page = read_page_on(conn, self.cursor, limit).await;
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

/// Sends one NOTIFY, with payload `token`, for any number of commits that happened since the
/// last one.
async fn notifier(pool: PgPool, wanted: Arc<NotifyWanted>, token: String, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = wanted.signal.notified() => {}
            () = stop.cancelled() => return,
        }
        while wanted.pending.swap(false, Ordering::AcqRel) {
            // At most one NOTIFY per gap: a busy log announces in batches, not per event.
            tokio::time::sleep(NOTIFY_GAP).await;
            wanted.pending.store(false, Ordering::Release);
            let sent = sqlx::query("select pg_notify($1, $2)")
                .bind(CHANNEL)
                .bind(&token)
                .execute(&pool)
                .await;
            if let Err(err) = sent {
                // Other processes fall back to polling; nothing is lost.
                tracing::debug!(error = %err, "could not send the append notification");
            }
        }
    }
}

/// Turns notifications from other processes into wake-ups of this process' subscriptions; its
/// own (payload `token`) are skipped, since its commits woke them already.
async fn listener(pool: PgPool, wake: watch::Sender<u64>, token: String, stop: CancellationToken) {
    let bump = || wake.send_modify(|n| *n = n.wrapping_add(1));
    let mut pauses = LISTEN_PAUSES.build();
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            l = connected => l,
        };
        match &mut listener {
            Ok(listener) => {
                pauses = LISTEN_PAUSES.build();
                // Whatever was announced while we were not listening: look now.
                bump();
                loop {
                    tokio::select! {
                        // Stop first: at shutdown the pool closes right after the stop, and the
                        // listener's error then is that closing, not a lost channel.
                        biased;
                        () = stop.cancelled() => return,
                        received = listener.try_recv() => match received {
                            Ok(Some(notification)) if notification.payload() == token => {}
                            Ok(_) => bump(),
                            Err(err) => {
                                tracing::warn!(error = %err, "lost the event notification channel; subscriptions poll meanwhile");
                                break;
                            }
                        },
                    }
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for event notifications; subscriptions poll meanwhile");
            }
        }
        let pause = pauses.next().unwrap_or(LISTEN_LONGEST_PAUSE);
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// A request checked against the limits and laid out as the SQL function's arrays.
#[derive(Debug)]
struct Encoded {
    key: Option<String>,
    streams: Vec<String>,
    expected: Vec<i64>,
    stream_of: Vec<i32>,
    event_ids: Vec<Uuid>,
    types: Vec<String>,
    schema_versions: Vec<i32>,
    payloads: Vec<String>,
    metadata: Vec<String>,
}

impl Encoded {
    fn new(request: &AppendRequest) -> Result<Self, Error> {
        let invalid = |msg: String| Err(Error::Invalid(msg));
        if let Some(key) = &request.idempotency_key {
            let chars = key.chars().count();
            if chars == 0 || chars > limits::IDEMPOTENCY_KEY_CHARS {
                return invalid(format!(
                    "an idempotency key has 1 to {} characters",
                    limits::IDEMPOTENCY_KEY_CHARS
                ));
            }
        }
        if request.streams.len() > limits::STREAMS_PER_APPEND {
            return invalid(format!(
                "an append touches at most {} streams",
                limits::STREAMS_PER_APPEND
            ));
        }
        let total = request.event_count();
        if total > limits::EVENTS_PER_APPEND {
            return invalid(format!(
                "an append carries at most {} events, this one has {total}",
                limits::EVENTS_PER_APPEND
            ));
        }
        let mut seen = HashSet::new();
        let mut encoded = Encoded {
            key: request.idempotency_key.clone(),
            streams: Vec::with_capacity(request.streams.len()),
            expected: Vec::with_capacity(request.streams.len()),
            stream_of: Vec::with_capacity(total),
            event_ids: Vec::with_capacity(total),
            types: Vec::with_capacity(total),
            schema_versions: Vec::with_capacity(total),
            payloads: Vec::with_capacity(total),
            metadata: Vec::with_capacity(total),
        };
        for (index, append) in request.streams.iter().enumerate() {
            let stream = &append.stream;
            let chars = stream.chars().count();
            if chars == 0 || chars > limits::STREAM_ID_CHARS || stream.chars().any(char::is_control)
            {
                return invalid(format!(
                    "a stream id has 1 to {} characters and no control characters",
                    limits::STREAM_ID_CHARS
                ));
            }
            if !seen.insert(stream.as_str()) {
                return invalid(format!("stream {stream} appears twice in one append"));
            }
            encoded.streams.push(stream.clone());
            encoded.expected.push(match append.expected {
                ExpectedVersion::Exact(v) => i64::try_from(v)
                    .map_err(|_| Error::Invalid(format!("expected version {v} is out of range")))?,
                ExpectedVersion::NoStream => -1,
                ExpectedVersion::Any => -2,
                ExpectedVersion::StreamExists => -3,
            });
            let stream_index = i32::try_from(index + 1).unwrap_or(i32::MAX);
            for event in &append.events {
                let type_chars = event.event_type.chars().count();
                if type_chars == 0 || type_chars > limits::EVENT_TYPE_CHARS {
                    return invalid(format!(
                        "an event type has 1 to {} characters",
                        limits::EVENT_TYPE_CHARS
                    ));
                }
                let schema_version = i32::try_from(event.schema_version)
                    .ok()
                    .filter(|v| *v >= 1)
                    .ok_or_else(|| Error::Invalid("a schema version is at least 1".into()))?;
                let payload = serde_json::to_string(&event.payload)?;
                if payload.len() > limits::PAYLOAD_BYTES {
                    return invalid(format!(
                        "an event payload is at most {} bytes, {} has {}",
                        limits::PAYLOAD_BYTES,
                        event.event_type,
                        payload.len()
                    ));
                }
                let metadata = Metadata {
                    idempotency_key: request.idempotency_key.clone(),
                    ..event.metadata.clone()
                };
                let metadata = serde_json::to_string(&metadata)?;
                if metadata.len() > limits::METADATA_BYTES {
                    return invalid(format!(
                        "event metadata is at most {} bytes",
                        limits::METADATA_BYTES
                    ));
                }
                encoded.stream_of.push(stream_index);
                encoded.event_ids.push(event.event_id);
                encoded.types.push(event.event_type.clone());
                encoded.schema_versions.push(schema_version);
                encoded.payloads.push(payload);
                encoded.metadata.push(metadata);
            }
        }
        Ok(encoded)
    }
}

/// What one attempt at an append did.
enum Attempt {
    /// The rows `append_events` answered (or the one the fast path inserted).
    Rows(Vec<AppendRow>),
    /// The fast path inserted nothing: the expected version did not hold (the stream is at
    /// `actual`) or the idempotency key was claimed before.
    NotAppended { actual: Option<i64> },
}

fn not_answered() -> Result<AppendOutcome, Error> {
    Err(Error::Backend("the append was not answered".into()))
}

fn lost_races() -> Error {
    Error::Backend(format!("append lost {RACE_RETRIES} races in a row; try again").into())
}

/// Why the database refused an append.
enum Refusal {
    /// A stream was not at the expected version when the append looked.
    Conflict(Error),
    /// A concurrent append took the same stream version first (or deadlocked with this one).
    Race,
    /// An event id is already used.
    DuplicateEventId,
    /// Anything else.
    Other,
}

fn classify(err: &sqlx::Error, request: &AppendRequest) -> Refusal {
    let sqlx::Error::Database(db) = err else {
        return Refusal::Other;
    };
    match db.code().as_deref() {
        Some("LD001") => {
            #[derive(serde::Deserialize)]
            struct Detail {
                stream: String,
                actual: i64,
            }
            let detail = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .and_then(|pg| pg.detail())
                .and_then(|d| serde_json::from_str::<Detail>(d).ok());
            let Some(detail) = detail else {
                return Refusal::Other;
            };
            let expected = request
                .streams
                .iter()
                .find(|s| s.stream == detail.stream)
                .map_or(ExpectedVersion::Any, |s| s.expected);
            Refusal::Conflict(Error::Conflict {
                stream: detail.stream,
                expected,
                actual: u64::try_from(detail.actual).ok(),
            })
        }
        Some("40P01") => Refusal::Race,
        Some("23505") => match db.constraint() {
            Some("events_stream_version_key") => Refusal::Race,
            Some("events_event_id_key") => Refusal::DuplicateEventId,
            _ => Refusal::Other,
        },
        _ => Refusal::Other,
    }
}

#[derive(sqlx::FromRow)]
struct AppendRow {
    event_id: Option<Uuid>,
    stream_id: Option<String>,
    stream_version: Option<i64>,
    tx_id: Option<i64>,
    event_position: Option<i64>,
    replayed: bool,
}

fn receipt(rows: Vec<AppendRow>) -> Receipt {
    let events = rows
        .into_iter()
        .filter_map(|r| {
            Some(CommittedEvent {
                event_id: r.event_id?,
                stream: r.stream_id?,
                version: to_u64(r.stream_version?),
                position: Position::from_parts(to_u64(r.tx_id?), to_u64(r.event_position?)),
            })
        })
        .collect();
    Receipt { events }
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

fn backend(err: sqlx::Error) -> Error {
    Error::Backend(Box::new(err))
}

/// Stored numbers are never negative (checked by constraints and identity columns).
fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
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
