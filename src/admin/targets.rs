//! Admin API edits of an upstream's targets, made to the YAML document of the running
//! configuration (see [`crate::control::LiveConfig::edit`]), which then validates the result
//! as a whole.

use crate::control::{Conflict, EditError, Missing};
use serde_yaml::{Mapping, Value};

/// The body of `POST /upstreams/{name}/targets`: a target as the file writes one, decoded
/// by the file's own schema, so the API accepts exactly the keys the file does.
pub(super) type NewTarget = crate::config::RawTarget;

/// The `targets` list of upstream `upstream`.
fn targets<'a>(document: &'a mut Value, upstream: &str) -> Result<&'a mut Vec<Value>, EditError> {
    document
        .get_mut("upstreams")
        .and_then(|u| u.get_mut(upstream))
        .and_then(|u| u.get_mut("targets"))
        .and_then(Value::as_sequence_mut)
        .ok_or_else(|| Missing::Upstream(upstream.to_string()).into())
}

/// The index of the target written as `address` or named `address`.
fn find(targets: &[Value], address: &str) -> Option<usize> {
    let is = |t: &Value, key: &str| t.get(key).and_then(Value::as_str) == Some(address);
    targets
        .iter()
        .position(|t| is(t, "address") || is(t, "name"))
}

/// The target `address` of `upstream`, as a mapping to edit.
fn target<'a>(
    document: &'a mut Value,
    upstream: &str,
    address: &str,
) -> Result<&'a mut Mapping, EditError> {
    let list = targets(document, upstream)?;
    find(list, address)
        .and_then(|i| list[i].as_mapping_mut())
        .ok_or_else(|| no_target(upstream, address))
}

/// The error of a target that `upstream` does not have.
fn no_target(upstream: &str, address: &str) -> EditError {
    Missing::Target {
        upstream: upstream.to_string(),
        target: address.to_string(),
    }
    .into()
}

/// Appends `target` to `upstream`.
pub(super) fn add(
    document: &mut Value,
    upstream: &str,
    target: &NewTarget,
) -> Result<bool, EditError> {
    let list = targets(document, upstream)?;
    for taken in std::iter::once(&target.address).chain(&target.name) {
        if find(list, taken).is_some() {
            return Err(Conflict::Taken {
                upstream: upstream.to_string(),
                taken: taken.clone(),
            }
            .into());
        }
    }
    let written = serde_yaml::to_value(target)?;
    list.push(written);
    Ok(true)
}

/// Removes the target `address` from `upstream`; not the last one.
pub(super) fn remove(
    document: &mut Value,
    upstream: &str,
    address: &str,
) -> Result<bool, EditError> {
    let list = targets(document, upstream)?;
    let index = find(list, address).ok_or_else(|| no_target(upstream, address))?;
    if list.len() == 1 {
        return Err(Conflict::LastTarget {
            upstream: upstream.to_string(),
            target: address.to_string(),
        }
        .into());
    }
    list.remove(index);
    Ok(true)
}

/// Drains the target `address` of `upstream` (no new requests), or enables it again;
/// whether that changed anything.
pub(super) fn set_drain(
    document: &mut Value,
    upstream: &str,
    address: &str,
    drain: bool,
) -> Result<bool, EditError> {
    let target = target(document, upstream, address)?;
    let drained = target.get("drain").and_then(Value::as_bool) == Some(true);
    if drained == drain {
        return Ok(false);
    }
    if drain {
        target.insert("drain".into(), true.into());
    } else {
        target.remove("drain");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        serde_yaml::from_str(
            "upstreams:\n  api:\n    targets:\n      - { address: 127.0.0.1:1, name: one }\n",
        )
        .unwrap()
    }

    #[test]
    fn edits_find_targets_by_address_or_name() {
        let mut doc = document();
        // As the API reads a body: through the file's own schema.
        let new: NewTarget =
            serde_json::from_str(r#"{"address": "127.0.0.1:2", "weight": 3}"#).unwrap();
        assert!(add(&mut doc, "api", &new).unwrap());
        assert!(matches!(
            add(&mut doc, "api", &new),
            Err(EditError::Conflict(Conflict::Taken { .. }))
        ));
        let named_alike = NewTarget {
            address: "127.0.0.1:3".into(),
            weight: None,
            name: Some("one".into()),
            backup: false,
            drain: false,
        };
        assert!(matches!(
            add(&mut doc, "api", &named_alike),
            Err(EditError::Conflict(Conflict::Taken { .. }))
        ));
        assert_eq!(
            doc["upstreams"]["api"]["targets"][1],
            serde_yaml::from_str::<Value>("{ address: 127.0.0.1:2, weight: 3 }").unwrap(),
            "only the keys given are written"
        );
        assert!(set_drain(&mut doc, "api", "one", true).unwrap());
        assert!(
            !set_drain(&mut doc, "api", "one", true).unwrap(),
            "no change"
        );
        assert_eq!(doc["upstreams"]["api"]["targets"][0]["drain"], true);
        remove(&mut doc, "api", "127.0.0.1:1").unwrap();
        assert!(matches!(
            remove(&mut doc, "api", "127.0.0.1:2"),
            Err(EditError::Conflict(Conflict::LastTarget { .. }))
        ));
        assert!(matches!(
            set_drain(&mut doc, "web", "x", true),
            Err(EditError::NotFound(Missing::Upstream(_)))
        ));
    }
}
