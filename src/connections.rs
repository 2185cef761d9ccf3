//! Downstream connections and requests, as the listeners' apps see them: connections
//! counted per listener (open now, and TLS handshakes by protocol version) and outliving the
//! listeners by a moment when the process stops; requests in flight, which a stopping
//! process waits on. A wrapper around an app, which Pingora calls once per accepted
//! connection (after its TLS handshake); it serves the connection's reuses itself, so it
//! sees each connection start and end exactly once.

use crate::config::Listener;
use crate::listener::Listeners;
use crate::metrics::ListenerMetrics;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `app`, with its connections counted.
pub(crate) struct Connections<A> {
    app: Arc<A>,
    listeners: Listeners,
    metrics: Vec<ListenerMetrics>,
    linger: Duration,
}

impl<A> Connections<A> {
    /// Wraps `app`, serving `listeners`. Once the listeners close, the app's cleanup waits
    /// `linger` first: requests still come in on open keep-alive connections meanwhile, and
    /// the shutdown watch makes each answer close its connection, rather than every idle
    /// connection closing at once under a client that is sending on it.
    pub(crate) fn new(app: A, listeners: &[Listener], linger: Duration) -> Self {
        Self {
            app: Arc::new(app),
            listeners: Listeners::new(listeners),
            metrics: listeners
                .iter()
                .map(|l| ListenerMetrics::new(&l.name))
                .collect(),
            linger,
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Connections<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let socket = stream.get_socket_digest();
        let local = socket.as_ref().and_then(|d| d.local_addr()?.as_inet());
        let metrics = self.listeners.find(local).and_then(|i| self.metrics.get(i));
        let _open = metrics.map(|m| {
            if let Some(tls) = stream.get_ssl_digest() {
                m.handshake(&tls.version);
            }
            m.open()
        });
        let mut next = self.app.process_new(stream, shutdown).await;
        while let Some(reused) = next {
            next = self.app.process_new(reused, shutdown).await;
        }
        None
    }

    async fn cleanup(&self) {
        tokio::time::sleep(self.linger).await;
        self.app.cleanup().await;
    }
}

/// Requests this process is serving. One process serves one proxy, so the count is
/// process-wide; a draining process exits as soon as it reaches zero.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one request as in flight until dropped.
pub(crate) struct InFlight(());

impl InFlight {
    /// Counts a request that has started.
    pub(crate) fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self(())
    }

    /// Requests being served now.
    pub(crate) fn count() -> usize {
        IN_FLIGHT.load(Ordering::Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}
