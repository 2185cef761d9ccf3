//! Validation of one upstream: targets, balancing, timeouts, health checks, passive
//! ejection, retries and discovery.

use super::super::report::{join_index, join_key, Report};
use super::super::schema::*;
use super::super::*;
use super::headers::{header_edits, header_name, header_rules};
use super::routes::host_pattern;
use super::values::{beside, duration};
use serde_yaml::Value;
use std::collections::HashMap;

pub(super) fn upstream(
    file: &Path,
    name: &str,
    raw: &RawUpstream,
    report: &mut Report,
) -> Upstream {
    let path = join_key("upstreams", name);
    let targets_path = join_key(&path, "targets");
    if raw.targets.is_empty() {
        report.value(
            &targets_path,
            "an upstream needs at least one target, e.g. `- { address: 127.0.0.1:9001 }`",
        );
    }
    let mut seen = HashMap::new();
    let mut targets = Vec::new();
    for (i, t) in raw.targets.iter().enumerate() {
        let t_path = join_index(&targets_path, i);
        let address_path = join_key(&t_path, "address");
        let address = match t.address.parse::<TargetAddr>() {
            Ok(address) => address,
            Err(e) => {
                report.value(&address_path, e.to_string());
                continue;
            }
        };
        if let Some(first) = seen.insert(t.address.clone(), i) {
            report.value(
                &address_path,
                format!("`{}` is already target {first} of this upstream", t.address),
            );
        }
        let weight = t.weight.map_or(DEFAULT_WEIGHT, |w| w.0);
        if weight > MAX_WEIGHT {
            report.value(
                &join_key(&t_path, "weight"),
                format!("weight {weight} is too large: use 0 (no new traffic) to {MAX_WEIGHT}"),
            );
        }
        targets.push(Target {
            name: t.name.clone().unwrap_or_else(|| t.address.clone()),
            address,
            weight: weight.min(MAX_WEIGHT),
            backup: t.backup,
            drain: t.drain,
        });
    }
    let timeouts_path = join_key(&path, "timeouts");
    let t = &raw.timeouts;
    let mut timeout = |raw: &Option<RawDuration>, key: &str, default: Duration| {
        duration(
            raw.as_deref(),
            &join_key(&timeouts_path, key),
            default,
            report,
        )
    };
    let timeouts = Timeouts {
        connect: timeout(&t.connect, "connect", DEFAULT_CONNECT_TIMEOUT),
        read: timeout(&t.read, "read", DEFAULT_READ_TIMEOUT),
        write: timeout(&t.write, "write", DEFAULT_WRITE_TIMEOUT),
        idle: timeout(&t.idle, "idle", DEFAULT_IDLE_TIMEOUT),
    };
    let balance = match &raw.balance {
        RawBalance::Named(BalanceName::RoundRobin | BalanceName::WeightedRoundRobin) => {
            Balance::RoundRobin
        }
        RawBalance::Named(BalanceName::Random) => Balance::Random,
        RawBalance::Named(BalanceName::LeastConn) => Balance::LeastConn,
        RawBalance::Named(BalanceName::P2c) => Balance::P2c,
        RawBalance::Named(BalanceName::IpHash) => Balance::IpHash,
        RawBalance::Hash(RawHashOn::Header(h)) => {
            let at = join_key(&path, "balance.hash.header");
            header_name(h, &at, report).map_or(Balance::RoundRobin, Balance::Header)
        }
        RawBalance::Hash(RawHashOn::Cookie(c)) => {
            let valid = !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if !valid {
                report.value(
                    &join_key(&path, "balance.hash.cookie"),
                    format!("`{c}` is not a valid cookie name"),
                );
            }
            Balance::Cookie(c.clone())
        }
    };
    if raw.resolve_every.is_some() && raw.discovery.is_none() {
        report.value(
            &join_key(&path, "resolve_every"),
            "`resolve_every` needs `discovery: dns`",
        );
    }
    let resolve_every = raw.discovery.map(|RawDiscovery::Dns| {
        let at = join_key(&path, "resolve_every");
        duration(
            raw.resolve_every.as_deref(),
            &at,
            DEFAULT_RESOLVE_EVERY,
            report,
        )
    });
    let slow_start = raw.slow_start.as_deref().map(|s| {
        duration(
            Some(s),
            &join_key(&path, "slow_start"),
            Duration::ZERO,
            report,
        )
    });
    let tls = raw
        .tls
        .as_ref()
        .map(|t| upstream_tls(file, t, &join_key(&path, "tls"), &targets, report));
    Upstream {
        name: name.to_string(),
        balance,
        targets,
        headers: header_rules(&raw.headers, &join_key(&path, "headers"), report),
        timeouts,
        health_check: raw
            .health_check
            .as_ref()
            .map(|h| health_check(h, &join_key(&path, "health_check"), report)),
        passive: passive(&raw.passive, &join_key(&path, "passive"), report),
        retries: raw.retries.unwrap_or(DEFAULT_RETRIES),
        slow_start,
        panic_mode: raw.panic_mode.unwrap_or(true),
        resolve_every,
        tls,
        http2: raw.http2,
    }
}

/// `tls:` of an upstream. Verifying needs a name to verify: an IP-address target without
/// `sni` would have its certificate's name go unchecked, so that is an error.
fn upstream_tls(
    file: &Path,
    raw: &RawUpstreamTls,
    path: &str,
    targets: &[Target],
    report: &mut Report,
) -> UpstreamTls {
    let sni =
        raw.sni
            .as_ref()
            .and_then(|s| match host_pattern(s, &join_key(path, "sni"), report)? {
                HostPattern::Exact(name) => Some(name),
                HostPattern::Wildcard(_) => {
                    report.value(&join_key(path, "sni"), "a server name cannot be a wildcard");
                    None
                }
            });
    let verify = raw.verify.unwrap_or(true);
    let ip_target = targets.iter().find(|t| t.address.socket_addr().is_some());
    if let (true, None, None, Some(t)) = (verify, &raw.sni, &sni, ip_target) {
        report.value(
            path,
            format!(
                "target `{}` is an IP address: set `sni:` to the name its certificate carries, so it can be verified (or `verify: false`)",
                t.address
            ),
        );
    }
    let ca = raw.ca.as_ref().map(|ca| CaBundle {
        file: beside(file, ca),
        at: Setting::new(join_key(path, "ca"), report.locations().clone()),
    });
    if ca.is_some() && !verify {
        report.key(&join_key(path, "ca"), "`ca` is unused with `verify: false`");
    }
    UpstreamTls { sni, verify, ca }
}

fn health_check(raw: &RawHealthCheck, path: &str, report: &mut Report) -> HealthCheck {
    let at = |key: &str| join_key(path, key);
    let mut count = |value: Option<u32>, key: &str, default: u32| match value {
        Some(0) => {
            report.value(&at(key), "must be at least 1");
            default
        }
        Some(n) => n,
        None => default,
    };
    let healthy_successes = count(
        raw.healthy_successes,
        "healthy_successes",
        DEFAULT_HEALTHY_SUCCESSES,
    );
    let unhealthy_failures = count(
        raw.unhealthy_failures,
        "unhealthy_failures",
        DEFAULT_UNHEALTHY_FAILURES,
    );
    let interval = duration(
        raw.interval.as_deref(),
        &at("interval"),
        DEFAULT_CHECK_INTERVAL,
        report,
    );
    let timeout = duration(
        raw.timeout.as_deref(),
        &at("timeout"),
        DEFAULT_CHECK_TIMEOUT,
        report,
    );
    let kind = match raw.kind {
        RawCheckType::Tcp => {
            for (key, given) in [
                ("path", raw.path.is_some()),
                ("host", raw.host.is_some()),
                ("expected_status", raw.expected_status.is_some()),
                ("headers", !raw.headers.is_empty()),
            ] {
                if given {
                    report.value(
                        &at(key),
                        format!("`{key}` only applies to `type: http` checks"),
                    );
                }
            }
            CheckKind::Tcp
        }
        RawCheckType::Http => CheckKind::Http {
            path: check_path(raw.path.as_deref(), &at("path"), report),
            host: raw.host.clone(),
            headers: header_edits(
                &RawHeaderEdits {
                    set: raw.headers.clone(),
                    ..RawHeaderEdits::default()
                },
                path,
                report,
            )
            .set,
            expected_status: match &raw.expected_status {
                Some(list) => list
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| {
                        status_range(v, &join_index(&at("expected_status"), i), report)
                    })
                    .collect(),
                None => vec![(200, 299)],
            },
        },
    };
    HealthCheck {
        kind,
        interval,
        timeout,
        healthy_successes,
        unhealthy_failures,
        initially_healthy: matches!(raw.initially, RawInitially::Healthy),
    }
}

fn check_path(raw: Option<&str>, path: &str, report: &mut Report) -> String {
    let Some(p) = raw else {
        return "/".to_string();
    };
    if !p.starts_with('/') || http::uri::PathAndQuery::try_from(p).is_err() {
        report.value(path, format!("`{p}` is not a request path, e.g. /health"));
    }
    p.to_string()
}

/// `200` or `"200-299"` → an inclusive range of valid statuses.
fn status_range(value: &Value, path: &str, report: &mut Report) -> Option<(u16, u16)> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let (low, high) = text.split_once('-').unwrap_or((&text, &text));
    let code = |s: &str| {
        s.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    match (code(low), code(high)) {
        (Some(l), Some(h)) if l <= h => Some((l, h)),
        _ => {
            report.value(
                path,
                "not a status or range of statuses, e.g. 200 or 200-299 (100 to 599)",
            );
            None
        }
    }
}

fn passive(raw: &RawPassive, path: &str, report: &mut Report) -> Passive {
    let at = |key: &str| join_key(path, key);
    let max_ejection_percent = match raw.max_ejection_percent {
        Some(p) if p > 100 => {
            report.value(&at("max_ejection_percent"), "must be from 0 to 100");
            DEFAULT_MAX_EJECTION_PERCENT
        }
        Some(p) => p,
        None => DEFAULT_MAX_EJECTION_PERCENT,
    };
    for (i, s) in raw.fail_statuses.iter().enumerate() {
        if !(500..=599).contains(s) {
            report.value(
                &join_index(&at("fail_statuses"), i),
                format!("{s} is not a 5xx status; only 500 to 599 can count as failures"),
            );
        }
    }
    Passive {
        max_fails: raw.max_fails.unwrap_or(DEFAULT_MAX_FAILS),
        fail_timeout: duration(
            raw.fail_timeout.as_deref(),
            &at("fail_timeout"),
            DEFAULT_FAIL_TIMEOUT,
            report,
        ),
        max_ejection_time: duration(
            raw.max_ejection_time.as_deref(),
            &at("max_ejection_time"),
            DEFAULT_MAX_EJECTION_TIME,
            report,
        ),
        max_ejection_percent,
        fail_statuses: raw.fail_statuses.clone(),
    }
}
