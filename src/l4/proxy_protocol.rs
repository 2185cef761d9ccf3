//! The PROXY protocol (v1 text, v2 binary), with the `ppp` crate: a header sent to an
//! instance so it sees the real client, and one read from a trusted load balancer in front.

use crate::config::ProxyVersion;
use ppp::v2;
use ppp::{HeaderResult, PartialResult};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The longest header accepted: v1's 107 bytes, or v2's 16 plus addresses and some TLVs.
const MAX_HEADER: usize = 536;

/// Why a connection's header was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The connection ended, failed or waited too long before a whole header.
    #[error("no whole PROXY protocol header (the connection ended or waited too long)")]
    Truncated,
    /// The bytes are not a PROXY protocol header.
    #[error("not a PROXY protocol header: {0}")]
    Invalid(String),
}

/// The header that tells an instance a connection from `client` came in at `local`.
pub fn header(version: ProxyVersion, client: SocketAddr, local: SocketAddr) -> Vec<u8> {
    match version {
        ProxyVersion::V1 => ppp::v1::Addresses::from((client, local))
            .to_string()
            .into_bytes(),
        ProxyVersion::V2 => v2::Builder::with_addresses(
            v2::Version::Two | v2::Command::Proxy,
            v2::Protocol::Stream,
            (client, local),
        )
        .build()
        // Building into memory from two socket addresses cannot fail.
        .unwrap_or_default(),
    }
}

/// Reads the header a load balancer sends first: the client it names (`None` for a
/// health check's `UNKNOWN` or `LOCAL`), and the bytes read past the header.
pub async fn read<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Option<SocketAddr>, Vec<u8>), HeaderError> {
    let mut buf = Vec::with_capacity(MAX_HEADER);
    let mut chunk = [0; MAX_HEADER];
    loop {
        let n = stream
            .read(&mut chunk[..MAX_HEADER - buf.len()])
            .await
            .map_err(|_| HeaderError::Truncated)?;
        if n == 0 {
            return Err(HeaderError::Truncated);
        }
        buf.extend_from_slice(&chunk[..n]);
        let parsed = HeaderResult::parse(&buf);
        if parsed.is_incomplete() && buf.len() < MAX_HEADER {
            continue;
        }
        let (client, length) = match parsed {
            HeaderResult::V1(Ok(h)) => (v1_client(&h.addresses), h.header.len()),
            HeaderResult::V2(Ok(h)) => (v2_client(&h.addresses), h.len()),
            HeaderResult::V1(Err(e)) => return Err(HeaderError::Invalid(e.to_string())),
            HeaderResult::V2(Err(e)) => return Err(HeaderError::Invalid(e.to_string())),
        };
        return Ok((client, buf.split_off(length)));
    }
}

fn v1_client(addresses: &ppp::v1::Addresses) -> Option<SocketAddr> {
    match addresses {
        ppp::v1::Addresses::Tcp4(a) => Some((a.source_address, a.source_port).into()),
        ppp::v1::Addresses::Tcp6(a) => Some((a.source_address, a.source_port).into()),
        ppp::v1::Addresses::Unknown => None,
    }
}

fn v2_client(addresses: &v2::Addresses) -> Option<SocketAddr> {
    match addresses {
        v2::Addresses::IPv4(a) => Some((a.source_address, a.source_port).into()),
        v2::Addresses::IPv6(a) => Some((a.source_address, a.source_port).into()),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

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
            let (read_client, rest) = read(&mut &sent[..]).await.unwrap();
            assert_eq!(read_client, Some(client), "{version:?}");
            assert_eq!(rest, b"PING\r\n");
        }
        let garbage = read(&mut &b"GET / HTTP/1.1\r\n\r\n"[..]).await;
        assert!(
            matches!(garbage, Err(HeaderError::Invalid(_))),
            "{garbage:?}"
        );
    }
}
