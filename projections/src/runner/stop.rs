//! The shutdown signal as the runner's tasks see it: a [`CancellationToken`], cancelled once
//! shutdown is asked for.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Waits `pause`; `true` when shutdown was asked for meanwhile (or before).
pub(super) async fn pause(stop: &CancellationToken, pause: Duration) -> bool {
    tokio::select! {
        biased;
        () = stop.cancelled() => true,
        () = tokio::time::sleep(pause) => stop.is_cancelled(),
    }
}
