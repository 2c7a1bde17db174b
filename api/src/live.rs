//! The live hub: one follower of the log per process, fanned out to every subscription.
//!
//! A subscription never follows the log itself. One task follows `subscribe_all` from the head
//! and publishes each event on a broadcast channel ([`LiveHub::events`]); a second task turns
//! ticket events into changed `tickets` rows once, after the read model has applied them
//! ([`LiveHub::tickets`]), so a thousand open ticket lists cost one query per batch, not a
//! thousand. [`follow`] gives a subscriber a gap-free, duplicate-free feed from any cursor:
//! the log up to now, then the hub, falling back to the log when the subscriber lags.
//!
//! A ticket list that lags (its receiver lost batches) catches up the same way: it asks
//! [`LiveHub::tickets_since`] for the current rows of every ticket with an event after the last
//! batch it applied, read from the log, and skips the batches that catch-up already covers.
//!
//! The hub starts with the first subscription and its tasks stop when the last handle to it
//! (held by the API state) is dropped. It owns no SQL of its own: it reads the log, and the
//! read models through their query modules (`projections::tickets::queries`).
//!
//! The hub also remembers agents' current state for the feeds' permission checks
//! ([`LiveHub::agent`], see [`agents`]): its follower forgets an agent before it passes on an
//! event of their stream.

pub mod agents;

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use eventlog::postgres::PostgresLog;
use eventlog::{EventLog, Position, RecordedEvent};
use futures::{Stream, StreamExt};
use projections::tickets::TicketRow;
use projections::tickets::queries as tickets;
use sqlx::PgPool;
use tokio::sync::{OnceCell, broadcast};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How many events (or ticket batches) a slow subscriber may fall behind before it lags and
/// re-reads the log.
const CHANNEL_CAPACITY: usize = 4_096;
/// Events read from the log per page while catching up.
const CATCH_UP_PAGE: usize = 500;
/// Most events folded into one ticket batch.
const TICKET_BATCH: usize = 512;
/// Longest the ticket feed waits for the `tickets` read model before loading rows anyway.
const PROJECTION_WAIT: Duration = Duration::from_secs(10);
/// Longest pause between two looks at the `tickets` checkpoint while waiting: the hub is a
/// single waiter, and every millisecond here is a millisecond of every subscriber's latency.
const PROJECTION_POLL: Duration = Duration::from_millis(2);
/// Pause before a failed follower starts again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Ticket rows changed by the events up to `position`, read after the `tickets` read model
/// applied them.
#[derive(Debug)]
pub struct TicketBatch {
    /// The last event the batch covers.
    pub position: Position,
    /// The changed tickets as the read model now has them, shared by every live list that
    /// sends them (a thousand subscribers do not copy a row a thousand times).
    pub tickets: Vec<Arc<TicketRow>>,
}

/// A handle to the process's hub. Cheap to clone; the tasks stop when the last clone drops.
#[derive(Clone)]
pub struct LiveHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("started", &self.inner.started.initialized())
            .finish_non_exhaustive()
    }
}

struct Inner {
    log: PostgresLog,
    pool: PgPool,
    capacity: usize,
    started: OnceCell<Started>,
    agents: Arc<agents::AgentStates>,
    /// Cancelled when the hub stops: open sockets close, telling clients to connect again.
    stopping: CancellationToken,
}

struct Started {
    events: broadcast::Sender<Arc<RecordedEvent>>,
    tickets: broadcast::Sender<Arc<TicketBatch>>,
    tasks: Vec<AbortHandle>,
}

impl Inner {
    fn abort_tasks(&self) {
        if let Some(started) = self.started.get() {
            for task in &started.tasks {
                task.abort();
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

impl LiveHub {
    /// A hub over `log`; nothing runs until the first subscription.
    pub fn new(log: PostgresLog) -> Self {
        LiveHub::with_capacity(log, CHANNEL_CAPACITY)
    }

    /// A hub whose channels hold `capacity` events (or ticket batches) for a slow subscriber
    /// before it lags. Tests make it tiny to force a lag.
    ///
    /// # Panics
    /// When `capacity` is 0.
    pub fn with_capacity(log: PostgresLog, capacity: usize) -> Self {
        assert!(capacity > 0, "a live hub needs room for at least one item");
        LiveHub {
            inner: Arc::new(Inner {
                pool: log.pool().clone(),
                log,
                capacity,
                started: OnceCell::new(),
                agents: Arc::default(),
                stopping: CancellationToken::new(),
            }),
        }
    }

    /// Stops following the log (subscriptions end). Call it before closing the pool at
    /// shutdown, or the hub's tasks keep asking a closed pool and log that they failed.
    pub fn stop(&self) {
        self.inner.stopping.cancel();
        self.inner.abort_tasks();
    }

    /// Cancelled once the hub stops (the server is shutting down): what an open socket
    /// watches to close itself rather than stay open without feeds.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stopping.clone()
    }

    /// The log the hub follows.
    pub fn log(&self) -> &PostgresLog {
        &self.inner.log
    }

    async fn started(&self) -> Result<&Started, eventlog::Error> {
        self.inner
            .started
            .get_or_try_init(|| {
                start(
                    self.inner.log.clone(),
                    self.inner.pool.clone(),
                    self.inner.capacity,
                    self.inner.agents.clone(),
                )
            })
            .await
    }

    /// The agent's state as of the log, as `fresh` as asked (see [`agents`]): what a feed
    /// checks an item against.
    ///
    /// # Errors
    /// When the hub cannot start or the agent's stream cannot be read.
    pub async fn agent(
        &self,
        agent: Uuid,
        fresh: agents::Freshness,
    ) -> Result<Arc<agents::AgentSnapshot>, agents::AgentReadError> {
        // Started first: only then does the follower forget what changes.
        self.started().await?;
        self.inner.agents.get(&self.inner.log, agent, fresh).await
    }

    /// Every event committed from now on (at least from the moment the hub started), in log
    /// order. Subscribe before reading the log to catch up: see [`follow`].
    ///
    /// # Errors
    /// When the hub cannot start (the log head cannot be read).
    pub async fn events(&self) -> Result<broadcast::Receiver<Arc<RecordedEvent>>, eventlog::Error> {
        Ok(self.started().await?.events.subscribe())
    }

    /// The position of the last committed event (see [`PostgresLog::last_committed`]): every
    /// cursor this log handed out is at or before it.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub async fn last_committed(&self) -> Result<Position, eventlog::Error> {
        self.inner.log.last_committed().await
    }

    /// The log's head: every event at or before it is committed, and none can still commit
    /// below it (see [`PostgresLog::head`]).
    ///
    /// # Errors
    /// When the log cannot be read.
    pub async fn head(&self) -> Result<Position, eventlog::Error> {
        self.inner.log.head().await
    }

    /// Every event after `after` (from now on with `None`), gap-free and without duplicates:
    /// see [`follow`].
    ///
    /// # Errors
    /// When the hub cannot start or the log head cannot be read.
    pub async fn feed(
        &self,
        after: Option<Position>,
    ) -> Result<
        impl Stream<Item = Result<Arc<RecordedEvent>, eventlog::Error>> + Send + 'static + use<>,
        eventlog::Error,
    > {
        let receiver = self.events().await?;
        let after = match after {
            Some(after) => after,
            None => self.inner.log.head().await?,
        };
        Ok(follow(self.inner.log.clone(), receiver, after))
    }

    /// Changed ticket rows, in batches, from now on, and the log head read just before the
    /// receiver was taken: should the receiver lag before its first batch, catching up with
    /// [`LiveHub::tickets_since`] from that head misses nothing that happened since.
    ///
    /// # Errors
    /// When the hub cannot start or the log head cannot be read.
    pub async fn tickets(
        &self,
    ) -> Result<(Position, broadcast::Receiver<Arc<TicketBatch>>), eventlog::Error> {
        let started = self.started().await?;
        let head = self.inner.log.head().await?;
        Ok((head, started.tickets.subscribe()))
    }

    /// The current rows of every ticket with an event after `after`, once the `tickets` read
    /// model has applied the log that far: what a ticket list missed while it lagged. The
    /// batch's position is the last event read (`after` when there is none).
    ///
    /// # Errors
    /// When the log or the read model cannot be read.
    pub async fn tickets_since(&self, after: Position) -> Result<TicketBatch, CatchUpError> {
        let mut ids = BTreeSet::new();
        let mut at = after;
        loop {
            let page = self.inner.log.read_all(at, CATCH_UP_PAGE).await?;
            let Some(last) = page.events.last() else {
                break;
            };
            at = last.position;
            ids.extend(page.events.iter().filter_map(|e| ticket_of(&e.stream_id)));
        }
        if ids.is_empty() {
            return Ok(TicketBatch {
                position: at,
                tickets: Vec::new(),
            });
        }
        let waited = projections::wait_polling(
            &self.inner.pool,
            &["tickets"],
            at,
            PROJECTION_WAIT,
            PROJECTION_POLL,
        )
        .await;
        if let Err(error) = waited {
            tracing::warn!(%error, position = %at, "live hub: the tickets read model is behind; catching up with rows as they are");
        }
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let mut tickets = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(TICKET_BATCH) {
            tickets.extend(
                tickets::by_ids(&self.inner.pool, chunk)
                    .await?
                    .into_iter()
                    .map(Arc::new),
            );
        }
        Ok(TicketBatch {
            position: at,
            tickets,
        })
    }
}

/// Why a lagging ticket list could not catch up.
#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    /// Reading the log failed.
    #[error("cannot read the log: {0}")]
    Log(#[from] eventlog::Error),
    /// Loading the rows failed.
    #[error("cannot load tickets: {0}")]
    ReadModel(#[from] sqlx::Error),
}

async fn start(
    log: PostgresLog,
    pool: PgPool,
    capacity: usize,
    agents: Arc<agents::AgentStates>,
) -> Result<Started, eventlog::Error> {
    // The head is read before any receiver exists, so every event a subscriber can miss on the
    // hub is already readable in the log when it catches up.
    let head = log.head().await?;
    let (events, _) = broadcast::channel(capacity);
    let (tickets, _) = broadcast::channel(capacity);
    let feed = tokio::spawn(feed_tickets(
        log.clone(),
        pool,
        events.clone(),
        events.subscribe(),
        head,
        tickets.clone(),
    ));
    let follower = tokio::spawn(follow_log(log, head, events.clone(), agents));
    Ok(Started {
        events,
        tickets,
        tasks: vec![follower.abort_handle(), feed.abort_handle()],
    })
}

/// Publishes every event after `head`, restarting from the last one published on a failure.
async fn follow_log(
    log: PostgresLog,
    head: Position,
    events: broadcast::Sender<Arc<RecordedEvent>>,
    states: Arc<agents::AgentStates>,
) {
    let mut at = head;
    loop {
        let mut stream = log.subscribe_all(at);
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => {
                    at = event.position;
                    // Before anyone sees this event or a later one.
                    states.followed(event.position, &event.stream_id);
                    // No receiver is fine: nobody listens right now.
                    let _ = events.send(Arc::new(event));
                }
                Err(error) => {
                    tracing::warn!(%error, position = %at, "live hub: following the log failed; retrying");
                    break;
                }
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Turns ticket events into changed rows: one wait for the read model and one load per batch.
async fn feed_tickets(
    log: PostgresLog,
    pool: PgPool,
    events: broadcast::Sender<Arc<RecordedEvent>>,
    first: broadcast::Receiver<Arc<RecordedEvent>>,
    head: Position,
    tickets: broadcast::Sender<Arc<TicketBatch>>,
) {
    let mut at = head;
    let mut receiver = Some(first);
    loop {
        let receiver = receiver.take().unwrap_or_else(|| events.subscribe());
        let mut batches =
            std::pin::pin!(follow(log.clone(), receiver, at).ready_chunks(TICKET_BATCH));
        while let Some(batch) = batches.next().await {
            let mut ids = BTreeSet::new();
            let mut failed = false;
            for item in batch {
                match item {
                    Ok(event) => {
                        at = event.position;
                        if let Some(id) = ticket_of(&event.stream_id) {
                            ids.insert(id);
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, position = %at, "live hub: the ticket feed failed; retrying");
                        failed = true;
                        break;
                    }
                }
            }
            if !ids.is_empty() && tickets.receiver_count() > 0 {
                publish_tickets(&pool, at, &ids.into_iter().collect::<Vec<_>>(), &tickets).await;
            }
            if failed {
                break;
            }
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn publish_tickets(
    pool: &PgPool,
    position: Position,
    ids: &[Uuid],
    tickets: &broadcast::Sender<Arc<TicketBatch>>,
) {
    // While the database is away the batch waits for it: skipping it would leave every live
    // list without these changes.
    loop {
        let waited = projections::wait_polling(
            pool,
            &["tickets"],
            position,
            PROJECTION_WAIT,
            PROJECTION_POLL,
        )
        .await;
        if let Err(error) = waited {
            tracing::warn!(%error, %position, "live hub: the tickets read model is behind; sending rows as they are");
        }
        match tickets::by_ids(pool, ids).await {
            Ok(rows) if !rows.is_empty() => {
                let _ = tickets.send(Arc::new(TicketBatch {
                    position,
                    tickets: rows.into_iter().map(Arc::new).collect(),
                }));
            }
            Ok(_) => {}
            Err(error) if eventlog::is_unavailable(&error) => {
                tracing::warn!(%error, "live hub: the database is unavailable; loading changed tickets again");
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            Err(error) => tracing::warn!(%error, "live hub: cannot load changed tickets"),
        }
        return;
    }
}

/// The ticket a stream belongs to, for `ticket-<uuid>`.
pub fn ticket_of(stream: &str) -> Option<Uuid> {
    stream.strip_prefix("ticket-")?.parse().ok()
}

struct Follow {
    log: PostgresLog,
    receiver: broadcast::Receiver<Arc<RecordedEvent>>,
    last: Position,
    catching_up: bool,
    backlog: VecDeque<Arc<RecordedEvent>>,
    failed: bool,
}

/// Every event after `after`, each exactly once and in log order, from a `receiver` taken from
/// [`LiveHub::events`] *before* `after` was read or chosen.
///
/// It reads the log from `after` until it is caught up, then takes events from the hub,
/// skipping those it already gave (the hub's order is the log's). When the subscriber falls
/// so far behind that the channel dropped events, it reads the log again from the last event
/// given. While the database cannot be reached it waits and reads again; the stream ends after
/// its first other error.
pub fn follow(
    log: PostgresLog,
    receiver: broadcast::Receiver<Arc<RecordedEvent>>,
    after: Position,
) -> impl Stream<Item = Result<Arc<RecordedEvent>, eventlog::Error>> + Send + 'static {
    let state = Follow {
        log,
        receiver,
        last: after,
        catching_up: true,
        backlog: VecDeque::new(),
        failed: false,
    };
    futures::stream::unfold(state, Follow::next)
}

impl Follow {
    async fn next(mut self) -> Option<(Result<Arc<RecordedEvent>, eventlog::Error>, Self)> {
        if self.failed {
            return None;
        }
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.last = event.position;
                return Some((Ok(event), self));
            }
            if self.catching_up {
                match self.log.read_all(self.last, CATCH_UP_PAGE).await {
                    Ok(page) if page.events.is_empty() => self.catching_up = false,
                    Ok(page) => self.backlog.extend(page.events.into_iter().map(Arc::new)),
                    // The database is away: read again from the same place once it is back,
                    // rather than end the feed.
                    Err(error) if error.is_unavailable() => {
                        tracing::debug!(%error, "live subscriber: the log is unavailable; reading again");
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    Err(error) => {
                        self.failed = true;
                        return Some((Err(error), self));
                    }
                }
                continue;
            }
            match self.receiver.recv().await {
                Ok(event) if event.position > self.last => {
                    self.last = event.position;
                    return Some((Ok(event), self));
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "live subscriber lagged; reading the log");
                    self.catching_up = true;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}
