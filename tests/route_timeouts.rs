//! `routes[].timeouts` through the real binary: a route's `read` replaces its upstream's
//! (shorter and longer), and its `total` ends a request with 504 when it runs out, whatever
//! the upstream's own timeouts, across retries, and in the middle of a slow response.
//! Elapsed times are checked with wide margins: only which timeout ended the request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// One listener on `{port}`, `routes` (list items), and the upstream `app` of `targets`
/// with the upstream settings `upstream` (a YAML flow mapping's inside).
fn config(targets: &[String], upstream: &str, routes: &str) -> String {
    let targets: Vec<String> = targets
        .iter()
        .map(|t| format!("{{ address: \"{t}\" }}"))
        .collect();
    format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
         routes:\n{routes}\
         upstreams:\n  app: {{ targets: [{}], {upstream} }}\n",
        targets.join(", ")
    )
}

/// GET `path`: its status, the `error` of its JSON body (empty if none), and how long it took.
fn get(weir: &Weir, path: &str) -> (u16, String, Duration) {
    let start = Instant::now();
    let r = client().get(weir.url(path)).send().unwrap();
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().unwrap_or_default();
    let error = body["error"].as_str().unwrap_or_default().to_string();
    (status, error, start.elapsed())
}

#[test]
fn total_answers_504_before_the_upstreams_longer_read_timeout() {
    let slow = Instance::start_slow("slow", Duration::from_secs(4));
    let weir = Weir::start(&config(
        &[slow.address()],
        "timeouts: { read: 10s }",
        "  - { name: api, upstream: app, timeouts: { total: 1s } }\n",
    ));
    let (status, error, took) = get(&weir, "/");
    assert_eq!(status, 504);
    assert_eq!(error, "the route's total timeout expired");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "{took:?}"
    );
}

#[test]
fn a_routes_read_timeout_replaces_the_upstreams() {
    let slow = Instance::start_slow("slow", Duration::from_millis(1500));
    let weir = Weir::start(&config(
        &[slow.address()],
        "timeouts: { read: 800ms }",
        "  - { name: patient, paths: [/patient], upstream: app, timeouts: { read: 10s } }\n  \
         - { name: hasty, paths: [/hasty], upstream: app, timeouts: { read: 200ms } }\n  \
         - { name: plain, upstream: app }\n",
    ));
    let (status, _, took) = get(&weir, "/patient");
    assert_eq!(status, 200, "the route's 10s over the upstream's 800ms");
    assert!(took >= Duration::from_millis(1400), "{took:?}");
    let (status, error, took) = get(&weir, "/plain");
    assert_eq!((status, error.as_str()), (504, "the upstream timed out"));
    assert!(took >= Duration::from_millis(700), "{took:?}");
    let (status, error, hasty) = get(&weir, "/hasty");
    assert_eq!((status, error.as_str()), (504, "the upstream timed out"));
    assert!(
        hasty < took,
        "the route's 200ms: {hasty:?}, the upstream's 800ms: {took:?}"
    );
}

#[test]
fn total_bounds_every_attempt_and_retry() {
    // Two instances that take the request and hang up a second later: each failure is
    // retried on the other instance.
    let hang = || RawBackend::start(Behaviour::HangUp(Duration::from_secs(1)));
    let (a, b) = (hang(), hang());
    let weir = Weir::start(&config(
        &[a.address(), b.address()],
        "retries: 2",
        "  - { name: bounded, paths: [/bounded], upstream: app, timeouts: { total: 1200ms } }\n  \
         - { name: unbounded, upstream: app }\n",
    ));
    let (status, _, unbounded) = get(&weir, "/unbounded");
    assert!(status >= 502, "{status}");
    assert!(unbounded >= Duration::from_millis(1900), "{unbounded:?}");
    let (status, error, bounded) = get(&weir, "/bounded");
    assert_eq!(
        (status, error.as_str()),
        (504, "the route's total timeout expired")
    );
    assert!(
        bounded >= Duration::from_millis(1100) && bounded < Duration::from_millis(1900),
        "{bounded:?}"
    );
    // Both instances were tried for the bounded request too: the retry started, capped.
    let connections = a.connections().len() + b.connections().len();
    assert!(connections >= 4, "{connections}");
}

#[test]
fn total_cuts_a_slow_response_short() {
    // 100 bytes, one every 100 ms: 10 s without a total.
    let dribble = RawBackend::start(Behaviour::Dribble(Duration::from_millis(100)));
    let weir = Weir::start(&config(
        &[dribble.address()],
        "retries: 0",
        "  - { name: api, upstream: app, timeouts: { total: 1s } }\n",
    ));
    let start = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: app\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let took = start.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.len() < 100, "the whole body came: {answer}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}
