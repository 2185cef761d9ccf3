//! The access log as an operator reads it: JSON lines that carry the request id the client
//! saw, the combined format, a route kept out, the consumer without its key, logrotate's
//! SIGUSR1, and the log level.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// `/quiet` is a route kept out of the log; everything else goes to `app`.
fn config(app: &Instance, access_log: &str) -> String {
    format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: quiet, paths: [/quiet], upstream: app, access_log: false }}\n  \
         - {{ name: all, paths: [/api], upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: {} }}]\n\
         access_log: {access_log}\n",
        app.address(),
        app.id
    )
}

/// The lines of `file` once it has at least `n`.
fn lines(file: &Path, n: usize) -> Vec<String> {
    poll_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(String::from).collect();
        (lines.len() >= n).then_some(lines)
    })
    .unwrap_or_else(|| panic!("{} has fewer than {n} lines", file.display()))
}

#[test]
fn json_lines_carry_the_request_id_the_client_saw() {
    let app = Instance::start("app-1");
    let weir = Weir::start(&config(&app, "{ format: json, path: access.log }"));
    let log = weir.dir.path().join("access.log");
    let http = client();
    let mut seen = Vec::new();
    for path in ["/api/a?x=1", "/quiet", "/api/b", "/nowhere"] {
        let r = http.get(weir.url(path)).send().unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        seen.push((path, r.status().as_u16(), id));
    }
    let given = http
        .get(weir.url("/api/c"))
        .header("X-Request-ID", "client-id-7")
        .send()
        .unwrap();
    assert_eq!(given.status(), 200);

    let lines = lines(&log, 4);
    let entries: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(entries.len(), 4, "/quiet is not logged: {lines:?}");
    let logged: Vec<(&str, u64, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap(),
                e["status"].as_u64().unwrap(),
                e["request_id"].as_str().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(&str, u64, &str)> = seen
        .iter()
        .filter(|(path, _, _)| *path != "/quiet")
        .map(|(path, status, id)| (*path, u64::from(*status), id.as_str()))
        .chain([("/api/c", 200, "client-id-7")])
        .collect();
    assert_eq!(logged, expected);
    let first = &entries[0];
    assert_eq!(first["method"], "GET");
    assert_eq!(first["client_ip"], "127.0.0.1");
    assert_eq!(first["upstream"], "app");
    assert_eq!(first["instance"], "app-1");
    assert_eq!(first["retries"], 0);
    assert_eq!(first["tls_version"], "");
    assert!(first["bytes"].as_u64().unwrap() > 0);
    assert!(first["duration"].as_f64().unwrap() >= 0.0);
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert!(first["host"].as_str().unwrap().starts_with("127.0.0.1"));
    let unrouted = &entries[2];
    assert_eq!(
        (&unrouted["upstream"], &unrouted["instance"]),
        (&"".into(), &"".into())
    );
}

#[test]
fn combined_lines_and_a_reopen_on_sigusr1() {
    let app = Instance::start("app-1");
    let weir = Weir::start_logging(
        &config(&app, "{ format: combined, path: access.log }"),
        "info",
    );
    let log = weir.dir.path().join("access.log");
    let http = client();
    let r = http
        .get(weir.url("/api/one"))
        .header("User-Agent", "test-agent/1")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let line = lines(&log, 1).remove(0);
    assert!(line.starts_with("127.0.0.1 - - ["), "{line}");
    assert!(
        line.contains("] \"GET /api/one HTTP/1.1\" 200 ")
            && line.ends_with("\"-\" \"test-agent/1\""),
        "{line}"
    );

    // logrotate: move the file away, then SIGUSR1.
    let rotated = weir.dir.path().join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    weir.signal(Signal::SIGUSR1);
    weir.wait_log(
        &["SIGUSR1: reopened the access log"],
        Duration::from_secs(5),
    )
    .expect("the reopen is logged");
    http.get(weir.url("/api/two")).send().unwrap();
    let fresh = lines(&log, 1);
    assert!(fresh[0].contains("/api/two"), "{fresh:?}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(
        old.lines().count(),
        1,
        "the rotated file keeps its line only: {old}"
    );
}

#[test]
fn log_level_sets_the_error_log_unless_rust_log_does() {
    let app = Instance::start("app-1");
    let started = |level: &str| {
        let dir = tempfile::tempdir().unwrap();
        let (_weir, port) = spawn_listening(|port| {
            let yaml = config(&app, "{ path: access.log }").replace("{port}", &port.to_string());
            let path = dir.path().join("weir.yaml");
            std::fs::write(&path, format!("server: {{ log_level: {level} }}\n{yaml}")).unwrap();
            let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
            let mut command = Command::new(weir_bin());
            command
                .arg("--config")
                .arg(&path)
                .env_remove("RUST_LOG")
                .stderr(Stdio::from(stderr));
            command
        });
        client()
            .get(format!("http://127.0.0.1:{port}/nowhere"))
            .send()
            .unwrap();
        lines(&dir.path().join("access.log"), 1);
        std::fs::read_to_string(dir.path().join("stderr")).unwrap()
    };
    assert!(started("info").contains(" INFO "));
    let quiet = started("warn");
    assert!(!quiet.contains(" INFO "), "{quiet}");
}

/// A log file that stops taking lines (a stuck disk; here a pipe nobody reads) costs
/// neither requests nor memory: beyond `queue` waiting lines, lines are dropped and counted.
#[test]
fn a_stuck_log_file_drops_lines_rather_than_holding_requests_or_memory() {
    let app = Instance::start("app-1");
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("access.pipe");
    succeed(Command::new("mkfifo").arg(&fifo));
    // The reader opens the pipe, so that weir's open returns, and never reads from it.
    let (opened, reader) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || opened.send(std::fs::File::open(path).unwrap()));
    let yaml = format!(
        "{}admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n",
        config(
            &app,
            &format!(
                "{{ format: json, path: \"{}\", queue: 100 }}",
                fifo.display()
            )
        )
    );
    let weir = Weir::start(&yaml);
    let _reader = reader.recv_timeout(Duration::from_secs(10)).unwrap();
    let http = client();
    // A pipe holds 64 KiB, a few hundred lines; the queue 100 more.
    let sent = 2000;
    for _ in 0..sent {
        assert_eq!(http.get(weir.url("/api/x")).send().unwrap().status(), 200);
    }
    let metrics_url = format!("http://127.0.0.1:{}/metrics", weir.port2);
    let text = http.get(metrics_url).send().unwrap().text().unwrap();
    let dropped: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("weir_access_log_dropped_total "))
        .expect("weir_access_log_dropped_total is exported")
        .parse()
        .unwrap();
    assert!(
        (sent / 2..sent).contains(&dropped),
        "{dropped} of {sent} lines dropped"
    );
}

/// The key of the consumer of [`keyed`].
const KEY: &str = "listener-key-4d1c";

/// A listener requiring a key (in the query too) for its `/api` route; `extra` appended.
fn keyed(app: &Instance, extra: &str) -> String {
    format!(
        "listeners:\n  - name: web\n    address: \"127.0.0.1:{{port}}\"\n    policies:\n      \
         auth: {{ methods: [key], key_in_query: true }}\n\
         consumers:\n  - {{ name: app-team, keys: [\"{KEY}\"] }}\n\
         routes:\n  - {{ name: api, paths: [/api], upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n{extra}",
        app.address()
    )
}

#[test]
fn the_access_log_names_the_consumer_and_never_holds_a_key() {
    let app = Instance::start("app-1");
    let weir = Weir::start(&keyed(
        &app,
        "access_log: { format: json, path: access.log }\n",
    ));
    let http = client();
    let url = weir.url(&format!("/api/x?a=1&apikey={KEY}"));
    let served: Value = http.get(&url).send().unwrap().json().unwrap();
    assert_eq!(
        served["path"], "/api/x?a=1",
        "the key in the query does not go upstream"
    );
    let refused = http
        .get(weir.url("/api/y?apikey=wrong-guess"))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 401);

    let log = weir.dir.path().join("access.log");
    let lines = poll_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        (text.lines().count() >= 2).then_some(text)
    })
    .expect("two access log lines");
    assert!(
        !lines.contains(KEY) && !lines.contains("wrong-guess"),
        "{lines}"
    );
    let entries: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries[0]["consumer"], "app-team");
    assert_eq!(entries[0]["path"], "/api/x?a=1&apikey=REDACTED");
    assert_eq!(entries[1]["consumer"], "");
    assert_eq!(entries[1]["status"], 401);
}
