//! `weir demo`: three instances behind 127.0.0.1:8080 and https://localhost:8443, stopped by
//! Ctrl-C (SIGINT).

#![allow(clippy::unwrap_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn demo_serves_three_instances_over_http_and_https_and_stops_on_ctrl_c() {
    dev_certs();
    let child = Command::new(weir_bin())
        .arg("demo")
        .env("RUST_LOG", "error")
        .env_remove("WEIR_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut demo = Proc(child);
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
    wait_listening(8080);
    let c = client();
    let mut seen = HashSet::new();
    for _ in 0..3 {
        let resp = c.get("http://127.0.0.1:8080/api/users/42").send().unwrap();
        assert_eq!(resp.status(), 200);
        let echo: serde_json::Value = resp.json().unwrap();
        assert_eq!(echo["path"], "/api/users/42");
        assert!(echo["headers"]["x-request-id"].is_string());
        seen.insert(echo["instance"].as_str().unwrap().to_string());
    }
    let expected: HashSet<String> = ["instance-1", "instance-2", "instance-3"]
        .map(String::from)
        .into();
    assert_eq!(seen, expected);
    let health: serde_json::Value = c
        .get("http://127.0.0.1:8080/health")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "healthy");

    let dev_ca =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("certs/dev/ca.crt")).unwrap();
    let https = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&dev_ca).unwrap())
        .resolve("localhost", ([127, 0, 0, 1], 0).into())
        .build()
        .unwrap();
    wait_listening(8443);
    let resp = https.get("https://localhost:8443/").send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);

    wait_listening(9901);
    let metrics = c.get("http://127.0.0.1:9901/metrics").send().unwrap();
    let metrics = metrics.text().unwrap();
    assert!(
        metrics.contains("weir_requests_total{code_class=\"2xx\",instance=\"instance-1\""),
        "the demo's /metrics counts its requests:\n{metrics}"
    );

    // The demo makes an admin token and prints it: writes with it work, with any other 401.
    let token = poll_until(Duration::from_secs(10), || {
        let banner = banner.lock().unwrap();
        let line = banner.lines().find(|l| l.starts_with("Admin token"))?;
        Some(line.rsplit(' ').next()?.to_string())
    })
    .expect("the demo prints its admin token");
    assert_eq!(token.len(), 32, "a random token: {token}");
    let drain = "http://127.0.0.1:9901/upstreams/demo/targets/instance-3/drain";
    let guessed = c.post(drain).bearer_auth("0".repeat(32)).send().unwrap();
    assert_eq!(guessed.status(), 401);
    let drained = c.post(drain).bearer_auth(&token).send().unwrap();
    assert_eq!(drained.status(), 200);
    for _ in 0..4 {
        let resp = c.get("http://127.0.0.1:8080/").send().unwrap();
        assert_ne!(
            served_by(&resp),
            "instance-3",
            "drained through the printed token"
        );
    }

    signal(demo.0.id(), Signal::SIGINT);
    let exited = poll_until(Duration::from_secs(10), || demo.0.try_wait().unwrap());
    assert!(exited.is_some(), "weir demo did not stop on SIGINT");
    let banner = banner.lock().unwrap();
    assert!(
        banner.contains("curl"),
        "prints the commands to try: {banner}"
    );
    for port in [8080, 8443, 9001, 9002, 9003, 9901] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still open after Ctrl-C"
        );
    }
}
