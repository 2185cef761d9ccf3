//! The keys of `upstreams:` entries: targets, balancing, health checks, timeouts, TLS.

use super::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One entry of `upstreams:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawUpstream {
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
pub(in crate::config) struct RawUpstreamTls {
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
pub(in crate::config) enum RawDiscovery {
    /// A and AAAA records, re-resolved every `resolve_every`.
    Dns,
}

/// `health_check.type`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::config) enum RawCheckType {
    /// GET a path, check the status.
    #[default]
    Http,
    /// Connect only.
    Tcp,
}

/// `health_check.initially`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(in crate::config) enum RawInitially {
    /// Serve traffic before the first checks.
    #[default]
    Healthy,
    /// Wait for `healthy_successes` passing checks.
    Unhealthy,
}

/// `health_check:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawHealthCheck {
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
pub(in crate::config) struct RawPassive {
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
pub(in crate::config) enum RawBalance {
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
pub(in crate::config) enum BalanceName {
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
pub(in crate::config) enum RawHashOn {
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
    /// `host:port`; `target` is a synonym, as Kong's Admin API calls it, so that scripts
    /// written for Kong work (written back as `address`).
    #[serde(alias = "target")]
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
pub(in crate::config) struct RawTimeouts {
    /// TCP connect.
    pub connect: Option<RawDuration>,
    /// Waiting for each read from the upstream.
    pub read: Option<RawDuration>,
    /// Waiting for each write to the upstream.
    pub write: Option<RawDuration>,
    /// How long an unused pooled connection is kept.
    pub idle: Option<RawDuration>,
}
