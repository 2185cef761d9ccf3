//! What weir accepts of a request head before anything routes it: limits an operator sets
//! on its size and shape, the Host rules of HTTP/1.1, and how the path is read. A refused
//! head is a [`Rejection`]: a status, a message for the client, and the reason it is
//! counted under in `weir_rejected_requests_total{listener,reason}`.

mod framing;
mod limits;

pub(crate) use framing::check as check_framing;
pub(crate) use limits::check;

/// Why a request was refused before routing; the metric's `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The whole head is over `max_header_size`.
    HeaderSize,
    /// One header field line is over `max_header_line`.
    HeaderLine,
    /// More header fields than `max_headers`.
    HeaderCount,
    /// The request target is over `max_uri_length`.
    UriLength,
    /// An HTTP/1.1 request without a Host, or a Host that is not a host.
    Host,
    /// The head did not arrive within `header_timeout`.
    HeaderTimeout,
    /// The body's length given two ways (`Content-Length` beside `Transfer-Encoding`,
    /// `chunked` twice): the shapes of request smuggling.
    Framing,
}

impl Reason {
    /// Every reason, so that each listener's series exist from the start.
    pub(crate) const ALL: [Self; 7] = [
        Self::HeaderSize,
        Self::HeaderLine,
        Self::HeaderCount,
        Self::UriLength,
        Self::Host,
        Self::HeaderTimeout,
        Self::Framing,
    ];

    /// The `reason` label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::HeaderSize => "header_size",
            Self::HeaderLine => "header_line",
            Self::HeaderCount => "header_count",
            Self::UriLength => "uri_length",
            Self::Host => "host",
            Self::HeaderTimeout => "header_timeout",
            Self::Framing => "framing",
        }
    }
}

/// A request head refused before routing: answered with `status` and `message`, and the
/// connection closed, since a client that sent it may not frame what follows as weir does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejection {
    /// 400, 414 or 431.
    pub status: u16,
    /// Says what was wrong, without echoing the client's bytes.
    pub message: &'static str,
    /// The metric's label.
    pub reason: Reason,
}
