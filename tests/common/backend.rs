//! A backend that answers every request with one fixed response and counts what it got:
//! for tests that need response headers a demo instance does not send (`Vary`,
//! `Access-Control-*`, an HTML page), or to prove that a request never reached it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A running fixed-response backend on 127.0.0.1.
pub struct Backend {
    pub port: u16,
    requests: Arc<AtomicUsize>,
    methods: Arc<Mutex<Vec<String>>>,
}

impl Backend {
    /// Answers every request 200 with `headers` (a `Content-Length` is added) and `body`,
    /// one thread per connection, closing each connection after its answer.
    pub fn start(headers: &[(&str, &str)], body: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut head = String::from("HTTP/1.1 200 OK\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        let answer: Arc<str> = head.into();
        let requests = Arc::new(AtomicUsize::new(0));
        let methods = Arc::new(Mutex::new(Vec::new()));
        let (count, seen) = (requests.clone(), methods.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (answer, count, seen) = (answer.clone(), count.clone(), seen.clone());
                std::thread::spawn(move || {
                    if let Some(method) = read_request(&stream) {
                        count.fetch_add(1, Ordering::SeqCst);
                        seen.lock().unwrap().push(method);
                        let _ = (&stream).write_all(answer.as_bytes());
                    }
                });
            }
        });
        Self {
            port,
            requests,
            methods,
        }
    }

    /// `127.0.0.1:port`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Requests answered so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The methods of the requests answered so far, in order.
    pub fn methods(&self) -> Vec<String> {
        self.methods.lock().unwrap().clone()
    }
}

/// Reads one request (its head, and a body of `Content-Length` bytes); its method, or
/// `None` when the connection closed first.
fn read_request(stream: &TcpStream) -> Option<String> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
    let method = line.split(' ').next()?.to_string();
    let mut length = 0;
    loop {
        line.clear();
        reader.read_line(&mut line).ok().filter(|n| *n > 0)?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(method)
}
