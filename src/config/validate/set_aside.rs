//! Decoding one element so that every problem in it is reported: serde stops at the first
//! problem of what it decodes, so a value that does not decode is reported, set aside (a
//! stand-in put in its place, or an unknown key removed) and the element decoded again,
//! with no echo for what was set aside.

use super::super::report::{join_index, join_key, key_name, Report};
use super::messages::{suggestion, unknown, Problem};
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};
use std::collections::HashMap;

/// Most decoding rounds for one element: each round sets one problem aside, and a value
/// takes at most one round per stand-in, so this bounds the work of a file full of errors.
const MAX_ROUNDS: usize = 256;

/// Gives the message for an unknown key (its name, and the keys its mapping has) at some
/// steps into an element, when it knows better than "unknown key".
pub(super) type Misplaced<'a> = &'a dyn Fn(&[Step], &str, &[String]) -> Option<String>;

/// Decodes one element at `path`, reporting every problem in it.
pub(super) fn one<T: DeserializeOwned>(value: Value, path: &str, report: &mut Report) -> Option<T> {
    one_with(value, path, report, &|_, _, _| None)
}

/// [`one`], with `misplaced(inside, key, expected)` giving the message for an unknown
/// `key` of the mapping at steps `inside`, which has the keys `expected`, when it knows
/// better than "unknown key" (a key that belongs to another kind of listener).
pub(super) fn one_with<T: DeserializeOwned>(
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
        let stand_in = stand_in(*tried, matches!(node.last(), Some(Step::Key(_))))?;
        *tried += 1;
        if !replace(&mut value, &node, stand_in) {
            return None;
        }
    }
    report.value(
        path,
        format!("more problems than the {MAX_ROUNDS} reported here; fix these and check again"),
    );
    None
}

/// One step from an element down to one of its values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Step {
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
