//! Validation of `routes:`: names, the upstream each names, host and path patterns, and
//! the host + path pairs two routes would both claim.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::super::*;
use super::headers::header_rules;
use super::policy::{policies, Known};
use super::values::duration;
use super::{check_name, check_upstream};
use std::collections::{HashMap, HashSet};

pub(super) fn routes(
    raw: &[Option<RawRoute>],
    upstreams: &[&str],
    known: &Known,
    report: &mut Report,
) -> Vec<Route> {
    let mut names = HashSet::new();
    let mut claimed: HashMap<(Option<HostPattern>, String), &str> = HashMap::new();
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
        let Some(r) = r else { continue };
        let path = join_index("routes", i);
        check_name(
            &r.name,
            &join_key(&path, "name"),
            "route",
            &mut names,
            report,
        );
        check_upstream(&r.upstream, &join_key(&path, "upstream"), upstreams, report);
        let hosts: Vec<HostPattern> = r
            .hosts
            .iter()
            .enumerate()
            .filter_map(|(j, h)| host_pattern(h, &join_index(&join_key(&path, "hosts"), j), report))
            .collect();
        let mut paths = Vec::new();
        let raw_paths: Vec<&str> = if r.paths.is_empty() {
            vec!["/"]
        } else {
            r.paths.iter().map(String::as_str).collect()
        };
        for (j, p) in raw_paths.iter().enumerate() {
            let p_path = join_index(&join_key(&path, "paths"), j);
            let Some(pattern) = path_pattern(p, &p_path, report) else {
                continue;
            };
            let host_keys: Vec<Option<HostPattern>> = if hosts.is_empty() {
                vec![None]
            } else {
                hosts.iter().cloned().map(Some).collect()
            };
            for host in host_keys {
                if let Some(other) = claimed.insert((host.clone(), p.to_string()), &r.name) {
                    if other != r.name {
                        let host = host.map_or("any host".to_string(), |h| describe_host(&h));
                        report.value(
                            &p_path,
                            format!("`{p}` on {host} is already routed by route `{other}`"),
                        );
                    }
                }
            }
            paths.push(pattern);
        }
        out.push(Route {
            name: r.name.clone(),
            hosts,
            paths,
            upstream: r.upstream.clone(),
            strip_prefix: r.strip_prefix,
            headers: header_rules(&r.headers, &join_key(&path, "headers"), report),
            access_log: r.access_log.unwrap_or(true),
            policies: policies(&r.policies, &path, known, report),
            timeouts: route_timeouts(&r.timeouts, &join_key(&path, "timeouts"), report),
        });
    }
    out
}

/// `timeouts:` of a route at `path`: each one given must be a duration longer than zero.
fn route_timeouts(raw: &RawRouteTimeouts, path: &str, report: &mut Report) -> RouteTimeouts {
    // What a value that does not parse stands for: never used, as the file is refused, but
    // not zero, which would be reported a second time.
    const UNREAD: Duration = Duration::MAX;
    let mut timeout = |raw: &Option<RawDuration>, key: &str| {
        raw.as_deref()
            .map(|d| duration(Some(d), &join_key(path, key), UNREAD, report))
    };
    RouteTimeouts {
        connect: timeout(&raw.connect, "connect"),
        read: timeout(&raw.read, "read"),
        write: timeout(&raw.write, "write"),
        total: timeout(&raw.total, "total"),
    }
}

fn describe_host(h: &HostPattern) -> String {
    match h {
        HostPattern::Exact(h) => format!("host `{h}`"),
        HostPattern::Wildcard(suffix) => format!("host `*{suffix}`"),
    }
}

pub(super) fn host_pattern(raw: &str, path: &str, report: &mut Report) -> Option<HostPattern> {
    let host = raw.trim().to_ascii_lowercase();
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, host.as_str()),
    };
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || !name.split('.').all(valid_label) {
        report.value(
            path,
            format!("`{raw}` is not a host name; write `api.example.com` or `*.example.com` (omit hosts: to match any host)"),
        );
        return None;
    }
    Some(if wildcard {
        HostPattern::Wildcard(format!(".{name}"))
    } else {
        HostPattern::Exact(name.to_string())
    })
}

fn path_pattern(raw: &str, path: &str, report: &mut Report) -> Option<PathPattern> {
    if let Some(re) = raw.strip_prefix("regex:") {
        return match Regex::new(re) {
            Ok(r) => Some(PathPattern::Regex(r)),
            Err(e) => {
                let text = e.to_string();
                let last = text.lines().last().unwrap_or_default();
                let detail = last.trim_start_matches("error: ");
                report.value(path, format!("`{re}` is not a valid regex: {detail}"));
                None
            }
        };
    }
    let (exact, p) = match raw.strip_prefix("exact:") {
        Some(p) => (true, p),
        None => (false, raw),
    };
    if !p.starts_with('/') {
        report.value(
            path,
            format!(
                "`{raw}` must start with `/` (a prefix), or be `exact:/path` or `regex:^/pattern`"
            ),
        );
        return None;
    }
    Some(if exact {
        PathPattern::Exact(p.to_string())
    } else {
        PathPattern::Prefix(p.to_string())
    })
}
