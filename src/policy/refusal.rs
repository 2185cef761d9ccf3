//! Refusals: what a request a policy refused is answered (status, message, headers), what it
//! is counted as, and the log line, at most one a second, that says so.

use super::{rate_limit, Oversize, BODY_TOO_LARGE};
use crate::metrics::{Denial, Denials};
use http::{HeaderName, HeaderValue};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a refusal is counted and logged as.
#[derive(Debug)]
pub(crate) enum Cause {
    /// An address, credential or CORS rule: `weir_auth_failures_total{reason}` and a log line.
    Policy(Denial),
    /// A rate limit whose key is `by`: `weir_ratelimited_total{by}`; not logged (a client
    /// over its limit would flood the log; the access log has its 429s).
    RateLimited(&'static str),
    /// Redis failed under `on_store_error: deny`, counted as a store error already.
    StoreDown,
    /// A declared body over the limit: a log line.
    Oversize(Oversize),
}

/// A request a policy refused: what it is answered, and why.
#[derive(Debug)]
pub(crate) struct Denied<'a> {
    /// Why.
    pub cause: Cause,
    /// 401, 403, 413, 429 or 503.
    pub status: u16,
    /// What the answer's body says.
    pub message: &'static str,
    /// Headers of the answer: `WWW-Authenticate` of a 401.
    pub headers: Cow<'a, [(HeaderName, HeaderValue)]>,
}

impl<'a> Denied<'a> {
    pub(super) fn new(denial: Denial, challenges: &'a [(HeaderName, HeaderValue)]) -> Self {
        let (status, message) = match denial {
            Denial::Missing => (401, "credentials are required"),
            Denial::BadKey => (401, "the API key is not valid"),
            Denial::BadPassword => (401, "the user name or password is not valid"),
            Denial::BadToken => (401, "the token is not valid"),
            Denial::UnknownConsumer => (401, "the token names no known consumer"),
            Denial::Forbidden => (403, "this consumer may not use this route"),
            Denial::Ip => (403, "this client address may not use this route"),
            Denial::Cors => (
                403,
                "this origin may not call this route from a browser page",
            ),
        };
        Self {
            cause: Cause::Policy(denial),
            status,
            message,
            headers: Cow::Borrowed(if status == 401 { challenges } else { &[] }),
        }
    }

    /// Counts the refusal in `denials` (its route's, or the unrouted ones) and logs it when
    /// its cause is worth a line.
    pub(crate) fn record(&self, denials: &Denials, request_id: &str, client: IpAddr, route: &str) {
        match &self.cause {
            Cause::Policy(denial) => {
                denials.count(*denial);
                log_refused(request_id, client, route, &denial.label());
            }
            Cause::RateLimited(by) => denials.count_limited(by),
            Cause::StoreDown => {}
            Cause::Oversize(oversize) => log_refused(request_id, client, route, oversize),
        }
    }
}

impl From<rate_limit::Refusal> for Denied<'_> {
    fn from(refusal: rate_limit::Refusal) -> Self {
        match refusal {
            rate_limit::Refusal::Limited { by, headers } => Self {
                cause: Cause::RateLimited(by),
                status: 429,
                message: "rate limit exceeded",
                headers: Cow::Owned(headers),
            },
            rate_limit::Refusal::StoreDown => Self {
                cause: Cause::StoreDown,
                status: 503,
                message: "the rate-limit store is unavailable",
                headers: Cow::Borrowed(&[]),
            },
        }
    }
}

impl From<Oversize> for Denied<'_> {
    fn from(oversize: Oversize) -> Self {
        Self {
            cause: Cause::Oversize(oversize),
            status: 413,
            message: BODY_TOO_LARGE,
            headers: Cow::Borrowed(&[]),
        }
    }
}

/// Seconds since the epoch of the last refusal logged, and refusals not logged since.
static LAST_LOGGED: AtomicU64 = AtomicU64::new(0);
static UNLOGGED: AtomicU64 = AtomicU64::new(0);

/// Logs a refusal for `why`, at most one line a second (a credential-stuffing client must not
/// flood the log), saying how many were not logged; never the credential.
pub(crate) fn log_refused(
    request_id: &str,
    client: IpAddr,
    route: &str,
    why: &dyn std::fmt::Display,
) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST_LOGGED.load(Ordering::Relaxed);
    if now <= last
        || LAST_LOGGED
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        UNLOGGED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let unlogged = UNLOGGED.swap(0, Ordering::Relaxed);
    let route = if route.is_empty() { "-" } else { route };
    let also = if unlogged > 0 {
        format!(" ({unlogged} more refusal(s) not logged in the last second)")
    } else {
        String::new()
    };
    log::warn!("{request_id} refused: {why} from {client} on route `{route}`{also}");
}
