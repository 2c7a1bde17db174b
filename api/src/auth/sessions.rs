//! A short-lived, per-process memory of agents' session state (epoch and forced password
//! change) and of whether each sign-in (refresh-token family) is still open, so that an access
//! token is not checked against the database on every request.
//!
//! # The bound on a stale answer
//!
//! An entry is trusted for at most its TTL (`AuthConfig::session_check_ttl`) after the query that read it *started*
//! (not after it answered), so an answer is never older than the bound. Every write of this
//! process that ends sessions (password change or reset, logout everywhere, deactivation or
//! role change, removed credentials) calls [`SessionCache::forget`] after it commits: from then
//! on this process refuses the old tokens at once. A read that began before such a write and
//! ends after it cannot put its stale answer back: `forget` bumps a generation and a read only
//! stores its answer when the generation did not move while it ran. Writes made by another
//! process (a second instance, the CLI) reach this one within the TTL.
//!
//! The memory is bounded: when it is full, a `quick_cache` cache drops an agent not asked
//! about again rather than one whose requests keep coming. An entry past its TTL is not
//! answered; it stays until it is read again (and replaced) or dropped for room.
//!
//! It owns no SQL: the caller reads the database and hands the answer in.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use quick_cache::unsync::Cache;
use uuid::Uuid;

/// Most agents remembered at once.
const CAPACITY: usize = 10_000;

/// An agent's session state as last read: `(epoch, must_change_password)`.
pub(crate) type SessionState = (i32, bool);

/// What an access token is checked against: the agent's session state (`None`: unknown agent)
/// and whether its sign-in is still open.
pub(crate) type TokenState = (Option<SessionState>, bool);

/// The memory. Cheap to share behind the auth service's `Arc`.
#[derive(Debug)]
pub(crate) struct SessionCache {
    ttl: Duration,
    inner: Mutex<Entries>,
}

/// One lock over the generation and the cache, so that checking the one and storing in the
/// other is a single step.
#[derive(Debug)]
struct Entries {
    /// Bumped by every `forget` and `forget_sign_in`: a read that saw another generation when
    /// it began is not kept.
    generation: u64,
    by_agent: Cache<Uuid, Entry>,
    /// Sign-in (refresh-token family) → whether it is still open, and when that was read.
    by_sign_in: Cache<Uuid, SignInEntry>,
}

#[derive(Debug, Clone, Copy)]
struct SignInEntry {
    /// When the query that read it started.
    read_at: Instant,
    open: bool,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the query that read it started.
    read_at: Instant,
    state: Option<SessionState>,
}

/// A read of the database in progress: where it began.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lookup {
    started: Instant,
    generation: u64,
}

impl SessionCache {
    /// A memory trusting what it read for `ttl` (zero: never trusted, every request reads).
    pub(crate) fn new(ttl: Duration) -> Self {
        SessionCache {
            ttl,
            inner: Mutex::new(Entries {
                generation: 0,
                by_agent: Cache::new(CAPACITY),
                by_sign_in: Cache::new(CAPACITY),
            }),
        }
    }

    /// The remembered state of `agent` and of their sign-in `sign_in` if both are fresh enough
    /// (`(None, _)`: remembered as unknown), else a [`Lookup`] to pass to
    /// [`SessionCache::remember`] after reading.
    pub(crate) fn get(&self, agent: Uuid, sign_in: Uuid) -> Result<TokenState, Lookup> {
        let now = Instant::now();
        let entries = self.lock();
        let fresh = |read_at: Instant| now.saturating_duration_since(read_at) < self.ttl;
        match (
            entries.by_agent.get(&agent),
            entries.by_sign_in.get(&sign_in),
        ) {
            (Some(agent), Some(sign_in)) if fresh(agent.read_at) && fresh(sign_in.read_at) => {
                Ok((agent.state, sign_in.open))
            }
            _ => Err(Lookup {
                started: now,
                generation: entries.generation,
            }),
        }
    }

    /// Keeps what a read begun at `lookup` found, unless sessions were ended meanwhile.
    pub(crate) fn remember(&self, agent: Uuid, sign_in: Uuid, lookup: Lookup, state: TokenState) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        if entries.generation != lookup.generation {
            return;
        }
        entries.by_agent.insert(
            agent,
            Entry {
                read_at: lookup.started,
                state: state.0,
            },
        );
        entries.by_sign_in.insert(
            sign_in,
            SignInEntry {
                read_at: lookup.started,
                open: state.1,
            },
        );
    }

    /// Drops what is known of the sign-in `sign_in`; call after a write that ended it has
    /// committed.
    pub(crate) fn forget_sign_in(&self, sign_in: Uuid) {
        let mut entries = self.lock();
        entries.generation = entries.generation.wrapping_add(1);
        entries.by_sign_in.remove(&sign_in);
    }

    /// Drops what is known of `agent`; call after a write that changed their session state
    /// has committed.
    pub(crate) fn forget(&self, agent: Uuid) {
        let mut entries = self.lock();
        entries.generation = entries.generation.wrapping_add(1);
        entries.by_agent.remove(&agent);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves at worst an entry missing or one more dropped:
        // keep using it.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_state_is_answered_until_forgotten() {
        let cache = SessionCache::new(Duration::from_secs(3600));
        let (agent, sign_in) = (Uuid::now_v7(), Uuid::now_v7());
        let Err(lookup) = cache.get(agent, sign_in) else {
            panic!("nothing is known yet")
        };
        cache.remember(agent, sign_in, lookup, (Some((3, false)), true));
        assert_eq!(
            cache.get(agent, sign_in).ok(),
            Some((Some((3, false)), true))
        );
        assert!(cache.get(agent, Uuid::now_v7()).is_err(), "another sign-in");
        cache.forget(agent);
        assert!(cache.get(agent, sign_in).is_err());
    }

    #[test]
    fn an_ended_sign_in_is_forgotten_and_a_read_overlapping_it_is_not_kept() {
        let cache = SessionCache::new(Duration::from_secs(3600));
        let (agent, sign_in) = (Uuid::now_v7(), Uuid::now_v7());
        let Err(lookup) = cache.get(agent, sign_in) else {
            panic!("nothing is known yet")
        };
        cache.remember(agent, sign_in, lookup, (Some((3, false)), true));
        cache.forget_sign_in(sign_in);
        let Err(lookup) = cache.get(agent, sign_in) else {
            panic!("the sign-in was forgotten")
        };
        cache.forget_sign_in(sign_in);
        cache.remember(agent, sign_in, lookup, (Some((3, false)), true));
        assert!(cache.get(agent, sign_in).is_err());
    }

    #[test]
    fn a_read_that_overlapped_a_forget_is_not_kept() {
        let cache = SessionCache::new(Duration::from_secs(3600));
        let (agent, sign_in) = (Uuid::now_v7(), Uuid::now_v7());
        let Err(lookup) = cache.get(agent, sign_in) else {
            panic!("nothing is known yet")
        };
        // The password changes while the read is on its way back with the old epoch.
        cache.forget(agent);
        cache.remember(agent, sign_in, lookup, (Some((3, false)), true));
        assert!(cache.get(agent, sign_in).is_err());
    }

    #[test]
    fn a_full_memory_keeps_its_bound_and_the_latest_answer() {
        let cache = SessionCache::new(Duration::from_secs(3600));
        let agents: Vec<Uuid> = (0..CAPACITY + 100).map(|_| Uuid::now_v7()).collect();
        for (epoch, agent) in agents.iter().enumerate() {
            let Err(lookup) = cache.get(*agent, *agent) else {
                panic!("nothing is known yet")
            };
            cache.remember(*agent, *agent, lookup, (Some((epoch as i32, false)), true));
        }
        assert!(cache.lock().by_agent.len() <= CAPACITY);
        assert!(cache.lock().by_sign_in.len() <= CAPACITY);
        let last = *agents.last().expect("agents were made");
        assert_eq!(
            cache.get(last, last).ok(),
            Some((Some(((CAPACITY + 99) as i32, false)), true))
        );
    }

    #[test]
    fn a_zero_ttl_remembers_nothing() {
        let cache = SessionCache::new(Duration::ZERO);
        let agent = Uuid::now_v7();
        let Err(lookup) = cache.get(agent, agent) else {
            panic!("nothing is known yet")
        };
        cache.remember(agent, agent, lookup, (Some((1, false)), true));
        assert!(cache.get(agent, agent).is_err());
    }
}
