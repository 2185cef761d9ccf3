//! Label handles, resolved when a runtime is compiled, so that a request or a connection
//! only increments counters it already holds.

use super::families::{CODE_CLASSES, FAMILIES, RATE_KEYS};
use super::Series;
use prometheus::{Histogram, IntCounter, IntGauge};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

/// Whether a runtime's series were retired: once a change has removed the series it took
/// away, the requests still running on the old runtime must not create them again, or
/// they would stay in the scrape until a restart. Shared by the handles that create series
/// at first use.
#[derive(Debug, Clone, Default)]
pub(crate) struct Retirement(Arc<AtomicBool>);

impl Retirement {
    /// From now on, no series is created through these handles.
    pub(crate) fn retire(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn retired(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The handle in `cell`, created by `make` unless retired. One created while the
    /// runtime was being retired is removed again by `remove` (the series removal may have
    /// run before it existed) and not handed out.
    fn get_or_create<'a, T>(
        &self,
        cell: &'a OnceLock<T>,
        make: impl FnOnce() -> T,
        remove: impl FnOnce(),
    ) -> Option<&'a T> {
        if let Some(made) = cell.get() {
            return Some(made);
        }
        if self.retired() {
            return None;
        }
        let made = cell.get_or_init(make);
        if self.retired() {
            remove();
            return None;
        }
        Some(made)
    }
}

/// One counter per status class for one (route, upstream, instance, consumer).
#[derive(Debug, Clone)]
pub(crate) struct RequestCounters([IntCounter; 5]);

impl RequestCounters {
    /// The counters of `route` through `upstream` to `instance` for `consumer` (empty names
    /// for none).
    pub(crate) fn new(route: &str, upstream: &str, instance: &str, consumer: &str) -> Self {
        Self(CODE_CLASSES.map(|class| {
            FAMILIES
                .requests
                .with_label_values(&[route, upstream, instance, class, consumer])
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
#[derive(Debug)]
pub(crate) struct RouteMetrics {
    /// Request duration.
    pub duration: Histogram,
    /// Retries.
    pub retries: IntCounter,
    /// Requests of no identified consumer answered through each target of the route's
    /// pool, by target index.
    pub by_target: Vec<RequestCounters>,
    /// Requests of no identified consumer answered without reaching a target (none
    /// available, or refused before).
    pub no_target: RequestCounters,
    /// Requests refused by a policy.
    pub denials: Denials,
    /// Requests of identified consumers.
    pub consumers: ConsumerCounters,
}

impl RouteMetrics {
    /// Handles for `route` to `upstream`, whose targets are named `instances`, called by
    /// the consumers named `consumers` (by consumer index).
    pub(crate) fn new<'a>(
        route: &str,
        upstream: &str,
        instances: impl Iterator<Item = &'a str>,
        consumers: Arc<[String]>,
        retirement: &Retirement,
    ) -> Self {
        let instances: Vec<String> = instances.map(str::to_string).collect();
        Self {
            duration: FAMILIES
                .request_duration
                .with_label_values(&[route, upstream]),
            retries: FAMILIES.retries.with_label_values(&[route, upstream]),
            by_target: instances
                .iter()
                .map(|i| RequestCounters::new(route, upstream, i, ""))
                .collect(),
            no_target: RequestCounters::new(route, upstream, "", ""),
            denials: Denials::new(route, retirement),
            consumers: ConsumerCounters {
                route: route.to_string(),
                upstream: upstream.to_string(),
                cells: (0..=instances.len()).map(|_| OnceLock::new()).collect(),
                instances,
                consumers,
                retirement: retirement.clone(),
            },
        }
    }

    /// The counters of requests through target `target` (`None`: none reached) of
    /// `consumer` (`None`: none identified).
    pub(crate) fn requests(
        &self,
        target: Option<usize>,
        consumer: Option<usize>,
    ) -> &RequestCounters {
        let anonymous = target
            .and_then(|t| self.by_target.get(t))
            .unwrap_or(&self.no_target);
        consumer
            .and_then(|c| self.consumers.get(target, c))
            .unwrap_or(anonymous)
    }
}

/// Request counters by target and consumer, created at a pair's first request, so that a
/// scrape holds the pairs that were seen rather than every consumer of every target, and a
/// request takes no lock once its pair exists.
#[derive(Debug)]
pub(crate) struct ConsumerCounters {
    route: String,
    upstream: String,
    /// Instance names by target index.
    instances: Vec<String>,
    /// Consumer names by consumer index.
    consumers: Arc<[String]>,
    /// By target index, then one more for requests that reached none; then by consumer.
    cells: Vec<OnceLock<Box<[OnceLock<RequestCounters>]>>>,
    retirement: Retirement,
}

impl ConsumerCounters {
    /// `None` once the runtime is retired and the pair was never counted: the request is
    /// then counted without its consumer.
    fn get(&self, target: Option<usize>, consumer: usize) -> Option<&RequestCounters> {
        let slot = target.unwrap_or(self.instances.len());
        let name = self.consumers.get(consumer)?;
        let row = self
            .cells
            .get(slot)?
            .get_or_init(|| (0..self.consumers.len()).map(|_| OnceLock::new()).collect());
        let instance = target
            .and_then(|t| self.instances.get(t))
            .map_or("", String::as_str);
        self.retirement.get_or_create(
            row.get(consumer)?,
            || RequestCounters::new(&self.route, &self.upstream, instance, name),
            || {
                Series::Requests {
                    route: self.route.clone(),
                    upstream: self.upstream.clone(),
                    instance: instance.to_string(),
                    consumer: name.clone(),
                }
                .remove();
            },
        )
    }
}

/// Why a policy refused a request; the `reason` label of `weir_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denial {
    /// No credential of an accepted method.
    Missing,
    /// An API key no consumer has.
    BadKey,
    /// A basic-auth user or password that does not match.
    BadPassword,
    /// A token that is malformed, badly signed, expired or for someone else.
    BadToken,
    /// A valid token whose consumer claim names no consumer.
    UnknownConsumer,
    /// A consumer outside the groups and consumers the route lets in.
    Forbidden,
    /// A client address the rules refuse.
    Ip,
    /// A CORS preflight from an origin, or for a method, the route does not allow.
    Cors,
}

impl Denial {
    /// Every reason, in label order.
    pub(crate) const ALL: [Denial; 8] = [
        Self::Missing,
        Self::BadKey,
        Self::BadPassword,
        Self::BadToken,
        Self::UnknownConsumer,
        Self::Forbidden,
        Self::Ip,
        Self::Cors,
    ];

    /// The label value.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::BadKey => "bad_key",
            Self::BadPassword => "bad_password",
            Self::BadToken => "bad_token",
            Self::UnknownConsumer => "unknown_consumer",
            Self::Forbidden => "forbidden",
            Self::Ip => "ip",
            Self::Cors => "cors",
        }
    }
}

/// The refusal counters of one route (or of requests no route matched), each created at
/// its first refusal, so that routes without policies add nothing to a scrape.
#[derive(Debug)]
pub(crate) struct Denials {
    route: String,
    counters: [OnceLock<IntCounter>; 8],
    retirement: Retirement,
    /// Rate-limit refusals, by the `by` of the rule ([`RATE_KEYS`]).
    limited: [OnceLock<IntCounter>; 4],
}

impl Denials {
    /// Handles for `route` (empty for none), created no more once `retirement` is retired.
    pub(crate) fn new(route: &str, retirement: &Retirement) -> Self {
        Self {
            route: route.to_string(),
            counters: Default::default(),
            retirement: retirement.clone(),
            limited: Default::default(),
        }
    }

    /// Counts a refusal (not one on a retired runtime's route that never refused before).
    pub(crate) fn count(&self, why: Denial) {
        let labels = [self.route.as_str(), why.label()];
        let counter = self.retirement.get_or_create(
            &self.counters[why as usize],
            || FAMILIES.auth_failures.with_label_values(&labels),
            || {
                let _ = FAMILIES.auth_failures.remove_label_values(&labels);
            },
        );
        if let Some(counter) = counter {
            counter.inc();
        }
    }

    /// Counts a refusal by a rate limit whose key is `by` (its `RateKey::label`).
    pub(crate) fn count_limited(&self, by: &str) {
        let Some(i) = RATE_KEYS.iter().position(|k| *k == by) else {
            return;
        };
        let labels = [self.route.as_str(), RATE_KEYS[i]];
        let counter = self.retirement.get_or_create(
            &self.limited[i],
            || FAMILIES.ratelimited.with_label_values(&labels),
            || {
                let _ = FAMILIES.ratelimited.remove_label_values(&labels);
            },
        );
        if let Some(counter) = counter {
            counter.inc();
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

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::core::Collector;

    /// The `consumer` labels of the request series of `route`, and its refusal reasons.
    fn series_of(route: &str) -> (Vec<String>, Vec<String>) {
        let label = |families: Vec<prometheus::proto::MetricFamily>, name: &str| {
            let mut found: Vec<String> = families
                .iter()
                .flat_map(|f| f.get_metric())
                .filter(|m| m.get_label().iter().any(|l| l.value() == route))
                .flat_map(|m| m.get_label().iter().filter(|l| l.name() == name))
                .map(|l| l.value().to_string())
                .collect();
            found.sort();
            found.dedup();
            found
        };
        (
            label(FAMILIES.requests.collect(), "consumer"),
            label(FAMILIES.auth_failures.collect(), "reason"),
        )
    }

    #[test]
    fn a_retired_runtime_creates_no_series() {
        let retirement = Retirement::default();
        let consumers: Arc<[String]> = Arc::from(["c1".to_string(), "anonymous".to_string()]);
        let route = "retired-route";
        let m = RouteMetrics::new(route, "up", ["i1"].into_iter(), consumers, &retirement);
        m.requests(Some(0), Some(0)).count(200);
        m.denials.count(Denial::BadKey);
        retirement.retire();
        m.requests(Some(0), Some(0)).count(200);
        m.requests(Some(0), Some(1)).count(200);
        m.denials.count(Denial::Missing);
        let (consumers, reasons) = series_of(route);
        assert_eq!(
            consumers,
            ["", "c1"],
            "anonymous was first seen after retirement"
        );
        assert_eq!(reasons, ["bad_key"]);
        let counted = m.requests(Some(0), Some(0)).totals().0;
        assert_eq!(counted, 2, "a pair made before retirement keeps counting");
    }
}
