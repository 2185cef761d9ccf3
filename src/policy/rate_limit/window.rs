//! The arithmetic of one rate-limit key, the same in the local store and in the Redis
//! script: a sliding window counted in slots of a tenth of `per`, and, when `burst < limit`,
//! a GCRA (generic cell rate algorithm) that spaces requests by `per / limit`.
//!
//! The window keeps the current slot and the ten before it. A request is admitted when the
//! counts of those slots add up to less than `limit`; the oldest slot, which overlaps
//! `[now - per, now]` only in part, is counted in full. So in any interval of length `per`
//! at most `limit` requests pass: when the last one admitted in it arrived, every earlier one
//! of the interval sat in a slot it counted.

/// Slots kept: the current one and the ten before it.
pub(super) const SLOTS: usize = 11;

/// The counts of one key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Window {
    /// The index (time / slot width) of the newest slot written.
    newest: u64,
    /// Requests admitted in each slot, at `index % SLOTS`.
    counts: [u32; SLOTS],
    /// GCRA's theoretical arrival time, in microseconds.
    tat: u64,
}

/// A rule's numbers, as the arithmetic takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Requests in any interval of `per`.
    pub limit: u64,
    /// The interval, in milliseconds.
    pub per_ms: u64,
    /// Requests at once; the GCRA applies only below `limit`.
    pub burst: u64,
}

impl Limits {
    /// The width of a slot: a tenth of `per`, rounded up (a longer window only refuses more).
    pub(super) fn slot_ms(&self) -> u64 {
        self.per_ms.div_ceil(10).max(1)
    }

    /// GCRA's emission interval, `per / limit`, rounded up, in microseconds.
    fn interval_us(&self) -> u64 {
        (self.per_ms * 1000).div_ceil(self.limit.max(1)).max(1)
    }
}

/// What one decision found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Whether the request passes (and was counted).
    pub admitted: bool,
    /// Requests that may still pass now.
    pub remaining: u64,
    /// Milliseconds until the next count frees (`RateLimit-Reset`) when admitted, or until a
    /// request would pass (`Retry-After`) when refused.
    pub wait_ms: u64,
}

impl Window {
    /// Decides a request at `now_us` (microseconds on a clock that does not go back), and
    /// counts it when admitted.
    pub(crate) fn decide(&mut self, limits: Limits, now_us: u64) -> Outcome {
        let slot_ms = limits.slot_ms();
        let now_ms = now_us / 1000;
        let current = (now_ms / slot_ms).max(self.newest);
        let expired = (current - self.newest).min(SLOTS as u64);
        for step in 1..=expired {
            self.counts[((self.newest + step) % SLOTS as u64) as usize] = 0;
        }
        self.newest = current;
        let counted: u64 = self.counts.iter().map(|c| u64::from(*c)).sum();
        // When the slot `k` places after the oldest counted one stops counting.
        let frees_at = |k: u64| (current + 1 + k) * slot_ms;
        // The slot `k` places after the oldest counted one (which is `current - 10`).
        let count_of = |counts: &[u32; SLOTS], k: u64| {
            u64::from(counts[((current + 1 + k) % SLOTS as u64) as usize])
        };
        let window_ok = counted < limits.limit;
        let smoothing = limits.burst < limits.limit;
        let interval = limits.interval_us();
        let tat = self.tat.max(now_us) + interval;
        let allowance = limits.burst * interval;
        let gcra_ok = !smoothing || tat - now_us <= allowance;
        if window_ok && gcra_ok {
            let slot = (current % SLOTS as u64) as usize;
            self.counts[slot] = self.counts[slot].saturating_add(1);
            if smoothing {
                self.tat = tat;
            }
            let mut remaining = limits.limit - counted - 1;
            if smoothing {
                remaining = remaining.min((allowance - (tat - now_us)) / interval);
            }
            // The oldest slot holding a count (this request's, at the latest).
            let first = (0..SLOTS as u64)
                .find(|&k| count_of(&self.counts, k) > 0)
                .unwrap_or(SLOTS as u64 - 1);
            return Outcome {
                admitted: true,
                remaining,
                wait_ms: frees_at(first).saturating_sub(now_ms),
            };
        }
        let mut wait_ms = 0;
        if !window_ok {
            // Enough of the oldest counts must stop counting for one more to fit.
            let excess = counted + 1 - limits.limit;
            let mut freed = 0;
            for k in 0..SLOTS as u64 {
                freed += count_of(&self.counts, k);
                if freed >= excess {
                    wait_ms = frees_at(k).saturating_sub(now_ms);
                    break;
                }
            }
        }
        if !gcra_ok {
            wait_ms = wait_ms.max((tat - now_us - allowance).div_ceil(1000));
        }
        Outcome {
            admitted: false,
            remaining: 0,
            wait_ms: wait_ms.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TEN_PER_SECOND: Limits = Limits {
        limit: 10,
        per_ms: 1000,
        burst: 10,
    };

    #[test]
    fn a_burst_passes_up_to_the_limit_then_waits_for_a_slot() {
        let mut w = Window::default();
        let now = 5_000_000;
        for i in 0..10 {
            let o = w.decide(TEN_PER_SECOND, now);
            assert!(o.admitted);
            assert_eq!(o.remaining, 9 - i);
        }
        let refused = w.decide(TEN_PER_SECOND, now);
        assert!(!refused.admitted);
        // The slot [5.0 s, 5.1 s) stops counting once the window's oldest slot is past it.
        assert_eq!(refused.wait_ms, 1100);
        assert!(!w.decide(TEN_PER_SECOND, now + 1_099_000).admitted);
        assert!(w.decide(TEN_PER_SECOND, now + 1_100_000).admitted);
    }

    #[test]
    fn smoothing_spaces_requests_by_per_over_limit() {
        let limits = Limits {
            limit: 10,
            per_ms: 1000,
            burst: 2,
        };
        let mut w = Window::default();
        let now = 1_000_000;
        assert!(w.decide(limits, now).admitted);
        assert!(w.decide(limits, now).admitted);
        let refused = w.decide(limits, now);
        assert!(!refused.admitted);
        assert_eq!(refused.wait_ms, 100);
        assert!(!w.decide(limits, now + 99_000).admitted);
        assert!(w.decide(limits, now + 100_000).admitted);
    }

    #[test]
    fn a_refused_request_is_not_counted() {
        let limits = Limits {
            limit: 1,
            per_ms: 1000,
            burst: 1,
        };
        let mut w = Window::default();
        assert!(w.decide(limits, 0).admitted);
        for t in (0..1_100_000).step_by(50_000) {
            assert!(!w.decide(limits, t).admitted);
        }
        assert!(w.decide(limits, 1_100_000).admitted);
    }

    proptest! {
        /// The stated bound: wherever an interval of `per` starts, no more than `limit`
        /// requests were admitted in it, whatever the arrivals.
        #[test]
        fn no_interval_of_per_admits_more_than_limit(
            limit in 1u64..20,
            per_s in 1u64..5,
            burst_cut in 0u64..20,
            gaps in proptest::collection::vec(0u64..300_000, 1..400),
        ) {
            let limits = Limits { limit, per_ms: per_s * 1000, burst: limit - burst_cut.min(limit - 1) };
            let mut w = Window::default();
            let mut now = 10_000_000;
            let mut admitted = Vec::new();
            for gap in gaps {
                now += gap;
                if w.decide(limits, now).admitted {
                    admitted.push(now);
                }
            }
            let per_us = limits.per_ms * 1000;
            for (i, start) in admitted.iter().enumerate() {
                let within = admitted[i..].iter().take_while(|t| **t <= start + per_us).count();
                prop_assert!(within as u64 <= limit, "{within} admitted in [{start}, +per]");
            }
        }

        /// With smoothing, no more than `burst` pass at once, and one more per `per / limit`.
        #[test]
        fn smoothing_admits_burst_then_one_per_interval(limit in 2u64..50, burst_cut in 1u64..50) {
            let burst = limit - burst_cut.min(limit - 1);
            let limits = Limits { limit, per_ms: 1000, burst };
            let mut w = Window::default();
            let passed = (0..limit).filter(|_| w.decide(limits, 1_000_000).admitted).count();
            prop_assert_eq!(passed as u64, burst);
        }
    }
}
