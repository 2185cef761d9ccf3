//! `limits:` as written, at the top level and on an HTTP listener: what a request may look
//! like and how long a connection may take over it. Every key is optional; a listener's
//! keys override the top level's one by one.

use super::{RawDuration, RawSize};
use serde::Deserialize;

/// The keys of `limits:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(in crate::config) struct RawLimits {
    /// The whole request head: request line and every header field.
    pub max_header_size: Option<RawSize>,
    /// One header field line, name and value.
    pub max_header_line: Option<RawSize>,
    /// Header fields in one request.
    pub max_headers: Option<usize>,
    /// The request target (path and query) as sent.
    pub max_uri_length: Option<RawSize>,
    /// Time to receive a whole request head.
    pub header_timeout: Option<RawDuration>,
    /// How long a connection may wait idle for its next request.
    pub keepalive_timeout: Option<RawDuration>,
    /// Requests one connection may carry before weir closes it.
    pub max_requests_per_connection: Option<u32>,
    /// `//` in a path is read as `/`.
    pub merge_slashes: Option<bool>,
    /// `%2F` may stand in a path (as a literal slash, not a separator).
    pub allow_encoded_slashes: Option<bool>,
}
