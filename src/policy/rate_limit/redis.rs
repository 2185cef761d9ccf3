//! The Redis store: one script call per decision (`EVALSHA`, loading the script when the
//! server answers `NOSCRIPT`), over `pool_size` multiplexed connections that reconnect by
//! themselves. The connections live on a runtime of their own, started at the first
//! decision (after a daemon's fork) and kept for the life of the process, so that a
//! request on any of Pingora's runtimes awaits a decision without blocking a thread and
//! without tying a connection to a runtime that may stop.

use super::window::{Limits, Outcome};
use crate::config::{redacted_url, RedisStore as Settings};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The script, the same arithmetic as [`super::window::Window::decide`].
const SCRIPT: &str = include_str!("decide.lua");

/// Why a decision could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Redis answered with an error, or the connection failed.
    #[error("{0}")]
    Redis(#[from] redis::RedisError),
    /// No answer within `rate_limits.redis.timeout`.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The runtime of the connections could not be started.
    #[error("cannot start the Redis connections' runtime: {0}")]
    Runtime(Arc<std::io::Error>),
    /// The decision's task ended without an answer.
    #[error("the decision was cancelled")]
    Cancelled,
}

/// The runtime every Redis connection of the process runs on.
/// Kept with the error of a failed start, which every later decision reports.
static RUNTIME: OnceLock<Result<tokio::runtime::Runtime, Arc<std::io::Error>>> = OnceLock::new();

fn runtime() -> Result<&'static tokio::runtime::Runtime, StoreError> {
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("weir-redis")
                .enable_all()
                .build()
                .map_err(Arc::new)
        })
        .as_ref()
        .map_err(|e| StoreError::Runtime(Arc::clone(e)))
}

/// `rate_limits.redis`: its connections and whether it is failing.
pub(crate) struct RedisStore {
    settings: Settings,
    client: redis::Client,
    /// Made at the first decision, on [`RUNTIME`].
    connections: OnceLock<Vec<ConnectionManager>>,
    next: AtomicUsize,
    script: Arc<redis::Script>,
    /// Whether the last decision failed, so that only transitions are logged.
    down: AtomicBool,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `settings`; nothing connects before the first decision.
    pub(crate) fn new(settings: &Settings) -> Result<Self, redis::RedisError> {
        Ok(Self {
            client: redis::Client::open(settings.url.as_str())?,
            settings: settings.clone(),
            connections: OnceLock::new(),
            next: AtomicUsize::new(0),
            script: Arc::new(redis::Script::new(SCRIPT)),
            down: AtomicBool::new(false),
        })
    }

    /// The settings it was made from, to tell whether a new configuration can keep it.
    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    fn connection(&self) -> Result<ConnectionManager, StoreError> {
        let runtime = runtime()?;
        let connections = match self.connections.get() {
            Some(made) => made,
            None => {
                let _inside = runtime.enter();
                let timeout = self.settings.timeout;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                let made = (0..self.settings.pool_size)
                    .map(|_| {
                        ConnectionManager::new_lazy_with_config(self.client.clone(), config.clone())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                self.connections.get_or_init(|| made)
            }
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % connections.len().max(1);
        connections.get(i).cloned().ok_or(StoreError::Cancelled)
    }

    /// Decides one request of `key`, within the timeout.
    pub(crate) async fn decide(&self, key: String, limits: Limits) -> Result<Outcome, StoreError> {
        let result = self.ask(key, limits).await;
        // Read before written: the flag changes once per transition, and a write on every
        // decision would bounce its cache line between the request threads.
        let down = self.down.load(Ordering::Relaxed);
        match &result {
            Ok(_) if down && self.down.swap(false, Ordering::Relaxed) => log::info!(
                "rate limits: Redis at {} answers again; shared limits apply",
                redacted_url(&self.settings.url)
            ),
            Err(e) if !down && !self.down.swap(true, Ordering::Relaxed) => log::warn!(
                "rate limits: Redis at {} failed ({e}); `on_store_error` decides until it answers",
                redacted_url(&self.settings.url)
            ),
            _ => {}
        }
        result
    }

    async fn ask(&self, key: String, limits: Limits) -> Result<Outcome, StoreError> {
        let mut connection = self.connection()?;
        let script = self.script.clone();
        let mut task = runtime()?.spawn(async move {
            script
                .key(key)
                .arg(limits.limit)
                .arg(limits.per_ms)
                .arg(limits.burst)
                .invoke_async::<(u8, u64, u64)>(&mut connection)
                .await
        });
        let timeout = self.settings.timeout;
        match tokio::time::timeout(timeout, &mut task).await {
            Ok(Ok(answer)) => {
                let (admitted, remaining, wait_ms) = answer?;
                Ok(Outcome {
                    admitted: admitted == 1,
                    remaining,
                    wait_ms,
                })
            }
            Ok(Err(_)) => Err(StoreError::Cancelled),
            Err(_) => {
                task.abort();
                Err(StoreError::Timeout(timeout))
            }
        }
    }
}
