//! The runtime: a configuration compiled for serving, immutable once built. A change builds
//! a new one (carrying live target state over by upstream and address, as start-up creates
//! it) and the control plane swaps it in whole; each request keeps the snapshot it started
//! with.

use crate::config::{Config, HeaderRules, Limits, Protocol, RouteTimeouts, StreamSettings};
use crate::headers::HeaderPolicy;
use crate::listener::Listeners;
use crate::metrics::{
    Denials, LiveTargets, RequestCounters, Retirement, RouteMetrics, Series, StreamMetrics,
};
use crate::policy::{Gate, Guard, PolicyError};
use crate::routing::RouteTable;
use crate::tls::TlsError;
use crate::upstream::{now_ms, Pool, Resolved, StateCarry};
use arc_swap::ArcSwap;
use std::collections::HashSet;
use std::sync::Arc;

/// Why a validated configuration could not be compiled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CompileError {
    /// A route or listener names an upstream that does not exist (validation rejects this
    /// first).
    #[error("{user} names upstream `{upstream}`, which does not exist")]
    MissingUpstream {
        /// The route or listener.
        user: String,
        /// The upstream it names.
        upstream: String,
    },
    /// An upstream's TLS settings could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A consumer's keys or password, or an issuer's keys, could not be loaded.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// The runtime shared by every service; `load_full` it once per request.
pub(crate) type SharedRuntime = Arc<ArcSwap<Runtime>>;

/// A route, resolved to its pool.
#[derive(Debug)]
pub(crate) struct CompiledRoute {
    /// Its name in the configuration.
    pub name: String,
    /// Index into [`Runtime::pools`].
    pub pool: usize,
    /// Remove the matched part of the path before forwarding.
    pub strip_prefix: bool,
    /// Route-level header rules (applied after the pool's).
    pub headers: HeaderRules,
    /// Its metric handles.
    pub metrics: RouteMetrics,
    /// Whether its requests go to the access log.
    pub access_log: bool,
    /// Its address rules and authentication.
    pub guard: Guard,
    /// Its own timeouts, over its upstream's.
    pub timeouts: RouteTimeouts,
}

/// A `tcp` or `tls` listener, resolved to its pool.
#[derive(Debug)]
pub(crate) struct CompiledStream {
    /// Its listener's name.
    pub listener: String,
    /// Index into [`Runtime::pools`].
    pub pool: usize,
    /// Limit, timeouts and PROXY protocol.
    pub settings: StreamSettings,
    /// Its metric handles.
    pub metrics: StreamMetrics,
}

/// Everything a request needs, compiled from one configuration.
pub(crate) struct Runtime {
    /// The configuration it was compiled from; discovery recompiles it with new addresses.
    pub config: Arc<Config>,
    /// The addresses its targets were built from.
    pub resolved: Arc<Resolved>,
    /// Routes in file order; [`crate::routing::RouteMatch::route`] indexes it.
    pub routes: Vec<CompiledRoute>,
    /// Host + path matcher.
    pub table: RouteTable,
    /// Upstream pools, sorted by name.
    pub pools: Vec<Pool>,
    /// Global header settings.
    pub headers: HeaderPolicy,
    /// Scheme, redirect and HSTS of each listener.
    pub listeners: Listeners,
    /// Address rules and authentication of each listener, by listener index.
    pub listener_guards: Vec<Guard>,
    /// Requests answered before any route matched (no route, a redirect, a bad request).
    pub unrouted: RequestCounters,
    /// Requests a listener's policies refused before any route matched.
    pub unrouted_denials: Denials,
    /// Set once a change retired this runtime's series, so that its requests still running
    /// create none again.
    retirement: Retirement,
    /// Consumers, token issuers and password checks.
    pub gate: Arc<Gate>,
    /// TCP listeners, by listener index ([`crate::listener::Listeners::find`]); `None` for
    /// HTTP ones.
    pub streams: Vec<Option<CompiledStream>>,
}

impl Runtime {
    /// The limits of the listener at `listener` (the top level's for an unknown one).
    pub(crate) fn limits(&self, listener: Option<usize>) -> &Limits {
        listener
            .and_then(|i| self.config.listeners.get(i))
            .map_or(&self.config.limits, |l| &l.limits)
    }

    /// Compiles a validated configuration with its targets' addresses. Targets whose upstream
    /// and address also exist in `previous` keep their live state (in-flight counts, health,
    /// check schedule); new ones slow-start when there is a `previous`.
    pub(crate) fn compile(
        config: Arc<Config>,
        previous: Option<&Runtime>,
        resolved: Resolved,
    ) -> Result<Self, CompileError> {
        let carry: StateCarry = previous
            .into_iter()
            .flat_map(|rt| rt.pools.iter())
            .flat_map(|p| {
                p.targets.iter().map(|t| {
                    (
                        (p.name.clone(), t.configured.clone(), t.addr),
                        t.state.clone(),
                    )
                })
            })
            .collect();
        let pools = config
            .upstreams
            .iter()
            .map(|u| Pool::build(u, &resolved, &carry, previous.is_none()))
            .collect::<Result<Vec<_>, _>>()?;
        let pool_of = |user: &str, upstream: &str| {
            pools
                .iter()
                .position(|p| p.name == upstream)
                .ok_or_else(|| CompileError::MissingUpstream {
                    user: user.to_string(),
                    upstream: upstream.to_string(),
                })
        };
        // Discovery recompiles the same configuration with new addresses: its consumers
        // and issuers (and their caches) stay.
        let retirement = Retirement::default();
        let gate = match previous {
            Some(p) if Arc::ptr_eq(&p.config, &config) => p.gate.clone(),
            _ => Arc::new(Gate::build(&config, previous.map(|p| &*p.gate))?),
        };
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let pool = pool_of(&format!("route `{}`", r.name), &r.upstream)?;
                let instances = pools[pool].targets.iter().map(|t| t.label());
                let consumers = gate.registry.labels();
                Ok(CompiledRoute {
                    metrics: RouteMetrics::new(
                        &r.name,
                        &r.upstream,
                        instances,
                        consumers,
                        &retirement,
                    ),
                    name: r.name.clone(),
                    pool,
                    strip_prefix: r.strip_prefix,
                    headers: r.headers.clone(),
                    access_log: r.access_log,
                    guard: Guard::new(&r.policies, &gate, &format!("route:{}", r.name)),
                    timeouts: r.timeouts,
                })
            })
            .collect::<Result<Vec<_>, CompileError>>()?;
        let streams = config
            .listeners
            .iter()
            .map(|l| {
                let Protocol::Tcp(settings) = &l.protocol else {
                    return Ok(None);
                };
                let pool = pool_of(&format!("listener `{}`", l.name), &settings.upstream)?;
                let instances = pools[pool].targets.iter().map(|t| t.label());
                Ok(Some(CompiledStream {
                    metrics: StreamMetrics::new(&l.name, &settings.upstream, instances),
                    listener: l.name.clone(),
                    pool,
                    settings: settings.clone(),
                }))
            })
            .collect::<Result<Vec<_>, CompileError>>()?;
        Ok(Self {
            streams,
            unrouted: RequestCounters::new("", "", "", ""),
            // The unrouted series outlive every runtime: never retired.
            unrouted_denials: Denials::new("", &Retirement::default()),
            retirement,
            routes,
            table: RouteTable::new(&config.routes),
            pools,
            headers: HeaderPolicy::from(&config.headers),
            listeners: Listeners::new(&config.listeners),
            listener_guards: config
                .listeners
                .iter()
                .map(|l| Guard::new(&l.policies, &gate, &format!("listener:{}", l.name)))
                .collect(),
            gate,
            resolved: Arc::new(resolved),
            config,
        })
    }

    /// The metric series this runtime counts into.
    fn series(&self) -> HashSet<Series> {
        let mut series = HashSet::new();
        let targets = |pool: usize| {
            self.pools[pool]
                .targets
                .iter()
                .map(|t| t.label().to_string())
        };
        let consumers = self.gate.registry.labels();
        let consumers = || std::iter::once("").chain(consumers.iter().map(String::as_str));
        for r in &self.routes {
            let upstream = &self.pools[r.pool].name;
            series.insert(Series::Route {
                route: r.name.clone(),
                upstream: upstream.clone(),
            });
            for instance in std::iter::once(String::new()).chain(targets(r.pool)) {
                series.extend(consumers().map(|consumer| Series::Requests {
                    route: r.name.clone(),
                    upstream: upstream.clone(),
                    instance: instance.clone(),
                    consumer: consumer.to_string(),
                }));
            }
        }
        for (p, pool) in self.pools.iter().enumerate() {
            series.extend(targets(p).map(|instance| Series::Target {
                upstream: pool.name.clone(),
                instance,
            }));
        }
        for stream in self.streams.iter().flatten() {
            series.extend(targets(stream.pool).map(|instance| Series::StreamTarget {
                listener: stream.listener.clone(),
                upstream: self.pools[stream.pool].name.clone(),
                instance,
            }));
        }
        series
    }

    /// Removes the metric series of this runtime that `next` does not count into (routes and
    /// targets a change took away), so that the scrape holds what is served.
    pub(crate) fn retire_series(&self, next: &Runtime) {
        self.retirement.retire();
        let kept = next.series();
        for gone in self.series().difference(&kept) {
            gone.remove();
        }
    }
}

impl LiveTargets for SharedRuntime {
    fn each_target(&self, each: &mut dyn FnMut(&str, &str, usize, bool)) {
        let runtime = self.load();
        let now = now_ms();
        for pool in &runtime.pools {
            for t in &pool.targets {
                each(
                    &pool.name,
                    t.label(),
                    t.state.inflight(),
                    t.state.health.available(now),
                );
            }
        }
    }
}
