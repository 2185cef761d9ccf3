//! L4: `tcp` and `tls` listeners forward connections to an upstream without reading them
//! (nginx's `stream`, HAProxy's `mode tcp`). Per connection: the listener's limit, a PROXY
//! protocol header from a trusted balancer in front, an instance picked by the pool's
//! algorithm (connect failures move on to another instance), a PROXY protocol header to the
//! instance, then bytes both ways until both sides are done or the connection idles out.

mod limit;
mod pipe;
mod proxy_protocol;

use crate::access_log::{AccessLog, Entry, Served};
use crate::config::Listener;
use crate::connections::InFlight;
use crate::listener::Listeners;
use crate::metrics::{OpenConnection, Refusal};
use crate::runtime::{CompiledStream, Runtime, SharedRuntime};
use crate::upstream::{hash_key, InflightGuard, Target, Tried};
use async_trait::async_trait;
use limit::Limiter;
use pingora::apps::ServerApp;
use pingora::protocols::Stream;
use pingora::server::ShutdownWatch;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// How long a balancer in front may take to send its PROXY protocol header.
const PROXY_HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// nginx stream's session statuses, which the access log reports.
mod status {
    /// Forwarded.
    pub(super) const FORWARDED: u16 = 200;
    /// The PROXY protocol header was missing or malformed.
    pub(super) const BAD_HEADER: u16 = 400;
    /// A PROXY protocol header from a peer not in `trusted_proxies`.
    pub(super) const UNTRUSTED: u16 = 403;
    /// No instance could be connected to.
    pub(super) const UNREACHABLE: u16 = 502;
    /// Over the connection limit, or no instance available.
    pub(super) const UNAVAILABLE: u16 = 503;
}

/// The TCP proxy of every `tcp` and `tls` listener.
pub(crate) struct TcpProxy {
    runtime: SharedRuntime,
    listeners: Listeners,
    /// One per listener, by index: limits hold across reloads.
    limits: Vec<Arc<Limiter>>,
    access_log: Option<AccessLog>,
}

/// What the access log and metrics learn about one connection.
struct Record<'a> {
    client: SocketAddr,
    target: Option<Arc<Target>>,
    retries: u32,
    copied: pipe::Copied,
    stream: &'a CompiledStream,
}

impl TcpProxy {
    /// Serves the `tcp` and `tls` listeners among `listeners` from `runtime`.
    pub(crate) fn new(
        runtime: SharedRuntime,
        listeners: &[Listener],
        access_log: Option<AccessLog>,
    ) -> Self {
        Self {
            runtime,
            listeners: Listeners::new(listeners),
            limits: listeners.iter().map(|_| Arc::default()).collect(),
            access_log,
        }
    }

    /// Forwards one connection; its status.
    async fn forward(
        &self,
        runtime: &Runtime,
        limiter: &Arc<Limiter>,
        mut client: Stream,
        local: SocketAddr,
        record: &mut Record<'_>,
    ) -> u16 {
        let settings = &record.stream.settings;
        let metrics = &record.stream.metrics;
        let Some(_slot) = limiter
            .acquire(settings.max_connections, settings.queue_timeout)
            .await
        else {
            metrics.refused(Refusal::Limit);
            return status::UNAVAILABLE;
        };
        // What goes to the instance before the client's bytes: a PROXY header, then what was
        // read past the one a balancer in front sent.
        let mut first = Vec::new();
        let mut destination = local;
        if settings.accept_proxy {
            if !runtime.headers.is_trusted(record.client.ip()) {
                metrics.refused(Refusal::ProxyProtocol);
                return status::UNTRUSTED;
            }
            let header =
                tokio::time::timeout(PROXY_HEADER_TIMEOUT, proxy_protocol::read(&mut client));
            match header
                .await
                .unwrap_or(Err(proxy_protocol::HeaderError::Truncated))
            {
                Ok(received) => {
                    if let Some((client, to)) = received.addresses {
                        (record.client, destination) = (client, to);
                    }
                    record.copied.received = received.rest.len() as u64;
                    metrics.bytes_in.inc_by(record.copied.received);
                    first = received.rest;
                }
                Err(e) => {
                    log::warn!(
                        "listener `{}`: {} from {}",
                        record.stream.listener,
                        e,
                        record.client
                    );
                    metrics.refused(Refusal::ProxyProtocol);
                    return status::BAD_HEADER;
                }
            }
        }
        if let Some(version) = settings.send_proxy {
            let mut header = proxy_protocol::header(version, record.client, destination);
            header.append(&mut first);
            first = header;
        }
        let pool = &runtime.pools[record.stream.pool];
        let Some((target, mut instance, _in_flight)) = self.connect(runtime, record).await else {
            // Tried and failed (the log names the last one), or nothing to try.
            return if record.target.is_some() {
                metrics.refused(Refusal::Unreachable);
                status::UNREACHABLE
            } else {
                metrics.refused(Refusal::NoInstance);
                status::UNAVAILABLE
            };
        };
        if let Err(e) = instance.write_all(&first).await {
            pool.failed(&target, &e);
            metrics.refused(Refusal::Unreachable);
            return status::UNREACHABLE;
        }
        let (forwarded, active) = &metrics.by_target[target.index];
        forwarded.inc();
        let _open = OpenConnection::new(active);
        let counters = (&metrics.bytes_in, &metrics.bytes_out);
        let copied = pipe::pipe(client, instance, settings.idle_timeout, counters).await;
        record.copied.received += copied.received;
        record.copied.sent = copied.sent;
        status::FORWARDED
    }

    /// Connects to an instance of the pool, moving on to another one after a failure or a
    /// timeout, as many times as the pool's retries allow. The instance counts the
    /// connection as open from the moment it is picked, so that `least_conn` spreads a burst.
    async fn connect(
        &self,
        runtime: &Runtime,
        record: &mut Record<'_>,
    ) -> Option<(Arc<Target>, TcpStream, InflightGuard)> {
        let pool = &runtime.pools[record.stream.pool];
        let key = hash_key(record.client.ip());
        let mut tried = Tried::default();
        for attempt in 0..pool.max_attempts().max(1) {
            let target = pool.select_connection(&key, tried)?.target;
            let in_flight = InflightGuard::new(&target);
            tried.insert(target.index);
            record.retries = attempt;
            record.target = Some(target.clone());
            let connected =
                tokio::time::timeout(pool.connect_timeout, TcpStream::connect(target.addr));
            let failure = match connected.await {
                Ok(Ok(stream)) => {
                    let _ = stream.set_nodelay(true);
                    pool.succeeded(&target);
                    return Some((target, stream, in_flight));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => format!("no connection within {:?}", pool.connect_timeout),
            };
            target.metrics.connect_failures.inc();
            pool.failed(&target, &failure);
        }
        None
    }

    /// Writes the access log line of a connection that ended with `status`.
    fn log(&self, record: &Record, status: u16, started: Instant, tls_version: &str) {
        let Some(log) = &self.access_log else {
            return;
        };
        log.write(&Entry {
            time: SystemTime::now(),
            served: Served::Connection {
                listener: &record.stream.listener,
                bytes_received: record.copied.received,
                bytes_sent: record.copied.sent,
            },
            client_ip: record.client.ip().to_string(),
            status,
            duration: started.elapsed().as_secs_f64(),
            upstream: &record.stream.settings.upstream,
            instance: record.target.as_ref().map_or("", |t| t.label()),
            retries: record.retries,
            tls_version,
        });
    }
}

#[async_trait]
impl ServerApp for TcpProxy {
    async fn process_new(
        self: &Arc<Self>,
        client: Stream,
        _shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let started = Instant::now();
        let socket = client.get_socket_digest()?;
        let local = *socket.local_addr()?.as_inet()?;
        let peer = *socket.peer_addr()?.as_inet()?;
        // An IPv4 client of a `[::]` listener arrives IPv4-mapped.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let index = self.listeners.find(Some(&local))?;
        let runtime = self.runtime.load_full();
        let stream = runtime.streams.get(index)?.as_ref()?;
        let _in_flight = InFlight::enter();
        let tls = client.get_ssl_digest();
        let mut record = Record {
            client: peer,
            target: None,
            retries: 0,
            copied: pipe::Copied::default(),
            stream,
        };
        let status = self
            .forward(&runtime, &self.limits[index], client, local, &mut record)
            .await;
        let tls_version = tls.as_ref().map_or("", |d| &*d.version);
        self.log(&record, status, started, tls_version);
        None
    }
}
