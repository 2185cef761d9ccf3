//! Least connections and power of two choices: both pick by in-flight requests relative to
//! weight. The counts live in each target's shared state, not in the selector, so they
//! survive the selector being rebuilt on reload.

use super::target::Target;
use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;
use rand::Rng;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Backends paired with the target they stand for (read once from `Backend::ext`).
struct Loaded {
    backends: Box<[Backend]>,
    targets: Box<[Arc<Target>]>,
}

impl Loaded {
    fn new(set: &BTreeSet<Backend>) -> Self {
        let pairs: Vec<(Backend, Arc<Target>)> = set
            .iter()
            .filter_map(|b| Some((b.clone(), b.ext.get::<Arc<Target>>()?.clone())))
            .collect();
        let (backends, targets): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        Self {
            backends: backends.into_boxed_slice(),
            targets: targets.into_boxed_slice(),
        }
    }

    /// Whether `a` is less loaded than `b`: in-flight ÷ weight, compared without division.
    fn lighter(&self, a: usize, b: usize) -> bool {
        let (ta, tb) = (&self.targets[a], &self.targets[b]);
        (ta.state.inflight() as u64) * u64::from(tb.weight)
            < (tb.state.inflight() as u64) * u64::from(ta.weight)
    }
}

/// Yields the chosen backend first, then every other one in rotation order (for retries).
pub(super) struct RankedIter {
    loaded: Arc<Loaded>,
    first: usize,
    step: usize,
}

impl RankedIter {
    fn new(loaded: &Arc<Loaded>, first: usize) -> Self {
        Self {
            loaded: loaded.clone(),
            first,
            step: 0,
        }
    }
}

impl BackendIter for RankedIter {
    fn next(&mut self) -> Option<&Backend> {
        let backends = &self.loaded.backends;
        if self.step >= backends.len() {
            return None;
        }
        let index = (self.first + self.step) % backends.len();
        self.step += 1;
        backends.get(index)
    }
}

/// Fewest in-flight requests; ties go to the next backend in rotation.
pub(super) struct LeastConn {
    loaded: Arc<Loaded>,
    rotation: AtomicUsize,
}

impl BackendSelection for LeastConn {
    type Iter = RankedIter;
    type Config = ();

    fn build(backends: &BTreeSet<Backend>) -> Self {
        Self {
            loaded: Arc::new(Loaded::new(backends)),
            rotation: AtomicUsize::new(0),
        }
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> Self::Iter {
        let n = self.loaded.backends.len().max(1);
        let start = self.rotation.fetch_add(1, Ordering::Relaxed) % n;
        let mut best = start;
        for step in 1..self.loaded.backends.len() {
            let i = (start + step) % n;
            if self.loaded.lighter(i, best) {
                best = i;
            }
        }
        RankedIter::new(&self.loaded, best)
    }
}

/// Power of two random choices: the less loaded of two random backends. Nearly as good as
/// least connections, without scanning every backend.
pub(super) struct P2c {
    loaded: Arc<Loaded>,
}

impl BackendSelection for P2c {
    type Iter = RankedIter;
    type Config = ();

    fn build(backends: &BTreeSet<Backend>) -> Self {
        Self {
            loaded: Arc::new(Loaded::new(backends)),
        }
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> Self::Iter {
        let n = self.loaded.backends.len();
        let first = if n < 2 {
            0
        } else {
            let mut rng = rand::rng();
            let a = rng.random_range(0..n);
            let b = (a + rng.random_range(1..n)) % n;
            if self.loaded.lighter(b, a) {
                b
            } else {
                a
            }
        };
        RankedIter::new(&self.loaded, first)
    }
}
