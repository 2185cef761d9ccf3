//! JWT authentication as a client and the upstream see it: tokens signed by keys the test
//! makes with OpenSSL, checked against a JWKS file or a JWKS URL the test serves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use base64ct::{Base64UrlUnpadded, Encoding};
use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ISS: &str = "https://idp.example.test/";
/// The issuer's own HMAC secret (it also allows HS256).
const SECRET: &str = "the-idp-shared-secret";

fn b64(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(bytes)
}

/// A signing key made with OpenSSL, and its public JWK.
struct Key {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
    /// The RSA public key as PEM, which an attacker could fetch and try as an HMAC secret.
    public_pem: Vec<u8>,
}

impl Key {
    fn rsa(kid: &str) -> Self {
        let rsa = Rsa::generate(2048).unwrap();
        Self {
            alg: Algorithm::RS256,
            kid: kid.to_string(),
            encoding: EncodingKey::from_rsa_der(&rsa.private_key_to_der().unwrap()),
            jwk: json!({"kty": "RSA", "kid": kid, "use": "sig",
                "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec())}),
            public_pem: rsa.public_key_to_pem().unwrap(),
        }
    }

    fn p256(kid: &str) -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let ec = EcKey::generate(&group).unwrap();
        let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut BigNumContext::new().unwrap())
            .unwrap();
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(&x.to_vec_padded(32).unwrap()), "y": b64(&y.to_vec_padded(32).unwrap())});
        let der = PKey::from_ec_key(ec)
            .unwrap()
            .private_key_to_pkcs8()
            .unwrap();
        Self {
            alg: Algorithm::ES256,
            kid: kid.to_string(),
            encoding: EncodingKey::from_ec_der(&der),
            jwk,
            public_pem: Vec::new(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn jwks(keys: &[&Key]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims that pass, naming `consumer`.
fn claims(consumer: &str) -> Value {
    json!({"iss": ISS, "sub": consumer, "aud": "api", "iat": now(), "exp": now() + 600})
}

/// Consumers alice and bob, one issuer whose keys are at `jwks`, and one route that requires
/// a JWT.
fn config(app: &Instance, jwks: &str, extra: &str) -> String {
    format!(
        "consumers:\n  - {{ name: alice }}\n  - {{ name: bob }}\n\
         jwt:\n  - name: idp\n    issuer: \"{ISS}\"\n    audiences: [api]\n    \
         algorithms: [RS256, ES256, HS256]\n    secret: {SECRET}\n    jwks: \"{jwks}\"\n{extra}\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: api, upstream: app, policies: {{ auth: {{ methods: [jwt] }} }} }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: {} }}]\n",
        app.address(),
        app.id
    )
}

/// The status of a request bearing `token`, and the headers the instance saw (if it was
/// let through) or the `WWW-Authenticate` of the refusal.
fn call(weir: &Weir, token: &str) -> (u16, Value) {
    let resp = client()
        .get(weir.url("/orders"))
        .bearer_auth(token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    if status == 200 {
        let seen: Value = resp.json().unwrap();
        (status, seen["headers"].clone())
    } else {
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        (status, json!(challenge))
    }
}

#[test]
fn tokens_verified_with_a_jwks_file_name_their_consumer_upstream() {
    let keys = tempfile::tempdir().unwrap();
    let (rsa, ec) = (Key::rsa("rsa-1"), Key::p256("ec-1"));
    let file = keys.path().join("jwks.json");
    std::fs::write(&file, jwks(&[&rsa, &ec])).unwrap();
    let app = Instance::start("i1");
    let weir = Weir::start(&config(&app, file.to_str().unwrap(), ""));

    for (key, consumer) in [(&rsa, "alice"), (&ec, "bob")] {
        let (status, seen) = call(&weir, &key.sign(&claims(consumer)));
        assert_eq!(status, 200, "{:?}: {seen}", key.alg);
        assert_eq!(seen["x-consumer-username"], consumer);
        assert_eq!(seen["x-credential-identifier"], consumer);
        assert!(
            seen.get("authorization").is_none(),
            "the token went upstream"
        );
    }

    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 120);
    let mut other_audience = claims("alice");
    other_audience["aud"] = json!("billing");
    let mut other_issuer = claims("alice");
    other_issuer["iss"] = json!("https://evil.example.test/");
    let unsigned = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims("alice").to_string().as_bytes())
    );
    // An HMAC token keyed with the RSA public key, which the issuer publishes: HS256 is
    // allowed, but only with the issuer's own secret.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(rsa.kid.clone());
    let confused = jsonwebtoken::encode(
        &header,
        &claims("alice"),
        &EncodingKey::from_secret(&rsa.public_pem),
    )
    .unwrap();
    let refused = [
        ("expired", rsa.sign(&expired)),
        ("wrong audience", ec.sign(&other_audience)),
        ("wrong issuer", rsa.sign(&other_issuer)),
        ("alg none", unsigned),
        ("HS256 keyed with the RSA public key", confused),
        ("unknown consumer", rsa.sign(&claims("mallory"))),
    ];
    for (what, token) in refused {
        let (status, challenge) = call(&weir, &token);
        assert_eq!(status, 401, "{what}");
        assert_eq!(challenge, "Bearer realm=\"weir\"", "{what}");
    }
    // The issuer's own secret does sign valid HS256 tokens.
    let hs = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims("alice"),
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(call(&weir, &hs).0, 200);
}

/// A JWKS endpoint: answers every request with the current set, and counts them.
struct JwksServer {
    url: String,
    body: Arc<Mutex<String>>,
    requests: Arc<Mutex<usize>>,
}

impl JwksServer {
    fn start(body: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let body = Arc::new(Mutex::new(body));
        let requests = Arc::new(Mutex::new(0));
        let (answer, count) = (body.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request = Vec::new();
                let mut buf = [0; 1024];
                while !request.ends_with(b"\r\n\r\n") {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                *count.lock().unwrap() += 1;
                let body = answer.lock().unwrap().clone();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self {
            url,
            body,
            requests,
        }
    }

    fn serve(&self, body: String) {
        *self.body.lock().unwrap() = body;
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

#[test]
fn a_rotated_jwks_url_is_picked_up_without_a_restart() {
    let first = Key::rsa("2025-a");
    let server = JwksServer::start(jwks(&[&first]));
    let app = Instance::start("i1");
    let yaml = config(
        &app,
        &server.url,
        "    refresh: 1h\n    refresh_on_miss: 1s\n",
    );
    let weir = Weir::start_logging(&yaml, "info");
    // The supervisor fetches the set once weir runs (a request before that waits for it).
    let (status, seen) = call(&weir, &first.sign(&claims("alice")));
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["x-consumer-username"], "alice");
    let fetched = server.requests();
    assert!(fetched >= 1);

    // The identity provider rotates: a new kid, the old key gone. The first token naming
    // the new kid has weir fetch the set again (at most once per `refresh_on_miss`).
    let second = Key::p256("2025-b");
    server.serve(jwks(&[&second]));
    let token = second.sign(&claims("bob"));
    let seen = poll_until(Duration::from_secs(10), || {
        let (status, seen) = call(&weir, &token);
        (status == 200).then_some(seen)
    })
    .expect("the rotated key is never accepted");
    assert_eq!(seen["x-consumer-username"], "bob");
    assert!(server.requests() > fetched);
    let (status, _) = call(&weir, &first.sign(&claims("alice")));
    assert_eq!(status, 401, "a key the set no longer holds");

    // A reload keeps the fetched set: the new runtime takes the store over, no fetch.
    let fetched = server.requests();
    weir.rewrite(&format!("{yaml}# reloaded\n"));
    weir.signal(Signal::SIGHUP);
    weir.wait_log(&["reloaded"], Duration::from_secs(10))
        .expect("no reload");
    assert_eq!(call(&weir, &token).0, 200);
    assert_eq!(server.requests(), fetched);
}

#[test]
fn a_jwks_file_that_does_not_parse_fails_the_configuration_test() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jwks.json");
    std::fs::write(&file, r#"{"keys": [{"kty": "RSA", "n": 1, "e": "AQAB"}]}"#).unwrap();
    let app = Instance::start("i1");
    let yaml = config(&app, file.to_str().unwrap(), "").replace("{port}", "8080");
    let path = dir.path().join("weir.yaml");
    std::fs::write(&path, yaml).unwrap();
    let out = weir_test(Path::new(&path));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!(
        "{}:10:11: jwt[0].jwks: {}: keys[0]: `n` must be a base64url string\n",
        path.display(),
        file.display()
    );
    assert_eq!(stderr, expected);
}
