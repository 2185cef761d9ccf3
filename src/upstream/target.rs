//! One instance of an upstream, and the live state that outlives runtime rebuilds.

use super::health::Health;
use crate::metrics::TargetMetrics;
use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Live state of one target of one upstream. Carried from one runtime to the next for the
/// same upstream, target and address, so a reload resets neither least-connections counts
/// nor health; two upstreams naming one instance each keep their own.
#[derive(Debug)]
pub(crate) struct TargetState {
    inflight: AtomicUsize,
    /// Active and passive health.
    pub health: Health,
}

impl TargetState {
    /// State of an instance seen for the first time; `ramp_from` starts its slow start
    /// (0 for instances present at startup, which take their full share at once).
    pub(crate) fn new(initially_healthy: bool, ramp_from: u64) -> Self {
        Self {
            inflight: AtomicUsize::new(0),
            health: Health::new(initially_healthy, ramp_from),
        }
    }

    /// Requests currently sent to this address and not yet finished.
    pub(crate) fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// A target of a compiled pool.
#[derive(Debug)]
pub(crate) struct Target {
    /// Name shown in the instance response header.
    pub name: http::HeaderValue,
    /// Position in its pool's target list.
    pub index: usize,
    /// Resolved address.
    pub addr: SocketAddr,
    /// The address as the configuration writes it (a host name, for discovered targets):
    /// how the admin API names the target.
    pub configured: String,
    /// Relative share, at least 1 (weight-0 targets are not selectable at all).
    pub weight: u32,
    /// Used only when no primary target is available.
    pub backup: bool,
    /// Drained: takes no new requests.
    pub drain: bool,
    /// Connection settings; cloned per request so Pingora's pool reuses connections.
    pub peer: HttpPeer,
    /// Live state, shared across reloads.
    pub state: Arc<TargetState>,
    /// Its metric handles.
    pub metrics: TargetMetrics,
}

impl Target {
    /// Whether it may take new requests at all: weight above 0 and not drained.
    pub(crate) fn selectable(&self) -> bool {
        self.weight > 0 && !self.drain
    }

    /// The instance name for logs.
    pub(crate) fn label(&self) -> &str {
        self.name.to_str().unwrap_or("?")
    }
}

/// Counts one request as in flight on a target for as long as it lives. Kept in the request
/// context: replaced when a retry picks another target, dropped when the request ends.
#[derive(Debug)]
pub(crate) struct InflightGuard(Arc<TargetState>);

impl InflightGuard {
    /// Marks a request as started on `target`.
    pub(crate) fn new(target: &Target) -> Self {
        target.state.inflight.fetch_add(1, Ordering::Relaxed);
        Self(target.state.clone())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}
