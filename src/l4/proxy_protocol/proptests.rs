//! Property tests of reading a PROXY protocol header: any bytes, delivered in any pieces,
//! and real v1 and v2 headers with random damage, are read without panicking; what is read
//! back names only addresses and ports written in the header, and gives back exactly the
//! bytes read past it.

use super::*;
use proptest::prelude::*;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::ReadBuf;

/// A connection that hands its bytes over in pieces of the given sizes, then the rest at
/// once, then ends.
struct Trickle {
    data: Vec<u8>,
    pieces: Vec<usize>,
}

impl AsyncRead for Trickle {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let piece = if self.pieces.is_empty() {
            usize::MAX
        } else {
            self.pieces.remove(0).max(1)
        };
        let n = piece.min(buf.remaining()).min(self.data.len());
        let rest = self.data.split_off(n);
        buf.put_slice(&self.data);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

/// Reads a header from `data` delivered in `pieces`; also says how many bytes were read
/// from the connection.
fn read_all(data: &[u8], pieces: Vec<usize>) -> (Result<Received, HeaderError>, usize) {
    let mut stream = Trickle {
        data: data.to_vec(),
        pieces,
    };
    let received = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|_| HeaderError::Truncated)
        .and_then(|runtime| runtime.block_on(read(&mut stream)));
    (received, data.len() - stream.data.len())
}

/// Whether `addr` is written in `header`: its address and port as bytes (v2), or as words
/// of the text (v1).
fn written(header: &[u8], addr: SocketAddr) -> bool {
    let octets = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    let contains = |needle: &[u8]| header.windows(needle.len()).any(|w| w == needle);
    let binary = contains(&octets) && contains(&addr.port().to_be_bytes());
    let words: Vec<&str> = std::str::from_utf8(header)
        .unwrap_or_default()
        .split([' ', '\r', '\n'])
        .collect();
    let text = words.iter().any(|w| w.parse() == Ok(addr.ip()))
        && words.iter().any(|w| w.parse() == Ok(addr.port()));
    binary || text
}

/// What must hold of any read of `data`.
fn check(data: &[u8], pieces: Vec<usize>) -> Result<(), TestCaseError> {
    let (Ok(received), read) = read_all(data, pieces) else {
        return Ok(());
    };
    prop_assert!(read <= MAX_HEADER, "{} bytes read for a header", read);
    prop_assert!(received.rest.len() <= read, "more given back than read");
    let (header, past) = data[..read].split_at(read - received.rest.len());
    prop_assert_eq!(
        &received.rest[..],
        past,
        "the rest is not what followed the header"
    );
    if let Some((client, destination)) = received.addresses {
        for addr in [client, destination] {
            prop_assert!(written(header, addr), "{} is not in {:?}", addr, header);
        }
    }
    Ok(())
}

/// An address a TCP connection can have (port 0 is not one, and v1 readers refuse it).
fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), 1u16..).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), 1u16..).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ]
}

/// A header as weir writes it (v1 or v2), then damaged: bytes overwritten, cut short, or
/// followed by more.
fn damaged_header() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(&[ProxyVersion::V1, ProxyVersion::V2][..]),
        socket_addr(),
        socket_addr(),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        any::<prop::sample::Index>(),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(version, client, destination, edits, cut, tail)| {
            let mut bytes = header(version, client, destination);
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            bytes.extend(tail);
            bytes
        })
}

/// A v2 header with a random command, family, protocol, length and payload.
fn v2_header() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        any::<u8>(),
        any::<u16>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(command, family, length, payload)| {
            let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
            bytes.push(0x20 | (command & 0x0f));
            bytes.push(family);
            bytes.extend(length.to_be_bytes());
            bytes.extend(payload);
            bytes
        })
}

/// A v1 line of words a header may hold, in any order and number.
fn v1_header() -> impl Strategy<Value = Vec<u8>> {
    let word = prop_oneof![
        Just("TCP4".to_string()),
        Just("TCP6".to_string()),
        Just("UNKNOWN".to_string()),
        socket_addr().prop_map(|a| a.ip().to_string()),
        any::<u16>().prop_map(|p| p.to_string()),
        "[ -~]{0,8}",
    ];
    (prop::collection::vec(word, 0..7), "(\r\n|\n|\r|)", ".{0,8}").prop_map(
        |(words, end, after)| format!("PROXY {}{end}{after}", words.join(" ")).into_bytes(),
    )
}

fn pieces() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..40, 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes(data in prop::collection::vec(any::<u8>(), 0..200), pieces in pieces()) {
        check(&data, pieces)?;
    }

    #[test]
    fn damaged_headers(data in damaged_header(), pieces in pieces()) {
        check(&data, pieces)?;
    }

    #[test]
    fn random_v2_headers(data in v2_header(), pieces in pieces()) {
        check(&data, pieces)?;
    }

    #[test]
    fn random_v1_headers(data in v1_header(), pieces in pieces()) {
        check(&data, pieces)?;
    }

    #[test]
    fn whole_headers_read_back_what_was_written(
        v2 in any::<bool>(),
        client in socket_addr(),
        destination in socket_addr(),
        tail in prop::collection::vec(any::<u8>(), 0..64),
        pieces in pieces(),
    ) {
        let version = if v2 { ProxyVersion::V2 } else { ProxyVersion::V1 };
        let mut data = header(version, client, destination);
        let written = data.len();
        data.extend(&tail);
        let (received, read) = read_all(&data, pieces);
        let received = received.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&received.rest[..], &data[written..read]);
        let (c, d) = received.addresses.ok_or_else(|| TestCaseError::fail("no addresses"))?;
        let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
        prop_assert_eq!((canonical(c), canonical(d)), (canonical(client), canonical(destination)));
    }
}

/// Found by the round trip above: `PROXY TCP4 100.10.10.10 100.10.10.10 10000 1\r\n` whose
/// first 43 bytes arrived alone, cut after the source port's space, was refused as having
/// an invalid destination port.
#[test]
fn a_v1_header_cut_after_the_source_port_is_waited_for() {
    let client: SocketAddr = "100.10.10.10:10000".parse().unwrap();
    let destination: SocketAddr = "100.10.10.10:1".parse().unwrap();
    let data = header(ProxyVersion::V1, client, destination);
    let cut = b"PROXY TCP4 100.10.10.10 100.10.10.10 10000 ".len();
    let received = read_all(&data, vec![cut]).0.unwrap();
    assert_eq!(received.addresses, Some((client, destination)));
}
