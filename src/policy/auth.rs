//! `policies.auth`: finding the credential a request carries for each accepted method,
//! checking it, and letting the consumer in only if the route's groups allow it.

use super::{Gate, Hidden, Identity};
use crate::config::{Auth, AuthMethod};
use crate::metrics::Denial;
use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};
use pingora::http::RequestHeader;
use std::borrow::Cow;

/// A compiled `policies.auth`.
#[derive(Debug)]
pub(crate) struct AuthPolicy {
    settings: Auth,
    /// Whether each consumer (by index) may call; `None` lets every identified one in.
    allowed: Option<Vec<bool>>,
    /// One `WWW-Authenticate` value per method, for 401 answers.
    challenges: Vec<(HeaderName, HeaderValue)>,
}

impl AuthPolicy {
    /// Compiles `settings` for the consumers of `gate`.
    pub(crate) fn new(settings: &Auth, gate: &Gate) -> Self {
        let allowed = (!(settings.groups.is_empty() && settings.consumers.is_empty())).then(|| {
            gate.registry
                .all()
                .iter()
                .map(|c| {
                    settings.consumers.contains(&c.name)
                        || c.groups.iter().any(|g| settings.groups.contains(g))
                })
                .collect()
        });
        let key_names: Vec<&str> = settings.key_headers.iter().map(|h| h.as_str()).collect();
        let challenges = settings
            .methods
            .iter()
            .filter_map(|m| {
                let value = match m {
                    AuthMethod::Key => {
                        format!("Key realm=\"weir\", key_names=\"{}\"", key_names.join(","))
                    }
                    AuthMethod::Basic => "Basic realm=\"weir\", charset=\"UTF-8\"".to_string(),
                    AuthMethod::Jwt => "Bearer realm=\"weir\"".to_string(),
                };
                let value = HeaderValue::from_str(&value).ok()?;
                Some((http::header::WWW_AUTHENTICATE, value))
            })
            .collect();
        Self {
            settings: settings.clone(),
            allowed,
            challenges,
        }
    }

    /// The `WWW-Authenticate` headers of a 401 answer.
    pub(crate) fn challenges(&self) -> &[(HeaderName, HeaderValue)] {
        &self.challenges
    }

    /// Whether the credential goes upstream too.
    pub(crate) fn hides_credentials(&self) -> bool {
        self.settings.hide_credentials
    }

    /// Who sent `req`, if a credential of an accepted method proves it and the consumer may
    /// call; else why not. Methods are tried in the order listed; the first credential that
    /// proves someone wins, and when every one fails the first failure is the answer.
    pub(crate) async fn authenticate(
        &self,
        gate: &Gate,
        req: &RequestHeader,
    ) -> Result<Identity, Denial> {
        let mut failure = None;
        for method in &self.settings.methods {
            let outcome = match method {
                AuthMethod::Key => self.key(gate, req),
                AuthMethod::Basic => basic(gate, req).await,
                AuthMethod::Jwt => jwt(gate, req).await,
            };
            match outcome {
                None => {}
                Some(Ok(identity)) => return self.admit(identity),
                Some(Err(denial)) => {
                    failure.get_or_insert(denial);
                }
            }
        }
        match failure {
            Some(denial) => Err(denial),
            None if self.settings.anonymous => Ok(Identity {
                consumer: gate.registry.anonymous(),
                credential: None,
                hide: Hidden::default(),
            }),
            None => Err(Denial::Missing),
        }
    }

    /// `identity`, if the route's groups and consumers let it in.
    fn admit(&self, identity: Identity) -> Result<Identity, Denial> {
        match &self.allowed {
            Some(allowed) if !allowed.get(identity.consumer).copied().unwrap_or(false) => {
                Err(Denial::Forbidden)
            }
            _ => Ok(identity),
        }
    }

    /// Every place `req` carries a credential of a listed method, whichever proved who sent
    /// it: the key headers and query parameters present, and `Authorization` with the
    /// scheme of a listed method.
    pub(crate) fn credentials(&self, req: &RequestHeader) -> Hidden {
        let methods = &self.settings.methods;
        let (headers, params) = if methods.contains(&AuthMethod::Key) {
            let headers = self.settings.key_headers.iter();
            let query = req.uri.query().filter(|_| self.settings.key_in_query);
            let query = query.unwrap_or_default();
            let params = self.settings.key_params.iter();
            (
                headers
                    .filter(|n| req.headers.contains_key(*n))
                    .cloned()
                    .collect(),
                params
                    .filter(|p| query_param(query, p).is_some())
                    .cloned()
                    .collect(),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let read = |scheme: &str| {
            (scheme.eq_ignore_ascii_case("basic") && methods.contains(&AuthMethod::Basic))
                || (scheme.eq_ignore_ascii_case("bearer") && methods.contains(&AuthMethod::Jwt))
        };
        let authorization = req.headers.get_all(AUTHORIZATION).iter().any(|v| {
            let value = String::from_utf8_lossy(v.as_bytes());
            value.split_ascii_whitespace().next().is_some_and(read)
        });
        Hidden {
            headers,
            params,
            authorization,
        }
    }

    /// `query` with the values of parameters named as keys replaced (whether or not the
    /// route reads keys in the query: a key there is a secret all the same); `None` when
    /// it has none, or the route takes no keys.
    pub(super) fn redacted(&self, query: &str) -> Option<String> {
        if !self.settings.methods.contains(&AuthMethod::Key) {
            return None;
        }
        let is_key = |pair: &str| {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k);
            let decoded = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
            let named = |n: &str| n.eq_ignore_ascii_case(&decoded);
            self.settings.key_headers.iter().any(|h| named(h.as_str()))
                || self.settings.key_params.iter().any(|p| named(p))
        };
        if !query.split('&').any(is_key) {
            return None;
        }
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=').map_or(pair, |(k, _)| k) {
                key if is_key(pair) => format!("{key}=REDACTED"),
                _ => pair.to_string(),
            })
            .collect();
        Some(pairs.join("&"))
    }

    /// The API key in a header, or in the query when allowed.
    fn key(&self, gate: &Gate, req: &RequestHeader) -> Option<Result<Identity, Denial>> {
        let in_header = self.settings.key_headers.iter().find_map(|name| {
            let value = req.headers.get(name)?;
            Some(Cow::Borrowed(value.as_bytes()))
        });
        let key = in_header.or_else(|| {
            let query = req.uri.query().filter(|_| self.settings.key_in_query)?;
            self.settings
                .key_params
                .iter()
                .find_map(|name| Some(Cow::Owned(query_param(query, name)?)))
        })?;
        let Some((consumer, info)) = gate.registry.by_key(&key) else {
            return Some(Err(Denial::BadKey));
        };
        Some(Ok(Identity {
            consumer,
            credential: Some(info.header.clone()).filter(|h| !h.is_empty()),
            hide: Hidden::default(),
        }))
    }
}

/// The credential of `Authorization: SCHEME credential`, if the scheme is `scheme`.
fn authorization<'a>(req: &'a RequestHeader, scheme: &str) -> Option<&'a str> {
    let value = req.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (given, credential) = value.trim().split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| credential.trim())
}

/// `Authorization: Basic`.
async fn basic(gate: &Gate, req: &RequestHeader) -> Option<Result<Identity, Denial>> {
    let encoded = authorization(req, "basic")?;
    let Some(decoded) = openssl::base64::decode_block(encoded).ok() else {
        return Some(Err(Denial::BadPassword));
    };
    let split = decoded.iter().position(|b| *b == b':');
    let Some((user, password)) = split.map(|i| (&decoded[..i], &decoded[i + 1..])) else {
        return Some(Err(Denial::BadPassword));
    };
    let user = std::str::from_utf8(user).unwrap_or_default();
    let Some((consumer, hash)) = gate.registry.by_user(user) else {
        // As slow as a wrong password, so that the answer's time tells no user names.
        if let Some(decoy) = gate.registry.decoy() {
            gate.verifier.verify(user, password, decoy).await;
        }
        return Some(Err(Denial::BadPassword));
    };
    if !gate.verifier.verify(user, password, hash).await {
        return Some(Err(Denial::BadPassword));
    }
    Some(Ok(Identity {
        consumer,
        credential: HeaderValue::from_str(user).ok(),
        hide: Hidden::default(),
    }))
}

/// `Authorization: Bearer` with a JWT.
async fn jwt(gate: &Gate, req: &RequestHeader) -> Option<Result<Identity, Denial>> {
    let token = authorization(req, "bearer")?;
    let verified = match gate.issuers.verify(token).await {
        Ok(verified) => verified,
        Err(e) => {
            log::debug!("JWT refused: {e}");
            return Some(Err(Denial::BadToken));
        }
    };
    let Some(consumer) = gate.registry.find(&verified.consumer) else {
        return Some(Err(Denial::UnknownConsumer));
    };
    Some(Ok(Identity {
        consumer,
        credential: HeaderValue::from_str(&verified.consumer).ok(),
        hide: Hidden::default(),
    }))
}

/// The percent-decoded value of the first parameter `name` of `query`.
fn query_param(query: &str, name: &str) -> Option<Vec<u8>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_encoding::percent_decode_str(key)
            .decode_utf8()
            .ok()?;
        (key == name).then(|| percent_encoding::percent_decode_str(value).collect())
    })
}

/// `query` without the parameters named in `names`; `None` when nothing is left.
pub(super) fn without_params(query: &str, names: &[String]) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            percent_encoding::percent_decode_str(key)
                .decode_utf8()
                .map_or(true, |k| !names.iter().any(|n| *n == k))
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_keys_are_decoded_and_removed() {
        assert_eq!(query_param("a=1&apikey=k%2B1", "apikey").unwrap(), b"k+1");
        assert_eq!(query_param("api%6Bey=x", "apikey").unwrap(), b"x");
        assert!(query_param("apikeys=x", "apikey").is_none());
        let names = ["apikey".to_string(), "key".to_string()];
        assert_eq!(
            without_params("a=1&apikey=k&b=2&key=j", &names).unwrap(),
            "a=1&b=2"
        );
        assert_eq!(without_params("apikey=k&api%6Bey=j", &names), None);
    }

    #[test]
    fn query_keys_are_redacted_from_the_log_even_where_they_are_not_read() {
        let policy = |key_in_query| AuthPolicy {
            settings: Auth {
                methods: vec![AuthMethod::Key],
                key_headers: vec![http::HeaderName::from_static("apikey")],
                key_params: vec!["apikey".to_string()],
                key_in_query,
                groups: Vec::new(),
                consumers: Vec::new(),
                hide_credentials: true,
                anonymous: false,
            },
            allowed: None,
            challenges: Vec::new(),
        };
        for key_in_query in [true, false] {
            let policy = policy(key_in_query);
            assert_eq!(
                policy.redacted("a=1&api%6Bey=secret&b").as_deref(),
                Some("a=1&api%6Bey=REDACTED&b")
            );
            assert_eq!(policy.redacted("a=1&apikeys=x"), None);
        }
    }
}
