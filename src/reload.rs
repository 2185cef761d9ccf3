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

use crate::config::{self, Config, Listener};
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
    /// The configuration it leads to is invalid: every error (those found by validation
    /// start with their YAML path; an address that does not resolve names its upstream).
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
    /// Nothing to do: the configuration already was so (a drained target drained again).
    Unchanged,
}

/// A reload that was applied.
#[derive(Debug)]
pub struct Reloaded {
    /// What the file holds, in counts.
    pub summary: String,
    /// Runtime-only edits of the admin API that the file did not have, now gone.
    pub dropped_edits: usize,
}

/// Where a new configuration comes from, which decides what is loaded again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The file: every name is resolved and every certificate loaded again.
    File,
    /// An admin API edit of targets: only addresses not known yet are resolved, and the
    /// certificates stay, so that a drain does not depend on DNS or on certificate files.
    Edit,
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

/// A configuration ready to be swapped in over `base`.
struct Prepared {
    base: Arc<Runtime>,
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
        let live = Self {
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
        };
        if persist {
            if let Err(e) = tempfile::NamedTempFile::new_in(live.folder()) {
                log::warn!(
                    "admin.persist: cannot write in {} ({e}); admin API edits will fail until \
                     it can",
                    live.folder().display()
                );
            }
        }
        live
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

    /// The YAML document the running configuration was compiled from, and how many of its
    /// edits the file lacks. (Settings that need `weir upgrade` keep their running value
    /// even when the document changed them.)
    pub fn document(&self) -> (Value, usize) {
        let document = self.lock();
        (document.yaml.clone(), document.unsaved)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Document> {
        self.document
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The folder of the file: where a persisted edit's temporary file goes.
    fn folder(&self) -> &std::path::Path {
        self.path.parent().unwrap_or(std::path::Path::new("."))
    }

    /// Reads, checks and applies the file, dropping runtime-only edits; logs and counts the
    /// outcome. `Err` holds every problem, one per line.
    pub fn reload(&self, cause: &str) -> Result<Reloaded, String> {
        let file = self.path.display();
        log::info!("{cause}: reloading {file}");
        let mut document = self.lock();
        let outcome = config::read(&self.path)
            .and_then(|text| Ok((config::parse(&self.path, &text)?, text)))
            .map_err(|e| e.to_string())
            .and_then(|(config, text)| {
                let prepared = self.prepare(&config, Origin::File)?;
                Ok((self.commit(prepared, &config, Origin::File)?, text))
            });
        metrics::count_reload(outcome.is_ok());
        match outcome {
            Ok((summary, text)) => {
                let dropped_edits = document.unsaved;
                *document = Document {
                    yaml: serde_yaml::from_str(&text).unwrap_or_default(),
                    file_text: text,
                    unsaved: 0,
                };
                log::info!("reloaded {file}: {summary}");
                if dropped_edits > 0 {
                    log::warn!(
                        "reload: {dropped_edits} runtime-only admin API edit(s) the file did not \
                         have are gone (admin.persist: true writes edits to the file)"
                    );
                }
                Ok(Reloaded {
                    summary,
                    dropped_edits,
                })
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
    /// `change` returns whether it changed anything.
    pub fn edit(
        &self,
        what: &str,
        change: impl FnOnce(&mut Value) -> Result<bool, EditError>,
    ) -> Result<Saved, EditError> {
        let mut document = self.lock();
        let mut yaml = document.yaml.clone();
        if !change(&mut yaml)? {
            return Ok(Saved::Unchanged);
        }
        let text = serde_yaml::to_string(&yaml).map_err(|e| EditError::Failed(e.to_string()))?;
        let config = config::parse(&self.path, &text)
            .map_err(|e| EditError::Invalid(e.0.into_iter().map(|e| e.message).collect()))?;
        let invalid = |e: String| EditError::Invalid(e.lines().map(str::to_string).collect());
        let prepared = self.prepare(&config, Origin::Edit).map_err(invalid)?;
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
            Some(text)
        } else {
            None
        };
        // Should this fail after the file was written, the file no longer matches what was
        // loaded: the next persisted edit asks for a reload, which applies it.
        self.commit(prepared, &config, Origin::Edit)
            .map_err(invalid)?;
        document.yaml = yaml;
        let saved = match saved {
            Some(text) => {
                document.file_text = text;
                Saved::Persisted
            }
            None => {
                document.unsaved += 1;
                Saved::RuntimeOnly
            }
        };
        log::info!("admin API: {what} ({saved:?})");
        Ok(saved)
    }

    /// Replaces the file (the file a symbolic link leads to) with `text` at once: a reader
    /// sees the old file or the new one, with the old one's permissions and, where this
    /// process may set them, owner and group.
    fn write(&self, text: &str) -> std::io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let path = std::fs::canonicalize(&self.path)?;
        let folder = path.parent().unwrap_or(std::path::Path::new("/"));
        let old = std::fs::metadata(&path)?;
        let mut file = tempfile::NamedTempFile::new_in(folder)?;
        file.write_all(text.as_bytes())?;
        file.as_file().set_permissions(old.permissions())?;
        if let Err(e) = std::os::unix::fs::fchown(file.as_file(), Some(old.uid()), Some(old.gid()))
        {
            log::warn!(
                "admin.persist: {} keeps this process's owner: {e}",
                path.display()
            );
        }
        file.as_file().sync_all()?;
        file.persist(&path).map_err(|e| e.error)?;
        std::fs::File::open(folder)?.sync_all()
    }

    /// Checks certificates, resolves targets and compiles `config` against the running
    /// runtime, changing nothing yet. What only a new process can change keeps its running
    /// value, with a warning.
    fn prepare(&self, config: &Config, origin: Origin) -> Result<Prepared, String> {
        let mut config = config.clone();
        let base = self.runtime.load_full();
        let file = self.path.display();
        if sockets(&config.listeners) != sockets(&base.config.listeners) {
            log::warn!(
                "reload: {file}: listeners were added, removed or changed address or protocol; \
                 that needs `weir upgrade`. The running sockets stay; everything else is applied"
            );
            // Each running listener takes its new settings when its socket is unchanged.
            config.listeners = base
                .config
                .listeners
                .iter()
                .map(|running| {
                    let same = |l: &&Listener| socket(l) == socket(running);
                    config
                        .listeners
                        .iter()
                        .find(same)
                        .unwrap_or(running)
                        .clone()
                })
                .collect();
        }
        keep_running(
            &file,
            "the server section",
            &mut config.server,
            &base.config.server,
        );
        keep_running(
            &file,
            "the access_log section",
            &mut config.access_log,
            &base.config.access_log,
        );
        keep_running(
            &file,
            "the admin section",
            &mut config.admin,
            &base.config.admin,
        );
        let certs = match origin {
            Origin::File => self.certificates(&config)?,
            Origin::Edit => Vec::new(),
        };
        let resolved = match origin {
            Origin::File => server::resolve(&config),
            Origin::Edit => {
                let mut unknown = config.clone();
                for u in &mut unknown.upstreams {
                    u.targets
                        .retain(|t| !base.resolved.contains_key(&t.address));
                }
                server::resolve(&unknown).map(|found| {
                    let mut resolved = (*base.resolved).clone();
                    resolved.extend(found);
                    resolved
                })
            }
        }
        .map_err(|e| e.to_string())?;
        let summary = format!(
            "{} listener(s), {} route(s), {} upstream(s)",
            config.listeners.len(),
            config.routes.len(),
            config.upstreams.len()
        );
        let runtime =
            Runtime::compile(Arc::new(config), Some(&base), resolved).map_err(|e| e.to_string())?;
        Ok(Prepared {
            base,
            runtime,
            certs,
            summary,
        })
    }

    /// The certificate sets of `config`'s https listeners, loaded but not installed.
    fn certificates(
        &self,
        config: &Config,
    ) -> Result<Vec<(Arc<ListenerCerts>, config::ListenerTls, CertSet)>, String> {
        let mut certs = Vec::new();
        let mut errors = Vec::new();
        for l in &config.listeners {
            let Some(spec) = l.protocol.tls() else {
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
        if errors.is_empty() {
            Ok(certs)
        } else {
            Err(TlsErrors(errors).to_string())
        }
    }

    /// Swaps a prepared configuration in. If DNS discovery swapped in a runtime since it was
    /// compiled, `config` is compiled again against that one, so neither change is lost.
    fn commit(
        &self,
        mut prepared: Prepared,
        config: &Config,
        origin: Origin,
    ) -> Result<String, String> {
        loop {
            let next = Arc::new(prepared.runtime);
            let previous = self.runtime.compare_and_swap(&prepared.base, next);
            if Arc::ptr_eq(&previous, &prepared.base) {
                for (loaded, spec, set) in prepared.certs {
                    loaded.replace(&spec, set);
                }
                return Ok(prepared.summary);
            }
            prepared = self.prepare(config, origin)?;
        }
    }
}

/// What identifies a listener's socket: binding a new one needs a new process.
fn socket(l: &Listener) -> (&str, std::net::SocketAddr, bool, bool) {
    let tls = l.protocol.tls().is_some();
    (l.name.as_str(), l.address, tls, l.protocol.is_http())
}

/// The sockets of a listener list.
fn sockets(listeners: &[Listener]) -> Vec<(&str, std::net::SocketAddr, bool, bool)> {
    listeners.iter().map(socket).collect()
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
            if let Err(e) = tokio::task::spawn_blocking(move || live.reload("SIGHUP")).await {
                log::error!("reload failed unexpectedly, the running configuration stays: {e}");
            }
        }
    }
}
