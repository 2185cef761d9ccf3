//! Validation of the gateway half of the file: `consumers:` and their credentials, `jwt:`
//! issuers, and the `policies:` of listeners and routes, which may only name consumers,
//! groups and methods the rest of the file provides.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::super::*;
use super::headers::header_name;
use super::values::{beside, cidrs, duration, duration_or_zero, size};
use super::{check_known, check_name};
use std::collections::{HashMap, HashSet};

/// The longest consumer or group name: it becomes a header value and a metric label.
const MAX_NAME: usize = 64;

/// What policies may refer to, gathered from `consumers:` and `jwt:`.
pub(super) struct Known<'a> {
    consumers: &'a [Consumer],
    groups: HashSet<&'a str>,
    issuers: bool,
    /// Whether `rate_limits.redis` is configured, for `store: redis` rules.
    redis: bool,
}

impl<'a> Known<'a> {
    /// The names `consumers` and `issuers` define.
    pub(super) fn new(consumers: &'a [Consumer], issuers: &[JwtIssuer]) -> Self {
        Self {
            consumers,
            groups: consumers
                .iter()
                .flat_map(|c| c.groups.iter().map(String::as_str))
                .collect(),
            issuers: !issuers.is_empty(),
            redis: false,
        }
    }

    /// The same, knowing whether `rate_limits.redis` is configured.
    pub(super) fn with_redis(self, redis: bool) -> Self {
        Self { redis, ..self }
    }
}

/// `consumers:`.
pub(super) fn consumers(
    file: &Path,
    raw: &[Option<RawConsumer>],
    report: &mut Report,
) -> Vec<Consumer> {
    let mut names = HashSet::new();
    let mut keys: HashMap<[u8; 32], &str> = HashMap::new();
    let mut users: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::new();
    for (i, c) in raw.iter().enumerate() {
        let Some(c) = c else { continue };
        let path = join_index("consumers", i);
        let name_path = join_key(&path, "name");
        check_name(&c.name, &name_path, "consumer", &mut names, report);
        label_safe(&c.name, &name_path, report);
        if c.name == ANONYMOUS_CONSUMER {
            report.value(
                &name_path,
                "`anonymous` is the consumer of requests `auth.anonymous` lets through; pick \
                 another name",
            );
        }
        for (j, g) in c.groups.iter().enumerate() {
            label_safe(g, &join_index(&join_key(&path, "groups"), j), report);
        }
        let keys_path = join_key(&path, "keys");
        let mut parsed = Vec::new();
        for (j, k) in c.keys.iter().enumerate() {
            let Some(key) = api_key(k, &join_index(&keys_path, j), report) else {
                continue;
            };
            if let Some(other) = keys.insert(digest(&key), &c.name) {
                report.value(
                    &join_index(&keys_path, j),
                    format!("this key already belongs to consumer `{other}`"),
                );
            }
            parsed.push(key);
        }
        let basic = c.basic.as_ref().and_then(|b| {
            let basic_path = join_key(&path, "basic");
            let user = basic_user(file, b, &basic_path, report)?;
            if let Some(other) = users.insert(&b.user, &c.name) {
                report.value(
                    &join_key(&basic_path, "user"),
                    format!(
                        "consumer `{other}` already has basic-auth user `{}`",
                        b.user
                    ),
                );
            }
            Some(user)
        });
        out.push(Consumer {
            name: c.name.clone(),
            groups: c.groups.clone(),
            keys: parsed,
            keys_file: c.keys_file.as_ref().map(|f| KeysFile {
                path: beside(file, f),
                at: Setting::new(join_key(&path, "keys_file"), report.locations().clone()),
            }),
            basic,
        });
    }
    out
}

/// Reports a name that cannot travel as a header value and a metric label as it is.
fn label_safe(name: &str, path: &str, report: &mut Report) {
    let fits = name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        // `.` and `..` would vanish from admin API URLs.
        && !name.bytes().all(|b| b == b'.');
    if !fits && !name.is_empty() {
        report.value(
            path,
            format!(
                "`{name}` must be 1 to {MAX_NAME} letters, digits, `.`, `_` or `-` (not dots \
                 alone): it is sent upstream in a header, used as a metric label and in admin \
                 API paths"
            ),
        );
    }
}

/// The SHA-256 a key is known by, whichever way it is written.
fn digest(key: &ApiKey) -> [u8; 32] {
    match key {
        ApiKey::Plain(key) => openssl::sha::sha256(key.as_bytes()),
        ApiKey::Hashed { sha256, .. } => *sha256,
    }
}

fn api_key(raw: &RawKey, path: &str, report: &mut Report) -> Option<ApiKey> {
    match raw {
        RawKey::Plain(key) if key.is_empty() => {
            report.value(path, "a key must not be empty (is its variable set?)");
            None
        }
        RawKey::Plain(key) if key.trim() != key || key.chars().any(char::is_control) => {
            // The key itself is never quoted: messages must not show secrets.
            report.value(
                path,
                "a key must not start or end with white space nor hold control characters: no \
                 client could send it in a header (was its variable read with a newline?)",
            );
            None
        }
        RawKey::Plain(key) => Some(ApiKey::Plain(key.clone())),
        RawKey::Hashed(RawHashedKey { id, sha256 }) => {
            if id.is_empty() {
                report.value(&join_key(path, "id"), "a key's id must not be empty");
            }
            let bytes = (sha256.len() == 64)
                .then(|| {
                    (0..32)
                        .map(|i| u8::from_str_radix(sha256.get(2 * i..2 * i + 2)?, 16).ok())
                        .collect::<Option<Vec<u8>>>()
                })
                .flatten()
                .and_then(|v| <[u8; 32]>::try_from(v).ok());
            let Some(sha256) = bytes else {
                report.value(
                    &join_key(path, "sha256"),
                    "must be the SHA-256 of the key in 64 hex digits",
                );
                return None;
            };
            (!id.is_empty()).then(|| ApiKey::Hashed {
                id: id.clone(),
                sha256,
            })
        }
    }
}

fn basic_user(file: &Path, raw: &RawBasic, path: &str, report: &mut Report) -> Option<BasicUser> {
    if raw.user.is_empty() || raw.user.contains(':') {
        report.value(
            &join_key(path, "user"),
            "a basic-auth user must be non-empty and without `:`",
        );
    }
    let (key, hash) = match (&raw.password, &raw.htpasswd_file) {
        (Some(password), None) => ("password", BasicHash::Written(password.clone())),
        (None, Some(htpasswd)) => ("htpasswd_file", BasicHash::File(beside(file, htpasswd))),
        _ => {
            report.value(
                path,
                "takes one of `password` (a hash) and `htpasswd_file` (a file with the user's \
                 line)",
            );
            return None;
        }
    };
    let at = join_key(path, key);
    // Which hashes weir verifies, and whether this one is well formed, is the password
    // module's to say when the configuration is compiled (`weir --test` included); text
    // that is no hash of any kind is refused here, with the other mistakes of the file.
    if let BasicHash::Written(password) = &hash {
        if !(password.starts_with('$') || password.starts_with('{')) {
            report.value(
                &at,
                "must be a hash as htpasswd writes it, e.g. the part after `user:` of \
                 `htpasswd -nbB user PASSWORD` (bcrypt; $apr1$, $5$ and $6$ hashes work too); \
                 plain text is refused",
            );
            return None;
        }
    }
    Some(BasicUser {
        user: raw.user.clone(),
        hash,
        at: Setting::new(at, report.locations().clone()),
    })
}

/// `jwt:`.
pub(super) fn issuers(
    file: &Path,
    raw: &[Option<RawJwtIssuer>],
    report: &mut Report,
) -> Vec<JwtIssuer> {
    let mut names = HashSet::new();
    let mut claimed: HashMap<&str, &str> = HashMap::new();
    let mut out = Vec::new();
    for (i, j) in raw.iter().enumerate() {
        let Some(j) = j else { continue };
        let path = join_index("jwt", i);
        check_name(
            &j.name,
            &join_key(&path, "name"),
            "issuer",
            &mut names,
            report,
        );
        let issuer_path = join_key(&path, "issuer");
        if j.issuer.is_empty() {
            report.value(&issuer_path, "must be the `iss` its tokens carry");
        } else if let Some(other) = claimed.insert(&j.issuer, &j.name) {
            report.value(
                &issuer_path,
                format!("issuer `{other}` already trusts `{}`", j.issuer),
            );
        }
        let algorithms = algorithms(&j.algorithms, &join_key(&path, "algorithms"), report);
        let hmac = algorithms.iter().any(|a| a.is_hmac());
        let public = algorithms.iter().any(|a| !a.is_hmac());
        let secret_path = join_key(&path, "secret");
        match (&j.secret, hmac) {
            (None, true) => report.value(&path, "HS algorithms need a `secret`"),
            (Some(_), false) => report.key(
                &secret_path,
                "`secret` is only used by HS256, HS384 and HS512, which `algorithms` does not list",
            ),
            (Some(s), true) if s.is_empty() => {
                report.value(&secret_path, "must not be empty (is its variable set?)");
            }
            _ => {}
        }
        let jwks_path = join_key(&path, "jwks");
        let jwks = match (&j.jwks, public) {
            (None, true) => {
                report.value(
                    &path,
                    "RS, PS, ES and EdDSA algorithms need `jwks`: a JWKS file or URL",
                );
                None
            }
            (Some(_), false) => {
                report.key(
                    &jwks_path,
                    "`jwks` is only used by RS, PS, ES and EdDSA algorithms, which `algorithms` \
                     does not list",
                );
                None
            }
            (Some(source), true) => jwks_source(file, source, &jwks_path, report),
            (None, false) => None,
        };
        let claim = j
            .consumer_claim
            .as_deref()
            .unwrap_or(DEFAULT_CONSUMER_CLAIM);
        if claim.is_empty() {
            report.value(
                &join_key(&path, "consumer_claim"),
                "must name a claim, e.g. sub",
            );
        }
        out.push(JwtIssuer {
            name: j.name.clone(),
            issuer: j.issuer.clone(),
            audiences: j.audiences.clone(),
            algorithms,
            secret: j.secret.as_ref().map(|s| s.as_bytes().to_vec()),
            jwks,
            refresh: duration(
                j.refresh.as_deref(),
                &join_key(&path, "refresh"),
                DEFAULT_JWKS_REFRESH,
                report,
            ),
            // Zero would let every token with an unknown `kid`, and every failed fetch, fetch
            // the URL again at each supervisor tick.
            refresh_on_miss: duration(
                j.refresh_on_miss.as_deref(),
                &join_key(&path, "refresh_on_miss"),
                DEFAULT_JWKS_REFRESH_ON_MISS,
                report,
            ),
            leeway: duration_or_zero(
                j.leeway.as_deref(),
                &join_key(&path, "leeway"),
                DEFAULT_JWT_LEEWAY,
                report,
            ),
            consumer_claim: claim.to_string(),
        });
    }
    out
}

fn algorithms(raw: &[String], path: &str, report: &mut Report) -> Vec<JwtAlgorithm> {
    if raw.is_empty() {
        report.value(
            path,
            "list the algorithms its tokens are signed with, e.g. [RS256]",
        );
    }
    let names: Vec<&str> = JwtAlgorithm::ALL.iter().map(|(n, _)| *n).collect();
    raw.iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let found = JwtAlgorithm::ALL
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(a));
            if found.is_none() {
                let why = if a.eq_ignore_ascii_case("none") {
                    "unsigned tokens (`none`) are never accepted".to_string()
                } else {
                    format!("`{a}` is not an algorithm weir verifies")
                };
                report.value(
                    &join_index(path, i),
                    format!("{why}; use one of {}", names.join(", ")),
                );
            }
            found.map(|(_, alg)| *alg)
        })
        .collect()
}

fn jwks_source(file: &Path, raw: &str, path: &str, report: &mut Report) -> Option<JwksSource> {
    let lower = raw.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Some(JwksSource::File {
            path: beside(file, raw),
            at: Setting::new(path.to_string(), report.locations().clone()),
        });
    }
    match raw.parse::<http::Uri>() {
        Ok(uri) if uri.authority().is_some_and(|a| a.as_str().contains('@')) => {
            // Never quoted: the point is to keep the password out of messages.
            report.value(
                path,
                "a JWKS URL must not hold a user name or password: weir would show them in \
                 logs and GET /config",
            );
            None
        }
        Ok(uri) if uri.host().is_some() => Some(JwksSource::Url(raw.to_string())),
        _ => {
            report.value(path, format!("`{raw}` is not a URL"));
            None
        }
    }
}

/// `policies:` of a listener or a route at `path`.
pub(super) fn policies(
    raw: &RawPolicies,
    path: &str,
    known: &Known,
    report: &mut Report,
) -> Policies {
    let path = join_key(path, "policies");
    Policies {
        ip: raw.ip.as_ref().map(|ip| {
            let ip_path = join_key(&path, "ip");
            if ip.allow.is_empty() && ip.deny.is_empty() {
                report.value(&ip_path, "lists no address: give `allow`, `deny` or both");
            }
            IpRules {
                allow: cidrs(&ip.allow, &join_key(&ip_path, "allow"), report),
                deny: cidrs(&ip.deny, &join_key(&ip_path, "deny"), report),
            }
        }),
        auth: raw
            .auth
            .as_ref()
            .map(|a| auth(a, &join_key(&path, "auth"), known, report)),
        max_body_size: raw
            .max_body_size
            .as_ref()
            .and_then(|s| size(s, &join_key(&path, "max_body_size"), report)),
        cors: raw
            .cors
            .as_ref()
            .map(|c| super::cors::cors(c, &join_key(&path, "cors"), report)),
        compress: raw
            .compress
            .as_ref()
            .map(|c| super::compress::compress(c, &join_key(&path, "compress"), report)),
        rate_limit: super::rate_limit::rules(
            &raw.rate_limit,
            &join_key(&path, "rate_limit"),
            known.redis,
            report,
        ),
    }
}

fn auth(raw: &RawAuth, path: &str, known: &Known, report: &mut Report) -> Auth {
    let methods_path = join_key(path, "methods");
    if raw.methods.is_empty() {
        report.value(
            &methods_path,
            "list how callers prove who they are: key, basic or jwt",
        );
    }
    let mut methods = Vec::new();
    for (i, m) in raw.methods.iter().enumerate() {
        let method_path = join_index(&methods_path, i);
        let method = match m.as_str() {
            "key" => AuthMethod::Key,
            "basic" => AuthMethod::Basic,
            "jwt" => AuthMethod::Jwt,
            other => {
                report.value(
                    &method_path,
                    format!("`{other}` is not a method; use key, basic or jwt"),
                );
                continue;
            }
        };
        if method == AuthMethod::Jwt && !known.issuers {
            report.value(
                &method_path,
                "`jwt` needs a trusted issuer in the top-level `jwt:` section",
            );
        }
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    let names_path = join_key(path, "key_names");
    let key_names = raw
        .key_names
        .clone()
        .unwrap_or_else(|| vec![DEFAULT_KEY_NAME.to_string()]);
    if key_names.is_empty() {
        report.value(&names_path, "name at least one header, e.g. [apikey]");
    }
    let key_headers = key_names
        .iter()
        .enumerate()
        .filter_map(|(i, n)| header_name(n, &join_index(&names_path, i), report))
        .collect();
    for (i, g) in raw.groups.iter().enumerate() {
        if !known.groups.contains(g.as_str()) {
            report.value(
                &join_index(&join_key(path, "groups"), i),
                format!("no consumer is in group `{g}`"),
            );
        }
    }
    let names: Vec<&str> = known.consumers.iter().map(|k| k.name.as_str()).collect();
    for (i, c) in raw.consumers.iter().enumerate() {
        let at = join_index(&join_key(path, "consumers"), i);
        check_known(c, &at, &names, ("consumer", "consumers"), report);
    }
    if raw.anonymous && !(raw.groups.is_empty() && raw.consumers.is_empty()) {
        report.key(
            &join_key(path, "anonymous"),
            "`anonymous` requests have no groups, so `groups` or `consumers` would refuse them all",
        );
    }
    Auth {
        methods,
        key_headers,
        key_params: key_names,
        key_in_query: raw.key_in_query,
        groups: raw.groups.clone(),
        consumers: raw.consumers.clone(),
        hide_credentials: raw.hide_credentials.unwrap_or(true),
        anonymous: raw.anonymous,
    }
}
