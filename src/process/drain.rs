//! Draining: the count of requests in flight, which a stopping process waits on.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests this process is serving. One process serves one proxy, so the count is
/// process-wide; a draining process exits as soon as it reaches zero.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one request as in flight until dropped.
pub struct InFlight(());

impl InFlight {
    /// Counts a request that has started.
    pub fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self(())
    }

    /// Requests being served now.
    pub fn count() -> usize {
        IN_FLIGHT.load(Ordering::Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}
