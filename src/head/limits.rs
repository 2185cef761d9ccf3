//! The limits of `limits:` on a parsed request head, and the Host rule of RFC 9112 §3.2.
//! Pingora's parser has already refused what does not parse, and anything over its own
//! caps (1 MiB of head, 256 fields); these are the operator's tighter ones, checked in one
//! pass over the fields.

use super::{Reason, Rejection};
use crate::config::Limits;
use http::{header, Version};
use pingora::http::RequestHeader;

/// Bytes a request line takes besides its method and target: two spaces, `HTTP/1.1`, CRLF.
const REQUEST_LINE_EXTRA: usize = 12;
/// Bytes a field line takes besides its name and value: `: ` and CRLF.
const FIELD_LINE_EXTRA: usize = 4;

/// `Err` with the first limit `req` breaks: the target's length (414), the number of
/// fields, one field's line or the whole head (431), or the Host rules (400).
pub(crate) fn check(req: &RequestHeader, limits: &Limits) -> Result<(), Rejection> {
    let target = req.raw_path().len();
    if target > limits.max_uri_length {
        return Err(Rejection {
            status: 414,
            message: "the request target is longer than this server accepts",
            reason: Reason::UriLength,
        });
    }
    if req.headers.len() > limits.max_headers {
        return Err(too_large(
            "the request has more header fields than this server accepts",
            Reason::HeaderCount,
        ));
    }
    let mut head = req.method.as_str().len() + target + REQUEST_LINE_EXTRA + 2;
    for (name, value) in &req.headers {
        let line = name.as_str().len() + value.len() + FIELD_LINE_EXTRA;
        if line > limits.max_header_line {
            return Err(too_large(
                "a request header field is longer than this server accepts",
                Reason::HeaderLine,
            ));
        }
        head += line;
    }
    if head > limits.max_header_size {
        return Err(too_large(
            "the request header fields are larger than this server accepts",
            Reason::HeaderSize,
        ));
    }
    host(req)
}

/// RFC 9112 §3.2: an HTTP/1.1 request has a Host, and a Host is a host with an optional
/// port. (Pingora's parser already refuses two Hosts, user information in one, and a Host
/// that differs from an absolute-form target.) An HTTP/2 request names its authority in
/// `:authority` instead.
fn host(req: &RequestHeader) -> Result<(), Rejection> {
    let message = match req.headers.get(header::HOST) {
        None if req.version == Version::HTTP_11 => "an HTTP/1.1 request needs a Host header",
        Some(host) if !is_host(host.as_bytes()) => {
            "the Host header is not a host name or address with an optional port"
        }
        _ => return Ok(()),
    };
    Err(Rejection {
        status: 400,
        message,
        reason: Reason::Host,
    })
}

/// A URI authority with a host: what a Host header may hold.
fn is_host(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_ok_and(|a| !a.host().is_empty())
}

fn too_large(message: &'static str, reason: Reason) -> Rejection {
    Rejection {
        status: 431,
        message,
        reason,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn request(version: Version, headers: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("GET", b"/index.html", None).unwrap();
        req.set_version(version);
        for (name, value) in headers {
            req.append_header(name.to_string(), *value).unwrap();
        }
        req
    }

    fn reason(req: &RequestHeader, limits: &Limits) -> Option<Reason> {
        check(req, limits).err().map(|r| r.reason)
    }

    #[test]
    fn http_11_needs_a_valid_host() {
        let limits = Limits::default();
        let ok = request(Version::HTTP_11, &[("host", "example.com:8080")]);
        assert_eq!(reason(&ok, &limits), None);
        for bad in [
            request(Version::HTTP_11, &[]),
            request(Version::HTTP_11, &[("host", "exa mple.com")]),
            request(Version::HTTP_10, &[("host", "example.com/x")]),
            request(Version::HTTP_11, &[("host", "")]),
        ] {
            assert_eq!(reason(&bad, &limits), Some(Reason::Host), "{bad:?}");
        }
        assert_eq!(reason(&request(Version::HTTP_10, &[]), &limits), None);
        assert_eq!(reason(&request(Version::HTTP_2, &[]), &limits), None);
    }

    #[test]
    fn each_limit_is_a_bound_not_an_approximation() {
        let host = ("host", "a");
        let limits = Limits {
            max_header_line: 10 + FIELD_LINE_EXTRA,
            max_headers: 2,
            max_uri_length: "/index.html".len(),
            ..Limits::default()
        };
        let at = request(Version::HTTP_11, &[host, ("x-abcd", "1234")]);
        assert_eq!(reason(&at, &limits), None);
        let line = request(Version::HTTP_11, &[host, ("x-abcd", "12345")]);
        assert_eq!(reason(&line, &limits), Some(Reason::HeaderLine));
        let count = request(Version::HTTP_11, &[host, ("x-a", "1"), ("x-b", "2")]);
        assert_eq!(reason(&count, &limits), Some(Reason::HeaderCount));
        let uri = Limits {
            max_uri_length: "/index.htm".len(),
            ..limits
        };
        assert_eq!(reason(&at, &uri), Some(Reason::UriLength));
        let head = "GET /index.html HTTP/1.1\r\nhost: a\r\nx-abcd: 1234\r\n\r\n".len();
        let size = |max_header_size| Limits {
            max_header_size,
            ..limits
        };
        assert_eq!(reason(&at, &size(head)), None);
        assert_eq!(reason(&at, &size(head - 1)), Some(Reason::HeaderSize));
    }
}
