//! The JSON the admin API reads answer with, built from the current runtime.

use crate::metrics;
use crate::runtime::Runtime;
use crate::upstream::{now_ms, Target};
use serde_json::{json, Value};
use std::time::Duration;

/// Keys whose values are never shown by `GET /config`.
const SECRET_KEYS: [&str; 1] = ["token"];

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
    redact(&mut value, false);
    value
}

/// Replaces the values of secret keys, and of secret headers under a `headers:` key.
fn redact(value: &mut Value, in_headers: bool) {
    match value {
        Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                let lower = key.to_ascii_lowercase();
                let secret = SECRET_KEYS.contains(&lower.as_str())
                    || (in_headers && SECRET_HEADERS.contains(&lower.as_str()));
                if secret && !value.is_null() {
                    *value = "<redacted>".into();
                } else {
                    redact(value, in_headers || key == "headers");
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| redact(v, in_headers)),
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
}
