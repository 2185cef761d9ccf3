//! Host + path → route, compiled once per runtime.
//!
//! Precedence, most specific first: an exact host, then wildcard hosts (longest suffix
//! first), then routes without hosts. Within the chosen host, as in nginx: an exact path,
//! then regexes in file order, then the longest prefix. If a host tier has no path that
//! matches, the next tier is tried, so `/health` on `api.example.com` still reaches a
//! host-less route.

use crate::config::{HostPattern, PathPattern, Route};
use pingora::http::RequestHeader;
use pingora::protocols::http::authority::raw_target_authority;
use regex::Regex;
use std::collections::HashMap;

/// The host `req` is for, which routing and the access log go by: the URI's (HTTP/2's
/// `:authority`), else `Host`, else an absolute-form target's authority (RFC 9112 §3.2.2;
/// HTTP/1.0 may send one without `Host`). Pingora refuses a `Host` that differs from the
/// target's authority, so the two never disagree here.
pub(crate) fn request_host(req: &RequestHeader) -> Option<&str> {
    req.uri
        .host()
        .or_else(|| req.headers.get(http::header::HOST)?.to_str().ok())
        .or_else(|| {
            let authority = raw_target_authority(req.raw_path()).authority()?;
            std::str::from_utf8(authority).ok()
        })
}

/// A route chosen for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RouteMatch {
    /// Index of the route in the runtime's route list (file order).
    pub route: usize,
    /// How many leading bytes of the path the pattern matched; `strip_prefix` removes them.
    pub matched_len: usize,
}

/// The paths of one host tier.
#[derive(Debug, Default)]
struct PathTable {
    exact: HashMap<String, usize>,
    regex: Vec<(Regex, usize)>,
    /// Longest first.
    prefix: Vec<(String, usize)>,
}

impl PathTable {
    fn insert(&mut self, pattern: &PathPattern, route: usize) {
        match pattern {
            PathPattern::Exact(p) => {
                self.exact.entry(p.clone()).or_insert(route);
            }
            PathPattern::Regex(r) => self.regex.push((r.clone(), route)),
            PathPattern::Prefix(p) => self.prefix.push((p.clone(), route)),
        }
    }

    fn finish(&mut self) {
        // Stable: equal prefixes keep file order, and validation rejects true duplicates.
        self.prefix.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
    }

    fn find(&self, path: &str) -> Option<RouteMatch> {
        if let Some(&route) = self.exact.get(path) {
            return Some(RouteMatch {
                route,
                matched_len: path.len(),
            });
        }
        for (re, route) in &self.regex {
            if let Some(m) = re.find(path) {
                return Some(RouteMatch {
                    route: *route,
                    matched_len: if m.start() == 0 { m.end() } else { 0 },
                });
            }
        }
        self.prefix
            .iter()
            .find(|(p, _)| path.starts_with(p.as_str()))
            .map(|(p, route)| RouteMatch {
                route: *route,
                matched_len: p.len(),
            })
    }
}

/// The compiled route table of one runtime.
#[derive(Debug, Default)]
pub(crate) struct RouteTable {
    exact: HashMap<String, PathTable>,
    /// `(".example.com", paths)`, longest suffix first.
    wildcard: Vec<(String, PathTable)>,
    any: PathTable,
}

impl RouteTable {
    /// Compiles the routes; indices in matches refer to positions in `routes`.
    pub(crate) fn new(routes: &[Route]) -> Self {
        let mut table = Self::default();
        for (i, route) in routes.iter().enumerate() {
            for path in &route.paths {
                if route.hosts.is_empty() {
                    table.any.insert(path, i);
                }
                for host in &route.hosts {
                    let tier = match host {
                        HostPattern::Exact(h) => table.exact.entry(h.clone()).or_default(),
                        HostPattern::Wildcard(suffix) => {
                            let at = match table.wildcard.iter().position(|(s, _)| s == suffix) {
                                Some(at) => at,
                                None => {
                                    table.wildcard.push((suffix.clone(), PathTable::default()));
                                    table.wildcard.len() - 1
                                }
                            };
                            &mut table.wildcard[at].1
                        }
                    };
                    tier.insert(path, i);
                }
            }
        }
        table
            .wildcard
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        table.exact.values_mut().for_each(PathTable::finish);
        table.wildcard.iter_mut().for_each(|(_, t)| t.finish());
        table.any.finish();
        table
    }

    /// The route for a request, or `None` (the proxy answers 404). `host` is the Host
    /// header or URI authority as received: a port and a trailing dot are ignored, and
    /// case does not matter.
    pub(crate) fn find(&self, host: Option<&str>, path: &str) -> Option<RouteMatch> {
        if let Some(host) = host.map(normalize_host) {
            let host: &str = &host;
            if let Some(m) = self.exact.get(host).and_then(|t| t.find(path)) {
                return Some(m);
            }
            for (suffix, table) in &self.wildcard {
                if host.len() > suffix.len() && host.ends_with(suffix.as_str()) {
                    if let Some(m) = table.find(path) {
                        return Some(m);
                    }
                }
            }
        }
        self.any.find(path)
    }
}

/// `API.Example.com:8080.` → `api.example.com`; borrows unless the case must change.
fn normalize_host(raw: &str) -> std::borrow::Cow<'_, str> {
    let without_port = if raw.starts_with('[') {
        raw.split_inclusive(']').next().unwrap_or(raw)
    } else {
        raw.rsplit_once(':').map_or(raw, |(h, _)| h)
    };
    let host = without_port.strip_suffix('.').unwrap_or(without_port);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::HeaderRules;

    /// A route to upstream `u`; `*` starts a wildcard host, `exact:` and `regex:` a path.
    pub(super) fn route(name: &str, hosts: &[&str], paths: &[&str]) -> Route {
        Route {
            name: name.into(),
            hosts: hosts
                .iter()
                .map(|h| match h.strip_prefix('*') {
                    Some(s) => HostPattern::Wildcard(s.into()),
                    None => HostPattern::Exact((*h).into()),
                })
                .collect(),
            paths: paths
                .iter()
                .map(|p| {
                    if let Some(e) = p.strip_prefix("exact:") {
                        PathPattern::Exact(e.into())
                    } else if let Some(r) = p.strip_prefix("regex:") {
                        PathPattern::Regex(Regex::new(r).unwrap())
                    } else {
                        PathPattern::Prefix((*p).into())
                    }
                })
                .collect(),
            upstream: "u".into(),
            strip_prefix: false,
            headers: HeaderRules::default(),
            access_log: true,
            policies: Default::default(),
            timeouts: Default::default(),
        }
    }

    #[test]
    fn precedence_table() {
        let routes = [
            route("any-root", &[], &["/"]),
            route("any-api", &[], &["/api"]),
            route("any-users", &[], &["/api/users"]),
            route("wild", &["*.example.com"], &["/api"]),
            route("wild-deep", &["*.eu.example.com"], &["/api"]),
            route("exact-host", &["api.example.com"], &["/api"]),
            route("exact-path", &[], &["exact:/api/users/me"]),
            route("regex", &[], &["regex:^/api/v[0-9]+/"]),
        ];
        let t = RouteTable::new(&routes);
        let name = |host: Option<&str>, path: &str| {
            t.find(host, path).map(|m| routes[m.route].name.as_str())
        };
        assert_eq!(name(Some("api.example.com"), "/api/x"), Some("exact-host"));
        assert_eq!(
            name(Some("API.Example.com:8080"), "/api/x"),
            Some("exact-host")
        );
        assert_eq!(name(Some("web.example.com"), "/api/x"), Some("wild"));
        assert_eq!(name(Some("a.eu.example.com"), "/api/x"), Some("wild-deep"));
        assert_eq!(name(Some("example.com"), "/api/x"), Some("any-api"));
        assert_eq!(name(Some("api.example.com"), "/other"), Some("any-root"));
        assert_eq!(name(None, "/api/users/1"), Some("any-users"));
        assert_eq!(name(None, "/api/users/me"), Some("exact-path"));
        assert_eq!(name(None, "/api/v2/users"), Some("regex"));
        assert_eq!(name(None, "/"), Some("any-root"));
    }

    #[test]
    fn no_match_and_matched_length() {
        let routes = [route("users", &[], &["/api/users"])];
        let t = RouteTable::new(&routes);
        assert_eq!(t.find(None, "/api/orders"), None);
        assert_eq!(
            t.find(None, "/api/users/7").map(|m| m.matched_len),
            Some(10)
        );
    }
}
