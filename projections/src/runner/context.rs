//! What every part of the runner shares: the log, the options and the progress callback.

use std::time::Duration;

use super::report::ProgressFn;

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

/// The log a runner reads, how it works, and whom it tells of rebuilds.
#[derive(Clone)]
pub(super) struct Context<L> {
    pub(super) log: L,
    pub(super) options: RunnerOptions,
    pub(super) progress: Option<ProgressFn>,
}
