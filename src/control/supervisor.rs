//! The one background task that keeps upstreams honest: it runs every pool's active checks
//! on their interval and re-resolves `discovery: dns` names, handing a changed answer to the
//! [`LiveConfig`], which compiles and swaps in a runtime with the new instances as it does
//! every change; it also starts the fetches of JWT issuers' JWKS URLs when they are due. It
//! always works on the current runtime, so pools and issuers created by a reload are served
//! too. Checks, resolutions and fetches run as tasks of their own on the supervisor's
//! thread: a slow one delays nothing, and nothing here blocks a request.

use super::LiveConfig;
use crate::runtime::Runtime;
use crate::upstream::{now_ms, Dns};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often the supervisor looks for due work.
const TICK: Duration = Duration::from_millis(50);

/// Health checks, DNS discovery and JWKS fetches for the runtime of a [`LiveConfig`].
pub(crate) struct Supervisor {
    live: Arc<LiveConfig>,
    dns: Arc<Dns>,
    resolving: Arc<AtomicBool>,
}

impl Supervisor {
    /// A supervisor of `live`'s runtime, resolving through `dns`.
    pub(crate) fn new(live: Arc<LiveConfig>, dns: Dns) -> Self {
        Self {
            live,
            dns: Arc::new(dns),
            resolving: Arc::new(AtomicBool::new(false)),
        }
    }

    fn spawn_checks(rt: &Arc<Runtime>) {
        let now = now_ms();
        for (p, pool) in rt.pools.iter().enumerate() {
            let Some(checker) = &pool.checker else {
                continue;
            };
            for (t, target) in pool.targets.iter().enumerate() {
                if !target
                    .state
                    .health
                    .check_due(now, checker.settings.interval)
                {
                    continue;
                }
                let rt = rt.clone();
                tokio::spawn(async move {
                    let pool = &rt.pools[p];
                    let target = &pool.targets[t];
                    let Some(checker) = &pool.checker else { return };
                    let result = checker.probe(target.addr, &target.peer.sni).await;
                    let health = &target.state.health;
                    match (
                        health.checked(result.is_ok(), now_ms(), &checker.settings),
                        result,
                    ) {
                        (Some(true), _) => log::warn!(
                            "upstream `{}`: instance `{}` is healthy again",
                            pool.name,
                            target.label()
                        ),
                        (Some(false), Err(e)) => log::warn!(
                            "upstream `{}`: instance `{}` is unhealthy: {e}",
                            pool.name,
                            target.label()
                        ),
                        _ => {}
                    }
                });
            }
        }
    }

    fn spawn_discovery(&self) {
        if self.resolving.swap(true, Ordering::AcqRel) {
            return;
        }
        let (live, dns, resolving) = (self.live.clone(), self.dns.clone(), self.resolving.clone());
        tokio::spawn(async move {
            rediscover(&live, &dns).await;
            resolving.store(false, Ordering::Release);
        });
    }
}

/// Resolves every discovered name again and, if any answer changed, has `live` apply the
/// new addresses.
async fn rediscover(live: &LiveConfig, dns: &Dns) {
    let current = live.runtime().load_full();
    let found = dns.resolve_all(&current.config, &current.resolved).await;
    if found
        .iter()
        .all(|(name, addrs)| current.resolved.get(name) == Some(addrs))
    {
        return;
    }
    for (name, addrs) in &found {
        let before: BTreeSet<&SocketAddr> =
            current.resolved.get(name).into_iter().flatten().collect();
        let after: BTreeSet<&SocketAddr> = addrs.iter().collect();
        if before != after {
            log::warn!(
                "discovery: `{name}` now resolves to {} address(es); added {:?}, removed {:?}",
                after.len(),
                after.difference(&before).collect::<Vec<_>>(),
                before.difference(&after).collect::<Vec<_>>()
            );
        }
    }
    live.rediscovered(&current, found);
}

#[async_trait]
impl BackgroundService for Supervisor {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut next_discovery = 0;
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(TICK) => {}
            }
            let rt = self.live.runtime().load_full();
            Self::spawn_checks(&rt);
            rt.gate.refresh_keys();
            let period = rt.pools.iter().filter_map(|p| p.resolve_every).min();
            if let Some(period) = period {
                let now = now_ms();
                if now >= next_discovery {
                    next_discovery = now + u64::try_from(period.as_millis()).unwrap_or(u64::MAX);
                    self.spawn_discovery();
                }
            }
        }
    }
}
