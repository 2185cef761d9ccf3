//! A scripted HTTP/1.1 origin for response-shaping tests: canned responses by path, exactly
//! as given (headers, status, body bytes), and `/stream/N`, N bytes of text generated as
//! they are sent in chunked framing, never held whole.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;

/// One canned answer.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    /// A 200 with `Content-Type: content_type`, `Content-Length` and `body`.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
        }
    }

    /// The same with one more header.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The same with another status.
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }
}

/// A running origin; its threads end with the test process.
pub struct Origin {
    pub port: u16,
}

/// Size of each chunk `/stream/N` writes.
const STREAM_CHUNK: usize = 64 * 1024;

impl Origin {
    /// Serves `routes` (path → answer; anything else is a 404) and `/stream/N`.
    pub fn start(routes: Vec<(&str, Canned)>) -> Self {
        let routes: Arc<HashMap<String, Canned>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, c)| (p.to_string(), c))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let routes = routes.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, &routes);
                });
            }
        });
        Self { port }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Answers the requests of one keep-alive connection until the peer closes it.
fn serve(conn: TcpStream, routes: &HashMap<String, Canned>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let head = line.starts_with("HEAD ");
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                break;
            }
        }
        if let Some(len) = path.strip_prefix("/stream/") {
            stream(&mut out, len.parse().unwrap())?;
            continue;
        }
        let canned = routes.get(&path).cloned().unwrap_or(Canned {
            status: 404,
            headers: vec![],
            body: vec![],
        });
        let mut response = format!("HTTP/1.1 {} X\r\n", canned.status);
        for (name, value) in &canned.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str(&format!("Content-Length: {}\r\n\r\n", canned.body.len()));
        out.write_all(response.as_bytes())?;
        if !head {
            out.write_all(&canned.body)?;
        }
    }
}

/// `len` bytes of [`Generated`] text, chunked.
fn stream(out: &mut TcpStream, len: u64) -> std::io::Result<()> {
    out.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
    )?;
    let mut text = Generated::new(len);
    let mut buf = vec![0; STREAM_CHUNK];
    loop {
        let n = text.read(&mut buf)?;
        if n == 0 {
            break;
        }
        write!(out, "{n:x}\r\n")?;
        out.write_all(&buf[..n])?;
        out.write_all(b"\r\n")?;
    }
    out.write_all(b"0\r\n\r\n")
}

/// Deterministic text that compresses to about half: lines of 63 pseudo-random hex digits.
/// A test reads it again to compare with what a client decoded, without holding either.
pub struct Generated {
    left: u64,
    state: u64,
    column: u8,
}

impl Generated {
    pub fn new(len: u64) -> Self {
        Self {
            left: len,
            state: 0x9E37_79B9_7F4A_7C15,
            column: 0,
        }
    }
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            *b = if self.column == 63 {
                self.column = 0;
                b'\n'
            } else {
                self.column += 1;
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                b"0123456789abcdef"[(self.state & 15) as usize]
            };
        }
        self.left -= n as u64;
        Ok(n)
    }
}
