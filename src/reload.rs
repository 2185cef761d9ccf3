//! In-place reload on SIGHUP (which `weir reload` sends): the YAML is read again and
//! validated, its certificates are loaded and a runtime is compiled that keeps the live state
//! (health, ejections, in-flight counts, connection pools) of every target whose address did
//! not change. Only when all of that succeeds are the certificates and the runtime swapped in;
//! a failed reload changes nothing and logs every error with its location.

use crate::config::{self, Listener, Protocol};
use crate::metrics;
use crate::runtime::{Runtime, SharedRuntime};
use crate::server;
use crate::tls::{ListenerCerts, TlsErrors};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How often SIGHUP is looked for.
const TICK: Duration = Duration::from_millis(100);

/// Reloads the configuration file on SIGHUP.
pub struct Reloader(Arc<Inner>);

struct Inner {
    path: PathBuf,
    runtime: SharedRuntime,
    certs: Vec<Arc<ListenerCerts>>,
    hangup: Arc<AtomicBool>,
}

impl Reloader {
    /// Takes SIGHUP over at once (its default would end the process); once started,
    /// reloads `path` into `runtime` and `certs` on each one.
    pub fn new(
        path: PathBuf,
        runtime: SharedRuntime,
        certs: Vec<Arc<ListenerCerts>>,
    ) -> std::io::Result<Self> {
        let hangup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())?;
        Ok(Self(Arc::new(Inner {
            path,
            runtime,
            certs,
            hangup,
        })))
    }
}

/// What identifies the sockets of a listener list: binding them needs a new process.
fn sockets(listeners: &[Listener]) -> Vec<(&str, std::net::SocketAddr, bool)> {
    listeners
        .iter()
        .map(|l| {
            let tls = matches!(l.protocol, Protocol::Https(_));
            (l.name.as_str(), l.address, tls)
        })
        .collect()
}

/// Settings a running process keeps until a new one starts (`weir upgrade`): when the file
/// changes them, the running value stays, and the log says so. (pid_file and upgrade_sock
/// must even stay the same across the upgrade: both processes use them.)
fn keep_running<T: PartialEq + Clone>(
    file: &dyn std::fmt::Display,
    what: &str,
    new: &mut T,
    running: &T,
) {
    if new != running {
        log::warn!(
            "reload: {file}: {what} changed; it applies with `weir upgrade` (pid_file and \
             upgrade_sock with a restart). Everything else is applied"
        );
        *new = running.clone();
    }
}

impl Inner {
    /// Reads, checks and applies the file; `Err` holds every problem, one per line.
    fn reload(&self) -> Result<String, String> {
        let mut config = config::load(&self.path).map_err(|e| e.to_string())?;
        let current = self.runtime.load_full();
        if sockets(&config.listeners) != sockets(&current.config.listeners) {
            log::warn!(
                "reload: {}: listeners were added, removed or changed address or protocol; \
                 that needs `weir upgrade`. The running listeners stay; everything else is applied",
                self.path.display()
            );
            config.listeners = current.config.listeners.clone();
        }
        let file = self.path.display();
        keep_running(
            &file,
            "the server section",
            &mut config.server,
            &current.config.server,
        );
        keep_running(
            &file,
            "the access_log section",
            &mut config.access_log,
            &current.config.access_log,
        );
        keep_running(
            &file,
            "the admin section",
            &mut config.admin,
            &current.config.admin,
        );
        let mut prepared = Vec::new();
        let mut errors = Vec::new();
        for l in &config.listeners {
            let Protocol::Https(spec) = &l.protocol else {
                continue;
            };
            let Some(certs) = self.certs.iter().find(|c| c.listener == l.name) else {
                continue;
            };
            match certs.prepare(spec) {
                Ok(set) => prepared.push((certs, spec.clone(), set)),
                Err(e) => errors.extend(e.0),
            }
        }
        if !errors.is_empty() {
            return Err(TlsErrors(errors).to_string());
        }
        let resolved = server::resolve(&config).map_err(|e| e.to_string())?;
        let summary = format!(
            "{} listener(s), {} route(s), {} upstream(s)",
            config.listeners.len(),
            config.routes.len(),
            config.upstreams.len()
        );
        let next = Runtime::compile(Arc::new(config), Some(&current), resolved)
            .map_err(|e| e.to_string())?;
        for (certs, spec, set) in prepared {
            certs.replace(&spec, set);
        }
        self.runtime.store(Arc::new(next));
        Ok(summary)
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            if !self.0.hangup.swap(false, Ordering::Relaxed) {
                continue;
            }
            let inner = self.0.clone();
            let path = inner.path.display().to_string();
            log::info!("SIGHUP: reloading {path}");
            // Loading reads files and may resolve names: off the async threads.
            let outcome = match tokio::task::spawn_blocking(move || inner.reload()).await {
                Ok(outcome) => outcome,
                Err(e) => Err(e.to_string()),
            };
            metrics::count_reload(outcome.is_ok());
            match outcome {
                Ok(summary) => log::info!("reloaded {path}: {summary}"),
                Err(errors) => {
                    for line in errors.lines() {
                        log::error!("reload failed, the running configuration stays: {line}");
                    }
                }
            }
        }
    }
}
