//! Admin API edits of an upstream's targets, made to the YAML document of the running
//! configuration (see [`crate::reload::LiveConfig::edit`]), which then validates the result
//! as a whole.

use crate::reload::EditError;
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

/// The body of `POST /upstreams/{name}/targets`: a target as the file writes one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTarget {
    /// `host:port`.
    pub address: String,
    /// Relative share; the file's default when absent.
    pub weight: Option<u32>,
    /// Name shown in the instance header and logs.
    pub name: Option<String>,
    /// Used only when no primary target is available.
    #[serde(default)]
    pub backup: bool,
}

impl NewTarget {
    /// The target as a YAML mapping, with only the keys that were given.
    fn to_yaml(&self) -> Value {
        let mut map = Mapping::new();
        map.insert("address".into(), self.address.clone().into());
        if let Some(weight) = self.weight {
            map.insert("weight".into(), weight.into());
        }
        if let Some(name) = &self.name {
            map.insert("name".into(), name.clone().into());
        }
        if self.backup {
            map.insert("backup".into(), true.into());
        }
        Value::Mapping(map)
    }
}

/// The `targets` list of upstream `upstream`.
fn targets<'a>(document: &'a mut Value, upstream: &str) -> Result<&'a mut Vec<Value>, EditError> {
    document
        .get_mut("upstreams")
        .and_then(|u| u.get_mut(upstream))
        .and_then(|u| u.get_mut("targets"))
        .and_then(Value::as_sequence_mut)
        .ok_or_else(|| EditError::NotFound(format!("no upstream named `{upstream}`")))
}

/// The index of the target written as `address` (or named so).
fn find(targets: &[Value], upstream: &str, address: &str) -> Result<usize, EditError> {
    let is = |t: &Value, key: &str| t.get(key).and_then(Value::as_str) == Some(address);
    targets
        .iter()
        .position(|t| is(t, "address") || is(t, "name"))
        .ok_or_else(|| {
            EditError::NotFound(format!("upstream `{upstream}` has no target `{address}`"))
        })
}

/// Appends `target` to `upstream`; its index is returned, to locate errors about it.
pub fn add(document: &mut Value, upstream: &str, target: &NewTarget) -> Result<usize, EditError> {
    let list = targets(document, upstream)?;
    if find(list, upstream, &target.address).is_ok() {
        return Err(EditError::Conflict(format!(
            "upstream `{upstream}` has a target `{}` already",
            target.address
        )));
    }
    list.push(target.to_yaml());
    Ok(list.len() - 1)
}

/// Removes the target `address` from `upstream`; not the last one.
pub fn remove(document: &mut Value, upstream: &str, address: &str) -> Result<(), EditError> {
    let list = targets(document, upstream)?;
    let index = find(list, upstream, address)?;
    if list.len() == 1 {
        return Err(EditError::Conflict(format!(
            "`{address}` is the last target of upstream `{upstream}`; drain it instead"
        )));
    }
    list.remove(index);
    Ok(())
}

/// Drains the target `address` of `upstream` (no new requests), or enables it again.
pub fn set_drain(
    document: &mut Value,
    upstream: &str,
    address: &str,
    drain: bool,
) -> Result<(), EditError> {
    let list = targets(document, upstream)?;
    let index = find(list, upstream, address)?;
    let Some(target) = list[index].as_mapping_mut() else {
        return Err(EditError::NotFound(format!(
            "upstream `{upstream}` has no target `{address}`"
        )));
    };
    if drain {
        target.insert("drain".into(), true.into());
    } else {
        target.remove("drain");
    }
    Ok(())
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
        let new = NewTarget {
            address: "127.0.0.1:2".into(),
            weight: Some(3),
            name: None,
            backup: false,
        };
        assert_eq!(add(&mut doc, "api", &new).unwrap(), 1);
        assert!(matches!(
            add(&mut doc, "api", &new),
            Err(EditError::Conflict(_))
        ));
        set_drain(&mut doc, "api", "one", true).unwrap();
        assert_eq!(doc["upstreams"]["api"]["targets"][0]["drain"], true);
        remove(&mut doc, "api", "127.0.0.1:1").unwrap();
        assert!(matches!(
            remove(&mut doc, "api", "127.0.0.1:2"),
            Err(EditError::Conflict(_))
        ));
        assert!(matches!(
            set_drain(&mut doc, "web", "x", true),
            Err(EditError::NotFound(_))
        ));
    }
}
