//! The first step of validation: the YAML tree decoded into the raw schema one section,
//! list item and upstream at a time (each through [`one`], which reports every problem of
//! an element), listeners by the variant their `protocol` names.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::messages::{unknown, Problem};
use super::set_aside::{one, one_with, Step};
use super::NO_LISTENERS;
use serde::de::DeserializeOwned;
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;

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
    "consumers",
    "jwt",
    "rate_limits",
    "limits",
];

/// Decodes each section, list item and upstream on its own, so one bad element reports its
/// own error without hiding the others.
pub(crate) fn decode(value: Value, report: &mut Report) -> RawConfig {
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
                if value.is_null() {
                    report.key(key, NO_LISTENERS);
                } else if value.as_sequence().is_some_and(Vec::is_empty) {
                    report.value(key, NO_LISTENERS);
                }
                raw.listeners = Some(list(value, key, report, listener));
            }
            "routes" => raw.routes = list(value, key, report, one),
            "upstreams" => raw.upstreams = named(value, key, report),
            "headers" => raw.headers = one(value, key, report).unwrap_or_default(),
            "resolver" => raw.resolver = list(value, key, report, one),
            "admin" => raw.admin = Some(one(value, key, report).unwrap_or_default()),
            "access_log" => raw.access_log = Some(one(value, key, report).unwrap_or_default()),
            "consumers" => raw.consumers = list(value, key, report, one),
            "jwt" => raw.jwt = list(value, key, report, one),
            "rate_limits" => raw.rate_limits = Some(one(value, key, report).unwrap_or_default()),
            "limits" => raw.limits = one(value, key, report).unwrap_or_default(),
            other => {
                let message = unknown(other, "key", TOP_LEVEL_KEYS);
                report.key(other, message);
            }
        }
    }
    raw
}

/// One listener: `protocol` (`http` when omitted) says which keys it may have besides
/// `name` and `address`; the others are decoded as that protocol's variant.
fn listener(value: Value, path: &str, report: &mut Report) -> Option<RawListener> {
    let Value::Mapping(mut map) = value else {
        report.value(
            path,
            "expected a mapping, e.g. { name: web, address: 0.0.0.0:80 }",
        );
        return None;
    };
    let protocol = match map.remove("protocol") {
        None => Some(RawProtocol::Http),
        Some(written) => one::<RawProtocol>(written, &join_key(path, "protocol"), report),
    };
    let mut id = Mapping::new();
    for key in ["name", "address"] {
        if let Some(value) = map.remove(key) {
            id.insert(key.into(), value);
        }
    }
    let id = one::<RawListenerId>(Value::Mapping(id), path, report);
    let protocol = protocol?;
    let tls = match protocol {
        RawProtocol::Tls => map
            .remove("tls")
            .and_then(|tls| one::<RawListenerTls>(tls, &join_key(path, "tls"), report)),
        _ => None,
    };
    // A `tls` listener has the keys of a `tcp` one, and `tls`, taken out above.
    let variant = match protocol {
        RawProtocol::Tls => RawProtocol::Tcp,
        other => other,
    };
    let tagged = Value::Tagged(Box::new(TaggedValue {
        tag: Tag::new(variant.name()),
        value: Value::Mapping(map),
    }));
    let misplaced = |inside: &[Step], key: &str, expected: &[String]| {
        inside
            .is_empty()
            .then(|| misplaced_key(protocol, key, expected))
    };
    let kind = match one_with::<RawListenerKind>(tagged, path, report, &misplaced)? {
        RawListenerKind::Tcp(stream) if protocol == RawProtocol::Tls => {
            RawListenerKind::Tls { tls, stream }
        }
        kind => kind,
    };
    let id = id?;
    Some(RawListener {
        name: id.name,
        address: id.address,
        kind,
    })
}

/// The message for `key` on a `protocol` listener that does not have it: the protocols it
/// belongs to, or, if none, the keys this one has.
fn misplaced_key(protocol: RawProtocol, key: &str, expected: &[String]) -> String {
    let owners: Vec<&str> = RawProtocol::ALL
        .into_iter()
        .filter(|p| *p != protocol && has_key(*p, key))
        .map(RawProtocol::name)
        .collect();
    if owners.is_empty() {
        let mut keys: Vec<&str> = vec!["name", "address", "protocol"];
        keys.extend(expected.iter().map(String::as_str));
        return unknown(key, "key", &keys);
    }
    let hint = match (key, protocol) {
        ("upstream", RawProtocol::Http | RawProtocol::Https) => {
            "; HTTP listeners reach upstreams through `routes:`"
        }
        ("tls", RawProtocol::Tcp) => "; `protocol: tls` terminates TLS",
        _ => "",
    };
    format!(
        "`{key}` applies to `protocol: {}` listeners only{hint}",
        owners.join("` and `")
    )
}

/// Whether a `protocol` listener has the key `key`: the schema of that protocol is asked,
/// so the answer follows the schema.
fn has_key(protocol: RawProtocol, key: &str) -> bool {
    if protocol == RawProtocol::Tls {
        return key == "tls" || has_key(RawProtocol::Tcp, key);
    }
    let mut probe = Mapping::new();
    probe.insert(key.into(), Value::Null);
    let tagged = Value::Tagged(Box::new(TaggedValue {
        tag: Tag::new(protocol.name()),
        value: Value::Mapping(probe),
    }));
    match serde_yaml::from_value::<RawListenerKind>(tagged) {
        Ok(_) => true,
        Err(e) => !matches!(Problem::read(&e.to_string()), Problem::UnknownKey { .. }),
    }
}

/// A list section, each item decoded by `item` and kept in its place (`None` for one that
/// could not be read at all), so that the paths of the others keep their index.
fn list<T>(
    value: Value,
    path: &str,
    report: &mut Report,
    item: fn(Value, &str, &mut Report) -> Option<T>,
) -> Vec<Option<T>> {
    match value {
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, value)| item(value, &join_index(path, i), report))
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
