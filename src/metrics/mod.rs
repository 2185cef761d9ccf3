//! Prometheus metric families. Names are constants here; labels come only from names in the
//! configuration (route, upstream, instance), never from a request. Label handles are
//! resolved when a runtime is compiled ([`RouteMetrics`], [`TargetMetrics`]), so a request
//! only increments counters it already holds; when a change removes routes or targets, the
//! control plane removes their [`Series`]. Gauges of live state (in-flight requests, health)
//! are read at scrape time from whatever owns that state ([`LiveTargets`]), costing requests
//! nothing.

mod families;
mod handles;
mod live;
pub(crate) mod names;
mod series;

pub(crate) use handles::{
    buckets, Denial, Denials, ListenerMetrics, OpenConnection, Refusal, RequestCounters,
    Retirement, RouteMetrics, StreamMetrics, TargetMetrics,
};
pub(crate) use live::LiveTargets;
pub(crate) use series::Series;

use families::{FAMILIES, RELOAD_RESULTS};
use live::Live;
use prometheus::core::Collector;
use prometheus::{Encoder, IntCounter, Registry, TextEncoder};

/// The counter of access log lines dropped.
pub(crate) fn access_log_dropped() -> IntCounter {
    FAMILIES.access_log_dropped.clone()
}

/// The counter of requests `listener` refused before routing for `reason`.
pub(crate) fn rejected(listener: &str, reason: &str) -> IntCounter {
    FAMILIES.rejected.with_label_values(&[listener, reason])
}

/// Counts a rate-limit decision Redis failed to make.
pub(crate) fn count_ratelimit_store_error() {
    FAMILIES.ratelimit_store_errors.inc();
}

/// Counts a configuration reload that `succeeded` or not.
pub(crate) fn count_reload(succeeded: bool) {
    let result = RELOAD_RESULTS[usize::from(!succeeded)];
    FAMILIES.reloads.with_label_values(&[result]).inc();
}

/// What `registry` holds, in Prometheus's text format.
pub(crate) fn render(registry: &Registry) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and every family has valid names.
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A registry of every family, the live gauges of `targets`, and process metrics.
pub(crate) fn registry(targets: Box<dyn LiveTargets>) -> Registry {
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
        Box::new(f.rejected.clone()),
        Box::new(f.auth_failures.clone()),
        Box::new(f.ratelimited.clone()),
        Box::new(f.ratelimit_store_errors.clone()),
        Box::new(Live::new(targets)),
        Box::new(prometheus::process_collector::ProcessCollector::for_self()),
    ];
    for c in collectors {
        // Each family is registered once, into a fresh registry.
        let _ = registry.register(c);
    }
    registry
}
