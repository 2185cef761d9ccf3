//! Responses weir writes itself: 404 for no route and the error statuses, each a small JSON
//! body with the request id and nothing about the inside of the deployment.

use crate::upstream::deadline;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType, Result};

/// Seconds a client is told to wait after a 503.
pub(super) const RETRY_AFTER_SECS: &str = "1";

/// The status a failed request is answered with: 504 when the upstream timed out, 502 when it
/// failed otherwise, a policy's own status where one was set, 0 when the client is gone.
/// A connection refused by an instance tried only in panic mode is a 503: the real cause is
/// that no instance was available.
pub(super) fn status_for(e: &Error, panicked: bool) -> u16 {
    match e.etype() {
        ErrorType::HTTPStatus(code) => *code,
        t if t == &deadline::TOTAL_EXPIRED => 504,
        ErrorType::ConnectRefused
        | ErrorType::ConnectError
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectTimedout
            if panicked =>
        {
            503
        }
        ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if e.esource() == &ErrorSource::Upstream =>
        {
            504
        }
        _ => match e.esource() {
            ErrorSource::Upstream => 502,
            ErrorSource::Downstream => match e.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                _ => 400,
            },
            ErrorSource::Internal | ErrorSource::Unset => 500,
        },
    }
}

/// What the body of the `status` answer to the failure `e` says.
pub(super) fn describe(e: &Error, status: u16) -> &'static str {
    if e.etype() == &deadline::TOTAL_EXPIRED {
        deadline::TOTAL_EXPIRED_MESSAGE
    } else {
        message(status)
    }
}

/// What the body of a `status` answer says when the cause has nothing more precise.
pub(super) fn message(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        404 => "no route matches this request",
        413 => crate::policy::BODY_TOO_LARGE,
        502 => "the upstream failed to answer",
        503 => "no upstream instance is available",
        504 => "the upstream timed out",
        _ => "internal error",
    }
}

/// Writes a redirect to `location`, with the request id header and no body.
pub(super) async fn redirect(
    session: &mut Session,
    status: u16,
    location: &str,
    request_id_header: &http::HeaderName,
    request_id: &http::HeaderValue,
) -> Result<()> {
    let mut resp = ResponseHeader::build(status, Some(3))?;
    resp.insert_header(http::header::LOCATION, location)?;
    resp.insert_header(http::header::CONTENT_LENGTH, 0)?;
    resp.insert_header(request_id_header, request_id)?;
    session.write_response_header(Box::new(resp), true).await
}

/// Writes weir's answer to a CORS preflight, `answer` (a 204 with its CORS headers), with
/// the request id header.
pub(super) async fn preflight(
    session: &mut Session,
    mut answer: Box<ResponseHeader>,
    request_id_header: &http::HeaderName,
    request_id: &http::HeaderValue,
) -> Result<()> {
    answer.insert_header(request_id_header, request_id)?;
    session.write_response_header(answer, true).await
}

/// Writes `{"status":…,"error":…,"request_id":…}` with the request id header and the
/// `headers` of the refusal (`WWW-Authenticate`, `Retry-After`, `RateLimit-*`, CORS …);
/// a 503 says when to try again.
pub(super) async fn json_error(
    session: &mut Session,
    status: u16,
    error: &str,
    headers: &[(http::HeaderName, http::HeaderValue)],
    request_id_header: &http::HeaderName,
    request_id: &http::HeaderValue,
) -> Result<()> {
    let body = serde_json::json!({
        "status": status,
        "error": error,
        "request_id": request_id.to_str().unwrap_or_default(),
    })
    .to_string();
    let mut resp = ResponseHeader::build(status, Some(4 + headers.len()))?;
    resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    for (name, value) in headers {
        resp.append_header(name, value)?;
    }
    resp.insert_header(http::header::CONTENT_LENGTH, body.len())?;
    resp.insert_header(request_id_header, request_id)?;
    if status == 503 && !resp.headers.contains_key(http::header::RETRY_AFTER) {
        resp.insert_header(http::header::RETRY_AFTER, RETRY_AFTER_SECS)?;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body.into()), true).await
}
