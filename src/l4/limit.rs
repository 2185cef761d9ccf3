//! A listener's connection limit: beyond `max_connections`, a connection is refused, or
//! waits (`on_limit: queue`) for one to end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// The connections one listener holds now; kept across reloads, which may change the limit.
#[derive(Debug, Default)]
pub(super) struct Limiter {
    active: AtomicUsize,
    freed: Notify,
}

/// A connection's place under the limit; dropping it frees the place.
#[derive(Debug)]
pub(super) struct Slot(Arc<Limiter>);

impl Limiter {
    /// A place for a new connection: at once while fewer than `max` are open (always, with
    /// no `max`); else, with a `queue` time, the first place freed within it; else `None`.
    pub(super) async fn acquire(
        self: &Arc<Self>,
        max: Option<usize>,
        queue: Option<Duration>,
    ) -> Option<Slot> {
        let deadline = queue.map(|q| tokio::time::Instant::now() + q);
        loop {
            // Registered before the check, so a place freed in between is not missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let taken = self
                .active
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    max.is_none_or(|max| n < max).then_some(n + 1)
                });
            if taken.is_ok() {
                return Some(Slot(self.clone()));
            }
            tokio::time::timeout_at(deadline?, freed).await.ok()?;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refuses_or_queues_beyond_the_limit() {
        let limiter = Arc::new(Limiter::default());
        let first = limiter.acquire(Some(1), None).await.unwrap();
        assert!(limiter.acquire(Some(1), None).await.is_none(), "refused");
        let short = Some(Duration::from_millis(20));
        assert!(limiter.acquire(Some(1), short).await.is_none(), "timed out");
        let waiting = {
            let limiter = limiter.clone();
            tokio::spawn(
                async move { limiter.acquire(Some(1), Some(Duration::from_secs(5))).await },
            )
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiting.await.unwrap().is_some(), "queued, then admitted");
    }
}
