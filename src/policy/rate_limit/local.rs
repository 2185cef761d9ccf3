//! The local store: the windows of this process, one per key, in a sharded cache bounded by
//! `rate_limits.local.max_keys` (quick_cache's S3-FIFO eviction: keys seen once leave
//! first, so a flood of one-off client addresses does not push out the busy keys). Each
//! decision locks one shard for the few instructions of [`Window::decide`].

use super::window::{Limits, Outcome, Window};
use quick_cache::sync::{Cache, EntryAction, EntryResult};
use std::hash::BuildHasher;
use std::sync::{LazyLock, OnceLock};
use std::time::Instant;

/// The process's clock for local windows: monotonic, shared by every runtime, so that counts
/// carried across a reload stay on the same time line.
static EPOCH: LazyLock<Instant> = LazyLock::new(Instant::now);

/// The windows of this process, by key hash.
pub(crate) struct LocalStore {
    /// Made at the first decision, so that a configuration without local rules costs nothing.
    windows: OnceLock<Cache<u64, Window>>,
    /// Seeded once per process, so that a client cannot choose a value whose key collides
    /// with another client's.
    hasher: std::hash::RandomState,
    max_keys: usize,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore")
            .field("keys", &self.windows.get().map_or(0, Cache::len))
            .field("max_keys", &self.max_keys)
            .finish()
    }
}

impl LocalStore {
    /// A store of at most `max_keys` keys.
    pub(crate) fn new(max_keys: usize) -> Self {
        LazyLock::force(&EPOCH);
        Self {
            windows: OnceLock::new(),
            hasher: std::hash::RandomState::new(),
            max_keys,
        }
    }

    /// Its capacity, to tell whether a new configuration can keep it.
    pub(crate) fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The key of `value` counted by the rule whose identity hashes to `rule`.
    pub(crate) fn key(&self, rule: u64, value: &[u8]) -> u64 {
        self.hasher.hash_one((rule, value))
    }

    /// The hash of a rule's identity, computed once when the rule is compiled.
    pub(crate) fn rule_id(&self, identity: &str) -> u64 {
        self.hasher.hash_one(identity)
    }

    fn windows(&self) -> &Cache<u64, Window> {
        self.windows.get_or_init(|| {
            let windows = Cache::new(self.max_keys);
            // Room for every key at once: growing by doubling would leave the smaller
            // tables behind in the allocator, doubling what a full store costs the process.
            // Only what keys fill is resident.
            windows.reserve(self.max_keys);
            windows
        })
    }

    /// Decides one request of `key`.
    pub(crate) fn decide(&self, key: u64, limits: Limits) -> Outcome {
        let now = u64::try_from(EPOCH.elapsed().as_micros()).unwrap_or(u64::MAX);
        match self.windows().entry(&key, None, |_, w| {
            EntryAction::Retain(w.decide(limits, now))
        }) {
            EntryResult::Retained(outcome) => outcome,
            EntryResult::Vacant(guard) | EntryResult::Replaced(guard, _) => {
                let mut window = Window::default();
                let outcome = window.decide(limits, now);
                // Fails only when the key was evicted meanwhile: the count is lost, as an
                // eviction loses it.
                let _ = guard.insert(window);
                outcome
            }
            EntryResult::Removed(..) | EntryResult::Timeout => {
                Window::default().decide(limits, now)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented bound of one key (docs/policies.md, "Rate limits").
    const ENTRY_BYTES: usize = 160;

    #[test]
    fn a_full_store_holds_max_keys_within_the_documented_bytes_each() {
        let max_keys = 100_000;
        let store = LocalStore::new(max_keys);
        let limits = Limits {
            limit: 10,
            per_ms: 60_000,
            burst: 10,
        };
        for n in 0..2 * max_keys as u64 {
            store.decide(store.key(1, &n.to_be_bytes()), limits);
        }
        let windows = store.windows();
        let used = windows.memory_used();
        eprintln!(
            "{} keys: {} bytes of entries, {} of map, {} a key",
            windows.len(),
            used.entries,
            used.map,
            used.total() / max_keys
        );
        assert!(windows.len() <= max_keys);
        assert!(used.total() <= max_keys * ENTRY_BYTES, "{used:?}");
    }
}
