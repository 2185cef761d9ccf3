//! The keys of `routes:` entries and of the header rules routes and upstreams carry.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One entry of `routes:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawRoute {
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
    /// Who may call it (added to its listener's).
    #[serde(default)]
    pub policies: super::RawPolicies,
    /// Timeouts of this route's requests: `connect`, `read` and `write` replace the
    /// upstream's, `total` bounds the whole request with its retries.
    #[serde(default)]
    pub timeouts: RawRouteTimeouts,
}

/// `timeouts:` of a route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawRouteTimeouts {
    /// TCP connect (and TLS handshake) to an instance.
    pub connect: Option<super::RawDuration>,
    /// Waiting for each read from the instance.
    pub read: Option<super::RawDuration>,
    /// Waiting for each write to the instance.
    pub write: Option<super::RawDuration>,
    /// The whole request from routing, every attempt included (docs/configuration.md says
    /// how an answer already coming is cut).
    pub total: Option<super::RawDuration>,
}

/// `set` / `add` / `remove` for one direction.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawHeaderEdits {
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
pub(in crate::config) struct RawHeaderRules {
    /// Applied to the request sent upstream.
    #[serde(default)]
    pub request: RawHeaderEdits,
    /// Applied to the response sent to the client.
    #[serde(default)]
    pub response: RawHeaderEdits,
}
