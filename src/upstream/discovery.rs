//! Target addresses: literal ones parse, static host names resolve once through the system
//! resolver when the runtime is built, and `discovery: dns` names resolve to every A/AAAA
//! record, again every `resolve_every`, through the configured DNS servers.

use crate::config::Config;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};

/// Addresses of every target, keyed by the target address as written.
pub type Resolved = HashMap<String, Vec<SocketAddr>>;

/// Why a static target has no address.
#[derive(Debug, thiserror::Error)]
#[error("upstream `{upstream}`: cannot resolve target `{address}`: {reason}")]
pub struct ResolveError {
    /// The upstream.
    pub upstream: String,
    /// The target as written.
    pub address: String,
    /// What the resolver said.
    pub reason: String,
}

/// Resolves every target of upstreams without discovery (blocking: startup and reload
/// only). Discovered names are left to [`Dns`].
pub fn resolve_static(config: &Config) -> Result<Resolved, ResolveError> {
    let mut out = Resolved::new();
    for u in config
        .upstreams
        .iter()
        .filter(|u| u.resolve_every.is_none())
    {
        for t in &u.targets {
            let addr = first_address(&t.address).map_err(|reason| ResolveError {
                upstream: u.name.clone(),
                address: t.address.clone(),
                reason,
            })?;
            out.insert(t.address.clone(), vec![addr]);
        }
    }
    Ok(out)
}

fn first_address(address: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = address.parse() {
        return Ok(addr);
    }
    address
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "no addresses".to_string())
}

/// The DNS client of `discovery: dns`.
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// A client of `servers`, or of the system's resolvers when empty. Answers are not
    /// cached: each resolution asks the servers.
    pub fn new(servers: &[SocketAddr]) -> Result<Self, hickory_resolver::ResolveError> {
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

    /// Every address of `host:port`, sorted; a literal address is returned as is.
    pub async fn resolve(&self, address: &str) -> Result<Vec<SocketAddr>, String> {
        if let Ok(addr) = address.parse() {
            return Ok(vec![addr]);
        }
        let (host, port) = address
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or_else(|| format!("`{address}` is not host:port"))?;
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| e.to_string())?;
        let mut addrs: Vec<SocketAddr> =
            lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        addrs.sort_unstable();
        addrs.dedup();
        Ok(addrs)
    }

    /// Resolves every discovered name of `config`; a name that fails keeps the addresses
    /// it had in `previous` (none at startup), and the failure is logged.
    pub async fn resolve_all(&self, config: &Config, previous: &Resolved) -> Resolved {
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
