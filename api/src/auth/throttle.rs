//! Growing delays after failed sign-ins, kept in this process's memory.
//!
//! Following OWASP's authentication guidance, failures slow the one who fails rather than
//! lock the account behind a wall anyone can raise: each key (an address, an account and
//! address pair, an account, a second-factor account) may fail `per_minute` times a minute
//! for free; every failure beyond that locks the key for a delay that doubles with each
//! further one (1 s, 2 s, 4 s, …) up to a cap. Failures leak away at `per_minute` a minute,
//! and once they have all leaked away the doubling starts over. Attempts made while a key is
//! locked are refused without being counted, and a success forgets the key's failures.
//!
//! The memory is bounded: when full, a key not failing again goes before one that keeps
//! failing (see `quick_cache`). Each instance counts on its own.
//!
//! Not `governor`, which the delivery worker uses: its limiters take a cell on every check
//! (here only failures count, and a check must not count) and have no delay that grows with
//! the failures or a way to forget one key on success.

use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use quick_cache::unsync::Cache;

/// The first delay after the free failures; each further failure doubles it.
const FIRST_DELAY: Duration = Duration::from_secs(1);

/// Failures of one kind of key, with growing delays.
#[derive(Debug)]
pub(crate) struct Backoff<K: Eq + Hash> {
    records: Mutex<Cache<K, Record>>,
    /// Free failures a minute, and the rate at which failures leak away.
    per_minute: f64,
    max_delay: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    /// Failures not yet leaked away.
    level: f64,
    /// When `level` was last brought up to date.
    at: Instant,
    /// Delays imposed since the level was last empty.
    strikes: u32,
    locked_until: Option<Instant>,
}

impl Record {
    fn leak(&mut self, now: Instant, per_minute: f64) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level - elapsed * per_minute / 60.0).max(0.0);
        self.at = now;
        if self.level <= 0.0 && self.locked_until.is_none_or(|until| until <= now) {
            self.strikes = 0;
            self.locked_until = None;
        }
    }
}

impl<K: Eq + Hash + Clone> Backoff<K> {
    /// `per_minute` free failures a minute (at least one), delays up to `max_delay`, at most
    /// `capacity` keys remembered.
    pub(crate) fn new(per_minute: u32, max_delay: Duration, capacity: usize) -> Self {
        Backoff {
            records: Mutex::new(Cache::new(capacity.max(1))),
            per_minute: f64::from(per_minute.max(1)),
            max_delay: max_delay.max(FIRST_DELAY),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Cache<K, Record>) -> T) -> T {
        // Each holder replaces whole records, so a panicking one leaves the cache intact.
        let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut records)
    }

    /// `Err(wait)` while `key` is locked.
    pub(crate) fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        self.with(|records| match records.get(key) {
            Some(Record {
                locked_until: Some(until),
                ..
            }) if *until > now => Err(until.saturating_duration_since(now)),
            _ => Ok(()),
        })
    }

    /// Counts a failure of `key`; returns the delay it now imposes, if any, and whether it is
    /// the first delay since the key's failures last leaked away.
    pub(crate) fn failed(&self, key: &K, now: Instant) -> Option<Duration> {
        self.failed_first(key, now).map(|(delay, _)| delay)
    }

    /// As [`Backoff::failed`], also telling whether the delay is the first of its series.
    pub(crate) fn failed_first(&self, key: &K, now: Instant) -> Option<(Duration, bool)> {
        let per_minute = self.per_minute;
        let max_delay = self.max_delay;
        self.with(|records| {
            let mut record = records.get(key).copied().unwrap_or(Record {
                level: 0.0,
                at: now,
                strikes: 0,
                locked_until: None,
            });
            record.leak(now, per_minute);
            record.level += 1.0;
            let delay = (record.level > per_minute).then(|| {
                record.strikes = record.strikes.saturating_add(1);
                let doubled = FIRST_DELAY
                    .checked_mul(1_u32 << (record.strikes - 1).min(20))
                    .unwrap_or(max_delay);
                let delay = doubled.min(max_delay);
                record.locked_until = Some(now + delay);
                (delay, record.strikes == 1)
            });
            records.insert(key.clone(), record);
            delay
        })
    }

    /// Forgets the failures of `key` (it just succeeded).
    pub(crate) fn succeeded(&self, key: &K) {
        self.with(|records| {
            records.remove(key);
        });
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly on purpose")]
mod tests {
    use super::*;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn failures_beyond_the_free_ones_double_the_delay_up_to_the_cap() {
        let backoff = Backoff::new(3, secs(10), 100);
        let start = Instant::now();
        let key = "pair";
        for _ in 0..3 {
            assert_eq!(backoff.failed(&key, start), None);
        }
        assert_eq!(backoff.check(&key, start), Ok(()));
        // Each further failure, made as soon as the last delay ends, waits twice as long.
        let mut now = start;
        let mut delays = Vec::new();
        for _ in 0..6 {
            let delay = backoff.failed(&key, now).unwrap();
            assert_eq!(backoff.check(&key, now), Err(delay));
            delays.push(delay.as_secs());
            now += delay;
        }
        assert_eq!(delays, [1, 2, 4, 8, 10, 10]);
        // A key is locked alone.
        assert_eq!(backoff.check(&"other", start), Ok(()));
    }

    #[test]
    fn failures_leak_away_and_the_doubling_starts_over() {
        let backoff = Backoff::new(6, secs(60), 100);
        let start = Instant::now();
        let key = 7_u8;
        for _ in 0..6 {
            assert_eq!(backoff.failed(&key, start), None);
        }
        assert_eq!(backoff.failed(&key, start), Some(secs(1)));
        assert_eq!(
            backoff.failed_first(&key, start + secs(1)),
            Some((secs(2), false))
        );
        // Eight failures leak away at six a minute in 80 seconds.
        let later = start + secs(81);
        assert_eq!(backoff.check(&key, later), Ok(()));
        for n in 0..6 {
            assert_eq!(backoff.failed(&key, later), None, "free failure {n}");
        }
        assert_eq!(backoff.failed_first(&key, later), Some((secs(1), true)));
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let backoff = Backoff::new(1, secs(60), 100);
        let now = Instant::now();
        assert_eq!(backoff.failed(&"k", now), None);
        assert_eq!(backoff.failed(&"k", now), Some(secs(1)));
        backoff.succeeded(&"k");
        assert_eq!(backoff.check(&"k", now), Ok(()));
        assert_eq!(backoff.failed(&"k", now), None);
    }
}
