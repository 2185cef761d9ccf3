//! The configuration file as written: plain serde structs that mirror the YAML keys.
//! Values that need checking (addresses, durations, header names, CIDRs, regexes) stay
//! strings here; `validate` turns them into real types and reports every problem.
//! Every struct denies unknown keys, so a typo is an error, not a silently ignored line.

use serde::de::{Error, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// The whole file, decoded one section at a time (see `validate::decode`).
#[derive(Debug, Default)]
pub(super) struct RawConfig {
    /// Process settings.
    pub server: RawServer,
    /// Addresses weir accepts connections on; `None` when the section is missing. An entry
    /// is `None` when it could not be read at all (an unknown protocol), so that the
    /// others keep their index.
    pub listeners: Option<Vec<Option<RawListener>>>,
    /// HTTP routes: host + path → upstream; `None` for one that could not be read.
    pub routes: Vec<Option<RawRoute>>,
    /// Named pools of targets; `None` for one that failed to decode, so routes to it are
    /// not reported as routes to a missing upstream.
    pub upstreams: BTreeMap<String, Option<RawUpstream>>,
    /// Headers weir adds to every proxied request and response.
    pub headers: RawGlobalHeaders,
    /// DNS servers (`ip:port`) for `discovery: dns`; the system's when omitted.
    /// An entry is `None` when it could not be read.
    pub resolver: Vec<Option<String>>,
    /// The admin listener; none when the section is missing.
    pub admin: Option<RawAdmin>,
    /// The access log; none when the section is missing.
    pub access_log: Option<RawAccessLog>,
}

/// `access_log:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccessLog {
    /// `json` (default) or `combined`.
    #[serde(default)]
    pub format: LogFormat,
    /// `stdout` (default) or a file.
    pub path: Option<String>,
    /// Lines that may wait for the writer before further ones are dropped.
    pub queue: Option<usize>,
}

/// `admin:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    /// `ip:port` of the admin API, status page and /metrics.
    pub address: Option<String>,
    /// Bearer token for writes (and for every request off loopback).
    pub token: Option<String>,
    /// Whether admin API changes are written back to the file.
    #[serde(default)]
    pub persist: bool,
}

/// `server:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    /// Worker threads per listening service.
    pub threads: Option<usize>,
    /// Where the pid is written.
    pub pid_file: Option<String>,
    /// The socket a new process takes the listeners over from.
    pub upgrade_sock: Option<String>,
    /// The log file of a daemonized process.
    pub error_log: Option<String>,
    /// User to run as when daemonized.
    pub user: Option<String>,
    /// Group to run as when daemonized.
    pub group: Option<String>,
    /// How long to keep accepting after SIGTERM.
    pub grace_period: Option<RawDuration>,
    /// How long in-flight requests may finish on shutdown.
    pub graceful_shutdown_timeout: Option<RawDuration>,
    /// Run in the background.
    #[serde(default)]
    pub daemon: bool,
    /// Level of the error log when RUST_LOG is not set.
    #[serde(default)]
    pub log_level: LogLevel,
}

/// `access_log.format`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogFormat {
    /// One JSON object per line.
    #[default]
    Json,
    /// Apache's and nginx's combined format.
    Combined,
}

/// `server.log_level`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LogLevel {
    /// Errors only.
    Error,
    /// And warnings.
    Warn,
    /// And what weir does (reloads, health changes).
    #[default]
    Info,
    /// And detail for debugging.
    Debug,
    /// Everything.
    Trace,
}

/// `protocol:` of a listener, read before the rest of its keys, which it picks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawProtocol {
    /// Plain HTTP/1.1 (and h2c prior knowledge).
    #[default]
    Http,
    /// HTTP over TLS, HTTP/2 offered through ALPN.
    Https,
    /// TCP, forwarded to an upstream without being read.
    Tcp,
    /// TLS terminated here, the plain TCP inside forwarded to an upstream.
    Tls,
}

impl RawProtocol {
    /// Every protocol, in the order messages list them.
    pub(super) const ALL: [Self; 4] = [Self::Http, Self::Https, Self::Tcp, Self::Tls];

    /// The name written in the file.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }
}

/// What a TCP listener does with a connection beyond `max_connections`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawOnLimit {
    /// Close it at once.
    #[default]
    Refuse,
    /// Hold it until a connection ends, for at most `queue_timeout`.
    Queue,
}

/// PROXY protocol version sent to the instances.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProxyVersion {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}

/// One entry of `listeners:`: its name and address, and what it speaks.
#[derive(Debug)]
pub(super) struct RawListener {
    /// Unique name, used in logs.
    pub name: String,
    /// `ip:port` to bind.
    pub address: String,
    /// The protocol and the settings that belong to it.
    pub kind: RawListenerKind,
}

/// The keys every listener has, whatever its protocol.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListenerId {
    /// Unique name, used in logs.
    pub name: String,
    /// `ip:port` to bind.
    pub address: String,
}

/// A listener by `protocol:` (`http` when omitted), each with only its own keys, so a key
/// of another protocol is an unknown key, reported with the protocols it belongs to.
/// Decoding reads `protocol` and hands the other keys to the variant it names.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawListenerKind {
    /// `protocol: http`.
    Http(RawHttpListener),
    /// `protocol: https`.
    Https(RawHttpsListener),
    /// `protocol: tcp`.
    Tcp(RawStreamListener),
    /// `protocol: tls`: the keys of `tcp`, and `tls`. Decoding reads it as a `tcp`
    /// listener and its `tls` key on their own, so the two share one list of keys.
    #[serde(skip_deserializing)]
    Tls {
        /// Certificates and versions.
        tls: Option<RawListenerTls>,
        /// What is done with the connections.
        stream: RawStreamListener,
    },
}

/// The keys of an `http` listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpListener {
    /// Answer every request with a redirect to `https`.
    #[serde(default)]
    pub redirect_https: bool,
    /// Path prefixes `redirect_https` leaves alone (ACME challenges, for one).
    #[serde(default)]
    pub redirect_except: Vec<String>,
}

/// The keys of an `https` listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHttpsListener {
    /// Certificates and versions.
    pub tls: Option<RawListenerTls>,
    /// Offer HTTP/2 through ALPN (on by default).
    pub http2: Option<bool>,
    /// `Strict-Transport-Security` on every response.
    pub hsts: Option<RawHsts>,
}

/// The keys of a `tcp` listener (and, with `tls`, of a `tls` one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStreamListener {
    /// The upstream its connections are forwarded to.
    pub upstream: Option<String>,
    /// Connections served at once.
    pub max_connections: Option<usize>,
    /// What happens to a connection beyond `max_connections`.
    pub on_limit: Option<RawOnLimit>,
    /// How long a queued connection waits for a free slot.
    pub queue_timeout: Option<RawDuration>,
    /// A connection with no traffic either way for this long is closed.
    pub idle_timeout: Option<RawDuration>,
    /// Send a PROXY protocol header to the instance first.
    pub send_proxy_protocol: Option<ProxyVersion>,
    /// Read a PROXY protocol header from a trusted load balancer in front.
    #[serde(default)]
    pub accept_proxy_protocol: bool,
}

/// `tls:` of a listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawListenerTls {
    /// Certificate and key pairs, picked by SNI.
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// Lowest TLS version accepted: `1.2` (default) or `1.3`, quoted or not.
    pub min_version: Option<serde_yaml::Value>,
}

/// One entry of `tls.certificates:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCertificate {
    /// PEM file: the certificate, then its chain.
    pub cert: String,
    /// PEM file: the private key.
    pub key: String,
    /// Server names it answers; the certificate's own names when omitted.
    #[serde(default)]
    pub names: Vec<String>,
    /// Served to clients without SNI or with an unknown name; the first entry when none is.
    #[serde(default)]
    pub default: bool,
}

/// `hsts:` of an `https` listener.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHsts {
    /// How long browsers remember to use HTTPS; one year when omitted.
    pub max_age: Option<RawDuration>,
    /// Adds `includeSubDomains`.
    #[serde(default)]
    pub include_subdomains: bool,
    /// Adds `preload`.
    #[serde(default)]
    pub preload: bool,
}

/// One entry of `routes:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    /// Unique name, used in logs and (later) metrics labels.
    pub name: String,
    /// Host patterns; omitted or empty means any host.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Path patterns (`/prefix`, `exact:/p`, `regex:^/p`); omitted means every path.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The upstream that serves matching requests.
    pub upstream: String,
    /// Remove the matched part of the path before forwarding.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Header rules for requests and responses on this route.
    #[serde(default)]
    pub headers: RawHeaderRules,
    /// `false` keeps this route's requests out of the access log.
    pub access_log: Option<bool>,
}

/// `set` / `add` / `remove` for one direction.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderEdits {
    /// Replace (or create) a header.
    #[serde(default)]
    pub set: BTreeMap<String, String>,
    /// Append a value, keeping existing ones.
    #[serde(default)]
    pub add: BTreeMap<String, String>,
    /// Remove a header entirely.
    #[serde(default)]
    pub remove: Vec<String>,
}

/// `headers:` of a route or upstream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHeaderRules {
    /// Applied to the request sent upstream.
    #[serde(default)]
    pub request: RawHeaderEdits,
    /// Applied to the response sent to the client.
    #[serde(default)]
    pub response: RawHeaderEdits,
}

/// One entry of `upstreams:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstream {
    /// How a target is picked for each request.
    #[serde(default)]
    pub balance: RawBalance,
    /// The instances.
    pub targets: Vec<RawTarget>,
    /// Header rules for every request to this upstream.
    #[serde(default)]
    pub headers: RawHeaderRules,
    /// Connection timeouts.
    #[serde(default)]
    pub timeouts: RawTimeouts,
    /// Active health checks.
    pub health_check: Option<RawHealthCheck>,
    /// Ejection of instances whose requests fail.
    #[serde(default)]
    pub passive: RawPassive,
    /// Attempts on other instances after a connect failure or early reset.
    pub retries: Option<u32>,
    /// Ramp time of a recovered or newly added instance.
    pub slow_start: Option<RawDuration>,
    /// Try unavailable instances anyway when none is available.
    pub panic_mode: Option<bool>,
    /// How host-name targets are found.
    pub discovery: Option<RawDiscovery>,
    /// Re-resolution period with `discovery: dns`.
    pub resolve_every: Option<RawDuration>,
    /// Connect to the instances over TLS.
    pub tls: Option<RawUpstreamTls>,
    /// Speak HTTP/2 to the instances (over TLS through ALPN, else cleartext h2c).
    #[serde(default)]
    pub http2: bool,
}

/// `tls:` of an upstream.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpstreamTls {
    /// Server name sent and verified; a host-name target's own name when omitted.
    pub sni: Option<String>,
    /// Verify the instances' certificates (on by default).
    pub verify: Option<bool>,
    /// PEM file of the CAs to trust instead of the system's.
    pub ca: Option<String>,
}

/// `discovery:`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawDiscovery {
    /// A and AAAA records, re-resolved every `resolve_every`.
    Dns,
}

/// `health_check.type`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawCheckType {
    /// GET a path, check the status.
    #[default]
    Http,
    /// Connect only.
    Tcp,
}

/// `health_check.initially`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawInitially {
    /// Serve traffic before the first checks.
    #[default]
    Healthy,
    /// Wait for `healthy_successes` passing checks.
    Unhealthy,
}

/// `health_check:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealthCheck {
    /// `http` (default) or `tcp`.
    #[serde(default, rename = "type")]
    pub kind: RawCheckType,
    /// Path for `http` checks; `/` when omitted.
    pub path: Option<String>,
    /// Time between checks.
    pub interval: Option<RawDuration>,
    /// Time one check may take.
    pub timeout: Option<RawDuration>,
    /// Passes that bring an instance back.
    pub healthy_successes: Option<u32>,
    /// Failures that take an instance out.
    pub unhealthy_failures: Option<u32>,
    /// Accepted statuses: codes (`200`) and ranges (`200-299`).
    pub expected_status: Option<Vec<serde_yaml::Value>>,
    /// `Host` header of `http` checks.
    pub host: Option<String>,
    /// Extra headers of `http` checks.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// State before the first checks.
    #[serde(default)]
    pub initially: RawInitially,
}

/// `passive:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPassive {
    /// Consecutive failures that eject; 0 turns ejection off.
    pub max_fails: Option<u32>,
    /// Counting window and first ejection time.
    pub fail_timeout: Option<RawDuration>,
    /// Cap of the doubling ejection time.
    pub max_ejection_time: Option<RawDuration>,
    /// Most of the pool, in percent, that may be ejected at once.
    pub max_ejection_percent: Option<u8>,
    /// Response statuses counted as failures.
    #[serde(default)]
    pub fail_statuses: Vec<u16>,
}

/// `balance:`: a name (`least_conn`), or `{ hash: { header: X-User } }` /
/// `{ hash: { cookie: sid } }`.
#[derive(Debug)]
pub(super) enum RawBalance {
    /// A named algorithm that needs no parameters.
    Named(BalanceName),
    /// Consistent hashing on a request header or cookie.
    Hash(RawHashOn),
}

impl Default for RawBalance {
    fn default() -> Self {
        Self::Named(BalanceName::RoundRobin)
    }
}

/// The algorithms written as a bare name.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum BalanceName {
    /// Smooth weighted round robin; plain rotation when weights are equal.
    RoundRobin,
    /// Same algorithm as `round_robin`, named for those who expect weights to need it.
    WeightedRoundRobin,
    /// Weighted random.
    Random,
    /// Fewest in-flight requests relative to weight.
    LeastConn,
    /// Power of two random choices on in-flight requests.
    P2c,
    /// Consistent hashing on the client address.
    IpHash,
}

/// What `balance: { hash: … }` hashes on: `{ header: X-User }` or `{ cookie: sid }`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawHashOn {
    /// A request header, e.g. `X-User`.
    Header(String),
    /// A cookie, e.g. `sid`.
    Cookie(String),
}

/// What a `balance:` mapping other than `{ hash: { ONE_KEY: NAME } }` is told.
const ONE_HASH_KEY: &str = "write `{ hash: { header: NAME } }` or `{ hash: { cookie: NAME } }`";

impl<'de> Deserialize<'de> for RawBalance {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        use serde_yaml::value::{Tag, TaggedValue};
        let value = serde_yaml::Value::deserialize(d)?;
        let serde_yaml::Value::Mapping(map) = value else {
            return serde_yaml::from_value(value)
                .map(Self::Named)
                .map_err(D::Error::custom);
        };
        // serde_yaml reads an enum from a tagged value, so `{ header: X }` becomes `!header X`.
        let on = match map.get("hash").and_then(serde_yaml::Value::as_mapping) {
            Some(on) if map.len() == 1 && on.len() == 1 => on,
            _ => return Err(D::Error::custom(ONE_HASH_KEY)),
        };
        let tagged = on.iter().find_map(|(key, value)| {
            Some(serde_yaml::Value::Tagged(Box::new(TaggedValue {
                tag: Tag::new(key.as_str()?),
                value: value.clone(),
            })))
        });
        let tagged = tagged.ok_or_else(|| D::Error::custom(ONE_HASH_KEY))?;
        serde_yaml::from_value(tagged)
            .map(Self::Hash)
            .map_err(D::Error::custom)
    }
}

/// One entry of `targets:`, and the body of the admin API's `POST /upstreams/{name}/targets`,
/// which writes it into the file as given (only the keys that were set).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTarget {
    /// `host:port`.
    pub address: String,
    /// Relative share of traffic; 0 means no new traffic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<RawWeight>,
    /// Name shown in the instance header and logs; defaults to the address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Used only when no primary target is available.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backup: bool,
    /// Takes no new requests; those in flight finish (the admin API's drain sets it).
    #[serde(default, skip_serializing_if = "is_false")]
    pub drain: bool,
}

/// A flag left out of a written target when it is off, as the file would omit it.
fn is_false(flag: &bool) -> bool {
    !flag
}

/// `timeouts:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    /// TCP connect.
    pub connect: Option<RawDuration>,
    /// Waiting for each read from the upstream.
    pub read: Option<RawDuration>,
    /// Waiting for each write to the upstream.
    pub write: Option<RawDuration>,
    /// How long an unused pooled connection is kept.
    pub idle: Option<RawDuration>,
}

/// Top-level `headers:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlobalHeaders {
    /// Name of the request id header.
    pub request_id: Option<String>,
    /// Name of the response header naming the serving instance; empty turns it off.
    pub instance_header: Option<String>,
    /// CIDRs whose forwarded headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// A duration as written (`10s`, `500ms`), checked by validation. A bare number is taken
/// as text too, so `interval: 10` is reported as a duration without a unit rather than as
/// a number where text was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawDuration(String);

impl std::ops::Deref for RawDuration {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;
        impl Visitor<'_> for Text {
            type Value = RawDuration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration, e.g. 500ms, 10s, 2m")
            }

            fn visit_str<E: Error>(self, v: &str) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }

            fn visit_u64<E: Error>(self, v: u64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }

            fn visit_i64<E: Error>(self, v: i64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }

            fn visit_f64<E: Error>(self, v: f64) -> Result<RawDuration, E> {
                Ok(RawDuration(v.to_string()))
            }
        }
        d.deserialize_any(Text)
    }
}

/// `weight:` of a target: a whole number; validation caps it at [`crate::config::MAX_WEIGHT`]
/// with its own message. Its expectation names the range, so a negative weight reads
/// "expected a whole number from 0 to 1000".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub(crate) struct RawWeight(pub u32);

impl<'de> Deserialize<'de> for RawWeight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Weight;
        impl Visitor<'_> for Weight {
            type Value = RawWeight;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a whole number from 0 to {}", crate::config::MAX_WEIGHT)
            }

            fn visit_u64<E: Error>(self, v: u64) -> Result<RawWeight, E> {
                u32::try_from(v)
                    .map(RawWeight)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }

            fn visit_i64<E: Error>(self, v: i64) -> Result<RawWeight, E> {
                let v =
                    u64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Signed(v), &self))?;
                self.visit_u64(v)
            }
        }
        d.deserialize_u32(Weight)
    }
}
