//! Upstreams: compiled pools of targets and how one is chosen per request.
//!
//! Each algorithm is a Pingora [`BackendSelection`]: Pingora's own for weighted random and
//! consistent (Ketama) hashing, weir's for smooth weighted round robin, least connections and
//! power of two choices. A pool holds one of them in an enum, so a pick is a direct call, not
//! a trait object. Targets with weight 0, and drained ones, are left out of the selector:
//! they take no new traffic (requests in flight keep the snapshot that holds them). Backup targets have a selector of their own, asked only when no primary is
//! available. Health is checked per candidate at pick time, so an ejection takes effect on
//! the very next request without rebuilding anything.

mod checks;
mod connect;
pub(crate) mod deadline;
mod discovery;
mod health;
mod least_conn;
mod smooth_weighted;
mod target;

pub(crate) use checks::Checker;
pub(crate) use connect::Connect;
pub(crate) use deadline::Deadline;
pub(crate) use discovery::{resolve_static, Dns, ResolveError, Resolved};
pub(crate) use health::now_ms;
pub(crate) use target::{InflightGuard, Target, TargetState};

use crate::config::HeaderRules;
use crate::config::{self, Balance, Passive};
use crate::metrics::TargetMetrics;
use crate::tls::TlsError;
use health::Verdict;
use least_conn::{LeastConn, P2c};
use pingora::http::RequestHeader;
use pingora::lb::selection::{BackendIter, BackendSelection, Consistent, Random};
use pingora::lb::Backend;
use smooth_weighted::SmoothWeighted;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Candidates a selector offers before the pool scans its targets in order.
const MAX_CANDIDATES: usize = 64;

/// The algorithm of one tier of a pool.
enum Selector {
    RoundRobin(Arc<SmoothWeighted>),
    Random(Arc<Random>),
    Hash(Arc<Consistent>),
    LeastConn(Arc<LeastConn>),
    P2c(Arc<P2c>),
}

/// The primary targets of a pool, or its backups: a selector over them and the list.
struct Tier {
    selector: Selector,
    targets: Box<[Arc<Target>]>,
}

impl Tier {
    /// `None` when no target of this tier has weight.
    fn build<'a>(
        balance: &Balance,
        targets: impl Iterator<Item = &'a Arc<Target>>,
    ) -> Option<Self> {
        let targets: Box<[Arc<Target>]> = targets.filter(|t| t.selectable()).cloned().collect();
        if targets.is_empty() {
            return None;
        }
        let backends: BTreeSet<Backend> = targets
            .iter()
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
        let selector = match balance {
            Balance::RoundRobin => Selector::RoundRobin(build(&backends)),
            Balance::Random => Selector::Random(build(&backends)),
            Balance::LeastConn => Selector::LeastConn(build(&backends)),
            Balance::P2c => Selector::P2c(build(&backends)),
            Balance::IpHash | Balance::Header(_) | Balance::Cookie(_) => {
                Selector::Hash(build(&backends))
            }
        };
        Some(Self { selector, targets })
    }

    /// The first candidate the algorithm offers that `prefer` accepts; failing that, the
    /// first target in order that `accept` does (so bad luck never looks like an outage).
    fn pick(
        &self,
        key: &[u8],
        prefer: impl Fn(&Target) -> bool,
        accept: impl Fn(&Target) -> bool,
    ) -> Option<Arc<Target>> {
        let offered = match &self.selector {
            Selector::RoundRobin(s) => first(s, key, &prefer),
            Selector::Random(s) => first(s, key, &prefer),
            Selector::Hash(s) => first(s, key, &prefer),
            Selector::LeastConn(s) => first(s, key, &prefer),
            Selector::P2c(s) => first(s, key, &prefer),
        };
        offered.or_else(|| self.targets.iter().find(|t| accept(t)).cloned())
    }
}

/// What hashing algorithms hash on.
enum HashOn {
    Nothing,
    ClientIp,
    Header(http::HeaderName),
    Cookie(String),
}

/// Targets a request has already tried, by index (modulo 64: a false positive only skips a
/// target that a later fallback still offers).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tried(u64);

impl Tried {
    /// Adds a target.
    pub(crate) fn insert(&mut self, index: usize) {
        self.0 |= 1 << (index % 64);
    }

    fn contains(self, index: usize) -> bool {
        self.0 & (1 << (index % 64)) != 0
    }
}

/// A target chosen for a request.
pub(crate) struct Pick {
    /// The target.
    pub target: Arc<Target>,
    /// Chosen although unavailable, because nothing was (panic mode).
    pub panic: bool,
}

/// A compiled upstream.
pub(crate) struct Pool {
    /// Its name in the configuration.
    pub name: String,
    /// Every target, including weight-0 ones.
    pub targets: Vec<Arc<Target>>,
    /// Header rules applied to every request through this pool.
    pub headers: HeaderRules,
    /// Active checks, run by the [`Supervisor`].
    pub checker: Option<Checker>,
    /// Re-resolution period of `discovery: dns`.
    pub resolve_every: Option<std::time::Duration>,
    /// How long a TCP connection to an instance may take.
    pub connect_timeout: std::time::Duration,
    primary: Option<Tier>,
    backup: Option<Tier>,
    hash_on: HashOn,
    passive: Passive,
    retries: u32,
    slow_start_ms: u64,
    panic_mode: bool,
    in_panic: AtomicBool,
}

/// What `ip_hash` (and header or cookie hashing without the header or cookie) hashes for a
/// client: IPv4 as its IPv6-mapped form, so that HTTP and TCP listeners agree.
pub(crate) fn hash_key(client: IpAddr) -> [u8; 16] {
    match client {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Live state carried from one runtime to the next, keyed as start-up creates it: by
/// upstream, target as written, and address. Two upstreams that name one instance (or two
/// targets of one upstream that resolve to one address) check it and count it each on
/// their own.
pub(crate) type StateCarry = HashMap<CarryKey, Arc<TargetState>>;

/// The upstream, the target as written and the address of one target's live state.
pub(crate) type CarryKey = (String, String, SocketAddr);

impl Pool {
    /// Builds a pool from resolved addresses. Targets whose address is in `carry` keep their
    /// live state; others start healthy (unless checks say `initially: unhealthy`) and, when
    /// `fresh` is false (a reload or a discovery change), slow-start. Fails only when the
    /// upstream's CA bundle cannot be read.
    pub(crate) fn build(
        spec: &config::Upstream,
        resolved: &Resolved,
        carry: &StateCarry,
        fresh: bool,
    ) -> Result<Self, TlsError> {
        let connect = Connect::new(spec)?;
        let initially_healthy = spec
            .health_check
            .as_ref()
            .is_none_or(|h| h.initially_healthy);
        let ramp_from = if fresh { 0 } else { now_ms() };
        let discovered = spec.resolve_every.is_some();
        let mut targets = Vec::with_capacity(spec.targets.len());
        for t in &spec.targets {
            let addrs = resolved.get(&t.address).map_or(&[][..], Vec::as_slice);
            for &addr in addrs {
                let peer = connect.peer(addr, &t.address);
                let name = if discovered {
                    addr.to_string()
                } else {
                    t.name.clone()
                };
                targets.push(Arc::new(Target {
                    metrics: TargetMetrics::new(&spec.name, &name),
                    name: http::HeaderValue::from_str(&name)
                        .unwrap_or_else(|_| http::HeaderValue::from_static("invalid-name")),
                    index: targets.len(),
                    addr,
                    configured: t.address.to_string(),
                    weight: t.weight,
                    backup: t.backup,
                    drain: t.drain,
                    peer,
                    state: carry
                        .get(&(spec.name.clone(), t.address.to_string(), addr))
                        .cloned()
                        .unwrap_or_else(|| {
                            Arc::new(TargetState::new(initially_healthy, ramp_from))
                        }),
                }));
            }
        }
        let hash_on = match &spec.balance {
            Balance::IpHash => HashOn::ClientIp,
            Balance::Header(h) => HashOn::Header(h.clone()),
            Balance::Cookie(c) => HashOn::Cookie(c.clone()),
            _ => HashOn::Nothing,
        };
        // Checks connect as the targets do; Pingora replaces the address per check.
        let check_peers = spec
            .targets
            .iter()
            .map(|t| connect.peer(SocketAddr::from(([0, 0, 0, 0], 1)), &t.address))
            .collect();
        Ok(Self {
            name: spec.name.clone(),
            primary: Tier::build(&spec.balance, targets.iter().filter(|t| !t.backup)),
            backup: Tier::build(&spec.balance, targets.iter().filter(|t| t.backup)),
            targets,
            headers: spec.headers.clone(),
            checker: spec
                .health_check
                .as_ref()
                .map(|h| Checker::new(h, &spec.name, check_peers)),
            resolve_every: spec.resolve_every,
            connect_timeout: spec.timeouts.connect,
            hash_on,
            passive: spec.passive.clone(),
            retries: spec.retries,
            slow_start_ms: spec
                .slow_start
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            panic_mode: spec.panic_mode,
            in_panic: AtomicBool::new(false),
        })
    }

    /// Picks the target for a request among those it has not `tried`: an available primary,
    /// else an available backup, else (in panic mode) any of them; `None` when there is
    /// nothing to offer. Hash keys: the client address for `ip_hash`; the header or cookie
    /// for `hash`, falling back to the client address when the request lacks it.
    pub(crate) fn select(
        &self,
        req: &RequestHeader,
        client_ip: &[u8],
        tried: Tried,
    ) -> Option<Pick> {
        let key: &[u8] = match &self.hash_on {
            HashOn::Nothing => b"",
            HashOn::ClientIp => client_ip,
            HashOn::Header(name) => req.headers.get(name).map_or(client_ip, |v| v.as_bytes()),
            HashOn::Cookie(name) => cookie(req, name).unwrap_or(client_ip),
        };
        self.pick(key, tried)
    }

    /// Picks the target for a TCP connection from `client_ip`, as [`Pool::select`] does for
    /// a request; hashing algorithms hash on the client address.
    pub(crate) fn select_connection(&self, client_ip: &[u8], tried: Tried) -> Option<Pick> {
        let key: &[u8] = match &self.hash_on {
            HashOn::Nothing => b"",
            _ => client_ip,
        };
        self.pick(key, tried)
    }

    fn pick(&self, key: &[u8], tried: Tried) -> Option<Pick> {
        let now = now_ms();
        let untried = |t: &Target| !tried.contains(t.index);
        let usable = |t: &Target| untried(t) && t.state.health.available(now);
        let ramped = |t: &Target| {
            usable(t)
                && (self.slow_start_ms == 0 || t.state.health.takes_turn(now, self.slow_start_ms))
        };
        let tiers = || self.primary.iter().chain(self.backup.iter());
        if let Some(target) = tiers().find_map(|tier| tier.pick(key, ramped, usable)) {
            if self.in_panic.swap(false, Ordering::Relaxed) {
                log::warn!(
                    "upstream `{}`: instances available again, panic mode over",
                    self.name
                );
            }
            return Some(Pick {
                target,
                panic: false,
            });
        }
        if !self.panic_mode {
            return None;
        }
        if !self.in_panic.swap(true, Ordering::Relaxed) {
            log::warn!(
                "upstream `{}`: no instance is available; panic mode: trying them anyway",
                self.name
            );
        }
        let target = tiers().find_map(|tier| tier.pick(key, untried, untried))?;
        Some(Pick {
            target,
            panic: true,
        })
    }

    /// Attempts one request may make: the first plus `retries`, at most one per target.
    pub(crate) fn max_attempts(&self) -> u32 {
        let selectable = self.targets.iter().filter(|t| t.selectable()).count();
        (self.retries + 1).min(u32::try_from(selectable).unwrap_or(u32::MAX))
    }

    /// Whether a response status counts against the instance that sent it.
    pub(crate) fn is_failure_status(&self, status: u16) -> bool {
        self.passive.fail_statuses.contains(&status)
    }

    /// Records a request that the instance served well.
    pub(crate) fn succeeded(&self, target: &Target) {
        target.state.health.succeeded(now_ms(), &self.passive);
    }

    /// Records a failed request and ejects the instance once it reaches `max_fails`, unless
    /// that would eject more than `max_ejection_percent` of the pool.
    pub(crate) fn failed(&self, target: &Target, why: &dyn std::fmt::Display) {
        let now = now_ms();
        let health = &target.state.health;
        if health.failed(now, &self.passive) != Verdict::Eject || health.ejected(now) {
            return;
        }
        let ejected = self
            .targets
            .iter()
            .filter(|t| t.state.health.ejected(now))
            .count();
        let allowed = self.targets.len() * usize::from(self.passive.max_ejection_percent) / 100;
        if ejected >= allowed {
            log::warn!(
                "upstream `{}`: instance `{}` keeps failing ({why}) but stays in: {ejected} of {} \
                 are ejected already (max_ejection_percent {})",
                self.name,
                target.label(),
                self.targets.len(),
                self.passive.max_ejection_percent
            );
            return;
        }
        let time = health.eject(now, &self.passive);
        target.metrics.ejections.inc();
        log::warn!(
            "upstream `{}`: instance `{}` ejected for {:?} after {} failure(s); last: {why}",
            self.name,
            target.label(),
            time,
            self.passive.max_fails
        );
    }
}

fn build<S: BackendSelection>(backends: &BTreeSet<Backend>) -> Arc<S> {
    Arc::new(S::build(backends))
}

/// The first of at most [`MAX_CANDIDATES`] candidates that `accept` takes.
fn first<S>(selection: &Arc<S>, key: &[u8], accept: impl Fn(&Target) -> bool) -> Option<Arc<Target>>
where
    S: BackendSelection,
    S::Iter: BackendIter,
{
    let mut iter = selection.iter(key);
    for _ in 0..MAX_CANDIDATES {
        let target = iter.next()?.ext.get::<Arc<Target>>()?;
        if accept(target) {
            return Some(target.clone());
        }
    }
    None
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
