//! The metric families every handle counts into, one set per process, built on first use.

use super::names;
use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts};
use std::sync::LazyLock;

/// Status classes, the last label of [`names::REQUESTS`]; index = status / 100 - 1.
pub(super) const CODE_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Values of the `by` label of [`names::RATELIMITED`].
pub(super) const RATE_KEYS: [&str; 4] = ["consumer", "ip", "route", "header"];

/// Values of the `result` label of [`names::RELOADS`].
pub(super) const RELOAD_RESULTS: [&str; 2] = ["success", "failure"];

/// Latency buckets in seconds: 1 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A metric family or description built from this file's constant names, labels and
/// buckets: only a mistake in this file could make one invalid, and every test that starts
/// weir builds all of them.
#[allow(clippy::expect_used)]
pub(super) fn valid<T>(built: prometheus::Result<T>) -> T {
    built.expect("metric names, labels and buckets are valid constants")
}

/// The families requests and reloads count into, one set per process.
pub(super) struct Families {
    pub(super) requests: IntCounterVec,
    pub(super) request_duration: HistogramVec,
    pub(super) upstream_duration: HistogramVec,
    pub(super) ejections: IntCounterVec,
    pub(super) retries: IntCounterVec,
    pub(super) reloads: IntCounterVec,
    pub(super) build_info: IntGaugeVec,
    pub(super) connections: IntGaugeVec,
    pub(super) handshakes: IntCounterVec,
    pub(super) connect_failures: IntCounterVec,
    pub(super) tcp_connections: IntCounterVec,
    pub(super) tcp_active: IntGaugeVec,
    pub(super) tcp_bytes: IntCounterVec,
    pub(super) tcp_refused: IntCounterVec,
    pub(super) access_log_dropped: IntCounter,
    pub(super) rejected: IntCounterVec,
    pub(super) auth_failures: IntCounterVec,
    pub(super) ratelimited: IntCounterVec,
    pub(super) ratelimit_store_errors: IntCounter,
}

pub(super) static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
    let counter = |name: &str, help: &str, labels: &[&str]| {
        valid(IntCounterVec::new(Opts::new(name, help), labels))
    };
    let histogram = |name: &str, help: &str, labels: &[&str]| {
        let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
        valid(HistogramVec::new(opts, labels))
    };
    let build_info = valid(IntGaugeVec::new(
        Opts::new(names::BUILD_INFO, "weir's version (the value is always 1)"),
        &["version"],
    ));
    build_info
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
    let reloads = counter(names::RELOADS, "Configuration reloads", &["result"]);
    // Both series exist from the start, so that a dashboard's increase() sees the first one.
    for result in RELOAD_RESULTS {
        reloads.with_label_values(&[result]);
    }
    Families {
        requests: counter(
            names::REQUESTS,
            "Requests answered",
            &["route", "upstream", "instance", "code_class", "consumer"],
        ),
        request_duration: histogram(
            names::REQUEST_DURATION,
            "Time from request to the end of the response",
            &["route", "upstream"],
        ),
        upstream_duration: histogram(
            names::UPSTREAM_DURATION,
            "Time an instance took to answer",
            &["upstream", "instance"],
        ),
        ejections: counter(
            names::EJECTIONS,
            "Passive ejections",
            &["upstream", "instance"],
        ),
        retries: counter(
            names::RETRIES,
            "Attempts after the first",
            &["route", "upstream"],
        ),
        reloads,
        build_info,
        connections: valid(IntGaugeVec::new(
            Opts::new(names::DOWNSTREAM_CONNECTIONS, "Downstream connections open"),
            &["listener"],
        )),
        handshakes: counter(
            names::TLS_HANDSHAKES,
            "TLS handshakes completed",
            &["listener", "version"],
        ),
        connect_failures: counter(
            names::CONNECT_FAILURES,
            "Connections to an instance that failed or timed out",
            &["upstream", "instance"],
        ),
        tcp_connections: counter(
            names::TCP_CONNECTIONS,
            "TCP connections forwarded to an instance",
            &["listener", "upstream", "instance"],
        ),
        tcp_active: valid(IntGaugeVec::new(
            Opts::new(names::TCP_ACTIVE, "TCP connections open to an instance"),
            &["listener", "upstream", "instance"],
        )),
        tcp_bytes: counter(
            names::TCP_BYTES,
            "Bytes forwarded by TCP listeners (in: from clients, out: to them)",
            &["listener", "direction"],
        ),
        tcp_refused: counter(
            names::TCP_REFUSED,
            "TCP connections closed without being forwarded",
            &["listener", "reason"],
        ),
        access_log_dropped: valid(IntCounter::new(
            names::ACCESS_LOG_DROPPED,
            "Access log lines dropped because the writer was behind",
        )),
        rejected: counter(
            names::REJECTED,
            "Requests refused before routing: a head over a limit, a bad Host, a slow head",
            &["listener", "reason"],
        ),
        auth_failures: counter(
            names::AUTH_FAILURES,
            "Requests refused by a policy: no or bad credentials, a group or an address rule",
            &["route", "reason"],
        ),
        ratelimited: counter(
            names::RATELIMITED,
            "Requests refused by a rate limit",
            &["route", "by"],
        ),
        ratelimit_store_errors: valid(IntCounter::new(
            names::RATELIMIT_STORE_ERRORS,
            "Rate-limit decisions Redis failed to make (error or timeout)",
        )),
    }
});
