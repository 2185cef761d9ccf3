//! Requests written byte by byte to attack weir, on raw TCP against the real binary and a
//! backend that records every byte and every whole request it receives: ambiguous framing
//! and malformed heads are refused and never reach an instance, no second (smuggled)
//! request ever appears upstream, trailers never become headers, garbage, TLS and HTTP/2 on
//! a plain HTTP/1 listener and bad versions are refused, absolute-form targets route by
//! their own host, and pipelined requests are all answered, in order. After every case weir
//! still serves a normal request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long one exchange may take before the test stops reading.
const EXCHANGE_DEADLINE: Duration = Duration::from_secs(5);

/// Every smuggled request and forbidden trailer carries this word: no byte of it may reach
/// an instance.
const MARK: &[u8] = b"smuggled";

/// weir with two instances: hosts `app` and `a.example` route to `a`, `b.example` to `b`;
/// any other host has no route (404). Its metrics are on `port2`.
struct Setup {
    weir: Weir,
    a: RawBackend,
    b: RawBackend,
}

impl Setup {
    fn start() -> Self {
        let (a, b) = (
            RawBackend::start(Behaviour::Answer),
            RawBackend::start(Behaviour::Answer),
        );
        let weir = Weir::start(&format!(
            "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
             routes:\n  \
             - {{ name: a, hosts: [app, a.example], upstream: a }}\n  \
             - {{ name: b, hosts: [b.example], upstream: b }}\n\
             upstreams:\n  \
             a:\n    targets: [{{ address: \"{}\" }}]\n  \
             b:\n    targets: [{{ address: \"{}\" }}]\n\
             admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n",
            a.address(),
            b.address()
        ));
        Self { weir, a, b }
    }

    /// Bytes both instances received so far.
    fn bytes_received(&self) -> usize {
        self.a.bytes_received() + self.b.bytes_received()
    }

    /// Sends `request` in one write; see [`read_answer`].
    fn exchange(&self, request: &[u8], want: usize) -> Answer {
        let mut stream = TcpStream::connect(("127.0.0.1", self.weir.port)).unwrap();
        stream.set_read_timeout(Some(EXCHANGE_DEADLINE)).unwrap();
        // weir may refuse and close before all of it is written.
        let _ = stream.write_all(request);
        read_answer(&mut stream, want)
    }

    /// Proves that weir still serves: a normal request is answered by instance `a`, and is
    /// the last request `a` received.
    fn still_serves(&self) {
        let answer = self.exchange(b"GET /after HTTP/1.1\r\nHost: app\r\n\r\n", 1);
        assert_eq!(answer.statuses(), [200], "{answer:?}");
        let last = self.a.requests().pop().unwrap();
        assert_eq!(last.target(), "/after", "{last:?}");
    }

    /// Nothing with [`MARK`] reached either instance.
    fn nothing_smuggled(&self, case: &str) {
        for connection in self.a.connections().iter().chain(&self.b.connections()) {
            let bytes = connection.bytes.to_ascii_lowercase();
            assert!(
                !bytes.windows(MARK.len()).any(|w| w == MARK),
                "{case}: smuggled bytes reached an instance: {:?}",
                String::from_utf8_lossy(&connection.bytes)
            );
        }
    }

    /// Runs every case, each checked for itself; fails naming every case that failed (each
    /// one's own message is printed as it fails).
    fn check_all(&self, cases: &[Case]) {
        let failed: Vec<&str> = cases
            .iter()
            .filter(|case| {
                let run = std::panic::AssertUnwindSafe(|| self.check(case));
                std::panic::catch_unwind(run).is_err()
            })
            .map(|case| case.name)
            .collect();
        assert!(failed.is_empty(), "failed: {failed:?}");
    }

    /// Runs `case` and checks everything it must and must not have caused.
    fn check(&self, case: &Case) {
        let name = case.name;
        let (requests, at_b) = (self.a.requests().len(), self.b.requests().len());
        let bytes = self.bytes_received();
        let want = match case.outcome {
            Outcome::Forwarded(..) => 1,
            // Read until weir closes: a refusal must close the connection.
            Outcome::Refused | Outcome::BodyRefused => usize::MAX,
        };
        let answer = self.exchange(&case.request, want);
        self.still_serves();
        let mut received = self.a.requests().split_off(requests);
        let after = received.pop().unwrap();
        self.nothing_smuggled(name);
        match case.outcome {
            Outcome::Refused => {
                assert_eq!(answer.statuses(), [400], "{name}: {answer:?}");
                assert!(answer.closed, "{name}: not closed: {answer:?}");
                let forwarded = self.bytes_received() - bytes - after.head.len();
                assert_eq!(forwarded, 0, "{name}: bytes reached an instance");
            }
            Outcome::BodyRefused => {
                let statuses = answer.statuses();
                assert!(
                    statuses.is_empty() || statuses == [400],
                    "{name}: {answer:?}"
                );
                assert!(answer.closed, "{name}: not closed: {answer:?}");
                assert!(received.is_empty(), "{name}: forwarded {received:?}");
            }
            Outcome::Forwarded(target, payload) => {
                assert_eq!(answer.statuses(), [200], "{name}: {answer:?}");
                let [request] = &received[..] else {
                    panic!("{name}: the instance received {received:?}");
                };
                assert_eq!(request.target(), target, "{name}: {request:?}");
                assert_eq!(
                    body_payload(request).as_deref(),
                    Some(payload.as_bytes()),
                    "{name}: {request:?}"
                );
            }
        }
        let to_b = &self.b.requests()[at_b..];
        assert!(to_b.is_empty(), "{name}: {to_b:?}");
    }
}

/// One hostile request and what weir must make of it.
struct Case {
    name: &'static str,
    request: Vec<u8>,
    outcome: Outcome,
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    /// Refused on its head: 400, the connection closed, and no byte reaches an instance.
    Refused,
    /// A body weir cannot frame: 400 or a bare close, and no whole request reaches an
    /// instance (its head may have gone ahead: weir streams bodies).
    BodyRefused,
    /// Forwarded as one request with this target, carrying this payload and no trailer
    /// section, and answered.
    Forwarded(&'static str, &'static str),
}

/// The case `name`: `request`, sent in one write, must end in `outcome`.
fn case(name: &'static str, request: impl Into<Vec<u8>>, outcome: Outcome) -> Case {
    Case {
        name,
        request: request.into(),
        outcome,
    }
}

/// A POST to instance `a` with `fields` (each ending in CRLF) and `body` as given.
fn post(fields: &str, body: &str) -> Vec<u8> {
    format!("POST /x HTTP/1.1\r\nHost: app\r\n{fields}\r\n{body}").into_bytes()
}

/// A chunked POST whose body is `body`, framing and all.
fn chunked(body: &str) -> Vec<u8> {
    post("Transfer-Encoding: chunked\r\n", body)
}

/// A request that, read as the next one on the connection, would reach the instance.
const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: app\r\n\r\n";

/// One response weir wrote.
#[derive(Debug)]
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    /// The value of the first field named `name` (any case).
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Everything weir wrote back on one connection.
#[derive(Debug)]
struct Answer {
    responses: Vec<Response>,
    /// weir closed the connection (or reset it).
    closed: bool,
}

impl Answer {
    /// Each response's status, in order.
    fn statuses(&self) -> Vec<u16> {
        self.responses.iter().map(|r| r.status).collect()
    }

    /// Each response's `X-Target` (the request the instance answered), `-` for weir's own.
    fn targets(&self) -> Vec<&str> {
        self.responses
            .iter()
            .map(|r| r.header("x-target").unwrap_or("-"))
            .collect()
    }
}

/// Reads responses until `want` of them are whole, weir closes the connection, or
/// [`EXCHANGE_DEADLINE`] passes. A reset ends the read with what arrived before it.
fn read_answer(stream: &mut TcpStream, want: usize) -> Answer {
    let end = Instant::now() + EXCHANGE_DEADLINE;
    let (mut bytes, mut buf) = (Vec::new(), [0u8; 16 * 1024]);
    let mut responses = Vec::new();
    let mut closed = false;
    while responses.len() < want && Instant::now() < end {
        match stream.read(&mut buf) {
            Ok(0) => closed = true,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed = true,
            Err(_) => break,
        }
        while let Some((response, len)) = parse_response(&bytes) {
            responses.push(response);
            bytes.drain(..len);
        }
        if closed {
            break;
        }
    }
    assert!(
        bytes.is_empty() || closed,
        "a partial response: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    Answer { responses, closed }
}

/// The first whole response in `bytes` and its length.
fn parse_response(bytes: &[u8]) -> Option<(Response, usize)> {
    let head_len = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&bytes[..head_len]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut response = Response {
        status,
        head,
        body: String::new(),
    };
    let rest = &bytes[head_len..];
    let (body, len) = if response.header("transfer-encoding").is_some() {
        dechunk(rest)?
    } else {
        let len = response
            .header("content-length")
            .map_or(Some(0), |v| v.parse().ok())?;
        (rest.get(..len)?.to_vec(), len)
    };
    response.body = String::from_utf8_lossy(&body).into_owned();
    Some((response, head_len + len))
}

/// The payload of a whole chunked body at the start of `bytes` that has no trailer section,
/// and the body's length.
fn dechunk(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let (mut payload, mut at) = (Vec::new(), 0);
    loop {
        let line_end = at + bytes[at..].windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&bytes[at..line_end]).ok()?;
        let size = usize::from_str_radix(size, 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            return (bytes.get(at..at + 2)? == b"\r\n").then_some((payload, at + 2));
        }
        payload.extend_from_slice(bytes.get(at..at + size)?);
        at += size;
        (bytes.get(at..at + 2)? == b"\r\n").then_some(())?;
        at += 2;
    }
}

/// The payload of a request as the instance received it: chunked bodies decoded; `None`
/// when the framing is not what weir must send (a trailer section, chunk extensions, or
/// `Content-Length` beside `Transfer-Encoding`).
fn body_payload(request: &RawRequest) -> Option<Vec<u8>> {
    if request.header("transfer-encoding").is_none() {
        return Some(request.body.clone());
    }
    let (payload, len) = dechunk(&request.body)?;
    let clean = len == request.body.len() && request.header("content-length").is_none();
    clean.then_some(payload)
}

/// The `n`-byte chunk extension flood on a 5-byte chunk.
fn extension_flood(n: usize) -> String {
    format!("5{}\r\nhello\r\n0\r\n\r\n", ";a=b".repeat(n / 4))
}

#[test]
fn ambiguous_framing_and_malformed_fields_never_reach_an_instance() {
    use Outcome::{BodyRefused, Forwarded, Refused};
    let smuggle_after = |fields: &str, body: &str| post(fields, &format!("{body}{SMUGGLED}"));
    let cases = [
        case(
            "Content-Length with Transfer-Encoding",
            smuggle_after(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                "0\r\n\r\n",
            ),
            Refused,
        ),
        case(
            "Transfer-Encoding with Content-Length",
            smuggle_after(
                "Transfer-Encoding: chunked\r\nContent-Length: 40\r\n",
                "0\r\n\r\n",
            ),
            Refused,
        ),
        case(
            "differing duplicate Content-Length",
            smuggle_after("Content-Length: 5\r\nContent-Length: 40\r\n", "hello"),
            Refused,
        ),
        case(
            "differing Content-Length list",
            smuggle_after("Content-Length: 5, 40\r\n", "hello"),
            Refused,
        ),
        case(
            "signed Content-Length",
            smuggle_after("Content-Length: +5\r\n", "hello"),
            Refused,
        ),
        case(
            "identical duplicate Content-Length",
            post("Content-Length: 5\r\nContent-Length: 5\r\n", "hello"),
            Forwarded("/x", "hello"),
        ),
        case(
            "Transfer-Encoding: xchunked",
            smuggle_after("Transfer-Encoding: xchunked\r\n", "5\r\nhello\r\n0\r\n\r\n"),
            Refused,
        ),
        case(
            "Transfer-Encoding: chunked, identity",
            smuggle_after(
                "Transfer-Encoding: chunked, identity\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            Refused,
        ),
        case(
            "Transfer-Encoding: chunked, chunked",
            smuggle_after(
                "Transfer-Encoding: chunked, chunked\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            Refused,
        ),
        case(
            "Transfer-Encoding: chunked repeated",
            smuggle_after(
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                "5\r\nhello\r\n0\r\n\r\n",
            ),
            Refused,
        ),
        case(
            "whitespace before the colon of Transfer-Encoding",
            smuggle_after(
                "Content-Length: 5\r\nTransfer-Encoding : chunked\r\n",
                "0\r\n\r\n",
            ),
            Refused,
        ),
        case(
            "whitespace before the colon of Content-Length",
            smuggle_after("Content-Length : 5\r\n", "hello"),
            Refused,
        ),
        case("obs-fold", post("X-Folded: a\r\n b\r\n", ""), Refused),
        case(
            "obs-fold of Transfer-Encoding",
            smuggle_after("Transfer-Encoding:\r\n chunked\r\n", "0\r\n\r\n"),
            Refused,
        ),
        case("NUL in a field value", post("X-Nul: a\0b\r\n", ""), Refused),
        case(
            "bare CR in a field value",
            post("X-Cr: a\rb\r\n", ""),
            Refused,
        ),
        case(
            "bare LF in a field value",
            post("X-Lf: a\nb\r\n", ""),
            Refused,
        ),
        case(
            "bare CR line endings",
            "GET /x HTTP/1.1\rHost: app\r\r",
            Refused,
        ),
        // Pingora percent-encodes what may not be in a target (controls, space, `"<>`) where
        // RFC 9112 §3.2 prefers a 400; weir and the instance see the same, encoded target.
        case(
            "bare CR in the target",
            "GET /a\rb HTTP/1.1\r\nHost: app\r\n\r\n",
            Forwarded("/a%0Db", ""),
        ),
        case(
            "space in the target",
            "GET /a b HTTP/1.1\r\nHost: app\r\n\r\n",
            Forwarded("/a%20b", ""),
        ),
        case(
            "Transfer-Encoding in HTTP/1.0",
            "POST /x HTTP/1.0\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            Refused,
        ),
        case(
            "bare LF line endings",
            "GET /x HTTP/1.1\nHost: app\n\n",
            Forwarded("/x", ""),
        ),
        case(
            "chunk size over 64 bits",
            chunked("1ffffffffffffffff\r\nhello\r\n0\r\n\r\n"),
            BodyRefused,
        ),
        case(
            "chunk size wrapping to 5",
            chunked("10000000000000005\r\nhello\r\n0\r\n\r\n"),
            BodyRefused,
        ),
        case(
            "negative chunk size",
            chunked("-5\r\nhello\r\n0\r\n\r\n"),
            BodyRefused,
        ),
        case(
            "garbage chunk size",
            chunked("zz\r\nhello\r\n0\r\n\r\n"),
            BodyRefused,
        ),
        case(
            "0x chunk size",
            chunked("0x5\r\nhello\r\n0\r\n\r\n"),
            BodyRefused,
        ),
        case(
            "chunk longer than its size",
            chunked(&format!("3\r\nhello\r\n0\r\n\r\n{SMUGGLED}")),
            BodyRefused,
        ),
        case(
            "chunk extension flood",
            chunked(&extension_flood(100 * 1024)),
            BodyRefused,
        ),
        case(
            "a short chunk extension",
            chunked("5;name=value\r\nhello\r\n0\r\n\r\n"),
            Forwarded("/x", "hello"),
        ),
        case(
            "forbidden fields in trailers",
            chunked(
                "5\r\nhello\r\n0\r\nContent-Length: 50\r\nTransfer-Encoding: smuggled\r\n\
                 Host: smuggled.example\r\nX-Smuggled: 1\r\n\r\n",
            ),
            Forwarded("/x", "hello"),
        ),
    ];
    let setup = Setup::start();
    setup.check_all(&cases);
    // Pingora refuses the rest; the four with both lengths or chunked twice are weir's own
    // refusals, and counted.
    let metrics = scrape(setup.weir.port2);
    let labels = [("listener", "web"), ("reason", "framing")];
    let framing = sample(&metrics, "weir_rejected_requests_total", &labels);
    assert_eq!(framing, Some(4.0), "{metrics}");
}

/// A TLS 1.3 ClientHello record (one cipher suite, no extensions).
fn client_hello() -> Vec<u8> {
    let mut hello = b"\x16\x03\x01\x00\x2f\x01\x00\x00\x2b\x03\x03".to_vec();
    hello.extend([0x5a; 32]);
    hello.extend(b"\x00\x00\x02\x13\x01\x01\x00\x00\x00");
    hello
}

#[test]
fn what_is_not_http_1_is_refused_and_weir_keeps_serving() {
    use Outcome::Refused;
    let version = |v: &str| format!("GET /v {v}\r\nHost: app\r\n\r\n");
    let cases = [
        case(
            "garbage",
            b"\x00\x01\x02\xff\xfe garbage\r\n\r\n".to_vec(),
            Refused,
        ),
        case("TLS ClientHello", client_hello(), Refused),
        case(
            "HTTP/2 preface",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00".to_vec(),
            Refused,
        ),
        case("HTTP/2.0", version("HTTP/2.0"), Refused),
        case("HTTP/1.2", version("HTTP/1.2"), Refused),
        case("HTTP/9", version("HTTP/9"), Refused),
        case("http/1.1", version("http/1.1"), Refused),
        case("no version", "GET /v\r\n\r\n", Refused),
    ];
    Setup::start().check_all(&cases);
}

#[test]
fn an_http_1_1_request_without_one_host_is_refused() {
    use Outcome::{Forwarded, Refused};
    let cases = [
        case("no Host", "GET /x HTTP/1.1\r\n\r\n", Refused),
        case(
            "two Host fields",
            "GET /x HTTP/1.1\r\nHost: app\r\nHost: b.example\r\n\r\n",
            Refused,
        ),
        case(
            "HTTP/1.0 without Host, absolute-form",
            "GET http://app/x HTTP/1.0\r\n\r\n",
            Forwarded("http://app/x", ""),
        ),
    ];
    Setup::start().check_all(&cases);
}

#[test]
fn an_absolute_form_target_routes_by_its_own_host() {
    let setup = Setup::start();
    // Without Host (HTTP/1.0) or with the same one, the target's host picks the route.
    for request in [
        "GET http://b.example/abs HTTP/1.0\r\n\r\n",
        "GET http://b.example/abs HTTP/1.1\r\nHost: b.example\r\n\r\n",
    ] {
        let answer = setup.exchange(request.as_bytes(), 1);
        assert_eq!(answer.statuses(), [200], "{request:?}: {answer:?}");
        let at_b = setup.b.requests().pop().unwrap();
        assert_eq!(at_b.target(), "http://b.example/abs", "{at_b:?}");
        assert_eq!(at_b.header("host"), Some("b.example"), "{at_b:?}");
    }
    assert_eq!(setup.b.requests().len(), 2);
    assert!(setup.a.requests().is_empty(), "{:?}", setup.a.requests());
    // A Host that differs from the target's host is refused before routing: neither
    // instance hears of it.
    setup.check(&case(
        "Host differing from the absolute-form target",
        "GET http://b.example/abs HTTP/1.1\r\nHost: a.example\r\n\r\n",
        Outcome::Refused,
    ));
    assert_eq!(setup.b.requests().len(), 2);
}

/// Requests written to weir in one write, and what must come of them.
struct Pipeline {
    name: &'static str,
    requests: String,
    /// Each answer in order: its status, the target the instance answered (`-` when weir
    /// answered itself), and the payload the instance received for it.
    answers: Vec<(u16, String, &'static str)>,
    /// weir closes the connection after the last answer.
    closes: bool,
}

/// A GET of `path` to instance `a`, with `fields` (each ending in CRLF).
fn get(path: &str, fields: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: app\r\n{fields}\r\n")
}

/// `path` answered by the instance, which received `payload`.
fn served(path: &str, payload: &'static str) -> (u16, String, &'static str) {
    (200, path.to_string(), payload)
}

/// A status weir answered itself.
fn refused(status: u16) -> (u16, String, &'static str) {
    (status, "-".to_string(), "")
}

#[test]
fn pipelined_requests_are_all_answered_in_order() {
    let twenty: Vec<String> = (1..=20).map(|i| format!("/n{i}")).collect();
    let pipelines = [
        Pipeline {
            name: "three GETs",
            requests: [get("/p1", ""), get("/p2", ""), get("/p3", "")].concat(),
            answers: vec![served("/p1", ""), served("/p2", ""), served("/p3", "")],
            closes: false,
        },
        Pipeline {
            name: "bodies framed by Content-Length and chunked",
            requests: [
                "POST /b1 HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello",
                "POST /b2 HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n\
                 5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                &get("/b3", ""),
            ]
            .concat(),
            answers: vec![
                served("/b1", "hello"),
                served("/b2", "hello world"),
                served("/b3", ""),
            ],
            closes: false,
        },
        Pipeline {
            name: "a 404 in the middle",
            requests: [
                get("/e1", ""),
                "GET /e2 HTTP/1.1\r\nHost: nowhere\r\n\r\n".to_string(),
                get("/e3", ""),
            ]
            .concat(),
            answers: vec![served("/e1", ""), refused(404), served("/e3", "")],
            closes: false,
        },
        Pipeline {
            name: "a refused request in the middle closes the connection",
            requests: [
                get("/r1", ""),
                "POST /r2 HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\
                 Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    .to_string(),
                SMUGGLED.to_string(),
            ]
            .concat(),
            answers: vec![served("/r1", ""), refused(400)],
            closes: true,
        },
        Pipeline {
            name: "Connection: close on the last",
            requests: [
                get("/c1", ""),
                get("/c2", "Connection: close\r\n"),
                SMUGGLED.to_string(),
            ]
            .concat(),
            answers: vec![served("/c1", ""), served("/c2", "")],
            closes: true,
        },
        Pipeline {
            name: "twenty GETs",
            requests: twenty.iter().map(|p| get(p, "")).collect(),
            answers: twenty.iter().map(|p| served(p, "")).collect(),
            closes: false,
        },
    ];
    let setup = Setup::start();
    for pipeline in &pipelines {
        let name = pipeline.name;
        let before = setup.a.requests().len();
        let want = if pipeline.closes {
            usize::MAX
        } else {
            pipeline.answers.len()
        };
        let answer = setup.exchange(pipeline.requests.as_bytes(), want);
        let statuses: Vec<u16> = pipeline.answers.iter().map(|a| a.0).collect();
        let targets: Vec<&str> = pipeline.answers.iter().map(|a| a.1.as_str()).collect();
        assert_eq!(answer.statuses(), statuses, "{name}: {answer:?}");
        assert_eq!(answer.targets(), targets, "{name}: {answer:?}");
        assert_eq!(answer.closed, pipeline.closes, "{name}: {answer:?}");
        setup.still_serves();
        let mut received = setup.a.requests().split_off(before);
        received.pop();
        let received: Vec<(&str, Option<Vec<u8>>)> = received
            .iter()
            .map(|r| (r.target(), body_payload(r)))
            .collect();
        let forwarded: Vec<(&str, Option<Vec<u8>>)> = pipeline
            .answers
            .iter()
            .filter(|a| a.1 != "-")
            .map(|a| (a.1.as_str(), Some(a.2.as_bytes().to_vec())))
            .collect();
        assert_eq!(received, forwarded, "{name}");
        setup.nothing_smuggled(name);
    }
}
