//! Per-request state, grouped by concern.

use crate::connections::InFlight;
use crate::headers::Client;
use crate::listener::ListenerPolicy;
use crate::policy::{CorsAnswer, Identity, Quota};
use crate::routing::RouteMatch;
use crate::runtime::Runtime;
use crate::upstream::{Deadline, InflightGuard, Pool, Target, Tried};
use http::{HeaderName, HeaderValue};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

/// What one request carries from phase to phase.
pub(crate) struct RequestCtx {
    /// The runtime snapshot this request started with, kept to the end even across a reload.
    pub runtime: Arc<Runtime>,
    /// Index of the listener it came in on; set in `request_filter`.
    pub listener: Option<usize>,
    /// The request id (client's or generated); empty until `request_filter` runs.
    pub request_id: HeaderValue,
    /// Who sent it; set in `request_filter`.
    pub client: Option<Client>,
    /// The matched route; set in `request_filter`.
    pub route: Option<RouteMatch>,
    /// Who the policies identified; set in `request_filter`.
    pub identity: Option<Identity>,
    /// The chosen target and its in-flight count; replaced if a retry picks another.
    pub upstream: Option<Chosen>,
    /// Targets tried so far.
    pub tried: Tried,
    /// Attempts so far (the first included).
    pub attempts: u32,
    /// When the request started.
    pub started: Instant,
    /// When the last attempt was sent to an instance.
    pub upstream_started: Option<Instant>,
    /// Keeps a draining process alive until this request is done.
    _in_flight: InFlight,
    /// The CORS headers of its answers, when a `cors` policy applies; set in
    /// `request_filter` after routing.
    pub cors: Option<CorsAnswer>,
    /// The largest body accepted (`max_body_size`); set in `request_filter`.
    pub body_limit: Option<u64>,
    /// When the route's `total` runs out; set in `request_filter` once routed.
    pub deadline: Option<Deadline>,
    /// What the rate limits that admitted it report in the response's headers.
    pub rate_limit: Option<Quota>,
}

/// A target chosen for this request.
pub(crate) struct Chosen {
    /// The target.
    pub target: Arc<Target>,
    /// Counts this request against the target until dropped.
    pub _inflight: InflightGuard,
    /// Chosen in panic mode: no instance was available.
    pub panic: bool,
}

impl RequestCtx {
    /// The pool of the matched route.
    pub(crate) fn pool(&self) -> Option<&Pool> {
        let route = self.runtime.routes.get(self.route?.route)?;
        self.runtime.pools.get(route.pool)
    }

    /// The listener the request came in on.
    pub(crate) fn listener(&self) -> Option<&ListenerPolicy> {
        self.runtime.listeners.get(self.listener?)
    }

    /// A context on the current runtime.
    pub(crate) fn new(runtime: Arc<Runtime>) -> Self {
        Self {
            runtime,
            listener: None,
            request_id: HeaderValue::from_static(""),
            client: None,
            route: None,
            identity: None,
            upstream: None,
            tried: Tried::default(),
            attempts: 0,
            started: Instant::now(),
            upstream_started: None,
            _in_flight: InFlight::enter(),
            cors: None,
            body_limit: None,
            deadline: None,
            rate_limit: None,
        }
    }

    /// `headers` of one of weir's own answers (a refusal, 404, 5xx) with the request's
    /// CORS headers added, so that a page on an allowed origin can read it.
    pub(crate) fn own_headers<'a>(
        &self,
        headers: &'a [(HeaderName, HeaderValue)],
    ) -> Cow<'a, [(HeaderName, HeaderValue)]> {
        self.cors
            .as_ref()
            .map_or(Cow::Borrowed(headers), |c| c.added_to(headers))
    }

    /// Whether the request goes to the access log: unless its route turned the log off.
    pub(crate) fn logged(&self) -> bool {
        let route = self.route.and_then(|m| self.runtime.routes.get(m.route));
        route.is_none_or(|r| r.access_log)
    }

    /// Counts the finished request, answered with `status`, in the handles its runtime
    /// resolved: by route and instance, with its durations and retries.
    pub(crate) fn record(&self, status: u16) {
        let Some(route) = self.route.and_then(|m| self.runtime.routes.get(m.route)) else {
            self.runtime.unrouted.count(status);
            return;
        };
        let metrics = &route.metrics;
        metrics
            .duration
            .observe(self.started.elapsed().as_secs_f64());
        if self.attempts > 1 {
            metrics.retries.inc_by(u64::from(self.attempts - 1));
        }
        let consumer = self.identity.as_ref().map(|i| i.consumer);
        let target = self.upstream.as_ref().map(|c| c.target.index);
        metrics.requests(target, consumer).count(status);
        let Some(chosen) = &self.upstream else {
            return;
        };
        if let Some(sent) = self.upstream_started {
            let took = sent.elapsed().as_secs_f64();
            chosen.target.metrics.duration.observe(took);
        }
    }
}
