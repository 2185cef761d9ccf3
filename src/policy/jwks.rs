//! JSON Web Key Sets: a set parsed into the public keys tokens are verified with, and the
//! live store of a set fetched from a URL. A file's set is read once, when a runtime is
//! built; a URL's set lives in a [`JwksStore`] that the next runtime takes over, so a reload
//! keeps its keys and its fetch schedule. Fetches run on the supervisor's runtime, never on a
//! request's: a request that names an unknown `kid` only asks for one and waits for it a
//! bounded time (see [`super::jwt`]).

use super::jwt::{algorithm, key_kind};
use crate::config::JwtAlgorithm;
use arc_swap::ArcSwapOption;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::DecodingKey;
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long one fetch of a key set may take, from resolving the host to the last byte.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set read; a longer answer fails the fetch (sets are a few KiB).
pub(crate) const MAX_JWKS_BYTES: usize = 1 << 20;
/// A failing fetch is logged at most once per this, per store, with a count of the others.
const FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// The kind of public key a JWK holds, which decides the algorithms it may verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// `kty: RSA`: RS256, RS384, RS512, PS256.
    Rsa,
    /// `kty: EC, crv: P-256`: ES256.
    P256,
    /// `kty: EC, crv: P-384`: ES384.
    P384,
    /// `kty: OKP, crv: Ed25519`: EdDSA.
    Ed25519,
}

/// One verification key of a set.
struct Key {
    kid: Option<String>,
    kind: KeyKind,
    /// The key's own `alg`: it verifies that algorithm only.
    alg: Option<JwtAlgorithm>,
    decoding: DecodingKey,
}

/// The signing keys of a JSON Web Key Set that weir can verify with. Keys for encryption
/// (`use: enc`), symmetric keys (`kty: oct`: HMAC tokens are verified with an issuer's
/// `secret` only), other curves and algorithms weir does not verify are left out.
pub(crate) struct KeySet {
    keys: Vec<Key>,
}

/// Why a key set was refused: a file's set fails the configuration, a fetched one keeps
/// the set fetched before.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksParseError {
    /// Not JSON, or no `keys` list.
    #[error("not a JSON Web Key Set: {0}")]
    Json(#[from] serde_json::Error),
    /// A key of a kind weir uses without one of its public values.
    #[error("keys[{index}]: `{field}` must be a base64url string")]
    Field {
        /// Its position in `keys`.
        index: usize,
        /// The missing value (`n`, `e`, `x` or `y`).
        field: &'static str,
    },
    /// A key of a kind weir uses whose fields do not parse.
    #[error("keys[{index}]: {source}")]
    Key {
        /// Its position in `keys`.
        index: usize,
        /// What does not parse.
        source: serde_json::Error,
    },
    /// A key of a kind weir uses whose values are not a public key.
    #[error("keys[{index}]: not a usable public key: {source}")]
    Material {
        /// Its position in `keys`.
        index: usize,
        /// What the JWT library said of it.
        source: jsonwebtoken::errors::Error,
    },
    /// Nothing left to verify with.
    #[error("holds no signing key weir can use (RSA, EC P-256 or P-384, Ed25519)")]
    NoKey,
}

impl KeySet {
    /// Parses the text of a key set (`{"keys": [...]}`); the set must hold at least one
    /// key weir can verify with.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, JwksParseError> {
        #[derive(serde::Deserialize)]
        struct Raw {
            keys: Vec<Value>,
        }
        let raw: Raw = serde_json::from_slice(bytes)?;
        let mut keys = Vec::new();
        for (index, value) in raw.keys.into_iter().enumerate() {
            keys.extend(Key::parse(index, value)?);
        }
        if keys.is_empty() {
            return Err(JwksParseError::NoKey);
        }
        Ok(Self { keys })
    }

    /// The keys that may verify a token signed with `alg` naming `kid`: keys of the kind
    /// `alg` needs, whose own `alg` (if any) is `alg`, with that `kid` if the token names
    /// one. HMAC algorithms have none.
    pub(crate) fn candidates<'a>(
        &'a self,
        alg: JwtAlgorithm,
        kid: Option<&'a str>,
    ) -> impl Iterator<Item = &'a DecodingKey> + 'a {
        self.keys
            .iter()
            .filter(move |k| {
                Some(k.kind) == key_kind(alg)
                    && k.alg.is_none_or(|own| own == alg)
                    && (kid.is_none() || k.kid.as_deref() == kid)
            })
            .map(|k| &k.decoding)
    }

    /// The key ids of the set, in order, for logs.
    fn kids(&self) -> Vec<&str> {
        self.keys
            .iter()
            .map(|k| k.kid.as_deref().unwrap_or("-"))
            .collect()
    }
}

impl Key {
    /// The key at `index` of a set, or `None` for a key weir does not verify with.
    fn parse(index: usize, value: Value) -> Result<Option<Self>, JwksParseError> {
        let text = |name: &str| value.get(name).and_then(Value::as_str);
        if text("use") == Some("enc") {
            return Ok(None);
        }
        let kind = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => KeyKind::Rsa,
            (Some("EC"), Some("P-256")) => KeyKind::P256,
            (Some("EC"), Some("P-384")) => KeyKind::P384,
            (Some("OKP"), Some("Ed25519")) => KeyKind::Ed25519,
            _ => return Ok(None),
        };
        let fields: &[&'static str] = match kind {
            KeyKind::Rsa => &["n", "e"],
            KeyKind::P256 | KeyKind::P384 => &["x", "y"],
            KeyKind::Ed25519 => &["x"],
        };
        if let Some(&field) = fields.iter().find(|f| text(f).is_none()) {
            return Err(JwksParseError::Field { index, field });
        }
        let alg = match text("alg").map(algorithm) {
            None => None,
            Some(Some(alg)) if key_kind(alg) == Some(kind) => Some(alg),
            // An algorithm weir does not verify, or not one of this key's kind: the key
            // would never verify anything.
            Some(_) => return Ok(None),
        };
        let jwk: Jwk = serde_json::from_value(value)
            .map_err(|source| JwksParseError::Key { index, source })?;
        let decoding = DecodingKey::from_jwk(&jwk)
            .map_err(|source| JwksParseError::Material { index, source })?;
        Ok(Some(Self {
            kid: jwk.common.key_id,
            kind,
            alg,
            decoding,
        }))
    }
}

/// Why one fetch of a key set failed; the store keeps the set it had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// Not a URL with a host (validation refuses such URLs).
    #[error("not a URL with a host")]
    NotAUrl,
    /// The host name did not resolve.
    #[error("cannot resolve the host: {0}")]
    Resolve(std::io::Error),
    /// The host name resolved to nothing.
    #[error("the host resolves to no address")]
    NoAddress,
    /// Connecting, TLS, or the HTTP exchange failed, as Pingora words it.
    #[error("{0}")]
    Http(#[from] Box<pingora::Error>),
    /// The server answered with another status than 200.
    #[error("answered with status {0}")]
    Status(u16),
    /// The answer is longer than [`MAX_JWKS_BYTES`].
    #[error("the answer is longer than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// No complete answer within [`FETCH_TIMEOUT`].
    #[error("no complete answer within {FETCH_TIMEOUT:?}")]
    TimedOut,
    /// The answer is not a usable key set.
    #[error(transparent)]
    Parse(#[from] JwksParseError),
}

/// When the store fetches next, and whether a fetch runs.
#[derive(Default)]
struct Schedule {
    /// A fetch was started and has not finished.
    fetching: bool,
    /// A request met an unknown `kid`: fetch at the next tick.
    wanted: bool,
    /// When a request last asked for a fetch.
    asked: Option<Instant>,
    /// When the next periodic fetch is due; `None`: at once (a new store).
    next: Option<Instant>,
    /// When a failure was last logged, and how many were not since.
    failure_logged: Option<Instant>,
    suppressed: u64,
}

/// The key set of one issuer's JWKS URL, shared by every runtime that trusts that issuer
/// at that URL. It starts empty; the supervisor fills it ([`JwksStore::claim_due`], then
/// [`JwksStore::refresh`]) and replaces it on its period; a failed fetch keeps the last
/// good set.
pub(crate) struct JwksStore {
    issuer: String,
    url: String,
    keys: ArcSwapOption<KeySet>,
    /// Counts finished fetches, for requests waiting on one.
    finished: watch::Sender<u64>,
    schedule: Mutex<Schedule>,
    connector: Connector,
}

impl JwksStore {
    /// An empty store for `issuer`'s key set at `url`, due for a fetch at once.
    pub(crate) fn new(issuer: &str, url: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            url: url.to_string(),
            keys: ArcSwapOption::empty(),
            finished: watch::Sender::new(0),
            schedule: Mutex::default(),
            connector: Connector::new(None),
        }
    }

    /// The URL it fetches.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The last set fetched, if any fetch has succeeded yet.
    pub(crate) fn keys(&self) -> Option<Arc<KeySet>> {
        self.keys.load_full()
    }

    fn schedule(&self) -> MutexGuard<'_, Schedule> {
        self.schedule.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a fetch is due at `now` (periodic, or asked for by a request); if so, the
    /// caller must run [`JwksStore::refresh`]: no other fetch starts until it finishes.
    pub(crate) fn claim_due(&self, now: Instant) -> bool {
        let mut schedule = self.schedule();
        let due = schedule.wanted || schedule.next.is_none_or(|next| now >= next);
        if schedule.fetching || !due {
            return false;
        }
        schedule.fetching = true;
        schedule.wanted = false;
        true
    }

    /// A receiver that changes each time a fetch finishes, successful or not.
    pub(crate) fn fetches(&self) -> watch::Receiver<u64> {
        self.finished.subscribe()
    }

    /// A request met an unknown `kid` at `now`: asks for a fetch unless a request asked
    /// for one less than `min_interval` ago. Whether a fetch is coming (asked for now, or
    /// already under way); if not, the request fails at once.
    pub(crate) fn want_refresh(&self, now: Instant, min_interval: Duration) -> bool {
        let mut schedule = self.schedule();
        // A fetch under way, asked for, or the first one (due at once) is coming.
        if schedule.fetching || schedule.wanted || schedule.next.is_none() {
            return true;
        }
        let recent = schedule
            .asked
            .is_some_and(|asked| now.duration_since(asked) < min_interval);
        if recent {
            return false;
        }
        schedule.wanted = true;
        schedule.asked = Some(now);
        true
    }

    /// Fetches the set once (bounded by [`FETCH_TIMEOUT`] and [`MAX_JWKS_BYTES`]) and
    /// installs it; on failure keeps the set it has, logs why (rate-limited) and tries again
    /// after `retry`. Success schedules the next fetch after `period`. Wakes the requests
    /// waiting for it either way.
    pub(crate) async fn refresh(&self, period: Duration, retry: Duration) {
        let result = tokio::time::timeout(FETCH_TIMEOUT, self.fetch())
            .await
            .unwrap_or(Err(FetchError::TimedOut));
        let now = Instant::now();
        let mut schedule = self.schedule();
        schedule.fetching = false;
        match result {
            Ok(set) => {
                schedule.next = Some(now + period);
                let previous = self.keys.load();
                if previous.as_ref().map(|p| p.kids()) != Some(set.kids()) {
                    log::info!(
                        "jwt issuer `{}`: {} key(s) from {}, kid {:?}",
                        self.issuer,
                        set.keys.len(),
                        self.url,
                        set.kids()
                    );
                }
                self.keys.store(Some(Arc::new(set)));
            }
            Err(e) => {
                schedule.next = Some(now + retry);
                let quiet = schedule
                    .failure_logged
                    .is_some_and(|at| now.duration_since(at) < FAILURE_LOG_EVERY);
                if quiet {
                    schedule.suppressed += 1;
                } else {
                    let kept = if self.keys.load().is_some() {
                        "keeping the key set fetched before"
                    } else {
                        "no key set yet"
                    };
                    log::warn!(
                        "jwt issuer `{}`: fetching {} failed: {e}; {kept} ({} failure(s) not \
                         logged since the last)",
                        self.issuer,
                        self.url,
                        schedule.suppressed
                    );
                    schedule.failure_logged = Some(now);
                    schedule.suppressed = 0;
                }
            }
        }
        self.finished.send_modify(|n| *n += 1);
    }

    /// One GET of the URL over HTTP/1.1 (TLS verified against the system's CAs for
    /// `https`), read to the end.
    async fn fetch(&self) -> Result<KeySet, FetchError> {
        let url: http::Uri = self.url.parse().map_err(|_| FetchError::NotAUrl)?;
        let tls = url.scheme_str() == Some("https");
        let host = url.host().ok_or(FetchError::NotAUrl)?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let port = url.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let addr = tokio::net::lookup_host((bare, port))
            .await
            .map_err(FetchError::Resolve)?
            .next()
            .ok_or(FetchError::NoAddress)?;
        let mut peer = HttpPeer::new(addr, tls, bare.to_string());
        peer.options.connection_timeout = Some(FETCH_TIMEOUT);
        peer.options.read_timeout = Some(FETCH_TIMEOUT);
        peer.options.write_timeout = Some(FETCH_TIMEOUT);
        let path = url.path_and_query().map_or("/", |p| p.as_str());
        let mut request = RequestHeader::build("GET", path.as_bytes(), None)?;
        let authority = url.authority().map_or(bare, |a| a.as_str());
        request.insert_header(http::header::HOST, authority)?;
        request.insert_header(
            http::header::ACCEPT,
            "application/jwk-set+json, application/json",
        )?;
        request.insert_header(http::header::USER_AGENT, "weir")?;
        let (mut session, _) = self.connector.get_http_session(&peer).await?;
        session.write_request_header(Box::new(request)).await?;
        session.finish_request_body().await?;
        session.read_response_header().await?;
        let status = session.response_header().map_or(0, |r| r.status.as_u16());
        if status != 200 {
            return Err(FetchError::Status(status));
        }
        let mut body = Vec::new();
        while let Some(chunk) = session.read_response_body().await? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(KeySet::parse(&body)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_weir_does_not_verify_with_are_left_out() {
        let rsa = r#"{"kty": "RSA", "kid": "r", "n": "sXch", "e": "AQAB"}"#;
        let set =
            |keys: &[&str]| KeySet::parse(format!("{{\"keys\": [{}]}}", keys.join(",")).as_bytes());
        let only = |keys: &[&str]| {
            set(keys)
                .map(|s| s.kids().join(","))
                .map_err(|e| e.to_string())
        };
        let ignored = [
            r#"{"kty": "oct", "kid": "o", "k": "c2VjcmV0"}"#,
            r#"{"kty": "RSA", "kid": "e", "use": "enc", "n": "sXch", "e": "AQAB"}"#,
            r#"{"kty": "RSA", "kid": "a", "alg": "RSA-OAEP", "n": "sXch", "e": "AQAB"}"#,
            r#"{"kty": "RSA", "kid": "x", "alg": "ES256", "n": "sXch", "e": "AQAB"}"#,
            r#"{"kty": "EC", "kid": "p", "crv": "P-521", "x": "AA", "y": "AA"}"#,
            r#"{"kty": "OKP", "kid": "d", "crv": "X25519", "x": "AA"}"#,
        ];
        let mut keys = ignored.to_vec();
        keys.push(rsa);
        assert_eq!(only(&keys), Ok("r".to_string()));
        assert_eq!(
            only(&ignored),
            Err("holds no signing key weir can use (RSA, EC P-256 or P-384, Ed25519)".to_string())
        );
        assert_eq!(
            only(&[rsa, r#"{"kty": "RSA", "kid": 5, "n": "sXch", "e": "AQAB"}"#])
                .unwrap_err()
                .split(':')
                .next(),
            Some("keys[1]")
        );
        assert!(
            only(&[r#"{"kty": "EC", "crv": "P-256", "x": "!!", "y": "AA"}"#])
                .unwrap_err()
                .starts_with("keys[0]: not a usable public key")
        );
        assert_eq!(
            only(&[r#"{"kty": "OKP", "crv": "Ed25519", "kid": "d"}"#]),
            Err("keys[0]: `x` must be a base64url string".to_string())
        );
        assert!(KeySet::parse(b"[]").is_err());
    }
}
