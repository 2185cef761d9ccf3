//! Policies: the gateway layer. Address rules and authentication are compiled into the
//! runtime (a [`Gate`] of consumers, token issuers and password checks, and a [`Guard`] per
//! listener and route) and run in one fixed order from `request_filter`, each step a function
//! of its own: [`screen`] (the listener's address rules, then the route's), then [`identify`]
//! (the route's `auth`, or without one the listener's), with the CORS [`preflight`] between
//! them, then [`limit`] (the rate limits of the listener and of the route, all of which must
//! pass), then the body limit ([`check_declared`] on the headers, [`check_received`] as the
//! body arrives); [`cors`] decides the CORS headers of a request's answers.
//! The consumer they identify travels upstream in `X-Consumer-*` headers, which weir
//! removes from every request first so that a client cannot claim to be one.

mod auth;
mod body_limit;
mod compress;
mod consumers;
mod cors;
mod ip;
mod jwks;
mod jwt;
mod password;
mod rate_limit;

pub(crate) use body_limit::{body_limit, check_declared, check_received, Oversize, BODY_TOO_LARGE};
pub(crate) use compress::{compress, Compression};
pub(crate) use consumers::{digest, fingerprint, Registry};
pub(crate) use cors::{Answer as CorsAnswer, Preflight};
pub(crate) use rate_limit::Quota;

use crate::config::{Config, IpRules, Policies};
use crate::metrics::{Denial, Denials};
use auth::AuthPolicy;
use consumers::ConsumerError;
use http::{HeaderName, HeaderValue};
use jwt::{IssuerError, Issuers};
use password::Verifier;
use pingora::http::RequestHeader;
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the policies of a configuration could not be compiled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PolicyError {
    /// A consumer's credentials.
    #[error(transparent)]
    Consumer(#[from] ConsumerError),
    /// A JWT issuer's keys.
    #[error(transparent)]
    Issuer(#[from] IssuerError),
    /// `rate_limits.redis.url`, which validation accepted.
    #[error("rate_limits.redis.url: {0}")]
    RateLimitStore(#[from] redis::RedisError),
}

/// What every policy of a runtime checks credentials against.
#[derive(Debug)]
pub(crate) struct Gate {
    /// The consumers.
    pub registry: Registry,
    issuers: Issuers,
    verifier: Verifier,
    /// The stores rate limits count in.
    rate: rate_limit::Stores,
}

impl Gate {
    /// Compiles the consumers and issuers of `config`, reading their files; JWKS fetched
    /// from URLs by `previous` are kept.
    pub(crate) fn build(config: &Config, previous: Option<&Gate>) -> Result<Self, PolicyError> {
        Ok(Self {
            registry: Registry::build(&config.consumers)?,
            issuers: Issuers::build(&config.jwt, previous.map(|p| &p.issuers))?,
            verifier: Verifier::default(),
            rate: rate_limit::Stores::build(&config.rate_limits, previous.map(|p| &p.rate))?,
        })
    }

    /// Starts the fetches of JWKS URLs that are due (periodic, or asked for by a token with
    /// an unknown `kid`); the supervisor calls it on every tick, on the current runtime.
    pub(crate) fn refresh_keys(&self) {
        self.issuers.refresh_due();
    }
}

/// The compiled policies of one listener or route.
#[derive(Debug, Default)]
pub(crate) struct Guard {
    ip: Option<IpRules>,
    auth: Option<AuthPolicy>,
    cors: Option<cors::Cors>,
    /// `max_body_size`, in bytes.
    max_body_size: Option<u64>,
    compress: Option<compress::CompressPolicy>,
    rate_limit: Vec<rate_limit::Rule>,
}

impl Guard {
    /// Compiles the `policies` of `owner` (`route:NAME` or `listener:NAME`, which names
    /// its rate limits' counts) against the consumers and stores of `gate`.
    pub(crate) fn new(policies: &Policies, gate: &Gate, owner: &str) -> Self {
        Self {
            ip: policies.ip.clone(),
            auth: policies.auth.as_ref().map(|a| AuthPolicy::new(a, gate)),
            cors: policies.cors.as_ref().map(cors::Cors::new),
            max_body_size: policies.max_body_size,
            compress: policies
                .compress
                .as_ref()
                .map(compress::CompressPolicy::new),
            rate_limit: rate_limit::compile(&policies.rate_limit, owner, &gate.rate),
        }
    }

    fn permits(&self, client: IpAddr) -> bool {
        self.ip
            .as_ref()
            .is_none_or(|rules| ip::permits(rules, client))
    }
}

/// Who a request was identified as.
#[derive(Debug)]
pub(crate) struct Identity {
    /// Consumer index in the [`Registry`]; [`Registry::anonymous`] for anonymous requests.
    pub consumer: usize,
    /// `X-Credential-Identifier`: the key's id, the basic-auth user, the token's consumer.
    credential: Option<HeaderValue>,
    /// Where the request carries credentials that are not to go upstream.
    hide: Hidden,
}

/// Every place a request carries a credential of its policy's methods: the one that
/// identified it, and any other (a second key name, a key in the query as well as in a
/// header, `Authorization` beside a key), none of which the instance is to see.
#[derive(Debug, Default)]
struct Hidden {
    /// Key headers.
    headers: Vec<HeaderName>,
    /// Key query parameters.
    params: Vec<String>,
    /// `Authorization`, with a scheme of a listed method.
    authorization: bool,
}

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
    fn new(denial: Denial, challenges: &'a [(HeaderName, HeaderValue)]) -> Self {
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

/// The first policy step: the address rules of `listener` and `route` for a request from
/// `client`.
pub(crate) fn screen<'a>(
    listener: Option<&Guard>,
    route: Option<&Guard>,
    client: IpAddr,
) -> Result<(), Denied<'a>> {
    if listener.into_iter().chain(route).all(|g| g.permits(client)) {
        Ok(())
    } else {
        Err(Denied::new(Denial::Ip, &[]))
    }
}

/// The CORS policy of a request: the route's, or else the listener's.
fn cors_policy<'g>(
    listener: Option<&'g Guard>,
    route: Option<&'g Guard>,
) -> Option<&'g cors::Cors> {
    route
        .and_then(|r| r.cors.as_ref())
        .or(listener.and_then(|l| l.cors.as_ref()))
}

/// The CORS headers every answer to `req` gets, decided once after routing: `None`
/// without a `cors` policy.
pub(crate) fn cors(
    listener: Option<&Guard>,
    route: Option<&Guard>,
    req: &RequestHeader,
) -> Option<CorsAnswer> {
    cors_policy(listener, route).map(|c| c.answer(req))
}

/// The CORS preflight step, after the address rules and before authentication (browsers
/// send no credentials on a preflight): `None` unless `req` is a preflight and a `cors`
/// policy applies; then weir answers it, and it is never forwarded.
pub(crate) fn preflight<'a>(
    listener: Option<&Guard>,
    route: Option<&Guard>,
    req: &RequestHeader,
) -> pingora::Result<Option<Preflight<'a>>> {
    match cors_policy(listener, route) {
        Some(cors) => cors.preflight(req),
        None => Ok(None),
    }
}

/// The authentication step: the route's `auth`, or else the listener's. `Ok(None)` when no
/// `auth` applies.
pub(crate) async fn identify<'a>(
    gate: &Gate,
    listener: Option<&'a Guard>,
    route: Option<&'a Guard>,
    req: &RequestHeader,
) -> Result<Option<Identity>, Denied<'a>> {
    let Some(auth) = route
        .and_then(|r| r.auth.as_ref())
        .or(listener.and_then(|l| l.auth.as_ref()))
    else {
        return Ok(None);
    };
    let mut identity = auth
        .authenticate(gate, req)
        .await
        .map_err(|denial| Denied::new(denial, auth.challenges()))?;
    if auth.hides_credentials() {
        identity.hide = auth.credentials(req);
    }
    Ok(Some(identity))
}

/// The rate-limit step: the listener's rules, then the route's, for a request from `client`
/// that the authentication step identified as `identity`. `Ok(None)` when no rule applies;
/// otherwise the numbers the response's rate headers report.
pub(crate) async fn limit(
    gate: &Gate,
    listener: Option<&Guard>,
    route: Option<&Guard>,
    request: &RequestHeader,
    client: IpAddr,
    identity: Option<&Identity>,
) -> Result<Option<Quota>, Denied<'static>> {
    let rules = [listener, route].map(|g| g.map_or(&[][..], |g| &g.rate_limit[..]));
    if rules.iter().all(|r| r.is_empty()) {
        return Ok(None);
    }
    // `anonymous` is no one in particular: counted by address, as unidentified requests.
    let consumer = identity
        .and_then(|i| gate.registry.get(i.consumer))
        .map(|m| m.name.as_str());
    let subject = rate_limit::Subject {
        client,
        consumer,
        request,
    };
    rate_limit::check(&gate.rate, rules, subject)
        .await
        .map(Some)
        .map_err(Denied::from)
}

/// `path` as the access log shows it: the values of the query parameters that carry API
/// keys on this route replaced, so that no key reaches a log line.
pub(crate) fn loggable_path<'p>(
    listener: Option<&Guard>,
    route: Option<&Guard>,
    path: &'p str,
) -> Cow<'p, str> {
    let auth = route
        .and_then(|r| r.auth.as_ref())
        .or(listener.and_then(|l| l.auth.as_ref()));
    let redacted = auth
        .zip(path.split_once('?'))
        .and_then(|(auth, (before, query))| Some(format!("{before}?{}", auth.redacted(query)?)));
    redacted.map_or(Cow::Borrowed(path), Cow::Owned)
}

/// The headers weir alone sets upstream: as names to remove, and as the spelling they are
/// sent with (static, so that setting one allocates no name).
const CONSUMER: (HeaderName, &str) = (
    HeaderName::from_static("x-consumer-username"),
    "X-Consumer-Username",
);
const GROUPS: (HeaderName, &str) = (
    HeaderName::from_static("x-consumer-groups"),
    "X-Consumer-Groups",
);
const CREDENTIAL: (HeaderName, &str) = (
    HeaderName::from_static("x-credential-identifier"),
    "X-Credential-Identifier",
);
const ANONYMOUS: (HeaderName, &str) = (
    HeaderName::from_static("x-anonymous-consumer"),
    "X-Anonymous-Consumer",
);

/// Tells the instance who called: removes any `X-Consumer-*` header the client sent, sets
/// them for `identity`, and removes the request's credentials when the policy hides them.
pub(crate) fn forward(
    upstream: &mut RequestHeader,
    identity: Option<&Identity>,
    gate: &Gate,
) -> pingora::Result<()> {
    for (name, _) in [&CONSUMER, &GROUPS, &CREDENTIAL, &ANONYMOUS] {
        // Looked up first: removing also searches the map of header spellings.
        if upstream.headers.contains_key(name) {
            upstream.remove_header(name);
        }
    }
    // CGI, PHP and WSGI servers read `X_Consumer_Username` as `X-Consumer-Username` (both
    // become HTTP_X_CONSUMER_USERNAME), so such spellings go too, as nginx drops every
    // header with an underscore by default.
    let lookalikes: Vec<HeaderName> = upstream
        .headers
        .keys()
        .filter(|k| k.as_str().contains('_'))
        .filter(|k| {
            let dashed = k.as_str().replace('_', "-");
            [&CONSUMER, &GROUPS, &CREDENTIAL, &ANONYMOUS]
                .iter()
                .any(|(name, _)| name.as_str() == dashed)
        })
        .cloned()
        .collect();
    for name in &lookalikes {
        upstream.remove_header(name);
    }
    let Some(identity) = identity else {
        return Ok(());
    };
    match gate.registry.get(identity.consumer) {
        Some(known) => {
            upstream.insert_header(CONSUMER.1, &known.name_header)?;
            if let Some(groups) = &known.groups_header {
                upstream.insert_header(GROUPS.1, groups)?;
            }
        }
        None => {
            upstream.insert_header(CONSUMER.1, crate::config::ANONYMOUS_CONSUMER)?;
            upstream.insert_header(ANONYMOUS.1, "true")?;
        }
    }
    if let Some(credential) = &identity.credential {
        upstream.insert_header(CREDENTIAL.1, credential)?;
    }
    let hide = &identity.hide;
    for name in &hide.headers {
        upstream.remove_header(name);
    }
    if hide.authorization {
        upstream.remove_header(&http::header::AUTHORIZATION);
    }
    if !hide.params.is_empty() {
        let path = upstream.uri.path();
        let rest = upstream
            .uri
            .query()
            .and_then(|q| auth::without_params(q, &hide.params));
        let uri = match rest {
            Some(query) => format!("{path}?{query}"),
            None => path.to_string(),
        };
        let uri = http::Uri::try_from(uri).map_err(|e| {
            pingora::Error::because(pingora::ErrorType::InternalError, "hiding the key", e)
        })?;
        upstream.set_uri(uri);
    }
    Ok(())
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

/// The compression policy of a response: the route's, or else the listener's.
pub(crate) fn compression<'a>(
    listener: Option<&'a Guard>,
    route: Option<&'a Guard>,
) -> Option<&'a compress::CompressPolicy> {
    route
        .and_then(|r| r.compress.as_ref())
        .or(listener.and_then(|l| l.compress.as_ref()))
}
