//! Password hashes as htpasswd writes them, for a consumer's `basic.password`: which forms are
//! accepted (bcrypt, Apache's `$apr1$` MD5, SHA-256 and SHA-512 crypt), their shape checked
//! when the configuration loads so that a typo is a configuration error rather than a 401
//! later, and their verification off the async workers, bounded, with successes remembered
//! briefly so that a keep-alive client does not pay a slow hash on every request.
//!
//! The hashing itself is the crates': `bcrypt`, `sha-crypt` and `htauth` (for `$apr1$`);
//! their base64 alphabets are checked with `base64ct`.

use base64ct::{Base64Bcrypt, Base64ShaCrypt, Encoding};
use quick_cache::sync::Cache;
use sha_crypt::{PasswordVerifier, ShaCrypt};
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Longest password that is hashed; a longer one fails without being hashed. htpasswd takes
/// at most 255 bytes, and the work of SHA-crypt and MD5-crypt grows with the length, so this
/// bounds what one request can cost.
const MAX_PASSWORD_LEN: usize = 1024;

/// How long a successful verification is remembered.
const CACHE_TTL: Duration = Duration::from_secs(60);

/// How many successful verifications are remembered at most.
const CACHE_ENTRIES: usize = 10_000;

/// What to run to make an accepted hash, for the messages of refused ones.
const HOW_TO_HASH: &str = "make one with `htpasswd -nbB USER PASSWORD` (bcrypt) and copy what \
                           follows the colon; $apr1$ (-m), $5$ (-2) and $6$ (-5) hashes work too";

/// Why a `password` is not accepted. The messages never quote the value: it may be a
/// password written in plain text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HashError {
    /// No hash form at all: most likely the password itself.
    #[error("must be a hash as htpasswd writes it, not the password; plain text is refused: {HOW_TO_HASH}")]
    PlainText,
    /// A form htpasswd (or crypt) writes that is too weak to accept.
    #[error("{0} hashes are refused as too weak: {HOW_TO_HASH}")]
    Weak(&'static str),
    /// A `$…$` form that is none of the accepted ones.
    #[error(
        "is not a hash form weir verifies (bcrypt $2y$/$2b$/$2a$, $apr1$, $5$, $6$): {HOW_TO_HASH}"
    )]
    UnknownForm,
    /// An accepted form whose rest is not well-formed (cut short, a character changed…).
    #[error(
        "is not a well-formed {form} hash: {problem}; copy the whole hash as htpasswd printed it"
    )]
    Malformed {
        /// The form the prefix names.
        form: &'static str,
        /// What is wrong, in a user's words.
        problem: &'static str,
    },
}

/// The accepted hash forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Bcrypt,
    Apr1,
    Sha256Crypt,
    Sha512Crypt,
}

impl Form {
    fn name(self) -> &'static str {
        match self {
            Form::Bcrypt => "bcrypt",
            Form::Apr1 => "$apr1$ (Apache MD5)",
            Form::Sha256Crypt => "$5$ (SHA-256 crypt)",
            Form::Sha512Crypt => "$6$ (SHA-512 crypt)",
        }
    }
}

/// A password hash a consumer's basic-auth user is checked against, well-formed by
/// construction ([`PasswordHash::parse`]).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct PasswordHash {
    form: Form,
    text: String,
}

/// Names the form only: the hash stays out of logs and debug output.
impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash({})", self.form.name())
    }
}

impl PasswordHash {
    /// Reads a hash as htpasswd writes it (the part after `user:`). Refuses plain text and
    /// the weak forms (`{SHA}`, DES crypt, `$1$`), and checks the whole shape of an accepted
    /// one: cost or rounds in range, salt and hash of the right length and alphabet.
    pub(crate) fn parse(text: &str) -> Result<Self, HashError> {
        let (form, checked) = if let Some(rest) = ["$2y$", "$2b$", "$2a$"]
            .iter()
            .find_map(|prefix| text.strip_prefix(prefix))
        {
            (Form::Bcrypt, check_bcrypt(rest))
        } else if let Some(rest) = text.strip_prefix("$apr1$") {
            (Form::Apr1, check_apr1(rest))
        } else if let Some(rest) = text.strip_prefix("$5$") {
            (Form::Sha256Crypt, check_sha_crypt(rest, 32))
        } else if let Some(rest) = text.strip_prefix("$6$") {
            (Form::Sha512Crypt, check_sha_crypt(rest, 64))
        } else {
            return Err(refusal(text));
        };
        checked.map_err(|problem| HashError::Malformed {
            form: form.name(),
            problem,
        })?;
        Ok(Self {
            form,
            text: text.to_owned(),
        })
    }

    /// Whether `password` matches. Slow on purpose (bcrypt at cost 10 takes ~50 ms): call it
    /// off the async workers, as [`Verifier`] does. Any bytes are taken; a password longer
    /// than htpasswd could have hashed fails at once, and so does one that is not UTF-8
    /// against an `$apr1$` hash (the crate verifying those takes text).
    pub(crate) fn verify(&self, password: &[u8]) -> bool {
        if password.len() > MAX_PASSWORD_LEN {
            return false;
        }
        match self.form {
            Form::Bcrypt => bcrypt::verify(password, &self.text).unwrap_or(false),
            Form::Apr1 => std::str::from_utf8(password).is_ok_and(|password| {
                htauth::verify_password(password, &self.text).unwrap_or(false)
            }),
            Form::Sha256Crypt | Form::Sha512Crypt => ShaCrypt::default()
                .verify_password(password, self.text.as_str())
                .is_ok(),
        }
    }
}

/// Why `text`, in none of the accepted forms, is refused.
fn refusal(text: &str) -> HashError {
    if text.starts_with("{SHA}") {
        HashError::Weak("{SHA} (unsalted SHA-1)")
    } else if text.starts_with("$1$") {
        HashError::Weak("$1$ (MD5 crypt)")
    } else if text.starts_with('$') {
        HashError::UnknownForm
    } else if text.len() == 13 && text.bytes().all(is_crypt_char) {
        HashError::Weak("DES crypt (only 8 characters of a password count)")
    } else {
        HashError::PlainText
    }
}

/// A character of the crypt base64 alphabets (bcrypt's has the same set in another order).
fn is_crypt_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'.' || c == b'/'
}

/// Whether `encoded` is exactly `len` bytes in the `E` base64 alphabet: right length,
/// right characters, no stray bits in the last one.
fn decodes_to<E: Encoding>(encoded: &str, len: usize) -> bool {
    let mut buf = [0u8; 64];
    buf.get_mut(..len)
        .is_some_and(|buf| E::decode(encoded, buf).is_ok_and(|decoded| decoded.len() == len))
}

/// `CC$` + 22 characters of salt + 31 of hash, after `$2y$`.
fn check_bcrypt(rest: &str) -> Result<(), &'static str> {
    let (cost, body) = rest
        .split_once('$')
        .ok_or("the cost must be followed by `$`")?;
    if cost.len() != 2 || !cost.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the cost must be two digits, e.g. 10");
    }
    if !(4..=31).contains(&cost.parse::<u32>().unwrap_or(0)) {
        return Err("the cost must be from 04 to 31");
    }
    if body.len() != 53 || !body.bytes().all(is_crypt_char) {
        return Err("after the cost come 53 characters of ./0-9A-Za-z");
    }
    let (salt, hash) = body.split_at(22);
    if !decodes_to::<Base64Bcrypt>(salt, 16) || !decodes_to::<Base64Bcrypt>(hash, 23) {
        return Err("the salt or the hash does not decode");
    }
    Ok(())
}

/// 1 to 8 characters of salt, `$`, 22 of hash, after `$apr1$`.
fn check_apr1(rest: &str) -> Result<(), &'static str> {
    let (salt, hash) = rest
        .split_once('$')
        .ok_or("the salt must be followed by `$`")?;
    if salt.is_empty() || salt.len() > 8 || !salt.bytes().all(is_crypt_char) {
        return Err("the salt must be 1 to 8 characters of ./0-9A-Za-z");
    }
    if !decodes_to::<Base64ShaCrypt>(hash, 16) {
        return Err("the hash after the salt must be 22 characters of ./0-9A-Za-z");
    }
    Ok(())
}

/// Optional `rounds=N$`, 1 to 16 characters of salt, `$`, the hash of `len` bytes, after
/// `$5$` or `$6$`.
fn check_sha_crypt(rest: &str, len: usize) -> Result<(), &'static str> {
    let rest = match rest.strip_prefix("rounds=") {
        Some(rounds_and_rest) => {
            let (rounds, rest) = rounds_and_rest
                .split_once('$')
                .ok_or("`rounds=N` must be followed by `$`")?;
            let in_range = rounds.bytes().all(|b| b.is_ascii_digit())
                && rounds
                    .parse::<u32>()
                    .is_ok_and(|n| (1_000..=999_999_999).contains(&n));
            if !in_range {
                return Err("rounds must be from 1000 to 999999999");
            }
            rest
        }
        None => rest,
    };
    let (salt, hash) = rest
        .split_once('$')
        .ok_or("the salt must be followed by `$`")?;
    if salt.is_empty() || salt.len() > 16 || !salt.bytes().all(is_crypt_char) {
        return Err("the salt must be 1 to 16 characters of ./0-9A-Za-z");
    }
    if !decodes_to::<Base64ShaCrypt>(hash, len) {
        return Err("the hash after the salt is not the right length of ./0-9A-Za-z");
    }
    Ok(())
}

/// Verifies basic-auth passwords for one runtime. A success is remembered for a minute
/// (keyed by a SHA-256 of the stored hash, the user and the password; only digests are
/// kept), so a client sending the same credentials again is answered at once. A miss is
/// hashed on tokio's blocking pool, at most 2 × CPUs at once (more wait their turn), so
/// slow hashes never stall the async workers that serve other requests. Failures are not
/// remembered. A reload builds a new one, so a changed password takes effect at once.
pub(crate) struct Verifier {
    /// Verifications allowed to run at once; a permit is held until the hash is done.
    permits: Arc<Semaphore>,
    /// Digest of a verified credential → when it stops counting.
    verified: Cache<[u8; 32], Instant>,
    ttl: Duration,
}

/// The documented bounds: 2 × available CPUs at once, 10 000 remembered successes for 60 s
/// each.
impl Default for Verifier {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        Self::with_limits(2 * cpus, CACHE_ENTRIES, CACHE_TTL)
    }
}

/// The bounds and how full it is; never a digest.
impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("free_permits", &self.permits.available_permits())
            .field("remembered", &self.verified.len())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Verifier {
    fn with_limits(at_once: usize, entries: usize, ttl: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(at_once)),
            verified: Cache::new(entries),
            ttl,
        }
    }

    /// Whether `password` is `user`'s, whose stored hash is `hash`.
    pub(crate) async fn verify(&self, user: &str, password: &[u8], hash: &PasswordHash) -> bool {
        let key = credential_digest(user, password, hash);
        if self
            .verified
            .get(&key)
            .is_some_and(|until| Instant::now() < until)
        {
            return true;
        }
        // The permit moves into the blocking task: a request given up while its hash is
        // computed does not free a slot before the work is done.
        let Ok(permit) = self.permits.clone().acquire_owned().await else {
            return false;
        };
        let (hash, password) = (hash.clone(), password.to_vec());
        let matched = tokio::task::spawn_blocking(move || {
            let matched = hash.verify(&password);
            drop(permit);
            matched
        })
        .await
        .unwrap_or(false);
        if matched {
            self.verified.insert(key, Instant::now() + self.ttl);
        }
        matched
    }
}

/// SHA-256 of the stored hash, the user and the password, as the cache keeps them. The
/// stored hash never holds a newline and a basic-auth user never a colon, so distinct
/// credentials have distinct inputs.
fn credential_digest(user: &str, password: &[u8], hash: &PasswordHash) -> [u8; 32] {
    let mut sha = openssl::sha::Sha256::new();
    sha.update(hash.text.as_bytes());
    sha.update(b"\n");
    sha.update(user.as_bytes());
    sha.update(b":");
    sha.update(password);
    sha.finish()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Made by `htpasswd -nb… alice 'secret pw'` (Apache 2.4, apache2-utils).
    const HTPASSWD: &[&str] = &[
        "$2y$05$yY156.pB1AUXfT8Qt7BRZ.P4rBE6JbADcLBWQIsT5YSL5LGnJMU2W",
        "$2y$10$eAfqqZcCY8BmYEG0RZeuw.UgrDSF3hb/Z8Hh6LrTURaKH08Fw78mG",
        "$apr1$j3LjT.xz$2Qpoq.G6CPE0SGZWPL4.x/",
        "$5$BQ/Gu0mGHCk1oEt/$k/yf0mQH60Q1R0KkMg8k102oYgUCa/f.4VmoX9FRBr4",
        "$6$puUDh88FqV.v2Vw4$B1jUzTrIf6KkdWIQb6BvPW8FHPCkGGcYhjm5wHP9xvj7iznqaJp2t9c2ahJFiljcyrSN1T9EdHAiT.NRnpNGH1",
        "$5$rounds=1000$8h97lBqX0zO5SugJ$4ZcAroX9lSOx/LLDkIPnda2sagSu7HxWl0X2y.LF.z6",
        "$6$rounds=10000$qgTQvHnjBlp20pod$qWxGVNI0OMXWzKW3fQw0VW60mJ7Np.G2ca2DXIqapXaGrMd5BZJpEIxWJwnpoiZ3rN3icV7FyoI81DjtcTANt0",
    ];
    const HTPASSWD_PASSWORD: &[u8] = b"secret pw";

    /// Published vectors: OpenBSD's and crypt_blowfish's bcrypt, OpenSSL's `passwd -apr1`
    /// documentation, and Drepper's SHA-crypt specification (whose output truncates a long
    /// salt to 16 characters).
    const KNOWN: &[(&str, &[u8])] = &[
        (
            "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
            b"U*U",
        ),
        (
            "$2a$06$DCq7YPn5Rq63x1Lad4cll.TV4S6ytwfsfvkgY8jIucDrjc8deX1s.",
            b"",
        ),
        ("$apr1$xxxxxxxx$dxHfLAsjHkDRmG83UXe8K0", b"password"),
        (
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
            b"Hello world!",
        ),
        (
            "$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA",
            b"Hello world!",
        ),
        (
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
            b"Hello world!",
        ),
    ];

    fn parse(text: &str) -> PasswordHash {
        PasswordHash::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn hashes_htpasswd_writes_verify_their_password_only() {
        for text in HTPASSWD {
            let hash = parse(text);
            assert!(hash.verify(HTPASSWD_PASSWORD), "{text}");
            assert!(!hash.verify(b"secret pW"), "{text}");
            assert!(!hash.verify(b"secret pw "), "{text}");
        }
    }

    #[test]
    fn published_vectors_verify() {
        for (text, password) in KNOWN {
            let hash = parse(text);
            assert!(hash.verify(password), "{text}");
            assert!(!hash.verify(b"U*U*"), "{text}");
        }
    }

    #[test]
    fn plain_text_and_weak_forms_are_refused_without_quoting_them() {
        let refused = [
            ("secret pw", HashError::PlainText),
            ("", HashError::PlainText),
            ("hunter2", HashError::PlainText),
            // `htpasswd -nbs`, `-nbd`, and crypt's `$1$`.
            (
                "{SHA}rS7uKHTXnyVCt9RR2Lh+fJ2k/DM=",
                HashError::Weak("{SHA} (unsalted SHA-1)"),
            ),
            (
                "G.rJu4jmKq.cs",
                HashError::Weak("DES crypt (only 8 characters of a password count)"),
            ),
            (
                "$1$5pZSV9va$azfrPr6af3Fc7dLblQXVa0",
                HashError::Weak("$1$ (MD5 crypt)"),
            ),
            (
                "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
                HashError::UnknownForm,
            ),
            (
                "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$aGFzaA",
                HashError::UnknownForm,
            ),
        ];
        for (text, expected) in refused {
            let error = PasswordHash::parse(text).unwrap_err();
            assert_eq!(error, expected, "{text}");
            let message = error.to_string();
            assert!(message.contains("htpasswd -nbB USER PASSWORD"), "{message}");
            assert!(text.is_empty() || !message.contains(text), "{message}");
        }
        assert!(PasswordHash::parse("hunter2")
            .unwrap_err()
            .to_string()
            .contains("plain text is refused"));
    }

    #[test]
    fn a_damaged_hash_is_refused_at_load() {
        let good = HTPASSWD[1];
        let damaged = [
            // Cut short, one character too many, a trailing newline or space.
            good[..good.len() - 1].to_string(),
            format!("{good}x"),
            format!("{good}\n"),
            format!("{good} "),
            // A character outside the alphabet, a non-ASCII one where the salt ends.
            good.replacen('e', "-", 1),
            format!("{}é{}", &good[..28], &good[30..]),
            // The last character carries bits no hash has (`G` leaves them 0, `H` not).
            format!("{}H", &good[..good.len() - 1]),
            // Costs outside 04–31, or not two digits.
            good.replacen("$10$", "$03$", 1),
            good.replacen("$10$", "$32$", 1),
            good.replacen("$10$", "$1$", 1),
            good.replacen("$10$", "$+1$", 1),
            "$2y$".to_string(),
            "$2y$10".to_string(),
            // $apr1$: no salt, a long salt, a short hash.
            "$apr1$$2Qpoq.G6CPE0SGZWPL4.x/".to_string(),
            "$apr1$j3LjT.xz9$2Qpoq.G6CPE0SGZWPL4.x/".to_string(),
            "$apr1$j3LjT.xz$2Qpoq.G6CPE0SGZWPL4.x".to_string(),
            "$apr1$j3LjT.xz".to_string(),
            // SHA-crypt: rounds out of range or not a number, salt too long, hash of
            // the other size.
            HTPASSWD[5].replace("rounds=1000", "rounds=999"),
            HTPASSWD[5].replace("rounds=1000", "rounds=1e3"),
            HTPASSWD[5].replace("rounds=1000", "rounds=-1000"),
            HTPASSWD[5].replace("rounds=1000", "rounds=1000000000"),
            "$5$rounds=5000".to_string(),
            "$5$BQ/Gu0mGHCk1oEt/x$k/yf0mQH60Q1R0KkMg8k102oYgUCa/f.4VmoX9FRBr4".to_string(),
            HTPASSWD[3].replacen("$5$", "$6$", 1),
            HTPASSWD[4].replacen("$6$", "$5$", 1),
        ];
        for text in &damaged {
            let error = PasswordHash::parse(text).unwrap_err();
            assert!(
                matches!(error, HashError::Malformed { .. }),
                "{text:?}: {error:?}"
            );
            assert!(
                error.to_string().contains("is not a well-formed"),
                "{error}"
            );
        }
    }

    #[test]
    fn hostile_passwords_fail_without_panicking() {
        let huge = vec![b'a'; 1 << 20];
        let not_utf8 = [0xff, 0xfe, 0x00, 0xc3, 0x28];
        for text in HTPASSWD.iter().chain(KNOWN.iter().map(|(t, _)| t)) {
            let hash = parse(text);
            assert!(!hash.verify(&huge), "{text}");
            assert!(!hash.verify(&not_utf8), "{text}");
        }
        // The empty password verifies where it is the password, and only there.
        assert!(parse(KNOWN[1].0).verify(b""));
        assert!(!parse(HTPASSWD[0]).verify(b""));
        // bcrypt reads at most 72 bytes, as htpasswd does; a longer password still works
        // up to the bound.
        let long = [b'x'; 100];
        let hash = parse(&bcrypt::hash(long, 4).unwrap());
        assert!(hash.verify(&long));
    }

    #[test]
    fn a_non_utf8_password_verifies_where_the_crate_takes_bytes() {
        let password = [0xe9, b'l', b'a', b'n'];
        let hash = parse(&bcrypt::hash(password, 4).unwrap());
        assert!(hash.verify(&password));
        assert!(!hash.verify(b"elan"));
    }

    #[test]
    fn debug_output_names_the_form_not_the_hash() {
        assert_eq!(
            format!("{:?}", parse(HTPASSWD[2])),
            "PasswordHash($apr1$ (Apache MD5))"
        );
    }

    /// A verifier allowing one verification at once, and the permit taken from it, so
    /// that only answers from the cache can complete.
    fn held(verifier: &Verifier) -> tokio::sync::OwnedSemaphorePermit {
        verifier.permits.clone().try_acquire_owned().unwrap()
    }

    /// Whether `verify` completes (within a bound no hash here needs), and its answer.
    async fn answer(
        verifier: &Verifier,
        user: &str,
        password: &[u8],
        hash: &PasswordHash,
    ) -> Option<bool> {
        tokio::time::timeout(
            Duration::from_secs(5),
            verifier.verify(user, password, hash),
        )
        .await
        .ok()
    }

    #[tokio::test]
    async fn a_cached_success_is_answered_without_hashing_again() {
        let verifier = Verifier::with_limits(1, 100, CACHE_TTL);
        let hash = parse(HTPASSWD[1]);
        assert_eq!(
            answer(&verifier, "alice", HTPASSWD_PASSWORD, &hash).await,
            Some(true)
        );
        let _held = held(&verifier);
        // No permit is free, so only the cache can answer.
        for _ in 0..3 {
            assert_eq!(
                answer(&verifier, "alice", HTPASSWD_PASSWORD, &hash).await,
                Some(true)
            );
        }
        // Another password, another user, another stored hash: not from the cache.
        let pending = Duration::from_millis(100);
        for (user, password, hash) in [
            ("alice", &b"secret pW"[..], &hash),
            ("bob", HTPASSWD_PASSWORD, &hash),
            ("alice", HTPASSWD_PASSWORD, &parse(HTPASSWD[0])),
        ] {
            let waited = tokio::time::timeout(pending, verifier.verify(user, password, hash)).await;
            assert!(waited.is_err(), "{user} answered without a permit");
        }
    }

    #[tokio::test]
    async fn a_cost_10_hash_is_slow_once_then_fast() {
        let verifier = Verifier::default();
        let hash = parse(HTPASSWD[1]);
        let first = std::time::Instant::now();
        assert!(verifier.verify("alice", HTPASSWD_PASSWORD, &hash).await);
        let hashing = first.elapsed();
        let again = std::time::Instant::now();
        for _ in 0..100 {
            assert!(verifier.verify("alice", HTPASSWD_PASSWORD, &hash).await);
        }
        let cached = again.elapsed();
        assert!(
            cached < hashing,
            "100 cached answers took {cached:?}, one hash {hashing:?}"
        );
    }

    #[tokio::test]
    async fn failures_are_not_cached() {
        let verifier = Verifier::with_limits(1, 100, CACHE_TTL);
        let hash = parse(HTPASSWD[0]);
        assert_eq!(
            answer(&verifier, "alice", b"wrong", &hash).await,
            Some(false)
        );
        let _held = held(&verifier);
        let waited = tokio::time::timeout(
            Duration::from_millis(100),
            verifier.verify("alice", b"wrong", &hash),
        )
        .await;
        assert!(waited.is_err(), "a failure was answered from the cache");
    }

    #[tokio::test]
    async fn verifications_beyond_the_bound_wait_their_turn() {
        let verifier = Arc::new(Verifier::with_limits(2, 100, CACHE_TTL));
        let hash = parse(HTPASSWD[0]);
        let (first, second) = (held(&verifier), held(&verifier));
        let waiting = tokio::spawn({
            let (verifier, hash) = (verifier.clone(), hash.clone());
            async move { verifier.verify("alice", HTPASSWD_PASSWORD, &hash).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "ran with no permit free");
        drop(first);
        assert!(tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap());
        drop(second);
        assert_eq!(verifier.permits.available_permits(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cached_success_lapses_after_its_ttl() {
        let verifier = Verifier::with_limits(1, 100, Duration::from_secs(60));
        let hash = parse(HTPASSWD[0]);
        assert!(verifier.verify("alice", HTPASSWD_PASSWORD, &hash).await);
        let permit = held(&verifier);
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(
            answer(&verifier, "alice", HTPASSWD_PASSWORD, &hash).await,
            Some(true)
        );
        tokio::time::advance(Duration::from_secs(2)).await;
        let waited = tokio::time::timeout(
            Duration::from_millis(100),
            verifier.verify("alice", HTPASSWD_PASSWORD, &hash),
        )
        .await;
        assert!(waited.is_err(), "answered from a lapsed entry");
        drop(permit);
        assert!(verifier.verify("alice", HTPASSWD_PASSWORD, &hash).await);
    }

    #[tokio::test]
    async fn the_cache_is_bounded() {
        let verifier = Verifier::with_limits(4, 8, CACHE_TTL);
        let hash = parse(HTPASSWD[0]);
        for user in 0..40 {
            let user = format!("user{user}");
            assert!(verifier.verify(&user, HTPASSWD_PASSWORD, &hash).await);
        }
        assert!(verifier.verified.len() <= 8, "{}", verifier.verified.len());
    }

    #[tokio::test]
    async fn hostile_credentials_through_the_verifier() {
        let verifier = Verifier::default();
        let hash = parse(HTPASSWD[2]);
        let huge = vec![0xffu8; 1 << 20];
        for (user, password) in [
            ("", &b""[..]),
            ("alice", &huge[..]),
            ("\u{0}\u{7f}é", &[0xc3, 0x28][..]),
        ] {
            assert!(!verifier.verify(user, password, &hash).await, "{user:?}");
        }
        assert!(verifier.verify("alice", HTPASSWD_PASSWORD, &hash).await);
    }
}
