//! The address of an upstream target, `host:port`, parsed once when the file is validated:
//! everything after validation (resolution, discovery, the TLS server name, the admin API)
//! reads its parts instead of splitting the text again.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// A target as written in `targets: [{ address: … }]`: an IP address or a host name, and a
/// port. It prints as written, so metric labels, admin API names and log lines show the
/// text the operator wrote.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TargetAddr {
    written: String,
    host: TargetHost,
    port: u16,
}

/// The host part of a [`TargetAddr`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum TargetHost {
    /// A literal address, used as is.
    Ip(IpAddr),
    /// A DNS name, resolved when the runtime is built (and again with `discovery: dns`).
    Name(String),
}

/// Why a text is not a target address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not host:port, e.g. 127.0.0.1:9001 or api.internal:8080")]
pub(crate) struct NotHostPort(String);

impl TargetAddr {
    /// The literal socket address of an IP-address target; `None` for a host name.
    pub(crate) fn socket_addr(&self) -> Option<SocketAddr> {
        match self.host {
            TargetHost::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            TargetHost::Name(_) => None,
        }
    }

    /// The host name of a name target (what TLS sends as the server name); `None` for an
    /// IP address.
    pub(crate) fn host_name(&self) -> Option<&str> {
        match &self.host {
            TargetHost::Name(name) => Some(name),
            TargetHost::Ip(_) => None,
        }
    }

    /// The host part.
    pub(crate) fn host(&self) -> &TargetHost {
        &self.host
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for TargetAddr {
    type Err = NotHostPort;

    /// `ip:port`, `[v6]:port` or `hostname:port`, checked without resolving.
    fn from_str(s: &str) -> Result<Self, NotHostPort> {
        let written = s.to_string();
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Ok(Self {
                written,
                host: TargetHost::Ip(addr.ip()),
                port: addr.port(),
            });
        }
        let invalid = || NotHostPort(s.to_string());
        let (host, port) = s.rsplit_once(':').ok_or_else(invalid)?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(invalid)?;
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if host.is_empty() || !host.split('.').all(label_ok) {
            return Err(invalid());
        }
        Ok(Self {
            host: TargetHost::Name(host.to_string()),
            written,
            port,
        })
    }
}

impl fmt::Display for TargetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ips_names_and_refuses_the_rest() {
        let v4: TargetAddr = "127.0.0.1:9001".parse().unwrap();
        assert_eq!(
            v4.socket_addr(),
            Some(SocketAddr::from(([127, 0, 0, 1], 9001)))
        );
        let v6: TargetAddr = "[::1]:80".parse().unwrap();
        assert_eq!(v6.port(), 80);
        assert!(v6.host_name().is_none());
        let name: TargetAddr = "api.internal:8080".parse().unwrap();
        assert_eq!(name.host_name(), Some("api.internal"));
        assert_eq!(name.socket_addr(), None);
        assert_eq!(name.to_string(), "api.internal:8080");
        for bad in [
            "127.0.0.1",
            "host:0",
            "host:x",
            ":80",
            "a..b:80",
            "bad host:80",
        ] {
            assert!(bad.parse::<TargetAddr>().is_err(), "{bad}");
        }
    }
}
