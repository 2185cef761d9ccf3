//! Smooth weighted round robin, as nginx does it: weights 3:2:1 give `A B A C B A`, never a
//! run of one target longer than its weight. With equal weights it is plain rotation.
//!
//! nginx recomputes the schedule on every pick under a lock; here the whole cycle is
//! computed once at build time and requests walk it with one atomic counter.

use pingora::lb::selection::{BackendIter, BackendSelection};
use pingora::lb::Backend;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The precomputed cycle over backends.
pub(super) struct SmoothWeighted {
    backends: Box<[Backend]>,
    /// One full cycle of backend indices; its length is the sum of the reduced weights.
    schedule: Box<[u32]>,
    next: AtomicUsize,
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// nginx's algorithm: each step every backend gains its weight, the richest is picked and
/// pays the total.
fn schedule(weights: &[usize]) -> Vec<u32> {
    let divisor = weights.iter().copied().fold(0, gcd).max(1);
    let weights: Vec<i64> = weights.iter().map(|w| (w / divisor) as i64).collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or_default());
    for _ in 0..total {
        let mut best = 0;
        for (i, w) in weights.iter().enumerate() {
            current[i] += w;
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        out.push(best as u32);
    }
    out
}

impl BackendSelection for SmoothWeighted {
    type Iter = SmoothIter;
    type Config = ();

    fn build(backends: &BTreeSet<Backend>) -> Self {
        let backends: Box<[Backend]> = backends.iter().cloned().collect();
        let weights: Vec<usize> = backends.iter().map(|b| b.weight).collect();
        Self {
            schedule: schedule(&weights).into_boxed_slice(),
            backends,
            next: AtomicUsize::new(0),
        }
    }

    fn iter(self: &Arc<Self>, _key: &[u8]) -> SmoothIter {
        SmoothIter {
            position: self.next.fetch_add(1, Ordering::Relaxed),
            remaining: self.schedule.len(),
            selection: self.clone(),
        }
    }
}

/// Walks one cycle from this request's turn onwards.
pub(super) struct SmoothIter {
    selection: Arc<SmoothWeighted>,
    position: usize,
    remaining: usize,
}

impl BackendIter for SmoothIter {
    fn next(&mut self) -> Option<&Backend> {
        let s = &self.selection;
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let index = s.schedule[self.position % s.schedule.len()] as usize;
        self.position = self.position.wrapping_add(1);
        s.backends.get(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_like_nginx() {
        assert_eq!(schedule(&[3, 2, 1]), vec![0, 1, 0, 2, 1, 0]);
        assert_eq!(schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(schedule(&[100, 50]), vec![0, 1, 0]);
        assert_eq!(schedule(&[1, 1, 1]), vec![0, 1, 2]);
    }
}
