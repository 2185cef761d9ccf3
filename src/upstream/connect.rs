//! How weir connects to the instances of one upstream: timeouts, TLS (server name,
//! verification, trusted CAs) and HTTP version, built once per pool and copied into each
//! target's peer, so that Pingora's connection pool keys them alike.

use crate::config::{self, TargetAddr};
use crate::tls::{load_ca, TlsError};
use pingora::upstreams::peer::{HttpPeer, PeerOptions};
use std::net::SocketAddr;
use std::sync::Arc;

/// Connection settings shared by the targets of a pool.
pub(crate) struct Connect {
    tls: bool,
    /// `tls.sni`; without it a host-name target sends its own name.
    sni: Option<String>,
    options: PeerOptions,
    /// Hash of the CA bundle's path, 0 without one.
    group_key: u64,
}

impl Connect {
    /// Settings for `spec`, reading its CA bundle if it names one.
    pub(crate) fn new(spec: &config::Upstream) -> Result<Self, TlsError> {
        let mut options = PeerOptions::new();
        options.connection_timeout = Some(spec.timeouts.connect);
        options.read_timeout = Some(spec.timeouts.read);
        options.write_timeout = Some(spec.timeouts.write);
        options.idle_timeout = Some(spec.timeouts.idle);
        if spec.http2 {
            // h2 only: negotiated by ALPN over TLS, prior knowledge (h2c) without.
            options.set_http_version(2, 2);
        }
        if let Some(tls) = &spec.tls {
            options.verify_cert = tls.verify;
            options.verify_hostname = tls.verify;
            if let Some(ca) = &tls.ca {
                options.ca = Some(Arc::new(load_ca(&ca.file, &ca.at.to_string())?));
            }
        }
        let group_key = spec
            .tls
            .as_ref()
            .and_then(|t| t.ca.as_ref())
            .map_or(0, |ca| {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&ca.file, &mut hasher);
                std::hash::Hasher::finish(&hasher)
            });
        Ok(Self {
            group_key,
            tls: spec.tls.is_some(),
            sni: spec.tls.as_ref().and_then(|t| t.sni.clone()),
            options,
        })
    }

    /// The peer of one instance at `addr`, configured as the target `address`.
    pub(crate) fn peer(&self, addr: SocketAddr, address: &TargetAddr) -> HttpPeer {
        let mut peer = HttpPeer::new(addr, self.tls, self.server_name(address));
        peer.options = self.options.clone();
        // Pingora's connection pool does not tell CA bundles apart: two upstreams with the
        // same address and name but different `ca` must not share verified connections.
        peer.group_key = self.group_key;
        peer
    }

    /// The server name sent to a target: `tls.sni`, else a host-name target's host, else
    /// none (an IP-address target, which validation allows only without verification).
    pub(crate) fn server_name(&self, address: &TargetAddr) -> String {
        if !self.tls {
            return String::new();
        }
        self.sni
            .as_deref()
            .or(address.host_name())
            .unwrap_or_default()
            .to_string()
    }
}
