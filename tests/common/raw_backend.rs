//! A backend on a raw socket that records exactly the bytes each connection sent it,
//! whether a whole request (its final chunk, or all of its `Content-Length`) ever arrived,
//! and every whole request's head and body in the order they arrived: what a test needs to
//! show that weir never forwarded a body as if it were complete, nor a request it was not
//! sent. It can also play instances that hang up without answering, or dribble their answer.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the backend does with each whole request it reads.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// Answers `200 ok` with the request's target in `X-Target` (and `100 Continue` first to
    /// `Expect: 100-continue`).
    Answer,
    /// Waits this long after the request's head, then closes without answering.
    HangUp(Duration),
    /// Answers a 100-byte body one byte at a time, this long apart.
    Dribble(Duration),
    /// Answers `101 Switching Protocols`, then echoes every byte (a WebSocket's frames).
    Upgrade,
}

/// What one connection sent.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// Every byte, as read.
    pub bytes: Vec<u8>,
    /// Whole requests read.
    pub complete: usize,
    /// The peer closed it (or it failed).
    pub closed: bool,
}

/// One whole request as the backend read it.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// The head, from the request line to the blank line that ends it, as text.
    pub head: String,
    /// The body's bytes as framed on the wire (chunk sizes and all).
    pub body: Vec<u8>,
}

impl RawRequest {
    /// The request line (`GET /p HTTP/1.1`).
    pub fn line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    /// The request target (`/p`), as sent.
    pub fn target(&self) -> &str {
        self.line().split(' ').nth(1).unwrap_or_default()
    }

    /// The value of the head's first field named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// A running raw backend; it stops with the test process.
pub struct RawBackend {
    pub port: u16,
    connections: Arc<Mutex<Vec<Arc<Mutex<Received>>>>>,
    requests: Arc<Mutex<Vec<RawRequest>>>,
}

impl RawBackend {
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<Mutex<Vec<Arc<Mutex<Received>>>>> = Arc::default();
        let requests: Arc<Mutex<Vec<RawRequest>>> = Arc::default();
        let (all, log) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let record = Arc::new(Mutex::new(Received::default()));
                all.lock().unwrap().push(record.clone());
                let log = log.clone();
                std::thread::spawn(move || serve(stream, &record, &log, behaviour));
            }
        });
        Self {
            port,
            connections,
            requests,
        }
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What every connection so far sent.
    pub fn connections(&self) -> Vec<Received> {
        let all = self.connections.lock().unwrap();
        all.iter().map(|c| c.lock().unwrap().clone()).collect()
    }

    /// Every whole request so far, over all connections, in the order each was complete.
    pub fn requests(&self) -> Vec<RawRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// How many bytes all connections so far sent.
    pub fn bytes_received(&self) -> usize {
        self.connections().iter().map(|c| c.bytes.len()).sum()
    }
}

fn serve(
    mut stream: TcpStream,
    record: &Mutex<Received>,
    requests: &Mutex<Vec<RawRequest>>,
    behaviour: Behaviour,
) {
    let mut pending = Vec::new();
    let mut continued = false;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        record.lock().unwrap().bytes.extend_from_slice(&buf[..n]);
        pending.extend_from_slice(&buf[..n]);
        while let Some(head) = parse_head(&pending) {
            if let Behaviour::HangUp(wait) = behaviour {
                std::thread::sleep(wait);
                record.lock().unwrap().closed = true;
                return;
            }
            if let Behaviour::Upgrade = behaviour {
                echo_upgraded(&mut stream, &pending[head.len..], record);
                return;
            }
            if head.expect_continue && !continued {
                continued = true;
                let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
            let Some(end) = head.body_end(&pending) else {
                break;
            };
            let whole: Vec<u8> = pending.drain(..end).collect();
            continued = false;
            record.lock().unwrap().complete += 1;
            let request = RawRequest {
                head: String::from_utf8_lossy(&whole[..head.len]).into_owned(),
                body: whole[head.len..].to_vec(),
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\nX-Target: {}\r\nContent-Length: 2\r\n\r\nok",
                request.target()
            );
            requests.lock().unwrap().push(request);
            let answered = match behaviour {
                Behaviour::Answer => stream.write_all(answer.as_bytes()).is_ok(),
                Behaviour::Dribble(gap) => dribble(&mut stream, gap),
                Behaviour::HangUp(_) | Behaviour::Upgrade => false,
            };
            if !answered {
                break;
            }
        }
    }
    record.lock().unwrap().closed = true;
}

/// Switches protocols, then echoes `early` (bytes that came with the head) and everything
/// after it until the peer closes.
fn echo_upgraded(stream: &mut TcpStream, early: &[u8], record: &Mutex<Received>) {
    let switched =
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    if stream.write_all(switched).is_err() || stream.write_all(early).is_err() {
        return;
    }
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            break;
        }
        record.lock().unwrap().bytes.extend_from_slice(&buf[..n]);
    }
    record.lock().unwrap().closed = true;
}

/// Sends a 100-byte answer a byte at a time; whether all of it went.
fn dribble(stream: &mut TcpStream, gap: Duration) -> bool {
    if stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        .is_err()
    {
        return false;
    }
    (0..100).all(|_| {
        std::thread::sleep(gap);
        stream.write_all(b"x").is_ok()
    })
}

/// A request head read whole.
struct Head {
    len: usize,
    content_length: Option<usize>,
    chunked: bool,
    expect_continue: bool,
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let len = bytes.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&bytes[..len]).to_ascii_lowercase();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
            .map(str::to_string)
    };
    Some(Head {
        len,
        content_length: value("content-length").and_then(|v| v.parse().ok()),
        chunked: value("transfer-encoding").is_some_and(|v| v.contains("chunked")),
        expect_continue: value("expect").is_some_and(|v| v == "100-continue"),
    })
}

impl Head {
    /// Where the request ends in `bytes`, once all of its body is there.
    fn body_end(&self, bytes: &[u8]) -> Option<usize> {
        if !self.chunked {
            let end = self.len + self.content_length.unwrap_or(0);
            return (bytes.len() >= end).then_some(end);
        }
        let mut at = self.len;
        loop {
            let line_end = at + bytes[at..].windows(2).position(|w| w == b"\r\n")?;
            let size_text = String::from_utf8_lossy(&bytes[at..line_end]);
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                // No trailers: the blank line that ends the body.
                return (bytes.len() >= at + 2 && &bytes[at..at + 2] == b"\r\n").then_some(at + 2);
            }
            at += size + 2;
            if bytes.len() < at {
                return None;
            }
        }
    }
}
