//! The `ProxyHttp` implementation: the only code that sees a Pingora session. Each phase
//! hands off to routing, upstream selection or header rules and keeps no logic of its own.

mod connection;
mod ctx;
mod respond;

pub(crate) use connection::HttpConnections;
pub(crate) use ctx::RequestCtx;

use crate::access_log::{AccessLog, Entry, Served};
use crate::head::path::{self, PathRules};
use crate::head::{self, Rejection};
use crate::headers::EditHeaders;
use crate::metrics;
use crate::policy;
use crate::routing;
use crate::runtime::SharedRuntime;
use crate::upstream::{deadline, hash_key, Deadline, InflightGuard};
use async_trait::async_trait;
use bytes::Bytes;
use ctx::Chosen;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::modules::http::HttpModules;
use pingora::prelude::*;
use pingora::protocols::http::authority::{raw_target_authority, RawTargetAuthority};
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

/// The HTTP proxy of every HTTP and HTTPS listener.
pub(crate) struct Proxy {
    runtime: SharedRuntime,
    access_log: Option<AccessLog>,
}

impl Proxy {
    /// A proxy serving from `runtime`, logging requests to `access_log`.
    pub(crate) fn new(runtime: SharedRuntime, access_log: Option<AccessLog>) -> Self {
        Self {
            runtime,
            access_log,
        }
    }
}

/// The client address when the connection has none (a Unix socket).
const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[async_trait]
impl ProxyHttp for Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.runtime.load_full())
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        connection::head_received();
        let rt = &ctx.runtime;
        let req = session.req_header();
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map_or(UNKNOWN_PEER, |a| a.ip());
        ctx.request_id = rt.headers.request_id(req);
        ctx.client = Some(rt.headers.client(peer, req));
        let local = session.server_addr().and_then(|a| a.as_inet()).copied();
        ctx.listener = rt.listeners.find(local.as_ref());
        let limits = rt.limits(ctx.listener);
        if let Err(rejection) = head::check(req, limits) {
            return reject(session, ctx, rejection).await;
        }
        let raw = || session.as_http1().map(|h1| h1.get_headers_raw_bytes());
        if let Err(rejection) = head::check_framing(req, raw) {
            return reject(session, ctx, rejection).await;
        }
        // Everything after this sees the normalized path, the upstream included.
        match path::normalize_target(&req.method, req.uri.path(), PathRules::from(limits)) {
            Ok(Cow::Borrowed(_)) => {}
            Ok(Cow::Owned(normal)) => set_path(session.req_header_mut(), &normal)?,
            Err(refused) => return reject(session, ctx, refused.into()).await,
        }
        let req = session.req_header();
        let host = routing::request_host(req);
        let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
        let redirect = ctx
            .listener()
            .and_then(|l| l.redirect(&req.method, host, path, local.map(|a| a.ip())));
        if let Some((status, location)) = redirect {
            let name = rt.headers.request_id_header().clone();
            respond::redirect(session, status, &location, &name, &ctx.request_id).await?;
            return Ok(true);
        }
        ctx.route = rt.table.find(host, req.uri.path());
        let route = ctx.route.and_then(|m| rt.routes.get(m.route));
        ctx.deadline = route
            .and_then(|r| r.timeouts.total)
            .and_then(Deadline::after);
        let listener = ctx.listener.and_then(|i| rt.listener_guards.get(i));
        let client = ctx.client.map_or(UNKNOWN_PEER, |c| c.ip);
        let guard = route.map(|r| &r.guard);
        let name = rt.headers.request_id_header().clone();
        ctx.cors = policy::cors(listener, guard, req);
        ctx.body_limit = policy::body_limit(listener, guard);
        // The policy steps, in the documented order.
        if let Err(denied) = policy::screen(listener, guard, client) {
            return refuse(session, ctx, denied).await;
        }
        match policy::preflight(listener, guard, req)? {
            None => {}
            Some(policy::Preflight::Answer(answer)) => {
                respond::preflight(session, answer, &name, &ctx.request_id).await?;
                return Ok(true);
            }
            Some(policy::Preflight::Refused(denied)) => {
                // Without any CORS header, so that the browser blocks the call.
                ctx.cors = None;
                return refuse(session, ctx, denied).await;
            }
        }
        match policy::identify(&rt.gate, listener, guard, req).await {
            Ok(identity) => ctx.identity = identity,
            Err(denied) => return refuse(session, ctx, denied).await,
        }
        let identity = ctx.identity.as_ref();
        match policy::limit(&rt.gate, listener, guard, req, client, identity).await {
            Ok(quota) => ctx.rate_limit = quota,
            Err(denied) => return refuse(session, ctx, denied).await,
        }
        if let Err(oversize) = policy::check_declared(ctx.body_limit, req) {
            return refuse(session, ctx, oversize.into()).await;
        }
        if ctx.route.is_some() {
            return Ok(false);
        }
        respond::json_error(
            session,
            404,
            respond::message(404),
            &ctx.own_headers(&[]),
            &name,
            &ctx.request_id,
        )
        .await?;
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let rt = &ctx.runtime;
        let route = ctx
            .route
            .and_then(|m| rt.routes.get(m.route))
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no route in context"))?;
        let pool = &rt.pools[route.pool];
        let client_ip = ctx.client.map_or(UNKNOWN_PEER, |c| c.ip);
        let pick = pool
            .select(session.req_header(), &hash_key(client_ip), ctx.tried)
            .ok_or_else(|| {
                Error::explain(
                    ErrorType::HTTPStatus(503),
                    format!("upstream `{}` has no available instance", pool.name),
                )
            })?;
        let mut peer = Box::new(pick.target.peer.clone());
        deadline::apply(&mut peer, &route.timeouts, ctx.deadline)?;
        ctx.tried.insert(pick.target.index);
        ctx.attempts += 1;
        ctx.upstream_started = Some(std::time::Instant::now());
        ctx.upstream = Some(Chosen {
            _inflight: InflightGuard::new(&pick.target),
            target: pick.target,
            panic: pick.panic,
        });
        Ok(peer)
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        // Nothing was sent: any method may go to another instance.
        let retry = ctx.pool().is_some_and(|pool| {
            if let Some(chosen) = &ctx.upstream {
                chosen.target.metrics.connect_failures.inc();
                pool.failed(&chosen.target, &e);
            }
            ctx.attempts < pool.max_attempts()
        });
        e.set_retry(retry);
        deadline::over(e, ctx.deadline)
    }

    fn error_while_proxy(
        &self,
        _peer: &HttpPeer,
        session: &mut Session,
        mut e: Box<Error>,
        ctx: &mut RequestCtx,
        client_reused: bool,
    ) -> Box<Error> {
        let Some(pool) = ctx.pool() else {
            e.set_retry(false);
            return e;
        };
        let reset = matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::ReadError | ErrorType::WriteError
        );
        // A pooled connection the upstream had already closed says nothing about its health,
        // nor does a request the client got wrong (a hostile one would eject instances).
        let client_fault = e.esource() == &ErrorSource::Downstream;
        if !(client_fault || client_reused && reset) {
            if let Some(chosen) = &ctx.upstream {
                pool.failed(&chosen.target, &e);
            }
        }
        let unanswered = session.response_written().is_none();
        let replayable = session.req_header().method.is_idempotent()
            && !session.as_ref().retry_buffer_truncated();
        e.set_retry(reset && unanswered && replayable && ctx.attempts < pool.max_attempts());
        deadline::over(e, ctx.deadline)
    }

    async fn request_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<Bytes>,
        _end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Bytes after a 101 are a WebSocket's (or another protocol's), not a request body.
        let Some(limit) = ctx.body_limit.filter(|_| !session.as_ref().was_upgraded()) else {
            return Ok(());
        };
        policy::check_received(limit, session.as_ref().body_bytes_read()).map_err(|oversize| {
            let route = ctx.route.and_then(|m| ctx.runtime.routes.get(m.route));
            let id = ctx.request_id.to_str().unwrap_or_default();
            let client = ctx.client.map_or(UNKNOWN_PEER, |c| c.ip);
            policy::log_refused(id, client, route.map_or("", |r| &r.name), &oversize);
            oversize.into_error()
        })
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let rt = &ctx.runtime;
        let (Some(client), Some(m)) = (ctx.client, ctx.route) else {
            return Ok(());
        };
        let route = &rt.routes[m.route];
        let scheme = ctx.listener().map_or("http", |l| l.scheme);
        rt.headers
            .forward(upstream_request, &client, &ctx.request_id, scheme)?;
        policy::forward(upstream_request, ctx.identity.as_ref(), &rt.gate)?;
        upstream_request.apply(&rt.pools[route.pool].headers.request)?;
        upstream_request.apply(&route.headers.request)?;
        if route.strip_prefix && m.matched_len > 0 {
            strip_prefix(upstream_request, m.matched_len)?;
        }
        Ok(())
    }

    fn init_downstream_modules(&self, modules: &mut HttpModules) {
        // In place of Pingora's compression module: off in every session until
        // `policy::compress` starts it for a response that qualifies.
        modules.add_module(policy::Compression::builder());
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        upstream_response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let (Some(pool), Some(chosen)) = (ctx.pool(), &ctx.upstream) {
            let status = upstream_response.status.as_u16();
            if pool.is_failure_status(status) {
                pool.failed(&chosen.target, &format_args!("status {status}"));
            } else {
                pool.succeeded(&chosen.target);
            }
        }
        let rt = &ctx.runtime;
        let instance = ctx.upstream.as_ref().map(|c| &c.target.name);
        rt.headers
            .respond(upstream_response, &ctx.request_id, instance)?;
        if let Some(hsts) = ctx.listener().and_then(|l| l.hsts.as_ref()) {
            upstream_response.insert_header(http::header::STRICT_TRANSPORT_SECURITY, hsts)?;
        }
        // A `100 Continue` is not the answer: the policies' headers go on the final one.
        let last = !upstream_response.status.is_informational();
        if let Some(cors) = ctx.cors.as_ref().filter(|_| last) {
            cors.apply(upstream_response)?;
        }
        if let Some(quota) = ctx.rate_limit.as_ref().filter(|_| last) {
            quota.apply(upstream_response)?;
        }
        if let Some(route) = ctx.route.and_then(|m| rt.routes.get(m.route)) {
            upstream_response.apply(&rt.pools[route.pool].headers.response)?;
            upstream_response.apply(&route.headers.response)?;
        }
        let listener = ctx.listener.and_then(|i| rt.listener_guards.get(i));
        let route = ctx.route.and_then(|m| rt.routes.get(m.route));
        let compression = policy::compression(listener, route.map(|r| &r.guard));
        if let Some(compression) = compression.filter(|_| last) {
            let req = session.downstream_session.req_header();
            let modules = &mut session.downstream_modules_ctx;
            policy::compress(compression, req, upstream_response, modules)?;
        }
        Ok(())
    }

    fn upstream_response_body_filter(
        &self,
        session: &mut Session,
        _body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<Option<std::time::Duration>> {
        // A response that has started and outlives the route's `total` is cut short; an
        // upgraded connection (a WebSocket) is not a response, and `total` does not bound it.
        match ctx.deadline {
            Some(d) if !end_of_stream && d.expired() && !session.as_ref().was_upgraded() => {
                Err(Deadline::error(None))
            }
            _ => Ok(None),
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        // A client that left before its answer: nginx's 499.
        let status = session
            .response_written()
            .map_or(499, |r| r.status.as_u16());
        ctx.record(status);
        if let Some(log) = self.access_log.as_ref().filter(|_| ctx.logged()) {
            log.write(&entry(session, ctx, status));
        }
    }

    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _e: &Error) -> bool {
        // `fail_to_proxy` logs every failure with the upstream and instance.
        true
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let panicked = ctx.upstream.as_ref().is_some_and(|c| c.panic);
        let status = respond::status_for(e, panicked);
        // A body over its limit was logged as a refusal when it crossed it.
        if status != 413 {
            log_failure(session, e, ctx, status);
        }
        // The connection is not reused after a failed proxy attempt: say so, so that clients
        // do not send their next request into a closing connection.
        session.set_keepalive(None);
        // Once a response has started, the connection closing unfinished is the only way
        // left to say it failed: an error body would end up inside the response's own.
        if status > 0 && session.response_written().is_none() {
            let name = ctx.runtime.headers.request_id_header().clone();
            let message = respond::describe(e, status);
            let id = &ctx.request_id;
            let headers = ctx.own_headers(&[]);
            if let Err(write) =
                respond::json_error(session, status, message, &headers, &name, id).await
            {
                log::debug!("could not send the {status} response: {write}");
            }
        }
        FailToProxy {
            error_code: status,
            can_reuse_downstream: false,
        }
    }
}

/// Answers a request a policy refused, with the request's CORS headers (so that a page on an
/// allowed origin can read why), and counts and logs the refusal; `Ok(true)`: answered.
async fn refuse(
    session: &mut Session,
    ctx: &RequestCtx,
    denied: policy::Denied<'_>,
) -> Result<bool> {
    let rt = &ctx.runtime;
    let route = ctx.route.and_then(|m| rt.routes.get(m.route));
    let denials = route.map_or(&rt.unrouted_denials, |r| &r.metrics.denials);
    let client = ctx.client.map_or(UNKNOWN_PEER, |c| c.ip);
    let id = ctx.request_id.to_str().unwrap_or_default();
    denied.record(denials, id, client, route.map_or("", |r| &r.name));
    let headers = ctx.own_headers(&denied.headers);
    let name = rt.headers.request_id_header();
    let (status, message) = (denied.status, denied.message);
    respond::json_error(session, status, message, &headers, name, &ctx.request_id).await?;
    Ok(true)
}

/// Answers a request head refused before routing, counts it, and closes the connection.
async fn reject(session: &mut Session, ctx: &RequestCtx, rejection: Rejection) -> Result<bool> {
    let rt = &ctx.runtime;
    let listener = ctx.listener.and_then(|i| rt.config.listeners.get(i));
    let listener = listener.map_or("", |l| l.name.as_str());
    metrics::rejected(listener, rejection.reason.label()).inc();
    let (status, message) = (rejection.status, rejection.message);
    log::debug!("{:?} on `{listener}`: {status} {message}", ctx.request_id);
    session.set_keepalive(None);
    let name = rt.headers.request_id_header();
    respond::json_error(session, status, message, &[], name, &ctx.request_id).await?;
    Ok(true)
}

/// The access log line of a finished request.
fn entry<'a>(session: &'a Session, ctx: &'a RequestCtx, status: u16) -> Entry<'a> {
    let req = session.req_header();
    let header = |name| {
        req.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let host = routing::request_host(req).unwrap_or_default();
    let chosen = ctx.upstream.as_ref();
    let rt = &ctx.runtime;
    let route = ctx.route.and_then(|m| rt.routes.get(m.route));
    let tls = session.digest().and_then(|d| d.ssl_digest.as_ref());
    Entry {
        time: std::time::SystemTime::now(),
        served: Served::Request {
            request_id: ctx.request_id.to_str().unwrap_or_default(),
            method: req.method.as_str(),
            host,
            path: policy::loggable_path(
                ctx.listener.and_then(|i| rt.listener_guards.get(i)),
                route.map(|r| &r.guard),
                req.uri.path_and_query().map_or("/", |p| p.as_str()),
            ),
            consumer: ctx
                .identity
                .as_ref()
                .map_or("", |i| rt.gate.registry.label(i.consumer)),
            bytes: session.body_bytes_sent(),
            referer: header(http::header::REFERER),
            user_agent: header(http::header::USER_AGENT),
            version: match req.version {
                http::Version::HTTP_10 => "HTTP/1.0",
                http::Version::HTTP_2 => "HTTP/2.0",
                _ => "HTTP/1.1",
            },
        },
        client_ip: ctx.client.map_or(UNKNOWN_PEER, |c| c.ip).to_string(),
        status,
        duration: ctx.started.elapsed().as_secs_f64(),
        upstream: ctx.pool().map_or("", |p| p.name.as_str()),
        instance: chosen.map_or("", |c| c.target.label()),
        retries: ctx.attempts.saturating_sub(1),
        tls_version: tls.map_or("", |t| &t.version),
    }
}

/// One line per failed request: request id, request, status, upstream, instance and cause.
fn log_failure(session: &Session, e: &Error, ctx: &RequestCtx, status: u16) {
    let req = session.req_header();
    let upstream = ctx.pool().map_or("-", |p| p.name.as_str());
    let instance = ctx.upstream.as_ref().map_or("-", |c| c.target.label());
    let id = ctx.request_id.to_str().unwrap_or_default();
    let (method, path) = (&req.method, req.uri.path());
    if status == 0 {
        log::debug!("{id} {method} {path}: client gone ({e})");
    } else {
        log::warn!(
            "{id} {method} {path}: {status}; upstream `{upstream}` instance `{instance}` after {} attempt(s): {e}",
            ctx.attempts
        );
    }
}

/// Removes the first `len` bytes of the path, keeping the query; the result starts with `/`.
fn strip_prefix(req: &mut RequestHeader, len: usize) -> Result<()> {
    let rest = req.uri.path().get(len..).unwrap_or_default().to_owned();
    set_path(req, &rest)
}

/// Replaces the request's path with `path` (with a `/` put first if it has none), keeping
/// its query and the rest of its target: an absolute-form target keeps its scheme and
/// authority (what routes a request without `Host`, and what is forwarded), an HTTP/2
/// request's URI its scheme and authority (its host).
fn set_path(req: &mut RequestHeader, path: &str) -> Result<()> {
    let raw = req.raw_path();
    let origin = match raw_target_authority(raw) {
        RawTargetAuthority::Absolute { path_and_query, .. } => raw
            .len()
            .checked_sub(path_and_query.len())
            .and_then(|end| raw.get(..end))
            .unwrap_or_default(),
        RawTargetAuthority::None | RawTargetAuthority::AmbiguousAuthority => &[],
    };
    let query = req.uri.query();
    let length = origin.len() + path.len() + 2 + query.map_or(0, str::len);
    let mut target = Vec::with_capacity(length);
    target.extend_from_slice(origin);
    if !path.starts_with('/') {
        target.push(b'/');
    }
    target.extend_from_slice(path.as_bytes());
    if let Some(q) = query {
        target.push(b'?');
        target.extend_from_slice(q.as_bytes());
    }
    if !origin.is_empty() {
        return req.set_raw_path(&target);
    }
    let mut parts = req.uri.clone().into_parts();
    let uri = http::uri::PathAndQuery::try_from(target)
        .map_err(http::Error::from)
        .and_then(|p| {
            parts.path_and_query = Some(p);
            http::Uri::from_parts(parts).map_err(http::Error::from)
        })
        .map_err(|e| Error::because(ErrorType::InternalError, "rewriting the path", e))?;
    req.set_uri(uri);
    Ok(())
}
