//! The keys of the gateway half of the file: `consumers:`, `jwt:` issuers, and the
//! `policies:` of listeners and routes.

use super::RawDuration;
use serde::Deserialize;

/// One entry of `consumers:`: who calls, and the credentials that say so.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawConsumer {
    /// Unique name; sent upstream and used as a metric label.
    pub name: String,
    /// Groups that `auth.groups` rules name.
    #[serde(default)]
    pub groups: Vec<String>,
    /// API keys: each the key itself (normally `${ENV}`) or its SHA-256.
    #[serde(default)]
    pub keys: Vec<RawKey>,
    /// A file of keys, one per line, so that secrets stay out of the YAML.
    pub keys_file: Option<String>,
    /// A basic-auth user and its htpasswd hash.
    pub basic: Option<RawBasic>,
}

/// One entry of a consumer's `keys:`.
#[derive(Debug)]
pub(in crate::config) enum RawKey {
    /// The key as clients send it.
    Plain(String),
    /// A key stored hashed (what the admin API writes): its id and SHA-256, in hex.
    Hashed(RawHashedKey),
}

/// What a `keys:` entry may be, for an entry that is neither.
const KEY_FORMS: &str = "a key is the key itself as text (normally \"${VARIABLE}\") or \
                         { id: ID, sha256: 64 hex digits }";

/// Read by hand rather than `untagged`, whose error names neither form nor what is wrong
/// with the mapping.
impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(key) => Ok(Self::Plain(key)),
            map @ serde_yaml::Value::Mapping(_) => serde_yaml::from_value(map)
                .map(Self::Hashed)
                .map_err(D::Error::custom),
            _ => Err(D::Error::custom(KEY_FORMS)),
        }
    }
}

/// A key stored as its SHA-256.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawHashedKey {
    /// What `X-Credential-Identifier` and the admin API call the key.
    pub id: String,
    /// 64 hex digits.
    pub sha256: String,
}

/// `basic:` of a consumer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawBasic {
    /// The user name clients send.
    pub user: String,
    /// The hash `htpasswd` writes (bcrypt, `$apr1$`, `$5$`, `$6$`), never plain text.
    pub password: Option<String>,
    /// An htpasswd file holding the user's line, so that the hash stays out of the YAML.
    pub htpasswd_file: Option<String>,
}

/// One entry of `jwt:`: an issuer whose tokens weir trusts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawJwtIssuer {
    /// Unique name, used in messages.
    pub name: String,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// `aud` values accepted; any when omitted.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Signature algorithms accepted.
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Shared secret for the HS algorithms.
    pub secret: Option<String>,
    /// JWKS file or URL for the others.
    pub jwks: Option<String>,
    /// How often a JWKS URL is fetched again.
    pub refresh: Option<RawDuration>,
    /// Shortest time between fetches caused by an unknown `kid`.
    pub refresh_on_miss: Option<RawDuration>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Option<RawDuration>,
    /// The claim naming the consumer (`sub` when omitted).
    pub consumer_claim: Option<String>,
}

/// `policies:` of a listener or a route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawPolicies {
    /// Client address rules.
    pub ip: Option<RawIpRules>,
    /// Who may call.
    pub auth: Option<RawAuth>,
    /// The largest request body accepted.
    pub max_body_size: Option<super::RawSize>,
    /// Cross-origin requests from browsers.
    pub cors: Option<RawCors>,
    /// Response compression.
    pub compress: Option<RawCompress>,
    /// Request rates; every rule must pass.
    #[serde(default)]
    pub rate_limit: Vec<RawRateLimit>,
}

/// `policies.cors`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawCors {
    /// Origins allowed: `scheme://host[:port]`, `scheme://*.domain`, or `*`.
    #[serde(default)]
    pub origins: Vec<String>,
    /// Methods a preflight may ask for.
    pub methods: Option<Vec<String>>,
    /// Request headers allowed; the ones a preflight asks for when omitted.
    pub headers: Option<Vec<String>>,
    /// Response headers a page may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Whether pages may send cookies and read the answer.
    #[serde(default)]
    pub credentials: bool,
    /// How long a browser may keep a preflight's answer.
    pub max_age: Option<RawDuration>,
}

/// `policies.ip`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawIpRules {
    /// CIDRs let in; when not empty, every other address is refused.
    #[serde(default)]
    pub allow: Vec<String>,
    /// CIDRs refused, even when allowed.
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `policies.auth`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawAuth {
    /// `key`, `basic`, `jwt`: any of them may succeed.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Headers (and, with `key_in_query`, query parameters) carrying an API key.
    pub key_names: Option<Vec<String>>,
    /// Also look for the key in the query string.
    #[serde(default)]
    pub key_in_query: bool,
    /// Groups the consumer must be in one of.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Consumers let in whatever their groups.
    #[serde(default)]
    pub consumers: Vec<String>,
    /// Remove the credential before the request goes upstream.
    pub hide_credentials: Option<bool>,
    /// Let requests without credentials through as consumer `anonymous`.
    #[serde(default)]
    pub anonymous: bool,
}

/// `policies.compress`: responses compressed for clients that accept it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawCompress {
    /// `zstd`, `br`, `gzip`, in weir's order of preference when a client's q-values tie.
    pub algorithms: Option<Vec<String>>,
    /// Responses declaring a smaller `Content-Length` are sent as they are.
    pub min_size: Option<super::RawSize>,
    /// Media types compressed: `type/subtype` or `type/*`.
    pub types: Option<Vec<String>>,
    /// One level for every algorithm; each algorithm's default when omitted.
    pub level: Option<u32>,
}

/// One entry of `policies.rate_limit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawRateLimit {
    /// Requests let through in any interval of `per`.
    pub limit: u64,
    /// The interval.
    pub per: RawDuration,
    /// What is counted separately: `consumer`, `ip`, `route` or `{ header: NAME }`.
    pub by: RawRateKey,
    /// Requests let through at once; smoothing applies below `limit`.
    pub burst: Option<u64>,
    /// `local` (default) or `redis`.
    #[serde(default)]
    pub store: crate::config::RateStore,
    /// `ietf` (default), `kong` or `none`.
    #[serde(default)]
    pub headers: crate::config::RateHeaders,
}

/// `by:` of a rate-limit rule as written.
#[derive(Debug)]
pub(in crate::config) enum RawRateKey {
    /// `consumer`, `ip`, `route`, or a misspelling validation reports.
    Named(String),
    /// `{ header: NAME }`.
    Header(String),
}

/// What `by:` may be, for a value that is neither a name nor `{ header: NAME }`.
const RATE_KEY_FORMS: &str = "`by` is consumer, ip, route or { header: NAME }";

/// Read by hand, as `keys:` entries are, so that the message names both forms.
impl<'de> Deserialize<'de> for RawRateKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ByHeader {
            header: String,
        }
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(name) => Ok(Self::Named(name)),
            map @ serde_yaml::Value::Mapping(_) => serde_yaml::from_value::<ByHeader>(map)
                .map(|b| Self::Header(b.header))
                .map_err(|_| D::Error::custom(RATE_KEY_FORMS)),
            _ => Err(D::Error::custom(RATE_KEY_FORMS)),
        }
    }
}

/// Top-level `rate_limits:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawRateLimits {
    /// The store of `store: local` rules.
    pub local: Option<RawLocalStore>,
    /// The store of `store: redis` rules.
    pub redis: Option<RawRedisStore>,
    /// `allow` (default) or `deny` when Redis fails.
    #[serde(default)]
    pub on_store_error: crate::config::OnStoreError,
}

/// `rate_limits.local`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawLocalStore {
    /// Keys held at most.
    pub max_keys: Option<usize>,
}

/// `rate_limits.redis`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawRedisStore {
    /// `redis://…` or `rediss://…`.
    pub url: String,
    /// The longest one decision may take.
    pub timeout: Option<RawDuration>,
    /// Multiplexed connections.
    pub pool_size: Option<usize>,
}
