//! Validation of `policies.cors`: origins written as browsers send them
//! (`scheme://host[:port]`, with `*.` standing for the first labels of a host, or `*`
//! alone), methods weir knows, header names, and no `*` with credentials.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::super::*;
use super::headers::header_name;
use super::messages::unknown;
use super::values::duration_or_zero;

/// The methods `cors.methods` may list.
const METHODS: [(&str, http::Method); 7] = [
    ("GET", http::Method::GET),
    ("HEAD", http::Method::HEAD),
    ("POST", http::Method::POST),
    ("PUT", http::Method::PUT),
    ("PATCH", http::Method::PATCH),
    ("DELETE", http::Method::DELETE),
    ("OPTIONS", http::Method::OPTIONS),
];

/// How an origin is written, for messages about one that is not.
const ORIGIN_FORM: &str = "an origin is scheme://host[:port] as browsers send it in `Origin`, \
                           e.g. https://app.example.com, http://localhost:3000 or \
                           https://*.example.com";

/// `policies.cors` at `path`.
pub(super) fn cors(raw: &RawCors, path: &str, report: &mut Report) -> Cors {
    let origins_path = join_key(path, "origins");
    let any = raw.origins.iter().any(|o| o == "*");
    if raw.origins.is_empty() {
        report.value(
            &origins_path,
            "list the origins allowed, e.g. [https://app.example.com], or [\"*\"] for every origin",
        );
    } else if any && raw.origins.len() > 1 {
        report.value(
            &origins_path,
            "`*` allows every origin: list it alone, or list the origins without it",
        );
    }
    if any && raw.credentials {
        report.value(
            &origins_path,
            "`*` cannot be used with `credentials: true`: browsers refuse credentialed answers \
             for every origin; list the origins that may send credentials",
        );
    }
    let listed = raw
        .origins
        .iter()
        .enumerate()
        .filter(|(_, o)| *o != "*")
        .filter_map(|(i, o)| origin(o, &join_index(&origins_path, i), report))
        .collect();
    Cors {
        origins: (!any).then_some(listed),
        methods: methods(raw.methods.as_deref(), &join_key(path, "methods"), report),
        headers: raw
            .headers
            .as_ref()
            .map(|h| header_names(h, &join_key(path, "headers"), report)),
        expose_headers: header_names(
            &raw.expose_headers,
            &join_key(path, "expose_headers"),
            report,
        ),
        credentials: raw.credentials,
        max_age: raw.max_age.as_deref().map(|m| {
            duration_or_zero(
                Some(m),
                &join_key(path, "max_age"),
                std::time::Duration::ZERO,
                report,
            )
        }),
    }
}

/// One entry of `origins` other than `*`, in lower case.
fn origin(raw: &str, path: &str, report: &mut Report) -> Option<CorsOrigin> {
    let lower = raw.to_ascii_lowercase();
    let Some((scheme, authority)) = lower.split_once("://") else {
        report.value(path, format!("`{raw}` has no scheme; {ORIGIN_FORM}"));
        return None;
    };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        report.value(path, format!("`{raw}` has no valid scheme; {ORIGIN_FORM}"));
        return None;
    }
    if authority.contains(['/', '?', '#']) {
        report.value(
            path,
            format!("`{raw}` has a path, which origins never have; {ORIGIN_FORM}"),
        );
        return None;
    }
    let (wildcard, host_port) = match authority.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, authority),
    };
    if host_port.contains('*') {
        report.value(
            path,
            format!("`{raw}`: `*` may only stand for the first labels of a host, as in https://*.example.com"),
        );
        return None;
    }
    if !is_host_port(host_port) {
        report.value(
            path,
            format!("`{raw}` has no valid host or port; {ORIGIN_FORM}"),
        );
        return None;
    }
    Some(if wildcard {
        CorsOrigin::Subdomains {
            scheme: format!("{scheme}://"),
            suffix: format!(".{host_port}"),
        }
    } else {
        CorsOrigin::Exact(lower)
    })
}

/// `host[:port]`: a DNS name or IPv4 address, or an IPv6 address in brackets, without a
/// user name.
fn is_host_port(text: &str) -> bool {
    let (host, port) = match text.rsplit_once(':') {
        Some((host, _)) if !host.ends_with(']') && host.contains(':') => (text, None),
        Some((host, port)) => (host, Some(port)),
        None => (text, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        }
    };
    port_ok && host_ok
}

fn methods(raw: Option<&[String]>, path: &str, report: &mut Report) -> Vec<http::Method> {
    let Some(raw) = raw else {
        return DEFAULT_CORS_METHODS.to_vec();
    };
    if raw.is_empty() {
        report.value(path, "list the methods allowed, e.g. [GET, POST]");
    }
    let names: Vec<&str> = METHODS.iter().map(|(name, _)| *name).collect();
    let mut out = Vec::new();
    for (i, m) in raw.iter().enumerate() {
        match METHODS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(m))
        {
            Some((_, method)) if !out.contains(method) => out.push(method.clone()),
            Some(_) => {}
            None => report.value(&join_index(path, i), unknown(m, "method", &names)),
        }
    }
    out
}

fn header_names(raw: &[String], path: &str, report: &mut Report) -> Vec<http::HeaderName> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, n)| header_name(n, &join_index(path, i), report))
        .collect()
}
