//! One HTTP connection's requests, served one after another: in place of Pingora's own loop
//! for HTTP/1, so that each listener's `limits:` apply to its connections. Requests a client
//! pipelines are answered in order (RFC 9112 §9.3.2) rather than dropped; a connection
//! waits `keepalive_timeout` idle for its next request and carries
//! `max_requests_per_connection`; a request head must arrive whole within
//! `header_timeout` (of the connection's start, or of the end of the previous answer plus
//! `keepalive_timeout`), or the connection is closed. HTTP/2 connections are Pingora's.

use super::Proxy;
use crate::head::Reason;
use crate::metrics;
use crate::runtime::SharedRuntime;
use async_trait::async_trait;
use pingora::apps::{HttpServerApp, ReusedHttpStream, ServerApp};
use pingora::prelude::sleep;
use pingora::protocols::http::ServerSession;
use pingora::protocols::{Stream, ALPN};
use pingora::proxy::HttpProxy;
use pingora::server::ShutdownWatch;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

tokio::task_local! {
    /// Whether the request being served has its head: set by the proxy's first phase.
    static HEAD_RECEIVED: Cell<bool>;
}

/// Says that the request being served has its whole head, so its deadline is over.
pub(super) fn head_received() {
    // Outside a connection served here (an HTTP/2 stream) there is no deadline to end.
    let _ = HEAD_RECEIVED.try_with(|received| received.set(true));
}

/// The HTTP proxy, serving each HTTP/1 connection's requests under its listener's limits.
pub(crate) struct HttpConnections {
    http: Arc<HttpProxy<Proxy>>,
    runtime: SharedRuntime,
}

impl HttpConnections {
    /// Serves connections with `http`, under the limits of the listener each came in on.
    pub(crate) fn new(http: HttpProxy<Proxy>, runtime: SharedRuntime) -> Self {
        // Every listener's series exist from the start, so that increase() sees the first.
        let listeners = runtime.load().config.clone();
        let listeners = listeners.listeners.iter().filter(|l| l.protocol.is_http());
        for listener in listeners {
            for reason in Reason::ALL {
                metrics::rejected(&listener.name, reason.label());
            }
        }
        Self {
            http: Arc::new(http),
            runtime,
        }
    }

    /// Serves one request of the session, closing the connection (`None`) if its head is not
    /// whole within `wait`.
    async fn serve(
        &self,
        session: ServerSession,
        shutdown: &ShutdownWatch,
        wait: Duration,
        listener: Option<usize>,
    ) -> Option<ReusedHttpStream> {
        let served = async {
            let served = self.http.process_new_http(session, shutdown);
            tokio::pin!(served);
            tokio::select! {
                biased;
                done = &mut served => return done,
                () = sleep(wait) => {}
            }
            if HEAD_RECEIVED.with(Cell::get) {
                return served.await;
            }
            let rt = self.runtime.load();
            let name = listener.and_then(|i| rt.config.listeners.get(i));
            let name = name.map_or("", |l| l.name.as_str());
            metrics::rejected(name, Reason::HeaderTimeout.label()).inc();
            log::debug!("closing a connection on `{name}`: no request head in {wait:?}");
            None
        };
        HEAD_RECEIVED.scope(Cell::new(false), served).await
    }
}

#[async_trait]
impl ServerApp for HttpConnections {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            return self.http.process_new(stream, shutdown).await;
        }
        let socket = stream.get_socket_digest();
        let local = socket.as_ref().and_then(|d| d.local_addr()?.as_inet());
        let (listener, limits) = {
            let rt = self.runtime.load();
            let listener = rt.listeners.find(local);
            (listener, *rt.limits(listener))
        };
        let mut session = ServerSession::new_http1(stream);
        session.set_pipelining_enabled(true);
        if !*shutdown.borrow() {
            session.set_keepalive(Some(limits.keepalive_timeout.as_secs()));
        }
        let reuses = limits.max_requests_per_connection.saturating_sub(1);
        session.set_keepalive_reuses_remaining(Some(reuses));
        let mut wait = limits.header_timeout;
        loop {
            let reused = self.serve(session, shutdown, wait, listener).await?;
            let (stream, settings) = reused.consume();
            session = ServerSession::new_http1(stream);
            if let Some(settings) = settings {
                settings.apply_to_session(&mut session);
            }
            wait = limits.keepalive_timeout + limits.header_timeout;
        }
    }

    async fn cleanup(&self) {
        self.http.cleanup().await;
    }
}
