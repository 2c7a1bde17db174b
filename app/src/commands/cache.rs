//! The command service's memory of aggregate states, so a command on a busy stream does not
//! read and fold the whole stream again.
//!
//! An entry is a decider's state and the stream version it reflects. A command *takes* the
//! entry out (so two commands of this process on one stream never share it), decides on it,
//! and appends expecting that version: the log's optimistic concurrency is the only check of
//! freshness. When another writer (another process, or another service over the same log)
//! appended meanwhile, the append conflicts and the command decides again on a fresh load; an
//! outcome that no append verified (a rejection, or nothing to write) is decided again on a
//! fresh load too. After an append the state is folded with exactly the events written and put
//! back at their version. So a stale entry costs one more round, never a wrong decision.
//!
//! It holds no IO and knows nothing of the log.
//!
//! The memory is a `quick_cache` cache bounded to a number of streams. Taking a state leaves
//! the stream's entry in place, empty, and marks it used; when the cache is full, an entry
//! that was not used again goes before one that commands keep coming back to (its
//! CLOCK-PRO-like policy). A state is moved in and out of its entry, never copied.

use std::any::Any;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use quick_cache::sync::{Cache, EntryAction, EntryResult};

/// A memory of states by stream name, bounded to a number of streams.
pub(crate) struct StateCache {
    entries: Cache<String, Arc<Entry>>,
}

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCache")
            .field("streams", &self.entries.len())
            .field("capacity", &self.entries.capacity())
            .finish()
    }
}

/// One stream's place in the memory: the state kept for it, if any.
struct Entry(Mutex<Option<Kept>>);

struct Kept {
    /// The last stream version folded into the state (`None`: the stream was empty).
    version: Option<u64>,
    state: Box<dyn Any + Send>,
}

impl Entry {
    fn lock(&self) -> MutexGuard<'_, Option<Kept>> {
        // The state is replaced or taken whole under the lock, so a panicking holder leaves
        // it intact.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateCache {
    /// A memory of at most `capacity` streams (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        StateCache {
            entries: Cache::new(capacity.max(1)),
        }
    }

    /// Takes the state of `stream` out of the memory, with the version it reflects. `None`
    /// when nothing is kept for it, or something of another type.
    pub(crate) fn take<D: 'static>(&self, stream: &str) -> Option<(D, Option<u64>)> {
        let kept = self.entries.get(stream)?.lock().take()?;
        let version = kept.version;
        kept.state
            .downcast::<D>()
            .ok()
            .map(|state| (*state, version))
    }

    /// Keeps `state` of `stream` as of `version`, unless a state of a later version is kept
    /// already (another command of this process appended after this one read).
    pub(crate) fn put<D: Send + 'static>(&self, stream: &str, state: D, version: Option<u64>) {
        let mut fresh = Some(Kept {
            version,
            state: Box::new(state),
        });
        let found = self.entries.entry(stream, None, |_, entry| {
            let mut slot = entry.lock();
            if slot.as_ref().is_none_or(|kept| kept.version <= version) {
                *slot = fresh.take();
            }
            EntryAction::Retain(())
        });
        if let EntryResult::Vacant(place) = found {
            let entry = Entry(Mutex::new(fresh));
            // Fails only when the stream's place was dropped meanwhile: nothing is kept then.
            let _ = place.insert(Arc::new(entry));
        }
    }

    /// How many streams have a place in the memory (holding a state or not).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_taken_once() {
        let cache = StateCache::new(8);
        cache.put("s", 7_u32, Some(3));
        assert_eq!(cache.take::<u32>("s"), Some((7, Some(3))));
        assert_eq!(cache.take::<u32>("s"), None);
    }

    #[test]
    fn an_older_state_does_not_replace_a_newer_one() {
        let cache = StateCache::new(8);
        cache.put("s", 2_u32, Some(5));
        cache.put("s", 1_u32, Some(4));
        assert_eq!(cache.take::<u32>("s"), Some((2, Some(5))));
    }

    #[test]
    fn a_state_of_another_type_is_not_answered() {
        let cache = StateCache::new(8);
        cache.put("s", 2_u32, Some(5));
        assert_eq!(cache.take::<String>("s"), None);
    }

    #[test]
    fn the_memory_stays_within_its_capacity() {
        let cache = StateCache::new(2);
        for n in 0..5_u32 {
            cache.put(&format!("s{n}"), n, Some(0));
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.take::<u32>("s4"), Some((4, Some(0))));
    }

    #[test]
    fn a_stream_commands_keep_coming_back_to_outlives_streams_kept_once() {
        let cache = StateCache::new(4);
        for n in 1..=4_u32 {
            cache.put(&format!("s{n}"), n, Some(0));
        }
        cache.put("busy", 0_u32, Some(0));
        for n in 5..40_u32 {
            let (state, version) = cache.take::<u32>("busy").expect("busy is kept");
            cache.put("busy", state + 1, version.map(|v| v + 1));
            cache.put(&format!("s{n}"), n, Some(0));
        }
        assert_eq!(cache.len(), 4);
        assert_eq!(cache.take::<u32>("busy"), Some((35, Some(35))));
    }
}
