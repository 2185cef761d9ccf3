//! Policies: the gateway layer. Address rules, CORS, authentication, rate limits, body
//! limits and compression are compiled into the runtime (a [`Gate`] of consumers, token issuers and password checks, and a [`Guard`] per
//! listener and route) and run in one fixed order from `request_filter`, each step a function
//! of its own: [`screen`] (the listener's address rules, then the route's), then [`identify`]
//! (the route's `auth`, or without one the listener's), with the CORS [`preflight`] between
//! them, then [`limit`] (the rate limits of the listener and of the route, all of which must
//! pass), then the body limit ([`check_declared`] on the headers, [`check_received`] as the
//! body arrives); [`cors`] decides the CORS headers of a request's answers.
//! A refused request becomes a [`Denied`] (module `refusal`); the consumer they identify
//! travels upstream in `X-Consumer-*` headers (module `forward`).

mod auth;
mod body_limit;
mod compress;
mod consumers;
mod cors;
mod forward;
mod ip;
mod jwks;
mod jwt;
mod password;
mod rate_limit;
mod refusal;

pub(crate) use body_limit::{body_limit, check_declared, check_received, Oversize, BODY_TOO_LARGE};
pub(crate) use compress::{compress, Compression};
pub(crate) use consumers::{digest, fingerprint, Registry};
pub(crate) use cors::{Answer as CorsAnswer, Preflight};
pub(crate) use forward::forward;
pub(crate) use rate_limit::Quota;
pub(crate) use refusal::{log_refused, Denied};

use crate::config::{Config, IpRules, Policies};
use crate::metrics::Denial;
use auth::AuthPolicy;
use consumers::ConsumerError;
use http::{HeaderName, HeaderValue};
use jwt::{IssuerError, Issuers};
use password::Verifier;
use pingora::http::RequestHeader;
use std::borrow::Cow;
use std::net::IpAddr;

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

/// The compression policy of a response: the route's, or else the listener's.
pub(crate) fn compression<'a>(
    listener: Option<&'a Guard>,
    route: Option<&'a Guard>,
) -> Option<&'a compress::CompressPolicy> {
    route
        .and_then(|r| r.compress.as_ref())
        .or(listener.and_then(|l| l.compress.as_ref()))
}
