//! Rate limits: the `rate_limit:` rules of a listener and a route compiled into [`Rule`]s,
//! the key each request is counted under, the decision in the local or the Redis store, and
//! the `Retry-After` / `RateLimit-*` headers that report it. The stores ([`Stores`]) live in
//! the [`super::Gate`] and are carried from one runtime to the next while their settings
//! stay, so that a reload keeps the counts (and the Redis connections).

mod local;
mod redis;
mod window;

use crate::config::{OnStoreError, RateHeaders, RateKey, RateLimitRule, RateLimits, RateStore};
use http::{HeaderName, HeaderValue};
use local::LocalStore;
use pingora::http::{RequestHeader, ResponseHeader};
use redis::RedisStore;
use std::net::IpAddr;
use std::sync::Arc;
use window::{Limits, Outcome};

/// The stores rules count in, shared by every runtime that keeps their settings.
#[derive(Debug)]
pub(crate) struct Stores {
    local: Arc<LocalStore>,
    redis: Option<Arc<RedisStore>>,
    on_store_error: OnStoreError,
}

impl Stores {
    /// The stores of `limits`: those of `previous` where their settings are the same.
    pub(crate) fn build(
        limits: &RateLimits,
        previous: Option<&Stores>,
    ) -> Result<Self, ::redis::RedisError> {
        let local = match previous {
            Some(p) if p.local.max_keys() == limits.local_max_keys => p.local.clone(),
            _ => Arc::new(LocalStore::new(limits.local_max_keys)),
        };
        let kept = previous
            .and_then(|p| p.redis.as_ref())
            .filter(|r| Some(r.settings()) == limits.redis.as_ref());
        let redis = match (kept, &limits.redis) {
            (Some(kept), _) => Some(kept.clone()),
            (None, Some(settings)) => Some(Arc::new(RedisStore::new(settings)?)),
            (None, None) => None,
        };
        Ok(Self {
            local,
            redis,
            on_store_error: limits.on_store_error,
        })
    }
}

/// Kong's per-period header names, by period (1s, 1m, 1h, 1d).
const KONG_HEADERS: [(HeaderName, HeaderName); 4] = [
    (
        HeaderName::from_static("x-ratelimit-limit-second"),
        HeaderName::from_static("x-ratelimit-remaining-second"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit-minute"),
        HeaderName::from_static("x-ratelimit-remaining-minute"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit-hour"),
        HeaderName::from_static("x-ratelimit-remaining-hour"),
    ),
    (
        HeaderName::from_static("x-ratelimit-limit-day"),
        HeaderName::from_static("x-ratelimit-remaining-day"),
    ),
];
const LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
const REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
const RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// One compiled rule.
#[derive(Debug)]
pub(crate) struct Rule {
    limits: Limits,
    by: RateKey,
    store: RateStore,
    headers: RateHeaders,
    /// Its identity hashed by the local store.
    local_id: u64,
    /// `weir:rl:{identity}:`, the readable start of its Redis keys.
    redis_prefix: String,
    /// Index into [`KONG_HEADERS`] for `headers: kong`.
    kong: Option<usize>,
}

/// Compiles the rules declared by `owner` (`route:NAME` or `listener:NAME`).
pub(crate) fn compile(rules: &[RateLimitRule], owner: &str, stores: &Stores) -> Vec<Rule> {
    rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let per_ms = u64::try_from(r.per.as_millis()).unwrap_or(u64::MAX);
            let by = match &r.by {
                RateKey::Header(name) => format!("header={name}"),
                other => other.label().to_string(),
            };
            // What a rule is: where it is declared and what it counts. A reload that keeps
            // all of it keeps the counts; any change starts afresh.
            let identity = format!("{owner}.{i}.{}per{per_ms}ms.burst{}.{by}", r.limit, r.burst);
            Rule {
                limits: Limits {
                    limit: r.limit,
                    per_ms,
                    burst: r.burst,
                },
                local_id: stores.local.rule_id(&identity),
                redis_prefix: format!("weir:rl:{identity}:"),
                kong: (r.headers == RateHeaders::Kong)
                    .then(|| crate::config::KONG_PERIODS.iter().position(|p| *p == r.per))
                    .flatten(),
                by: r.by.clone(),
                store: r.store,
                headers: r.headers,
            }
        })
        .collect()
}

/// Who a request is, for the keys it is counted under.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// The client address weir derived.
    pub client: IpAddr,
    /// The identified consumer's name (not `anonymous`).
    pub consumer: Option<&'a str>,
    /// The request, for `by: { header }`.
    pub request: &'a RequestHeader,
}

/// The value a request is counted under, tagged so that a consumer named like an address
/// is not counted with that address.
fn key_value<'a>(by: &RateKey, subject: &Subject<'a>, buffer: &'a mut [u8; 17]) -> &'a [u8] {
    let ip = |buffer: &'a mut [u8; 17]| -> &'a [u8] {
        buffer[0] = 1;
        match subject.client {
            IpAddr::V4(v4) => {
                buffer[1..5].copy_from_slice(&v4.octets());
                &buffer[..5]
            }
            IpAddr::V6(v6) => {
                buffer[1..17].copy_from_slice(&v6.octets());
                &buffer[..]
            }
        }
    };
    match by {
        RateKey::Route => &[0],
        RateKey::Ip => ip(buffer),
        RateKey::Consumer => match subject.consumer {
            Some(name) => name.as_bytes(),
            None => ip(buffer),
        },
        RateKey::Header(name) => match subject.request.headers.get(name) {
            Some(value) => value.as_bytes(),
            None => ip(buffer),
        },
    }
}

/// What the admitted requests' rate headers say: the most restrictive rule's numbers, and
/// each `headers: kong` rule's by its period.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Quota {
    /// Limit, remaining and seconds to reset of the rule with the fewest remaining.
    tightest: Option<(u64, u64, u64)>,
    /// Limit and remaining, by Kong period.
    kong: [Option<(u64, u64)>; 4],
}

impl Quota {
    fn add(&mut self, rule: &Rule, outcome: &Outcome) {
        if rule.headers == RateHeaders::None {
            return;
        }
        let seconds = outcome.wait_ms.div_ceil(1000);
        if self
            .tightest
            .is_none_or(|(_, remaining, _)| outcome.remaining < remaining)
        {
            self.tightest = Some((rule.limits.limit, outcome.remaining, seconds));
        }
        if let Some(period) = rule.kong {
            let kong = &mut self.kong[period];
            if kong.is_none_or(|(_, remaining)| outcome.remaining < remaining) {
                *kong = Some((rule.limits.limit, outcome.remaining));
            }
        }
    }

    /// Each header and its value.
    fn each(&self, mut each: impl FnMut(&HeaderName, u64)) {
        if let Some((limit, remaining, reset)) = self.tightest {
            each(&LIMIT, limit);
            each(&REMAINING, remaining);
            each(&RESET, reset);
        }
        for (names, numbers) in KONG_HEADERS.iter().zip(self.kong) {
            if let Some((limit, remaining)) = numbers {
                each(&names.0, limit);
                each(&names.1, remaining);
            }
        }
    }

    /// Sets the headers on an admitted request's response.
    pub(crate) fn apply(&self, response: &mut ResponseHeader) -> pingora::Result<()> {
        let mut result = Ok(());
        self.each(|name, value| {
            if result.is_ok() {
                result = response.insert_header(name.clone(), value).map(|_| ());
            }
        });
        result
    }
}

/// Why a request did not pass.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// A rule's limit was reached: 429.
    Limited {
        /// The `by` label of the rule.
        by: &'static str,
        /// `Retry-After` and the rate headers.
        headers: Vec<(HeaderName, HeaderValue)>,
    },
    /// Redis failed and `on_store_error: deny`: 503.
    StoreDown,
}

/// Decides a request against each list of `rules` in order; the first rule that refuses
/// ends it (the rules before it have counted the request, as Kong's do).
pub(crate) async fn check(
    stores: &Stores,
    rules: [&[Rule]; 2],
    subject: Subject<'_>,
) -> Result<Quota, Refusal> {
    let mut quota = Quota::default();
    for rule in rules[0].iter().chain(rules[1]) {
        let mut buffer = [0; 17];
        let value = key_value(&rule.by, &subject, &mut buffer);
        let outcome = match (rule.store, &stores.redis) {
            (RateStore::Redis, Some(redis)) => {
                // The same 16 hex digits that name a key elsewhere; OpenSSL's one-shot
                // `sha256` would take a global lock.
                let key = rule.redis_prefix.clone() + &super::fingerprint(&super::digest(value));
                match redis.decide(key, rule.limits).await {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        crate::metrics::count_ratelimit_store_error();
                        match stores.on_store_error {
                            OnStoreError::Allow => continue,
                            OnStoreError::Deny => return Err(Refusal::StoreDown),
                        }
                    }
                }
            }
            _ => stores
                .local
                .decide(stores.local.key(rule.local_id, value), rule.limits),
        };
        quota.add(rule, &outcome);
        if !outcome.admitted {
            let mut headers = vec![(
                http::header::RETRY_AFTER,
                HeaderValue::from(outcome.wait_ms.div_ceil(1000).max(1)),
            )];
            // The refusing rule's numbers (it has none left, so it is the tightest), unless
            // it hides them.
            if rule.headers != RateHeaders::None {
                quota.each(|name, value| headers.push((name.clone(), HeaderValue::from(value))));
            }
            return Err(Refusal::Limited {
                by: rule.by.label(),
                headers,
            });
        }
    }
    Ok(quota)
}
