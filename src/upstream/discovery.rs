//! Target addresses: literal ones parse, static host names resolve once through the system
//! resolver when the runtime is built, and `discovery: dns` names resolve to every A/AAAA
//! record, again every `resolve_every`, through the configured DNS servers.

use crate::config::{Config, TargetAddr, TargetHost};
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};

/// Addresses of every target, keyed by the target address (which compares as written).
pub(crate) type Resolved = HashMap<TargetAddr, Vec<SocketAddr>>;

/// Why a static target has no address.
#[derive(Debug, thiserror::Error)]
#[error("upstream `{upstream}`: cannot resolve target `{address}`: {reason}")]
pub(crate) struct ResolveError {
    /// The upstream.
    pub upstream: String,
    /// The target as written.
    pub address: String,
    /// What the resolver said.
    pub reason: String,
}

/// Resolves every target of upstreams without discovery (blocking: startup and reload
/// only). Discovered names are left to [`Dns`].
pub(crate) fn resolve_static(config: &Config) -> Result<Resolved, ResolveError> {
    let mut out = Resolved::new();
    for u in config
        .upstreams
        .iter()
        .filter(|u| u.resolve_every.is_none())
    {
        for t in &u.targets {
            let addr = first_address(&t.address).map_err(|e| ResolveError {
                upstream: u.name.clone(),
                address: t.address.to_string(),
                reason: e.to_string(),
            })?;
            out.insert(t.address.clone(), vec![addr]);
        }
    }
    Ok(out)
}

/// The first address of a static target: its own, or the system resolver's first answer.
fn first_address(address: &TargetAddr) -> std::io::Result<SocketAddr> {
    let name = match address.host() {
        TargetHost::Ip(ip) => return Ok(SocketAddr::new(*ip, address.port())),
        TargetHost::Name(name) => name.as_str(),
    };
    (name, address.port())
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"))
}

/// The DNS client of `discovery: dns`.
pub(crate) struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// A client of `servers`, or of the system's resolvers when empty. Answers are not
    /// cached: each resolution asks the servers.
    pub(crate) fn new(servers: &[SocketAddr]) -> Result<Self, hickory_resolver::ResolveError> {
        let mut builder = if servers.is_empty() {
            TokioResolver::builder_tokio()?
        } else {
            let group: Vec<NameServerConfig> = servers
                .iter()
                .map(|s| NameServerConfig::new(*s, Protocol::Udp))
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, vec![], group),
                TokioConnectionProvider::default(),
            )
        };
        let options: &mut ResolverOpts = builder.options_mut();
        options.cache_size = 0;
        options.ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        Ok(Self {
            resolver: builder.build(),
        })
    }

    /// Every address of a target, sorted; a literal address is returned as is.
    pub(crate) async fn resolve(
        &self,
        address: &TargetAddr,
    ) -> Result<Vec<SocketAddr>, hickory_resolver::ResolveError> {
        let host = match address.host() {
            TargetHost::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, address.port())]),
            TargetHost::Name(name) => name.as_str(),
        };
        let lookup = self.resolver.lookup_ip(host).await?;
        let mut addrs: Vec<SocketAddr> = lookup
            .iter()
            .map(|ip| SocketAddr::new(ip, address.port()))
            .collect();
        addrs.sort_unstable();
        addrs.dedup();
        Ok(addrs)
    }

    /// Resolves every discovered name of `config`; a name that fails keeps the addresses
    /// it had in `previous` (none at startup), and the failure is logged.
    pub(crate) async fn resolve_all(&self, config: &Config, previous: &Resolved) -> Resolved {
        let mut out = Resolved::new();
        for u in config
            .upstreams
            .iter()
            .filter(|u| u.resolve_every.is_some())
        {
            for t in &u.targets {
                if out.contains_key(&t.address) {
                    continue;
                }
                let addrs = match self.resolve(&t.address).await {
                    Ok(addrs) => addrs,
                    Err(e) => {
                        let kept = previous.get(&t.address).cloned().unwrap_or_default();
                        log::warn!(
                            "upstream `{}`: resolving `{}` failed ({e}); keeping {} known address(es)",
                            u.name,
                            t.address,
                            kept.len()
                        );
                        kept
                    }
                };
                out.insert(t.address.clone(), addrs);
            }
        }
        out
    }
}
