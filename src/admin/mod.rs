//! The admin listener, modelled on Kong's Admin API: a status page at `/`, `/metrics` for
//! Prometheus, JSON reads (`GET /status`, `/upstreams`, `/upstreams/{name}`,
//! `/upstreams/{name}/health`, `/upstreams/{name}/targets`, `/consumers`, `/config`) and
//! writes (targets added, removed, drained and enabled; consumers and their API keys added
//! and removed; `POST /reload`).
//!
//! With `admin.allow`, a connection from any other address gets 403 before anything else.
//! The page holds no data and needs no token. Reads need none on a loopback address; off
//! loopback they need `admin.token` as a bearer token (validation makes sure there is one).
//! Writes always need it: with no token configured they are turned off (403, saying how to
//! turn them on), never open.

mod answers;
mod body;
mod consumers;
mod targets;
mod views;

use crate::config::Admin;
use crate::control::{EditError, LiveConfig, Missing, Saved};
use crate::metrics;
use crate::runtime::Runtime;
use answers::{internal_error, missing, no_content, not_found, page, reply};
use async_trait::async_trait;
use body::{parse_body, MAX_BODY};
use consumers::{consumer_view, consumer_views, IssuedKey, NewConsumer, NewKey};
use http::{header, Method, Response, StatusCode};
use ipnet::IpNet;
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::Registry;
use serde_json::{json, Value};
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
    /// `admin.allow`: the only client networks served, when not empty.
    allow: Vec<IpNet>,
    started: Instant,
}

/// What an applied edit answers with.
struct Answer<V> {
    /// 200 or 201 with `view`, or 204 with no body.
    status: StatusCode,
    /// The YAML path up to the index (`upstreams.api.targets[`) of the list the edit adds
    /// to, if any: as the file was valid before, a problem there is with the body, and
    /// names its field.
    items: Option<String>,
    /// The answer's body, from the runtime the edit led to.
    view: V,
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
            allow: settings.allow.clone(),
            started: Instant::now(),
        }
    }

    /// `None` when `admin.allow` lets the client in (or there is no such list), else the
    /// refusal.
    fn outside_allow(&self, session: &ServerSession) -> Option<Response<Vec<u8>>> {
        if self.allow.is_empty() {
            return None;
        }
        let ip = session.client_addr().and_then(|a| a.as_inet());
        // An IPv4 client of a listener on `[::]` arrives as `::ffff:a.b.c.d`.
        let ip = ip.map(|a| a.ip().to_canonical());
        if ip.is_some_and(|ip| self.allow.iter().any(|net| net.contains(&ip))) {
            return None;
        }
        let client = ip.map_or_else(|| "this client".to_string(), |ip| ip.to_string());
        let error = format!("{client} is not in `admin.allow`");
        Some(reply(StatusCode::FORBIDDEN, json!({ "error": error })))
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
                    None => missing(Missing::Upstream(name.to_string())),
                }
            }
            ["upstreams", name, "targets"] => match views::kong_targets(&runtime, name) {
                Some(view) => reply(StatusCode::OK, view),
                None => missing(Missing::Upstream(name.to_string())),
            },
            ["consumers"] => {
                let views = consumer_views(&runtime);
                let data: Vec<Value> = views.iter().map(|c| c.to_json()).collect();
                reply(StatusCode::OK, json!({ "data": data, "next": null }))
            }
            ["consumers", name, rest @ ..] => match consumer_view(&runtime, name) {
                Ok(view) if rest.is_empty() => reply(StatusCode::OK, view.to_json()),
                Ok(view) => {
                    let data: Vec<Value> = view.keys.iter().map(|k| k.to_json()).collect();
                    reply(StatusCode::OK, json!({ "data": data, "next": null }))
                }
                Err(e) => missing(e),
            },
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
                let answer = targets_answer(upstream, StatusCode::CREATED);
                self.edit(what, answer, move |doc| targets::add(doc, &name, &target))
                    .await
            }
            (&Method::DELETE, ["upstreams", upstream, "targets", address]) => {
                let what = format!("removed target {address} from `{upstream}`");
                let (name, address) = (upstream.to_string(), address.to_string());
                let answer = targets_answer(upstream, StatusCode::OK);
                self.edit(what, answer, move |doc| {
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
                let answer = targets_answer(upstream, StatusCode::OK);
                self.edit(what, answer, move |doc| {
                    targets::set_drain(doc, &name, &address, drain)
                })
                .await
            }
            (&Method::POST, ["consumers"]) => {
                let new: NewConsumer = match parse_body(body) {
                    Ok(new) => new,
                    Err(bad) => return reply(StatusCode::BAD_REQUEST, bad.to_json()),
                };
                let what = format!("added consumer `{}`", new.name);
                let name = new.name.clone();
                let answer = Answer {
                    status: StatusCode::CREATED,
                    items: Some("consumers[".to_string()),
                    view: move |runtime: &Runtime| {
                        consumer_view(runtime, &name)
                            .map(|c| c.to_json())
                            .unwrap_or_default()
                    },
                };
                self.edit(what, answer, move |doc| consumers::add(doc, &new))
                    .await
            }
            (&Method::DELETE, ["consumers", name]) => {
                let what = format!("removed consumer `{name}`");
                let name = name.to_string();
                self.edit(what, deleted(), move |doc| consumers::remove(doc, &name))
                    .await
            }
            (&Method::POST, ["consumers", name, "key-auth"]) => {
                // Kong's clients ask for a generated key with no body at all.
                let new: NewKey = if body.iter().all(u8::is_ascii_whitespace) {
                    NewKey::default()
                } else {
                    match parse_body(body) {
                        Ok(new) => new,
                        Err(bad) => return reply(StatusCode::BAD_REQUEST, bad.to_json()),
                    }
                };
                if let Some(problem) = new.problem() {
                    let error = json!({ "error": problem, "field": "key" });
                    return reply(StatusCode::BAD_REQUEST, error);
                }
                let key = IssuedKey::new(new.key);
                // The key itself goes in this answer only: never in the log, the file or a view.
                let what = format!("added key {} to consumer `{name}`", key.id);
                let shown = json!({
                    "id": key.id,
                    "key": key.key,
                    "fingerprint": key.fingerprint(),
                    "consumer": { "name": name },
                });
                let answer = Answer {
                    status: StatusCode::CREATED,
                    items: Some("consumers[".to_string()),
                    view: move |_: &Runtime| shown,
                };
                let (live, name) = (self.live.clone(), name.to_string());
                self.edit(what, answer, move |doc| {
                    consumers::add_key(doc, &live.runtime().load().gate.registry, &name, &key)
                })
                .await
            }
            (&Method::DELETE, ["consumers", name, "key-auth", id]) => {
                let what = format!("removed key {id} of consumer `{name}`");
                let (live, name, id) = (self.live.clone(), name.to_string(), id.to_string());
                self.edit(what, deleted(), move |doc| {
                    let running = consumer_views(&live.runtime().load());
                    consumers::remove_key(doc, &running, &name, &id)
                })
                .await
            }
            _ => not_found(segments),
        }
    }

    /// Runs an edit off the async threads (it may resolve a name and write the file) and
    /// answers with its outcome.
    async fn edit<V>(
        &self,
        what: String,
        answer: Answer<V>,
        change: impl FnOnce(&mut serde_yaml::Value) -> Result<bool, EditError> + Send + 'static,
    ) -> Response<Vec<u8>>
    where
        V: FnOnce(&Runtime) -> Value,
    {
        let live = self.live.clone();
        let Some(saved) = blocking(move || live.edit(&what, change)).await else {
            return internal_error();
        };
        match saved {
            Ok(saved) => self.edited(saved, answer),
            Err(e) => refused(e, answer.items.as_deref()),
        }
    }

    /// The answer to an applied edit: its view, and whether the change was written to the
    /// file.
    fn edited<V>(&self, saved: Saved, answer: Answer<V>) -> Response<Vec<u8>>
    where
        V: FnOnce(&Runtime) -> Value,
    {
        if answer.status == StatusCode::NO_CONTENT {
            return no_content();
        }
        let runtime = self.live.runtime().load();
        let mut body = (answer.view)(&runtime);
        body["persisted"] = (saved == Saved::Persisted).into();
        body["changed"] = (saved != Saved::Unchanged).into();
        if saved == Saved::RuntimeOnly {
            body["note"] = "runtime only: the next reload of the file drops this change; \
                            `admin.persist: true` writes changes back to the file"
                .into();
        }
        reply(answer.status, body)
    }
}

/// The answer to an edit of `upstream`'s targets: its instances now.
fn targets_answer(upstream: &str, status: StatusCode) -> Answer<impl FnOnce(&Runtime) -> Value> {
    let name = upstream.to_string();
    Answer {
        status,
        items: Some(format!("upstreams.{upstream}.targets[")),
        view: move |runtime: &Runtime| views::upstream(runtime, &name, false).unwrap_or_default(),
    }
}

/// The answer to a deletion: 204, as Kong answers it.
fn deleted() -> Answer<impl FnOnce(&Runtime) -> Value> {
    Answer {
        status: StatusCode::NO_CONTENT,
        items: None,
        view: |_: &Runtime| Value::Null,
    }
}

/// The 4xx (or 500) of an edit that was not applied. A problem under `items` names the
/// field of the body at fault: `upstreams.api.targets[2].weight` is `weight`.
fn refused(error: EditError, items: Option<&str>) -> Response<Vec<u8>> {
    let status = match error {
        EditError::Invalid(problems) => {
            let field = problems.iter().find_map(|p| {
                let path = p.path.as_deref()?.strip_prefix(items?)?;
                Some(path.split_once("].")?.1)
            });
            let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
            let body = json!({ "error": messages.join("; "), "field": field, "errors": messages });
            return reply(StatusCode::BAD_REQUEST, body);
        }
        EditError::NotFound(_) => StatusCode::NOT_FOUND,
        EditError::Conflict(_) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    reply(status, json!({ "error": error.to_string() }))
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if let Some(refusal) = self.outside_allow(session) {
            return refusal;
        }
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
        ["upstreams", _, "targets"] | ["consumers"] | ["consumers", _, "key-auth"] => {
            Some("GET, HEAD, POST")
        }
        ["consumers", _] => Some("GET, HEAD, DELETE"),
        ["reload"] | ["upstreams", _, "targets", _, "drain" | "enable"] => Some("POST"),
        ["upstreams", _, "targets", _] | ["consumers", _, "key-auth", _] => Some("DELETE"),
        _ => None,
    }
}

/// Runs `work` on the blocking threads; `None` if it panicked.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(work).await.ok()
}
