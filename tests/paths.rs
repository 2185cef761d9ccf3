//! Path normalization through the real binary: the path routing matches, the upstream
//! receives and the access log shows is the normalized one, a listener's `limits` say how
//! slashes are read, and paths weir refuses are a counted 400 that reaches no upstream. Requests go over raw TCP: a client crate would remove dot
//! segments or fix escapes itself, and the test would prove nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// One answer read off the socket.
struct Answer {
    status: u16,
    /// Header lines, names lowercased.
    headers: Vec<(String, String)>,
    body: String,
    /// The connection it came on.
    stream: TcpStream,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    /// Whether weir closed the connection after the answer (the client did not ask it to):
    /// anything else, more bytes or a connection left open, is not a close.
    fn closed(mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        matches!(self.stream.read(&mut [0u8; 64]), Ok(0))
    }
}

/// Sends `GET target` as written, on a keep-alive connection, with `Host: host`; reads one
/// answer (by its `Content-Length`).
fn get(port: u16, target: &str, host: &str) -> Answer {
    send(
        port,
        &format!("GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n"),
    )
}

/// Sends `head` as written; reads one answer (by its `Content-Length`).
fn send(port: u16, head: &str) -> Answer {
    let target = head.lines().next().unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_len, length) = loop {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "{target}: closed before an answer");
        bytes.extend_from_slice(&buf[..n]);
        if let Some(at) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..at]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            break (at + 4, length);
        }
    };
    while bytes.len() < head_len + length {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "{target}: closed inside the body");
        bytes.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&bytes[..head_len - 4]).to_string();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    Answer {
        status: status.parse().unwrap(),
        headers: lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
            .collect(),
        body: String::from_utf8_lossy(&bytes[head_len..]).to_string(),
        stream,
    }
}

/// The lines of `file` once it has at least `n`.
fn log_lines(file: &Path, n: usize) -> Vec<Value> {
    poll_until(Duration::from_secs(5), || {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        (lines.len() >= n).then_some(lines)
    })
    .unwrap_or_else(|| panic!("{} has fewer than {n} lines", file.display()))
}

/// Routes `public` (`/public`), `admin` (`/admin`), `pinned` (`/admin` on host `pinned.test`)
/// and `svc` (`/svc`, prefix stripped), each to a demo instance named after it that echoes
/// the path it received; `listener` is added to the listener's mapping, and the access log
/// goes to `access.log` as JSON.
struct Routes(RouteTable);

impl Routes {
    fn start(listener: &str) -> Self {
        let routes = [
            ("public", "[]", "[/public]", false),
            ("admin", "[]", "[/admin]", false),
            ("pinned", "[pinned.test]", "[/admin]", false),
            ("svc", "[]", "[/svc]", true),
        ];
        let top = "access_log: { format: json, path: access.log }\n";
        Self(RouteTable::start(listener, top, &routes))
    }

    /// Asserts that `target` is served by `route`'s instance, which received `upstream`.
    fn assert_served(&self, target: &str, host: &str, route: &str, upstream: &str) {
        let answer = get(self.0.weir.port, target, host);
        assert_eq!(answer.status, 200, "{target}: {}", answer.body);
        assert_eq!(answer.header("x-upstream-instance"), route, "{target}");
        assert_eq!(answer.json()["path"], upstream, "{target}");
    }
}

#[test]
fn routing_and_the_upstream_see_the_normalized_path() {
    let routes = Routes::start("");
    for (target, route, upstream) in [
        ("/public/../admin", "admin", "/admin"),
        ("/public/./x/../y", "public", "/public/y"),
        ("/public/%2e%2E/admin/x", "admin", "/admin/x"),
        ("/%61dmin", "admin", "/admin"),
        ("//admin", "admin", "/admin"),
        ("/admin//a///b", "admin", "/admin/a/b"),
        ("/admin/x/..", "admin", "/admin/"),
        (
            "/admin/%7euser/%c3%a9?q=/../%2e",
            "admin",
            "/admin/~user/%C3%A9?q=/../%2e",
        ),
        // Decoded once: `%25` is `%`, and what follows it stays text.
        (
            "/public/%252e%252e/admin",
            "public",
            "/public/%252e%252e/admin",
        ),
        ("/svc/a/./b/../c?q=1", "svc", "/a/c?q=1"),
        ("/svc/../svc/x", "svc", "/x"),
    ] {
        routes.assert_served(target, "test", route, upstream);
    }
    // The absolute-form routes by its authority, with the normalized path, even without
    // a Host (HTTP/1.0), and is forwarded in absolute-form.
    let absolute = "http://pinned.test/public/../admin/x?q=1";
    routes.assert_served(absolute, "pinned.test", "pinned", "/admin/x?q=1");
    let without_host = send(
        routes.0.weir.port,
        &format!("GET {absolute} HTTP/1.0\r\n\r\n"),
    );
    assert_eq!(without_host.status, 200, "{}", without_host.body);
    assert_eq!(without_host.header("x-upstream-instance"), "pinned");
    assert_eq!(without_host.json()["path"], "/admin/x?q=1");
    // A way out of `/public` that leads nowhere is no route, never `public`.
    let nowhere = get(routes.0.weir.port, "/public/../secret", "test");
    assert_eq!(nowhere.status, 404, "{}", nowhere.body);
}

#[test]
fn refused_paths_are_a_400_with_the_request_id_that_reach_no_upstream() {
    let backend = Backend::start(&[], "ok");
    let weir = Weir::start(&format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n  - {{ name: all, paths: [/], upstream: app }}\n\
         upstreams:\n  app: {{ targets: [{{ address: \"{}\" }}] }}\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n",
        backend.address()
    ));
    let refusals = [
        ("/../x", "the path climbs above `/`"),
        ("/%2e%2e/x", "the path climbs above `/`"),
        ("/a/.%2E/../x", "the path climbs above `/`"),
        ("/a%2Fb", "the path contains an encoded `/`"),
        ("/a/..%2fetc", "the path contains an encoded `/`"),
        ("/a%00b", "the path contains a NUL byte"),
        ("/%zz", "the path contains a malformed percent-escape"),
        ("/a%", "the path contains a malformed percent-escape"),
        ("/a%1", "the path contains a malformed percent-escape"),
        ("*", "the path does not start with `/`"),
    ];
    for (target, error) in refusals {
        let answer = get(weir.port, target, "test");
        assert_eq!(answer.status, 400, "{target}: {}", answer.body);
        assert_eq!(answer.header("content-type"), "application/json");
        let body = answer.json();
        assert_eq!(body["status"], 400, "{target}");
        assert_eq!(body["error"], error, "{target}");
        let id = answer.header("x-request-id");
        assert!(!id.is_empty(), "{target}: no request id");
        assert_eq!(body["request_id"], id, "{target}");
        assert!(answer.closed(), "{target}: the connection stays open");
    }
    assert_eq!(backend.requests(), 0, "a refused path reached the upstream");
    let labels = [("listener", "web"), ("reason", "bad_path")];
    let counted = sample(&scrape(weir.port2), "weir_rejected_requests_total", &labels);
    assert_eq!(counted, Some(refusals.len() as f64));
    let served = get(weir.port, "/still/../served", "test");
    assert_eq!(served.status, 200);
    assert_eq!(backend.requests(), 1);
}

#[test]
fn a_listener_may_allow_encoded_slashes_and_keep_double_slashes() {
    let routes = Routes::start(", limits: { allow_encoded_slashes: true, merge_slashes: false }");
    for (target, upstream) in [
        ("/admin/a%2fb", "/admin/a%2Fb"),
        // An encoded slash is no separator: `a%2F..` is not a `..` segment.
        ("/admin/a%2F../b", "/admin/a%2F../b"),
        ("/admin//x/./y", "/admin//x/y"),
    ] {
        routes.assert_served(target, "test", "admin", upstream);
    }
    let unmerged = get(routes.0.weir.port, "//admin", "test");
    assert_eq!(unmerged.status, 404, "`//admin` is not `/admin` unmerged");
    let climbing = get(routes.0.weir.port, "/admin/../../x", "test");
    assert_eq!(climbing.status, 400, "{}", climbing.body);
}

#[test]
fn the_access_log_shows_the_normalized_path() {
    let routes = Routes::start("");
    let log = routes.0.weir.dir.path().join("access.log");
    routes.assert_served(
        "/public/../admin/%61?x=%2e",
        "test",
        "admin",
        "/admin/a?x=%2e",
    );
    let refused = get(routes.0.weir.port, "/../etc/passwd", "test");
    assert_eq!(refused.status, 400);
    let lines = log_lines(&log, 2);
    let logged: Vec<(&str, u64)> = lines
        .iter()
        .map(|l| (l["path"].as_str().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        logged,
        [("/admin/a?x=%2e", 200), ("/../etc/passwd", 400)],
        "a refused path is logged as it came"
    );
}

#[test]
fn over_http2_a_rewritten_path_keeps_its_authority() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("site", &["site.test"], &[]);
    let (pinned, any) = (Instance::start("pinned"), Instance::start("any"));
    let weir = Weir::start(&format!(
        "listeners:\n  - name: secure\n    address: \"127.0.0.1:{{port}}\"\n    protocol: https\n    \
         tls: {{ certificates: [{{ cert: \"{}\", key: \"{}\" }}] }}\n\
         routes:\n  - {{ name: pinned, hosts: [site.test], paths: [/admin], upstream: pinned }}\n  \
         - {{ name: svc, hosts: [site.test], paths: [/svc], upstream: any, strip_prefix: true }}\n  \
         - {{ name: any, upstream: any }}\n\
         upstreams:\n  pinned: {{ targets: [{{ address: \"{}\", name: pinned }}] }}\n  \
         any: {{ targets: [{{ address: \"{}\", name: any }}] }}\n",
        cert.display(),
        key.display(),
        pinned.address(),
        any.address()
    ));
    let authority = format!("site.test:{}", weir.port);
    let resolve = format!("{authority}:127.0.0.1");
    let ca_file = ca.ca().display().to_string();
    // HTTP/2 has no Host header: the host is the request's `:authority`, in its URI, and
    // routing by host and the upstream's `Host` need it after the path is rewritten.
    for (path, instance, upstream) in [
        ("/public/../%61dmin/x", "pinned", "/admin/x"),
        ("/svc/./x/../y", "any", "/y"),
    ] {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--http2", "--path-as-is", "--resolve", &resolve])
            .args(["--cacert", &ca_file, "-w", "\n%{http_version} %{http_code}"])
            .arg(format!("https://{authority}{path}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, status) = text.rsplit_once('\n').unwrap();
        assert_eq!(status, "2 200", "{path}: {text}");
        let echo: Value = serde_json::from_str(body).unwrap();
        assert_eq!(echo["instance"], instance, "{path}: {body}");
        assert_eq!(echo["path"], upstream, "{path}");
        assert_eq!(echo["headers"]["host"], authority.as_str(), "{path}");
    }
}
