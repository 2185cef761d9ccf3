//! The first step of validation: the YAML tree decoded into the raw schema one section,
//! list item and upstream at a time. serde stops at the first problem of what it decodes;
//! here a value that does not decode is reported, set aside (a stand-in put in its place,
//! or an unknown key removed) and the element decoded again, so that one run reports every
//! problem of the file.

use super::super::report::{join_index, join_key, key_name, Report};
use super::super::schema::*;
use super::messages::{suggestion, unknown, Problem};
use super::NO_LISTENERS;
use serde::de::DeserializeOwned;
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Value};
use std::collections::{BTreeMap, HashMap};

/// Most decoding rounds for one element: each round sets one problem aside, and a value
/// takes at most one round per stand-in, so this bounds the work of a file full of errors.
const MAX_ROUNDS: usize = 256;

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
                raw.listeners = Some(listeners(value, report));
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

/// `listeners:`, each entry in its place.
fn listeners(value: Value, report: &mut Report) -> Vec<Option<RawListener>> {
    match value {
        Value::Sequence(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| listener(item, &join_index("listeners", i), report))
            .collect(),
        Value::Null => Vec::new(),
        _ => {
            report.value("listeners", "must be a list (each item starting with `- `)");
            Vec::new()
        }
    }
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

/// Gives the message for an unknown key (its name, and the keys its mapping has) at some
/// steps into an element, when it knows better than "unknown key".
type Misplaced<'a> = &'a dyn Fn(&[Step], &str, &[String]) -> Option<String>;

/// Decodes one element at `path`, reporting every problem in it.
pub(super) fn one<T: DeserializeOwned>(value: Value, path: &str, report: &mut Report) -> Option<T> {
    one_with(value, path, report, &|_, _, _| None)
}

/// [`one`], with `misplaced(inside, key, expected)` giving the message for an unknown
/// `key` of the mapping at steps `inside`, which has the keys `expected`, when it knows
/// better than "unknown key" (a key that belongs to another kind of listener).
fn one_with<T: DeserializeOwned>(
    mut value: Value,
    path: &str,
    report: &mut Report,
    misplaced: Misplaced<'_>,
) -> Option<T> {
    // How many stand-ins each set-aside value has had.
    let mut tries: HashMap<Vec<Step>, usize> = HashMap::new();
    // The keys that removed misspellings meant: their absence is not news.
    let mut meant: Vec<Vec<Step>> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let err = match serde_path_to_error::deserialize::<_, T>(value.clone()) {
            Ok(decoded) => return Some(decoded),
            Err(err) => err,
        };
        let mut steps = steps(err.path());
        let (message, node) = match Problem::read(&err.into_inner().to_string()) {
            Problem::UnknownKey { name, expected } => {
                if steps.last() != Some(&Step::Key(name.clone())) {
                    steps.push(Step::Key(name.clone()));
                }
                let inside = &steps[..steps.len() - 1];
                if let Some(key) = suggestion(&name, &expected) {
                    meant.push([inside, &[Step::Key(key.to_string())]].concat());
                }
                let message = misplaced(inside, &name, &expected)
                    .unwrap_or_else(|| unknown(&name, "key", &expected));
                report.key(&full_path(path, &steps), message);
                if !replace(&mut value, &steps, None) {
                    return None;
                }
                continue;
            }
            Problem::UnknownValue { name, expected } => {
                (unknown(&name, "value", &expected), steps.clone())
            }
            Problem::MissingKey(name) => {
                let message = format!("missing key `{name}`");
                (message, [&steps[..], &[Step::Key(name)]].concat())
            }
            Problem::Invalid(message) => (message, steps.clone()),
        };
        let tried = tries.entry(node.clone()).or_default();
        if *tried == 0 {
            if !meant.contains(&node) {
                // A missing key is reported at the mapping that lacks it.
                report.value(&full_path(path, &steps), message);
            }
            report.set_aside(full_path(path, &node));
        }
        let stand_in = stand_in(*tried, !node.is_empty())?;
        *tried += 1;
        if !replace(&mut value, &node, stand_in) {
            return None;
        }
    }
    None
}

/// One step from an element down to one of its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Step {
    /// A key of a mapping.
    Key(String),
    /// An item of a list.
    Index(usize),
}

/// The steps serde took to the value it stopped at.
fn steps(path: &serde_path_to_error::Path) -> Vec<Step> {
    let mut out = Vec::new();
    for segment in path {
        match segment {
            serde_path_to_error::Segment::Seq { index } => out.push(Step::Index(*index)),
            serde_path_to_error::Segment::Map { key } => out.push(Step::Key(key.clone())),
            // A tagged value's variant is the tag, not a step into the tree.
            serde_path_to_error::Segment::Enum { .. } => {}
            serde_path_to_error::Segment::Unknown => break,
        }
    }
    out
}

/// `path` followed by `steps`, as error messages write it.
fn full_path(path: &str, steps: &[Step]) -> String {
    steps.iter().fold(path.to_string(), |p, step| match step {
        Step::Key(key) => join_key(&p, key),
        Step::Index(i) => join_index(&p, *i),
    })
}

/// What is tried in place of a value that does not decode, in order: a value each common
/// type accepts, then (for a key) no value at all, so that the key's default applies.
/// `None` when every stand-in was tried; `Some(None)` stands for removing the key.
fn stand_in(tried: usize, is_key: bool) -> Option<Option<Value>> {
    let values = [
        Value::String(String::new()),
        Value::Number(0.into()),
        Value::Bool(false),
        Value::Sequence(Vec::new()),
        Value::Mapping(Mapping::new()),
    ];
    match values.into_iter().nth(tried) {
        Some(value) => Some(Some(value)),
        None if is_key && tried == 5 => Some(None),
        None => None,
    }
}

/// Puts `with` at `steps` (or removes the key there, for `None`); false when the tree has
/// no place there to change.
fn replace(value: &mut Value, steps: &[Step], with: Option<Value>) -> bool {
    let Some((last, inside)) = steps.split_last() else {
        return match with {
            Some(with) => {
                *value = with;
                true
            }
            None => false,
        };
    };
    let Some(parent) = node(value, inside) else {
        return false;
    };
    match (untag(parent), last, with) {
        (Value::Mapping(map), Step::Key(key), with) => {
            let existing = map.keys().find(|k| key_name(k) == *key).cloned();
            let slot = existing.unwrap_or_else(|| Value::String(key.clone()));
            match with {
                Some(with) => {
                    map.insert(slot, with);
                }
                None => {
                    map.remove(&slot);
                }
            }
            true
        }
        (Value::Sequence(items), Step::Index(i), Some(with)) => match items.get_mut(*i) {
            Some(item) => {
                *item = with;
                true
            }
            None => false,
        },
        _ => false,
    }
}

/// The value at `steps` under `value`.
fn node<'a>(value: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    steps
        .iter()
        .try_fold(value, |v, step| match (untag(v), step) {
            (Value::Mapping(map), Step::Key(key)) => map
                .iter_mut()
                .find(|(k, _)| key_name(k) == *key)
                .map(|(_, v)| v),
            (Value::Sequence(items), Step::Index(i)) => items.get_mut(*i),
            _ => None,
        })
}

/// The value inside a tag (`!tag value`), which is what serde reads fields from.
fn untag(value: &mut Value) -> &mut Value {
    match value {
        Value::Tagged(tagged) => untag(&mut tagged.value),
        other => other,
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
