//! Raw YAML tree → [`RawConfig`] → validated [`Config`], reporting every problem with its
//! location instead of stopping at the first. `decode` reads the raw structs; the other
//! modules each validate one part of the file.

mod compress;
mod cors;
mod decode;
mod headers;
mod limits;
mod listener;
mod messages;
mod policy;
mod rate_limit;
mod routes;
mod server;
mod set_aside;
mod upstream;
mod values;

pub(crate) use decode::decode;

use super::report::{join_index, join_key, Report};
use super::schema::*;
use super::*;
use headers::global_headers;
use listener::listeners;
use policy::{consumers, issuers, Known};
use routes::routes;
use server::{access_log, admin, resolver, server};
use std::collections::HashSet;
use upstream::upstream;

const NO_LISTENERS: &str =
    "at least one listener is required, e.g. `listeners: [{ name: web, address: 0.0.0.0:8080 }]`";

/// How close (Jaro-Winkler) a misspelling must be to a known name to be suggested.
const SUGGESTION_THRESHOLD: f64 = 0.8;

/// Turns the raw structs into the model, reporting every problem.
pub(super) fn validate(path: &Path, raw: RawConfig, report: &mut Report) -> Config {
    let upstream_names: Vec<&str> = raw.upstreams.keys().map(String::as_str).collect();
    let consumers = consumers(path, &raw.consumers, report);
    let jwt = issuers(path, &raw.jwt, report);
    let limits = limits::limits(&raw.limits, &Limits::default(), "limits", report);
    let known = Known::new(&consumers, &jwt)
        .with_redis(raw.rate_limits.as_ref().is_some_and(|r| r.redis.is_some()));
    let listeners = listeners(
        path,
        raw.listeners.as_deref(),
        &upstream_names,
        &known,
        &limits,
        report,
    );
    let routes = routes(&raw.routes, &upstream_names, &known, report);
    let config = Config {
        path: path.to_path_buf(),
        server: server(path, &raw.server, report),
        listeners,
        routes,
        upstreams: raw
            .upstreams
            .iter()
            .filter_map(|(name, u)| Some(upstream(path, name, u.as_ref()?, report)))
            .collect(),
        headers: global_headers(&raw.headers, report),
        resolver: resolver(&raw.resolver, report),
        admin: raw.admin.as_ref().and_then(|a| admin(a, report)),
        access_log: raw.access_log.as_ref().map(|a| access_log(path, a, report)),
        consumers,
        jwt,
        rate_limits: rate_limit::stores(raw.rate_limits.as_ref(), report),
        limits,
    };
    stream_upstreams(
        &config,
        raw.listeners.as_deref().unwrap_or_default(),
        report,
    );
    admin_apart(&config, report);
    config
}

/// Reports an admin listener on a listener's port: both would accept on one socket, each
/// taking connections meant for the other.
fn admin_apart(config: &Config, report: &mut Report) {
    let Some(admin) = &config.admin else { return };
    let overlaps = |l: &&Listener| {
        l.address.port() == admin.address.port()
            && (l.address.ip() == admin.address.ip()
                || l.address.ip().is_unspecified()
                || admin.address.ip().is_unspecified())
    };
    if let Some(l) = config.listeners.iter().find(overlaps) {
        report.value(
            "admin.address",
            format!(
                "{} is already used by listener `{}` ({})",
                admin.address, l.name, l.address
            ),
        );
    }
}

/// Reports what `tcp` and `tls` listeners need from the rest of the file: upstreams that
/// need nothing a connection lacks (a header or cookie to hash on, TLS to the instances),
/// and trusted proxies to accept PROXY protocol headers from.
fn stream_upstreams(config: &Config, raw: &[Option<RawListener>], report: &mut Report) {
    for (i, l) in raw.iter().enumerate() {
        let Some(l) = l else { continue };
        let (RawListenerKind::Tcp(l) | RawListenerKind::Tls { stream: l, .. }) = &l.kind else {
            continue;
        };
        if l.accept_proxy_protocol && config.headers.trusted_proxies.is_empty() {
            report.value(
                &join_key(&join_index("listeners", i), "accept_proxy_protocol"),
                "headers.trusted_proxies is empty, so every connection would be refused: list \
                 the load balancers that send PROXY protocol headers",
            );
        }
        let Some(name) = l.upstream.as_deref() else {
            continue;
        };
        let Some(u) = config.upstreams.iter().find(|u| u.name == name) else {
            continue;
        };
        let path = join_key(&join_index("listeners", i), "upstream");
        if matches!(u.balance, Balance::Header(_) | Balance::Cookie(_)) {
            report.value(
                &path,
                format!(
                    "upstream `{name}` hashes on a header or cookie, which a TCP connection does \
                     not have; use ip_hash, round_robin, least_conn, random or p2c"
                ),
            );
        }
        if u.tls.is_some() {
            report.value(
                &path,
                format!("upstream `{name}` speaks TLS to its instances; TCP listeners forward plain TCP"),
            );
        }
    }
}

/// Names must be non-empty and unique within their list.
fn check_name(name: &str, path: &str, what: &str, seen: &mut HashSet<String>, report: &mut Report) {
    if name.trim().is_empty() {
        report.value(path, format!("a {what} needs a non-empty name"));
    } else if !seen.insert(name.to_string()) {
        report.value(path, format!("another {what} is already named `{name}`"));
    }
}

/// Reports `name` at `path` unless it is one of `upstreams`, suggesting the closest.
fn check_upstream(name: &str, path: &str, upstreams: &[&str], report: &mut Report) {
    check_known(name, path, upstreams, ("upstream", "upstreams"), report);
}

/// Names an error about a missing one lists at most, so that a file with thousands of them
/// does not print thousands of names per error.
const LISTED_NAMES: usize = 10;

/// Reports `name` at `path` unless it is one of `known`, the names of a `what.0` defined in
/// the `what.1:` section, suggesting the closest.
fn check_known(
    name: &str,
    path: &str,
    known: &[&str],
    (what, section): (&str, &str),
    report: &mut Report,
) {
    if known.contains(&name) {
        return;
    }
    let message = match known
        .iter()
        .map(|u| (strsim::jaro_winkler(name, u), u))
        .filter(|(s, _)| *s >= SUGGESTION_THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0))
    {
        Some((_, u)) => format!("no {what} is named `{name}`; did you mean `{u}`?"),
        None if known.is_empty() => {
            format!("no {what} is named `{name}`: the {section}: section is empty")
        }
        None if known.len() <= LISTED_NAMES => format!(
            "no {what} is named `{name}`; defined {section}: {}",
            known.join(", ")
        ),
        None => format!(
            "no {what} is named `{name}`; defined {section}: {} and {} more",
            known[..LISTED_NAMES].join(", "),
            known.len() - LISTED_NAMES
        ),
    };
    report.value(path, message);
}
