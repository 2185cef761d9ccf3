//! Upstreams: compiled pools of targets and how one is chosen per request.
//!
//! Each algorithm is a Pingora [`BackendSelection`]: Pingora's own for weighted random and
//! consistent (Ketama) hashing, weir's for smooth weighted round robin, least connections and
//! power of two choices. A pool holds one of them in an enum, so a pick is a direct call, not
//! a trait object. Targets with weight 0 are left out of the selector: they take no new
//! traffic.

mod least_conn;
mod smooth_weighted;
mod target;

pub use target::{InflightGuard, Target, TargetState};

use crate::config::HeaderRules;
use crate::config::{self, Balance};
use least_conn::{LeastConn, P2c};
use pingora::http::RequestHeader;
use pingora::lb::selection::{BackendIter, BackendSelection, Consistent, Random};
use pingora::lb::Backend;
use pingora::upstreams::peer::HttpPeer;
use smooth_weighted::SmoothWeighted;
use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Why a pool could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// A target's host name did not resolve.
    #[error("upstream `{upstream}`: cannot resolve target `{address}`: {reason}")]
    Resolve {
        /// The upstream.
        upstream: String,
        /// The target as written.
        address: String,
        /// What the resolver said.
        reason: String,
    },
}

/// The algorithm of one pool.
enum Selector {
    RoundRobin(Arc<SmoothWeighted>),
    Random(Arc<Random>),
    Hash(Arc<Consistent>),
    LeastConn(Arc<LeastConn>),
    P2c(Arc<P2c>),
}

/// What hashing algorithms hash on.
enum HashOn {
    Nothing,
    ClientIp,
    Header(http::HeaderName),
    Cookie(String),
}

/// A compiled upstream.
pub struct Pool {
    /// Its name in the configuration.
    pub name: String,
    /// Every target, including weight-0 ones.
    pub targets: Vec<Arc<Target>>,
    /// Header rules applied to every request through this pool.
    pub headers: HeaderRules,
    /// `None` when no target has weight: every request gets 503.
    selector: Option<Selector>,
    hash_on: HashOn,
}

/// Live state carried from one runtime to the next, by target address.
pub type StateCarry = HashMap<SocketAddr, Arc<TargetState>>;

impl Pool {
    /// Builds a pool, resolving host names once (blocking: this runs at startup and reload,
    /// never per request). Targets whose address is in `carry` keep their live state.
    pub fn build(spec: &config::Upstream, carry: &StateCarry) -> Result<Self, PoolError> {
        let mut targets = Vec::with_capacity(spec.targets.len());
        for t in &spec.targets {
            let addr = resolve(&t.address).map_err(|reason| PoolError::Resolve {
                upstream: spec.name.clone(),
                address: t.address.clone(),
                reason,
            })?;
            let mut peer = HttpPeer::new(addr, false, String::new());
            peer.options.connection_timeout = Some(spec.timeouts.connect);
            peer.options.read_timeout = Some(spec.timeouts.read);
            peer.options.write_timeout = Some(spec.timeouts.write);
            peer.options.idle_timeout = Some(spec.timeouts.idle);
            targets.push(Arc::new(Target {
                name: http::HeaderValue::from_str(&t.name)
                    .unwrap_or_else(|_| http::HeaderValue::from_static("invalid-name")),
                addr,
                weight: t.weight,
                peer,
                state: carry.get(&addr).cloned().unwrap_or_default(),
            }));
        }
        let backends: BTreeSet<Backend> = targets
            .iter()
            .filter(|t| t.weight > 0)
            .map(|t| {
                let mut b = Backend {
                    addr: pingora::protocols::l4::socket::SocketAddr::Inet(t.addr),
                    weight: t.weight as usize,
                    ext: Default::default(),
                };
                b.ext.insert(t.clone());
                b
            })
            .collect();
        let selector = (!backends.is_empty()).then(|| match spec.balance {
            Balance::RoundRobin => Selector::RoundRobin(build(&backends)),
            Balance::Random => Selector::Random(build(&backends)),
            Balance::LeastConn => Selector::LeastConn(build(&backends)),
            Balance::P2c => Selector::P2c(build(&backends)),
            Balance::IpHash | Balance::Header(_) | Balance::Cookie(_) => {
                Selector::Hash(build(&backends))
            }
        });
        let hash_on = match &spec.balance {
            Balance::IpHash => HashOn::ClientIp,
            Balance::Header(h) => HashOn::Header(h.clone()),
            Balance::Cookie(c) => HashOn::Cookie(c.clone()),
            _ => HashOn::Nothing,
        };
        Ok(Self {
            name: spec.name.clone(),
            targets,
            headers: spec.headers.clone(),
            selector,
            hash_on,
        })
    }

    /// Picks the target for a request, or `None` when the pool has nothing to offer.
    /// Hash keys: the client address for `ip_hash`; the header or cookie for `hash`, falling
    /// back to the client address when the request lacks it (so the client still sticks).
    pub fn select(&self, req: &RequestHeader, client_ip: &[u8]) -> Option<Arc<Target>> {
        let key: &[u8] = match &self.hash_on {
            HashOn::Nothing => b"",
            HashOn::ClientIp => client_ip,
            HashOn::Header(name) => req.headers.get(name).map_or(client_ip, |v| v.as_bytes()),
            HashOn::Cookie(name) => cookie(req, name).unwrap_or(client_ip),
        };
        match self.selector.as_ref()? {
            Selector::RoundRobin(s) => first(s, key),
            Selector::Random(s) => first(s, key),
            Selector::Hash(s) => first(s, key),
            Selector::LeastConn(s) => first(s, key),
            Selector::P2c(s) => first(s, key),
        }
    }
}

fn build<S: BackendSelection>(backends: &BTreeSet<Backend>) -> Arc<S> {
    Arc::new(S::build(backends))
}

fn first<S>(selection: &Arc<S>, key: &[u8]) -> Option<Arc<Target>>
where
    S: BackendSelection,
    S::Iter: BackendIter,
{
    selection
        .iter(key)
        .next()
        .and_then(|b| b.ext.get::<Arc<Target>>().cloned())
}

/// The value of cookie `name`, from any `Cookie` header.
fn cookie<'a>(req: &'a RequestHeader, name: &str) -> Option<&'a [u8]> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii_start();
            let rest = pair.strip_prefix(name.as_bytes())?;
            rest.strip_prefix(b"=")
        })
}

fn resolve(address: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = address.parse() {
        return Ok(addr);
    }
    address
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| "no addresses".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookie_lookup() {
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("cookie", "a=1; sid=abc; sidx=2").unwrap();
        assert_eq!(cookie(&req, "sid"), Some(&b"abc"[..]));
        assert_eq!(cookie(&req, "none"), None);
    }
}
