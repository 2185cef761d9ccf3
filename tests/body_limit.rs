//! `max_body_size` through the real binary, against a backend that records every byte it
//! gets: a declared body over the limit is refused with 413 before any connection to the
//! instance, `Expect: 100-continue` gets the 413 instead of a 100, a chunked body that
//! crosses the limit never reaches the instance whole, the smaller of the listener's and the
//! route's limits applies, and hostile `Content-Length` values are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The listener accepts 2k; route `small` 1k (its own, the smaller), route `large` asks for
/// 4k but gets the listener's 2k; every other path has the listener's.
fn config(backend: &RawBackend) -> String {
    format!(
        "listeners:\n  - name: web\n    address: \"127.0.0.1:{{port}}\"\n    \
         policies: {{ max_body_size: 2k }}\n\
         routes:\n  \
         - {{ name: small, paths: [/small], upstream: app, policies: {{ max_body_size: 1k }} }}\n  \
         - {{ name: large, paths: [/large], upstream: app, policies: {{ max_body_size: 4k }} }}\n  \
         - {{ name: open, upstream: app }}\n\
         upstreams:\n  app:\n    retries: 2\n    targets: [{{ address: \"{}\" }}]\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n",
        backend.address()
    )
}

/// A POST head to `path` with `headers` (each ending in CRLF).
fn head(path: &str, headers: &str) -> Vec<u8> {
    format!("POST {path} HTTP/1.1\r\nHost: app\r\n{headers}\r\n").into_bytes()
}

fn assert_refused(answer: &str) {
    assert_eq!(status(answer), Some(413), "{answer}");
    assert!(
        answer.contains("\"error\":\"the request body is larger than this route accepts\""),
        "{answer}"
    );
}

/// A chunk of `n` bytes in chunked framing.
fn chunk(n: usize) -> Vec<u8> {
    let mut c = format!("{n:x}\r\n").into_bytes();
    c.extend(std::iter::repeat_n(b'a', n));
    c.extend_from_slice(b"\r\n");
    c
}

#[test]
fn a_declared_body_over_the_limit_never_reaches_the_instance() {
    let backend = RawBackend::start(Behaviour::Answer);
    let weir = Weir::start(&config(&backend));
    let wait = Duration::from_secs(5);
    // Only the head: weir answers without waiting for a body.
    let answer = exchange(weir.port, &head("/small", "Content-Length: 1025\r\n"), wait);
    assert_refused(&answer);
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    // The body sent along with the head changes nothing.
    let mut request = head("/small", "Content-Length: 2000\r\n");
    request.extend(std::iter::repeat_n(b'a', 2000));
    assert_refused(&exchange(weir.port, &request, wait));
    // Expect: 100-continue gets the 413 and never a 100.
    let answer = exchange(
        weir.port,
        &head("/small", "Content-Length: 5000\r\nExpect: 100-continue\r\n"),
        wait,
    );
    assert_refused(&answer);
    assert!(!answer.contains(" 100 "), "{answer}");
    assert!(
        backend.connections().is_empty(),
        "{:?}",
        backend.connections()
    );
    // At the limit, the same request passes (and the instance's 100 comes through).
    let mut request = head(
        "/small",
        "Content-Length: 1024\r\nExpect: 100-continue\r\nConnection: close\r\n",
    );
    request.extend(std::iter::repeat_n(b'a', 1024));
    let answer = exchange(weir.port, &request, Duration::from_secs(2));
    assert!(answer.contains(" 200 OK"), "{answer}");
    let client = client();
    let r = client
        .post(weir.url("/small"))
        .body(vec![b'a'; 1000])
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let complete: usize = backend.connections().iter().map(|c| c.complete).sum();
    assert_eq!(complete, 2);
}

#[test]
fn the_smaller_of_the_listener_and_route_limits_applies() {
    let backend = RawBackend::start(Behaviour::Answer);
    let weir = Weir::start(&config(&backend));
    let client = client();
    let post = |path: &str, size: usize| {
        let r = client
            .post(weir.url(path))
            .body(vec![b'a'; size])
            .send()
            .unwrap();
        r.status().as_u16()
    };
    assert_eq!(post("/small", 1500), 413, "the route's 1k");
    assert_eq!(post("/large", 1500), 200);
    assert_eq!(post("/large", 3000), 413, "the listener's 2k");
    assert_eq!(post("/other", 2048), 200);
    assert_eq!(post("/other", 2049), 413);
    let complete: usize = backend.connections().iter().map(|c| c.complete).sum();
    assert_eq!(complete, 2);
    // Counted with the route's other answers, as 4xx.
    let metrics = scrape(weir.port2);
    let refused = |route| {
        let labels = [("route", route), ("code_class", "4xx")];
        sample(&metrics, "weir_requests_total", &labels)
    };
    assert_eq!(refused("small"), Some(1.0), "{metrics}");
    assert_eq!(refused("large"), Some(1.0), "{metrics}");
    assert_eq!(refused("open"), Some(1.0), "{metrics}");
}

#[test]
fn a_chunked_body_crossing_the_limit_never_reaches_the_instance_whole() {
    let backend = RawBackend::start(Behaviour::Answer);
    let weir = Weir::start_logging(&config(&backend), "warn");
    let mut request = head("/small", "Transfer-Encoding: chunked\r\n");
    for _ in 0..4 {
        request.extend(chunk(400));
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = exchange(weir.port, &request, Duration::from_secs(5));
    // 413 when weir could still answer; a closed connection is the other allowed end.
    if !answer.is_empty() {
        assert_refused(&answer);
    }
    // The instance saw at most the limit's worth, never the last chunk, and its connection
    // was closed rather than kept for another request.
    let closed = poll_until(Duration::from_secs(5), || {
        let all = backend.connections();
        all.iter().all(|c| c.closed).then_some(all)
    })
    .expect("the connection to the instance is closed");
    for c in &closed {
        assert_eq!(c.complete, 0, "{c:?}");
        assert!(!c.bytes.ends_with(b"0\r\n\r\n"), "{c:?}");
        let body_start = c.bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = String::from_utf8_lossy(&c.bytes[body_start..]);
        assert!(body.matches('a').count() <= 1024, "{body}");
    }
    // One refusal, not retried on another connection.
    assert!(closed.len() <= 1, "{closed:?}");
    assert!(weir
        .wait_log(
            &["refused: request body of", "over the limit of 1024"],
            Duration::from_secs(5)
        )
        .is_some());
    // Under the limit, chunked passes whole.
    let mut request = head(
        "/small",
        "Transfer-Encoding: chunked\r\nConnection: close\r\n",
    );
    request.extend(chunk(1000));
    request.extend_from_slice(b"0\r\n\r\n");
    let answer = exchange(weir.port, &request, Duration::from_secs(2));
    assert!(answer.contains(" 200 OK"), "{answer}");
}

#[test]
fn hostile_content_lengths_are_refused_before_the_instance() {
    let backend = RawBackend::start(Behaviour::Answer);
    let weir = Weir::start(&config(&backend));
    let wait = Duration::from_secs(5);
    let cases = [
        ("Content-Length: 18446744073709551615\r\n", 413),
        ("Content-Length: 99999999999999999999999999\r\n", 400),
        ("Content-Length: -1\r\n", 400),
        ("Content-Length: 10\r\nContent-Length: 5000\r\n", 400),
        ("Content-Length: 5000\r\nContent-Length: 5000\r\n", 413),
        ("Content-Length: 5000, 5000\r\n", 413),
        ("Content-Length: 0x10\r\n", 400),
    ];
    for (headers, expected) in cases {
        let answer = exchange(weir.port, &head("/small", headers), wait);
        assert_eq!(status(&answer), Some(expected), "{headers}: {answer}");
    }
    assert!(
        backend.connections().is_empty(),
        "{:?}",
        backend.connections()
    );
}

#[test]
fn over_http2_data_frames_are_counted_the_same() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("site", &["site.test"], &[]);
    let backend = RawBackend::start(Behaviour::Answer);
    let weir = Weir::start(&format!(
        "listeners:\n  - name: secure\n    address: \"127.0.0.1:{{port}}\"\n    protocol: https\n    \
         tls: {{ certificates: [{{ cert: \"{}\", key: \"{}\" }}] }}\n    \
         policies: {{ max_body_size: 1k }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n",
        cert.display(),
        key.display(),
        backend.address()
    ));
    let url = format!("https://site.test:{}/", weir.port);
    let client = ca.client(&["site.test"]);
    // Declared: refused before the instance.
    let r = client.post(&url).body(vec![b'a'; 1025]).send().unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), 413);
    assert!(backend.connections().is_empty());
    // Streamed without a length: DATA frames counted; the instance never gets all of it.
    let streamed = |size: usize| {
        let body = reqwest::blocking::Body::new(std::io::Cursor::new(vec![b'a'; size]));
        client.post(&url).body(body).send()
    };
    match streamed(4096) {
        Ok(r) => assert_eq!(r.status(), 413),
        Err(e) => eprintln!("refused by a reset: {e}"),
    }
    let all = poll_until(Duration::from_secs(5), || {
        let all = backend.connections();
        all.iter().all(|c| c.closed).then_some(all)
    })
    .expect("the connection to the instance is closed");
    assert!(all.iter().all(|c| c.complete == 0), "{all:?}");
    // Under the limit, streamed passes.
    assert_eq!(streamed(1000).unwrap().status(), 200);
}

#[test]
fn an_upgraded_connection_is_not_a_body_and_outlives_the_limit() {
    let backend = RawBackend::start(Behaviour::Upgrade);
    let weir = Weir::start(&config(&backend));
    let mut stream = TcpStream::connect(("127.0.0.1", weir.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let upgrade = "GET /small HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\n\
                   Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    stream.write_all(upgrade.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).unwrap(),
            1,
            "weir closed before the 101"
        );
        head.push(byte[0]);
    }
    assert_eq!(status(&String::from_utf8_lossy(&head)), Some(101));
    // Four times the route's 1k limit, a kilobyte at a time, each echoed back whole.
    for round in 0..4u8 {
        let frame = vec![b'a' + round; 1024];
        stream.write_all(&frame).unwrap();
        let mut echoed = vec![0u8; frame.len()];
        stream.read_exact(&mut echoed).unwrap();
        assert_eq!(echoed, frame, "round {round}");
    }
}
