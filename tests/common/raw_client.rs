//! A client on a raw socket, for requests no HTTP client crate would send as written
//! (hostile framing, oversized heads, a head cut short, several requests in one write).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `request` on a new connection to `port`, then reads until weir closes the
/// connection or `wait` passes; what was read, as text. A reset after the answer (weir
/// closes with request bytes unread) ends the read with what arrived before it.
pub fn exchange(port: u16, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    // weir may answer and close before all of it is written.
    let _ = stream.write_all(request);
    read_all(&mut stream)
}

/// Everything `stream` delivers until it closes, fails or times out, as text.
pub fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status of the first response in `answer`.
pub fn status(answer: &str) -> Option<u16> {
    answer.split(' ').nth(1)?.parse().ok()
}

/// The status of every response in `answer`, in order.
pub fn statuses(answer: &str) -> Vec<u16> {
    answer
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| answer.get(i + 9..i + 12)?.parse().ok())
        .collect()
}
