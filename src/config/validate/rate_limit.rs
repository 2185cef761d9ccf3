//! Validation of rate limits: the `rate_limit:` rules of listeners and routes, and the
//! top-level `rate_limits:` stores they count in.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::super::*;
use super::headers::header_name;
use super::messages::unknown;
use super::values::{duration, duration_or_zero};

/// The shortest `per`: a window is counted in tenths, which must stay long enough to mean
/// something.
const MIN_PER: Duration = Duration::from_secs(1);

/// The longest `per`: a year. Longer windows are not rate limits, and the arithmetic in
/// microseconds stays far from overflowing.
const MAX_PER: Duration = Duration::from_secs(366 * 24 * 3600);

/// The largest `limit`: a window counts in 32-bit slots.
const MAX_LIMIT: u64 = u32::MAX as u64;

/// The most keys a local store may hold: its table is reserved whole at the first decision
/// (about 160 bytes a key), so a mistyped value must not take the machine's memory.
const MAX_LOCAL_KEYS: usize = 10_000_000;

/// The most Redis connections: each is a multiplexed connection, so a few serve any load.
const MAX_POOL_SIZE: usize = 64;

/// The named values of `by`.
const RATE_KEYS: [&str; 3] = ["consumer", "ip", "route"];

/// `policies.rate_limit` at `path`; `redis` says whether `rate_limits.redis` is configured.
pub(super) fn rules(
    raw: &[RawRateLimit],
    path: &str,
    redis: bool,
    report: &mut Report,
) -> Vec<RateLimitRule> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, r)| rule(r, &join_index(path, i), redis, report))
        .collect()
}

fn rule(raw: &RawRateLimit, path: &str, redis: bool, report: &mut Report) -> Option<RateLimitRule> {
    let mut valid = true;
    if raw.limit == 0 {
        report.value(
            &join_key(path, "limit"),
            "must be at least 1 (to refuse every request, use `ip: { deny: [0.0.0.0/0, ::/0] }`)",
        );
        valid = false;
    }
    if raw.limit > MAX_LIMIT {
        report.value(
            &join_key(path, "limit"),
            format!("must be at most {MAX_LIMIT}"),
        );
        valid = false;
    }
    let per_path = join_key(path, "per");
    let per = duration_or_zero(Some(&raw.per), &per_path, MIN_PER, report);
    if per < MIN_PER {
        report.value(&per_path, "must be at least 1s");
        valid = false;
    } else if per > MAX_PER {
        report.value(&per_path, "must be at most 366d");
        valid = false;
    }
    let by_path = join_key(path, "by");
    let by = match &raw.by {
        RawRateKey::Named(name) => match name.as_str() {
            "consumer" => Some(RateKey::Consumer),
            "ip" => Some(RateKey::Ip),
            "route" => Some(RateKey::Route),
            "header" => {
                report.value(&by_path, "name the header: `by: { header: X-Tenant }`");
                None
            }
            other => {
                let message = unknown(other, "rate-limit key", &RATE_KEYS);
                report.value(&by_path, format!("{message}, or {{ header: NAME }}"));
                None
            }
        },
        RawRateKey::Header(name) => {
            header_name(name, &join_key(&by_path, "header"), report).map(RateKey::Header)
        }
    };
    let burst_path = join_key(path, "burst");
    let burst = raw.burst.unwrap_or(raw.limit);
    if raw.burst == Some(0) {
        report.value(&burst_path, "must be at least 1");
        valid = false;
    } else if burst > raw.limit && raw.limit > 0 {
        report.value(
            &burst_path,
            format!(
                "burst {burst} is more than limit {}: no more than `limit` requests ever pass \
                 in one `per`; raise `limit` instead",
                raw.limit
            ),
        );
        valid = false;
    }
    if raw.store == RateStore::Redis && !redis {
        report.value(
            &join_key(path, "store"),
            "`store: redis` needs the Redis server: add `rate_limits: { redis: { url: \
             redis://HOST:6379 } }` at the top level of the file",
        );
        valid = false;
    }
    if raw.headers == RateHeaders::Kong && !KONG_PERIODS.contains(&per) {
        report.value(
            &join_key(path, "headers"),
            "`headers: kong` names the period (X-RateLimit-Limit-Minute): `per` must be 1s, \
             1m, 1h or 1d; use `headers: ietf` for other periods",
        );
        valid = false;
    }
    Some(RateLimitRule {
        limit: raw.limit,
        per,
        by: by?,
        burst,
        store: raw.store,
        headers: raw.headers,
    })
    .filter(|_| valid)
}

/// Top-level `rate_limits:`.
pub(super) fn stores(raw: Option<&RawRateLimits>, report: &mut Report) -> RateLimits {
    let Some(raw) = raw else {
        return RateLimits::default();
    };
    let max_keys = raw
        .local
        .as_ref()
        .and_then(|l| l.max_keys)
        .unwrap_or(DEFAULT_RATE_LIMIT_MAX_KEYS);
    if !(1..=MAX_LOCAL_KEYS).contains(&max_keys) {
        report.value(
            "rate_limits.local.max_keys",
            format!("must be from 1 to {MAX_LOCAL_KEYS}"),
        );
    }
    RateLimits {
        local_max_keys: max_keys.clamp(1, MAX_LOCAL_KEYS),
        redis: raw.redis.as_ref().map(|r| redis(r, report)),
        on_store_error: raw.on_store_error,
    }
}

fn redis(raw: &RawRedisStore, report: &mut Report) -> RedisStore {
    let path = "rate_limits.redis";
    let lower = raw.url.to_ascii_lowercase();
    let scheme = lower.starts_with("redis://") || lower.starts_with("rediss://");
    if !scheme || redis::Client::open(raw.url.as_str()).is_err() {
        // Never quoted whole: the URL may hold a password.
        report.value(
            &join_key(path, "url"),
            format!(
                "`{}` is not a Redis URL; write redis://[user:password@]HOST[:PORT][/DB] (or \
                 rediss:// for TLS)",
                redacted_url(&raw.url)
            ),
        );
    }
    let pool_size = raw.pool_size.unwrap_or(DEFAULT_REDIS_POOL_SIZE);
    if !(1..=MAX_POOL_SIZE).contains(&pool_size) {
        report.value(
            &join_key(path, "pool_size"),
            format!("must be from 1 to {MAX_POOL_SIZE}"),
        );
    }
    RedisStore {
        url: raw.url.clone(),
        timeout: duration(
            raw.timeout.as_deref(),
            &join_key(path, "timeout"),
            DEFAULT_REDIS_TIMEOUT,
            report,
        ),
        pool_size: pool_size.clamp(1, MAX_POOL_SIZE),
    }
}
