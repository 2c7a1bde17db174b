//! Running projections: one task per projection, each owning the projection through a Postgres
//! advisory lock, catching up in large batches, following the log live, and rebuilding into
//! shadow tables when its version changes or a rebuild is requested.
//!
//! Ownership: a projection's task opens a connection of its own, takes the session advisory lock
//! of the projection on it, and does *every* write of the projection on that same connection.
//! When the process dies, its connection closes, Postgres releases the lock, and a task of
//! another process that was standing by takes it within `lock_retry`. Since the writes and the
//! lock share one connection, a process that lost its connection cannot write either: there is
//! no moment where two processes write one projection. (The checkpoint update also checks that
//! the checkpoint is still where this task left it, as a second guard.)

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use eventlog::{EventLog, Position, RecordedEvent};
use futures::StreamExt;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{Notify, broadcast, mpsc, watch};

use crate::applier::{Applier, Decoded, Outcome, is_infrastructure};
use crate::checkpoint::{self, Failure};
use crate::{Kept, Projection, Target, shadow};

/// How often a rebuilding projection brings its live copy up to date.
const LIVE_REFRESH_DURING_REBUILD: Duration = Duration::from_millis(250);

/// How the runtime batches, polls and waits. The defaults suit one Postgres on a small machine.
#[derive(Debug, Clone)]
pub struct RunnerOptions {
    /// Events per read (and per transaction) while catching up or rebuilding.
    pub catch_up_page: usize,
    /// Most events per transaction while following the log live.
    pub live_batch: usize,
    /// How often a standing-by process tries to take over a projection.
    pub lock_retry: Duration,
    /// How often a running projection checks for a rebuild request.
    pub request_poll: Duration,
    /// How long a swap waits for readers to release the live tables before trying again later.
    pub swap_lock_timeout: Duration,
    /// Pause before restarting a projection after a database or log error (doubles up to 30 s).
    pub restart_backoff: Duration,
    /// How many live batches the shared log reader keeps for a projection still applying
    /// earlier ones. A projection that falls further behind catches up from the log itself.
    pub live_feed_batches: usize,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            catch_up_page: 10_000,
            live_batch: 1_000,
            lock_retry: Duration::from_secs(2),
            request_poll: Duration::from_secs(1),
            swap_lock_timeout: Duration::from_secs(5),
            restart_backoff: Duration::from_secs(1),
            live_feed_batches: 256,
        }
    }
}

/// What a rebuild reports after each page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildProgress {
    /// The projections being rebuilt together.
    pub projections: Vec<String>,
    /// Events read from the log by this rebuild so far.
    pub events: u64,
    /// The position reached.
    pub position: Position,
    /// Whether the rebuild has caught up and swapped in.
    pub done: bool,
}

/// Called after each page of a rebuild (to draw a progress bar).
pub type ProgressFn = Arc<dyn Fn(&RebuildProgress) + Send + Sync>;

/// How following the shared reader ended.
enum Followed {
    Exit(Exit),
    Rebuild,
    Lagged,
}

/// How often the shared reader looks again whether its projections took the last batch (a
/// projection that finishes one also tells it at once).
const FEED_RECHECK: Duration = Duration::from_millis(2);

/// The one reader of the live log that the running projections share: it follows the log from
/// the head, decodes each batch once and hands it to every projection. Without it, each
/// projection would read and decode every event itself, six times over. A projection joins
/// it, catches up from its own checkpoint with the log, and then applies what the reader sends.
#[derive(Clone)]
struct LiveFeed {
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
struct Applying {
    count: AtomicUsize,
    /// Signalled each time a projection finishes a batch.
    done: Notify,
}

impl Applying {
    fn any(&self) -> bool {
        self.count.load(Ordering::Acquire) > 0
    }

    /// Counts one projection as applying until the guard drops.
    fn start(self: &Arc<Self>) -> ApplyingGuard {
        self.count.fetch_add(1, Ordering::AcqRel);
        ApplyingGuard(Arc::clone(self))
    }
}

struct ApplyingGuard(Arc<Applying>);

impl Drop for ApplyingGuard {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::AcqRel);
        self.0.done.notify_one();
    }
}

impl LiveFeed {
    /// Starts the reader; its task runs until aborted.
    fn start<L: EventLog>(
        log: L,
        batch: usize,
        kept: usize,
    ) -> (LiveFeed, tokio::task::AbortHandle) {
        let (batches, _) = broadcast::channel(kept.max(1));
        let applying = Arc::new(Applying::default());
        let (start, started) = watch::channel(false);
        let feed = LiveFeed {
            batches: batches.clone(),
            applying: Arc::clone(&applying),
            started,
        };
        let reader = tokio::spawn(async move {
            let mut position = None;
            loop {
                let from = match position {
                    Some(position) => position,
                    None => match log.head().await {
                        Ok(head) => head,
                        Err(err) => {
                            tracing::warn!(error = %err, "the shared log reader cannot start; trying again");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    },
                };
                position = Some(from);
                start.send_replace(true);
                let mut events = log.subscribe_all(from).ready_chunks(batch.max(1));
                // Events read but not sent yet. While some projection has not taken the last
                // batch or is still applying it, the next one grows instead of queueing
                // behind it: a busy log then costs fewer, larger transactions, and an idle one
                // no extra wait.
                let mut pending: Vec<RecordedEvent> = Vec::new();
                let mut recheck = tokio::time::interval(FEED_RECHECK);
                recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut failed = None;
                loop {
                    tokio::select! {
                        chunk = events.next() => {
                            // The subscription only ends after an error; what was not sent is
                            // read again from `position`.
                            let Some(chunk) = chunk else { break };
                            for item in chunk {
                                match item {
                                    Ok(event) => pending.push(event),
                                    Err(err) => {
                                        failed = Some(err);
                                        break;
                                    }
                                }
                            }
                        }
                        () = applying.done.notified(), if !pending.is_empty() => {}
                        _ = recheck.tick(), if !pending.is_empty() => {}
                    }
                    let busy =
                        (!batches.is_empty() || applying.any()) && pending.len() < batch.max(1);
                    if let Some(last) = pending.last().map(|e| e.position)
                        && (!busy || failed.is_some())
                    {
                        // No receiver (every projection catching up, or none running) is fine:
                        // they read the log themselves until they join.
                        let ready = std::mem::take(&mut pending);
                        let _ = batches.send(Arc::new(Decoded::from_recorded(ready)));
                        position = Some(last);
                    }
                    if let Some(err) = failed.take() {
                        tracing::warn!(error = %err, "the shared log reader lost the log; resuming");
                        break;
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        (feed, reader.abort_handle())
    }

    fn subscribe(&self) -> (broadcast::Receiver<Arc<Decoded>>, Arc<Applying>) {
        (self.batches.subscribe(), Arc::clone(&self.applying))
    }
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why the runtime could not go on: the database or the log failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The read-model database failed.
    #[error("read-model database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The event log failed.
    #[error("event log error: {0}")]
    Log(#[from] eventlog::Error),
}

/// Runs a set of projections against a log and a read-model database.
#[derive(Clone)]
pub struct ProjectionRunner<L> {
    log: L,
    pool: PgPool,
    projections: Vec<Arc<dyn Projection>>,
    options: RunnerOptions,
    progress: Option<ProgressFn>,
}

impl<L> std::fmt::Debug for ProjectionRunner<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectionRunner")
            .field("projections", &self.projections)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// How one projection's task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Shutdown was asked for.
    Shutdown,
    /// The projection stopped on an event it cannot apply.
    Failed(Failure),
}

impl<L: EventLog> ProjectionRunner<L> {
    /// A runner for `projections`, reading `log` and writing to `pool`'s database.
    pub fn new(log: L, pool: PgPool, projections: Vec<Arc<dyn Projection>>) -> Self {
        ProjectionRunner {
            log,
            pool,
            projections,
            options: RunnerOptions::default(),
            progress: None,
        }
    }

    /// Replaces the default options.
    #[must_use]
    pub fn with_options(mut self, options: RunnerOptions) -> Self {
        self.options = options;
        self
    }

    /// Reports each page of every rebuild to `progress`.
    #[must_use]
    pub fn with_progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Runs every projection, each in its own task, until `shutdown` completes. A projection
    /// that fails on an event stops alone; one whose database or log connection fails restarts
    /// from its checkpoint after a pause. Returns how each projection's task ended.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Vec<(String, Exit)> {
        let (stop, stopped) = watch::channel(false);
        let (feed, reader) = LiveFeed::start(
            self.log.clone(),
            self.options.live_batch,
            self.options.live_feed_batches,
        );
        let _reader = AbortOnDrop(reader);
        let mut tasks = tokio::task::JoinSet::new();
        for projection in &self.projections {
            let runner = self.clone();
            let projection = Arc::clone(projection);
            let stopped = stopped.clone();
            let feed = feed.clone();
            tasks.spawn(async move {
                let name = projection.name().to_owned();
                (name, runner.supervise(projection, stopped, &feed).await)
            });
        }
        let mut exits = Vec::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown, if !*stop.borrow() => {
                    let _ = stop.send(true);
                }
                joined = tasks.join_next() => match joined {
                    Some(Ok(exit)) => exits.push(exit),
                    Some(Err(err)) => tracing::error!(error = %err, "a projection task panicked"),
                    None => break,
                },
            }
        }
        exits
    }

    async fn supervise(
        &self,
        projection: Arc<dyn Projection>,
        mut stopped: watch::Receiver<bool>,
        feed: &LiveFeed,
    ) -> Exit {
        let name = projection.name();
        let mut backoff = self.options.restart_backoff;
        loop {
            match self.run_one(&projection, &mut stopped, feed).await {
                Ok(exit) => return exit,
                Err(err) => {
                    tracing::warn!(projection = name, error = %err, retry_in = ?backoff,
                        "projection interrupted; restarting from its checkpoint");
                }
            }
            if wait_or_stop(&mut stopped, backoff).await {
                return Exit::Shutdown;
            }
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }

    async fn run_one(
        &self,
        projection: &Arc<dyn Projection>,
        stopped: &mut watch::Receiver<bool>,
        feed: &LiveFeed,
    ) -> Result<Exit, RuntimeError> {
        let name = projection.name();
        let mut conn = connect(&self.pool).await?;
        let mut announced = false;
        while !try_lock(&mut conn, name).await? {
            if !announced {
                tracing::info!(
                    projection = name,
                    "another process runs this projection; standing by"
                );
                announced = true;
            }
            if wait_or_stop(stopped, self.options.lock_retry).await {
                return Ok(Exit::Shutdown);
            }
        }
        tracing::info!(projection = name, "running projection");
        let mut member = Member::open(projection, conn).await?;
        let needs_rebuild = member.live_version != projection.version()
            || checkpoint::rebuild_requested(&mut member.conn, name)
                .await?
                .is_some();
        if needs_rebuild {
            member = match self.rebuild_members(vec![member], stopped).await? {
                (_, Some(exit)) => return Ok(exit),
                (mut members, None) => members.pop().ok_or(sqlx::Error::PoolClosed)?,
            };
        } else {
            member.discard_shadow().await?;
        }
        self.follow(member, stopped, feed).await
    }

    /// Applies the log to the live tables: large pages until caught up, then the shared
    /// reader's batches.
    async fn follow(
        &self,
        mut member: Member,
        stopped: &mut watch::Receiver<bool>,
        feed: &LiveFeed,
    ) -> Result<Exit, RuntimeError> {
        // Join only once the reader knows where it starts: had it taken the head after this
        // projection's catch-up ended, what came in between would reach neither.
        let mut started = feed.started.clone();
        tokio::select! {
            _ = started.wait_for(|started| *started) => {}
            _ = stopped.changed() => return Ok(Exit::Shutdown),
        }
        loop {
            // Join the shared reader before catching up: whatever it sends after the last page
            // read below is then in the receiver, and what came before, in that page (the
            // reader started at or before the end of that page).
            let (receiver, applying) = feed.subscribe();
            // Catch up in large pages first: the reader's batches are small.
            loop {
                let (outcome, short) = self
                    .live_page(&mut member, self.options.catch_up_page)
                    .await?;
                if let Outcome::Stopped(failure) = outcome {
                    return Ok(Exit::Failed(failure));
                }
                if short || *stopped.borrow() {
                    break;
                }
            }
            match self
                .follow_shared(&mut member, receiver, &applying, stopped)
                .await?
            {
                Followed::Exit(exit) => return Ok(exit),
                Followed::Rebuild => {
                    member = match self.rebuild_members(vec![member], stopped).await? {
                        (_, Some(exit)) => return Ok(exit),
                        (mut members, None) => members.pop().ok_or(sqlx::Error::PoolClosed)?,
                    };
                }
                // Fell behind the shared reader: catch up from the log again.
                Followed::Lagged => {}
            }
        }
    }

    /// Applies the shared reader's batches to the live tables until shutdown, a failure, a
    /// rebuild request, or until this projection falls too far behind the reader.
    async fn follow_shared(
        &self,
        member: &mut Member,
        mut receiver: broadcast::Receiver<Arc<Decoded>>,
        applying: &Arc<Applying>,
        stopped: &mut watch::Receiver<bool>,
    ) -> Result<Followed, RuntimeError> {
        let projection = Arc::clone(&member.live.projection);
        let name = projection.name();
        let mut poll = tokio::time::interval(self.options.request_poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let store_due = member.live.store_due();
            tokio::select! {
                _ = stopped.changed() => {
                    member.live.store(&mut member.conn).await?;
                    return Ok(Followed::Exit(Exit::Shutdown));
                }
                // Batches with nothing to apply moved the checkpoint in memory only.
                () = sleep_until_some(store_due), if store_due.is_some() => {
                    member.live.store(&mut member.conn).await?;
                }
                _ = poll.tick() => {
                    if checkpoint::rebuild_requested(&mut member.conn, name).await?.is_some() {
                        tracing::info!(projection = name, "rebuild requested");
                        return Ok(Followed::Rebuild);
                    }
                }
                received = receiver.recv() => match received {
                    // Batches overlap what the catch-up applied; the applier skips events at
                    // or before the checkpoint.
                    Ok(decoded) => {
                        let _applying = applying.start();
                        if let Outcome::Stopped(failure) =
                            member.live.apply(&mut member.conn, &decoded).await?
                        {
                            return Ok(Followed::Exit(Exit::Failed(failure)));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(projection = name, missed, "fell behind the shared log reader; catching up from the log");
                        return Ok(Followed::Lagged);
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(RuntimeError::Log(eventlog::Error::Backend(
                            "the shared log reader stopped".into(),
                        )));
                    }
                }
            }
        }
    }

    /// Rebuilds `members` into shadow tables from one shared reader of the log, keeping their
    /// live tables current meanwhile, then swaps each in. Each member applies the pages on a
    /// task of its own, at its own pace (the reader stays a few pages ahead of the slowest), and
    /// swaps in as soon as it has caught up. Returns the members with `Some(exit)` when their
    /// tasks must end (shutdown, or a member failed), `None` when every member swapped in.
    async fn rebuild_members(
        &self,
        mut members: Vec<Member>,
        stopped: &watch::Receiver<bool>,
    ) -> Result<(Vec<Member>, Option<Exit>), RuntimeError> {
        let names: Vec<String> = members
            .iter()
            .map(|m| m.live.projection.name().to_owned())
            .collect();
        for member in &mut members {
            member.prepare_shadow().await?;
        }
        let start = members
            .iter()
            .map(|m| m.shadow.position)
            .min()
            .unwrap_or(Position::START);
        tracing::info!(projections = ?names, from = %start, "rebuilding into shadow tables");
        let reached = Arc::new(std::sync::Mutex::new(vec![(start, 0_u64); members.len()]));
        let mut feeds = Vec::new();
        let mut tasks = Vec::new();
        for (index, member) in members.into_iter().enumerate() {
            let (feed, pages) = mpsc::channel(4);
            feeds.push(feed);
            let runner = self.clone();
            let stopped = stopped.clone();
            let reached = Arc::clone(&reached);
            let names = names.clone();
            tasks.push(tokio::spawn(async move {
                runner
                    .rebuild_member(member, pages, stopped, move |position, events| {
                        let Ok(mut reached) = reached.lock() else {
                            return None;
                        };
                        reached[index] = (position, events);
                        let slowest = reached.iter().min().copied().unwrap_or((start, 0));
                        Some(RebuildProgress {
                            projections: names.clone(),
                            events: slowest.1,
                            position: slowest.0,
                            done: false,
                        })
                    })
                    .await
            }));
        }

        let mut pages = read_ahead(self.log.clone(), start, self.options.catch_up_page);
        let mut read_error = None;
        while let Some(page) = pages.recv().await {
            match page {
                Ok(page) => {
                    let page = Arc::new(page);
                    let mut listening = Vec::with_capacity(feeds.len());
                    for feed in feeds {
                        // A member that stopped early (failure, shutdown) no longer listens.
                        if feed.send(Arc::clone(&page)).await.is_ok() {
                            listening.push(feed);
                        }
                    }
                    feeds = listening;
                    if feeds.is_empty() || page.1 || page.0.poison.is_some() {
                        break;
                    }
                }
                Err(err) => {
                    read_error = Some(err);
                    break;
                }
            }
        }
        drop(feeds);

        let mut members = Vec::new();
        let mut exit = None;
        let mut failed = None;
        for task in tasks {
            match task.await {
                Ok(Ok((member, member_exit))) => {
                    members.push(member);
                    exit = exit.or(member_exit);
                }
                Ok(Err(err)) => failed = Some(err),
                Err(err) => {
                    failed = Some(RuntimeError::Database(sqlx::Error::Protocol(format!(
                        "a rebuild task ended abnormally: {err}"
                    ))));
                }
            }
        }
        if let Some(err) = read_error {
            return Err(err.into());
        }
        if let Some(err) = failed {
            return Err(err);
        }
        if exit.is_none() {
            if let Some(progress) = &self.progress {
                let (position, events) = reached
                    .lock()
                    .ok()
                    .and_then(|reached| reached.iter().max().copied())
                    .unwrap_or((start, 0));
                progress(&RebuildProgress {
                    projections: names.clone(),
                    events,
                    position: members
                        .iter()
                        .map(|m| m.live.position)
                        .max()
                        .unwrap_or(position),
                    done: true,
                });
            }
            tracing::info!(projections = ?names, "rebuilt and swapped in");
        }
        Ok((members, exit))
    }

    /// One member of a rebuild: applies the shared pages to its shadow copy, keeps its live copy
    /// current, then finishes and swaps in.
    async fn rebuild_member(
        &self,
        mut member: Member,
        mut pages: mpsc::Receiver<Arc<(Decoded, bool)>>,
        mut stopped: watch::Receiver<bool>,
        reached: impl Fn(Position, u64) -> Option<RebuildProgress>,
    ) -> Result<(Member, Option<Exit>), RuntimeError> {
        let mut events = 0_u64;
        loop {
            let Some(page) = pages.recv().await else {
                // The reader stopped before the head: shutdown or a read error (reported by
                // the caller). The shadow copy stays and the next rebuild resumes it.
                return Ok((member, Some(Exit::Shutdown)));
            };
            let (decoded, caught_up) = &*page;
            if let Outcome::Stopped(failure) =
                member.shadow.apply(&mut member.conn, decoded).await?
            {
                return Ok((member, Some(Exit::Failed(failure))));
            }
            self.keep_live_current(&mut member).await?;
            events += decoded.events.len() as u64;
            if let (Some(progress), Some(report)) =
                (&self.progress, reached(member.shadow.position, events))
            {
                progress(&report);
            }
            if *stopped.borrow() {
                return Ok((member, Some(Exit::Shutdown)));
            }
            if *caught_up {
                break;
            }
        }
        let projection = Arc::clone(&member.live.projection);
        shadow::build_deferred_indexes(&mut member.conn, projection.as_ref()).await?;
        loop {
            match self.swap(&mut member).await? {
                Swap::Done => return Ok((member, None)),
                Swap::Failed(failure) => return Ok((member, Some(Exit::Failed(failure)))),
                Swap::Busy => {
                    tracing::info!(
                        projection = projection.name(),
                        "readers hold the live tables; swapping again shortly"
                    );
                    self.keep_live_current(&mut member).await?;
                    if wait_or_stop(&mut stopped, Duration::from_millis(200)).await {
                        return Ok((member, Some(Exit::Shutdown)));
                    }
                }
            }
        }
    }

    /// While a rebuild runs, readers keep seeing new events in the live tables.
    async fn keep_live_current(&self, member: &mut Member) -> Result<(), RuntimeError> {
        // A few times a second is current enough for readers, and leaves the rebuild alone.
        let fresh = member
            .live_refreshed
            .is_some_and(|at| at.elapsed() < LIVE_REFRESH_DURING_REBUILD);
        if member.live_stopped || fresh {
            return Ok(());
        }
        member.live_refreshed = Some(std::time::Instant::now());
        let (outcome, _) = self.live_page(member, self.options.live_batch).await?;
        if let Outcome::Stopped(_) = outcome {
            // The rebuild goes on: its swap replaces the stuck live copy.
            member.live_stopped = true;
        }
        Ok(())
    }

    /// Reads up to `limit` events after the live checkpoint and applies them to the live copy.
    /// Also says whether the page was short (the live copy reached the head).
    async fn live_page(
        &self,
        member: &mut Member,
        limit: usize,
    ) -> Result<(Outcome, bool), RuntimeError> {
        let page = self.log.read_all(member.live.position, limit).await?;
        let short = page.events.len() < limit;
        let decoded = Decoded::from_recorded(page.events);
        let outcome = member.live.apply(&mut member.conn, &decoded).await?;
        Ok((outcome, short))
    }

    /// Finishes the shadow copy under the live tables' lock and swaps it in.
    async fn swap(&self, member: &mut Member) -> Result<Swap, RuntimeError> {
        let projection = Arc::clone(&member.live.projection);
        let name = projection.name();
        let mut tx = member.conn.begin().await?;
        match shadow::lock_live(&mut tx, projection.as_ref(), self.options.swap_lock_timeout).await
        {
            Ok(()) => {}
            Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55P03") => {
                tx.rollback().await?;
                return Ok(Swap::Busy);
            }
            Err(err) => return Err(err.into()),
        }
        // The last events, applied while readers wait: usually a handful.
        let mut position = member.shadow.position;
        let mut seen = 0_u64;
        loop {
            let page = self
                .log
                .read_all(position, self.options.catch_up_page)
                .await?;
            let short = page.events.len() < self.options.catch_up_page;
            let decoded = Decoded::from_recorded(page.events);
            if !decoded.events.is_empty() {
                if let Err(err) = projection
                    .apply(&mut tx, Target::Shadow, &decoded.events)
                    .await
                {
                    tx.rollback().await?;
                    if let crate::ApplyError::Database(db) = err
                        && is_infrastructure(&db)
                    {
                        return Err(db.into());
                    }
                    // Let the applier find the faulty event, one per transaction.
                    return match member.shadow.apply(&mut member.conn, &decoded).await? {
                        Outcome::Stopped(failure) => Ok(Swap::Failed(failure)),
                        Outcome::Applied => Ok(Swap::Busy),
                    };
                }
                seen += decoded.events.len() as u64;
                position = decoded.last_position().unwrap_or(position);
            }
            if let Some(poison) = decoded.poison {
                tx.rollback().await?;
                checkpoint::record_failure(&mut member.conn, name, Target::Shadow, &poison).await?;
                return Ok(Swap::Failed(poison));
            }
            if short {
                break;
            }
        }
        shadow::swap_in(&mut tx, projection.as_ref()).await?;
        let (tx_id, seq) = checkpoint::to_parts(position);
        sqlx::query(
            "update projection_checkpoints live set
                 version = $2, position_tx = $3, position_seq = $4,
                 events_seen = shadow.events_seen + $5, started_at = shadow.started_at,
                 failed_position_tx = null, failed_position_seq = null, failed_event_id = null,
                 failed_event_type = null, failed_error = null, failed_at = null,
                 rebuild_requested_at = null, updated_at = now()
             from projection_checkpoints shadow
             where live.projection = $1 and live.target = 'live'
               and shadow.projection = $1 and shadow.target = 'shadow'",
        )
        .bind(name)
        .bind(i32::try_from(projection.version()).unwrap_or(i32::MAX))
        .bind(tx_id)
        .bind(seq)
        .bind(i64::try_from(seen).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "delete from projection_checkpoints where projection = $1 and target = 'shadow'",
        )
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        member.live.position = position;
        member.live.unstored = None;
        // The live tables are now the shadow copy: what either copy kept is out of date.
        member.live.kept = Kept::default();
        member.live_version = projection.version();
        member.live_stopped = false;
        member.shadow.position = Position::START;
        member.shadow.kept = Kept::default();
        Ok(Swap::Done)
    }
}

enum Swap {
    Done,
    Busy,
    Failed(Failure),
}

/// One projection held by this process: its connection (which holds the lock) and both copies.
pub(crate) struct Member {
    conn: PgConnection,
    live: Applier,
    live_version: u32,
    live_stopped: bool,
    /// When the live copy last caught up during a rebuild.
    live_refreshed: Option<std::time::Instant>,
    shadow: Applier,
}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Member")
            .field("live", &self.live)
            .field("shadow", &self.shadow)
            .finish_non_exhaustive()
    }
}

impl Member {
    /// Takes a projection whose lock `conn` holds; creates its live checkpoint on first run.
    async fn open(
        projection: &Arc<dyn Projection>,
        mut conn: PgConnection,
    ) -> Result<Self, RuntimeError> {
        let name = projection.name();
        let live = match checkpoint::load(&mut conn, name, Target::Live).await? {
            Some(live) => live,
            None => {
                // First run: the migrations created the tables empty; fill them in place.
                checkpoint::reset(&mut conn, name, Target::Live, projection.version()).await?;
                checkpoint::load(&mut conn, name, Target::Live)
                    .await?
                    .ok_or_else(|| sqlx::Error::RowNotFound)?
            }
        };
        Ok(Member {
            conn,
            live: Applier::new(Arc::clone(projection), Target::Live, live.position),
            live_version: live.version,
            live_stopped: false,
            live_refreshed: None,
            shadow: Applier::new(Arc::clone(projection), Target::Shadow, Position::START),
        })
    }

    /// Resumes an interrupted rebuild of the same version, or starts a fresh shadow copy.
    async fn prepare_shadow(&mut self) -> Result<(), RuntimeError> {
        let projection = Arc::clone(&self.shadow.projection);
        let existing = checkpoint::load(&mut self.conn, projection.name(), Target::Shadow).await?;
        match existing {
            Some(shadow) if shadow.version == projection.version() => {
                tracing::info!(projection = projection.name(), from = %shadow.position,
                    "resuming an interrupted rebuild");
                self.shadow.position = shadow.position;
                self.shadow.kept = Kept::default();
                self.shadow.unstored = None;
            }
            _ => {
                let mut tx = self.conn.begin().await?;
                shadow::create(&mut tx, projection.as_ref()).await?;
                checkpoint::reset(
                    &mut tx,
                    projection.name(),
                    Target::Shadow,
                    projection.version(),
                )
                .await?;
                tx.commit().await?;
                self.shadow.position = Position::START;
                self.shadow.kept = Kept::default();
                self.shadow.unstored = None;
            }
        }
        Ok(())
    }

    /// Drops a shadow copy left by a rebuild that is no longer wanted.
    async fn discard_shadow(&mut self) -> Result<(), RuntimeError> {
        let projection = Arc::clone(&self.shadow.projection);
        if checkpoint::load(&mut self.conn, projection.name(), Target::Shadow)
            .await?
            .is_some()
        {
            let mut tx = self.conn.begin().await?;
            shadow::drop_all(&mut tx, projection.as_ref()).await?;
            sqlx::query(
                "delete from projection_checkpoints where projection = $1 and target = 'shadow'",
            )
            .bind(projection.name())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// Reads pages ahead of the appliers, decoding them on another task. Each item says whether the
/// page was the last full one (the reader reached the head of the log).
fn read_ahead<L: EventLog>(
    log: L,
    from: Position,
    page_size: usize,
) -> mpsc::Receiver<Result<(Decoded, bool), eventlog::Error>> {
    // Two stages on two tasks, so fetching a page and decoding the previous one overlap.
    let (fetched, mut to_decode) = mpsc::channel(2);
    tokio::spawn(async move {
        let mut position = from;
        loop {
            let page = match log.read_all(position, page_size).await {
                Ok(page) => page,
                Err(err) => {
                    let _ = fetched.send(Err(err)).await;
                    return;
                }
            };
            let caught_up = page.events.len() < page_size;
            position = page.next;
            if fetched.send(Ok((page.events, caught_up))).await.is_err() || caught_up {
                return;
            }
        }
    });
    let (decoded, receive) = mpsc::channel(2);
    tokio::spawn(async move {
        while let Some(page) = to_decode.recv().await {
            let page = page.map(|(events, caught_up)| (Decoded::from_recorded(events), caught_up));
            let last = match &page {
                Ok((decoded, caught_up)) => *caught_up || decoded.poison.is_some(),
                Err(_) => true,
            };
            if decoded.send(page).await.is_err() || last {
                return;
            }
        }
    });
    receive
}

/// Sleeps until `at`; a `None` never comes (the select arm using it is disabled then).
async fn sleep_until_some(at: Option<std::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// The advisory lock key of a projection: a constant class for Ledgerdesk projections and a
/// hash of the name.
/// A connection of a projection's own. Nothing on it waits for the WAL flush: read models are
/// derived data whose checkpoint commits with them (see `applier.rs`), and a checkpoint moved
/// alone is only a position a restart reads again from.
async fn connect(pool: &PgPool) -> Result<PgConnection, sqlx::Error> {
    let options = (*pool.connect_options())
        .clone()
        .options([("synchronous_commit", "off")]);
    PgConnection::connect_with(&options).await
}

fn lock_key(name: &str) -> (i32, i32) {
    // FNV-1a, 32 bits: stable across builds and platforms.
    let mut hash: u32 = 0x811c_9dc5;
    for byte in name.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    (0x4c44_5052, i32::from_ne_bytes(hash.to_ne_bytes()))
}

async fn try_lock(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    let (class, object) = lock_key(name);
    sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(class)
        .bind(object)
        .fetch_one(conn)
        .await
}

/// Waits `pause`; `true` when shutdown was asked for meanwhile (or before).
async fn wait_or_stop(stopped: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        _ = stopped.changed() => true,
        () = tokio::time::sleep(pause) => *stopped.borrow(),
    }
}

impl<L: EventLog> ProjectionRunner<L> {
    /// Rebuilds this runner's projections now, from this process, with one shared reader of the
    /// log, even when their version has not changed. Projections another process is running are
    /// asked to rebuild themselves instead (see [`checkpoint::request_rebuild`]); their names are
    /// returned so the caller can follow them.
    ///
    /// # Errors
    /// When the database or the log fails.
    pub async fn rebuild_now(&self) -> Result<RebuildReport, RuntimeError> {
        let runner = self;
        let projections = &self.projections;
        let mut members = Vec::new();
        let mut elsewhere = Vec::new();
        for projection in projections {
            let mut conn = connect(&runner.pool).await?;
            if try_lock(&mut conn, projection.name()).await? {
                members.push(Member::open(projection, conn).await?);
            } else {
                checkpoint::request_rebuild(&runner.pool, projection.name()).await?;
                elsewhere.push(projection.name().to_owned());
            }
        }
        let (_stop, stopped) = watch::channel(false);
        let (members, exit) = if members.is_empty() {
            (members, None)
        } else {
            runner.rebuild_members(members, &stopped).await?
        };
        for member in members {
            let _ = member.conn.close().await;
        }
        Ok(RebuildReport {
            failed: match exit {
                Some(Exit::Failed(failure)) => Some(failure),
                _ => None,
            },
            requested_elsewhere: elsewhere,
        })
    }
}

/// What [`rebuild_now`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    /// The event a projection stopped on, if one did.
    pub failed: Option<Failure>,
    /// Projections run by another process, asked to rebuild themselves.
    pub requested_elsewhere: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("tickets"), lock_key("tickets"));
        assert_ne!(lock_key("tickets").1, lock_key("customers").1);
        assert_eq!(lock_key("tickets").0, 0x4c44_5052);
    }
}
