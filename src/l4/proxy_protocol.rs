//! The PROXY protocol (v1 text, v2 binary), with the `ppp` crate: a header sent to an
//! instance so it sees the real client, and one read from a trusted load balancer in front.

use crate::config::ProxyVersion;
use ppp::v2;
use ppp::{HeaderResult, PartialResult};
use std::net::{IpAddr, SocketAddr};
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest header accepted: v1's 107 bytes, or v2's 16 plus addresses and TLVs.
const MAX_HEADER: usize = 4096;

/// The longest v1 header, its line end included.
const MAX_V1_HEADER: usize = 107;

/// Why a connection's header was not accepted.
#[derive(Debug, thiserror::Error)]
pub(super) enum HeaderError {
    /// The connection ended, failed or waited too long before a whole header.
    #[error("no whole PROXY protocol header (the connection ended or waited too long)")]
    Truncated,
    /// The bytes are not a v1 (text) PROXY protocol header.
    #[error("not a PROXY protocol header for TCP: {0}")]
    InvalidV1(#[source] ppp::v1::BinaryParseError),
    /// The bytes are not a v2 (binary) PROXY protocol header.
    #[error("not a PROXY protocol header for TCP: {0}")]
    InvalidV2(#[source] v2::ParseError),
    /// A v2 header for a datagram connection: weir's streams are TCP.
    #[error("not a PROXY protocol header for TCP: a UDP connection")]
    Udp,
}

/// What a load balancer in front said about a connection.
#[derive(Debug)]
pub(super) struct Received {
    /// The client and the address it connected to, unless the header is a balancer's own
    /// (`LOCAL`, `UNKNOWN`: a health check).
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// Bytes read past the header: the start of the client's data.
    pub rest: Vec<u8>,
}

/// The header that tells an instance that `client` connected to `destination`. Both are
/// written in one family: IPv4-mapped IPv6 when they differ, as HAProxy does.
pub(super) fn header(
    version: ProxyVersion,
    client: SocketAddr,
    destination: SocketAddr,
) -> Vec<u8> {
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let v6 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => SocketAddr::new(ip.to_ipv6_mapped().into(), a.port()),
        IpAddr::V6(_) => a,
    };
    let (mut client, mut destination) = (canonical(client), canonical(destination));
    if client.is_ipv4() != destination.is_ipv4() {
        (client, destination) = (v6(client), v6(destination));
    }
    match version {
        ProxyVersion::V1 => ppp::v1::Addresses::from((client, destination))
            .to_string()
            .into_bytes(),
        ProxyVersion::V2 => v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (client, destination),
        )
        .build()
        // Building into memory from two socket addresses cannot fail.
        .unwrap_or_default(),
    }
}

/// Reads the header a load balancer sends first (v1 or v2).
pub(super) async fn read<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Received, HeaderError> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0; 512];
    loop {
        let room = chunk.len().min(MAX_HEADER - buf.len());
        let n = stream
            .read(&mut chunk[..room])
            .await
            .map_err(|_| HeaderError::Truncated)?;
        if n == 0 {
            return Err(HeaderError::Truncated);
        }
        buf.extend_from_slice(&chunk[..n]);
        let parsed = HeaderResult::parse(&buf);
        if (parsed.is_incomplete() || v1_unfinished(&buf)) && buf.len() < MAX_HEADER {
            continue;
        }
        let (addresses, length) = match parsed {
            HeaderResult::V1(Ok(h)) => (v1_addresses(&h.addresses), h.header.len()),
            HeaderResult::V2(Ok(h)) => {
                if h.protocol == v2::Protocol::Datagram {
                    return Err(HeaderError::Udp);
                }
                let own = h.command == v2::Command::Local;
                let addresses = v2_addresses(&h.addresses).filter(|_| !own);
                (addresses, h.len())
            }
            HeaderResult::V1(Err(e)) => return Err(HeaderError::InvalidV1(e)),
            HeaderResult::V2(Err(e)) => return Err(HeaderError::InvalidV2(e)),
        };
        return Ok(Received {
            addresses,
            rest: buf.split_off(length),
        });
    }
}

/// Whether `buf` is the start of a v1 header whose line has not ended yet. ppp reads some
/// such starts as wrong rather than incomplete (`PROXY TCP4 … 51000 `, cut after the
/// source port, has an empty destination port), so a v1 header is parsed only once its
/// line end has arrived.
fn v1_unfinished(buf: &[u8]) -> bool {
    buf.starts_with(b"PROXY ") && buf.len() < MAX_V1_HEADER && !buf.contains(&b'\r')
}

fn v1_addresses(addresses: &ppp::v1::Addresses) -> Option<(SocketAddr, SocketAddr)> {
    match addresses {
        ppp::v1::Addresses::Tcp4(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        ppp::v1::Addresses::Tcp6(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        ppp::v1::Addresses::Unknown => None,
    }
}

fn v2_addresses(addresses: &v2::Addresses) -> Option<(SocketAddr, SocketAddr)> {
    match addresses {
        v2::Addresses::IPv4(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        v2::Addresses::IPv6(a) => Some((
            (a.source_address, a.source_port).into(),
            (a.destination_address, a.destination_port).into(),
        )),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn headers_read_back_with_what_followed_them() {
        let client: SocketAddr = "203.0.113.7:51000".parse().unwrap();
        let local: SocketAddr = "10.0.0.1:6380".parse().unwrap();
        for version in [ProxyVersion::V1, ProxyVersion::V2] {
            let mut sent = header(version, client, local);
            sent.extend_from_slice(b"PING\r\n");
            let received = read(&mut &sent[..]).await.unwrap();
            assert_eq!(received.addresses, Some((client, local)), "{version:?}");
            assert_eq!(received.rest, b"PING\r\n");
        }
        // A client over IPv6 to an IPv4 listener: both written as IPv6.
        let v6_client: SocketAddr = "[2001:db8::7]:51000".parse().unwrap();
        let received = read(&mut &header(ProxyVersion::V2, v6_client, local)[..]).await;
        let (_, destination) = received.unwrap().addresses.unwrap();
        assert_eq!(destination, "[::ffff:10.0.0.1]:6380".parse().unwrap());
        let garbage = read(&mut &b"GET / HTTP/1.1\r\n\r\n"[..]).await;
        assert!(
            matches!(garbage, Err(HeaderError::InvalidV1(_))),
            "{garbage:?}"
        );
    }
}
