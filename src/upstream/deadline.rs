//! A route's own timeouts on the way to its instances: `connect`, `read` and `write` replace
//! the upstream's on the peer of each attempt, and `total` is a [`Deadline`] that caps every
//! attempt's timeouts at what remains of it, stops further retries once it has passed, and
//! turns the failure it caused into a 504 of its own.

use crate::config::RouteTimeouts;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use std::time::{Duration, Instant};

/// The error of a request whose route's `total` ran out (answered 504).
pub(crate) const TOTAL_EXPIRED: ErrorType = ErrorType::Custom("route total timeout expired");

/// What the 504 of an expired `total` says.
pub(crate) const TOTAL_EXPIRED_MESSAGE: &str = "the route's total timeout expired";

/// Pingora's timers tick every 10 ms: an attempt with less than this left is not started, and
/// a timeout this close to the deadline is the deadline's.
const TIMER_TICK: Duration = Duration::from_millis(10);

/// When a route's `total` runs out for one request; set once the request is routed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Instant);

impl Deadline {
    /// `total` from now; `None` for a `total` too long to fall within the clock's range
    /// (no deadline, rather than a panic).
    pub(crate) fn after(total: Duration) -> Option<Self> {
        Instant::now().checked_add(total).map(Self)
    }

    /// What remains, `None` once (nearly) nothing does.
    fn remaining(self) -> Option<Duration> {
        self.0
            .checked_duration_since(Instant::now())
            .filter(|left| *left >= TIMER_TICK)
    }

    /// Whether it has passed.
    pub(crate) fn expired(self) -> bool {
        self.remaining().is_none()
    }

    /// The error that ends the request; `cause`, when given, is the failure it caused.
    pub(crate) fn error(cause: Option<Box<Error>>) -> Box<Error> {
        let mut e = match cause {
            Some(cause) => Error::because(TOTAL_EXPIRED, TOTAL_EXPIRED_MESSAGE, cause),
            None => Error::explain(TOTAL_EXPIRED, TOTAL_EXPIRED_MESSAGE),
        };
        e.as_up();
        e.set_retry(false);
        e
    }
}

/// Sets the route's `timeouts` on the peer of one attempt, each capped at what remains of
/// `deadline` (the connect one including the TLS handshake). An error, to answer at once,
/// when nothing remains: no attempt starts after the deadline.
pub(crate) fn apply(
    peer: &mut HttpPeer,
    timeouts: &RouteTimeouts,
    deadline: Option<Deadline>,
) -> pingora::Result<()> {
    let options = &mut peer.options;
    let own = [
        (&mut options.connection_timeout, timeouts.connect),
        (&mut options.read_timeout, timeouts.read),
        (&mut options.write_timeout, timeouts.write),
    ];
    for (option, route) in own {
        if route.is_some() {
            *option = route;
        }
    }
    let Some(deadline) = deadline else {
        return Ok(());
    };
    let left = deadline.remaining().ok_or_else(|| Deadline::error(None))?;
    for option in [
        &mut options.connection_timeout,
        &mut options.total_connection_timeout,
        &mut options.read_timeout,
        &mut options.write_timeout,
    ] {
        *option = Some(option.map_or(left, |t| t.min(left)));
    }
    Ok(())
}

/// `e`, or the deadline's error caused by it once `deadline` has passed: whatever failed
/// then, the route's `total` is why the request ends, and nothing is retried.
pub(crate) fn over(e: Box<Error>, deadline: Option<Deadline>) -> Box<Error> {
    if deadline.is_some_and(Deadline::expired) {
        Deadline::error(Some(e))
    } else {
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> HttpPeer {
        let mut peer = HttpPeer::new("127.0.0.1:80", false, String::new());
        peer.options.connection_timeout = Some(Duration::from_secs(5));
        peer.options.read_timeout = Some(Duration::from_secs(60));
        peer.options.write_timeout = Some(Duration::from_secs(60));
        peer
    }

    #[test]
    fn the_route_replaces_only_what_it_sets() {
        let mut p = peer();
        let timeouts = RouteTimeouts {
            read: Some(Duration::from_secs(2)),
            ..RouteTimeouts::default()
        };
        assert!(apply(&mut p, &timeouts, None).is_ok());
        assert_eq!(p.options.read_timeout, Some(Duration::from_secs(2)));
        assert_eq!(p.options.connection_timeout, Some(Duration::from_secs(5)));
        assert_eq!(p.options.total_connection_timeout, None);
    }

    #[test]
    fn every_timeout_is_capped_at_what_remains() {
        let mut p = peer();
        let deadline = Deadline::after(Duration::from_secs(3)).unwrap();
        assert!(apply(&mut p, &RouteTimeouts::default(), Some(deadline)).is_ok());
        let options = &p.options;
        for t in [
            options.connection_timeout,
            options.total_connection_timeout,
            options.read_timeout,
            options.write_timeout,
        ] {
            let t = t.unwrap_or_default();
            assert!(
                t <= Duration::from_secs(3) && t > Duration::from_secs(2),
                "{t:?}"
            );
        }
    }

    #[test]
    fn no_attempt_starts_after_the_deadline() {
        let past = Deadline(Instant::now());
        let e = apply(&mut peer(), &RouteTimeouts::default(), Some(past)).unwrap_err();
        assert_eq!(e.etype(), &TOTAL_EXPIRED);
        assert!(!e.retry());
        let cause = Error::explain(ErrorType::ReadTimedout, "read");
        let e = over(cause, Some(past));
        assert_eq!(e.etype(), &TOTAL_EXPIRED);
        let cause = Error::explain(ErrorType::ReadTimedout, "read");
        let later = Deadline::after(Duration::from_secs(60));
        assert_eq!(over(cause, later).etype(), &ErrorType::ReadTimedout);
    }

    #[test]
    fn a_total_beyond_the_clock_is_no_deadline() {
        assert!(Deadline::after(Duration::MAX).is_none());
    }
}
