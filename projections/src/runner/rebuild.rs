//! Rebuilds: projections rebuilt together into shadow tables from one shared reader of the
//! log, keeping their live tables current meanwhile, each swapped in once caught up.
//!
//! The reader decodes each page once, on a task of its own, and stays a few pages ahead of the
//! slowest member. Each member applies the pages on a task of its own, at its own pace, and
//! swaps in as soon as it has caught up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventlog::{EventLog, Position};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::applier::{Decoded, Outcome};
use super::context::Context;
use super::error::RuntimeError;
use super::member::Member;
use super::report::{Exit, ProgressFn, RebuildProgress};
use super::shadow;
use super::stop::pause;
use super::swap::{Swap, swap};

/// Pages the reader keeps ready for each member.
const PAGES_AHEAD: usize = 4;

/// Pause before a swap that readers kept out tries again.
const SWAP_RETRY: Duration = Duration::from_millis(200);

/// A page of the log, decoded, and whether it reached the head.
type Page = Arc<(Decoded, bool)>;

/// A member after its rebuild: swapped in (`exit` is `None`), or with the reason its task must
/// end (shutdown, or it stopped on an event; the shadow copy stays for the next rebuild).
pub(super) struct Rebuilt {
    pub(super) member: Member,
    pub(super) exit: Option<Exit>,
}

/// Rebuilds `members` together. Returns each member (in the order given) with how its rebuild
/// ended.
pub(super) async fn rebuild<L: EventLog>(
    cx: &Context<L>,
    mut members: Vec<Member>,
    stop: &CancellationToken,
) -> Result<Vec<Rebuilt>, RuntimeError> {
    for member in &mut members {
        member.prepare_shadow().await?;
    }
    let names: Vec<String> = members.iter().map(|m| m.name().to_owned()).collect();
    let start = members
        .iter()
        .map(|m| m.shadow.position)
        .min()
        .unwrap_or(Position::START);
    tracing::info!(projections = ?names, from = %start, "rebuilding into shadow tables");
    let progress = Arc::new(Progress::new(names, start, cx.progress.clone()));
    let (feeds, tasks) = spawn_members(cx, members, &progress, stop);
    let read = share_pages(cx.log.clone(), start, cx.options.catch_up_page, feeds).await;
    let rebuilt = join_members(tasks).await;
    read?;
    let rebuilt = rebuilt?;
    if rebuilt.iter().all(|r| r.exit.is_none()) {
        progress.done(&rebuilt);
        tracing::info!(projections = ?progress.names, "rebuilt and swapped in");
    }
    Ok(rebuilt)
}

/// Rebuilds one member alone.
pub(super) async fn rebuild_one<L: EventLog>(
    cx: &Context<L>,
    member: Member,
    stop: &CancellationToken,
) -> Result<Rebuilt, RuntimeError> {
    let mut rebuilt = rebuild(cx, vec![member], stop).await?;
    // Provably one: `rebuild` gives back each member it was given, or an error.
    Ok(rebuilt.swap_remove(0))
}

/// A member's task, named for its errors.
struct MemberTask {
    name: String,
    handle: JoinHandle<Result<Rebuilt, RuntimeError>>,
}

/// Starts a task per member, each fed pages through its own channel.
fn spawn_members<L: EventLog>(
    cx: &Context<L>,
    members: Vec<Member>,
    progress: &Arc<Progress>,
    stop: &CancellationToken,
) -> (Vec<mpsc::Sender<Page>>, Vec<MemberTask>) {
    let mut feeds = Vec::with_capacity(members.len());
    let mut tasks = Vec::with_capacity(members.len());
    for (index, member) in members.into_iter().enumerate() {
        let (feed, pages) = mpsc::channel(PAGES_AHEAD);
        feeds.push(feed);
        let name = member.name().to_owned();
        let task = rebuild_member(
            cx.clone(),
            member,
            pages,
            stop.clone(),
            Reached {
                progress: Arc::clone(progress),
                index,
            },
        );
        tasks.push(MemberTask {
            name,
            handle: tokio::spawn(task),
        });
    }
    (feeds, tasks)
}

/// Reads the log from `start` and sends each page to every member still listening, until the
/// head, a page that stops on an event, or no member listens. A read error is returned once the
/// members have been let go.
async fn share_pages<L: EventLog>(
    log: L,
    start: Position,
    page_size: usize,
    mut feeds: Vec<mpsc::Sender<Page>>,
) -> Result<(), eventlog::Error> {
    let mut pages = read_ahead(log, start, page_size);
    while let Some(page) = pages.recv().await {
        let page = Arc::new(page?);
        let mut listening = Vec::with_capacity(feeds.len());
        for feed in feeds {
            // A member that stopped early (failure, shutdown) no longer listens.
            if feed.send(Arc::clone(&page)).await.is_ok() {
                listening.push(feed);
            }
        }
        feeds = listening;
        let (decoded, caught_up) = &*page;
        if feeds.is_empty() || *caught_up || decoded.poison.is_some() {
            break;
        }
    }
    Ok(())
}

/// Waits for every member's task. The first error wins, but every task is waited for.
async fn join_members(tasks: Vec<MemberTask>) -> Result<Vec<Rebuilt>, RuntimeError> {
    let mut rebuilt = Vec::with_capacity(tasks.len());
    let mut failed = None;
    for task in tasks {
        match task.handle.await {
            Ok(Ok(member)) => rebuilt.push(member),
            Ok(Err(err)) => failed = Some(err),
            Err(err) => failed = Some(RuntimeError::from_join(&task.name, &err)),
        }
    }
    match failed {
        Some(err) => Err(err),
        None => Ok(rebuilt),
    }
}

/// One member of a rebuild: applies the shared pages to its shadow copy, keeps its live copy
/// current, then finishes and swaps in.
async fn rebuild_member<L: EventLog>(
    cx: Context<L>,
    mut member: Member,
    mut pages: mpsc::Receiver<Page>,
    stop: CancellationToken,
    reached: Reached,
) -> Result<Rebuilt, RuntimeError> {
    let mut events = 0_u64;
    loop {
        let Some(page) = pages.recv().await else {
            // The reader stopped before the head: shutdown or a read error (reported by the
            // caller). The shadow copy stays and the next rebuild resumes it.
            return Ok(ended(member, Exit::Shutdown));
        };
        let (decoded, caught_up) = &*page;
        if let Outcome::Stopped(failure) = member.shadow.apply(&mut member.conn, decoded).await? {
            return Ok(ended(member, Exit::Failed(failure)));
        }
        member
            .keep_live_current(&cx.log, cx.options.live_batch)
            .await?;
        events += decoded.events.len() as u64;
        reached.report(member.shadow.position, events);
        if stop.is_cancelled() {
            return Ok(ended(member, Exit::Shutdown));
        }
        if *caught_up {
            break;
        }
    }
    let projection = member.projection();
    shadow::build_deferred_indexes(&mut member.conn, projection.as_ref()).await?;
    swap_when_free(&cx, member, &stop).await
}

/// Swaps the member in, trying again while readers hold the live tables.
async fn swap_when_free<L: EventLog>(
    cx: &Context<L>,
    mut member: Member,
    stop: &CancellationToken,
) -> Result<Rebuilt, RuntimeError> {
    let options = &cx.options;
    loop {
        match swap(
            &mut member,
            &cx.log,
            options.catch_up_page,
            options.swap_lock_timeout,
        )
        .await?
        {
            Swap::Done => return Ok(Rebuilt { member, exit: None }),
            Swap::Failed(failure) => return Ok(ended(member, Exit::Failed(failure))),
            Swap::Busy => {
                tracing::info!(
                    projection = member.name(),
                    "readers hold the live tables; swapping again shortly"
                );
                member
                    .keep_live_current(&cx.log, options.live_batch)
                    .await?;
                if pause(stop, SWAP_RETRY).await {
                    return Ok(ended(member, Exit::Shutdown));
                }
            }
        }
    }
}

fn ended(member: Member, exit: Exit) -> Rebuilt {
    Rebuilt {
        member,
        exit: Some(exit),
    }
}

/// Where the members of one rebuild are, for the progress callback: it is told where the
/// slowest member is.
struct Progress {
    names: Vec<String>,
    start: Position,
    /// Per member: the position reached and the events applied.
    reached: Mutex<Vec<(Position, u64)>>,
    report: Option<ProgressFn>,
}

impl Progress {
    fn new(names: Vec<String>, start: Position, report: Option<ProgressFn>) -> Self {
        let reached = Mutex::new(vec![(start, 0); names.len()]);
        Progress {
            names,
            start,
            reached,
            report,
        }
    }

    /// Member `index` reached `position` after `events` events.
    fn member_reached(&self, index: usize, position: Position, events: u64) {
        let Ok(mut reached) = self.reached.lock() else {
            return;
        };
        reached[index] = (position, events);
        let (position, events) = reached.iter().min().copied().unwrap_or((self.start, 0));
        drop(reached);
        self.tell(position, events, false);
    }

    /// Every member swapped in.
    fn done(&self, rebuilt: &[Rebuilt]) {
        let (position, events) = self
            .reached
            .lock()
            .ok()
            .and_then(|reached| reached.iter().max().copied())
            .unwrap_or((self.start, 0));
        let position = rebuilt
            .iter()
            .map(|r| r.member.live.position)
            .max()
            .unwrap_or(position);
        self.tell(position, events, true);
    }

    fn tell(&self, position: Position, events: u64, done: bool) {
        if let Some(report) = &self.report {
            report(&RebuildProgress {
                projections: self.names.clone(),
                events,
                position,
                done,
            });
        }
    }
}

/// One member's handle on the rebuild's [`Progress`].
struct Reached {
    progress: Arc<Progress>,
    index: usize,
}

impl Reached {
    fn report(&self, position: Position, events: u64) {
        self.progress.member_reached(self.index, position, events);
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
    let (fetched, to_decode) = mpsc::channel(2);
    tokio::spawn(fetch_pages(log, from, page_size, fetched));
    let (decoded, receive) = mpsc::channel(2);
    tokio::spawn(decode_pages(to_decode, decoded));
    receive
}

type Fetched = Result<(Vec<eventlog::RecordedEvent>, bool), eventlog::Error>;

/// Reads pages from `from` until the head (or an error), sending each with whether it was short.
async fn fetch_pages<L: EventLog>(
    log: L,
    from: Position,
    page_size: usize,
    fetched: mpsc::Sender<Fetched>,
) {
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
}

/// Decodes the fetched pages, up to the last one, the first that stops on an event, or an error.
async fn decode_pages(
    mut fetched: mpsc::Receiver<Fetched>,
    decoded: mpsc::Sender<Result<(Decoded, bool), eventlog::Error>>,
) {
    while let Some(page) = fetched.recv().await {
        let page = page.map(|(events, caught_up)| (Decoded::from_recorded(events), caught_up));
        let last = match &page {
            Ok((decoded, caught_up)) => *caught_up || decoded.poison.is_some(),
            Err(_) => true,
        };
        if decoded.send(page).await.is_err() || last {
            return;
        }
    }
}
