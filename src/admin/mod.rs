//! The admin listener, modelled on Kong's Admin API: a status page at `/`, `/metrics` for
//! Prometheus, JSON reads (`GET /status`, `/upstreams`, `/upstreams/{name}`,
//! `/upstreams/{name}/health`, `/config`) and writes (targets added, removed, drained and
//! enabled; `POST /reload`).
//!
//! The page holds no data and needs no token. Reads need none on a loopback address; off
//! loopback they need `admin.token` as a bearer token (validation makes sure there is one).
//! Writes always need it: with no token configured they are turned off (403, saying how to
//! turn them on), never open.

mod answers;
mod body;
mod targets;
mod views;

use crate::config::Admin;
use crate::control::{EditError, LiveConfig, Saved};
use crate::metrics;
use answers::{internal_error, not_found, not_found_upstream, page, reply};
use async_trait::async_trait;
use body::{parse_body, MAX_BODY};
use http::{header, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::Registry;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use targets::NewTarget;

/// Answers the admin endpoints from the running configuration.
pub(crate) struct AdminApi {
    live: Arc<LiveConfig>,
    registry: Registry,
    token: Option<String>,
    /// Off loopback, reads need the token too.
    reads_need_token: bool,
    started: Instant,
}

/// A request, as the endpoints need it.
struct Request {
    method: Method,
    segments: Vec<String>,
    body: Vec<u8>,
}

impl AdminApi {
    /// The admin API of `settings`, serving `live`.
    pub(crate) fn new(settings: &Admin, live: Arc<LiveConfig>) -> Self {
        Self {
            registry: metrics::registry(Box::new(live.runtime().clone())),
            live,
            token: settings.token.clone(),
            reads_need_token: !settings.address.ip().is_loopback(),
            started: Instant::now(),
        }
    }

    /// `None` when the request may go on, else the refusal.
    fn refuse(&self, session: &ServerSession, write: bool) -> Option<Response<Vec<u8>>> {
        let given = session.req_header().headers.get(header::AUTHORIZATION);
        let given = given
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '));
        let given = given
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        let valid = match (&self.token, given) {
            (Some(token), Some(given)) => {
                constant_time_eq::constant_time_eq(token.as_bytes(), given.as_bytes())
            }
            _ => false,
        };
        if valid || !(write || self.reads_need_token) {
            return None;
        }
        if self.token.is_none() {
            let error = "admin writes are turned off: set `admin.token` (for example \
                         token: \"${WEIR_ADMIN_TOKEN}\") and send it as `Authorization: Bearer \
                         <token>`";
            return Some(reply(StatusCode::FORBIDDEN, json!({ "error": error })));
        }
        let error = "this needs `Authorization: Bearer <admin.token>`";
        let mut refusal = reply(StatusCode::UNAUTHORIZED, json!({ "error": error }));
        refusal.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"weir admin\""),
        );
        Some(refusal)
    }

    /// Reads what the endpoints need from the session, the body of writes included.
    async fn request(session: &mut ServerSession) -> Result<Request, Response<Vec<u8>>> {
        let req = session.req_header();
        let method = req.method.clone();
        let segments = req
            .uri
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            })
            .collect();
        let mut body = Vec::new();
        if method != Method::GET {
            loop {
                match session.read_request_body().await {
                    Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_BODY => {
                        body.extend_from_slice(&chunk);
                    }
                    Ok(Some(_)) => {
                        let error = format!("the body is larger than {MAX_BODY} bytes");
                        return Err(reply(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            json!({ "error": error }),
                        ));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        let error = format!("reading the body: {e}");
                        return Err(reply(StatusCode::BAD_REQUEST, json!({ "error": error })));
                    }
                }
            }
        }
        Ok(Request {
            method,
            segments,
            body,
        })
    }

    /// The answer to a read.
    async fn read(&self, segments: &[&str]) -> Response<Vec<u8>> {
        let runtime = self.live.runtime().load();
        match segments {
            ["metrics"] => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(metrics::render(&self.registry).into_bytes())
                .unwrap_or_default(),
            ["status"] => reply(
                StatusCode::OK,
                views::status(&runtime, self.started.elapsed()),
            ),
            ["upstreams"] => reply(StatusCode::OK, views::upstreams(&runtime)),
            ["upstreams", name] | ["upstreams", name, "health"] => {
                match views::upstream(&runtime, name, segments.len() == 3) {
                    Some(view) => reply(StatusCode::OK, view),
                    None => not_found_upstream(name),
                }
            }
            ["config"] => {
                // An edit under way holds the document for as long as it resolves names.
                let live = self.live.clone();
                let Some((document, unsaved)) = blocking(move || live.document()).await else {
                    return internal_error();
                };
                reply(
                    StatusCode::OK,
                    json!({
                        "file": self.live.path().display().to_string(),
                        "persist": self.live.persists(),
                        "unsaved_changes": unsaved,
                        "config": views::config(&document),
                    }),
                )
            }
            _ => not_found(segments),
        }
    }

    /// The answer to a write.
    async fn write(&self, method: &Method, segments: &[&str], body: &[u8]) -> Response<Vec<u8>> {
        match (method, segments) {
            (&Method::POST, ["reload"]) => {
                let live = self.live.clone();
                let Some(outcome) = blocking(move || live.reload("admin API")).await else {
                    return internal_error();
                };
                match outcome {
                    Ok(reloaded) => reply(
                        StatusCode::OK,
                        json!({
                            "reloaded": reloaded.summary,
                            "dropped_edits": reloaded.dropped_edits,
                        }),
                    ),
                    Err(errors) => reply(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({
                            "error": "the file is not valid; the running configuration stays",
                            "errors": errors.messages(),
                        }),
                    ),
                }
            }
            (&Method::POST, ["upstreams", upstream, "targets"]) => {
                let target: NewTarget = match parse_body(body) {
                    Ok(target) => target,
                    Err(bad) => return reply(StatusCode::BAD_REQUEST, bad.to_json()),
                };
                let what = format!("added target {} to `{upstream}`", target.address);
                let name = upstream.to_string();
                self.edit(what, upstream, StatusCode::CREATED, move |doc| {
                    targets::add(doc, &name, &target)
                })
                .await
            }
            (&Method::DELETE, ["upstreams", upstream, "targets", address]) => {
                let what = format!("removed target {address} from `{upstream}`");
                let (name, address) = (upstream.to_string(), address.to_string());
                self.edit(what, upstream, StatusCode::OK, move |doc| {
                    targets::remove(doc, &name, &address)
                })
                .await
            }
            (
                &Method::POST,
                ["upstreams", upstream, "targets", address, action @ ("drain" | "enable")],
            ) => {
                let drain = *action == "drain";
                let what = format!("{action} target {address} of `{upstream}`");
                let (name, address) = (upstream.to_string(), address.to_string());
                self.edit(what, upstream, StatusCode::OK, move |doc| {
                    targets::set_drain(doc, &name, &address, drain)
                })
                .await
            }
            _ => not_found(segments),
        }
    }

    /// Runs an edit of `upstream` off the async threads (it may resolve a name and write the
    /// file) and answers with its outcome.
    async fn edit(
        &self,
        what: String,
        upstream: &str,
        success: StatusCode,
        change: impl FnOnce(&mut serde_yaml::Value) -> Result<bool, EditError> + Send + 'static,
    ) -> Response<Vec<u8>> {
        let live = self.live.clone();
        let Some(saved) = blocking(move || live.edit(&what, change)).await else {
            return internal_error();
        };
        self.edited(saved, success, upstream)
    }

    /// The answer to an edit of `upstream`: its instances now, and whether the change was
    /// written to the file.
    fn edited(
        &self,
        saved: Result<Saved, EditError>,
        success: StatusCode,
        upstream: &str,
    ) -> Response<Vec<u8>> {
        let saved = match saved {
            Ok(saved) => saved,
            Err(EditError::Invalid(problems)) => {
                // The file was valid before, so a problem with one of the upstream's targets
                // is with the one the edit added: `upstreams.NAME.targets[N].FIELD`.
                let prefix = format!("upstreams.{upstream}.targets[");
                let field = problems.iter().find_map(|p| {
                    let path = p.path.as_deref()?.strip_prefix(&prefix)?;
                    Some(path.split_once("].")?.1)
                });
                let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
                let body =
                    json!({ "error": messages.join("; "), "field": field, "errors": messages });
                return reply(StatusCode::BAD_REQUEST, body);
            }
            Err(e) => {
                let status = match e {
                    EditError::NotFound(_) => StatusCode::NOT_FOUND,
                    EditError::Conflict(_) => StatusCode::CONFLICT,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                return reply(status, json!({ "error": e.to_string() }));
            }
        };
        let runtime = self.live.runtime().load();
        let mut body = views::upstream(&runtime, upstream, false).unwrap_or_default();
        body["persisted"] = (saved == Saved::Persisted).into();
        body["changed"] = (saved != Saved::Unchanged).into();
        if saved == Saved::RuntimeOnly {
            body["note"] = "runtime only: the next reload of the file drops this change; \
                            `admin.persist: true` writes changes back to the file"
                .into();
        }
        reply(success, body)
    }
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        let write = !matches!(req.method, Method::GET | Method::HEAD);
        // The page holds no data (its script reads the API, with the token it is given), so
        // it is served without one.
        if !write && req.uri.path() == "/" {
            return page();
        }
        if let Some(refusal) = self.refuse(session, write) {
            return refusal;
        }
        let request = match Self::request(session).await {
            Ok(request) => request,
            Err(bad) => return bad,
        };
        let segments: Vec<&str> = request.segments.iter().map(String::as_str).collect();
        let Some(allow) = allowed(&segments) else {
            return not_found(&segments);
        };
        if !allow.split(", ").any(|m| m == request.method.as_str()) {
            let error = format!("{} takes {allow}", request.segments.join("/"));
            let mut refusal = reply(StatusCode::METHOD_NOT_ALLOWED, json!({ "error": error }));
            if let Ok(allow) = header::HeaderValue::from_str(allow) {
                refusal.headers_mut().insert(header::ALLOW, allow);
            }
            return refusal;
        }
        if write {
            self.write(&request.method, &segments, &request.body).await
        } else {
            self.read(&segments).await
        }
    }
}

/// The methods an endpoint takes; `None` for no endpoint.
fn allowed(segments: &[&str]) -> Option<&'static str> {
    match segments {
        ["metrics"]
        | ["status"]
        | ["config"]
        | ["upstreams"]
        | ["upstreams", _]
        | ["upstreams", _, "health"] => Some("GET, HEAD"),
        ["reload"]
        | ["upstreams", _, "targets"]
        | ["upstreams", _, "targets", _, "drain" | "enable"] => Some("POST"),
        ["upstreams", _, "targets", _] => Some("DELETE"),
        _ => None,
    }
}

/// Runs `work` on the blocking threads; `None` if it panicked.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}
