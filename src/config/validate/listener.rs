//! Validation of `listeners:`: names, addresses, and the settings of each protocol: TLS,
//! HSTS and redirects for HTTP; upstream, limits, timeouts and PROXY protocol for TCP. A
//! key of another protocol never gets here: decoding reports it.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::super::*;
use super::limits::limits;
use super::policy::{policies, Known};
use super::routes::host_pattern;
use super::values::{beside, duration};
use super::{check_name, check_upstream, NO_LISTENERS};
use std::collections::{HashMap, HashSet};

pub(super) fn listeners(
    file: &Path,
    raw: Option<&[Option<RawListener>]>,
    upstreams: &[&str],
    known: &Known,
    top: &Limits,
    report: &mut Report,
) -> Vec<Listener> {
    let Some(raw) = raw else {
        report.value("listeners", NO_LISTENERS);
        return Vec::new();
    };
    let https_port = raw
        .iter()
        .flatten()
        .filter(|l| matches!(l.kind, RawListenerKind::Https(_)))
        .find_map(|l| l.address.parse::<SocketAddr>().ok())
        .map_or(DEFAULT_HTTPS_PORT, |a| a.port());
    let mut names = HashSet::new();
    let mut addresses: HashMap<SocketAddr, &str> = HashMap::new();
    let mut out = Vec::new();
    for (i, l) in raw.iter().enumerate() {
        let Some(l) = l else { continue };
        let path = join_index("listeners", i);
        check_name(
            &l.name,
            &join_key(&path, "name"),
            "listener",
            &mut names,
            report,
        );
        let protocol = match &l.kind {
            RawListenerKind::Http(http) => redirect(http, &path, https_port, report),
            RawListenerKind::Https(https) => {
                Protocol::Https(tls(https.tls.as_ref(), Some(https), &path, file, report))
            }
            RawListenerKind::Tcp(s) => stream(s, None, &path, file, upstreams, report),
            RawListenerKind::Tls { tls, stream: s } => {
                stream(s, Some(tls.as_ref()), &path, file, upstreams, report)
            }
        };
        let address = match l.address.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                report.value(
                    &join_key(&path, "address"),
                    format!(
                        "`{}` is not an ip:port address, e.g. 0.0.0.0:80 or [::]:443",
                        l.address
                    ),
                );
                continue;
            }
        };
        if let Some(other) = addresses.insert(address, &l.name) {
            report.value(
                &join_key(&path, "address"),
                format!("address {address} is already used by listener `{other}`"),
            );
        }
        let (policies, limits) = match &l.kind {
            RawListenerKind::Http(RawHttpListener {
                policies: p,
                limits: own,
                ..
            })
            | RawListenerKind::Https(RawHttpsListener {
                policies: p,
                limits: own,
                ..
            }) => (
                policies(p, &path, known, report),
                own.as_ref().map_or_else(
                    || *top,
                    |own| limits(own, top, &join_key(&path, "limits"), report),
                ),
            ),
            _ => (Policies::default(), *top),
        };
        out.push(Listener {
            name: l.name.clone(),
            address,
            protocol,
            policies,
            limits,
        });
    }
    out
}

/// A plain listener, with its redirect to HTTPS if it has one.
fn redirect(l: &RawHttpListener, path: &str, https_port: u16, report: &mut Report) -> Protocol {
    if !l.redirect_https && !l.redirect_except.is_empty() {
        report.key(
            &join_key(path, "redirect_except"),
            "`redirect_except` needs `redirect_https: true`",
        );
    }
    let except_path = join_key(path, "redirect_except");
    for (j, p) in l.redirect_except.iter().enumerate() {
        if !p.starts_with('/') {
            report.value(
                &join_index(&except_path, j),
                format!("`{p}` must be a path prefix starting with `/`, e.g. /.well-known/acme-challenge/"),
            );
        }
    }
    Protocol::Http {
        redirect: l.redirect_https.then(|| Redirect {
            port: https_port,
            except: l.redirect_except.clone(),
        }),
    }
}

/// A `tcp` listener, or a `tls` one (`tls` is `Some`, holding its `tls:` if written): the
/// upstream it forwards to, its limit, timeouts and PROXY protocol.
fn stream(
    l: &RawStreamListener,
    tls_settings: Option<Option<&RawListenerTls>>,
    path: &str,
    file: &Path,
    upstreams: &[&str],
    report: &mut Report,
) -> Protocol {
    let protocol = if tls_settings.is_some() { "tls" } else { "tcp" };
    let upstream = match &l.upstream {
        Some(name) => {
            check_upstream(name, &join_key(path, "upstream"), upstreams, report);
            name.clone()
        }
        None => {
            report.value(
                path,
                format!("a `protocol: {protocol}` listener needs an `upstream:` to forward to"),
            );
            String::new()
        }
    };
    if l.max_connections == Some(0) {
        report.value(
            &join_key(path, "max_connections"),
            "0 would refuse every connection; leave it out for no limit",
        );
    }
    let queue = l.on_limit == Some(RawOnLimit::Queue);
    if l.max_connections.is_none() && l.on_limit.is_some() {
        report.key(
            &join_key(path, "on_limit"),
            "`on_limit` needs `max_connections`",
        );
    }
    if !queue && l.queue_timeout.is_some() {
        report.key(
            &join_key(path, "queue_timeout"),
            "`queue_timeout` needs `on_limit: queue`",
        );
    }
    let queue_timeout = queue.then(|| {
        duration(
            l.queue_timeout.as_deref(),
            &join_key(path, "queue_timeout"),
            DEFAULT_QUEUE_TIMEOUT,
            report,
        )
    });
    if l.accept_proxy_protocol && tls_settings.is_some() {
        report.key(
            &join_key(path, "accept_proxy_protocol"),
            "a PROXY protocol header comes before the TLS handshake, which weir does not \
             read; use it with `protocol: tcp`",
        );
    }
    Protocol::Tcp(StreamSettings {
        tls: tls_settings.map(|raw| tls(raw, None, path, file, report)),
        upstream,
        max_connections: l.max_connections,
        queue_timeout,
        idle_timeout: duration(
            l.idle_timeout.as_deref(),
            &join_key(path, "idle_timeout"),
            DEFAULT_STREAM_IDLE_TIMEOUT,
            report,
        ),
        send_proxy: l.send_proxy_protocol,
        accept_proxy: l.accept_proxy_protocol,
    })
}

/// The TLS settings of an `https` or `tls` listener: at least one certificate, a version no
/// older than TLS 1.2.
fn tls(
    raw: Option<&RawListenerTls>,
    https: Option<&RawHttpsListener>,
    path: &str,
    file: &Path,
    report: &mut Report,
) -> ListenerTls {
    let tls_path = join_key(path, "tls");
    let certs_path = join_key(&tls_path, "certificates");
    let raw_certs = raw.map_or(&[][..], |t| t.certificates.as_slice());
    if raw_certs.is_empty() {
        report.value(
            &certs_path,
            "a listener that terminates TLS needs a certificate: `tls: { certificates: [{ cert: site.crt, key: site.key }] }`",
        );
    }
    let mut certificates = Vec::new();
    let mut default = None;
    for (j, c) in raw_certs.iter().enumerate() {
        let c_path = join_index(&certs_path, j);
        if c.default {
            if let Some(first) = default.replace(j) {
                report.value(
                    &join_key(&c_path, "default"),
                    format!("certificate {first} is already the default; only one can be"),
                );
            }
        }
        let names = c
            .names
            .iter()
            .enumerate()
            .filter_map(|(k, n)| {
                let n_path = join_index(&join_key(&c_path, "names"), k);
                Some(match host_pattern(n, &n_path, report)? {
                    HostPattern::Exact(name) => name,
                    HostPattern::Wildcard(suffix) => format!("*{suffix}"),
                })
            })
            .collect();
        certificates.push(CertFiles {
            cert: beside(file, &c.cert),
            key: beside(file, &c.key),
            names,
            at: Setting::new(c_path, report.locations().clone()),
        });
    }
    let min_path = join_key(&tls_path, "min_version");
    let written = raw.and_then(|t| match &t.min_version {
        Some(serde_yaml::Value::String(s)) => Some(s.clone()),
        Some(serde_yaml::Value::Number(n)) => Some(n.to_string()),
        // A list, a mapping, a boolean: shown in flow style, as `[1]`.
        Some(other) => Some(serde_json::to_string(other).unwrap_or_default()),
        None => None,
    });
    let min_version = match written.as_deref() {
        None | Some("1.2") => TlsVersion::Tls12,
        Some("1.3") => TlsVersion::Tls13,
        Some(v @ ("1.0" | "1.1")) => {
            report.value(
                &min_path,
                format!("TLS {v} is broken and not offered; use \"1.2\" (the default) or \"1.3\""),
            );
            TlsVersion::Tls12
        }
        Some(v) => {
            report.value(
                &min_path,
                format!("`{v}` is not a TLS version; use \"1.2\" (the default) or \"1.3\""),
            );
            TlsVersion::Tls12
        }
    };
    ListenerTls {
        certificates,
        default: default.unwrap_or(0),
        min_version,
        http2: https.is_some_and(|h| h.http2.unwrap_or(true)),
        hsts: https
            .and_then(|h| h.hsts.as_ref())
            .map(|h| hsts(h, &join_key(path, "hsts"), report)),
    }
}

/// The `Strict-Transport-Security` value, built once.
fn hsts(raw: &RawHsts, path: &str, report: &mut Report) -> HeaderValue {
    let max_age = duration(
        raw.max_age.as_deref(),
        &join_key(path, "max_age"),
        DEFAULT_HSTS_MAX_AGE,
        report,
    );
    let mut value = format!("max-age={}", max_age.as_secs());
    if raw.include_subdomains {
        value.push_str("; includeSubDomains");
    }
    if raw.preload {
        value.push_str("; preload");
    }
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("max-age=31536000"))
}
