//! The admin listener: `/metrics` for Prometheus; `GET /status`, `/upstreams`,
//! `/upstreams/{name}` and `/upstreams/{name}/health` as JSON, modelled on Kong's Admin API.
//! Reads need no token on a loopback address; off loopback every request needs
//! `admin.token` as a bearer token (validation makes sure there is one).

use crate::config::Admin;
use crate::metrics;
use crate::runtime::SharedRuntime;
use async_trait::async_trait;
use http::{header, Method, Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use prometheus::Registry;
use serde_json::{json, Value};
use std::time::Instant;

/// Answers the admin endpoints from the current runtime.
pub struct AdminApi {
    runtime: SharedRuntime,
    registry: Registry,
    /// The bearer token every request must carry, when the listener is off loopback.
    required_token: Option<String>,
    started: Instant,
}

impl AdminApi {
    /// The admin API of `settings`, serving from `runtime`.
    pub fn new(settings: &Admin, runtime: SharedRuntime) -> Self {
        let loopback = settings.address.ip().is_loopback();
        Self {
            registry: metrics::registry(runtime.clone()),
            runtime,
            required_token: settings.token.clone().filter(|_| !loopback),
            started: Instant::now(),
        }
    }

    fn authorized(&self, session: &ServerSession) -> bool {
        let Some(token) = &self.required_token else {
            return true;
        };
        let given = session.req_header().headers.get(header::AUTHORIZATION);
        let given = given.and_then(|v| v.to_str().ok());
        given.and_then(|v| v.strip_prefix("Bearer ")) == Some(token.as_str())
    }

    fn status(&self) -> Value {
        let runtime = self.runtime.load();
        let now = crate::upstream::now_ms();
        let upstreams: Vec<Value> = runtime
            .pools
            .iter()
            .map(|pool| {
                let available = pool
                    .targets
                    .iter()
                    .filter(|t| t.state.health.available(now))
                    .count();
                json!({
                    "name": pool.name,
                    "instances": pool.targets.len(),
                    "available": available,
                })
            })
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "pid": std::process::id(),
            "uptime_seconds": self.started.elapsed().as_secs(),
            "config": runtime.config.path.display().to_string(),
            "listeners": runtime.config.listeners.len(),
            "routes": runtime.routes.len(),
            "upstreams": upstreams,
        })
    }
}

impl AdminApi {
    /// `GET /upstreams`: every upstream, as Kong lists them.
    fn upstreams(&self) -> Value {
        let runtime = self.runtime.load();
        let data: Vec<Value> = runtime
            .pools
            .iter()
            .map(|pool| json!({ "name": pool.name, "instances": pool.targets.len() }))
            .collect();
        json!({ "data": data })
    }

    /// `GET /upstreams/{name}` (its instances) or `…/health` (with their live state).
    fn upstream(&self, name: &str, health: bool) -> Response<Vec<u8>> {
        let runtime = self.runtime.load();
        let Some(pool) = runtime.pools.iter().find(|p| p.name == name) else {
            let error = json!({ "error": format!("no upstream named `{name}`") });
            return reply(StatusCode::NOT_FOUND, error);
        };
        let now = crate::upstream::now_ms();
        let instances: Vec<Value> = pool
            .targets
            .iter()
            .map(|t| {
                let mut instance = json!({
                    "instance": t.label(),
                    "address": t.addr.to_string(),
                    "weight": t.weight,
                    "backup": t.backup,
                });
                if health {
                    let state = &t.state.health;
                    let ejected_for = state.ejected_for(now);
                    let verdict = match (state.healthy(), ejected_for) {
                        (false, _) => "unhealthy",
                        (true, Some(_)) => "ejected",
                        (true, None) => "healthy",
                    };
                    instance["health"] = verdict.into();
                    instance["in_flight"] = t.state.inflight().into();
                    instance["ejected_for_seconds"] =
                        ejected_for.map_or(0.0, |d| d.as_secs_f64()).into();
                    instance["last_check"] = match state.last_check() {
                        Some(true) => "passed",
                        Some(false) => "failed",
                        None => "none",
                    }
                    .into();
                }
                instance
            })
            .collect();
        reply(
            StatusCode::OK,
            json!({ "name": pool.name, "data": instances }),
        )
    }
}

#[async_trait]
impl ServeHttp for AdminApi {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        if !self.authorized(session) {
            let error = json!({ "error": "this admin listener needs `Authorization: Bearer <admin.token>`" });
            return reply(StatusCode::UNAUTHORIZED, error);
        }
        let req = session.req_header();
        let path = req.uri.path().to_string();
        if req.method != Method::GET {
            let error = json!({ "error": format!("{} is read-only", path) });
            return reply(StatusCode::METHOD_NOT_ALLOWED, error);
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match segments.as_slice() {
            ["metrics"] => Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/plain; version=0.0.4")
                .body(metrics::render(&self.registry).into_bytes())
                .unwrap_or_default(),
            ["status"] => reply(StatusCode::OK, self.status()),
            ["upstreams"] => reply(StatusCode::OK, self.upstreams()),
            ["upstreams", name] => self.upstream(name, false),
            ["upstreams", name, "health"] => self.upstream(name, true),
            _ => reply(
                StatusCode::NOT_FOUND,
                json!({ "error": "no such endpoint", "path": path }),
            ),
        }
    }
}

/// A JSON answer.
fn reply(status: StatusCode, body: Value) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.to_string().into_bytes())
        .unwrap_or_default()
}
