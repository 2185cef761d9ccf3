//! Request framing that Pingora's parser lets through and weir refuses: a head that gives
//! its body's length two ways, which a server behind weir could read differently from weir
//! (the request smuggling shapes). Pingora already refuses differing `Content-Length`
//! values, a `Transfer-Encoding` whose last coding is not `chunked`, and malformed chunks;
//! what it accepts of the rest, this module refuses, as nginx does (RFC 9112 §6.1 allows a
//! server to refuse a request with both fields, and a sender may apply `chunked` only once).

use super::{Reason, Rejection};
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use pingora::http::RequestHeader;

/// `Err` when `req` gives its body's length two ways: 400, and the connection closed. `raw`
/// gives the head as it arrived (HTTP/1; `None` for HTTP/2, which has no
/// `Transfer-Encoding`), and is called only for a request with `Transfer-Encoding`, so the
/// check costs nothing for the others.
pub(crate) fn check<B: AsRef<[u8]>>(
    req: &RequestHeader,
    raw: impl FnOnce() -> Option<B>,
) -> Result<(), Rejection> {
    let encodings = req.headers.get_all(TRANSFER_ENCODING);
    if encodings.iter().next().is_none() {
        return Ok(());
    }
    let chunked = encodings
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .filter(|coding| coding.trim_ascii().eq_ignore_ascii_case(b"chunked"))
        .count();
    if chunked > 1 {
        return Err(refused(
            "chunked may be applied to a request body only once",
        ));
    }
    // Pingora drops Content-Length from the parsed head when Transfer-Encoding is there
    // too: the raw head still shows it.
    if req.headers.contains_key(CONTENT_LENGTH)
        || raw().is_some_and(|r| has_content_length(r.as_ref()))
    {
        return Err(refused(
            "a request may not carry both Content-Length and Transfer-Encoding",
        ));
    }
    Ok(())
}

fn refused(message: &'static str) -> Rejection {
    Rejection {
        status: 400,
        message,
        reason: Reason::Framing,
    }
}

/// Whether the raw head `raw` (request line, fields, blank line; CRLF or LF line ends, as
/// Pingora accepted it) has a `Content-Length` field.
fn has_content_length(raw: &[u8]) -> bool {
    raw.split(|&b| b == b'\n').skip(1).any(|line| {
        line.split(|&b| b == b':')
            .next()
            .is_some_and(|name| name.eq_ignore_ascii_case(CONTENT_LENGTH.as_str().as_bytes()))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn refused(req: &RequestHeader, raw: Option<&[u8]>) -> Option<&'static str> {
        check(req, || raw).err().map(|r| r.message)
    }

    fn head(fields: &[(&str, &str)]) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/", None).unwrap();
        for (name, value) in fields {
            req.append_header(name.to_string(), *value).unwrap();
        }
        req
    }

    #[test]
    fn one_chunked_coding_passes_and_twice_is_refused() {
        let te = |v| head(&[("Transfer-Encoding", v)]);
        let twice = Some("chunked may be applied to a request body only once");
        assert_eq!(refused(&te("chunked"), None), None);
        assert_eq!(refused(&te("gzip, Chunked"), None), None);
        assert_eq!(refused(&te("chunked , chunked"), None), twice);
        let fields = [
            ("Transfer-Encoding", "chunked"),
            ("Transfer-Encoding", "chunked"),
        ];
        assert_eq!(refused(&head(&fields), None), twice);
    }

    #[test]
    fn content_length_beside_transfer_encoding_is_refused_from_the_raw_head() {
        let req = head(&[("Transfer-Encoding", "chunked")]);
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\ncontent-LENGTH: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        let both = Some("a request may not carry both Content-Length and Transfer-Encoding");
        assert_eq!(refused(&req, Some(raw)), both);
        let lf = b"POST / HTTP/1.1\nTransfer-Encoding: chunked\nContent-Length: 5\n\n";
        assert_eq!(refused(&req, Some(lf)), both);
        let clean = b"POST / HTTP/1.1\r\nHost: a\r\nX-Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(refused(&req, Some(clean)), None);
        // Without Transfer-Encoding, Content-Length alone is Pingora's to check.
        let cl = head(&[("Content-Length", "5")]);
        assert_eq!(refused(&cl, Some(raw)), None);
    }
}
