//! Validation of `limits:`: sizes and counts within what Pingora's parser itself accepts,
//! durations longer than zero, and a listener's keys laid over the top level's.

use super::super::report::{join_key, Report};
use super::super::schema::RawLimits;
use super::super::*;
use super::values::{duration, size};

/// `limits:` at `path`, each key not given taken from `base` (the defaults at the top
/// level; the top level's on a listener).
pub(super) fn limits(raw: &RawLimits, base: &Limits, path: &str, report: &mut Report) -> Limits {
    let bytes = |raw: Option<&str>, key: &str, max: usize, base: usize, report: &mut Report| {
        let path = join_key(path, key);
        let Some(bytes) = raw.and_then(|r| size(r, &path, report)) else {
            return base;
        };
        match usize::try_from(bytes).ok().filter(|b| *b <= max) {
            Some(bytes) => bytes,
            None => {
                report.value(
                    &path,
                    format!("must be at most {max} bytes (the parser's own limit)"),
                );
                base
            }
        }
    };
    let seconds = |raw: Option<&str>, key: &str, base: Duration, report: &mut Report| {
        duration(raw, &join_key(path, key), base, report)
    };
    let max_headers = match raw.max_headers {
        None => base.max_headers,
        Some(n @ 1..=MAX_HEADERS) => n,
        Some(_) => {
            let message = format!("must be from 1 to {MAX_HEADERS} (the parser's own limit)");
            report.value(&join_key(path, "max_headers"), message);
            base.max_headers
        }
    };
    let max_requests = match raw.max_requests_per_connection {
        None => base.max_requests_per_connection,
        Some(0) => {
            let message = "must be at least 1 (1 closes every connection after one request)";
            report.value(&join_key(path, "max_requests_per_connection"), message);
            base.max_requests_per_connection
        }
        Some(n) => n,
    };
    let keepalive_timeout = seconds(
        raw.keepalive_timeout.as_deref(),
        "keepalive_timeout",
        base.keepalive_timeout,
        report,
    );
    if keepalive_timeout.subsec_nanos() != 0 {
        let message = "must be a whole number of seconds, e.g. 75s";
        report.value(&join_key(path, "keepalive_timeout"), message);
    }
    Limits {
        max_header_size: bytes(
            raw.max_header_size.as_deref(),
            "max_header_size",
            MAX_HEADER_SIZE,
            base.max_header_size,
            report,
        ),
        max_header_line: bytes(
            raw.max_header_line.as_deref(),
            "max_header_line",
            MAX_HEADER_SIZE,
            base.max_header_line,
            report,
        ),
        max_headers,
        max_uri_length: bytes(
            raw.max_uri_length.as_deref(),
            "max_uri_length",
            MAX_HEADER_SIZE,
            base.max_uri_length,
            report,
        ),
        header_timeout: seconds(
            raw.header_timeout.as_deref(),
            "header_timeout",
            base.header_timeout,
            report,
        ),
        keepalive_timeout,
        max_requests_per_connection: max_requests,
        merge_slashes: raw.merge_slashes.unwrap_or(base.merge_slashes),
        allow_encoded_slashes: raw
            .allow_encoded_slashes
            .unwrap_or(base.allow_encoded_slashes),
    }
}
