//! The one reader of the live log that the running projections share: it follows the log from
//! the head, decodes each batch once and hands it to every projection. Without it, each
//! projection would read and decode every event itself, six times over. A projection joins it,
//! catches up from its own checkpoint with the log, and then applies what the reader sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eventlog::{EventLog, Position, RecordedEvent};
use futures::StreamExt;
use tokio::sync::{Notify, broadcast, watch};

use super::applier::Decoded;

/// How often the shared reader looks again whether its projections took the last batch (a
/// projection that finishes one also tells it at once).
const FEED_RECHECK: Duration = Duration::from_millis(2);

/// Pause before the reader tries the log again after it failed.
const RETRY: Duration = Duration::from_millis(500);

/// Pause before the reader resumes after its subscription ended.
const RESUME: Duration = Duration::from_millis(200);

/// The shared reader, as the projections see it.
#[derive(Clone)]
pub(super) struct LiveFeed {
    batches: broadcast::Sender<Arc<Decoded>>,
    applying: Arc<Applying>,
    /// True once the reader has fixed the position it reads from (the head when it started).
    started: watch::Receiver<bool>,
}

/// How many projections are applying a batch of the shared reader right now. While one is,
/// the reader keeps what it reads and sends it as one batch once they are all done: under
/// load, batches grow to what arrives while the slowest projection applies the last one, so
/// every projection runs fewer, larger transactions; an idle log sends each event at once.
#[derive(Debug, Default)]
pub(super) struct Applying {
    count: AtomicUsize,
    /// Signalled each time a projection finishes a batch.
    done: Notify,
}

impl Applying {
    fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Counts one projection as applying until the guard drops.
    pub(super) fn start(self: &Arc<Self>) -> ApplyingGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        ApplyingGuard(Arc::clone(self))
    }
}

pub(super) struct ApplyingGuard(Arc<Applying>);

impl Drop for ApplyingGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.done.notify_one();
    }
}

impl LiveFeed {
    /// Starts the reader, sending batches of at most `batch` events and keeping `kept` of them
    /// for projections still applying earlier ones; its task runs until aborted.
    pub(super) fn start<L: EventLog>(
        log: L,
        batch: usize,
        kept: usize,
    ) -> (LiveFeed, tokio::task::AbortHandle) {
        let (batches, _) = broadcast::channel(kept.max(1));
        let (started_tx, started) = watch::channel(false);
        let reader = Reader {
            log,
            batches: batches.clone(),
            applying: Arc::new(Applying::default()),
            started: started_tx,
            batch: batch.max(1),
        };
        let feed = LiveFeed {
            batches,
            applying: Arc::clone(&reader.applying),
            started,
        };
        let task = tokio::spawn(reader.run());
        (feed, task.abort_handle())
    }

    /// Completes once the reader knows where it starts.
    pub(super) async fn started(&self) {
        let mut started = self.started.clone();
        let _ = started.wait_for(|started| *started).await;
    }

    /// Joins the reader: what it sends from now on, and the count of projections applying.
    pub(super) fn subscribe(&self) -> (broadcast::Receiver<Arc<Decoded>>, Arc<Applying>) {
        (self.batches.subscribe(), Arc::clone(&self.applying))
    }
}

/// The reader's task.
struct Reader<L> {
    log: L,
    batches: broadcast::Sender<Arc<Decoded>>,
    applying: Arc<Applying>,
    started: watch::Sender<bool>,
    batch: usize,
}

impl<L: EventLog> Reader<L> {
    /// Follows the log from its head, for ever: after a failure, from the last event sent.
    async fn run(self) {
        let mut from = self.head().await;
        self.started.send_replace(true);
        loop {
            from = self.relay(from).await;
            tokio::time::sleep(RESUME).await;
        }
    }

    /// The head of the log, asked until the log answers.
    async fn head(&self) -> Position {
        loop {
            match self.log.head().await {
                Ok(head) => return head,
                Err(err) => {
                    tracing::warn!(error = %err, "the shared log reader cannot start; trying again");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Sends what the log has after `from` until the subscription fails; returns the last
    /// position sent, where the next subscription starts.
    async fn relay(&self, from: Position) -> Position {
        let mut position = from;
        let mut events = self.log.subscribe_all(from).ready_chunks(self.batch);
        // Events read but not sent yet. While some projection has not taken the last batch or
        // is still applying it, the next one grows instead of queueing behind it: a busy log
        // then costs fewer, larger transactions, and an idle one no extra wait.
        let mut pending: Vec<RecordedEvent> = Vec::new();
        let mut recheck = tokio::time::interval(FEED_RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let mut failed = None;
            tokio::select! {
                chunk = events.next() => {
                    // The subscription only ends after an error; what was not sent is read
                    // again from `position`.
                    let Some(chunk) = chunk else { return position };
                    failed = take(chunk, &mut pending);
                }
                () = self.applying.done.notified(), if !pending.is_empty() => {}
                _ = recheck.tick(), if !pending.is_empty() => {}
            }
            if failed.is_some() || !self.busy(pending.len()) {
                position = self.send(&mut pending).unwrap_or(position);
            }
            if let Some(err) = failed {
                tracing::warn!(error = %err, "the shared log reader lost the log; resuming");
                return position;
            }
        }
    }

    /// Whether to let the pending batch grow: a projection has not taken the last batch or is
    /// still applying it, and the batch is not full.
    fn busy(&self, pending: usize) -> bool {
        (!self.batches.is_empty() || self.applying.any()) && pending < self.batch
    }

    /// Sends the pending events as one batch; the last position sent, if any.
    fn send(&self, pending: &mut Vec<RecordedEvent>) -> Option<Position> {
        let last = pending.last()?.position;
        // No receiver (every projection catching up, or none running) is fine: they read the
        // log themselves until they join.
        let _ = self
            .batches
            .send(Arc::new(Decoded::from_recorded(std::mem::take(pending))));
        Some(last)
    }
}

/// Moves the events of `chunk` into `pending` up to the first error, which it returns.
fn take(
    chunk: Vec<Result<RecordedEvent, eventlog::Error>>,
    pending: &mut Vec<RecordedEvent>,
) -> Option<eventlog::Error> {
    for item in chunk {
        match item {
            Ok(event) => pending.push(event),
            Err(err) => return Some(err),
        }
    }
    None
}
