//! The consumer registry of one runtime: who may call, found by the credential they
//! present. API keys are held only as SHA-256 digests: a presented key is hashed and looked
//! up, so neither memory nor timing says more about a key than its digest does.

use super::password::{HashError, PasswordHash};
use crate::config::{ApiKey, BasicHash, BasicUser, Consumer, Setting, ANONYMOUS_CONSUMER};
use http::HeaderValue;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// Why the consumers of a configuration could not be compiled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConsumerError {
    /// A `keys_file` or `htpasswd_file` that cannot be read.
    #[error("{at}: cannot read the {what} {path}: {source}")]
    File {
        /// Where it is configured.
        at: Setting,
        /// "keys file" or "htpasswd file".
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A key of a `keys_file` that another consumer (or line) already has.
    #[error("{at}: line {line} of {path} holds a key consumer `{other}` already has")]
    DuplicateKey {
        /// Where the file is configured.
        at: Setting,
        /// The file.
        path: String,
        /// Its line, from 1.
        line: usize,
        /// The consumer with the same key.
        other: String,
    },
    /// A basic-auth hash that does not parse.
    #[error("{at}: {source}")]
    Hash {
        /// Where it is configured.
        at: Setting,
        /// Why.
        source: HashError,
    },
    /// An `htpasswd_file` without the user's line.
    #[error(
        "{at}: {path} has no line for user `{user}` (add one with `htpasswd -B {path} {user}`)"
    )]
    HtpasswdUser {
        /// Where it is configured.
        at: Setting,
        /// The file.
        path: String,
        /// The user.
        user: String,
    },
    /// The hash on a user's line of an `htpasswd_file` that does not parse.
    #[error("{at}: the line of user `{user}` in {path}: {source}")]
    HtpasswdHash {
        /// Where it is configured.
        at: Setting,
        /// The file.
        path: String,
        /// The user.
        user: String,
        /// Why.
        source: HashError,
    },
}

/// One API key, as the admin API and `X-Credential-Identifier` name it.
#[derive(Debug, Clone)]
pub(crate) struct KeyInfo {
    /// The id: a key's fingerprint, or the id it was stored with.
    pub id: String,
    /// The first 16 hex digits of the key's SHA-256.
    pub fingerprint: String,
    /// `id` as the `X-Credential-Identifier` value, made once rather than per request.
    pub header: HeaderValue,
}

/// A compiled consumer.
#[derive(Debug)]
pub(crate) struct Member {
    /// Its name.
    pub name: String,
    /// Its groups.
    pub groups: Vec<String>,
    /// `X-Consumer-Username`.
    pub name_header: HeaderValue,
    /// `X-Consumer-Groups`, if it has groups.
    pub groups_header: Option<HeaderValue>,
    /// Its keys.
    pub keys: Vec<KeyInfo>,
    /// Its basic-auth user.
    pub basic_user: Option<String>,
}

/// The consumers of one runtime.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    consumers: Vec<Member>,
    /// Consumer index by name, for tokens, which name theirs.
    by_name: HashMap<String, usize>,
    /// Consumer names by index, then `anonymous`: the `consumer` label values.
    labels: Arc<[String]>,
    /// Key digest → (consumer, key) indexes.
    keys: HashMap<[u8; 32], (usize, usize)>,
    /// Basic-auth user → (consumer, hash).
    users: HashMap<String, (usize, PasswordHash)>,
}

impl Registry {
    /// Compiles `consumers`, reading their keys files. The keys written in the file go in
    /// first, for every consumer, then the keys files: validation has refused a key written
    /// twice in the file, so a key held twice is one a keys file repeats, and the error names
    /// its line rather than letting a later consumer take the key over.
    pub(crate) fn build(consumers: &[Consumer]) -> Result<Self, ConsumerError> {
        let mut registry = Self::default();
        for (c, consumer) in consumers.iter().enumerate() {
            registry.consumers.push(Member {
                // Validation keeps names and groups to header-safe characters.
                name_header: HeaderValue::from_str(&consumer.name)
                    .unwrap_or(HeaderValue::from_static("")),
                groups_header: (!consumer.groups.is_empty())
                    .then(|| HeaderValue::from_str(&consumer.groups.join(", ")).ok())
                    .flatten(),
                name: consumer.name.clone(),
                groups: consumer.groups.clone(),
                keys: Vec::new(),
                basic_user: consumer.basic.as_ref().map(|b| b.user.clone()),
            });
            for key in &consumer.keys {
                // Validation refuses duplicates written in the file.
                let _ = match key {
                    ApiKey::Plain(key) => registry.add_key(c, digest(key.as_bytes()), None),
                    ApiKey::Hashed { id, sha256 } => registry.add_key(c, *sha256, Some(id)),
                };
            }
            if let Some(basic) = &consumer.basic {
                registry
                    .users
                    .insert(basic.user.clone(), (c, password_hash(basic)?));
            }
        }
        for (c, consumer) in consumers.iter().enumerate() {
            let Some(file) = &consumer.keys_file else {
                continue;
            };
            let path = file.path.display().to_string();
            let text = read(&file.path, &file.at, "keys file")?;
            for (i, line) in text.lines().enumerate() {
                let key = line.trim();
                if key.is_empty() || key.starts_with('#') {
                    continue;
                }
                if let Err(other) = registry.add_key(c, digest(key.as_bytes()), None) {
                    let other = consumers.get(other).map_or("", |o| &o.name);
                    return Err(ConsumerError::DuplicateKey {
                        at: file.at.clone(),
                        path,
                        line: i + 1,
                        other: other.to_string(),
                    });
                }
            }
        }
        registry.by_name = consumers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        registry.labels = consumers
            .iter()
            .map(|c| c.name.clone())
            .chain([ANONYMOUS_CONSUMER.to_string()])
            .collect();
        Ok(registry)
    }

    /// Gives consumer `c` the key of SHA-256 `digest`, called `id` (default: its
    /// fingerprint); `Err` with the consumer that has it already.
    fn add_key(&mut self, c: usize, digest: [u8; 32], id: Option<&str>) -> Result<(), usize> {
        let Some(known) = self.consumers.get_mut(c) else {
            return Ok(());
        };
        let slot = match self.keys.entry(digest) {
            Entry::Occupied(held) => return Err(held.get().0),
            Entry::Vacant(slot) => slot,
        };
        slot.insert((c, known.keys.len()));
        let fingerprint = fingerprint(&digest);
        let id = id.map_or_else(|| fingerprint.clone(), str::to_string);
        // An id written in the file may not be a header value; it then goes unsent.
        let header = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static(""));
        known.keys.push(KeyInfo {
            id,
            fingerprint,
            header,
        });
        Ok(())
    }

    /// The consumers, by index.
    pub(crate) fn all(&self) -> &[Member] {
        &self.consumers
    }

    /// The consumer at `index`.
    pub(crate) fn get(&self, index: usize) -> Option<&Member> {
        self.consumers.get(index)
    }

    /// The index of the consumer named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The `consumer` label values by consumer index; the last is `anonymous`.
    pub(crate) fn labels(&self) -> Arc<[String]> {
        self.labels.clone()
    }

    /// The `consumer` label of consumer `index`.
    pub(crate) fn label(&self, index: usize) -> &str {
        self.labels.get(index).map_or("", String::as_str)
    }

    /// The index of the `anonymous` label.
    pub(crate) fn anonymous(&self) -> usize {
        self.consumers.len()
    }

    /// The consumer and key of the API key `presented`.
    pub(crate) fn by_key(&self, presented: &[u8]) -> Option<(usize, &KeyInfo)> {
        let digest = digest(presented);
        let (c, k) = *self.keys.get(&digest)?;
        let consumer = self.consumers.get(c)?;
        Some((c, consumer.keys.get(k)?))
    }

    /// The consumer of basic-auth user `user`, and its password hash.
    pub(crate) fn by_user(&self, user: &str) -> Option<(usize, &PasswordHash)> {
        self.users.get(user).map(|(c, h)| (*c, h))
    }

    /// A hash of a real user's kind and cost, for an unknown user's password to be checked
    /// against in vain: answering at once would tell which user names exist.
    pub(crate) fn decoy(&self) -> Option<&PasswordHash> {
        self.users.values().next().map(|(_, h)| h)
    }
}

/// The SHA-256 of `key`. Through OpenSSL's SHA-256 context: its one-shot `SHA256()` looks the
/// algorithm up by name on every call, a third of the cost of hashing a short key.
pub(crate) fn digest(key: &[u8]) -> [u8; 32] {
    let mut hasher = openssl::sha::Sha256::new();
    hasher.update(key);
    hasher.finish()
}

/// The first 16 hex digits of a key's SHA-256: enough to tell keys apart in a listing,
/// too few to matter to anyone guessing the key.
pub(crate) fn fingerprint(digest: &[u8; 32]) -> String {
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The text of a file the configuration names at `at`.
fn read(path: &Path, at: &Setting, what: &'static str) -> Result<String, ConsumerError> {
    std::fs::read_to_string(path).map_err(|source| ConsumerError::File {
        at: at.clone(),
        what,
        path: path.display().to_string(),
        source,
    })
}

/// The hash of `user` in the text of an htpasswd file, read as Apache and nginx read one:
/// `user:hash[:comment]` lines, blank and `#` lines skipped, the first line of the user
/// counting.
fn htpasswd_hash<'a>(text: &'a str, user: &str) -> Option<&'a str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| *name == user)
        .map(|(_, rest)| rest.split(':').next().unwrap_or(rest))
}

/// The hash of `basic`, written in the configuration or read from its user's line of an
/// htpasswd file.
fn password_hash(basic: &BasicUser) -> Result<PasswordHash, ConsumerError> {
    let path = match &basic.hash {
        BasicHash::Written(hash) => {
            return PasswordHash::parse(hash).map_err(|source| ConsumerError::Hash {
                at: basic.at.clone(),
                source,
            })
        }
        BasicHash::File(path) => path,
    };
    let text = read(path, &basic.at, "htpasswd file")?;
    let shown = path.display().to_string();
    let Some(hash) = htpasswd_hash(&text, &basic.user) else {
        return Err(ConsumerError::HtpasswdUser {
            at: basic.at.clone(),
            path: shown,
            user: basic.user.clone(),
        });
    };
    PasswordHash::parse(hash).map_err(|source| ConsumerError::HtpasswdHash {
        at: basic.at.clone(),
        path: shown,
        user: basic.user.clone(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consumer(name: &str, keys: &[&str]) -> Consumer {
        Consumer {
            name: name.into(),
            groups: vec!["internal".into()],
            keys: keys.iter().map(|k| ApiKey::Plain(k.to_string())).collect(),
            keys_file: None,
            basic: None,
        }
    }

    #[test]
    fn keys_are_found_by_digest_with_their_fingerprint_as_id() {
        let registry = Registry::build(&[consumer("a", &["k1"]), consumer("b", &["k2"])]).unwrap();
        let (c, key) = registry.by_key(b"k2").unwrap();
        assert_eq!(registry.get(c).unwrap().name, "b");
        let digest = digest(b"k2");
        assert_eq!(key.id, fingerprint(&digest));
        assert_eq!(key.id.len(), 16);
        assert!(registry.by_key(b"k3").is_none());
        assert!(registry.by_key(b"").is_none());
        assert_eq!(&*registry.labels(), ["a", "b", "anonymous"]);
    }

    #[test]
    fn an_htpasswd_file_is_read_as_apache_and_nginx_read_it() {
        let text = "# admins\r\nalice2:$2y$two\r\n\r\n  alice:$2y$one:a comment\r\n\
                    alice:$2y$later\n#bob:$2y$hidden\n";
        assert_eq!(htpasswd_hash(text, "alice"), Some("$2y$one"));
        assert_eq!(htpasswd_hash(text, "alice2"), Some("$2y$two"));
        assert_eq!(htpasswd_hash(text, "alic"), None);
        assert_eq!(htpasswd_hash(text, "bob"), None);
        assert_eq!(htpasswd_hash(text, "#bob"), None);
        assert_eq!(htpasswd_hash("carol:\n", "carol"), Some(""));
    }

    #[test]
    fn a_keys_file_repeating_a_later_consumers_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.keys");
        std::fs::write(&path, "# ops\nfiled\n").unwrap();
        let text = "consumers:\n  - keys_file: a.keys\n";
        let locations = crate::config::Locations::read(std::path::Path::new("w.yaml"), text);
        let mut first = consumer("a", &[]);
        first.keys_file = Some(crate::config::KeysFile {
            path,
            at: Setting::new("consumers[0].keys_file".into(), Arc::new(locations)),
        });
        let err = Registry::build(&[first, consumer("b", &["filed"])]).unwrap_err();
        assert!(
            matches!(&err, ConsumerError::DuplicateKey { line: 2, other, .. } if other == "b"),
            "{err}"
        );
    }
}
