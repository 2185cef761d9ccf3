//! `weir demo`: three instances behind an HTTP and an HTTPS listener (127.0.0.1:8080 and
//! https://localhost:8443 unless its flags move them, as here), stopped by Ctrl-C (SIGINT).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const INSTANCES: [&str; 3] = ["instance-1", "instance-2", "instance-3"];

#[test]
fn demo_serves_three_instances_over_http_and_https_and_stops_on_ctrl_c() {
    dev_certs();
    // Fresh ports for the HTTP, HTTPS and admin listeners and the three instances.
    let (mut demo, ports) = spawn_listening_on(6, |ports| {
        let address = |i: usize| format!("127.0.0.1:{}", ports[i]);
        let mut command = Command::new(weir_bin());
        command
            .arg("demo")
            .args([
                "--http",
                &address(0),
                "--https",
                &address(1),
                "--admin",
                &address(2),
            ])
            .args([
                "--instances",
                &format!("{},{},{}", address(3), address(4), address(5)),
            ])
            .env("RUST_LOG", "error")
            .env_remove("WEIR_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    });
    let (http, https_port, admin) = (
        format!("http://127.0.0.1:{}", ports[0]),
        ports[1],
        format!("http://127.0.0.1:{}", ports[2]),
    );
    let banner = Arc::new(Mutex::new(String::new()));
    let stdout = BufReader::new(demo.0.stdout.take().unwrap());
    let sink = banner.clone();
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let mut banner = sink.lock().unwrap();
            banner.push_str(&line);
            banner.push('\n');
        }
    });
    // Requests this test sent, by the instance that served them.
    let mut sent: HashMap<String, f64> = HashMap::new();
    let c = client();
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let resp = c.get(format!("{http}/api/users/42")).send().unwrap();
        assert_eq!(resp.status(), 200);
        *sent.entry(served_by(&resp)).or_default() += 1.0;
        let echo: serde_json::Value = resp.json().unwrap();
        assert_eq!(echo["path"], "/api/users/42");
        assert!(echo["headers"]["x-request-id"].is_string());
        seen.insert(echo["instance"].as_str().unwrap().to_string());
    }
    let expected: HashSet<String> = INSTANCES.map(String::from).into();
    assert_eq!(seen, expected);
    let resp = c.get(format!("{http}/health")).send().unwrap();
    *sent.entry(served_by(&resp)).or_default() += 1.0;
    let health: serde_json::Value = resp.json().unwrap();
    assert_eq!(health["status"], "healthy");

    let dev_ca =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/dev/ca.crt")).unwrap();
    let https = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&dev_ca).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], 0).into())
        .build()
        .unwrap();
    let resp = https
        .get(format!("https://localhost:{https_port}/"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    *sent.entry(served_by(&resp)).or_default() += 1.0;

    // /metrics counts exactly the requests each instance served for this test.
    let counted = || {
        let text = c
            .get(format!("{admin}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap();
        let counts: HashMap<String, f64> = INSTANCES
            .iter()
            .map(|id| {
                let labels = [("route", "demo"), ("instance", *id), ("code_class", "2xx")];
                let n = sample(&text, "weir_requests_total", &labels).unwrap_or(-1.0);
                (id.to_string(), n)
            })
            .collect();
        counts
    };
    let expected: HashMap<String, f64> = INSTANCES
        .iter()
        .map(|id| (id.to_string(), sent.get(*id).copied().unwrap_or(0.0)))
        .collect();
    assert_eq!(expected.values().sum::<f64>(), 5.0, "{sent:?}");
    let matched = poll_until(Duration::from_secs(5), || {
        (counted() == expected).then_some(())
    });
    assert!(
        matched.is_some(),
        "the demo's /metrics counts its requests: {:?}, sent {expected:?}",
        counted()
    );

    // The demo makes an admin token and prints it: writes with it work, with any other 401.
    let token = poll_until(Duration::from_secs(10), || {
        let banner = banner.lock().unwrap();
        let line = banner.lines().find(|l| l.starts_with("Admin token"))?;
        Some(line.rsplit(' ').next()?.to_string())
    })
    .expect("the demo prints its admin token");
    assert_eq!(token.len(), 32, "a random token: {token}");
    let drain = format!("{admin}/upstreams/demo/targets/instance-3/drain");
    let guessed = c.post(&drain).bearer_auth("0".repeat(32)).send().unwrap();
    assert_eq!(guessed.status(), 401);
    let drained = c.post(&drain).bearer_auth(&token).send().unwrap();
    assert_eq!(drained.status(), 200);
    for _ in 0..4 {
        let resp = c.get(format!("{http}/")).send().unwrap();
        let by = served_by(&resp);
        assert!(
            ["instance-1", "instance-2"].contains(&by.as_str()),
            "drained through the printed token: served by {by:?}"
        );
    }

    // The instances listen in the demo's own process (spawn_listening_on saw it hold all six
    // ports), so its exit closes every one of them.
    signal(demo.0.id(), Signal::SIGINT);
    let exited = poll_until(Duration::from_secs(10), || demo.0.try_wait().unwrap());
    assert!(exited.is_some(), "weir demo did not stop on SIGINT");
    let banner = banner.lock().unwrap();
    assert!(
        banner.contains("curl") && banner.contains(&http),
        "prints the commands to try, with its addresses: {banner}"
    );
}
