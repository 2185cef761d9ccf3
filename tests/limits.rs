//! `limits:` through the real binary on raw sockets: each limit refuses with its status, a
//! JSON body naming the request id and a count in weir_rejected_requests_total, before any
//! byte reaches the instance, both at a listener's own values and at the defaults; the Host
//! rule; a head too slow to arrive is closed at `header_timeout` however it dribbles in,
//! and 2,000 of them do not keep a normal client waiting; an idle connection is closed at
//! `keepalive_timeout`; a connection carries `max_requests_per_connection` requests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Listener `tight` ({port}) with small limits of its own; listener `plain` ({port3}) with
/// the top level's, which are the defaults except for the timeouts.
fn config(backend: &RawBackend) -> String {
    format!(
        "limits: {{ header_timeout: 1s, keepalive_timeout: 1s }}\n\
         listeners:\n  \
         - name: tight\n    address: \"127.0.0.1:{{port}}\"\n    \
           limits: {{ max_header_size: 2k, max_header_line: 512, max_headers: 10, \
           max_uri_length: 256, max_requests_per_connection: 2 }}\n  \
         - {{ name: plain, address: \"127.0.0.1:{{port3}}\" }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n",
        backend.address()
    )
}

/// A GET of `target` with a Host and `fields` (each ending in CRLF).
fn get(target: &str, fields: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: app\r\n{fields}\r\n").into_bytes()
}

/// `n` header fields `x-field-<i>` of `len` bytes of value each.
fn fields(n: usize, len: usize) -> String {
    (0..n)
        .map(|i| format!("x-field-{i}: {}\r\n", "v".repeat(len)))
        .collect()
}

fn rejected(weir: &Weir, listener: &str, reason: &str) -> f64 {
    let metrics = scrape(weir.port2);
    let labels = [("listener", listener), ("reason", reason)];
    sample(&metrics, "weir_rejected_requests_total", &labels).unwrap()
}

#[test]
fn each_limit_refuses_before_the_instance_at_its_own_and_the_default_values() {
    let backend = RawBackend::start(Behaviour::Answer);
    let weir = Weir::start(&config(&backend));
    let long_uri = |len: usize| format!("/{}", "a".repeat(len - 1));
    let cases: Vec<(&str, u16, Vec<u8>, u16, &str)> = vec![
        (
            "tight",
            weir.port,
            get(&long_uri(257), ""),
            414,
            "uri_length",
        ),
        (
            "tight",
            weir.port,
            get("/", &fields(10, 1)),
            431,
            "header_count",
        ),
        (
            "tight",
            weir.port,
            get("/", &fields(1, 600)),
            431,
            "header_line",
        ),
        (
            "tight",
            weir.port,
            get("/", &fields(5, 450)),
            431,
            "header_size",
        ),
        (
            "plain",
            weir.port3,
            get(&long_uri(8193), ""),
            414,
            "uri_length",
        ),
        (
            "plain",
            weir.port3,
            get("/", &fields(100, 1)),
            431,
            "header_count",
        ),
        (
            "plain",
            weir.port3,
            get("/", &fields(1, 64 * 1024)),
            431,
            "header_line",
        ),
        (
            "plain",
            weir.port3,
            get("/", &fields(9, 4000)),
            431,
            "header_size",
        ),
        (
            "plain",
            weir.port3,
            b"GET / HTTP/1.1\r\n\r\n".to_vec(),
            400,
            "host",
        ),
        (
            "plain",
            weir.port3,
            b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n".to_vec(),
            400,
            "host",
        ),
    ];
    for (listener, port, request, expected, reason) in cases {
        let before = rejected(&weir, listener, reason);
        let answer = exchange(port, &request, Duration::from_secs(5));
        assert_eq!(
            status(&answer),
            Some(expected),
            "{listener} {reason}: {answer}"
        );
        assert!(answer.contains("\"request_id\":\""), "{answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
        assert_eq!(rejected(&weir, listener, reason), before + 1.0, "{reason}");
    }
    // Two Hosts: Pingora's parser refuses them itself, before weir sees the request.
    let two = b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    let answer = exchange(weir.port3, two, Duration::from_secs(5));
    assert_eq!(status(&answer), Some(400), "{answer}");
    assert!(
        backend.connections().is_empty(),
        "{:?}",
        backend.connections()
    );
    // Just under each limit, requests go through.
    for (port, request) in [
        (weir.port, get(&long_uri(256), &fields(9, 1))),
        (weir.port, get("/", &fields(3, 480))),
        (weir.port3, get(&long_uri(8192), &fields(5, 4000))),
    ] {
        let answer = exchange(port, &request, Duration::from_millis(500));
        assert_eq!(status(&answer), Some(200), "{answer}");
    }
}

#[test]
fn a_head_that_does_not_arrive_within_header_timeout_is_closed_however_it_dribbles() {
    let backend = RawBackend::start(Behaviour::Answer);
    let weir = Weir::start(&config(&backend));
    let start = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", weir.port3)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // A byte every 200 ms: each read is quick, the whole head never comes.
    let mut closed = false;
    for byte in b"GET / HTTP/1.1\r\nHost: app\r\nX-Slow: ".iter().cycle() {
        if stream.write_all(&[*byte]).is_err() || start.elapsed() > Duration::from_secs(5) {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(closed);
    assert_eq!(read_all(&mut stream), "", "a timed-out head gets no answer");
    let took = start.elapsed();
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(backend.connections().is_empty());
    assert_eq!(rejected(&weir, "plain", "header_timeout"), 1.0);
}

#[test]
fn two_thousand_half_open_connections_do_not_keep_a_normal_client_waiting() {
    let backend = RawBackend::start(Behaviour::Answer);
    let yaml = config(&backend).replace("header_timeout: 1s", "header_timeout: 30s");
    let weir = Weir::start(&yaml);
    let half_open: Vec<TcpStream> = (0..2000)
        .map(|_| {
            let mut stream = TcpStream::connect(("127.0.0.1", weir.port3)).unwrap();
            stream
                .write_all(b"GET / HTTP/1.1\r\nHost: app\r\n")
                .unwrap();
            stream
        })
        .collect();
    let open = || {
        let metrics = scrape(weir.port2);
        sample(
            &metrics,
            "weir_downstream_connections",
            &[("listener", "plain")],
        )
        .unwrap()
    };
    poll_until(Duration::from_secs(10), || (open() >= 2000.0).then_some(()))
        .expect("weir holds every half-open connection");
    let start = Instant::now();
    let answer = exchange(
        weir.port3,
        &get("/", "Connection: close\r\n"),
        Duration::from_secs(5),
    );
    let took = start.elapsed();
    assert_eq!(status(&answer), Some(200), "{answer}");
    assert!(took < Duration::from_secs(1), "{took:?}");
    drop(half_open);
}

#[test]
fn an_idle_connection_closes_at_keepalive_timeout_and_carries_at_most_its_requests() {
    let backend = RawBackend::start(Behaviour::Answer);
    let weir = Weir::start(&config(&backend));
    // `plain`: one answer, then the idle connection is closed after keepalive_timeout (1s).
    let start = Instant::now();
    let answer = exchange(weir.port3, &get("/", ""), Duration::from_secs(5));
    let took = start.elapsed();
    assert_eq!(statuses(&answer), [200], "{answer}");
    assert!(answer.contains("Connection: keep-alive"), "{answer}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // `tight` carries two requests: of three sent at once, two are answered, the second
    // saying it closes, and the third never reaches the instance.
    let before = backend
        .connections()
        .iter()
        .map(|c| c.complete)
        .sum::<usize>();
    let three = [get("/1", ""), get("/2", ""), get("/3", "")].concat();
    let answer = exchange(weir.port, &three, Duration::from_secs(5));
    assert_eq!(statuses(&answer), [200, 200], "{answer}");
    let second = &answer[answer.rfind("HTTP/1.1 ").unwrap()..];
    assert!(second.contains("Connection: close"), "{answer}");
    let after = backend
        .connections()
        .iter()
        .map(|c| c.complete)
        .sum::<usize>();
    assert_eq!(after - before, 2);
}
