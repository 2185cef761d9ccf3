//! The first step of validation: the YAML tree decoded into the raw schema one section,
//! list item and upstream at a time, serde's messages rewritten in weir's words.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::{unknown, NO_LISTENERS};
use serde::de::DeserializeOwned;
use serde_yaml::Value;
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
];

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
