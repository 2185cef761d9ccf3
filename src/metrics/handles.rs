//! Label handles, resolved when a runtime is compiled, so that a request or a connection
//! only increments counters it already holds.

use super::families::{CODE_CLASSES, FAMILIES};
use prometheus::{Histogram, IntCounter, IntGauge};

/// One counter per status class for one (route, upstream, instance).
#[derive(Debug, Clone)]
pub(crate) struct RequestCounters([IntCounter; 5]);

impl RequestCounters {
    /// The counters of `route` through `upstream` to `instance` (empty names for none).
    pub(crate) fn new(route: &str, upstream: &str, instance: &str) -> Self {
        Self(CODE_CLASSES.map(|class| {
            FAMILIES
                .requests
                .with_label_values(&[route, upstream, instance, class])
        }))
    }

    /// Counts a request answered with `status` (one above 599 counts as 5xx).
    pub(crate) fn count(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.0[class].inc();
    }

    /// Requests counted so far: all of them, and those answered 5xx.
    pub(crate) fn totals(&self) -> (u64, u64) {
        let all = self.0.iter().map(IntCounter::get).sum();
        (all, self.0[4].get())
    }
}

/// The cumulative buckets of `histogram`: (upper bound in seconds, observations up to it),
/// the last bound being infinity.
pub(crate) fn buckets(histogram: &Histogram) -> Vec<(f64, u64)> {
    let metric = prometheus::core::Metric::metric(histogram);
    let h = metric.get_histogram();
    let mut buckets: Vec<(f64, u64)> = h
        .get_bucket()
        .iter()
        .map(|b| (b.upper_bound(), b.cumulative_count()))
        .collect();
    buckets.push((f64::INFINITY, h.get_sample_count()));
    buckets
}

/// The handles of one route.
#[derive(Debug, Clone)]
pub(crate) struct RouteMetrics {
    /// Request duration.
    pub duration: Histogram,
    /// Retries.
    pub retries: IntCounter,
    /// Requests answered through each target of the route's pool, by target index.
    pub by_target: Vec<RequestCounters>,
    /// Requests answered without reaching a target (none available, or refused before).
    pub no_target: RequestCounters,
}

impl RouteMetrics {
    /// Handles for `route` to `upstream`, whose targets are named `instances`.
    pub(crate) fn new<'a>(
        route: &str,
        upstream: &str,
        instances: impl Iterator<Item = &'a str>,
    ) -> Self {
        Self {
            duration: FAMILIES
                .request_duration
                .with_label_values(&[route, upstream]),
            retries: FAMILIES.retries.with_label_values(&[route, upstream]),
            by_target: instances
                .map(|i| RequestCounters::new(route, upstream, i))
                .collect(),
            no_target: RequestCounters::new(route, upstream, ""),
        }
    }
}

/// The handles of one target.
#[derive(Debug, Clone)]
pub(crate) struct TargetMetrics {
    /// Time the instance took.
    pub duration: Histogram,
    /// Passive ejections.
    pub ejections: IntCounter,
    /// Connections that failed or timed out.
    pub connect_failures: IntCounter,
}

impl TargetMetrics {
    /// Handles for `instance` of `upstream`.
    pub(crate) fn new(upstream: &str, instance: &str) -> Self {
        Self {
            duration: FAMILIES
                .upstream_duration
                .with_label_values(&[upstream, instance]),
            ejections: FAMILIES.ejections.with_label_values(&[upstream, instance]),
            connect_failures: FAMILIES
                .connect_failures
                .with_label_values(&[upstream, instance]),
        }
    }
}

/// Why a TCP listener closed a connection without forwarding it; the `reason` label.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Refusal {
    /// `max_connections` reached (and no slot freed within `queue_timeout`).
    Limit,
    /// No instance was available.
    NoInstance,
    /// No instance could be connected to (or it closed before the first bytes were sent).
    Unreachable,
    /// A PROXY protocol header that was missing, malformed, or from an untrusted peer.
    ProxyProtocol,
}

impl Refusal {
    const ALL: [Refusal; 4] = [
        Self::Limit,
        Self::NoInstance,
        Self::Unreachable,
        Self::ProxyProtocol,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::NoInstance => "no_instance",
            Self::Unreachable => "unreachable",
            Self::ProxyProtocol => "proxy_protocol",
        }
    }
}

/// The handles of one TCP listener.
#[derive(Debug, Clone)]
pub(crate) struct StreamMetrics {
    /// Bytes from clients.
    pub bytes_in: IntCounter,
    /// Bytes to clients.
    pub bytes_out: IntCounter,
    refused: [IntCounter; 4],
    /// Forwarded and open connections through each target of the pool, by target index.
    pub by_target: Vec<(IntCounter, IntGauge)>,
}

impl StreamMetrics {
    /// Handles for `listener` forwarding to `upstream`, whose targets are named `instances`.
    pub(crate) fn new<'a>(
        listener: &str,
        upstream: &str,
        instances: impl Iterator<Item = &'a str>,
    ) -> Self {
        let f = &*FAMILIES;
        Self {
            bytes_in: f.tcp_bytes.with_label_values(&[listener, "in"]),
            bytes_out: f.tcp_bytes.with_label_values(&[listener, "out"]),
            refused: Refusal::ALL.map(|r| f.tcp_refused.with_label_values(&[listener, r.label()])),
            by_target: instances
                .map(|i| {
                    let labels = [listener, upstream, i];
                    (
                        f.tcp_connections.with_label_values(&labels),
                        f.tcp_active.with_label_values(&labels),
                    )
                })
                .collect(),
        }
    }

    /// Counts a connection closed without being forwarded.
    pub(crate) fn refused(&self, why: Refusal) {
        self.refused[why as usize].inc();
    }
}

/// TLS versions a listener accepts, whose handshake counters are resolved in advance.
const TLS_VERSIONS: [&str; 2] = ["TLSv1.2", "TLSv1.3"];

/// The handles of one listener.
#[derive(Debug, Clone)]
pub(crate) struct ListenerMetrics {
    name: String,
    connections: IntGauge,
    handshakes: [IntCounter; 2],
}

impl ListenerMetrics {
    /// Handles for listener `name`.
    pub(crate) fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            connections: FAMILIES.connections.with_label_values(&[name]),
            handshakes: TLS_VERSIONS.map(|v| FAMILIES.handshakes.with_label_values(&[name, v])),
        }
    }

    /// Counts a connection as open for as long as the guard lives.
    pub(crate) fn open(&self) -> OpenConnection {
        OpenConnection::new(&self.connections)
    }

    /// Counts a completed TLS handshake that agreed on `version` (as OpenSSL names it).
    pub(crate) fn handshake(&self, version: &str) {
        match TLS_VERSIONS.iter().position(|v| *v == version) {
            Some(i) => self.handshakes[i].inc(),
            None => FAMILIES
                .handshakes
                .with_label_values(&[self.name.as_str(), version])
                .inc(),
        }
    }
}

/// An open connection, counted in a gauge; dropping it counts it closed.
#[derive(Debug)]
pub(crate) struct OpenConnection(IntGauge);

impl OpenConnection {
    /// Counts a connection open in `gauge`.
    pub(crate) fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
