//! The validated configuration: what the rest of weir reads, every field a real type
//! (addresses, durations, header names, CIDRs, regexes), never a raw string.

use super::defaults::*;
use super::{
    Consumer, JwtIssuer, Locations, LogFormat, LogLevel, Policies, ProxyVersion, RateLimits,
    TargetAddr,
};
use http::{HeaderName, HeaderValue};
use ipnet::IpNet;
use regex::Regex;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A validated configuration. Built only by [`load`] or [`parse`]; every field is a real type.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The file it came from, for messages.
    pub path: PathBuf,
    /// Process settings.
    pub server: Server,
    /// Listening sockets, in file order.
    pub listeners: Vec<Listener>,
    /// HTTP routes, in file order.
    pub routes: Vec<Route>,
    /// Upstreams, sorted by name.
    pub upstreams: Vec<Upstream>,
    /// Global header injection.
    pub headers: GlobalHeaders,
    /// DNS servers for `discovery: dns`; empty means the system's (`/etc/resolv.conf`).
    pub resolver: Vec<SocketAddr>,
    /// The admin listener (API, status page, /metrics), if configured.
    pub admin: Option<Admin>,
    /// The access log, if configured.
    pub access_log: Option<AccessLog>,
    /// Who calls, in file order.
    pub consumers: Vec<Consumer>,
    /// Trusted JWT issuers, in file order.
    pub jwt: Vec<JwtIssuer>,
    /// The stores rate limits count in.
    pub rate_limits: RateLimits,
    /// The top-level `limits:`, for a request whose listener is not known.
    pub limits: Limits,
}

/// A setting of the file, by its YAML path (`listeners[0].tls.certificates[1]`). It prints
/// as `FILE:LINE:COLUMN: path`, the position looked up in the file's [`Locations`], so that
/// a problem found after loading (a certificate that does not load) points at the setting.
#[derive(Clone)]
pub(crate) struct Setting {
    path: String,
    locations: Arc<Locations>,
}

impl Setting {
    /// The setting at `path` of the file located by `locations`.
    pub(crate) fn new(path: String, locations: Arc<Locations>) -> Self {
        Self { path, locations }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.locations.at(&self.path).fmt(f)
    }
}

impl fmt::Debug for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

/// Two settings are the same when they name the same path at the same place: a setting
/// moved to another line is a change, as the message it prints changes.
impl PartialEq for Setting {
    fn eq(&self, other: &Self) -> bool {
        self.path == other.path
            && self.locations.file() == other.locations.file()
            && self.locations.position(&self.path, false)
                == other.locations.position(&other.path, false)
    }
}

impl Eq for Setting {}

/// `access_log:`: one line per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AccessLog {
    /// Line format.
    pub format: LogFormat,
    /// A file (reopened on SIGUSR1), or `None` for stdout.
    pub path: Option<PathBuf>,
    /// Lines that may wait for the writer; beyond them lines are dropped (and counted), so
    /// that a stuck disk costs neither requests nor memory.
    pub queue: usize,
}

/// `admin:`: where the admin API, the status page and /metrics are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Admin {
    /// Bound address; loopback by default.
    pub address: SocketAddr,
    /// Bearer token required for writes, and for every request off loopback.
    pub token: Option<String>,
    /// Write admin API changes back to the file (atomically), so that they survive a reload
    /// and a restart; otherwise they last until the next reload.
    pub persist: bool,
    /// Client networks the admin listener serves (nginx's `allow …; deny all;`); every
    /// other connection gets 403 before anything else, the page included. Empty: any.
    pub allow: Vec<IpNet>,
}

/// `server:` settings that map onto the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    /// Worker threads of the proxy service; defaults to the number of CPUs.
    pub threads: usize,
    /// Where the pid is written, so that `weir reload` finds the running process.
    pub pid_file: PathBuf,
    /// Where a new process waits for the listening sockets of the old one in a binary
    /// upgrade; both must agree on it, so relative paths are taken from the config folder.
    pub upgrade_sock: PathBuf,
    /// The file a daemonized weir (and a process started by `weir upgrade`) writes its log to.
    pub error_log: Option<PathBuf>,
    /// The user a daemonized weir switches to after it starts.
    pub user: Option<String>,
    /// The group a daemonized weir switches to after it starts.
    pub group: Option<String>,
    /// How long weir keeps accepting after SIGTERM, so that a load balancer in front notices
    /// it is going away before its listeners close (HAProxy's `grace`).
    pub grace_period: Duration,
    /// The longest in-flight requests get to finish once the listeners are closed (after
    /// SIGTERM, or after a binary upgrade took them over); weir exits as soon as they are done.
    pub graceful_shutdown_timeout: Duration,
    /// Run in the background, as `-d` does.
    pub daemon: bool,
    /// Level of the error log when RUST_LOG is not set.
    pub log_level: LogLevel,
}

/// What a listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Plain HTTP, optionally answering every request with a redirect to HTTPS.
    Http {
        /// `redirect_https: true`.
        redirect: Option<Redirect>,
    },
    /// HTTP over TLS.
    Https(ListenerTls),
    /// TCP (or TLS terminated here) forwarded to an upstream.
    Tcp(StreamSettings),
}

impl Protocol {
    /// The TLS settings of a listener that terminates TLS.
    pub(crate) fn tls(&self) -> Option<&ListenerTls> {
        match self {
            Self::Https(tls) => Some(tls),
            Self::Tcp(stream) => stream.tls.as_ref(),
            Self::Http { .. } => None,
        }
    }

    /// Whether the listener speaks HTTP (served by the proxy), rather than forwarding TCP.
    pub(crate) fn is_http(&self) -> bool {
        !matches!(self, Self::Tcp(_))
    }
}

/// What a `tcp` or `tls` listener does with its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamSettings {
    /// TLS terminated here (`protocol: tls`).
    pub tls: Option<ListenerTls>,
    /// The upstream its connections go to.
    pub upstream: String,
    /// Connections served at once, if limited.
    pub max_connections: Option<usize>,
    /// Beyond the limit: wait this long for a free slot (`on_limit: queue`), or, when
    /// `None`, close at once.
    pub queue_timeout: Option<Duration>,
    /// Closes a connection with no traffic either way for this long.
    pub idle_timeout: Duration,
    /// PROXY protocol header sent to the instance.
    pub send_proxy: Option<ProxyVersion>,
    /// Connections come from a load balancer in `headers.trusted_proxies` that sends a PROXY
    /// protocol header (v1 or v2) first.
    pub accept_proxy: bool,
}

/// One listening socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listener {
    /// Unique name.
    pub name: String,
    /// Bound address.
    pub address: SocketAddr,
    /// Protocol spoken.
    pub protocol: Protocol,
    /// Who may call (HTTP listeners), checked before routing.
    pub policies: Policies,
    /// What a request may look like (HTTP listeners): the top-level `limits:` with the
    /// listener's own keys over them.
    pub limits: Limits,
}

/// `limits:`, every key resolved: what a request head may hold, how long a connection
/// may take to send one, and how its path is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes of the whole request head; 431 above.
    pub max_header_size: usize,
    /// Bytes of one header field line (`name: value`); 431 above.
    pub max_header_line: usize,
    /// Header fields in a request; 431 above.
    pub max_headers: usize,
    /// Bytes of the request target; 414 above.
    pub max_uri_length: usize,
    /// The longest a request head may take to arrive; the connection is closed after it.
    pub header_timeout: Duration,
    /// The longest a connection waits idle for its next request, in whole seconds (the
    /// unit Pingora keeps it in).
    pub keepalive_timeout: Duration,
    /// Requests one connection carries; the answer to the last says `Connection: close`.
    pub max_requests_per_connection: u32,
    /// `//` in a path is read as `/`.
    pub merge_slashes: bool,
    /// `%2F` may stand in a path (kept encoded, never a separator); refused with 400 if not.
    pub allow_encoded_slashes: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header_size: DEFAULT_MAX_HEADER_SIZE,
            max_header_line: DEFAULT_MAX_HEADER_LINE,
            max_headers: DEFAULT_MAX_HEADERS,
            max_uri_length: DEFAULT_MAX_URI_LENGTH,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            max_requests_per_connection: DEFAULT_MAX_REQUESTS_PER_CONNECTION,
            merge_slashes: true,
            allow_encoded_slashes: false,
        }
    }
}

/// `redirect_https:` of a plain listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    /// Port of the `https://` URL: the first https listener's, or 443.
    pub port: u16,
    /// Path prefixes served normally instead.
    pub except: Vec<String>,
}

/// Lowest TLS version a listener accepts. Older versions are not offered at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TlsVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// TLS settings of an `https` listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerTls {
    /// At least one; SNI picks among them.
    pub certificates: Vec<CertFiles>,
    /// Index into `certificates` of the one served without SNI or for an unknown name.
    pub default: usize,
    /// Lowest version accepted.
    pub min_version: TlsVersion,
    /// HTTP/2 offered through ALPN.
    pub http2: bool,
    /// `Strict-Transport-Security` value added to responses, when set.
    pub hsts: Option<HeaderValue>,
}

/// One certificate of a listener, as files; `tls` loads them (at start and on every reload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CertFiles {
    /// PEM certificate followed by its chain, relative paths resolved against the config file.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// Explicit server names (lowercase, `*.` wildcards allowed); empty: the certificate's.
    pub names: Vec<String>,
    /// `listeners[i].tls.certificates[j]`, so that a certificate that fails to load is
    /// reported where it is configured.
    pub at: Setting,
}

/// `tls:` of an upstream: how weir connects to its instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpstreamTls {
    /// Server name sent and verified; `None` sends a host-name target's own name.
    pub sni: Option<String>,
    /// Verify the chain and the name.
    pub verify: bool,
    /// CA bundle to trust instead of the system's.
    pub ca: Option<CaBundle>,
}

/// `tls.ca` of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaBundle {
    /// PEM file of the CAs, relative paths resolved against the config file.
    pub file: PathBuf,
    /// `upstreams.NAME.tls.ca`, for a bundle that fails to load.
    pub at: Setting,
}

/// A host a route accepts. A route with no host patterns accepts any host.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum HostPattern {
    /// `api.example.com` (lowercase, no port).
    Exact(String),
    /// `*.example.com`, stored as the suffix `.example.com`.
    Wildcard(String),
}

/// A path a route accepts.
#[derive(Debug, Clone)]
pub(crate) enum PathPattern {
    /// `/api/users`: the path starts with it.
    Prefix(String),
    /// `exact:/health`: the path is exactly it.
    Exact(String),
    /// `regex:^/v[0-9]+/`: the path matches it.
    Regex(Regex),
}

/// One route.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// Unique name.
    pub name: String,
    /// Accepted hosts; empty means any.
    pub hosts: Vec<HostPattern>,
    /// Accepted paths; never empty (`/` when omitted).
    pub paths: Vec<PathPattern>,
    /// Name of an existing upstream.
    pub upstream: String,
    /// Remove the matched part of the path before forwarding.
    pub strip_prefix: bool,
    /// Route-level header rules, applied after the upstream's.
    pub headers: HeaderRules,
    /// Whether its requests go to the access log.
    pub access_log: bool,
    /// Who may call, besides its listener's rules.
    pub policies: Policies,
    /// Its own timeouts, over its upstream's.
    pub timeouts: RouteTimeouts,
}

/// `timeouts:` of a route: each one set replaces the upstream's for this route's requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RouteTimeouts {
    /// TCP connect.
    pub connect: Option<Duration>,
    /// Each read from the upstream.
    pub read: Option<Duration>,
    /// Each write to the upstream.
    pub write: Option<Duration>,
    /// The whole request from routing on, every attempt and retry included.
    pub total: Option<Duration>,
}

/// Header changes for one direction, applied in the order remove → set → add.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderEdits {
    /// Headers replaced or created.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Values appended.
    pub add: Vec<(HeaderName, HeaderValue)>,
    /// Headers removed.
    pub remove: Vec<HeaderName>,
}

/// Header changes for requests and responses.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeaderRules {
    /// On the request sent upstream.
    pub request: HeaderEdits,
    /// On the response sent to the client.
    pub response: HeaderEdits,
}

/// How targets are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Balance {
    /// Smooth weighted round robin (`round_robin` and `weighted_round_robin`).
    RoundRobin,
    /// Weighted random.
    Random,
    /// Fewest in-flight requests relative to weight; ties go round robin.
    LeastConn,
    /// Two random targets, the one with fewer in-flight requests wins.
    P2c,
    /// Consistent hashing on the client address.
    IpHash,
    /// Consistent hashing on a request header.
    Header(HeaderName),
    /// Consistent hashing on a cookie.
    Cookie(String),
}

/// One instance of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `host:port`, printed as written; resolved when the runtime is built.
    pub address: TargetAddr,
    /// Shown in the instance header; the address unless named.
    pub name: String,
    /// Relative share; 0 takes no new traffic.
    pub weight: u32,
    /// Used only when no primary target is available.
    pub backup: bool,
    /// Takes no new requests; those in flight finish.
    pub drain: bool,
}

/// Per-upstream timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Each read from the upstream.
    pub read: Duration,
    /// Each write to the upstream.
    pub write: Duration,
    /// Idle time of a pooled connection.
    pub idle: Duration,
}

/// One upstream: a named pool of targets.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    /// Unique name, referenced by routes.
    pub name: String,
    /// Selection algorithm.
    pub balance: Balance,
    /// At least one target.
    pub targets: Vec<Target>,
    /// Upstream-level header rules, applied before the route's.
    pub headers: HeaderRules,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// Active checks, if configured.
    pub health_check: Option<HealthCheck>,
    /// Outlier ejection from failed requests.
    pub passive: Passive,
    /// Further attempts on other instances after a connect failure or early reset.
    pub retries: u32,
    /// Ramp time of a recovered or newly added instance's share, if configured.
    pub slow_start: Option<Duration>,
    /// When no instance is available: try them anyway (`true`) or answer 503 at once.
    pub panic_mode: bool,
    /// `discovery: dns`: how often host-name targets are re-resolved; `None` resolves once.
    pub resolve_every: Option<Duration>,
    /// TLS to the instances, if configured.
    pub tls: Option<UpstreamTls>,
    /// HTTP/2 to the instances.
    pub http2: bool,
}

/// What an active check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckKind {
    /// Connects and closes.
    Tcp,
    /// Sends a GET and checks the status.
    Http {
        /// Request path (with query, if any).
        path: String,
        /// `Host` header; the target address when `None`.
        host: Option<String>,
        /// Extra request headers.
        headers: Vec<(HeaderName, HeaderValue)>,
        /// Accepted statuses, as inclusive ranges.
        expected_status: Vec<(u16, u16)>,
    },
}

/// `health_check:` of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HealthCheck {
    /// The probe.
    pub kind: CheckKind,
    /// Time between checks of one instance.
    pub interval: Duration,
    /// Time one check may take.
    pub timeout: Duration,
    /// Consecutive passes that make an unhealthy instance healthy.
    pub healthy_successes: u32,
    /// Consecutive failures that make a healthy instance unhealthy.
    pub unhealthy_failures: u32,
    /// State of an instance before its first checks (`initially: unhealthy` → false).
    pub initially_healthy: bool,
}

/// `passive:` of an upstream: ejection of instances whose requests fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Passive {
    /// Consecutive failures within `fail_timeout` that eject; 0 turns ejection off.
    pub max_fails: u32,
    /// Counting window and first ejection time; doubled on each repeat.
    pub fail_timeout: Duration,
    /// Cap of the doubled ejection time.
    pub max_ejection_time: Duration,
    /// Most of the pool, in percent, that may be ejected at once.
    pub max_ejection_percent: u8,
    /// Response statuses that count as failures (connect errors and timeouts always do).
    pub fail_statuses: Vec<u16>,
}

/// Global header injection.
#[derive(Debug, Clone)]
pub(crate) struct GlobalHeaders {
    /// The request id header.
    pub request_id: HeaderName,
    /// The serving-instance response header, or `None` when turned off.
    pub instance_header: Option<HeaderName>,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
}
