//! The validated gateway settings: consumers and their credentials, trusted JWT issuers,
//! and the policies listeners and routes carry.

use super::Setting;
use http::HeaderName;
use ipnet::IpNet;
use std::path::PathBuf;
use std::time::Duration;

/// One caller weir can identify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Consumer {
    /// Unique name: sent upstream as `X-Consumer-Username`, and the `consumer` label.
    pub name: String,
    /// Groups `auth.groups` rules match.
    pub groups: Vec<String>,
    /// API keys written in the file (or its variables).
    pub keys: Vec<ApiKey>,
    /// A file of further keys, read each time the configuration is compiled.
    pub keys_file: Option<KeysFile>,
    /// A basic-auth user.
    pub basic: Option<BasicUser>,
}

/// An API key as the file holds it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum ApiKey {
    /// The key itself.
    Plain(String),
    /// A key held as its SHA-256 (what the admin API writes), with its id.
    Hashed {
        /// Its identifier.
        id: String,
        /// SHA-256 of the key.
        sha256: [u8; 32],
    },
}

/// Keys never print, not even in debug output.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("ApiKey::Plain(<redacted>)"),
            Self::Hashed { id, .. } => write!(f, "ApiKey::Hashed({id})"),
        }
    }
}

/// `keys_file:` of a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeysFile {
    /// The file, relative paths resolved against the config file.
    pub path: PathBuf,
    /// `consumers[i].keys_file`, for a file that cannot be read.
    pub at: Setting,
}

/// `basic:` of a consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BasicUser {
    /// The user name clients send.
    pub user: String,
    /// Where its htpasswd hash is.
    pub hash: BasicHash,
    /// `consumers[i].basic.password` or `.htpasswd_file`, for a hash that does not parse
    /// or a file that cannot be read.
    pub at: Setting,
}

/// Where a basic-auth user's hash is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BasicHash {
    /// In the configuration (or its variables).
    Written(String),
    /// On the user's line of an htpasswd file, read each time the configuration is
    /// compiled, relative paths resolved against the config file.
    File(PathBuf),
}

/// A JWT signature algorithm weir verifies. `none` is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum JwtAlgorithm {
    /// HMAC with SHA-256.
    HS256,
    /// HMAC with SHA-384.
    HS384,
    /// HMAC with SHA-512.
    HS512,
    /// RSA PKCS#1 v1.5 with SHA-256.
    RS256,
    /// RSA PKCS#1 v1.5 with SHA-384.
    RS384,
    /// RSA PKCS#1 v1.5 with SHA-512.
    RS512,
    /// RSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256.
    ES256,
    /// ECDSA on P-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    /// Every algorithm, by the name tokens carry in `alg`.
    pub(crate) const ALL: [(&'static str, Self); 10] = [
        ("HS256", Self::HS256),
        ("HS384", Self::HS384),
        ("HS512", Self::HS512),
        ("RS256", Self::RS256),
        ("RS384", Self::RS384),
        ("RS512", Self::RS512),
        ("PS256", Self::PS256),
        ("ES256", Self::ES256),
        ("ES384", Self::ES384),
        ("EdDSA", Self::EdDSA),
    ];

    /// Whether it is verified with the shared secret rather than a public key.
    pub(crate) fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }
}

/// Where an issuer's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwksSource {
    /// A JWKS file, read each time the configuration is compiled.
    File {
        /// The file, relative paths resolved against the config file.
        path: PathBuf,
        /// `jwt[i].jwks`, for a file that does not load.
        at: Setting,
    },
    /// A JWKS URL, fetched in the background.
    Url(String),
}

/// One trusted token issuer.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct JwtIssuer {
    /// Unique name.
    pub name: String,
    /// The `iss` its tokens carry.
    pub issuer: String,
    /// Accepted `aud` values; any when empty.
    pub audiences: Vec<String>,
    /// Accepted algorithms; never empty.
    pub algorithms: Vec<JwtAlgorithm>,
    /// The shared secret of the HS algorithms.
    pub secret: Option<Vec<u8>>,
    /// The public keys of the others.
    pub jwks: Option<JwksSource>,
    /// How often a JWKS URL is fetched again.
    pub refresh: Duration,
    /// Shortest time between fetches caused by an unknown `kid`.
    pub refresh_on_miss: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// The claim naming the consumer.
    pub consumer_claim: String,
}

/// The secret never prints.
impl std::fmt::Debug for JwtIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtIssuer")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("jwks", &self.jwks)
            .finish_non_exhaustive()
    }
}

/// The policies of a listener or a route.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Policies {
    /// Client address rules.
    pub ip: Option<IpRules>,
    /// Who may call.
    pub auth: Option<Auth>,
    /// The largest request body accepted, in bytes (the smaller of a listener's and a
    /// route's applies).
    pub max_body_size: Option<u64>,
    /// Cross-origin requests from browsers (a route's replaces its listener's).
    pub cors: Option<Cors>,
    /// Response compression (a route's replaces its listener's).
    pub compress: Option<super::Compress>,
    /// Request rates: every rule of the listener and of the route must pass.
    pub rate_limit: Vec<RateLimitRule>,
}

/// `policies.cors`: which browser pages on other origins may call, and what they may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cors {
    /// Origins allowed; `None` for `*` (every origin).
    pub origins: Option<Vec<CorsOrigin>>,
    /// Methods a preflight may ask for.
    pub methods: Vec<http::Method>,
    /// Request headers allowed; `None`: whatever a preflight asks for.
    pub headers: Option<Vec<HeaderName>>,
    /// Response headers a page may read besides the CORS-safelisted ones.
    pub expose_headers: Vec<HeaderName>,
    /// Whether pages may send credentials (cookies, `Authorization`) and read the answer.
    pub credentials: bool,
    /// How long a browser may keep a preflight's answer; the browser's default when `None`.
    pub max_age: Option<Duration>,
}

/// One entry of `cors.origins` other than `*`, in lower case (origins compare without case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CorsOrigin {
    /// `scheme://host[:port]`, as browsers send it.
    Exact(String),
    /// `scheme://*.domain[:port]`: one or more labels before `domain`.
    Subdomains {
        /// `scheme://`.
        scheme: String,
        /// `.domain[:port]`.
        suffix: String,
    },
}

/// `policies.ip`: deny wins; a non-empty allow list refuses everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct IpRules {
    /// Addresses let in.
    pub allow: Vec<IpNet>,
    /// Addresses refused.
    pub deny: Vec<IpNet>,
}

/// A way of proving who one is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AuthMethod {
    /// An API key in a header (or the query).
    Key,
    /// `Authorization: Basic`.
    Basic,
    /// `Authorization: Bearer` with a JWT.
    Jwt,
}

/// `policies.auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Auth {
    /// Methods tried; any may succeed.
    pub methods: Vec<AuthMethod>,
    /// Headers carrying an API key.
    pub key_headers: Vec<HeaderName>,
    /// `key_names` as query parameters: read for a key with `key_in_query`, and redacted
    /// from the access log either way (a key sent there by mistake is still a secret).
    pub key_params: Vec<String>,
    /// Whether a key may come in the query string.
    pub key_in_query: bool,
    /// Groups let in; with `consumers`, a consumer must match one of the two when either
    /// is given.
    pub groups: Vec<String>,
    /// Consumers let in by name.
    pub consumers: Vec<String>,
    /// Remove the credential before the request goes upstream.
    pub hide_credentials: bool,
    /// Requests without any credential pass as consumer `anonymous`.
    pub anonymous: bool,
}

/// One entry of `policies.rate_limit`: at most `limit` requests in any interval of `per`,
/// counted separately for each value of `by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateLimitRule {
    /// Requests let through in any interval of `per`; at least 1.
    pub limit: u64,
    /// The interval; at least a second.
    pub per: Duration,
    /// What is counted separately.
    pub by: RateKey,
    /// Requests let through at once when smoothing applies (`burst < limit`); `limit`
    /// when not written.
    pub burst: u64,
    /// Where the counts are kept.
    pub store: RateStore,
    /// Which rate headers answers carry.
    pub headers: RateHeaders,
}

/// `by:` of a rate-limit rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum RateKey {
    /// The identified consumer, or the client address when none was identified.
    Consumer,
    /// The client address.
    Ip,
    /// One count for every request of the route (or of the listener).
    Route,
    /// A request header's value, or the client address when the header is absent.
    Header(HeaderName),
}

impl RateKey {
    /// The `by` label of `weir_ratelimited_total`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Consumer => "consumer",
            Self::Ip => "ip",
            Self::Route => "route",
            Self::Header(_) => "header",
        }
    }
}

/// The periods Kong's rate headers name (`X-RateLimit-Limit-Second`, `-Minute`, `-Hour`,
/// `-Day`): a `headers: kong` rule's `per` is one of them.
pub(crate) const KONG_PERIODS: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(60),
    Duration::from_secs(3600),
    Duration::from_secs(86400),
];

/// `store:` of a rate-limit rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RateStore {
    /// This process's memory.
    #[default]
    Local,
    /// `rate_limits.redis`, shared by every weir process using it.
    Redis,
}

/// `headers:` of a rate-limit rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RateHeaders {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`.
    #[default]
    Ietf,
    /// Those and Kong's `X-RateLimit-Limit-Minute`-style ones.
    Kong,
    /// None (a 429 still says `Retry-After`).
    None,
}

/// `rate_limits.on_store_error`: what a decision does when Redis does not answer in time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OnStoreError {
    /// Let the request through (Kong's `fault_tolerant`).
    #[default]
    Allow,
    /// Answer 503.
    Deny,
}

/// Top-level `rate_limits:`: the stores the rules count in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RateLimits {
    /// Keys the local store holds at most, the least recently used evicted beyond.
    pub local_max_keys: usize,
    /// The shared store, when configured.
    pub redis: Option<RedisStore>,
    /// What a decision does when Redis fails.
    pub on_store_error: OnStoreError,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            local_max_keys: super::DEFAULT_RATE_LIMIT_MAX_KEYS,
            redis: None,
            on_store_error: OnStoreError::Allow,
        }
    }
}

/// `rate_limits.redis`.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RedisStore {
    /// `redis://[user:password@]host:port[/db]` (or `rediss://`).
    pub url: String,
    /// The longest one decision may take, connecting included.
    pub timeout: Duration,
    /// Multiplexed connections decisions are spread over.
    pub pool_size: usize,
}

/// The URL's password never prints.
impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &redacted_url(&self.url))
            .field("timeout", &self.timeout)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// `url` with the password (whatever follows `:` in its user part) replaced, for logs and
/// messages.
pub(crate) fn redacted_url(url: &str) -> std::borrow::Cow<'_, str> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.into();
    };
    match rest[..at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:<redacted>{}", &rest[at..]).into(),
        None => url.into(),
    }
}
