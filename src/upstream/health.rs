//! Health of one instance: the verdict of active checks, passive ejection after failed
//! requests, and the slow-start ramp after either ends.
//!
//! The request path reads three atomics and, on success, one more; the mutexes are taken
//! only when a request fails, by the first success after failures, and by the checker.

use crate::config::{HealthCheck, Passive};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Milliseconds on a process-wide monotonic clock; never 0, so 0 can mean "never".
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX).saturating_add(1)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Consecutive request failures and past ejections.
#[derive(Debug, Default)]
struct Failures {
    count: u32,
    window_start: u64,
    /// Ejections in a row; each doubles the next ejection time.
    ejections: u32,
}

/// Consecutive check results and scheduling.
#[derive(Debug, Default)]
struct Checks {
    successes: u32,
    failures: u32,
    next_due: u64,
    running: bool,
}

/// Health of one instance.
#[derive(Debug)]
pub(crate) struct Health {
    /// Verdict of active checks.
    healthy: AtomicBool,
    /// Passive ejection lasts until this time (ms); 0 when never ejected.
    ejected_until: AtomicU64,
    /// When the instance last became available; slow start ramps from here.
    ramp_from: AtomicU64,
    /// Set while `failures` holds anything to reset.
    failing: AtomicBool,
    failures: Mutex<Failures>,
    checks: Mutex<Checks>,
}

/// What a failed request did to an instance.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Still below `max_fails`.
    Counted,
    /// Reached `max_fails`: the pool decides whether it may be ejected.
    Eject,
}

impl Health {
    /// Health of a new instance.
    pub(crate) fn new(healthy: bool, ramp_from: u64) -> Self {
        Self {
            healthy: AtomicBool::new(healthy),
            ejected_until: AtomicU64::new(0),
            ramp_from: AtomicU64::new(ramp_from),
            failing: AtomicBool::new(false),
            failures: Mutex::default(),
            checks: Mutex::default(),
        }
    }

    /// Whether the instance may take requests now: healthy and not ejected.
    pub(crate) fn available(&self, now: u64) -> bool {
        self.healthy.load(Ordering::Relaxed) && now >= self.ejected_until.load(Ordering::Relaxed)
    }

    /// Whether passive checks keep the instance out now.
    pub(crate) fn ejected(&self, now: u64) -> bool {
        now < self.ejected_until.load(Ordering::Relaxed)
    }

    /// Whether active checks call the instance healthy.
    pub(crate) fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// How much longer a passive ejection keeps the instance out, if it does.
    pub(crate) fn ejected_for(&self, now: u64) -> Option<Duration> {
        let until = self.ejected_until.load(Ordering::Relaxed);
        (now < until).then(|| Duration::from_millis(until - now))
    }

    /// The last active check's result, if any check ran: `true` for a pass.
    pub(crate) fn last_check(&self) -> Option<bool> {
        let checks = self.checks.lock().ok()?;
        match (checks.successes, checks.failures) {
            (0, 0) => None,
            (passes, _) => Some(passes > 0),
        }
    }

    /// Slow start: takes this turn with a probability growing from ~0 to 1 over `window`
    /// after the instance became available, so its share ramps up instead of jumping.
    pub(crate) fn takes_turn(&self, now: u64, window: u64) -> bool {
        let elapsed = now.saturating_sub(self.ramp_from.load(Ordering::Relaxed));
        if elapsed >= window {
            return true;
        }
        let share = (elapsed as f64 / window as f64).max(0.02);
        rand::random::<f64>() < share
    }

    /// Counts a failed request.
    pub(crate) fn failed(&self, now: u64, passive: &Passive) -> Verdict {
        if passive.max_fails == 0 {
            return Verdict::Counted;
        }
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if now.saturating_sub(f.window_start) > ms(passive.fail_timeout) {
            f.count = 0;
            f.window_start = now;
        }
        f.count += 1;
        self.failing.store(true, Ordering::Relaxed);
        if f.count >= passive.max_fails {
            f.count = 0;
            Verdict::Eject
        } else {
            Verdict::Counted
        }
    }

    /// Ejects the instance; returns for how long: `fail_timeout`, doubled for each ejection
    /// in a row, capped at `max_ejection_time`.
    pub(crate) fn eject(&self, now: u64, passive: &Passive) -> Duration {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let doubling = 2u32.saturating_pow(f.ejections.min(16));
        f.ejections += 1;
        let time = passive
            .fail_timeout
            .saturating_mul(doubling)
            .min(passive.max_ejection_time);
        let until = now.saturating_add(ms(time));
        self.ejected_until.store(until, Ordering::Relaxed);
        self.ramp_from.store(until, Ordering::Relaxed);
        self.failing.store(true, Ordering::Relaxed);
        drop(f);
        self.checks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .successes = 0;
        time
    }

    /// Counts a successful request. Ejections stop doubling once the instance has served
    /// well for a whole `fail_timeout` after its last ejection.
    pub(crate) fn succeeded(&self, now: u64, passive: &Passive) {
        if !self.failing.load(Ordering::Relaxed) {
            return;
        }
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        f.count = 0;
        let calm_since = self.ejected_until.load(Ordering::Relaxed);
        if now.saturating_sub(calm_since) >= ms(passive.fail_timeout) {
            f.ejections = 0;
        }
        self.failing.store(f.ejections > 0, Ordering::Relaxed);
    }

    /// Claims the next active check if it is due and none is running.
    pub(crate) fn check_due(&self, now: u64, interval: Duration) -> bool {
        let mut c = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        if c.running || now < c.next_due {
            return false;
        }
        c.running = true;
        c.next_due = now.saturating_add(ms(interval));
        true
    }

    /// Records an active check result; returns the new verdict when it changed (`true` also
    /// when passing checks end a passive ejection).
    pub(crate) fn checked(&self, passed: bool, now: u64, check: &HealthCheck) -> Option<bool> {
        let mut c = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        c.running = false;
        let healthy = self.healthy();
        if passed {
            c.successes += 1;
            c.failures = 0;
            // Passing checks also end a passive ejection, as Envoy does: they are the
            // stronger evidence that the instance is back.
            if (!healthy || self.ejected(now)) && c.successes >= check.healthy_successes {
                self.ejected_until.store(0, Ordering::Relaxed);
                self.ramp_from.store(now, Ordering::Relaxed);
                self.healthy.store(true, Ordering::Relaxed);
                return Some(true);
            }
        } else {
            c.failures += 1;
            c.successes = 0;
            if healthy && c.failures >= check.unhealthy_failures {
                self.healthy.store(false, Ordering::Relaxed);
                return Some(false);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passive(max_fails: u32) -> Passive {
        Passive {
            max_fails,
            fail_timeout: Duration::from_secs(10),
            max_ejection_time: Duration::from_secs(25),
            max_ejection_percent: 50,
            fail_statuses: vec![],
        }
    }

    #[test]
    fn ejection_doubles_up_to_the_cap_and_resets_after_calm() {
        let h = Health::new(true, 0);
        let p = passive(2);
        assert_eq!(h.failed(1, &p), Verdict::Counted);
        assert_eq!(h.failed(2, &p), Verdict::Eject);
        assert_eq!(h.eject(2, &p), Duration::from_secs(10));
        assert!(!h.available(5_000) && h.available(10_002));
        assert_eq!(h.eject(20_000, &p), Duration::from_secs(20));
        assert_eq!(h.eject(50_000, &p), Duration::from_secs(25));
        h.succeeded(75_000 + 10_000, &p);
        assert_eq!(h.eject(90_000, &p), Duration::from_secs(10));
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let h = Health::new(true, 0);
        let p = passive(2);
        assert_eq!(h.failed(1, &p), Verdict::Counted);
        assert_eq!(h.failed(20_000, &p), Verdict::Counted);
        h.succeeded(20_001, &p);
        assert_eq!(h.failed(20_002, &p), Verdict::Counted);
    }
}
