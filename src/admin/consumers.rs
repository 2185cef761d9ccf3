//! Admin API edits of `consumers:` — consumers added and removed, API keys added (written
//! hashed: `{ id, sha256 }`) and removed — made to the YAML document of the running
//! configuration as target edits are (see [`crate::control::LiveConfig::edit`]), and the
//! consumer views the reads answer with. A key is shown once, in the answer that creates
//! it; views show its id and fingerprint only.

use crate::control::{Conflict, EditError, Missing};
use crate::runtime::Runtime;
use base64::Engine;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use serde_yaml::{Mapping, Value};

/// Random bytes in a generated key: 256 bits, as long as the SHA-256 that stores it.
const GENERATED_KEY_BYTES: usize = 32;

/// Hex digits of a key's SHA-256 that make its fingerprint.
const FINGERPRINT_HEX: usize = 16;

/// The body of `POST /consumers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewConsumer {
    /// Its name; Kong's `username` is a synonym.
    #[serde(alias = "username")]
    pub name: String,
    /// Groups that routes' `auth.groups` rules name.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The body of `POST /consumers/{name}/key-auth`: empty (or `{}`) for a key weir generates.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    /// A key the caller chose.
    pub key: Option<String>,
}

/// A key the admin API adds: what its answer shows once, and the SHA-256 the file keeps.
pub(super) struct IssuedKey {
    /// A UUID v4: what views, deletions and `X-Credential-Identifier` call it.
    pub id: String,
    /// The key itself, never stored.
    pub key: String,
    /// SHA-256 of the key, in hex.
    pub sha256: String,
}

impl IssuedKey {
    /// `given`, or a key of 32 random bytes (base64url without padding), with a new id.
    pub(super) fn new(given: Option<String>) -> Self {
        let key = given.unwrap_or_else(|| {
            let mut bytes = [0u8; GENERATED_KEY_BYTES];
            rand::rng().fill_bytes(&mut bytes);
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        });
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            sha256: sha256_hex(&key),
            key,
        }
    }

    /// The first hex digits of its SHA-256, as views show it.
    pub(super) fn fingerprint(&self) -> &str {
        &self.sha256[..FINGERPRINT_HEX]
    }
}

/// SHA-256 of `key`, in lower-case hex.
fn sha256_hex(key: &str) -> String {
    openssl::sha::sha256(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A consumer as the running configuration has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ConsumerView {
    /// Its name.
    pub name: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// Its API keys, wherever they are written.
    pub keys: Vec<KeyView>,
    /// Its basic-auth user.
    pub basic: Option<String>,
}

/// An API key of a running consumer: how it is called, never what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KeyView {
    /// The id given at creation, or its fingerprint for a key written in the file.
    pub id: String,
    /// The first 16 hex digits of its SHA-256.
    pub fingerprint: String,
    /// Its index in the consumer's `keys:`; `None` for a key of its `keys_file`.
    pub item: Option<usize>,
}

impl ConsumerView {
    /// `GET /consumers/{name}`.
    pub(super) fn to_json(&self) -> Json {
        json!({
            "name": self.name,
            "groups": self.groups,
            "keys": self.keys.iter().map(KeyView::to_json).collect::<Vec<_>>(),
            "basic": self.basic.as_ref().map(|user| json!({ "user": user })),
        })
    }

    /// Its key `id`: the key's index in `keys:` to remove it by.
    fn key_item(&self, id: &str) -> Result<usize, EditError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| Missing::Key {
                consumer: self.name.clone(),
                id: id.to_string(),
            })?;
        key.item.ok_or_else(|| {
            Conflict::KeyInFile {
                consumer: self.name.clone(),
                id: id.to_string(),
            }
            .into()
        })
    }
}

impl KeyView {
    /// One entry of `GET /consumers/{name}/key-auth`.
    pub(super) fn to_json(&self) -> Json {
        json!({ "id": self.id, "fingerprint": self.fingerprint })
    }
}

/// The running consumers, with the ids and fingerprints of their keys.
///
/// Until the running runtime holds its compiled consumers, they are read from `document`:
/// a key written as `${VAR}` is left out (its value is only known expanded), as are the
/// keys of a `keys_file`. This is the one function to switch to the runtime's registry.
pub(super) fn consumer_views(_runtime: &Runtime, document: &Value) -> Vec<ConsumerView> {
    let Some(list) = document.get("consumers").and_then(Value::as_sequence) else {
        return Vec::new();
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_sequence)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    list.iter()
        .filter_map(|c| {
            let keys = c.get("keys").and_then(Value::as_sequence);
            let keys = keys.map(Vec::as_slice).unwrap_or_default();
            Some(ConsumerView {
                name: c.get("name")?.as_str()?.to_string(),
                groups: strings(c.get("groups")),
                keys: keys
                    .iter()
                    .enumerate()
                    .filter_map(|(item, key)| {
                        let (id, sha256) = match key {
                            Value::String(k) if !k.contains("${") => {
                                let sha256 = sha256_hex(k);
                                (sha256[..FINGERPRINT_HEX].to_string(), sha256)
                            }
                            Value::Mapping(_) => (
                                key.get("id")?.as_str()?.to_string(),
                                key.get("sha256")?.as_str()?.to_ascii_lowercase(),
                            ),
                            _ => return None,
                        };
                        Some(KeyView {
                            id,
                            fingerprint: sha256.get(..FINGERPRINT_HEX)?.to_string(),
                            item: Some(item),
                        })
                    })
                    .collect(),
                basic: c
                    .get("basic")
                    .and_then(|b| b.get("user"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
            })
        })
        .collect()
}

/// The running consumer `name`.
pub(super) fn consumer_view(
    runtime: &Runtime,
    document: &Value,
    name: &str,
) -> Result<ConsumerView, Missing> {
    consumer_views(runtime, document)
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Missing::Consumer(name.to_string()))
}

/// The `consumers:` list, made if the document has none; the error names `name`, as a
/// document that is not a mapping (which a valid configuration never is) has no consumers.
fn consumers<'a>(document: &'a mut Value, name: &str) -> Result<&'a mut Vec<Value>, EditError> {
    let top = document.as_mapping_mut().ok_or_else(|| no_consumer(name))?;
    let list = top
        .entry("consumers".into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if list.is_null() {
        *list = Value::Sequence(Vec::new());
    }
    list.as_sequence_mut().ok_or_else(|| no_consumer(name))
}

/// The consumer `name`, as a mapping to edit, and its index.
fn consumer<'a>(list: &'a mut [Value], name: &str) -> Option<(usize, &'a mut Mapping)> {
    list.iter_mut()
        .enumerate()
        .find(|(_, c)| c.get("name").and_then(Value::as_str) == Some(name))
        .and_then(|(i, c)| Some((i, c.as_mapping_mut()?)))
}

/// The error of a consumer that does not exist.
fn no_consumer(name: &str) -> EditError {
    Missing::Consumer(name.to_string()).into()
}

/// Appends the consumer `new`; 409 when its name is taken.
pub(super) fn add(document: &mut Value, new: &NewConsumer) -> Result<bool, EditError> {
    let list = consumers(document, &new.name)?;
    if consumer(list, &new.name).is_some() {
        return Err(Conflict::ConsumerTaken(new.name.clone()).into());
    }
    let mut written = Mapping::new();
    written.insert("name".into(), new.name.as_str().into());
    if !new.groups.is_empty() {
        written.insert("groups".into(), serde_yaml::to_value(&new.groups)?);
    }
    list.push(Value::Mapping(written));
    Ok(true)
}

/// Removes the consumer `name`.
pub(super) fn remove(document: &mut Value, name: &str) -> Result<bool, EditError> {
    let list = consumers(document, name)?;
    let (index, _) = consumer(list, name).ok_or_else(|| no_consumer(name))?;
    list.remove(index);
    Ok(true)
}

/// Adds `key` to consumer `name`, hashed; 409 when one of `running` has that key already.
pub(super) fn add_key(
    document: &mut Value,
    running: &[ConsumerView],
    name: &str,
    key: &IssuedKey,
) -> Result<bool, EditError> {
    for c in running {
        if let Some(same) = c.keys.iter().find(|k| k.fingerprint == key.fingerprint()) {
            return Err(Conflict::KeyTaken {
                consumer: c.name.clone(),
                id: same.id.clone(),
            }
            .into());
        }
    }
    let list = consumers(document, name)?;
    let (_, consumer) = consumer(list, name).ok_or_else(|| no_consumer(name))?;
    let keys = consumer
        .entry("keys".into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if !keys.is_sequence() {
        *keys = Value::Sequence(Vec::new());
    }
    let mut written = Mapping::new();
    written.insert("id".into(), key.id.as_str().into());
    written.insert("sha256".into(), key.sha256.as_str().into());
    if let Value::Sequence(keys) = keys {
        keys.push(Value::Mapping(written));
    }
    Ok(true)
}

/// Removes the key `id` from consumer `name`, found among the `running` consumers: a key
/// written in the file, by its id or fingerprint; not one of a `keys_file`.
pub(super) fn remove_key(
    document: &mut Value,
    running: &[ConsumerView],
    name: &str,
    id: &str,
) -> Result<bool, EditError> {
    let item = running
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| no_consumer(name))?
        .key_item(id)?;
    let list = consumers(document, name)?;
    let (_, consumer) = consumer(list, name).ok_or_else(|| no_consumer(name))?;
    let keys = consumer
        .get_mut("keys")
        .and_then(Value::as_sequence_mut)
        .filter(|keys| item < keys.len())
        .ok_or_else(|| Missing::Key {
            consumer: name.to_string(),
            id: id.to_string(),
        })?;
    keys.remove(item);
    if keys.is_empty() {
        consumer.remove("keys");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> Value {
        serde_yaml::from_str(
            "consumers:\n  - name: app\n    keys: [plain-key, \"${APP_KEY}\"]\n    \
             basic: { user: app, password: x }\n",
        )
        .unwrap()
    }

    /// The running consumers of `document`, as the runtime compiled from it has them.
    fn views(document: &Value) -> Vec<ConsumerView> {
        let list = document["consumers"].as_sequence().unwrap();
        list.iter()
            .map(|c| ConsumerView {
                name: c["name"].as_str().unwrap().to_string(),
                groups: Vec::new(),
                keys: c
                    .get("keys")
                    .and_then(Value::as_sequence)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                    .map(|(item, key)| {
                        let (id, sha256) = match key.as_str() {
                            Some(plain) => {
                                let fingerprint = sha256_hex(plain)[..FINGERPRINT_HEX].to_string();
                                (fingerprint, sha256_hex(plain))
                            }
                            None => (
                                key["id"].as_str().unwrap().to_string(),
                                key["sha256"].as_str().unwrap().to_string(),
                            ),
                        };
                        KeyView {
                            id,
                            fingerprint: sha256[..FINGERPRINT_HEX].to_string(),
                            item: Some(item),
                        }
                    })
                    .collect(),
                basic: None,
            })
            .collect()
    }

    #[test]
    fn issued_keys_are_random_and_hashed() {
        let (a, b) = (IssuedKey::new(None), IssuedKey::new(None));
        assert_ne!(a.key, b.key);
        assert_eq!(a.key.len(), 43, "32 bytes, base64url without padding");
        assert!(a
            .key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        let given = IssuedKey::new(Some("abc".into()));
        assert_eq!(
            given.sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(given.fingerprint(), "ba7816bf8f01cfea");
        assert_eq!(
            uuid::Uuid::parse_str(&given.id).unwrap().get_version_num(),
            4
        );
    }

    #[test]
    fn consumers_and_keys_are_added_and_removed() {
        let mut doc = document();
        let new = NewConsumer {
            name: "web".into(),
            groups: vec!["internal".into()],
        };
        assert!(add(&mut doc, &new).unwrap());
        assert!(matches!(
            add(&mut doc, &new),
            Err(EditError::Conflict(Conflict::ConsumerTaken(_)))
        ));
        assert_eq!(
            doc["consumers"][1],
            serde_yaml::from_str::<Value>("{ name: web, groups: [internal] }").unwrap()
        );

        let key = IssuedKey::new(Some("web-key".into()));
        let running = views(&doc);
        assert!(add_key(&mut doc, &running, "web", &key).unwrap());
        assert_eq!(doc["consumers"][1]["keys"][0]["id"], key.id.as_str());
        assert_eq!(
            doc["consumers"][1]["keys"][0]["sha256"],
            key.sha256.as_str()
        );
        assert!(!serde_yaml::to_string(&doc).unwrap().contains("web-key"));
        let again = IssuedKey::new(Some("plain-key".into()));
        assert!(matches!(
            add_key(&mut doc.clone(), &views(&doc), "web", &again),
            Err(EditError::Conflict(Conflict::KeyTaken { .. }))
        ));

        let running = views(&doc);
        let web = running.iter().find(|c| c.name == "web").unwrap();
        assert_eq!(web.keys[0].fingerprint, key.fingerprint());
        let app = running.iter().find(|c| c.name == "app").unwrap();
        let plain = app.keys[0].id.clone();
        assert_eq!(
            plain,
            IssuedKey::new(Some("plain-key".into())).fingerprint()
        );
        assert!(remove_key(&mut doc, &running, "app", &plain).unwrap());
        assert_eq!(doc["consumers"][0]["keys"][0], "${APP_KEY}");
        assert!(matches!(
            remove_key(&mut doc.clone(), &views(&doc), "app", &plain),
            Err(EditError::NotFound(Missing::Key { .. }))
        ));
        let running = views(&doc);
        assert!(remove_key(&mut doc, &running, "web", &key.id).unwrap());
        assert!(
            doc["consumers"][1].get("keys").is_none(),
            "an empty list goes"
        );

        assert!(remove(&mut doc, "web").unwrap());
        assert!(matches!(
            remove(&mut doc, "web"),
            Err(EditError::NotFound(Missing::Consumer(_)))
        ));
        let mut filed = views(&doc);
        filed[0].keys[0].item = None;
        let id = filed[0].keys[0].id.clone();
        assert!(matches!(
            remove_key(&mut doc, &filed, "app", &id),
            Err(EditError::Conflict(Conflict::KeyInFile { .. }))
        ));
        let mut bare: Value = serde_yaml::from_str("listeners: []\n").unwrap();
        assert!(add(&mut bare, &new).unwrap());
        assert_eq!(bare["consumers"][0]["name"], "web");
    }
}
