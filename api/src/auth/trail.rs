//! The sign-in part of the panel's audit trail ([`domain::audit`]): sign-ins, refused
//! sign-ins and sign-outs, appended to `audit-<agent>` (or `audit-anonymous` when a refused
//! email names no account).
//!
//! A flood of refused sign-ins must not become a flood of events: refusals are counted per
//! account and address, and recorded at most once per [`REFUSAL_WINDOW`] for each pair: the
//! first refusal of a window is recorded with the count of the refusals since the pair's last
//! record. The counts are kept for at most [`REFUSAL_KEYS`] pairs (the least used are
//! forgotten first); what a forgotten pair had not recorded yet is lost, never the first
//! refusal of a window.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use quick_cache::sync::Cache;

/// The window in which one account and address pair records at most one refusal.
pub(crate) const REFUSAL_WINDOW: Duration = Duration::from_secs(60);

/// Most account and address pairs whose refusals are counted.
const REFUSAL_KEYS: usize = 10_000;

/// The refusals of one pair since its last record.
#[derive(Debug, Clone, Copy)]
struct Counted {
    /// When the pair's last record was made.
    recorded: Instant,
    /// Refusals since, not yet recorded.
    unrecorded: u32,
    /// When the first of them happened.
    since: DateTime<Utc>,
}

/// Counts refused sign-ins per (account key, address) and says when one is to be recorded.
pub(crate) struct Refusals {
    pairs: Cache<(u64, Option<IpAddr>), Counted>,
}

impl std::fmt::Debug for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refusals")
            .field("pairs", &self.pairs.len())
            .finish()
    }
}

impl Refusals {
    pub(crate) fn new() -> Self {
        Refusals {
            pairs: Cache::new(REFUSAL_KEYS),
        }
    }

    /// Counts a refusal of `pair` at `now`: `Some((attempts, since))` when it is to be recorded
    /// (the first of a window), counting the refusals not recorded before it.
    pub(crate) fn refused(
        &self,
        pair: (u64, Option<IpAddr>),
        now: Instant,
        at: DateTime<Utc>,
    ) -> Option<(u32, DateTime<Utc>)> {
        let counted = self.pairs.get(&pair);
        match counted {
            Some(counted) if now.saturating_duration_since(counted.recorded) < REFUSAL_WINDOW => {
                let since = if counted.unrecorded == 0 {
                    at
                } else {
                    counted.since
                };
                self.pairs.insert(
                    pair,
                    Counted {
                        unrecorded: counted.unrecorded.saturating_add(1),
                        since,
                        ..counted
                    },
                );
                None
            }
            _ => {
                let (attempts, since) = match counted {
                    Some(counted) if counted.unrecorded > 0 => {
                        (counted.unrecorded.saturating_add(1), counted.since)
                    }
                    _ => (1, at),
                };
                self.pairs.insert(
                    pair,
                    Counted {
                        recorded: now,
                        unrecorded: 0,
                        since: at,
                    },
                );
                Some((attempts, since))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_refusals_is_recorded_once_per_window_with_its_count() {
        let refusals = Refusals::new();
        let start = Instant::now();
        let at = Utc::now();
        let pair = (7, None);
        assert_eq!(refusals.refused(pair, start, at), Some((1, at)));
        let second = at + chrono::Duration::seconds(1);
        for n in 0..999 {
            let now = start + Duration::from_millis(n);
            assert_eq!(refusals.refused(pair, now, second), None);
        }
        // Another pair is counted apart.
        assert_eq!(refusals.refused((8, None), start, at), Some((1, at)));
        // The next window's first refusal records the 999 before it and itself.
        let later = at + chrono::Duration::seconds(61);
        assert_eq!(
            refusals.refused(pair, start + REFUSAL_WINDOW, later),
            Some((1_000, second))
        );
        assert_eq!(
            refusals.refused(pair, start + REFUSAL_WINDOW + Duration::from_secs(1), later),
            None
        );
    }
}
