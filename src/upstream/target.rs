//! One instance of an upstream, and the live state that outlives runtime rebuilds.

use pingora::upstreams::peer::HttpPeer;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Live state of one instance address. Shared by every runtime that has a target at this
/// address, so a reload does not reset least-connections counts.
#[derive(Debug, Default)]
pub struct TargetState {
    inflight: AtomicUsize,
}

impl TargetState {
    /// Requests currently sent to this address and not yet finished.
    pub fn inflight(&self) -> usize {
        self.inflight.load(Ordering::Relaxed)
    }
}

/// A target of a compiled pool.
#[derive(Debug)]
pub struct Target {
    /// Name shown in the instance response header.
    pub name: http::HeaderValue,
    /// Resolved address.
    pub addr: SocketAddr,
    /// Relative share, at least 1 (weight-0 targets are not selectable at all).
    pub weight: u32,
    /// Connection settings; cloned per request so Pingora's pool reuses connections.
    pub peer: HttpPeer,
    /// Live state, shared across reloads.
    pub state: Arc<TargetState>,
}

/// Counts one request as in flight on a target for as long as it lives. Kept in the request
/// context: replaced when a retry picks another target, dropped when the request ends.
#[derive(Debug)]
pub struct InflightGuard(Arc<TargetState>);

impl InflightGuard {
    /// Marks a request as started on `target`.
    pub fn new(target: &Target) -> Self {
        target.state.inflight.fetch_add(1, Ordering::Relaxed);
        Self(target.state.clone())
    }
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::Relaxed);
    }
}
