//! The shutdown signal as the runner's tasks see it.

use std::time::Duration;

use tokio::sync::watch;

/// Whether shutdown was asked for. Dropping the sender counts as asking.
#[derive(Debug, Clone)]
pub(super) struct Stop(watch::Receiver<bool>);

impl Stop {
    pub(super) fn new(stopped: watch::Receiver<bool>) -> Self {
        Stop(stopped)
    }

    /// Whether shutdown was asked for.
    pub(super) fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once shutdown is asked for.
    pub(super) async fn asked(&mut self) {
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }

    /// Waits `pause`; `true` when shutdown was asked for meanwhile (or before).
    pub(super) async fn pause(&mut self, pause: Duration) -> bool {
        if self.is_set() {
            return true;
        }
        tokio::select! {
            () = self.asked() => true,
            () = tokio::time::sleep(pause) => self.is_set(),
        }
    }
}
