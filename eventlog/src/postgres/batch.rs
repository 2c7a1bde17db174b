//! Group commit: appends that wait at the same time share one transaction.
//!
//! With many concurrent writers most of an append's cost is not its rows but its statement and
//! its transaction: a round trip, a commit, a WAL flush. So appends are not sent one by one.
//! Each goes into this process's queue; at most `append_batches` batches are written at once,
//! and whatever queued up while they ran goes out together in the next one, through the
//! `append_batch` function (migrations 0008 and 0009) that checks and writes every request in
//! turn within one transaction. A lone append (the queue was empty) takes the one-statement
//! path as before, so an idle log answers as fast as it did without batching.
//!
//! What each request keeps:
//! - **Its own outcome.** A conflict or an applied idempotency key refuses that request only;
//!   the others of the batch still go in. A request sees the versions the earlier requests of
//!   its batch appended, exactly as if they had run one after the other.
//! - **All or nothing, and never twice.** When the database refuses the whole batch (another
//!   process took a version first, a deadlock, a duplicate event id), the transaction rolled
//!   back and nothing of it is in the log; each request is then appended alone, in queue order,
//!   with the usual retries and typed errors. When the outcome is unknown (the connection broke
//!   during the call), every request gets the backend error, as a lone append would.
//! - **Order per stream.** Two batches written at once never share a stream: a request whose
//!   stream belongs to a batch in flight waits for the next, and so does every later request of
//!   one of its streams. Within a batch, requests go in queue order.
//!
//! The gap-free argument of the parent module is unchanged: `append_batch` reads every
//! stream's version before it writes anything.
//!
//! A caller that stops waiting (its future is dropped) does not take its request back: once
//! queued, a request is written, as a lone append already sent to the server would be.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::append::Appender;
use super::encoded::{Encoded, to_u64};
use crate::{AppendOutcome, AppendRequest, CommittedEvent, Error, Position, Receipt};

/// Most requests written by one call.
const MAX_REQUESTS: usize = 512;
/// Most events written by one call (a larger lone request still goes, alone).
const MAX_EVENTS: usize = 2_000;
/// Most payload and metadata bytes written by one call (the same exception).
const MAX_BYTES: usize = 8 << 20;

/// Counters of how appends were written, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppendStats {
    /// Calls that wrote two or more requests together.
    pub batches: u64,
    /// Requests written by those calls.
    pub batched_requests: u64,
    /// The most requests one call wrote.
    pub largest_batch: u64,
    /// Batches the database refused whole, whose requests were then appended alone.
    pub batches_retried_alone: u64,
    /// Batches of plain requests (no key, one event per stream, no stream shared), written by
    /// one statement instead of `append_batch`.
    pub plain_batches: u64,
}

/// The queue of one log and its batches in flight, with what writing them takes: the lone
/// appends (the log's pool and wake-ups) and how many batches may be written at once.
#[derive(Debug)]
pub(super) struct Batcher {
    lone: Appender,
    /// The log's `append_batches` option.
    append_batches: usize,
    state: Mutex<State>,
    batches: AtomicU64,
    batched_requests: AtomicU64,
    largest_batch: AtomicU64,
    retried_alone: AtomicU64,
    plain: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Pending>,
    running: usize,
    /// The streams of the batches in flight.
    busy: HashSet<String>,
}

#[derive(Debug)]
struct Pending {
    request: AppendRequest,
    encoded: Encoded,
    reply: oneshot::Sender<Result<AppendOutcome, Error>>,
}

impl Pending {
    fn bytes(&self) -> usize {
        let payloads: usize = self.encoded.payloads.iter().map(String::len).sum();
        let metadata: usize = self.encoded.metadata.iter().map(String::len).sum();
        payloads + metadata
    }
}

impl Batcher {
    pub(super) fn new(lone: Appender, append_batches: usize) -> Self {
        Batcher {
            lone,
            append_batches,
            state: Mutex::default(),
            batches: AtomicU64::default(),
            batched_requests: AtomicU64::default(),
            largest_batch: AtomicU64::default(),
            retried_alone: AtomicU64::default(),
            plain: AtomicU64::default(),
        }
    }

    pub(super) fn stats(&self) -> AppendStats {
        AppendStats {
            batches: self.batches.load(Ordering::Relaxed),
            batched_requests: self.batched_requests.load(Ordering::Relaxed),
            largest_batch: self.largest_batch.load(Ordering::Relaxed),
            batches_retried_alone: self.retried_alone.load(Ordering::Relaxed),
            plain_batches: self.plain.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while the lock is held leaves the queue consistent (every change is one
        // push, pop or counter step), so a poisoned lock is still safe to use.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `requests` (each already checked and encoded) and waits for their outcomes, in
    /// the same order. Requests queued together are written together when their streams allow;
    /// with `append_batches = 0` each goes alone, in order.
    pub(super) async fn append_queued(
        self: &Arc<Self>,
        requests: Vec<(AppendRequest, Encoded)>,
    ) -> Vec<Result<AppendOutcome, Error>> {
        if self.append_batches == 0 {
            let mut outcomes = Vec::with_capacity(requests.len());
            for (request, encoded) in &requests {
                outcomes.push(self.lone.append_alone(request, encoded).await);
            }
            return outcomes;
        }
        let mut replies = Vec::with_capacity(requests.len());
        {
            let mut state = self.lock();
            for (request, encoded) in requests {
                let (reply, answer) = oneshot::channel();
                state.queue.push_back(Pending {
                    request,
                    encoded,
                    reply,
                });
                replies.push(answer);
            }
            self.start_batches(&mut state);
        }
        let mut outcomes = Vec::with_capacity(replies.len());
        for answer in replies {
            outcomes.push(answer.await.unwrap_or_else(|_| {
                Err(Error::Backend(
                    "the append batch stopped before it answered".into(),
                ))
            }));
        }
        outcomes
    }

    /// Starts batches while fewer than the allowed number run and the queue holds requests
    /// whose streams are free.
    fn start_batches(self: &Arc<Self>, state: &mut State) {
        let allowed = self.append_batches;
        while state.running < allowed && !state.queue.is_empty() {
            let batch = take_batch(state);
            if batch.is_empty() {
                return;
            }
            state.running += 1;
            let streams: Vec<String> = batch
                .iter()
                .flat_map(|p| p.encoded.streams.iter().cloned())
                .collect();
            state.busy.extend(streams.iter().cloned());
            // Frees the batch's place and streams when the task ends, even if writing panics.
            let done = Done {
                batcher: Arc::clone(self),
                streams,
            };
            tokio::spawn(async move {
                done.batcher.write_batch(batch).await;
                drop(done);
            });
        }
    }

    async fn write_batch(&self, batch: Vec<Pending>) {
        if batch.len() == 1 {
            self.each_alone(batch).await;
            return;
        }
        let size = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.batched_requests.fetch_add(size, Ordering::Relaxed);
        self.largest_batch.fetch_max(size, Ordering::Relaxed);

        match self.try_batch(&batch).await {
            Ok(rows) => self.answer(batch, rows).await,
            Err(sqlx::Error::Database(db)) => {
                // The server refused the call, so its transaction rolled back: nothing of the
                // batch is in the log. Each request goes again on its own.
                tracing::debug!(error = %db, requests = batch.len(), "append batch refused; appending its requests alone");
                self.retried_alone.fetch_add(1, Ordering::Relaxed);
                self.each_alone(batch).await;
            }
            Err(err) => {
                // The outcome is unknown (the call may have committed): retrying here could
                // append twice. Each caller learns what a lone append would have told it.
                let message = err.to_string();
                let unreachable = crate::is_unavailable(&err);
                for pending in batch {
                    let error: Box<dyn std::error::Error + Send + Sync> = if unreachable {
                        Box::new(crate::Unreachable(message.clone()))
                    } else {
                        message.clone().into()
                    };
                    let _ = pending.reply.send(Err(Error::Backend(error)));
                }
            }
        }
    }

    /// Appends each request in its own transaction, in queue order, and answers it.
    async fn each_alone(&self, batch: Vec<Pending>) {
        for pending in batch {
            let outcome = self
                .lone
                .append_alone(&pending.request, &pending.encoded)
                .await;
            // The caller may have stopped waiting; the append stands either way.
            let _ = pending.reply.send(outcome);
        }
    }

    async fn try_batch(&self, batch: &[Pending]) -> Result<Vec<BatchRow>, sqlx::Error> {
        if is_plain(batch) {
            self.plain.fetch_add(1, Ordering::Relaxed);
            return self.try_plain_batch(batch).await;
        }
        let mut keys = Vec::with_capacity(batch.len());
        let mut digests = Vec::with_capacity(batch.len());
        let mut slots_end = Vec::with_capacity(batch.len());
        let mut events_end = Vec::with_capacity(batch.len());
        let mut slot_of = Vec::new();
        let mut laid = Laid::default();
        for pending in batch {
            let encoded = &pending.encoded;
            let first_slot = i32::try_from(laid.streams.len()).unwrap_or(i32::MAX);
            keys.push(encoded.key.as_deref());
            digests.push(encoded.input_digest.as_deref());
            slot_of.extend(encoded.stream_of.iter().map(|s| first_slot + s));
            laid.push(encoded);
            slots_end.push(i32::try_from(laid.streams.len()).unwrap_or(i32::MAX));
            events_end.push(i32::try_from(laid.event_ids.len()).unwrap_or(i32::MAX));
        }
        sqlx::query_as::<_, BatchRow>(
            "select o_request, o_refusal, o_stream, o_version, o_event_id, o_tx_id, o_position \
             from append_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(keys)
        .bind(slots_end)
        .bind(events_end)
        .bind(laid.streams)
        .bind(laid.expected)
        .bind(slot_of)
        .bind(laid.event_ids)
        .bind(laid.types)
        .bind(laid.schema_versions)
        .bind(laid.payloads)
        .bind(laid.metadata)
        .bind(digests)
        .fetch_all(self.lone.pool())
        .await
    }

    /// A [plain](is_plain) batch in one statement, [`APPEND_PLAIN`]: its requests cannot
    /// affect each other's checks, so they need no turn-by-turn loop.
    async fn try_plain_batch(&self, batch: &[Pending]) -> Result<Vec<BatchRow>, sqlx::Error> {
        let mut requests = Vec::new();
        let mut laid = Laid::default();
        for (index, pending) in batch.iter().enumerate() {
            let encoded = &pending.encoded;
            let request = i32::try_from(index + 1).unwrap_or(i32::MAX);
            requests.extend(encoded.streams.iter().map(|_| request));
            laid.push(encoded);
        }
        sqlx::query_as::<_, BatchRow>(APPEND_PLAIN)
            .bind(requests)
            .bind(laid.streams)
            .bind(laid.expected)
            .bind(laid.event_ids)
            .bind(laid.types)
            .bind(laid.schema_versions)
            .bind(laid.payloads)
            .bind(laid.metadata)
            .fetch_all(self.lone.pool())
            .await
    }

    /// Hands each request of a committed batch its outcome.
    async fn answer(&self, batch: Vec<Pending>, rows: Vec<BatchRow>) {
        let mut refusals: HashMap<usize, BatchRow> = HashMap::new();
        let mut committed: HashMap<Uuid, CommittedEvent> = HashMap::new();
        for row in rows {
            match row.o_request {
                Some(request) => {
                    let index = usize::try_from(request).unwrap_or(0).saturating_sub(1);
                    refusals.insert(index, row);
                }
                None => {
                    let (Some(stream), Some(version), Some(id), Some(tx), Some(position)) = (
                        row.o_stream,
                        row.o_version,
                        row.o_event_id,
                        row.o_tx_id,
                        row.o_position,
                    ) else {
                        continue;
                    };
                    committed.insert(
                        id,
                        CommittedEvent {
                            event_id: id,
                            stream,
                            version: to_u64(version),
                            position: Position::from_parts(to_u64(tx), to_u64(position)),
                        },
                    );
                }
            }
        }
        if !committed.is_empty() {
            self.lone.announce();
        }
        for (index, pending) in batch.into_iter().enumerate() {
            let outcome = match refusals.remove(&index) {
                None => {
                    let events = pending
                        .encoded
                        .event_ids
                        .iter()
                        .filter_map(|id| committed.remove(id))
                        .collect();
                    Ok(AppendOutcome::Appended(Receipt {
                        events,
                        input_digest: None,
                    }))
                }
                Some(row) if row.o_refusal.as_deref() == Some("conflict") => {
                    let stream = row.o_stream.unwrap_or_default();
                    let expected = pending
                        .request
                        .streams
                        .iter()
                        .find(|s| s.stream == stream)
                        .map_or(crate::ExpectedVersion::Any, |s| s.expected);
                    Err(Error::Conflict {
                        stream,
                        expected,
                        actual: row.o_version.map(to_u64),
                    })
                }
                Some(_) => self.applied_before(&pending).await,
            };
            let _ = pending.reply.send(outcome);
        }
    }

    /// A request whose key was applied before: the first receipt. Should that application
    /// have vanished meanwhile (it cannot, but the log does not assume it), the request is
    /// appended alone.
    async fn applied_before(&self, pending: &Pending) -> Result<AppendOutcome, Error> {
        let key = pending.encoded.key.as_deref().unwrap_or_default();
        match self.lone.applied(key).await? {
            Some(receipt) => Ok(AppendOutcome::AlreadyApplied(receipt)),
            None => {
                self.lone
                    .append_alone(&pending.request, &pending.encoded)
                    .await
            }
        }
    }
}

/// Whether every request of `batch` is plain: no idempotency key, one event per stream, and no
/// stream shared with another request. Then no request's check depends on another's writes, and
/// the whole batch goes in one statement.
fn is_plain(batch: &[Pending]) -> bool {
    let mut streams = HashSet::new();
    batch.iter().all(|pending| {
        let encoded = &pending.encoded;
        encoded.key.is_none()
            && encoded.event_ids.len() == encoded.streams.len()
            && encoded
                .stream_of
                .iter()
                .enumerate()
                .all(|(event, slot)| usize::try_from(*slot).is_ok_and(|slot| slot == event + 1))
            && encoded
                .streams
                .iter()
                .all(|stream| streams.insert(stream.as_str()))
    })
}

/// A plain batch (see [`is_plain`]): the slots of every request, one event each. `$1` is each
/// slot's request (numbered from 1), `$2`..`$8` its stream, expected version (as
/// `append_batch` takes it), event id, type, schema version, payload and metadata (JSON text).
///
/// Every stream's last version and hash are read before anything is written, as in
/// `append_batch`, so the gap-free argument of the parent module holds. A request whose first
/// failing slot (in request order) does not match is refused with that stream and its version;
/// the others' events go in, in request order, each JSON text parsed once (the `offset 0`
/// fences) and chained onto its stream's hash. Rows come back as `append_batch` returns them.
const APPEND_PLAIN: &str = "\
    with slot as ( \
        select u.*, l.v, l.h, \
               case u.expected \
                   when -2 then true \
                   when -1 then l.v is null \
                   when -3 then l.v is not null \
                   else coalesce(l.v = u.expected, false) end as ok \
          from unnest($1::integer[], $2::text[], $3::bigint[], $4::uuid[], $5::text[], \
                      $6::integer[], $7::text[], $8::text[]) with ordinality \
               as u (request, stream, expected, event_id, event_type, schema_version, \
                     payload, metadata, n) \
          left join lateral ( \
              select e.stream_version as v, e.hash as h from events e \
               where e.stream_id = u.stream \
               order by e.stream_version desc limit 1) as l on true), \
    refused as ( \
        select distinct on (request) request, stream, v from slot where not ok \
         order by request, n), \
    ins as ( \
        insert into events as ev (stream_id, stream_version, event_id, event_type, \
                                  schema_version, payload, metadata, prev_hash, hash) \
        select s.stream, coalesce(s.v, -1) + 1, s.event_id, s.event_type, s.schema_version, \
               j.payload, j.metadata, s.h, \
               event_hash(s.h, s.event_type, j.payload_text, j.metadata_text) \
          from slot s, lateral ( \
              select p.payload, p.metadata, \
                     p.payload::text as payload_text, p.metadata::text as metadata_text \
                from (select s.payload::jsonb as payload, s.metadata::jsonb as metadata \
                      offset 0) as p \
              offset 0) as j \
         where not exists (select 1 from refused r where r.request = s.request) \
         order by s.n \
        returning ev.stream_id, ev.stream_version, ev.event_id, ev.tx_id, ev.position) \
    select r.request as o_request, 'conflict'::text as o_refusal, r.stream as o_stream, \
           r.v as o_version, null::uuid as o_event_id, null::bigint as o_tx_id, \
           null::bigint as o_position \
      from refused r \
    union all \
    select null, null, ins.stream_id, ins.stream_version, ins.event_id, ins.tx_id, ins.position \
      from ins";

/// Takes the next batch from the front of the queue: requests in queue order whose streams no
/// batch in flight holds, up to the batch limits. A request that must wait blocks its streams
/// for the requests behind it, so each stream's requests keep their order.
fn take_batch(state: &mut State) -> Vec<Pending> {
    let mut batch = Vec::new();
    let mut waiting = VecDeque::new();
    let mut blocked: HashSet<String> = HashSet::new();
    let (mut events, mut bytes) = (0usize, 0usize);
    while let Some(pending) = state.queue.pop_front() {
        let streams = &pending.encoded.streams;
        if streams
            .iter()
            .any(|s| state.busy.contains(s) || blocked.contains(s))
        {
            blocked.extend(streams.iter().cloned());
            waiting.push_back(pending);
            continue;
        }
        let (more_events, more_bytes) = (pending.encoded.event_ids.len(), pending.bytes());
        let full = batch.len() >= MAX_REQUESTS
            || events + more_events > MAX_EVENTS
            || bytes + more_bytes > MAX_BYTES;
        if !batch.is_empty() && full {
            waiting.push_back(pending);
            break;
        }
        events += more_events;
        bytes += more_bytes;
        batch.push(pending);
    }
    // What was set aside goes back in front of what was not looked at, in order.
    waiting.append(&mut state.queue);
    state.queue = waiting;
    batch
}

/// Frees a finished batch's place and streams and starts what can start now.
struct Done {
    batcher: Arc<Batcher>,
    streams: Vec<String>,
}

impl Drop for Done {
    fn drop(&mut self) {
        let mut state = self.batcher.lock();
        state.running = state.running.saturating_sub(1);
        for stream in &self.streams {
            state.busy.remove(stream);
        }
        self.batcher.start_batches(&mut state);
    }
}

/// The streams and events of a batch's requests, one after the other, as the batch
/// statements take them: one array per column.
#[derive(Default)]
struct Laid<'a> {
    streams: Vec<&'a str>,
    expected: Vec<i64>,
    event_ids: Vec<Uuid>,
    types: Vec<&'a str>,
    schema_versions: Vec<i32>,
    payloads: Vec<&'a str>,
    metadata: Vec<&'a str>,
}

impl<'a> Laid<'a> {
    /// Appends one request's streams and events.
    fn push(&mut self, encoded: &'a Encoded) {
        self.streams
            .extend(encoded.streams.iter().map(String::as_str));
        self.expected.extend_from_slice(&encoded.expected);
        self.event_ids.extend_from_slice(&encoded.event_ids);
        self.types.extend(encoded.types.iter().map(String::as_str));
        self.schema_versions
            .extend_from_slice(&encoded.schema_versions);
        self.payloads
            .extend(encoded.payloads.iter().map(String::as_str));
        self.metadata
            .extend(encoded.metadata.iter().map(String::as_str));
    }
}

#[derive(sqlx::FromRow)]
struct BatchRow {
    o_request: Option<i32>,
    o_refusal: Option<String>,
    o_stream: Option<String>,
    o_version: Option<i64>,
    o_event_id: Option<Uuid>,
    o_tx_id: Option<i64>,
    o_position: Option<i64>,
}
