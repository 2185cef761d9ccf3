//! JSON Web Tokens: the trusted issuers (`jwt:`) compiled for one runtime, and the
//! verification of a bearer token against them. A token's unverified `iss` picks the issuer
//! and its header's `alg` and `kid` pick the key; then the library verifies the signature
//! and `exp`/`nbf` (and this module `iat`) with the issuer's leeway, and the consumer is the
//! value of the issuer's consumer claim. `alg: none` is never accepted, HMAC tokens are
//! verified with the issuer's `secret` only, and a JWK only with the algorithms of its own
//! key type (and its own `alg`, if it names one), so no key can be used with an algorithm
//! it was not made for.

use super::jwks::{JwksParseError, JwksStore, KeyKind, KeySet};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request whose token names an unknown `kid` waits for the key set fetch it
/// asked for, at most; then it is verified with whatever set is there (or refused).
pub(crate) const MISS_WAIT: Duration = Duration::from_secs(1);

/// A signature algorithm an issuer may allow (`algorithms:`). `none` is not one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Algorithm {
    /// HMAC with SHA-256, verified with the issuer's `secret`.
    HS256,
    /// HMAC with SHA-384, verified with the issuer's `secret`.
    HS384,
    /// HMAC with SHA-512, verified with the issuer's `secret`.
    HS512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256.
    PS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// Ed25519.
    EdDSA,
}

/// A name that is not one of [`Algorithm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an algorithm weir verifies; use {list}", list = Algorithm::names())]
pub(crate) struct UnknownAlgorithm(pub String);

impl Algorithm {
    /// Every algorithm, in the order the documentation lists them.
    pub(crate) const ALL: [Self; 10] = [
        Self::HS256,
        Self::HS384,
        Self::HS512,
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// Its name in a token's header and in the configuration (`RS256`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::HS384 => "HS384",
            Self::HS512 => "HS512",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// Every name, comma-separated, for messages.
    pub(crate) fn names() -> String {
        Self::ALL.map(Self::name).join(", ")
    }

    /// Whether it is an HMAC algorithm: verified with a `secret`, never with a JWK.
    pub(crate) fn is_hmac(self) -> bool {
        matches!(self, Self::HS256 | Self::HS384 | Self::HS512)
    }

    /// The kind of JWK that verifies it; `None` for HMAC.
    pub(crate) fn key_kind(self) -> Option<KeyKind> {
        match self {
            Self::HS256 | Self::HS384 | Self::HS512 => None,
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 => Some(KeyKind::Rsa),
            Self::ES256 => Some(KeyKind::P256),
            Self::ES384 => Some(KeyKind::P384),
            Self::EdDSA => Some(KeyKind::Ed25519),
        }
    }

    fn library(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as A;
        match self {
            Self::HS256 => A::HS256,
            Self::HS384 => A::HS384,
            Self::HS512 => A::HS512,
            Self::RS256 => A::RS256,
            Self::RS384 => A::RS384,
            Self::RS512 => A::RS512,
            Self::PS256 => A::PS256,
            Self::ES256 => A::ES256,
            Self::ES384 => A::ES384,
            Self::EdDSA => A::EdDSA,
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// The algorithm of that exact name (`RS256`, `EdDSA`); `none` and others are refused.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or_else(|| UnknownAlgorithm(name.to_string()))
    }
}

/// An HMAC secret; its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// Where an issuer's public keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JwksSource {
    /// A JWKS file, read when the runtime is built (at start and at every reload).
    File {
        /// The file, relative paths already resolved against the configuration's folder.
        path: PathBuf,
        /// `FILE:LINE:COLUMN: jwt[i].jwks` of the setting, which starts the message of a
        /// file that does not load (as certificates' do).
        at: String,
    },
    /// An `http://` or `https://` URL, fetched by the supervisor every `refresh`.
    Url(http::Uri),
}

/// One trusted issuer (`jwt[i]`), as validated: the input of [`Issuers::build`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IssuerSettings {
    /// `name`: unique; names the issuer in logs, and its key store across reloads.
    pub name: String,
    /// `issuer`: a token's `iss` must equal it; it selects the issuer.
    pub issuer: String,
    /// `audiences`: if not empty, a token's `aud` must hold one of them.
    pub audiences: Vec<String>,
    /// `algorithms`: not empty.
    pub algorithms: Vec<Algorithm>,
    /// `secret`: set iff an HMAC algorithm is allowed; used for HMAC only.
    pub secret: Option<Secret>,
    /// `jwks`: set iff a non-HMAC algorithm is allowed.
    pub jwks: Option<JwksSource>,
    /// `refresh`: how often a URL's set is fetched again.
    pub refresh: Duration,
    /// `refresh_on_miss`: an unknown `kid` fetches a URL's set again at most once per this;
    /// it is also the retry period after a failed fetch.
    pub refresh_on_miss: Duration,
    /// `leeway`: tolerance on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// `consumer_claim`: the claim whose string value names the consumer.
    pub consumer_claim: String,
}

/// A JWKS file of the configuration that does not load.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksFileError {
    /// The file cannot be read.
    #[error("{at}: cannot read {}: {source}", path.display())]
    Read {
        /// Where the configuration names it.
        at: String,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key set weir can use.
    #[error("{at}: {}: {source}", path.display())]
    Parse {
        /// Where the configuration names it.
        at: String,
        /// The file.
        path: PathBuf,
        /// What does not parse.
        source: JwksParseError,
    },
}

/// Every JWKS file that did not load, one per line, so one edit round fixes them all.
#[derive(Debug, thiserror::Error)]
pub(crate) struct JwksFileErrors(pub Vec<JwksFileError>);

impl std::fmt::Display for JwksFileErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Why a token was refused. The messages name no part of the token but the claim at fault,
/// so they may be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum JwtError {
    /// Not three base64url parts with a JSON header and JSON claims.
    #[error("not a well-formed JSON Web Token")]
    Malformed,
    /// No configured issuer has the token's `iss`.
    #[error("no trusted issuer has the token's `iss`")]
    UnknownIssuer,
    /// `alg` is `none`, unknown, or not in the issuer's `algorithms`.
    #[error("the token's algorithm is not allowed for its issuer")]
    AlgorithmNotAllowed,
    /// No key of the issuer's set has the token's `kid` (or fits its algorithm), even after
    /// the fetch a miss may ask for.
    #[error("no key of the issuer fits the token's `kid` and algorithm")]
    UnknownKid,
    /// The signature does not verify with the key(s) selected.
    #[error("the signature does not verify")]
    BadSignature,
    /// `exp` is past, by more than the leeway.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is ahead, by more than the leeway.
    #[error("the token is not valid yet (`nbf`)")]
    NotYetValid,
    /// `iat` is ahead, by more than the leeway.
    #[error("the token is issued in the future (`iat`)")]
    IssuedInFuture,
    /// `aud` holds none of the issuer's `audiences`.
    #[error("the token's audience is not accepted")]
    WrongAudience,
    /// A claim that must be there is missing or has the wrong type (`exp`, `iss`, `aud` when
    /// the issuer has audiences, the consumer claim as a string).
    #[error("the token's `{0}` claim is missing or not of the right type")]
    MissingClaim(String),
}

/// A token that verified: who issued it and whom it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The issuer's `name` in the configuration.
    pub issuer: String,
    /// The value of the issuer's consumer claim: the consumer's name, and the credential
    /// identifier sent upstream.
    pub consumer: String,
}

/// Where one issuer's public keys are.
enum Keys {
    /// HMAC only.
    None,
    /// Read from a file when the runtime was built.
    File(KeySet),
    /// Fetched from a URL; shared with the runtimes before and after this one.
    Url(Arc<JwksStore>),
}

/// One issuer, compiled.
struct Issuer {
    name: String,
    issuer: String,
    /// One validation per allowed algorithm, built once.
    validations: Vec<(Algorithm, Validation)>,
    secret: Option<DecodingKey>,
    keys: Keys,
    refresh: Duration,
    refresh_on_miss: Duration,
    leeway: u64,
    consumer_claim: String,
}

/// The trusted issuers of one runtime. Build one per runtime with [`Issuers::build`]; call
/// [`Issuers::refresh_due`] from the supervisor and [`Issuers::verify`] per request.
pub(crate) struct Issuers {
    issuers: Vec<Issuer>,
}

impl Issuers {
    /// Compiles `settings` (validated: unique names, non-empty algorithms, `secret` and
    /// `jwks` as the algorithms need them). JWKS files are read and parsed now; every one
    /// that fails is reported. A JWKS URL takes over the key store of `previous` (the
    /// runtime this one replaces) for the same issuer name and URL, keeping its keys and
    /// schedule; a new name or URL starts an empty store, fetched at the next supervisor
    /// tick.
    pub(crate) fn build(
        settings: &[IssuerSettings],
        previous: Option<&Issuers>,
    ) -> Result<Self, JwksFileErrors> {
        let mut issuers = Vec::new();
        let mut errors = Vec::new();
        for s in settings {
            let keys = match &s.jwks {
                None => Keys::None,
                Some(JwksSource::File { path, at }) => match read_file(path, at) {
                    Ok(set) => Keys::File(set),
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                },
                Some(JwksSource::Url(url)) => Keys::Url(
                    previous
                        .and_then(|p| p.store(&s.name, url))
                        .unwrap_or_else(|| Arc::new(JwksStore::new(&s.name, url.clone()))),
                ),
            };
            issuers.push(Issuer::new(s, keys));
        }
        if errors.is_empty() {
            Ok(Self { issuers })
        } else {
            Err(JwksFileErrors(errors))
        }
    }

    /// The store of issuer `name` if it fetches `url`.
    fn store(&self, name: &str, url: &http::Uri) -> Option<Arc<JwksStore>> {
        self.issuers.iter().find_map(|i| match &i.keys {
            Keys::Url(store) if i.name == name && store.url() == url => Some(store.clone()),
            _ => None,
        })
    }

    /// Starts a fetch of each JWKS URL that is due: every `refresh` (after a failure, every
    /// `refresh_on_miss`), and at once when a request met an unknown `kid`. Returns at once:
    /// the fetches are spawned on the current Tokio runtime, so call it from the
    /// supervisor's tick loop, on the current runtime's issuers.
    pub(crate) fn refresh_due(&self) {
        let now = Instant::now();
        for issuer in &self.issuers {
            let Keys::Url(store) = &issuer.keys else {
                continue;
            };
            if store.claim_due(now) {
                let store = store.clone();
                let (period, retry) = (issuer.refresh, issuer.refresh_on_miss);
                tokio::spawn(async move { store.refresh(period, retry).await });
            }
        }
    }

    /// Verifies a bearer token (the text after `Bearer `) and returns its issuer and
    /// consumer. Waits only when the token's `kid` is unknown to a URL's key set: then it
    /// asks the supervisor for a fetch (at most once per `refresh_on_miss`) and waits for it
    /// at most [`MISS_WAIT`].
    pub(crate) async fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        let unverified = Unverified::read(token)?;
        let iss = unverified
            .iss
            .ok_or_else(|| JwtError::MissingClaim("iss".to_string()))?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or(JwtError::UnknownIssuer)?;
        let alg: Algorithm = unverified
            .alg
            .parse()
            .map_err(|_| JwtError::AlgorithmNotAllowed)?;
        let claims = issuer.verify(token, alg, unverified.kid.as_deref()).await?;
        issuer.accept(&claims)
    }
}

/// Reads and parses a JWKS file.
fn read_file(path: &std::path::Path, at: &str) -> Result<KeySet, JwksFileError> {
    let bytes = std::fs::read(path).map_err(|source| JwksFileError::Read {
        at: at.to_string(),
        path: path.to_path_buf(),
        source,
    })?;
    KeySet::parse(&bytes).map_err(|source| JwksFileError::Parse {
        at: at.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

impl Issuer {
    fn new(s: &IssuerSettings, keys: Keys) -> Self {
        let leeway = s.leeway.as_secs();
        let validations = s
            .algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(alg.library());
                v.leeway = leeway;
                v.validate_nbf = true;
                v.set_issuer(&[&s.issuer]);
                let mut required = vec!["exp", "iss"];
                if s.audiences.is_empty() {
                    v.validate_aud = false;
                } else {
                    v.set_audience(&s.audiences);
                    required.push("aud");
                }
                v.set_required_spec_claims(&required);
                (alg, v)
            })
            .collect();
        Self {
            name: s.name.clone(),
            issuer: s.issuer.clone(),
            validations,
            secret: s.secret.as_ref().map(|s| DecodingKey::from_secret(&s.0)),
            keys,
            refresh: s.refresh,
            refresh_on_miss: s.refresh_on_miss,
            leeway,
            consumer_claim: s.consumer_claim.clone(),
        }
    }

    /// The verified claims of `token`, signed with `alg`, naming key `kid`.
    async fn verify(
        &self,
        token: &str,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<Map<String, Value>, JwtError> {
        let validation = self
            .validations
            .iter()
            .find_map(|(a, v)| (*a == alg).then_some(v))
            .ok_or(JwtError::AlgorithmNotAllowed)?;
        if alg.is_hmac() {
            let secret = self.secret.as_ref().ok_or(JwtError::AlgorithmNotAllowed)?;
            return decode(token, secret, validation);
        }
        match &self.keys {
            Keys::None => Err(JwtError::AlgorithmNotAllowed),
            Keys::File(set) => with_keys(set, token, alg, kid, validation),
            Keys::Url(store) => {
                if let Some(set) = store.keys() {
                    match with_keys(&set, token, alg, kid, validation) {
                        Err(JwtError::UnknownKid) => {}
                        done => return done,
                    }
                }
                let mut fetched = store
                    .want_refresh(Instant::now(), self.refresh_on_miss)
                    .ok_or(JwtError::UnknownKid)?;
                // A timeout leaves the set as it is: verified against it, the token fails.
                let _ = tokio::time::timeout(MISS_WAIT, fetched.changed()).await;
                let set = store.keys().ok_or(JwtError::UnknownKid)?;
                with_keys(&set, token, alg, kid, validation)
            }
        }
    }

    /// Checks what the library does not (`iat`) and reads the consumer.
    fn accept(&self, claims: &Map<String, Value>) -> Result<Verified, JwtError> {
        if let Some(iat) = claims.get("iat") {
            let iat = iat
                .as_f64()
                .ok_or_else(|| JwtError::MissingClaim("iat".to_string()))?;
            let latest = jsonwebtoken::get_current_timestamp().saturating_add(self.leeway);
            // Seconds since 1970 are exact in an f64.
            #[allow(clippy::cast_precision_loss)]
            if iat > latest as f64 {
                return Err(JwtError::IssuedInFuture);
            }
        }
        let consumer = claims
            .get(&self.consumer_claim)
            .and_then(Value::as_str)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| JwtError::MissingClaim(self.consumer_claim.clone()))?;
        Ok(Verified {
            issuer: self.name.clone(),
            consumer: consumer.to_string(),
        })
    }
}

/// Verifies `token` with each key of `set` that fits `alg` and `kid` until one succeeds.
fn with_keys(
    set: &KeySet,
    token: &str,
    alg: Algorithm,
    kid: Option<&str>,
    validation: &Validation,
) -> Result<Map<String, Value>, JwtError> {
    let mut result = Err(JwtError::UnknownKid);
    for key in set.candidates(alg, kid) {
        match decode(token, key, validation) {
            Err(JwtError::BadSignature) => result = Err(JwtError::BadSignature),
            done => return done,
        }
    }
    result
}

/// The library's verification, its errors mapped to ours.
fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Map<String, Value>, JwtError> {
    jsonwebtoken::decode::<Map<String, Value>>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| match e.into_kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat => JwtError::BadSignature,
            ErrorKind::ExpiredSignature => JwtError::Expired,
            ErrorKind::ImmatureSignature => JwtError::NotYetValid,
            ErrorKind::InvalidAudience => JwtError::WrongAudience,
            ErrorKind::InvalidIssuer => JwtError::UnknownIssuer,
            ErrorKind::MissingRequiredClaim(claim) | ErrorKind::InvalidClaimFormat(claim) => {
                JwtError::MissingClaim(claim)
            }
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm => JwtError::AlgorithmNotAllowed,
            _ => JwtError::Malformed,
        })
}

/// What a token says of itself before it is verified: only used to pick the issuer and
/// the key.
struct Unverified {
    alg: String,
    kid: Option<String>,
    iss: Option<String>,
}

impl Unverified {
    fn read(token: &str) -> Result<Self, JwtError> {
        #[derive(serde::Deserialize)]
        struct Header {
            alg: String,
            kid: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Claims {
            iss: Option<String>,
        }
        let mut parts = token.split('.');
        let (Some(header), Some(claims), Some(_), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let json = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JwtError::Malformed)
        };
        let header: Header =
            serde_json::from_slice(&json(header)?).map_err(|_| JwtError::Malformed)?;
        let claims: Claims =
            serde_json::from_slice(&json(claims)?).map_err(|_| JwtError::Malformed)?;
        Ok(Self {
            alg: header.alg,
            kid: header.kid,
            iss: claims.iss,
        })
    }
}
