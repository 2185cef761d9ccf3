//! JSON Web Tokens: the trusted issuers (`jwt:`) compiled for one runtime, and the
//! verification of a bearer token against them. A token's unverified `iss` picks the issuer
//! and its header's `alg` and `kid` pick the key; then the library verifies the signature
//! and `exp`/`nbf` (and this module `iat`) with the issuer's leeway, and the consumer is the
//! value of the issuer's consumer claim. `alg: none` is never accepted, HMAC tokens are
//! verified with the issuer's `secret` only, and a JWK only with the algorithms of its own
//! key type (and its own `alg`, if it names one), so no key can be used with an algorithm
//! it was not made for.

use super::jwks::{JwksParseError, JwksStore, KeyKind, KeySet};
use crate::config::{JwksSource, JwtAlgorithm, JwtIssuer, Setting};
use base64ct::{Base64UrlUnpadded, Encoding};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a request whose token names an unknown `kid` waits for the key set fetch it
/// asked for, at most; then it is verified with whatever set is there (or refused).
pub(crate) const MISS_WAIT: Duration = Duration::from_secs(1);

/// The algorithm a token's header names (`alg`), if weir verifies it; `none` is not one.
pub(crate) fn algorithm(name: &str) -> Option<JwtAlgorithm> {
    JwtAlgorithm::ALL
        .iter()
        .find_map(|&(known, alg)| (known == name).then_some(alg))
}

/// The kind of JWK that verifies `alg`; `None` for HMAC, verified with a secret only.
pub(crate) fn key_kind(alg: JwtAlgorithm) -> Option<KeyKind> {
    use JwtAlgorithm as A;
    match alg {
        A::HS256 | A::HS384 | A::HS512 => None,
        A::RS256 | A::RS384 | A::RS512 | A::PS256 => Some(KeyKind::Rsa),
        A::ES256 => Some(KeyKind::P256),
        A::ES384 => Some(KeyKind::P384),
        A::EdDSA => Some(KeyKind::Ed25519),
    }
}

/// The JWT library's name of `alg`.
fn library(alg: JwtAlgorithm) -> jsonwebtoken::Algorithm {
    use jsonwebtoken::Algorithm as L;
    use JwtAlgorithm as A;
    match alg {
        A::HS256 => L::HS256,
        A::HS384 => L::HS384,
        A::HS512 => L::HS512,
        A::RS256 => L::RS256,
        A::RS384 => L::RS384,
        A::RS512 => L::RS512,
        A::PS256 => L::PS256,
        A::ES256 => L::ES256,
        A::ES384 => L::ES384,
        A::EdDSA => L::EdDSA,
    }
}

/// A JWKS file of the configuration that does not load.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JwksFileError {
    /// The file cannot be read.
    #[error("{at}: cannot read {}: {source}", path.display())]
    Read {
        /// `jwt[i].jwks`, where the configuration names it.
        at: Setting,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a key set weir can use.
    #[error("{at}: {}: {source}", path.display())]
    Parse {
        /// `jwt[i].jwks`, where the configuration names it.
        at: Setting,
        /// The file.
        path: PathBuf,
        /// What does not parse.
        source: JwksParseError,
    },
}

/// Every JWKS file of a configuration that did not load, one per line (each starting with
/// the `FILE:LINE:COLUMN: jwt[i].jwks` of its setting), so one edit round fixes them all.
#[derive(Debug, thiserror::Error)]
pub(crate) struct IssuerError(pub Vec<JwksFileError>);

impl std::fmt::Display for IssuerError {
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
    validations: Vec<(JwtAlgorithm, Validation)>,
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

/// Names the issuers; keys and secrets never print.
impl std::fmt::Debug for Issuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.issuers.iter().map(|i| &i.name))
            .finish()
    }
}

impl Issuers {
    /// Compiles the `jwt:` issuers of a configuration (validated: unique names, non-empty
    /// algorithms, `secret` and `jwks` as the algorithms need them). JWKS files are read and parsed now; every one
    /// that fails is reported. A JWKS URL takes over the key store of `previous` (the
    /// runtime this one replaces) for the same issuer name and URL, keeping its keys and
    /// schedule; a new name or URL starts an empty store, fetched at the next supervisor
    /// tick.
    pub(crate) fn build(
        settings: &[JwtIssuer],
        previous: Option<&Issuers>,
    ) -> Result<Self, IssuerError> {
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
                        .unwrap_or_else(|| Arc::new(JwksStore::new(&s.name, url))),
                ),
            };
            issuers.push(Issuer::new(s, keys));
        }
        if errors.is_empty() {
            Ok(Self { issuers })
        } else {
            Err(IssuerError(errors))
        }
    }

    /// The store of issuer `name` if it fetches `url`.
    fn store(&self, name: &str, url: &str) -> Option<Arc<JwksStore>> {
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
        let alg = algorithm(&unverified.alg).ok_or(JwtError::AlgorithmNotAllowed)?;
        let claims = issuer.verify(token, alg, unverified.kid.as_deref()).await?;
        issuer.accept(&claims)
    }
}

/// Reads and parses a JWKS file.
fn read_file(path: &std::path::Path, at: &Setting) -> Result<KeySet, JwksFileError> {
    let bytes = std::fs::read(path).map_err(|source| JwksFileError::Read {
        at: at.clone(),
        path: path.to_path_buf(),
        source,
    })?;
    KeySet::parse(&bytes).map_err(|source| JwksFileError::Parse {
        at: at.clone(),
        path: path.to_path_buf(),
        source,
    })
}

impl Issuer {
    fn new(s: &JwtIssuer, keys: Keys) -> Self {
        let leeway = s.leeway.as_secs();
        let validations = s
            .algorithms
            .iter()
            .map(|&alg| {
                let mut v = Validation::new(library(alg));
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
            secret: s.secret.as_deref().map(DecodingKey::from_secret),
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
        alg: JwtAlgorithm,
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
                // Subscribed before the set is read: a fetch that finishes from here on is
                // seen, even one that finishes before the miss is reported.
                let mut fetched = store.fetches();
                if let Some(set) = store.keys() {
                    match with_keys(&set, token, alg, kid, validation) {
                        Err(JwtError::UnknownKid) => {}
                        done => return done,
                    }
                }
                let coming = store.want_refresh(Instant::now(), self.refresh_on_miss);
                let newer = fetched.has_changed().unwrap_or(false);
                if !newer {
                    if !coming {
                        return Err(JwtError::UnknownKid);
                    }
                    // A timeout leaves the set as it is: verified against it, the token
                    // fails.
                    let _ = tokio::time::timeout(MISS_WAIT, fetched.changed()).await;
                }
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
    alg: JwtAlgorithm,
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
        let json =
            |part: &str| Base64UrlUnpadded::decode_vec(part).map_err(|_| JwtError::Malformed);
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::Locations;
    use jsonwebtoken::{EncodingKey, Header};
    use openssl::bn::BigNumContext;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The secret of the test issuers' HMAC tokens.
    const SECRET: &[u8] = b"the issuer's own secret";
    const ISS: &str = "https://idp.example.com/";

    fn b64(bytes: &[u8]) -> String {
        Base64UrlUnpadded::encode_string(bytes)
    }

    /// A key pair made for the test: what signs, and its public JWK.
    pub(crate) struct TestKey {
        pub alg: JwtAlgorithm,
        pub kid: String,
        pub encoding: EncodingKey,
        pub jwk: Value,
        /// The public key as PEM (RSA keys), to try it as an HMAC secret.
        pub public_pem: Vec<u8>,
    }

    impl TestKey {
        pub(crate) fn new(alg: JwtAlgorithm, kid: &str) -> Self {
            let (encoding, jwk, public_pem) = match key_kind(alg) {
                Some(KeyKind::Rsa) => {
                    let rsa = Rsa::generate(2048).unwrap();
                    let jwk = json!({"kty": "RSA", "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec())});
                    (
                        EncodingKey::from_rsa_der(&rsa.private_key_to_der().unwrap()),
                        jwk,
                        rsa.public_key_to_pem().unwrap(),
                    )
                }
                Some(kind @ (KeyKind::P256 | KeyKind::P384)) => {
                    let (nid, crv, len) = if kind == KeyKind::P256 {
                        (Nid::X9_62_PRIME256V1, "P-256", 32)
                    } else {
                        (Nid::SECP384R1, "P-384", 48)
                    };
                    let group = EcGroup::from_curve_name(nid).unwrap();
                    let ec = EcKey::generate(&group).unwrap();
                    let (mut x, mut y) = (
                        openssl::bn::BigNum::new().unwrap(),
                        openssl::bn::BigNum::new().unwrap(),
                    );
                    let mut ctx = BigNumContext::new().unwrap();
                    ec.public_key()
                        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
                        .unwrap();
                    let jwk = json!({"kty": "EC", "crv": crv,
                        "x": b64(&x.to_vec_padded(len).unwrap()), "y": b64(&y.to_vec_padded(len).unwrap())});
                    let pkey = PKey::from_ec_key(ec).unwrap();
                    let der = pkey.private_key_to_pkcs8().unwrap();
                    (EncodingKey::from_ec_der(&der), jwk, Vec::new())
                }
                Some(KeyKind::Ed25519) => {
                    let pkey = PKey::generate_ed25519().unwrap();
                    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&pkey.raw_public_key().unwrap())});
                    let der = pkey.private_key_to_pkcs8().unwrap();
                    (EncodingKey::from_ed_der(&der), jwk, Vec::new())
                }
                None => panic!("{alg:?} has no key pair"),
            };
            let mut jwk = jwk;
            jwk["kid"] = json!(kid);
            Self {
                alg,
                kid: kid.to_string(),
                encoding,
                jwk,
                public_pem,
            }
        }

        /// A token with these claims, signed by this key, naming its `kid`.
        pub(crate) fn sign(&self, claims: &Value) -> String {
            let mut header = Header::new(library(self.alg));
            header.kid = Some(self.kid.clone());
            jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
        }
    }

    /// The text of a key set holding these keys.
    pub(crate) fn jwks(keys: &[&TestKey]) -> String {
        json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
    }

    /// `jwt[i].jwks` of a small configuration file, `w.yaml`.
    fn setting(i: usize) -> Setting {
        let text = "jwt:\n  - jwks: a.json\n  - jwks: b.json\n";
        let locations = Arc::new(Locations::read(std::path::Path::new("w.yaml"), text));
        Setting::new(format!("jwt[{i}].jwks"), locations)
    }

    fn now() -> i64 {
        i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap()
    }

    /// Claims that pass: issued now, expiring in an hour, for `api`, naming `alice`.
    fn claims() -> Value {
        json!({"iss": ISS, "sub": "alice", "aud": "api", "iat": now(), "exp": now() + 3600})
    }

    fn settings(algorithms: &[JwtAlgorithm], jwks: Option<JwksSource>) -> JwtIssuer {
        JwtIssuer {
            name: "idp".to_string(),
            issuer: ISS.to_string(),
            audiences: vec!["api".to_string()],
            algorithms: algorithms.to_vec(),
            secret: algorithms
                .iter()
                .any(|a| a.is_hmac())
                .then(|| SECRET.to_vec()),
            jwks,
            refresh: Duration::from_secs(300),
            refresh_on_miss: Duration::from_secs(10),
            leeway: Duration::from_secs(30),
            consumer_claim: "sub".to_string(),
        }
    }

    /// Issuers trusting `keys` through a JWKS file (kept alive by the returned folder).
    fn with_file(algorithms: &[JwtAlgorithm], keys: &[&TestKey]) -> (tempfile::TempDir, Issuers) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwks.json");
        std::fs::write(&path, jwks(keys)).unwrap();
        let source = JwksSource::File {
            path,
            at: setting(0),
        };
        let issuers = Issuers::build(&[settings(algorithms, Some(source))], None).unwrap();
        (dir, issuers)
    }

    fn verified() -> Result<Verified, JwtError> {
        Ok(Verified {
            issuer: "idp".to_string(),
            consumer: "alice".to_string(),
        })
    }

    #[tokio::test]
    async fn tokens_of_each_key_type_verify_with_a_jwks_file() {
        for alg in [
            JwtAlgorithm::RS256,
            JwtAlgorithm::RS384,
            JwtAlgorithm::RS512,
            JwtAlgorithm::PS256,
            JwtAlgorithm::ES256,
            JwtAlgorithm::ES384,
            JwtAlgorithm::EdDSA,
        ] {
            let key = TestKey::new(alg, "k1");
            let other = TestKey::new(alg, "k2");
            let (_dir, issuers) = with_file(&[alg], &[&other, &key]);
            assert_eq!(
                issuers.verify(&key.sign(&claims())).await,
                verified(),
                "{alg:?}"
            );
            // Signed by another key under this kid: the signature is checked.
            let forged = TestKey::new(alg, "k1");
            assert_eq!(
                issuers.verify(&forged.sign(&claims())).await,
                Err(JwtError::BadSignature),
                "{alg:?}"
            );
        }
    }

    #[tokio::test]
    async fn hmac_tokens_verify_with_the_secret_only() {
        let issuers = Issuers::build(&[settings(&[JwtAlgorithm::HS256], None)], None).unwrap();
        let good = EncodingKey::from_secret(SECRET);
        let token = jsonwebtoken::encode(&Header::default(), &claims(), &good).unwrap();
        assert_eq!(issuers.verify(&token).await, verified());
        let bad = EncodingKey::from_secret(b"another secret");
        let token = jsonwebtoken::encode(&Header::default(), &claims(), &bad).unwrap();
        assert_eq!(issuers.verify(&token).await, Err(JwtError::BadSignature));
    }

    #[tokio::test]
    async fn each_hmac_algorithm_verifies_only_where_listed() {
        use jsonwebtoken::Algorithm as A;
        let secret = EncodingKey::from_secret(SECRET);
        for (alg, listed) in [
            (A::HS256, JwtAlgorithm::HS256),
            (A::HS384, JwtAlgorithm::HS384),
            (A::HS512, JwtAlgorithm::HS512),
        ] {
            let issuers = Issuers::build(&[settings(&[listed], None)], None).unwrap();
            for other in [A::HS256, A::HS384, A::HS512] {
                let token = jsonwebtoken::encode(&Header::new(other), &claims(), &secret).unwrap();
                let expected = if other == alg {
                    verified()
                } else {
                    Err(JwtError::AlgorithmNotAllowed)
                };
                assert_eq!(issuers.verify(&token).await, expected, "{alg:?} {other:?}");
            }
        }
    }

    #[tokio::test]
    async fn alg_none_is_refused() {
        let key = TestKey::new(JwtAlgorithm::RS256, "k1");
        let (_dir, issuers) = with_file(&[JwtAlgorithm::RS256, JwtAlgorithm::HS256], &[&key]);
        let payload = b64(claims().to_string().as_bytes());
        for header in [r#"{"alg":"none"}"#, r#"{"alg":"None","kid":"k1"}"#] {
            let token = format!("{}.{payload}.", b64(header.as_bytes()));
            assert_eq!(
                issuers.verify(&token).await,
                Err(JwtError::AlgorithmNotAllowed)
            );
        }
    }

    #[tokio::test]
    async fn an_hmac_token_keyed_with_the_rsa_public_key_is_refused() {
        let key = TestKey::new(JwtAlgorithm::RS256, "k1");
        let confused = |alg| {
            let mut header = Header::new(alg);
            header.kid = Some("k1".to_string());
            let secret = EncodingKey::from_secret(&key.public_pem);
            jsonwebtoken::encode(&header, &claims(), &secret).unwrap()
        };
        // The issuer allows HS256 with a secret of its own: the key set is not tried.
        let (_dir, issuers) = with_file(&[JwtAlgorithm::RS256, JwtAlgorithm::HS256], &[&key]);
        assert_eq!(
            issuers
                .verify(&confused(jsonwebtoken::Algorithm::HS256))
                .await,
            Err(JwtError::BadSignature)
        );
        // Without HS256 allowed, the algorithm is refused first.
        let (_dir, issuers) = with_file(&[JwtAlgorithm::RS256], &[&key]);
        assert_eq!(
            issuers
                .verify(&confused(jsonwebtoken::Algorithm::HS256))
                .await,
            Err(JwtError::AlgorithmNotAllowed)
        );
        assert_eq!(issuers.verify(&key.sign(&claims())).await, verified());
    }

    #[tokio::test]
    async fn a_jwk_verifies_only_its_own_key_type_and_alg() {
        let rsa = TestKey::new(JwtAlgorithm::RS256, "rsa");
        let ec = TestKey::new(JwtAlgorithm::ES256, "ec");
        let mut pinned = TestKey::new(JwtAlgorithm::RS256, "pinned");
        pinned.jwk["alg"] = json!("RS256");
        let (_dir, issuers) = with_file(
            &[
                JwtAlgorithm::RS256,
                JwtAlgorithm::PS256,
                JwtAlgorithm::ES256,
            ],
            &[&rsa, &ec, &pinned],
        );
        // An ES256 token naming the RSA key's kid finds no EC key of that kid.
        let wrong = TestKey::new(JwtAlgorithm::ES256, "rsa");
        assert_eq!(
            issuers.verify(&wrong.sign(&claims())).await,
            Err(JwtError::UnknownKid)
        );
        // The pinned key verifies RS256 but not PS256, although both are RSA.
        assert_eq!(issuers.verify(&pinned.sign(&claims())).await, verified());
        pinned.alg = JwtAlgorithm::PS256;
        assert_eq!(
            issuers.verify(&pinned.sign(&claims())).await,
            Err(JwtError::UnknownKid)
        );
        // Without a kid, every key that fits is tried.
        let header = Header::new(jsonwebtoken::Algorithm::ES256);
        let token = jsonwebtoken::encode(&header, &claims(), &ec.encoding).unwrap();
        assert_eq!(issuers.verify(&token).await, verified());
    }

    #[tokio::test]
    async fn time_claims_are_checked_with_the_leeway() {
        let key = TestKey::new(JwtAlgorithm::ES256, "k1");
        let (_dir, issuers) = with_file(&[JwtAlgorithm::ES256], &[&key]);
        let with = |name: &str, value: i64| {
            let mut c = claims();
            c[name] = json!(value);
            key.sign(&c)
        };
        let cases = [
            (with("exp", now() - 100), Err(JwtError::Expired)),
            (with("exp", now() - 10), verified()),
            (with("nbf", now() + 100), Err(JwtError::NotYetValid)),
            (with("nbf", now() + 10), verified()),
            (with("iat", now() + 100), Err(JwtError::IssuedInFuture)),
            (with("iat", now() + 10), verified()),
        ];
        for (token, expected) in cases {
            assert_eq!(issuers.verify(&token).await, expected);
        }
        let mut no_exp = claims();
        no_exp.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            issuers.verify(&key.sign(&no_exp)).await,
            Err(JwtError::MissingClaim("exp".to_string()))
        );
    }

    #[tokio::test]
    async fn issuer_audience_and_consumer_claims_are_checked() {
        let key = TestKey::new(JwtAlgorithm::EdDSA, "k1");
        let (_dir, issuers) = with_file(&[JwtAlgorithm::EdDSA], &[&key]);
        let with = |name: &str, value: Value| {
            let mut c = claims();
            c[name] = value;
            key.sign(&c)
        };
        let cases = [
            (with("aud", json!("other")), Err(JwtError::WrongAudience)),
            (with("aud", json!(["other", "api"])), verified()),
            (
                with("aud", Value::Null),
                Err(JwtError::MissingClaim("aud".to_string())),
            ),
            (
                with("iss", json!("https://evil.example.com/")),
                Err(JwtError::UnknownIssuer),
            ),
            (
                with("sub", json!(7)),
                Err(JwtError::MissingClaim("sub".to_string())),
            ),
            (
                with("iat", json!("yesterday")),
                Err(JwtError::MissingClaim("iat".to_string())),
            ),
        ];
        for (token, expected) in cases {
            assert_eq!(issuers.verify(&token).await, expected);
        }
        let mut no_aud = claims();
        no_aud.as_object_mut().unwrap().remove("aud");
        assert_eq!(
            issuers.verify(&key.sign(&no_aud)).await,
            Err(JwtError::MissingClaim("aud".to_string()))
        );
        for token in ["", "a.b", "a.b.c.d.e", "!!.!!.!!"] {
            assert_eq!(
                issuers.verify(token).await,
                Err(JwtError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn a_jwks_file_that_does_not_load_is_reported_where_it_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{\"keys\": [").unwrap();
        let missing = dir.path().join("missing.json");
        let file = |path: &PathBuf, i| {
            let mut s = settings(&[JwtAlgorithm::RS256], None);
            s.jwks = Some(JwksSource::File {
                path: path.clone(),
                at: setting(i),
            });
            s
        };
        let Err(e) = Issuers::build(&[file(&bad, 0), file(&missing, 1)], None) else {
            panic!("built");
        };
        let lines: Vec<String> = e.to_string().lines().map(String::from).collect();
        assert_eq!(
            lines,
            [
                format!(
                    "w.yaml:2:11: jwt[0].jwks: {}: not a JSON Web Key Set: EOF while parsing a list at line 1 column 10",
                    bad.display()
                ),
                format!(
                    "w.yaml:3:11: jwt[1].jwks: cannot read {}: No such file or directory (os error 2)",
                    missing.display()
                ),
            ]
        );
    }

    /// A JWKS server for the tests: answers every GET with the current body (or status),
    /// and counts the requests.
    pub(crate) struct JwksServer {
        pub url: String,
        pub body: Arc<Mutex<(u16, String)>>,
        pub requests: Arc<AtomicUsize>,
    }

    impl JwksServer {
        pub(crate) async fn start(body: String) -> Self {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!("http://{}/keys.json", listener.local_addr().unwrap());
            let body = Arc::new(Mutex::new((200, body)));
            let requests = Arc::new(AtomicUsize::new(0));
            let (answer, count) = (body.clone(), requests.clone());
            tokio::spawn(async move {
                while let Ok((mut stream, _)) = listener.accept().await {
                    let (answer, count) = (answer.clone(), count.clone());
                    tokio::spawn(async move {
                        let mut request = Vec::new();
                        let mut buf = [0; 1024];
                        while !request.ends_with(b"\r\n\r\n") {
                            let n = stream.read(&mut buf).await.unwrap();
                            if n == 0 {
                                return;
                            }
                            request.extend_from_slice(&buf[..n]);
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = answer.lock().unwrap().clone();
                        let response = format!(
                            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        stream.write_all(response.as_bytes()).await.unwrap();
                    });
                }
            });
            Self {
                url,
                body,
                requests,
            }
        }

        fn serve(&self, status: u16, body: String) {
            *self.body.lock().unwrap() = (status, body);
        }
    }

    /// Calls `refresh_due` as the supervisor does, until the task is aborted.
    fn supervise(issuers: Arc<Issuers>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                issuers.refresh_due();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_jwks_url_is_fetched_in_the_background_and_again_on_an_unknown_kid() {
        let first = TestKey::new(JwtAlgorithm::RS256, "first");
        let server = JwksServer::start(jwks(&[&first])).await;
        let s = settings(
            &[JwtAlgorithm::RS256],
            Some(JwksSource::Url(server.url.clone())),
        );
        let issuers = Arc::new(Issuers::build(std::slice::from_ref(&s), None).unwrap());
        let supervisor = supervise(issuers.clone());
        // The first request waits for the first fetch.
        assert_eq!(issuers.verify(&first.sign(&claims())).await, verified());
        assert_eq!(server.requests.load(Ordering::SeqCst), 1);

        // Rotation: a token naming the new kid has the set fetched again at once.
        let second = TestKey::new(JwtAlgorithm::RS256, "second");
        server.serve(200, jwks(&[&second]));
        assert_eq!(issuers.verify(&second.sign(&claims())).await, verified());
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);

        // Another unknown kid within `refresh_on_miss` fails at once, without a fetch.
        let third = TestKey::new(JwtAlgorithm::RS256, "third");
        let started = Instant::now();
        assert_eq!(
            issuers.verify(&third.sign(&claims())).await,
            Err(JwtError::UnknownKid)
        );
        assert!(started.elapsed() < MISS_WAIT);
        assert_eq!(server.requests.load(Ordering::SeqCst), 2);

        // The next runtime takes the store over: its keys, and no fetch of its own.
        supervisor.abort();
        let next = Arc::new(Issuers::build(std::slice::from_ref(&s), Some(&issuers)).unwrap());
        let supervisor = supervise(next.clone());
        assert_eq!(next.verify(&second.sign(&claims())).await, verified());
        // A renamed issuer starts a store of its own.
        let mut renamed = s.clone();
        renamed.name = "idp2".to_string();
        let fresh = Issuers::build(&[renamed], Some(&next)).unwrap();
        assert!(fresh
            .store("idp2", &server.url)
            .is_some_and(|st| st.keys().is_none()));
        supervisor.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_fetch_keeps_the_last_good_key_set() {
        let key = TestKey::new(JwtAlgorithm::ES256, "k1");
        let server = JwksServer::start(jwks(&[&key])).await;
        let mut s = settings(
            &[JwtAlgorithm::ES256],
            Some(JwksSource::Url(server.url.clone())),
        );
        s.refresh = Duration::from_millis(100);
        s.refresh_on_miss = Duration::from_millis(100);
        let issuers = Arc::new(Issuers::build(&[s], None).unwrap());
        let supervisor = supervise(issuers.clone());
        assert_eq!(issuers.verify(&key.sign(&claims())).await, verified());
        for (status, body) in [(500, String::new()), (200, "{\"keys\": 3}".to_string())] {
            server.serve(status, body);
            let seen = server.requests.load(Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(5);
            while server.requests.load(Ordering::SeqCst) < seen + 2 {
                assert!(Instant::now() < deadline, "no periodic fetch");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            assert_eq!(issuers.verify(&key.sign(&claims())).await, verified());
        }
        supervisor.abort();
    }
}
