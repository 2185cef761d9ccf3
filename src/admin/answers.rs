//! The admin listener's answers that are not an endpoint's data: the status page, errors,
//! and the JSON envelope every answer uses.

use crate::control::Missing;
use http::{header, Response, StatusCode};
use serde_json::{json, Value};

/// The status page served at `/`.
const STATUS_PAGE: &str = include_str!("page.html");

/// The status page: one self-contained file that reads the API every 2 s.
pub(super) fn page() -> Response<Vec<u8>> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header(
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; connect-src 'self'; style-src 'unsafe-inline'; \
             script-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        .header(header::X_FRAME_OPTIONS, "DENY")
        .body(STATUS_PAGE.as_bytes().to_vec())
        .unwrap_or_default()
}

/// The 404 of an upstream, target, consumer or key that does not exist.
pub(super) fn missing(what: Missing) -> Response<Vec<u8>> {
    reply(StatusCode::NOT_FOUND, json!({ "error": what.to_string() }))
}

/// The 204 of a deletion, as Kong answers it: no body.
pub(super) fn no_content() -> Response<Vec<u8>> {
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Vec::new())
        .unwrap_or_default()
}

/// The 404 of an unknown endpoint.
pub(super) fn not_found(segments: &[&str]) -> Response<Vec<u8>> {
    let path = format!("/{}", segments.join("/"));
    reply(
        StatusCode::NOT_FOUND,
        json!({ "error": "no such endpoint", "path": path }),
    )
}

/// The 500 of an edit that panicked.
pub(super) fn internal_error() -> Response<Vec<u8>> {
    let error =
        json!({ "error": "the change failed unexpectedly; the running configuration stays" });
    reply(StatusCode::INTERNAL_SERVER_ERROR, error)
}

/// A JSON answer.
pub(super) fn reply(status: StatusCode, body: Value) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes())
        .unwrap_or_default()
}
