//! The JSON the admin API reads answer with, built from the current runtime.

use crate::metrics;
use crate::runtime::Runtime;
use crate::upstream::{now_ms, Target};
use serde_json::{json, Value};
use std::time::Duration;

/// Keys whose values are never shown by `GET /config`: the admin token, a consumer's
/// basic-auth hash, a JWT issuer's shared secret and the SHA-256 of a hashed-at-rest key.
const SECRET_KEYS: [&str; 4] = ["token", "password", "secret", "sha256"];

/// What `GET /config` shows in place of a secret.
const REDACTED: &str = "<redacted>";

/// Header names whose values `GET /config` never shows, anywhere under a `headers:` key
/// (route and upstream header rules, health check headers).
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
];

/// `GET /status`: the process and, per upstream, how many instances are available.
pub(super) fn status(runtime: &Runtime, uptime: Duration) -> Value {
    let now = now_ms();
    let upstreams: Vec<Value> = runtime
        .pools
        .iter()
        .map(|pool| {
            let available = pool
                .targets
                .iter()
                .filter(|t| t.selectable() && t.state.health.available(now))
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
        "uptime_seconds": uptime.as_secs(),
        "config": runtime.config.path.display().to_string(),
        "listeners": runtime.config.listeners.len(),
        "routes": runtime.routes.len(),
        "upstreams": upstreams,
    })
}

/// `GET /upstreams`: every upstream, as Kong lists them.
pub(super) fn upstreams(runtime: &Runtime) -> Value {
    let data: Vec<Value> = runtime
        .pools
        .iter()
        .map(|pool| json!({ "name": pool.name, "instances": pool.targets.len() }))
        .collect();
    json!({ "data": data })
}

/// `GET /upstreams/{name}` (its instances) or, with `health`, `…/health` (with their live
/// state); `None` when there is no such upstream.
pub(super) fn upstream(runtime: &Runtime, name: &str, health: bool) -> Option<Value> {
    let index = runtime.pools.iter().position(|p| p.name == name)?;
    let pool = &runtime.pools[index];
    let routes: Vec<_> = runtime.routes.iter().filter(|r| r.pool == index).collect();
    let now = now_ms();
    let instances: Vec<Value> = pool
        .targets
        .iter()
        .map(|t| {
            let mut instance = target(t);
            if health {
                let state = &t.state.health;
                let ejected_for = state.ejected_for(now);
                instance["health"] = verdict(t, now).as_str().into();
                instance["in_flight"] = t.state.inflight().into();
                instance["ejected_for_seconds"] =
                    ejected_for.map_or(0.0, |d| d.as_secs_f64()).into();
                instance["last_check"] = match state.last_check() {
                    Some(true) => "passed",
                    Some(false) => "failed",
                    None => "none",
                }
                .into();
                let (requests, errors) = routes
                    .iter()
                    .filter_map(|r| r.metrics.by_target.get(t.index))
                    .map(|c| c.totals())
                    .fold((0, 0), |(a, e), (ra, re)| (a + ra, e + re));
                instance["requests"] = requests.into();
                instance["errors"] = errors.into();
                // Cumulative, as Prometheus keeps them: a reader takes quantiles of the
                // difference between two reads, for the latency of that window.
                let buckets = metrics::buckets(&t.metrics.duration);
                instance["latency_buckets"] = buckets
                    .iter()
                    .map(|&(le, n)| {
                        json!([
                            if le.is_finite() {
                                json!(le)
                            } else {
                                json!("+Inf")
                            },
                            n
                        ])
                    })
                    .collect::<Vec<_>>()
                    .into();
            }
            instance
        })
        .collect();
    Some(json!({ "name": pool.name, "data": instances }))
}

/// `GET /upstreams/{name}/targets`, as Kong answers it: each instance as configured, with
/// Kong's `target` (`host:port` as written), `name` and `health` (`HEALTHY`, or
/// `UNHEALTHY` for a target that failed its checks or is ejected, as Kong's passive checks
/// mark one); `None` when there is no such upstream.
pub(super) fn kong_targets(runtime: &Runtime, name: &str) -> Option<Value> {
    let pool = runtime.pools.iter().find(|p| p.name == name)?;
    let now = now_ms();
    let data: Vec<Value> = pool
        .targets
        .iter()
        .map(|t| {
            let mut view = target(t);
            view["name"] = t.label().into();
            view["health"] = match verdict(t, now) {
                Health::Healthy => "HEALTHY",
                Health::Unhealthy | Health::Ejected => "UNHEALTHY",
            }
            .into();
            view
        })
        .collect();
    Some(json!({ "data": data, "next": null }))
}

/// What the checks say of an instance now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Health {
    /// It takes its share.
    Healthy,
    /// It failed its active checks.
    Unhealthy,
    /// Passive checks took it out for a while.
    Ejected,
}

impl Health {
    /// As `GET /upstreams/{name}/health` writes it.
    fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
            Self::Ejected => "ejected",
        }
    }
}

/// The health of `t` at `now`.
fn verdict(t: &Target, now: u64) -> Health {
    let state = &t.state.health;
    match (state.healthy(), state.ejected_for(now)) {
        (false, _) => Health::Unhealthy,
        (true, Some(_)) => Health::Ejected,
        (true, None) => Health::Healthy,
    }
}

/// One instance as configured.
fn target(t: &Target) -> Value {
    json!({
        "instance": t.label(),
        "address": t.addr.to_string(),
        "target": t.configured,
        "weight": t.weight,
        "backup": t.backup,
        "drain": t.drain,
    })
}

/// `GET /config`: the YAML document of the running configuration as JSON, `${VAR}`
/// references as written, secrets replaced.
pub(super) fn config(document: &serde_yaml::Value) -> Value {
    let mut value = serde_json::to_value(document).unwrap_or(Value::Null);
    redact(&mut value, Within::Other);
    value
}

/// Where a value sits, for what `redact` hides in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Within {
    /// Anywhere else: only secret keys.
    Other,
    /// Under a `headers:` key: secret headers too.
    Headers,
    /// In a consumer's `keys:` list: every key written as a string.
    Keys,
}

/// Replaces the values of secret keys, of secret headers under a `headers:` key, and the
/// keys a consumer's `keys:` lists as strings (a hashed key keeps its `id`).
fn redact(value: &mut Value, within: Within) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                let secret = SECRET_KEYS.contains(&lower.as_str())
                    || (within == Within::Headers && SECRET_HEADERS.contains(&lower.as_str()));
                if secret && !value.is_null() {
                    *value = REDACTED.into();
                } else if let (true, Value::String(url)) = (lower == "url", &*value) {
                    // `rate_limits.redis.url` may carry a password.
                    *value = crate::config::redacted_url(url).into_owned().into();
                } else {
                    let inner = match key.as_str() {
                        "headers" => Within::Headers,
                        "keys" => Within::Keys,
                        _ if within == Within::Headers => Within::Headers,
                        _ => Within::Other,
                    };
                    redact(value, inner);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, within)),
        Value::String(_) if within == Within::Keys => *value = REDACTED.into(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_hides_secrets() {
        let yaml = "admin: { token: s3cret }\n\
                    routes:\n  - headers: { request: { set: { Authorization: Basic eA==, \
                    X-Env: prod }, add: { Cookie: a=1 } } }\n\
                    upstreams:\n  app:\n    health_check: { headers: { X-Api-Key: k } }\n";
        let shown = config(&serde_yaml::from_str(yaml).unwrap());
        assert_eq!(shown["admin"]["token"], "<redacted>");
        let request = &shown["routes"][0]["headers"]["request"];
        assert_eq!(request["set"]["Authorization"], "<redacted>");
        assert_eq!(request["set"]["X-Env"], "prod");
        assert_eq!(request["add"]["Cookie"], "<redacted>");
        let check = &shown["upstreams"]["app"]["health_check"]["headers"];
        assert_eq!(check["X-Api-Key"], "<redacted>");
    }

    #[test]
    fn config_hides_credentials() {
        let yaml = "consumers:\n  - name: app\n    keys:\n      - \"${APP_KEY}\"\n      - plain-key\n      \
                    - { id: 7f0c, sha256: e3b0c442 }\n    keys_file: secrets/app.keys\n    \
                    basic: { user: app, password: \"$2y$10$abc\" }\n  \
                    - { name: ops, basic: { user: ops, htpasswd_file: secrets/users } }\n\
                    jwt:\n  - { name: idp, issuer: https://idp/, algorithms: [HS256], secret: s }\n";
        let shown = config(&serde_yaml::from_str(yaml).unwrap());
        let consumer = &shown["consumers"][0];
        assert_eq!(consumer["keys"][0], "<redacted>");
        assert_eq!(consumer["keys"][1], "<redacted>");
        assert_eq!(consumer["keys"][2]["id"], "7f0c", "an id is no secret");
        assert_eq!(consumer["keys"][2]["sha256"], "<redacted>");
        assert_eq!(consumer["keys_file"], "secrets/app.keys");
        assert_eq!(consumer["basic"]["user"], "app");
        assert_eq!(consumer["basic"]["password"], "<redacted>");
        let filed = &shown["consumers"][1]["basic"];
        assert_eq!(
            filed["htpasswd_file"], "secrets/users",
            "a path is no secret"
        );
        assert_eq!(shown["jwt"][0]["secret"], "<redacted>");
        assert_eq!(shown["jwt"][0]["issuer"], "https://idp/");
        assert!(!shown.to_string().contains("plain-key"), "{shown}");
    }

    #[test]
    fn config_hides_the_redis_password() {
        let yaml = "rate_limits:\n  redis: { url: \"redis://weir:s3cret@cache:6379/2\" }\n";
        let shown = config(&serde_yaml::from_str(yaml).unwrap());
        let url = &shown["rate_limits"]["redis"]["url"];
        assert_eq!(url, "redis://weir:<redacted>@cache:6379/2");
        let plain = "rate_limits:\n  redis: { url: \"redis://cache:6379\" }\n";
        let shown = config(&serde_yaml::from_str(plain).unwrap());
        assert_eq!(shown["rate_limits"]["redis"]["url"], "redis://cache:6379");
    }
}
