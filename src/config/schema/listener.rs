//! The keys of `listeners:` entries, by protocol.

use super::*;
use serde::Deserialize;

/// `protocol:` of a listener, read before the rest of its keys, which it picks.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(in crate::config) enum RawProtocol {
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
    pub(in crate::config) const ALL: [Self; 4] = [Self::Http, Self::Https, Self::Tcp, Self::Tls];

    /// The name written in the file.
    pub(in crate::config) fn name(self) -> &'static str {
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
pub(in crate::config) enum RawOnLimit {
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
pub(in crate::config) struct RawListener {
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
pub(in crate::config) struct RawListenerId {
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
pub(in crate::config) enum RawListenerKind {
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
pub(in crate::config) struct RawHttpListener {
    /// Answer every request with a redirect to `https`.
    #[serde(default)]
    pub redirect_https: bool,
    /// Path prefixes `redirect_https` leaves alone (ACME challenges, for one).
    #[serde(default)]
    pub redirect_except: Vec<String>,
    /// Who may call, before routing.
    #[serde(default)]
    pub policies: RawPolicies,
    /// What a request may look like here, over the top-level `limits:`.
    pub limits: Option<super::RawLimits>,
}

/// The keys of an `https` listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawHttpsListener {
    /// Certificates and versions.
    pub tls: Option<RawListenerTls>,
    /// Offer HTTP/2 through ALPN (on by default).
    pub http2: Option<bool>,
    /// `Strict-Transport-Security` on every response.
    pub hsts: Option<RawHsts>,
    /// Who may call, before routing.
    #[serde(default)]
    pub policies: RawPolicies,
    /// What a request may look like here, over the top-level `limits:`.
    pub limits: Option<super::RawLimits>,
}

/// The keys of a `tcp` listener (and, with `tls`, of a `tls` one).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawStreamListener {
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
pub(in crate::config) struct RawListenerTls {
    /// Certificate and key pairs, picked by SNI.
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// Lowest TLS version accepted: `1.2` (default) or `1.3`, quoted or not.
    pub min_version: Option<serde_yaml::Value>,
}

/// One entry of `tls.certificates:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawCertificate {
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
pub(in crate::config) struct RawHsts {
    /// How long browsers remember to use HTTPS; one year when omitted.
    pub max_age: Option<RawDuration>,
    /// Adds `includeSubDomains`.
    #[serde(default)]
    pub include_subdomains: bool,
    /// Adds `preload`.
    #[serde(default)]
    pub preload: bool,
}
