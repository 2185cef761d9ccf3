//! Path normalization: the one spelling of a request's path that routing, `strip_prefix`,
//! the policies, the access log and the upstream all see, or the reason it is refused.
//!
//! What is normalized (RFC 3986 §6.2.2), in this order:
//!
//! 1. Percent-escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded:
//!    `/%61dmin` is `/admin`. Every other escape stays encoded with uppercase hex digits
//!    (`%2f` is `%2F`, `%c3%a9` is `%C3%A9`). Decoding happens once: `%25` (`%`) is not
//!    unreserved, so `%252e` stays `%252e` and never turns into a dot later.
//! 2. Dot segments are removed (§5.2.4), after decoding, so `%2e%2e` is `..` too:
//!    `/a/./b/../c` is `/a/c`. A trailing `.` or `..` leaves the trailing slash, as the RFC
//!    says: `/a/b/..` is `/a/`, `/a/.` is `/a/`.
//! 3. With `merge_slashes`, each run of `/` is one `/` (`//admin` is `/admin`, `/a//` is
//!    `/a/`). Without it, empty segments are kept, and `..` removes one of them as it removes
//!    any other segment (`/a//../b` is `/a/b`).
//!
//! What is refused, each with its own [`PathError`]: a path that does not start with `/`
//! (the asterisk-form `*` is accepted for OPTIONS only, by [`normalize_target`]), a `..`
//! that climbs above `/` (RFC 3986 would clamp it at the root; nginx answers 400 as weir
//! does, since only a probe sends one), a raw NUL or `%00`, an encoded slash (`%2F`) unless
//! `allow_encoded_slashes`, and a malformed escape (`%`, `%1`, `%G1`).
//!
//! An allowed encoded slash stays encoded and is part of its segment, never a separator:
//! `/a%2F..` has no dot segment. Bytes outside ASCII and characters the RFC would want
//! encoded but the request line carried raw are kept as they came.
//!
//! A path that is already normal (nearly all of them) is checked in one scan and returned
//! borrowed, without allocating.

use super::{Reason, Rejection};
use crate::config::Limits;
use std::borrow::Cow;

/// How a listener normalizes paths: its `merge_slashes` and `allow_encoded_slashes` limits
/// (defaults: merged, refused, as nginx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PathRules {
    /// Runs of `/` become one `/` (nginx's `merge_slashes`, default on).
    pub merge_slashes: bool,
    /// `%2F` is accepted (kept encoded, not a separator) rather than refused (default off).
    pub allow_encoded_slashes: bool,
}

impl From<&Limits> for PathRules {
    fn from(limits: &Limits) -> Self {
        Self {
            merge_slashes: limits.merge_slashes,
            allow_encoded_slashes: limits.allow_encoded_slashes,
        }
    }
}

/// Why a path is refused: answered 400, counted as `reason="bad_path"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub(crate) enum PathError {
    /// Neither `/…` nor the asterisk-form of an OPTIONS request.
    NotAbsolute,
    /// More `..` segments than there are segments before them: `/../x`.
    AboveRoot,
    /// `%2F` where the listener does not allow encoded slashes.
    EncodedSlash,
    /// A raw NUL byte or `%00`.
    Nul,
    /// A `%` not followed by two hex digits.
    BadEscape,
}

impl PathError {
    /// What the client is told, without echoing its bytes.
    fn message(self) -> &'static str {
        match self {
            Self::NotAbsolute => "the path does not start with `/`",
            Self::AboveRoot => "the path climbs above `/`",
            Self::EncodedSlash => "the path contains an encoded `/`",
            Self::Nul => "the path contains a NUL byte",
            Self::BadEscape => "the path contains a malformed percent-escape",
        }
    }
}

impl From<PathError> for Rejection {
    fn from(refused: PathError) -> Self {
        Self {
            status: 400,
            message: refused.message(),
            reason: Reason::BadPath,
        }
    }
}

/// The request target's path (`uri.path()`, no query) as weir routes and forwards it:
/// [`normalize`], except that the asterisk-form `*` of an OPTIONS request (RFC 9112
/// §3.2.4) is kept as it is.
pub(crate) fn normalize_target<'p>(
    method: &http::Method,
    path: &'p str,
    rules: PathRules,
) -> Result<Cow<'p, str>, PathError> {
    if path == "*" && method == http::Method::OPTIONS {
        return Ok(Cow::Borrowed(path));
    }
    normalize(path, rules)
}

/// `path` normalized as the module says: borrowed when it already was normal, rewritten
/// otherwise, or why it is refused.
pub(crate) fn normalize(path: &str, rules: PathRules) -> Result<Cow<'_, str>, PathError> {
    if scan(path, rules)? {
        Ok(Cow::Borrowed(path))
    } else {
        rewrite(path, rules).map(Cow::Owned)
    }
}

/// Checks every byte of `path` once: the first error, or whether it is already normal.
fn scan(path: &str, rules: PathRules) -> Result<bool, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let mut normal = true;
    let mut segment = 1;
    let mut at = 1;
    // Straight to the next byte that matters: most bytes of most paths are plain.
    while let Some(skip) = bytes
        .get(at..)
        .and_then(|rest| rest.iter().position(is_special))
    {
        at += skip;
        if bytes[at] == b'/' {
            let merged = at == segment && rules.merge_slashes;
            normal &= !(merged || is_dots(&bytes[segment..at]));
            segment = at + 1;
            at += 1;
        } else if bytes[at] == b'%' {
            let escape = Escape::read(bytes, at, rules)?;
            normal &= escape.canonical && !is_unreserved(escape.byte);
            at += 3;
        } else {
            return Err(PathError::Nul);
        }
    }
    Ok(normal && !is_dots(&bytes[segment..]))
}

/// The normal form of `path`, which [`scan`] found to differ from it.
fn rewrite(path: &str, rules: PathRules) -> Result<String, PathError> {
    let decoded = decode(path, rules)?;
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = decoded.get(1..).unwrap_or_default().split('/').peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => {}
            ".." => {
                kept.pop().ok_or(PathError::AboveRoot)?;
            }
            "" if rules.merge_slashes && !last => {}
            _ => kept.push(segment),
        }
        // `/a/b/..` is the folder `/a/`, not the file `/a`.
        if last && is_dots(segment.as_bytes()) {
            kept.push("");
        }
    }
    let mut normal = String::with_capacity(decoded.len());
    for segment in &kept {
        normal.push('/');
        normal.push_str(segment);
    }
    if normal.is_empty() {
        normal.push('/');
    }
    Ok(normal)
}

/// `path` with unreserved characters decoded and other escapes in uppercase hex; no other
/// byte changes.
fn decode(path: &str, rules: PathRules) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    let mut decoded = String::with_capacity(path.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(&byte) = bytes.get(at) {
        match byte {
            b'%' => {
                let escape = Escape::read(bytes, at, rules)?;
                decoded.push_str(&path[copied..at]);
                if is_unreserved(escape.byte) {
                    decoded.push(char::from(escape.byte));
                } else {
                    decoded.push('%');
                    decoded.push(char::from(HEX[usize::from(escape.byte >> 4)]));
                    decoded.push(char::from(HEX[usize::from(escape.byte & 0xf)]));
                }
                at += 3;
                copied = at;
            }
            0 => return Err(PathError::Nul),
            _ => at += 1,
        }
    }
    decoded.push_str(&path[copied..]);
    Ok(decoded)
}

/// Uppercase hex digits, by value.
const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// One `%XY` escape.
struct Escape {
    /// The byte it encodes.
    byte: u8,
    /// Written with uppercase hex digits already.
    canonical: bool,
}

impl Escape {
    /// The escape whose `%` is at `bytes[at]`, or why the rules refuse it.
    fn read(bytes: &[u8], at: usize, rules: PathRules) -> Result<Self, PathError> {
        let digits = bytes.get(at + 1..at + 3).ok_or(PathError::BadEscape)?;
        let (Some(high), Some(low)) = (hex(digits[0]), hex(digits[1])) else {
            return Err(PathError::BadEscape);
        };
        let byte = high << 4 | low;
        match byte {
            0 => Err(PathError::Nul),
            b'/' if !rules.allow_encoded_slashes => Err(PathError::EncodedSlash),
            _ => Ok(Self {
                byte,
                canonical: !digits.iter().any(u8::is_ascii_lowercase),
            }),
        }
    }
}

/// The value of a hex digit, either case.
fn hex(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// RFC 3986 §2.3's unreserved characters: the ones an escape never needs to hide.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// A byte [`scan`] stops at: a separator, an escape or a NUL.
fn is_special(byte: &u8) -> bool {
    matches!(byte, b'/' | b'%' | 0)
}

/// A `.` or `..` segment.
fn is_dots(segment: &[u8]) -> bool {
    matches!(segment, b"." | b"..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEEP_SLASHES: PathRules = PathRules {
        merge_slashes: false,
        allow_encoded_slashes: false,
    };
    const ENCODED_SLASHES: PathRules = PathRules {
        merge_slashes: true,
        allow_encoded_slashes: true,
    };

    /// The rules of the default `limits`.
    fn defaults() -> PathRules {
        PathRules::from(&Limits::default())
    }

    fn normal(path: &str) -> Result<Cow<'_, str>, PathError> {
        normalize(path, defaults())
    }

    #[test]
    fn a_normal_path_is_returned_borrowed() {
        for path in [
            "/",
            "/admin",
            "/a/b/",
            "/a.b/c..d/...",
            "/.well-known/acme-challenge/x",
            "/a%20b/%C3%A9",
            "/%252e%252e/x",
            "/caf\u{e9}",
        ] {
            assert!(
                matches!(normal(path), Ok(Cow::Borrowed(p)) if p == path),
                "{path}"
            );
        }
        assert!(matches!(
            normalize("/a//b", KEEP_SLASHES),
            Ok(Cow::Borrowed("/a//b"))
        ));
    }

    #[test]
    fn unreserved_escapes_are_decoded_and_the_others_uppercased() {
        for (path, expected) in [
            ("/%61dmin", "/admin"),
            ("/%41%5a%30%2D%2e%5F%7e", "/AZ0-._~"),
            ("/a%2fb", "/a%2Fb"),
            ("/%c3%a9", "/%C3%A9"),
            ("/%3f%23", "/%3F%23"),
            ("/%252e%252e/x", "/%252e%252e/x"),
            ("/%25%32%65", "/%252e"),
        ] {
            let rules = ENCODED_SLASHES;
            assert_eq!(normalize(path, rules).as_deref(), Ok(expected), "{path}");
        }
    }

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_says() {
        for (path, expected) in [
            ("/public/../admin", "/admin"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/b/.", "/a/b/"),
            ("/a/.", "/a/"),
            ("/.", "/"),
            ("/a/..", "/"),
            ("/a/%2e%2E/b", "/b"),
            ("/a/.%2e", "/"),
            ("/a/b/../../c/", "/c/"),
        ] {
            assert_eq!(normal(path).as_deref(), Ok(expected), "{path}");
        }
    }

    #[test]
    fn slashes_are_merged_only_when_asked() {
        for (path, merged, kept) in [
            ("//admin", "/admin", "//admin"),
            ("/a//b///c", "/a/b/c", "/a//b///c"),
            ("/a//", "/a/", "/a//"),
            ("//", "/", "//"),
            ("/a//../b", "/b", "/a/b"),
            ("//./x", "/x", "//x"),
        ] {
            assert_eq!(normal(path).as_deref(), Ok(merged), "{path}");
            let unmerged = normalize(path, KEEP_SLASHES);
            assert_eq!(unmerged.as_deref(), Ok(kept), "{path} unmerged");
        }
    }

    #[test]
    fn each_refusal_has_its_reason() {
        for (path, error) in [
            ("admin", PathError::NotAbsolute),
            ("", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("/../x", PathError::AboveRoot),
            ("/..", PathError::AboveRoot),
            ("/a/../../x", PathError::AboveRoot),
            ("/%2e%2e/x", PathError::AboveRoot),
            ("/a%2Fb", PathError::EncodedSlash),
            ("/a%2fb", PathError::EncodedSlash),
            ("/a%00", PathError::Nul),
            ("/a\0b", PathError::Nul),
            ("/a/../b\0", PathError::Nul),
            ("/%", PathError::BadEscape),
            ("/%1", PathError::BadEscape),
            ("/%G1", PathError::BadEscape),
            ("/%zz", PathError::BadEscape),
            ("/%\u{e9}", PathError::BadEscape),
            ("/a/../%", PathError::BadEscape),
        ] {
            assert_eq!(normal(path), Err(error), "{path:?}");
        }
    }

    #[test]
    fn an_allowed_encoded_slash_is_not_a_separator() {
        for (path, expected) in [
            ("/a%2Fb", "/a%2Fb"),
            ("/a%2F../b", "/a%2F../b"),
            ("/a/%2F/../b", "/a/b"),
        ] {
            let got = normalize(path, ENCODED_SLASHES);
            assert_eq!(got.as_deref(), Ok(expected), "{path}");
        }
    }

    #[test]
    fn only_options_may_use_the_asterisk_form() {
        let rules = defaults();
        let options = normalize_target(&http::Method::OPTIONS, "*", rules);
        assert_eq!(options.as_deref(), Ok("*"));
        let get = normalize_target(&http::Method::GET, "*", rules);
        assert_eq!(get, Err(PathError::NotAbsolute));
        let path = normalize_target(&http::Method::OPTIONS, "/a/../b", rules);
        assert_eq!(path.as_deref(), Ok("/b"));
    }

    /// Paths made mostly of the pieces normalization acts on.
    fn tricky_path() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("/".to_string()),
            Just(".".to_string()),
            Just("..".to_string()),
            Just("%2e".to_string()),
            Just("%2E".to_string()),
            Just("%2f".to_string()),
            Just("%25".to_string()),
            Just("%41".to_string()),
            Just("%c3".to_string()),
            Just("%".to_string()),
            "[a-z]{1,3}",
            "[ -~]",
        ];
        proptest::collection::vec(piece, 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
    }

    fn rules() -> impl Strategy<Value = PathRules> {
        (any::<bool>(), any::<bool>()).prop_map(|(merge_slashes, allow_encoded_slashes)| {
            PathRules {
                merge_slashes,
                allow_encoded_slashes,
            }
        })
    }

    /// What every normalized path satisfies.
    fn assert_normal(path: &str, rules: PathRules) {
        assert!(path.starts_with('/'), "{path:?}");
        for segment in path[1..].split('/') {
            assert!(!is_dots(segment.as_bytes()), "dot segment in {path:?}");
        }
        assert!(
            !(rules.merge_slashes && path.contains("//")),
            "`//` in {path:?}"
        );
        assert!(!path.contains('\0'), "NUL in {path:?}");
    }

    proptest! {
        #[test]
        fn normalizing_is_idempotent_and_stays_under_the_root(
            path in tricky_path(),
            rules in rules(),
        ) {
            if let Ok(once) = normalize(&path, rules) {
                assert_normal(&once, rules);
                // Borrowed exactly when nothing changed: the scan misses nothing.
                prop_assert_eq!(matches!(once, Cow::Borrowed(_)), once == path);
                let twice = normalize(&once, rules);
                prop_assert!(matches!(twice, Ok(Cow::Borrowed(p)) if p == once));
            }
        }

        #[test]
        fn any_input_is_answered_without_panicking(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            rules in rules(),
        ) {
            let raw = String::from_utf8_lossy(&bytes);
            for path in [raw.to_string(), format!("/{raw}")] {
                if let Ok(once) = normalize(&path, rules) {
                    assert_normal(&once, rules);
                    let twice = normalize(&once, rules);
                    prop_assert_eq!(twice.as_deref(), Ok(&*once));
                }
            }
        }
    }
}
