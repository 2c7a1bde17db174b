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

use std::any::Any;
use std::collections::HashMap;
use std::sync::Mutex;

/// A memory of states by stream name, bounded to a number of streams.
#[derive(Debug)]
pub(crate) struct StateCache {
    capacity: usize,
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    /// The last stream version folded into the state (`None`: the stream was empty).
    version: Option<u64>,
    state: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

impl StateCache {
    /// A memory of at most `capacity` streams (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        StateCache {
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Takes the state of `stream` out of the memory, with the version it reflects. `None`
    /// when nothing is kept for it, or something of another type.
    pub(crate) fn take<D: 'static>(&self, stream: &str) -> Option<(D, Option<u64>)> {
        let entry = self.lock().remove(stream)?;
        let version = entry.version;
        entry
            .state
            .downcast::<D>()
            .ok()
            .map(|state| (*state, version))
    }

    /// Keeps `state` of `stream` as of `version`, unless a state of a later version is kept
    /// already (another command of this process appended after this one read).
    pub(crate) fn put<D: Send + 'static>(&self, stream: &str, state: D, version: Option<u64>) {
        let mut entries = self.lock();
        if let Some(kept) = entries.get(stream)
            && kept.version > version
        {
            return;
        }
        if entries.len() >= self.capacity
            && !entries.contains_key(stream)
            && let Some(evicted) = entries.keys().next().cloned()
        {
            entries.remove(&evicted);
        }
        entries.insert(
            stream.to_owned(),
            Entry {
                version,
                state: Box::new(state),
            },
        );
    }

    /// How many streams are kept.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // Entries are replaced whole under the lock, so a panicking holder leaves them intact.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
}
