//! A projection following the log live: large pages from its checkpoint until it is caught up,
//! then the shared reader's batches, until shutdown, a failure or a rebuild request.

use std::sync::Arc;
use std::time::Instant;

use eventlog::EventLog;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::applier::{Decoded, Outcome};
use super::context::Context;
use super::error::RuntimeError;
use super::feed::{Applying, LiveFeed};
use super::member::Member;
use super::rebuild::rebuild_one;
use super::report::Exit;

/// How following the shared reader ended.
enum Followed {
    Exit(Exit),
    Rebuild,
    Lagged,
}

/// Applies the log to the member's live tables until its task must end: large pages until
/// caught up, then the shared reader's batches; rebuilds when asked to.
pub(super) async fn follow<L: EventLog>(
    cx: &Context<L>,
    mut member: Member,
    stop: &CancellationToken,
    feed: &LiveFeed,
) -> Result<Exit, RuntimeError> {
    // Join only once the reader knows where it starts: had it taken the head after this
    // projection's catch-up ended, what came in between would reach neither.
    tokio::select! {
        () = feed.started() => {}
        () = stop.cancelled() => return Ok(Exit::Shutdown),
    }
    loop {
        // Join the shared reader before catching up: whatever it sends after the last page read
        // below is then in the receiver, and what came before, in that page (the reader started
        // at or before the end of that page).
        let (receiver, applying) = feed.subscribe();
        if let Some(exit) = catch_up(cx, &mut member, stop).await? {
            return Ok(exit);
        }
        match follow_shared(cx, &mut member, receiver, &applying, stop).await? {
            Followed::Exit(exit) => return Ok(exit),
            Followed::Rebuild => {
                let rebuilt = rebuild_one(cx, member, stop).await?;
                if let Some(exit) = rebuilt.exit {
                    return Ok(exit);
                }
                member = rebuilt.member;
            }
            // Fell behind the shared reader: catch up from the log again.
            Followed::Lagged => {}
        }
    }
}

/// Applies large pages to the live copy until the head (the reader's batches are small).
async fn catch_up<L: EventLog>(
    cx: &Context<L>,
    member: &mut Member,
    stop: &CancellationToken,
) -> Result<Option<Exit>, RuntimeError> {
    loop {
        let (outcome, short) = member.live_page(&cx.log, cx.options.catch_up_page).await?;
        if let Outcome::Stopped(failure) = outcome {
            return Ok(Some(Exit::Failed(failure)));
        }
        if short || stop.is_cancelled() {
            return Ok(None);
        }
    }
}

/// Applies the shared reader's batches to the live tables until shutdown, a failure, a rebuild
/// request, or until this projection falls too far behind the reader.
async fn follow_shared<L: EventLog>(
    cx: &Context<L>,
    member: &mut Member,
    mut receiver: broadcast::Receiver<Arc<Decoded>>,
    applying: &Arc<Applying>,
    stop: &CancellationToken,
) -> Result<Followed, RuntimeError> {
    let mut poll = tokio::time::interval(cx.options.request_poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let store_due = member.live.store_due();
        tokio::select! {
            () = stop.cancelled() => {
                member.live.store(&mut member.conn).await?;
                return Ok(Followed::Exit(Exit::Shutdown));
            }
            // Batches with nothing to apply moved the checkpoint in memory only.
            () = sleep_until_some(store_due), if store_due.is_some() => {
                member.live.store(&mut member.conn).await?;
            }
            _ = poll.tick() => {
                if member.rebuild_requested().await? {
                    tracing::info!(projection = member.name(), "rebuild requested");
                    return Ok(Followed::Rebuild);
                }
            }
            received = receiver.recv() => {
                if let Some(followed) = take_batch(member, received, applying).await? {
                    return Ok(followed);
                }
            }
        }
    }
}

/// Applies what the shared reader sent; `Some` when following must end.
async fn take_batch(
    member: &mut Member,
    received: Result<Arc<Decoded>, RecvError>,
    applying: &Arc<Applying>,
) -> Result<Option<Followed>, RuntimeError> {
    match received {
        // Batches overlap what the catch-up applied; the applier skips events at or before the
        // checkpoint.
        Ok(decoded) => {
            let _applying = applying.start();
            match member.live.apply(&mut member.conn, &decoded).await? {
                Outcome::Stopped(failure) => Ok(Some(Followed::Exit(Exit::Failed(failure)))),
                Outcome::Applied => Ok(None),
            }
        }
        Err(RecvError::Lagged(missed)) => {
            tracing::debug!(
                projection = member.name(),
                missed,
                "fell behind the shared log reader; catching up from the log"
            );
            Ok(Some(Followed::Lagged))
        }
        Err(RecvError::Closed) => Err(RuntimeError::FeedStopped),
    }
}

/// Sleeps until `at`; a `None` never comes (the select arm using it is disabled then).
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
