//! Draining: the count of requests in flight, and the proxy app whose idle keep-alive
//! connections outlive the listeners by a moment.

use super::IDLE_LINGER;
use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::v2::server::H2Options;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Requests this process is serving. One process serves one proxy, so the count is
/// process-wide; a draining process exits as soon as it reaches zero.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Counts one request as in flight until dropped.
pub struct InFlight(());

impl InFlight {
    /// Counts a request that has started.
    pub fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self(())
    }

    /// Requests being served now.
    pub fn count() -> usize {
        IN_FLIGHT.load(Ordering::Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The HTTP proxy, whose idle keep-alive connections close [`IDLE_LINGER`] after the
/// listeners do rather than at once.
pub struct Draining<A> {
    app: Arc<A>,
}

impl<A> Draining<A> {
    /// Wraps the proxy `app`.
    pub fn new(app: A) -> Self {
        Self { app: Arc::new(app) }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for Draining<A> {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        self.app.process_new_http(session, shutdown).await
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.app.server_options()
    }

    fn h2_options(&self) -> Option<H2Options> {
        self.app.h2_options()
    }

    async fn http_cleanup(&self) {
        // Meanwhile requests still come in on open connections; the shutdown watch makes
        // each answer close its connection.
        tokio::time::sleep(IDLE_LINGER).await;
        self.app.http_cleanup().await;
    }
}
