//! Where the delivery worker may put its checkpoint while jobs finish out of order.
//!
//! Events are read in log order, but jobs for different chats finish in any order. The
//! checkpoint may only cover an event once its job (and every earlier one) has finished, so
//! the tracker remembers, for each job still running, the position read just before it: the
//! safe checkpoint is that position for the oldest running job, or the last position read
//! when nothing runs.

use std::collections::BTreeMap;

use eventlog::Position;

/// Positions read and jobs still running.
#[derive(Debug)]
pub(super) struct Tracker {
    /// The last position read from the log.
    last_read: Position,
    /// Running jobs by position, each with the position read just before it.
    running: BTreeMap<Position, Position>,
}

impl Tracker {
    /// A tracker starting after `checkpoint`.
    pub(super) fn new(checkpoint: Position) -> Self {
        Tracker {
            last_read: checkpoint,
            running: BTreeMap::new(),
        }
    }

    /// An event needing no work was read.
    pub(super) fn passed(&mut self, position: Position) {
        self.last_read = self.last_read.max(position);
    }

    /// A job was started for the event at `position`.
    pub(super) fn started(&mut self, position: Position) {
        self.running.insert(position, self.last_read);
        self.passed(position);
    }

    /// The job for the event at `position` finished (its outcome is recorded, or it never
    /// will be).
    pub(super) fn finished(&mut self, position: Position) {
        self.running.remove(&position);
    }

    /// The last position read; a new subscription resumes after it.
    pub(super) fn last_read(&self) -> Position {
        self.last_read
    }

    /// The furthest the checkpoint may go: every event up to it is done.
    pub(super) fn safe(&self) -> Position {
        self.running
            .first_key_value()
            .map_or(self.last_read, |(_, before)| *before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(n: u64) -> Position {
        Position::from_parts(n, n)
    }

    #[test]
    fn the_checkpoint_waits_for_the_oldest_running_job() {
        let mut tracker = Tracker::new(p(1));
        tracker.passed(p(2));
        tracker.started(p(3));
        tracker.passed(p(4));
        tracker.started(p(5));
        tracker.passed(p(6));
        assert_eq!(tracker.safe(), p(2));

        // A later job finishing first does not move the checkpoint past the earlier one.
        tracker.finished(p(5));
        assert_eq!(tracker.safe(), p(2));

        tracker.finished(p(3));
        assert_eq!(tracker.safe(), p(6));
        assert_eq!(tracker.last_read(), p(6));
    }

    #[test]
    fn the_checkpoint_stops_just_before_a_running_job() {
        let mut tracker = Tracker::new(p(1));
        tracker.started(p(2));
        tracker.started(p(3));
        tracker.finished(p(2));
        assert_eq!(tracker.safe(), p(2));
        tracker.finished(p(3));
        assert_eq!(tracker.safe(), p(3));
    }

    #[test]
    fn with_nothing_read_the_checkpoint_stays_put() {
        let tracker = Tracker::new(p(7));
        assert_eq!(tracker.safe(), p(7));
    }
}
