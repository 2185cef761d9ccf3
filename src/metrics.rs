//! Prometheus metric families. Names are constants here; labels come only from names in the
//! configuration (route, upstream, instance), never from a request. Label handles are
//! resolved when a runtime is compiled ([`RouteMetrics`], [`TargetMetrics`]), so a request
//! only increments counters it already holds; when a change removes routes or targets, the
//! control plane removes their [`Series`]. Gauges of live state (in-flight requests, health)
//! are read at scrape time from whatever owns that state ([`LiveTargets`]), costing requests
//! nothing.

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use std::sync::LazyLock;

/// Metric names, as dashboards and alerts query them.
pub mod names {
    /// Requests answered, by route, upstream, instance and status class.
    pub const REQUESTS: &str = "weir_requests_total";
    /// Time from request to the end of the response, by route and upstream.
    pub const REQUEST_DURATION: &str = "weir_request_duration_seconds";
    /// Time an instance took, from the request sent to the end of its response.
    pub const UPSTREAM_DURATION: &str = "weir_upstream_duration_seconds";
    /// Requests being served by an instance now.
    pub const IN_FLIGHT: &str = "weir_in_flight_requests";
    /// 1 when an instance may take requests, 0 when it is down or ejected.
    pub const HEALTH: &str = "weir_upstream_health";
    /// Passive ejections of an instance.
    pub const EJECTIONS: &str = "weir_upstream_ejections_total";
    /// Attempts after the first, by route and upstream.
    pub const RETRIES: &str = "weir_retries_total";
    /// Downstream connections open now, by listener.
    pub const DOWNSTREAM_CONNECTIONS: &str = "weir_downstream_connections";
    /// TLS handshakes completed, by listener and protocol version.
    pub const TLS_HANDSHAKES: &str = "weir_tls_handshakes_total";
    /// Connections to an instance that failed or timed out.
    pub const CONNECT_FAILURES: &str = "weir_upstream_connect_failures_total";
    /// TCP connections forwarded, by listener, upstream and instance.
    pub const TCP_CONNECTIONS: &str = "weir_tcp_connections_total";
    /// TCP connections open now, by listener, upstream and instance.
    pub const TCP_ACTIVE: &str = "weir_tcp_active_connections";
    /// Bytes forwarded by TCP listeners, by listener and direction (`in` from clients, `out`
    /// to them).
    pub const TCP_BYTES: &str = "weir_tcp_bytes_total";
    /// TCP connections closed without being forwarded, by listener and reason.
    pub const TCP_REFUSED: &str = "weir_tcp_refused_total";
    /// Configuration reloads, by result.
    pub const RELOADS: &str = "weir_config_reloads_total";
    /// Access log lines dropped because the writer was `access_log.queue` lines behind.
    pub const ACCESS_LOG_DROPPED: &str = "weir_access_log_dropped_total";
    /// Always 1, labelled with the version.
    pub const BUILD_INFO: &str = "weir_build_info";
}

/// Status classes, the last label of [`names::REQUESTS`]; index = status / 100 - 1.
const CODE_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Values of the `result` label of [`names::RELOADS`].
const RELOAD_RESULTS: [&str; 2] = ["success", "failure"];

/// Latency buckets in seconds: 1 ms to 30 s.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A metric family or description built from this file's constant names, labels and
/// buckets: only a mistake in this file could make one invalid, and every test that starts
/// weir builds all of them.
#[allow(clippy::expect_used)]
fn valid<T>(built: prometheus::Result<T>) -> T {
    built.expect("metric names, labels and buckets are valid constants")
}

/// The families requests and reloads count into, one set per process.
struct Families {
    requests: IntCounterVec,
    request_duration: HistogramVec,
    upstream_duration: HistogramVec,
    ejections: IntCounterVec,
    retries: IntCounterVec,
    reloads: IntCounterVec,
    build_info: IntGaugeVec,
    connections: IntGaugeVec,
    handshakes: IntCounterVec,
    connect_failures: IntCounterVec,
    tcp_connections: IntCounterVec,
    tcp_active: IntGaugeVec,
    tcp_bytes: IntCounterVec,
    tcp_refused: IntCounterVec,
    access_log_dropped: IntCounter,
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| {
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
            &["route", "upstream", "instance", "code_class"],
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
    }
});

/// One counter per status class for one (route, upstream, instance).
#[derive(Debug, Clone)]
pub struct RequestCounters([IntCounter; 5]);

impl RequestCounters {
    /// The counters of `route` through `upstream` to `instance` (empty names for none).
    pub fn new(route: &str, upstream: &str, instance: &str) -> Self {
        Self(CODE_CLASSES.map(|class| {
            FAMILIES
                .requests
                .with_label_values(&[route, upstream, instance, class])
        }))
    }

    /// Counts a request answered with `status` (one above 599 counts as 5xx).
    pub fn count(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.0[class].inc();
    }

    /// Requests counted so far: all of them, and those answered 5xx.
    pub fn totals(&self) -> (u64, u64) {
        let all = self.0.iter().map(IntCounter::get).sum();
        (all, self.0[4].get())
    }
}

/// The cumulative buckets of `histogram`: (upper bound in seconds, observations up to it),
/// the last bound being infinity.
pub fn buckets(histogram: &Histogram) -> Vec<(f64, u64)> {
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
pub struct RouteMetrics {
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
    pub fn new<'a>(route: &str, upstream: &str, instances: impl Iterator<Item = &'a str>) -> Self {
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
pub struct TargetMetrics {
    /// Time the instance took.
    pub duration: Histogram,
    /// Passive ejections.
    pub ejections: IntCounter,
    /// Connections that failed or timed out.
    pub connect_failures: IntCounter,
}

impl TargetMetrics {
    /// Handles for `instance` of `upstream`.
    pub fn new(upstream: &str, instance: &str) -> Self {
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
pub enum Refusal {
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
pub struct StreamMetrics {
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
    pub fn new<'a>(
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
    pub fn refused(&self, why: Refusal) {
        self.refused[why as usize].inc();
    }
}

/// TLS versions a listener accepts, whose handshake counters are resolved in advance.
const TLS_VERSIONS: [&str; 2] = ["TLSv1.2", "TLSv1.3"];

/// The handles of one listener.
#[derive(Debug, Clone)]
pub struct ListenerMetrics {
    name: String,
    connections: IntGauge,
    handshakes: [IntCounter; 2],
}

impl ListenerMetrics {
    /// Handles for listener `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            connections: FAMILIES.connections.with_label_values(&[name]),
            handshakes: TLS_VERSIONS.map(|v| FAMILIES.handshakes.with_label_values(&[name, v])),
        }
    }

    /// Counts a connection as open for as long as the guard lives.
    pub fn open(&self) -> OpenConnection {
        OpenConnection::new(&self.connections)
    }

    /// Counts a completed TLS handshake that agreed on `version` (as OpenSSL names it).
    pub fn handshake(&self, version: &str) {
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
pub struct OpenConnection(IntGauge);

impl OpenConnection {
    /// Counts a connection open in `gauge`.
    pub fn new(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The counter of access log lines dropped.
pub fn access_log_dropped() -> IntCounter {
    FAMILIES.access_log_dropped.clone()
}

/// Counts a configuration reload that `succeeded` or not.
pub fn count_reload(succeeded: bool) {
    let result = RELOAD_RESULTS[usize::from(!succeeded)];
    FAMILIES.reloads.with_label_values(&[result]).inc();
}

/// The live state of every target, read at scrape time.
pub trait LiveTargets: Send + Sync {
    /// Calls `each` with the upstream, instance, requests in flight and availability of every
    /// target being served now.
    fn each_target(&self, each: &mut dyn FnMut(&str, &str, usize, bool));
}

/// Gauges of live target state, collected at scrape time.
struct Live {
    targets: Box<dyn LiveTargets>,
    descs: Vec<Desc>,
}

/// The live gauges' names and help texts.
const LIVE_GAUGES: [(&str, &str); 2] = [
    (names::IN_FLIGHT, "Requests being served by an instance"),
    (
        names::HEALTH,
        "1 when an instance may take requests, else 0",
    ),
];

impl Live {
    fn new(targets: Box<dyn LiveTargets>) -> Self {
        let descs = LIVE_GAUGES
            .iter()
            .map(|(name, help)| {
                valid(Desc::new(
                    name.to_string(),
                    help.to_string(),
                    vec!["upstream".into(), "instance".into()],
                    Default::default(),
                ))
            })
            .collect();
        Self { targets, descs }
    }
}

impl Collector for Live {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let [in_flight, health] = LIVE_GAUGES.map(|(name, help)| {
            valid(IntGaugeVec::new(
                Opts::new(name, help),
                &["upstream", "instance"],
            ))
        });
        self.targets
            .each_target(&mut |upstream, instance, requests, available| {
                let labels = [upstream, instance];
                in_flight
                    .with_label_values(&labels)
                    .set(i64::try_from(requests).unwrap_or(i64::MAX));
                health.with_label_values(&labels).set(i64::from(available));
            });
        let mut families = in_flight.collect();
        families.extend(health.collect());
        families
    }
}

/// The label values of the series one runtime counts into, so that a change can remove
/// those of the routes and targets it took away.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Series {
    /// A route through its upstream: durations, retries, requests that reached no instance.
    Route {
        /// The route.
        route: String,
        /// Its upstream.
        upstream: String,
    },
    /// Requests of a route answered through one instance.
    RouteTarget {
        /// The route.
        route: String,
        /// Its upstream.
        upstream: String,
        /// The instance.
        instance: String,
    },
    /// One instance of an upstream: durations, ejections, connect failures.
    Target {
        /// The upstream.
        upstream: String,
        /// The instance.
        instance: String,
    },
    /// Connections of a TCP listener forwarded to one instance.
    StreamTarget {
        /// The listener.
        listener: String,
        /// Its upstream.
        upstream: String,
        /// The instance.
        instance: String,
    },
}

impl Series {
    /// Removes the series from every family it is in. Requests still holding its handles
    /// count into counters no scrape reads.
    pub fn remove(&self) {
        let f = &*FAMILIES;
        // A series that was never touched is not there to remove; that is fine.
        let requests = |route: &str, upstream: &str, instance: &str| {
            for class in CODE_CLASSES {
                let _ = f
                    .requests
                    .remove_label_values(&[route, upstream, instance, class]);
            }
        };
        match self {
            Self::Route { route, upstream } => {
                let labels = [route.as_str(), upstream];
                let _ = f.request_duration.remove_label_values(&labels);
                let _ = f.retries.remove_label_values(&labels);
                requests(route, upstream, "");
            }
            Self::RouteTarget {
                route,
                upstream,
                instance,
            } => requests(route, upstream, instance),
            Self::Target { upstream, instance } => {
                let labels = [upstream.as_str(), instance];
                let _ = f.upstream_duration.remove_label_values(&labels);
                let _ = f.ejections.remove_label_values(&labels);
                let _ = f.connect_failures.remove_label_values(&labels);
            }
            Self::StreamTarget {
                listener,
                upstream,
                instance,
            } => {
                let labels = [listener.as_str(), upstream, instance];
                let _ = f.tcp_connections.remove_label_values(&labels);
                let _ = f.tcp_active.remove_label_values(&labels);
            }
        }
    }
}

/// What `registry` holds, in Prometheus's text format.
pub fn render(registry: &Registry) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every family has valid names.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A registry of every family, the live gauges of `targets`, and process metrics.
pub fn registry(targets: Box<dyn LiveTargets>) -> Registry {
    let registry = Registry::new();
    let f = &*FAMILIES;
    let collectors: Vec<Box<dyn Collector>> = vec![
        Box::new(f.requests.clone()),
        Box::new(f.request_duration.clone()),
        Box::new(f.upstream_duration.clone()),
        Box::new(f.ejections.clone()),
        Box::new(f.retries.clone()),
        Box::new(f.reloads.clone()),
        Box::new(f.build_info.clone()),
        Box::new(f.connections.clone()),
        Box::new(f.handshakes.clone()),
        Box::new(f.connect_failures.clone()),
        Box::new(f.tcp_connections.clone()),
        Box::new(f.tcp_active.clone()),
        Box::new(f.tcp_bytes.clone()),
        Box::new(f.tcp_refused.clone()),
        Box::new(f.access_log_dropped.clone()),
        Box::new(Live::new(targets)),
        Box::new(prometheus::process_collector::ProcessCollector::for_self()),
    ];
    for c in collectors {
        // Each family is registered once, into a fresh registry.
        let _ = registry.register(c);
    }
    registry
}
