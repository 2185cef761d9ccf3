//! Changes to the running configuration, one at a time: a reload of the file (SIGHUP, which
//! `weir reload` sends, or the admin API's `POST /reload`) and the admin API's edits of
//! targets.
//!
//! Both end the same way: a configuration validated as a whole, its certificates loaded and a
//! runtime compiled that keeps the live state (health, ejections, in-flight counts,
//! connection pools) of every target whose address did not change. Only when all of that
//! succeeds are the certificates and the runtime swapped in; a failed change changes nothing
//! and says why, with every error.
//!
//! An edit is made to the YAML document the runtime was compiled from (`${VAR}` references
//! unexpanded), so what the API changed can be shown (`GET /config`) and, with
//! `admin.persist`, written back to the file. Without it the edit lasts until the next reload.

use crate::config::{self, Config, Listener, Protocol};
use crate::metrics;
use crate::runtime::{Runtime, SharedRuntime};
use crate::server;
use crate::tls::{CertSet, ListenerCerts, TlsErrors};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use serde_yaml::Value;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often SIGHUP is looked for.
const TICK: Duration = Duration::from_millis(100);

/// First line of a file the admin API wrote back.
const PERSISTED_BANNER: &str = "# Written by weir's admin API (admin.persist: true). \
Comments of the previous version are not kept.\n";

/// Why an edit was not applied.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The upstream or target it names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It contradicts the current state (a duplicate address, the last target, a file that
    /// was edited since it was loaded).
    #[error("{0}")]
    Conflict(String),
    /// The configuration it leads to is invalid: every error, each naming its YAML path.
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// It could not be carried out (a file that cannot be written).
    #[error("{0}")]
    Failed(String),
}

/// What an applied edit did to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Written back to the file: it survives reloads and restarts.
    Persisted,
    /// In the running configuration only: the next reload of the file drops it.
    RuntimeOnly,
}

/// The YAML the runtime was compiled from.
struct Document {
    /// The file as last read or written, plus runtime-only edits.
    yaml: Value,
    /// The file's text as last read or written, to notice edits made to it since.
    file_text: String,
    /// Edits made since, that the file does not have.
    unsaved: usize,
}

/// The running configuration, and the only way to change it.
pub struct LiveConfig {
    path: PathBuf,
    runtime: SharedRuntime,
    certs: Vec<Arc<ListenerCerts>>,
    persist: bool,
    document: Mutex<Document>,
}

/// A configuration ready to be swapped in.
struct Prepared {
    runtime: Runtime,
    certs: Vec<(Arc<ListenerCerts>, config::ListenerTls, CertSet)>,
    summary: String,
}

impl LiveConfig {
    /// The configuration that `runtime` was compiled from: `text`, read from `path`.
    pub fn new(
        path: PathBuf,
        text: &str,
        runtime: SharedRuntime,
        certs: Vec<Arc<ListenerCerts>>,
    ) -> Self {
        let persist = runtime
            .load()
            .config
            .admin
            .as_ref()
            .is_some_and(|a| a.persist);
        Self {
            path,
            runtime,
            certs,
            persist,
            document: Mutex::new(Document {
                // The text was validated, so it parses.
                yaml: serde_yaml::from_str(text).unwrap_or_default(),
                file_text: text.to_string(),
                unsaved: 0,
            }),
        }
    }

    /// The runtime it compiles into.
    pub fn runtime(&self) -> &SharedRuntime {
        &self.runtime
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Whether edits are written back to the file.
    pub fn persists(&self) -> bool {
        self.persist
    }

    /// The running YAML document and how many of its edits the file lacks.
    pub fn document(&self) -> (Value, usize) {
        let document = self.lock();
        (document.yaml.clone(), document.unsaved)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Document> {
        self.document
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads, checks and applies the file, dropping runtime-only edits; logs and counts the
    /// outcome. `Err` holds every problem, one per line.
    pub fn reload(&self, cause: &str) -> Result<String, String> {
        let file = self.path.display();
        log::info!("{cause}: reloading {file}");
        let mut document = self.lock();
        let outcome = config::read(&self.path)
            .and_then(|text| Ok((config::parse(&self.path, &text)?, text)))
            .map_err(|e| e.to_string())
            .and_then(|(config, text)| Ok((self.prepare(config)?, text)));
        metrics::count_reload(outcome.is_ok());
        match outcome {
            Ok((prepared, text)) => {
                let summary = self.commit(prepared);
                *document = Document {
                    yaml: serde_yaml::from_str(&text).unwrap_or_default(),
                    file_text: text,
                    unsaved: 0,
                };
                log::info!("reloaded {file}: {summary}");
                Ok(summary)
            }
            Err(errors) => {
                for line in errors.lines() {
                    log::error!("reload failed, the running configuration stays: {line}");
                }
                Err(errors)
            }
        }
    }

    /// Applies `change` to the running document, and with `admin.persist` to the file too.
    pub fn edit(
        &self,
        what: &str,
        change: impl FnOnce(&mut Value) -> Result<(), EditError>,
    ) -> Result<Saved, EditError> {
        let mut document = self.lock();
        let mut yaml = document.yaml.clone();
        change(&mut yaml)?;
        let text = serde_yaml::to_string(&yaml).map_err(|e| EditError::Failed(e.to_string()))?;
        let config = config::parse(&self.path, &text)
            .map_err(|e| EditError::Invalid(e.0.into_iter().map(|e| e.message).collect()))?;
        let prepared = self
            .prepare(config)
            .map_err(|e| EditError::Invalid(e.lines().map(str::to_string).collect::<Vec<_>>()))?;
        let saved = if self.persist {
            let on_disk = config::read(&self.path).map_err(|e| EditError::Failed(e.to_string()))?;
            if on_disk != document.file_text {
                return Err(EditError::Conflict(format!(
                    "{} was edited since weir loaded it; reload it first (POST /reload), so \
                     that writing this change back does not undo those edits",
                    self.path.display()
                )));
            }
            let text = format!("{PERSISTED_BANNER}{text}");
            self.write(&text)
                .map_err(|e| EditError::Failed(format!("{}: {e}", self.path.display())))?;
            document.file_text = text;
            Saved::Persisted
        } else {
            document.unsaved += 1;
            Saved::RuntimeOnly
        };
        document.yaml = yaml;
        self.commit(prepared);
        log::info!("admin API: {what} ({saved:?})");
        Ok(saved)
    }

    /// Replaces the file with `text` at once: a reader sees the old file or the new one.
    fn write(&self, text: &str) -> std::io::Result<()> {
        let folder = self.path.parent().unwrap_or(std::path::Path::new("."));
        let mut file = tempfile::NamedTempFile::new_in(folder)?;
        file.write_all(text.as_bytes())?;
        file.as_file().sync_all()?;
        let permissions = std::fs::metadata(&self.path)?.permissions();
        file.as_file().set_permissions(permissions)?;
        file.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Checks certificates, resolves targets and compiles `config`, changing nothing yet.
    /// What only a new process can change keeps its running value, with a warning.
    fn prepare(&self, mut config: Config) -> Result<Prepared, String> {
        let current = self.runtime.load_full();
        let file = self.path.display();
        if sockets(&config.listeners) != sockets(&current.config.listeners) {
            log::warn!(
                "reload: {file}: listeners were added, removed or changed address or protocol; \
                 that needs `weir upgrade`. The running listeners stay; everything else is applied"
            );
            config.listeners = current.config.listeners.clone();
        }
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
        let mut certs = Vec::new();
        let mut errors = Vec::new();
        for l in &config.listeners {
            let Protocol::Https(spec) = &l.protocol else {
                continue;
            };
            let Some(loaded) = self.certs.iter().find(|c| c.listener == l.name) else {
                continue;
            };
            match loaded.prepare(spec) {
                Ok(set) => certs.push((loaded.clone(), spec.clone(), set)),
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
        let runtime = Runtime::compile(Arc::new(config), Some(&current), resolved)
            .map_err(|e| e.to_string())?;
        Ok(Prepared {
            runtime,
            certs,
            summary,
        })
    }

    /// Swaps a prepared configuration in.
    fn commit(&self, prepared: Prepared) -> String {
        for (loaded, spec, set) in prepared.certs {
            loaded.replace(&spec, set);
        }
        self.runtime.store(Arc::new(prepared.runtime));
        prepared.summary
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

/// Reloads the configuration file on SIGHUP.
pub struct Reloader {
    live: Arc<LiveConfig>,
    hangup: Arc<AtomicBool>,
}

impl Reloader {
    /// Takes SIGHUP over at once (its default would end the process); once started,
    /// reloads `live` on each one.
    pub fn new(live: Arc<LiveConfig>) -> std::io::Result<Self> {
        let hangup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())?;
        Ok(Self { live, hangup })
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
            if !self.hangup.swap(false, Ordering::Relaxed) {
                continue;
            }
            let live = self.live.clone();
            // Loading reads files and may resolve names: off the async threads. The outcome
            // is logged by the reload itself.
            let _ = tokio::task::spawn_blocking(move || live.reload("SIGHUP")).await;
        }
    }
}
