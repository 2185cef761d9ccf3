//! The configuration file as written: plain serde structs that mirror the YAML keys.
//! Values that need checking (addresses, durations, header names, CIDRs, regexes) stay
//! strings here; `validate` turns them into real types and reports every problem.
//! Every struct denies unknown keys, so a typo is an error, not a silently ignored line.

mod limits;
mod listener;
mod policy;
mod route;
mod upstream;
mod values;

pub(in crate::config) use limits::*;
pub(crate) use listener::*;
pub(in crate::config) use policy::*;
pub(in crate::config) use route::*;
pub(crate) use upstream::*;
pub(crate) use values::*;

use serde::Deserialize;
use std::collections::BTreeMap;

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
    /// Who calls, with their credentials; `None` for one that could not be read.
    pub consumers: Vec<Option<RawConsumer>>,
    /// Trusted JWT issuers; `None` for one that could not be read.
    pub jwt: Vec<Option<RawJwtIssuer>>,
    /// The stores of rate limits; none when the section is missing.
    pub rate_limits: Option<RawRateLimits>,
    /// What a request may look like, for every listener that does not say otherwise.
    pub limits: RawLimits,
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
    /// CIDRs (or bare addresses) whose connections the admin listener serves; any when empty.
    #[serde(default)]
    pub allow: Vec<String>,
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
