//! Raw YAML tree → [`RawConfig`] → validated [`Config`], reporting every problem with its
//! location instead of stopping at the first.

mod listener;
mod upstream;

use super::schema::*;
use super::source::{join_index, join_key, Report};
use super::*;
use listener::listeners;
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use upstream::upstream;

/// Top-level keys, for "did you mean" on a misspelt section.
const TOP_LEVEL_KEYS: &[&str] = &[
    "server",
    "listeners",
    "routes",
    "upstreams",
    "headers",
    "resolver",
    "admin",
    "access_log",
];

const NO_LISTENERS: &str =
    "at least one listener is required, e.g. `listeners: [{ name: web, address: 0.0.0.0:8080 }]`";

/// How close (Jaro-Winkler) a misspelling must be to a known name to be suggested.
const SUGGESTION_THRESHOLD: f64 = 0.8;

/// Decodes each section, list item and upstream on its own, so one bad element reports its
/// own error without hiding the others.
pub fn decode(value: Value, report: &mut Report) -> RawConfig {
    let mut raw = RawConfig::default();
    let map = match value {
        Value::Mapping(map) => map,
        Value::Null => return raw,
        _ => {
            report.value(
                "",
                "the file must be a mapping of sections (listeners:, routes:, upstreams: …)",
            );
            return raw;
        }
    };
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            report.value("", "section names must be strings");
            continue;
        };
        match key {
            "server" => raw.server = one(value, key, report).unwrap_or_default(),
            "listeners" => {
                if value.as_sequence().is_some_and(Vec::is_empty) {
                    report.value(key, NO_LISTENERS);
                }
                raw.listeners = Some(list(value, key, report));
            }
            "routes" => raw.routes = list(value, key, report),
            "upstreams" => raw.upstreams = named(value, key, report),
            "headers" => raw.headers = one(value, key, report).unwrap_or_default(),
            "resolver" => raw.resolver = list(value, key, report),
            "admin" => raw.admin = Some(one(value, key, report).unwrap_or_default()),
            "access_log" => raw.access_log = Some(one(value, key, report).unwrap_or_default()),
            other => {
                let message = unknown(other, "key", TOP_LEVEL_KEYS);
                report.key(other, message);
            }
        }
    }
    raw
}

fn one<T: DeserializeOwned>(value: Value, path: &str, report: &mut Report) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(err) => {
            let mut full = path.to_string();
            for segment in err.path() {
                full = match segment {
                    serde_path_to_error::Segment::Seq { index } => join_index(&full, *index),
                    serde_path_to_error::Segment::Map { key } => join_key(&full, key),
                    serde_path_to_error::Segment::Enum { variant } => join_key(&full, variant),
                    serde_path_to_error::Segment::Unknown => full,
                };
            }
            describe_serde_error(&err.into_inner().to_string(), &full, report);
            None
        }
    }
}

fn list<T: DeserializeOwned>(value: Value, path: &str, report: &mut Report) -> Vec<T> {
    match value {
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, item)| one(item, &join_index(path, i), report))
            .collect(),
        Value::Null => Vec::new(),
        _ => {
            report.value(path, "must be a list (each item starting with `- `)");
            Vec::new()
        }
    }
}

fn named<T: DeserializeOwned>(
    value: Value,
    path: &str,
    report: &mut Report,
) -> BTreeMap<String, Option<T>> {
    match value {
        Value::Mapping(map) => map
            .into_iter()
            .filter_map(|(k, v)| {
                let Some(name) = k.as_str() else {
                    report.value(path, "names must be strings");
                    return None;
                };
                Some((name.to_string(), one(v, &join_key(path, name), report)))
            })
            .collect(),
        Value::Null => BTreeMap::new(),
        _ => {
            report.value(path, "must be a mapping of names to definitions");
            BTreeMap::new()
        }
    }
}

/// Rewrites serde's messages into weir's words, adding a suggestion for misspelt keys and
/// values, and points unknown keys at the key rather than at the mapping holding it.
fn describe_serde_error(message: &str, path: &str, report: &mut Report) {
    for (prefix, what) in [("unknown field `", "key"), ("unknown variant `", "value")] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let name = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = rest
            .split_once("expected")
            .map(|(_, list)| list.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let text = unknown(name, what, &expected);
        if what == "key" {
            let key_path = if path.ends_with(name) {
                path.to_string()
            } else {
                join_key(path, name)
            };
            report.key(&key_path, text);
        } else {
            report.value(path, text);
        }
        return;
    }
    let text = message
        .replace("missing field", "missing key")
        .replace("invalid type: ", "wrong type: ");
    report.value(path, text);
}

/// "unknown key `x`; did you mean `y`? expected one of: a, b".
fn unknown(name: &str, what: &str, expected: &[&str]) -> String {
    let best = expected
        .iter()
        .map(|e| (strsim::jaro_winkler(name, e), *e))
        .filter(|(score, _)| *score >= SUGGESTION_THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let list = expected.join(", ");
    match best {
        Some((_, e)) => {
            format!("unknown {what} `{name}`; did you mean `{e}`? (expected one of: {list})")
        }
        None if expected.is_empty() => format!("unknown {what} `{name}`"),
        None => format!("unknown {what} `{name}`; expected one of: {list}"),
    }
}

/// Turns the raw structs into the model, reporting every problem.
pub fn validate(path: &Path, raw: RawConfig, report: &mut Report) -> Config {
    let upstream_names: Vec<&str> = raw.upstreams.keys().map(String::as_str).collect();
    let config = Config {
        path: path.to_path_buf(),
        server: server(path, &raw.server, report),
        listeners: listeners(path, raw.listeners.as_deref(), &upstream_names, report),
        routes: routes(&raw.routes, &upstream_names, report),
        upstreams: raw
            .upstreams
            .iter()
            .filter_map(|(name, u)| Some(upstream(path, name, u.as_ref()?, report)))
            .collect(),
        headers: global_headers(&raw.headers, report),
        resolver: resolver(&raw.resolver, report),
        admin: raw.admin.as_ref().and_then(|a| admin(a, report)),
        access_log: raw.access_log.as_ref().map(|a| access_log(path, a, report)),
    };
    stream_upstreams(
        &config,
        raw.listeners.as_deref().unwrap_or_default(),
        report,
    );
    config
}

/// Reports what `tcp` and `tls` listeners need from the rest of the file: upstreams that
/// need nothing a connection lacks (a header or cookie to hash on, TLS to the instances),
/// and trusted proxies to accept PROXY protocol headers from.
fn stream_upstreams(config: &Config, raw: &[RawListener], report: &mut Report) {
    for (i, l) in raw.iter().enumerate() {
        if l.accept_proxy_protocol && config.headers.trusted_proxies.is_empty() {
            report.value(
                &join_key(&join_index("listeners", i), "accept_proxy_protocol"),
                "headers.trusted_proxies is empty, so every connection would be refused: list \
                 the load balancers that send PROXY protocol headers",
            );
        }
        let Some(name) = l
            .upstream
            .as_deref()
            .filter(|_| matches!(l.protocol, RawProtocol::Tcp | RawProtocol::Tls))
        else {
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

fn access_log(file: &Path, raw: &RawAccessLog, report: &mut Report) -> AccessLog {
    if raw.queue == Some(0) {
        report.value("access_log.queue", "must be at least 1 (lines)");
    }
    AccessLog {
        format: raw.format,
        path: raw
            .path
            .as_deref()
            .filter(|p| *p != "stdout")
            .map(|p| beside(file, p)),
        queue: raw.queue.unwrap_or(DEFAULT_ACCESS_LOG_QUEUE).max(1),
    }
}

fn admin(raw: &RawAdmin, report: &mut Report) -> Option<Admin> {
    let address = match raw.address.as_deref() {
        None => SocketAddr::from(([127, 0, 0, 1], DEFAULT_ADMIN_PORT)),
        Some(text) => match text.parse() {
            Ok(address) => address,
            Err(_) => {
                report.value(
                    "admin.address",
                    format!("`{text}` is not an ip:port, e.g. 127.0.0.1:9901"),
                );
                return None;
            }
        },
    };
    let token = raw.token.clone().filter(|t| !t.is_empty());
    if token.is_none() && !address.ip().is_loopback() {
        report.value(
            "admin.address",
            format!(
                "{address} is reachable from other machines, so the admin listener needs a \
                 `token`"
            ),
        );
    }
    Some(Admin {
        address,
        token,
        persist: raw.persist,
    })
}

fn resolver(raw: &[String], report: &mut Report) -> Vec<SocketAddr> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let parsed = s.parse::<SocketAddr>().or_else(|_| {
                s.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
            });
            if parsed.is_err() {
                report.value(
                    &join_index("resolver", i),
                    format!("`{s}` is not a DNS server address, e.g. 10.0.0.10 or 127.0.0.1:5353"),
                );
            }
            parsed.ok()
        })
        .collect()
}

fn server(file: &Path, raw: &RawServer, report: &mut Report) -> Server {
    let threads = match raw.threads {
        Some(0) => {
            report.value("server.threads", "must be at least 1");
            1
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if let Some(user) = &raw.user {
        if !matches!(nix::unistd::User::from_name(user), Ok(Some(_))) {
            report.value(
                "server.user",
                format!("there is no user `{user}` on this machine"),
            );
        }
    }
    if let Some(group) = &raw.group {
        if !matches!(nix::unistd::Group::from_name(group), Ok(Some(_))) {
            report.value(
                "server.group",
                format!("there is no group `{group}` on this machine"),
            );
        }
    }
    let upgrade_sock = beside(
        file,
        raw.upgrade_sock.as_deref().unwrap_or(DEFAULT_UPGRADE_SOCK),
    );
    upgrade_socket(&upgrade_sock, report);
    Server {
        threads,
        pid_file: beside(file, raw.pid_file.as_deref().unwrap_or(DEFAULT_PID_FILE)),
        upgrade_sock,
        error_log: raw.error_log.as_deref().map(|p| beside(file, p)),
        user: raw.user.clone(),
        group: raw.group.clone(),
        grace_period: duration_or_zero(
            raw.grace_period.as_deref(),
            "server.grace_period",
            Duration::ZERO,
            report,
        ),
        graceful_shutdown_timeout: duration(
            raw.graceful_shutdown_timeout.as_deref(),
            "server.graceful_shutdown_timeout",
            DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
            report,
        ),
        daemon: raw.daemon,
        log_level: raw.log_level,
    }
}

/// A Unix socket path must fit `sun_path` (108 bytes with its NUL), or the new process of
/// an upgrade could not wait on it. (Its folder may appear later, as systemd's
/// RuntimeDirectory does; `weir upgrade` checks it.)
fn upgrade_socket(path: &Path, report: &mut Report) {
    const SUN_PATH: usize = 107;
    let length = path.as_os_str().len();
    if length > SUN_PATH {
        report.value(
            "server.upgrade_sock",
            format!(
                "{} is {length} bytes long; a Unix socket path has at most {SUN_PATH}",
                path.display()
            ),
        );
    }
}

/// A path from the file `file`: relative ones are taken from its folder, as nginx takes
/// them from its prefix, so the same file works from any working directory. The result is
/// absolute, so that processes started elsewhere (`weir upgrade`, `weir reload`) agree on it.
fn beside(file: &Path, path: &str) -> PathBuf {
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    file.parent().unwrap_or(Path::new("/")).join(path)
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
    if upstreams.contains(&name) {
        return;
    }
    let message = match upstreams
        .iter()
        .map(|u| (strsim::jaro_winkler(name, u), u))
        .filter(|(s, _)| *s >= SUGGESTION_THRESHOLD)
        .max_by(|a, b| a.0.total_cmp(&b.0))
    {
        Some((_, u)) => format!("no upstream is named `{name}`; did you mean `{u}`?"),
        None if upstreams.is_empty() => {
            format!("no upstream is named `{name}`: the upstreams: section is empty")
        }
        None => format!(
            "no upstream is named `{name}`; defined upstreams: {}",
            upstreams.join(", ")
        ),
    };
    report.value(path, message);
}

fn routes(raw: &[RawRoute], upstreams: &[&str], report: &mut Report) -> Vec<Route> {
    let mut names = HashSet::new();
    let mut claimed: HashMap<(Option<HostPattern>, String), &str> = HashMap::new();
    let mut out = Vec::new();
    for (i, r) in raw.iter().enumerate() {
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
        });
    }
    out
}

fn describe_host(h: &HostPattern) -> String {
    match h {
        HostPattern::Exact(h) => format!("host `{h}`"),
        HostPattern::Wildcard(suffix) => format!("host `*{suffix}`"),
    }
}

fn host_pattern(raw: &str, path: &str, report: &mut Report) -> Option<HostPattern> {
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

fn header_rules(raw: &RawHeaderRules, path: &str, report: &mut Report) -> HeaderRules {
    HeaderRules {
        request: header_edits(&raw.request, &join_key(path, "request"), report),
        response: header_edits(&raw.response, &join_key(path, "response"), report),
    }
}

fn header_edits(raw: &RawHeaderEdits, path: &str, report: &mut Report) -> HeaderEdits {
    let pairs = |map: &BTreeMap<String, String>, key: &str, report: &mut Report| {
        let base = join_key(path, key);
        map.iter()
            .filter_map(|(name, value)| {
                let at = join_key(&base, name);
                let name = header_name(name, &at, report)?;
                match HeaderValue::from_str(value) {
                    Ok(v) => Some((name, v)),
                    Err(_) => {
                        report.value(&at, format!("`{value}` is not a valid header value (visible ASCII, no line breaks)"));
                        None
                    }
                }
            })
            .collect()
    };
    HeaderEdits {
        set: pairs(&raw.set, "set", report),
        add: pairs(&raw.add, "add", report),
        remove: raw
            .remove
            .iter()
            .enumerate()
            .filter_map(|(i, n)| header_name(n, &join_index(&join_key(path, "remove"), i), report))
            .collect(),
    }
}

fn header_name(raw: &str, path: &str, report: &mut Report) -> Option<HeaderName> {
    match HeaderName::from_bytes(raw.as_bytes()) {
        Ok(n) => Some(n),
        Err(_) => {
            report.value(
                path,
                format!("`{raw}` is not a valid header name (letters, digits and -)"),
            );
            None
        }
    }
}

fn duration(raw: Option<&str>, path: &str, default: Duration, report: &mut Report) -> Duration {
    let d = duration_or_zero(raw, path, default, report);
    if d.is_zero() {
        report.value(path, "must be longer than zero");
        return default;
    }
    d
}

/// A duration setting where `0s` means "none".
fn duration_or_zero(
    raw: Option<&str>,
    path: &str,
    default: Duration,
    report: &mut Report,
) -> Duration {
    let Some(raw) = raw else { return default };
    match humantime::parse_duration(raw) {
        Ok(d) => d,
        Err(_) => {
            report.value(
                path,
                format!(
                    "`{raw}` is not a duration; write a number and a unit, e.g. 500ms, 10s, 2m"
                ),
            );
            default
        }
    }
}

fn global_headers(raw: &RawGlobalHeaders, report: &mut Report) -> GlobalHeaders {
    let request_id = raw
        .request_id
        .as_deref()
        .and_then(|n| header_name(n, "headers.request_id", report))
        .unwrap_or(HeaderName::from_static(DEFAULT_REQUEST_ID_HEADER));
    let instance_header = match raw.instance_header.as_deref() {
        Some("") => None,
        Some(n) => header_name(n, "headers.instance_header", report),
        None => Some(HeaderName::from_static(DEFAULT_INSTANCE_HEADER)),
    };
    let trusted_proxies = raw
        .trusted_proxies
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let parsed = c
                .parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => Some(net.trunc()),
                Err(_) => {
                    report.value(
                        &join_index("headers.trusted_proxies", i),
                        format!("`{c}` is not a CIDR or IP address, e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8"),
                    );
                    None
                }
            }
        })
        .collect();
    GlobalHeaders {
        request_id,
        instance_header,
        trusted_proxies,
    }
}
