//! Admin API edits of `consumers:` — consumers added and removed, API keys added (written
//! hashed: `{ id, sha256 }`) and removed — made to the YAML document of the running
//! configuration as target edits are (see [`crate::control::LiveConfig::edit`]), and the
//! consumer views the reads answer with. A key is shown once, in the answer that creates
//! it; views show its id and fingerprint only.

use crate::config::Consumer;
use crate::control::{Conflict, EditError, Missing};
use crate::policy::{digest, fingerprint, Registry};
use crate::runtime::Runtime;
use base64ct::Encoding;
use rand::RngCore;
use serde::Deserialize;
use serde_json::{json, Value as Json};
use serde_yaml::{Mapping, Value};

/// Random bytes in a generated key: 256 bits, as long as the SHA-256 that stores it.
const GENERATED_KEY_BYTES: usize = 32;

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

impl NewKey {
    /// Why the key given cannot be one a client sends in a header: empty, with a control
    /// character (a newline, NUL…), or with white space at either end (which HTTP parsers
    /// trim away before weir sees it). `None` for a key to generate, or a usable one.
    pub(super) fn problem(&self) -> Option<&'static str> {
        let key = self.key.as_deref()?;
        if key.is_empty() {
            Some("the key is empty")
        } else if key.trim() != key || http::HeaderValue::from_bytes(key.as_bytes()).is_err() {
            Some("the key must be a header value: no control characters, no white space at either end")
        } else {
            None
        }
    }
}

/// A key the admin API adds: what its answer shows once, and the SHA-256 the file keeps.
pub(super) struct IssuedKey {
    /// A UUID v4: what views, deletions and `X-Credential-Identifier` call it.
    pub id: String,
    /// The key itself, never stored.
    pub key: String,
    /// SHA-256 of the key.
    pub digest: [u8; 32],
}

impl IssuedKey {
    /// `given`, or a key of 32 random bytes (base64url without padding), with a new id.
    pub(super) fn new(given: Option<String>) -> Self {
        let key = given.unwrap_or_else(|| {
            let mut bytes = [0u8; GENERATED_KEY_BYTES];
            rand::rng().fill_bytes(&mut bytes);
            base64ct::Base64UrlUnpadded::encode_string(&bytes)
        });
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            digest: digest(key.as_bytes()),
            key,
        }
    }

    /// The first hex digits of its SHA-256, as views show it.
    pub(super) fn fingerprint(&self) -> String {
        fingerprint(&self.digest)
    }

    /// Its SHA-256 in hex, as the file keeps it.
    fn sha256(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }
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

/// The running consumers, with the ids and fingerprints of their keys: those of the
/// runtime's registry.
pub(super) fn consumer_views(runtime: &Runtime) -> Vec<ConsumerView> {
    views(&runtime.gate.registry, &runtime.config.consumers)
}

/// The consumers of `registry`, compiled from `consumers`. A consumer's first keys in the
/// registry are those its `keys:` lists, in order (validation refuses a key written twice);
/// the rest come from its `keys_file`.
fn views(registry: &Registry, consumers: &[Consumer]) -> Vec<ConsumerView> {
    registry
        .all()
        .iter()
        .zip(consumers)
        .map(|(known, consumer)| ConsumerView {
            name: known.name.clone(),
            groups: known.groups.clone(),
            keys: known
                .keys
                .iter()
                .enumerate()
                .map(|(item, key)| KeyView {
                    id: key.id.clone(),
                    fingerprint: key.fingerprint.clone(),
                    item: (item < consumer.keys.len()).then_some(item),
                })
                .collect(),
            basic: known.basic_user.clone(),
        })
        .collect()
}

/// The running consumer `name`.
pub(super) fn consumer_view(runtime: &Runtime, name: &str) -> Result<ConsumerView, Missing> {
    consumer_views(runtime)
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

/// Adds `key` to consumer `name`, hashed; 409 when a consumer of the running `registry`
/// has that key already.
pub(super) fn add_key(
    document: &mut Value,
    registry: &Registry,
    name: &str,
    key: &IssuedKey,
) -> Result<bool, EditError> {
    if let Some((consumer, same)) = registry.by_key(key.key.as_bytes()) {
        let consumer = registry.get(consumer).map(|c| c.name.clone());
        return Err(Conflict::KeyTaken {
            consumer: consumer.unwrap_or_default(),
            id: same.id.clone(),
        }
        .into());
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
    written.insert("sha256".into(), key.sha256().into());
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
    use crate::config::ApiKey;

    fn document() -> Value {
        serde_yaml::from_str("consumers:\n  - name: app\n    keys: [plain-key, \"${APP_KEY}\"]\n")
            .unwrap()
    }

    /// The registry and consumers a runtime compiles from `document`, with `${APP_KEY}`
    /// set to `env-key`.
    fn running(document: &Value) -> (Registry, Vec<Consumer>) {
        let list = document["consumers"].as_sequence().unwrap();
        let consumers: Vec<Consumer> = list
            .iter()
            .map(|c| Consumer {
                name: c["name"].as_str().unwrap().to_string(),
                groups: Vec::new(),
                keys: c
                    .get("keys")
                    .and_then(Value::as_sequence)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .map(|key| match key.as_str() {
                        Some("${APP_KEY}") => ApiKey::Plain("env-key".into()),
                        Some(plain) => ApiKey::Plain(plain.into()),
                        None => {
                            let hex = key["sha256"].as_str().unwrap();
                            let mut sha256 = [0u8; 32];
                            for (i, byte) in sha256.iter_mut().enumerate() {
                                *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
                            }
                            ApiKey::Hashed {
                                id: key["id"].as_str().unwrap().to_string(),
                                sha256,
                            }
                        }
                    })
                    .collect(),
                keys_file: None,
                basic: None,
            })
            .collect();
        (Registry::build(&consumers).unwrap(), consumers)
    }

    fn running_views(document: &Value) -> Vec<ConsumerView> {
        let (registry, consumers) = running(document);
        views(&registry, &consumers)
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
            given.sha256(),
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

        // Written hashed; the same key for another consumer is a conflict.
        let key = IssuedKey::new(Some("web-key".into()));
        let (registry, _) = running(&doc);
        assert!(add_key(&mut doc, &registry, "web", &key).unwrap());
        assert_eq!(doc["consumers"][1]["keys"][0]["id"], key.id.as_str());
        assert_eq!(
            doc["consumers"][1]["keys"][0]["sha256"],
            key.sha256().as_str()
        );
        assert!(!serde_yaml::to_string(&doc).unwrap().contains("web-key"));
        let (registry, _) = running(&doc);
        for taken in ["env-key", "web-key"] {
            let again = IssuedKey::new(Some(taken.into()));
            assert!(matches!(
                add_key(&mut doc.clone(), &registry, "web", &again),
                Err(EditError::Conflict(Conflict::KeyTaken { .. }))
            ));
        }

        // Views name keys by id and fingerprint; a key written as a string (or a variable)
        // by its fingerprint, and is removed by it.
        let views = running_views(&doc);
        assert_eq!(views[1].keys[0].id, key.id);
        assert_eq!(views[1].keys[0].fingerprint, key.fingerprint());
        let from_env = IssuedKey::new(Some("env-key".into())).fingerprint();
        assert_eq!(views[0].keys[1].id, from_env);
        assert!(remove_key(&mut doc, &views, "app", &from_env).unwrap());
        assert_eq!(
            doc["consumers"][0]["keys"],
            serde_yaml::from_str::<Value>("[plain-key]").unwrap()
        );
        assert!(matches!(
            remove_key(&mut doc.clone(), &running_views(&doc), "app", &from_env),
            Err(EditError::NotFound(Missing::Key { .. }))
        ));
        let views = running_views(&doc);
        assert!(remove_key(&mut doc, &views, "web", &key.id).unwrap());
        assert!(
            doc["consumers"][1].get("keys").is_none(),
            "an empty list goes"
        );

        // A key of a keys_file is not the API's to remove.
        let mut filed = running_views(&doc);
        filed[0].keys[0].item = None;
        let id = filed[0].keys[0].id.clone();
        assert!(matches!(
            remove_key(&mut doc, &filed, "app", &id),
            Err(EditError::Conflict(Conflict::KeyInFile { .. }))
        ));

        assert!(remove(&mut doc, "web").unwrap());
        assert!(matches!(
            remove(&mut doc, "web"),
            Err(EditError::NotFound(Missing::Consumer(_)))
        ));
        let mut bare: Value = serde_yaml::from_str("listeners: []\n").unwrap();
        assert!(add(&mut bare, &new).unwrap());
        assert_eq!(bare["consumers"][0]["name"], "web");
    }
}
