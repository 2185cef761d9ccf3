//! Body limits (`max_body_size`): the smaller of a listener's and a route's applies. A
//! declared `Content-Length` over it is refused before anything goes upstream (an
//! `Expect: 100-continue` request gets the 413 instead of a 100, as weir answers before it
//! forwards the request); a body without one (chunked, HTTP/2 DATA) is counted as it arrives,
//! and the piece that would cross the limit is never forwarded: the upstream request is
//! abandoned unfinished (no final chunk), so the instance cannot take it for a whole one.

use super::Guard;
use pingora::http::RequestHeader;
use pingora::{Error, ErrorType};

/// What the 413 says.
pub(crate) const BODY_TOO_LARGE: &str = "the request body is larger than this route accepts";

/// The limit of a request on `listener` and `route`: the smaller of the two set.
pub(crate) fn body_limit(listener: Option<&Guard>, route: Option<&Guard>) -> Option<u64> {
    listener
        .into_iter()
        .chain(route)
        .filter_map(|g| g.max_body_size)
        .min()
}

/// A body over its limit.
#[derive(Debug, thiserror::Error)]
#[error("request body of {size} bytes {how} over the limit of {limit}")]
pub(crate) struct Oversize {
    /// What the request declared, or what it had sent so far.
    size: u64,
    /// "declared" or "received".
    how: &'static str,
    /// The limit.
    limit: u64,
}

/// The body limit step, before anything goes upstream: refuses a `Content-Length` over
/// `limit`. Pingora has already answered 400 to a request whose `Content-Length` values
/// disagree or are not numbers, so the largest value is the declared one.
pub(crate) fn check_declared(limit: Option<u64>, req: &RequestHeader) -> Result<(), Oversize> {
    let Some(limit) = limit else {
        return Ok(());
    };
    let declared = req
        .headers
        .get_all(http::header::CONTENT_LENGTH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .max();
    match declared {
        Some(size) if size > limit => Err(Oversize {
            size,
            how: "declared",
            limit,
        }),
        _ => Ok(()),
    }
}

/// Counts the body as it arrives: `received` bytes so far (whatever their framing). Over
/// `limit`, the error that ends the request: a 413 when nothing was answered yet, a closed
/// connection otherwise; the client's doing, so the instance is not blamed and nothing is
/// retried.
pub(crate) fn check_received(limit: u64, received: usize) -> Result<(), Oversize> {
    let size = u64::try_from(received).unwrap_or(u64::MAX);
    if size > limit {
        return Err(Oversize {
            size,
            how: "received",
            limit,
        });
    }
    Ok(())
}

impl Oversize {
    /// The Pingora error that ends a request whose body crossed the limit mid-stream.
    pub(crate) fn into_error(self) -> Box<Error> {
        let mut e = Error::because(ErrorType::HTTPStatus(413), BODY_TOO_LARGE, self);
        e.as_down();
        e.set_retry(false);
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(max: Option<u64>) -> Guard {
        Guard {
            max_body_size: max,
            ..Guard::default()
        }
    }

    fn request(lengths: &[&str]) -> RequestHeader {
        let mut req = RequestHeader::build("POST", b"/", None).unwrap();
        for l in lengths {
            req.append_header("content-length", *l).unwrap();
        }
        req
    }

    #[test]
    fn the_smaller_limit_applies() {
        let (small, large, none) = (guard(Some(10)), guard(Some(20)), guard(None));
        assert_eq!(body_limit(Some(&small), Some(&large)), Some(10));
        assert_eq!(body_limit(Some(&large), Some(&small)), Some(10));
        assert_eq!(body_limit(Some(&none), Some(&large)), Some(20));
        assert_eq!(body_limit(None, Some(&none)), None);
    }

    #[test]
    fn a_declared_length_over_the_limit_is_refused() {
        assert!(check_declared(Some(10), &request(&["10"])).is_ok());
        assert!(check_declared(Some(10), &request(&[])).is_ok());
        assert!(check_declared(None, &request(&["11"])).is_ok());
        let refused = check_declared(Some(10), &request(&["11"])).unwrap_err();
        assert_eq!(refused.size, 11);
        assert!(check_declared(Some(10), &request(&["11", "11"])).is_err());
        assert!(check_declared(Some(10), &request(&["11, 11"])).is_err());
        let huge = u64::MAX.to_string();
        assert!(check_declared(Some(10), &request(&[&huge])).is_err());
    }

    #[test]
    fn a_body_is_refused_once_it_crosses_the_limit() {
        assert!(check_received(10, 10).is_ok());
        let e = check_received(10, 11).unwrap_err().into_error();
        assert_eq!(e.etype(), &ErrorType::HTTPStatus(413));
        assert!(!e.retry());
        assert_eq!(e.esource(), &pingora::ErrorSource::Downstream);
    }
}
