//! Validation of header settings: the `set` / `add` / `remove` rules of routes and
//! upstreams, and the top-level `headers:` section.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::super::*;
use super::values::cidrs;
use std::collections::BTreeMap;

pub(super) fn header_rules(raw: &RawHeaderRules, path: &str, report: &mut Report) -> HeaderRules {
    HeaderRules {
        request: header_edits(&raw.request, &join_key(path, "request"), report),
        response: header_edits(&raw.response, &join_key(path, "response"), report),
    }
}

pub(super) fn header_edits(raw: &RawHeaderEdits, path: &str, report: &mut Report) -> HeaderEdits {
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

pub(super) fn header_name(raw: &str, path: &str, report: &mut Report) -> Option<HeaderName> {
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

pub(super) fn global_headers(raw: &RawGlobalHeaders, report: &mut Report) -> GlobalHeaders {
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
    let trusted_proxies = cidrs(&raw.trusted_proxies, "headers.trusted_proxies", report);
    GlobalHeaders {
        request_id,
        instance_header,
        trusted_proxies,
    }
}
