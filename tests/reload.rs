//! In-place reload (`weir reload`, SIGHUP) under a continuous load of keep-alive and
//! new-connection clients: routing moves, nothing fails, a bad file changes nothing, and
//! live health state carries over.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

/// One listener, a catch-all route to `app`, whose targets are `instances`, plus `extra`.
fn config(instances: &[&Instance], extra: &str) -> String {
    let targets: Vec<String> = instances
        .iter()
        .map(|i| format!("{{ address: \"{}\", name: {} }}", i.address(), i.id))
        .collect();
    format!(
        "server: {{ pid_file: \"{{dir}}/weir.pid\" }}\n\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{}]\n{extra}",
        targets.join(", ")
    )
}

/// `weir reload --config FILE`.
fn weir_reload(weir: &Weir) -> std::process::Output {
    Command::new(weir_bin())
        .args(["reload", "--config"])
        .arg(weir.config())
        .output()
        .unwrap()
}

/// Waits until `n` requests in a row are all served by `expected`.
fn served_only_by(weir: &Weir, expected: &HashSet<String>, n: usize) -> bool {
    let c = client();
    let mut streak = 0;
    poll_until(Duration::from_secs(10), || {
        let by = served_by(&c.get(weir.url("/")).send().ok()?);
        streak = if expected.contains(&by) {
            streak + 1
        } else {
            0
        };
        (streak >= n).then_some(())
    })
    .is_some()
}

#[test]
fn twenty_reloads_under_load_move_traffic_and_fail_no_request() {
    let (a1, a2) = (Instance::start("a1"), Instance::start("a2"));
    let (b1, b2) = (Instance::start("b1"), Instance::start("b2"));
    let set_a = config(&[&a1, &a2], "");
    let set_b = config(&[&b1, &b2], "");
    let weir = Weir::start_logging(&set_a, "info");
    let load = Load::mixed(weir.url("/"), 20);
    for round in 0..20 {
        let (yaml, ids) = if round % 2 == 0 {
            (&set_b, ["b1", "b2"])
        } else {
            (&set_a, ["a1", "a2"])
        };
        weir.rewrite(yaml);
        let out = weir_reload(&weir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected: HashSet<String> = ids.map(String::from).into();
        assert!(
            served_only_by(&weir, &expected, 10),
            "round {round}: not served by {expected:?}"
        );
    }
    let tally = load.finish();
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);
    assert!(tally.ok > 200, "only {} requests", tally.ok);
    assert_eq!(weir.log_count("reloaded "), 20);
}

#[test]
fn a_reload_that_changes_listeners_applies_the_rest_and_points_to_upgrade() {
    let (a1, b1) = (Instance::start("a1"), Instance::start("b1"));
    let weir = Weir::start_logging(&config(&[&a1], ""), "info");
    let moved = config(&[&b1], "")
        .replace("weir.pid\"", "weir.pid\", graceful_shutdown_timeout: 3s")
        .replace(
            "routes:",
            "  - { name: second, address: \"127.0.0.1:{port2}\" }\nroutes:",
        );
    weir.rewrite(&moved);
    let out = weir_reload(&weir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    weir.wait_log(
        &["listeners were added", "needs `weir upgrade`"],
        Duration::from_secs(5),
    )
    .expect("the reload says listeners need an upgrade");
    weir.wait_log(&["the server section changed"], Duration::ZERO)
        .expect("and so do process settings");
    let only_b1: HashSet<String> = ["b1".to_string()].into();
    assert!(
        served_only_by(&weir, &only_b1, 20),
        "routing changed all the same"
    );
}

#[test]
fn an_invalid_reload_changes_nothing_and_says_why() {
    let (a1, b1) = (Instance::start("a1"), Instance::start("b1"));
    let weir = Weir::start_logging(&config(&[&a1], ""), "info");
    let load = Load::mixed(weir.url("/"), 20);
    let broken = config(&[&b1], "    retries: many\n");
    weir.rewrite(&broken);
    // `weir reload` checks first and does not signal.
    let out = weir_reload(&weir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let location = format!("{}:9:14: upstreams.app.retries", weir.config().display());
    assert!(stderr.starts_with(&location), "{stderr}");
    // A SIGHUP sent anyway is refused by the running weir, which says why.
    weir.signal(Signal::SIGHUP);
    weir.wait_log(&["reload failed", &location], Duration::from_secs(5))
        .expect("the refused reload is logged with its location");
    let only_a1: HashSet<String> = ["a1".to_string()].into();
    assert!(served_only_by(&weir, &only_a1, 20));
    let tally = load.finish();
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);
    assert_eq!(tally.by_instance.get("b1"), None);
}

#[test]
fn a_reload_keeps_an_unhealthy_instance_out() {
    let good = Instance::start("good");
    let sick = Instance::start_with("sick", &["--health-status", "500"]);
    let checks = "    health_check: { path: /health, interval: 100ms, unhealthy_failures: 1 }\n";
    let weir = Weir::start_logging(&config(&[&good, &sick], checks), "info");
    weir.wait_log(&["sick", "unhealthy"], Duration::from_secs(5))
        .expect("the sick instance is marked unhealthy");
    // A reload that does not touch the instances: the checks' verdict stays. (Fresh state
    // would start healthy and need three failed checks, 5 s apart, to go.)
    let checks_slower =
        "    health_check: { path: /health, interval: 5s, unhealthy_failures: 3 }\n    retries: 1\n";
    weir.rewrite(&config(&[&good, &sick], checks_slower));
    let out = weir_reload(&weir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    weir.wait_log(&["reloaded "], Duration::from_secs(5))
        .expect("the reload is applied");
    let served: HashSet<String> = serving(&weir, 20).into_iter().collect();
    assert_eq!(served, ["good".to_string()].into());
}

/// The health verdict and requests in flight of the one instance of `upstream`, from the
/// admin API.
fn instance_state(admin: u16, upstream: &str) -> (String, u64) {
    let url = format!("http://127.0.0.1:{admin}/upstreams/{upstream}/health");
    let body: serde_json::Value = client().get(url).send().unwrap().json().unwrap();
    let instance = &body["data"][0];
    let health = instance["health"].as_str().unwrap_or_default().to_string();
    (health, instance["in_flight"].as_u64().unwrap_or_default())
}

/// Two upstreams that name the same instance with different checks keep their own state
/// (verdict, schedule, in-flight count), before a reload and after it.
#[test]
fn upstreams_sharing_an_address_keep_their_own_health_across_a_reload() {
    // Slow enough that a request is seen in flight; checks wait longer than it takes.
    let shared = Instance::start_slow("shared", Duration::from_millis(600));
    let check = |expected: &str| {
        format!(
            "    health_check: {{ type: http, path: /health, expected_status: [{expected}], \
             interval: 200ms, timeout: 2s, healthy_successes: 1, unhealthy_failures: 1 }}\n    \
             panic_mode: false\n"
        )
    };
    let yaml = format!(
        "server: {{ pid_file: \"{{dir}}/weir.pid\" }}\n\
         listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n\
         routes:\n  - {{ name: a, paths: [/a], upstream: passing }}\n  \
         - {{ name: b, paths: [/b], upstream: failing }}\n\
         upstreams:\n  passing:\n    targets: [{{ address: \"{addr}\" }}]\n{pass}  \
         failing:\n    targets: [{{ address: \"{addr}\" }}]\n{fail}",
        addr = shared.address(),
        pass = check("200"),
        fail = check("204"),
    );
    let weir = Weir::start_logging(&yaml, "info");
    let verdicts = || {
        (
            instance_state(weir.port2, "passing").0,
            instance_state(weir.port2, "failing").0,
        )
    };
    let expected = ("healthy".to_string(), "unhealthy".to_string());
    poll_until(Duration::from_secs(10), || {
        (verdicts() == expected).then_some(())
    })
    .expect("each upstream's check decides its own verdict");

    weir.rewrite(&format!("{yaml}# reloaded\n"));
    weir.signal(nix::sys::signal::Signal::SIGHUP);
    weir.wait_log(&["reloaded"], Duration::from_secs(10))
        .expect("the reload is applied");
    poll_until(Duration::from_secs(10), || {
        (verdicts() == expected).then_some(())
    })
    .expect("verdicts stay apart after the reload");
    // One state object per upstream: a request through one counts in its state alone.
    let url = weir.url("/a");
    let request = std::thread::spawn(move || client().get(url).send().unwrap().status());
    let failing = poll_until(Duration::from_secs(5), || {
        let (_, passing) = instance_state(weir.port2, "passing");
        (passing == 1).then(|| instance_state(weir.port2, "failing").1)
    })
    .expect("the request to /a is seen in flight");
    assert_eq!(failing, 0, "the other upstream's count stays apart");
    assert_eq!(request.join().unwrap(), 200);
    assert_eq!(client().get(weir.url("/b")).send().unwrap().status(), 503);
}
