//! Waking subscribers: of this process at once after each of its commits, of other processes
//! through one coalesced `NOTIFY` (see "Waking subscribers" in the parent module).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, DropGuard};
use uuid::Uuid;

/// The channel on which appends are announced to other processes.
const CHANNEL: &str = "ledgerdesk_events";

/// The shortest time between two NOTIFYs: the most an announcement to other processes waits.
const NOTIFY_GAP: Duration = Duration::from_millis(5);

const LISTEN_LONGEST_PAUSE: Duration = Duration::from_secs(10);

/// The pauses before listening for notifications again after the channel failed: 100 ms,
/// doubling.
const LISTEN_PAUSES: ExponentialBuilder = ExponentialBuilder::new()
    .with_min_delay(Duration::from_millis(100))
    .with_factor(2.0)
    .with_max_delay(LISTEN_LONGEST_PAUSE)
    .without_max_times();

#[derive(Debug, Default)]
struct NotifyWanted {
    pending: AtomicBool,
    signal: Notify,
}

/// The wake-ups of one log: shared by its reads, its lone appends and its batches. The
/// background tasks stop when it is dropped (or on [`Wakeups::stop`]).
#[derive(Debug)]
pub(super) struct Wakeups {
    pool: PgPool,
    /// Bumped after every local commit and every notification: wakes subscriptions.
    wake: watch::Sender<u64>,
    /// Asks the notifier task to send a NOTIFY.
    notify_wanted: Arc<NotifyWanted>,
    /// The payload of this log's NOTIFYs, so its listener can tell its own from others': its
    /// own commits woke its subscriptions already.
    notify_token: String,
    notifier: OnceLock<()>,
    listener: OnceLock<()>,
    /// Cancelled by [`Wakeups::stop`], or when the wake-ups are dropped: background tasks
    /// stop then.
    stop: DropGuard,
}

impl Wakeups {
    pub(super) fn new(pool: PgPool) -> Self {
        Wakeups {
            pool,
            wake: watch::Sender::new(0),
            notify_wanted: Arc::default(),
            notify_token: Uuid::new_v4().simple().to_string(),
            notifier: OnceLock::new(),
            listener: OnceLock::new(),
            stop: CancellationToken::new().drop_guard(),
        }
    }

    /// Stops the background tasks (the notifier and the listener).
    pub(super) fn stop(&self) {
        self.stop.token().cancel();
    }

    /// A receiver of the wake-ups, for one subscription.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
        self.wake.subscribe()
    }

    /// Called after a commit: wakes local subscriptions now and other processes soon.
    pub(super) fn announce(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        self.notifier.get_or_init(|| {
            let wanted = Arc::clone(&self.notify_wanted);
            let pool = self.pool.clone();
            let token = self.notify_token.clone();
            let stop = self.stop.token().clone();
            tokio::spawn(notifier(pool, wanted, token, stop));
        });
        self.notify_wanted.pending.store(true, Ordering::Release);
        self.notify_wanted.signal.notify_one();
    }

    /// Starts the listener of other processes' appends, once.
    pub(super) fn start_listener(&self) {
        self.listener.get_or_init(|| {
            let pool = self.pool.clone();
            let wake = self.wake.clone();
            let token = self.notify_token.clone();
            let stop = self.stop.token().clone();
            tokio::spawn(listener(pool, wake, token, stop));
        });
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
