//! Downstream connections, counted per listener: open now, and TLS handshakes by protocol
//! version. A wrapper around the HTTP app, which Pingora calls once per accepted connection
//! (after its TLS handshake); it serves the connection's reuses itself, so it sees each
//! connection start and end exactly once.

use crate::config::Listener;
use crate::listener::Listeners;
use crate::metrics::ListenerMetrics;
use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::sync::Arc;

/// `app`, with its connections counted.
pub struct Counted<A> {
    app: Arc<A>,
    listeners: Listeners,
    metrics: Vec<ListenerMetrics>,
}

impl<A> Counted<A> {
    /// Wraps `app`, serving `listeners`.
    pub fn new(app: A, listeners: &[Listener]) -> Self {
        Self {
            app: Arc::new(app),
            listeners: Listeners::new(listeners),
            metrics: listeners
                .iter()
                .map(|l| ListenerMetrics::new(&l.name))
                .collect(),
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Counted<A> {
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
        self.app.cleanup().await;
    }
}
