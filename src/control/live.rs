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

use super::load::{self, LoadError};
use super::{install, persist};
use crate::config::{self, Config, ConfigErrors, Listener};
use crate::metrics;
use crate::runtime::{Runtime, SharedRuntime};
use crate::tls::{CertSet, ListenerCerts};
use serde_yaml::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// First line of a file the admin API wrote back.
const PERSISTED_BANNER: &str = "# Written by weir's admin API (admin.persist: true). \
Comments of the previous version are not kept.\n";

/// Why a change of the configuration was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The file cannot be read or is invalid: every error, located.
    #[error(transparent)]
    Config(#[from] ConfigErrors),
    /// What it needs from outside the file (addresses, certificates) did not load.
    #[error(transparent)]
    Load(#[from] LoadError),
}

impl ChangeError {
    /// Every problem, one per entry.
    pub fn messages(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_string).collect()
    }
}

/// One reason an edited configuration is invalid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The YAML path of the setting at fault, when validation located it.
    pub path: Option<String>,
    /// What is wrong, as `weir --test` words it.
    pub message: String,
}

/// What an edit names that does not exist.
#[derive(Debug, thiserror::Error)]
pub enum Missing {
    /// No upstream has this name.
    #[error("no upstream named `{0}`")]
    Upstream(String),
    /// The upstream has no target written or named so.
    #[error("upstream `{upstream}` has no target `{target}`")]
    Target {
        /// The upstream's name.
        upstream: String,
        /// The address or name the edit gave.
        target: String,
    },
}

/// How an edit contradicts the current state.
#[derive(Debug, thiserror::Error)]
pub enum Conflict {
    /// A target with this address or name exists already.
    #[error("upstream `{upstream}` has a target `{taken}` already")]
    Taken {
        /// The upstream's name.
        upstream: String,
        /// The address or name both would have.
        taken: String,
    },
    /// Removing it would leave the upstream without targets.
    #[error("`{target}` is the last target of upstream `{upstream}`; drain it instead")]
    LastTarget {
        /// The upstream's name.
        upstream: String,
        /// The address or name the edit gave.
        target: String,
    },
    /// The file changed on disk since it was loaded, and writing the edit back would undo
    /// that change.
    #[error(
        "{} was edited since weir loaded it; reload it first (POST /reload), so that writing \
         this change back does not undo those edits",
        .0.display()
    )]
    EditedSince(PathBuf),
}

/// Why an edit was not applied.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The upstream or target it names does not exist.
    #[error(transparent)]
    NotFound(#[from] Missing),
    /// It contradicts the current state.
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The configuration it leads to is invalid: every problem.
    #[error("{}", .0.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    /// The edited document could not be written as YAML.
    #[error("cannot write the edited configuration as YAML: {0}")]
    Serialize(#[from] serde_yaml::Error),
    /// The file could not be read or written back.
    #[error("{}: {source}", path.display())]
    File {
        /// The configuration file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<ChangeError> for EditError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Config(errors) => Self::Invalid(
                errors
                    .0
                    .into_iter()
                    .map(|e| Problem {
                        path: Some(e.path).filter(|p| !p.is_empty()),
                        message: e.message,
                    })
                    .collect(),
            ),
            ChangeError::Load(e) => Self::Invalid(
                e.to_string()
                    .lines()
                    .map(|message| Problem {
                        path: None,
                        message: message.to_string(),
                    })
                    .collect(),
            ),
        }
    }
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
    certs: Vec<NewCerts>,
    summary: String,
}

/// A TLS listener's certificates, with the settings and the set that replace them.
type NewCerts = (Arc<ListenerCerts>, config::ListenerTls, CertSet);

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
            persist::warn_if_unwritable(&live.path);
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

    /// Reads, checks and applies the file, dropping runtime-only edits; logs and counts the
    /// outcome. `Err` holds every problem.
    pub fn reload(&self, cause: &str) -> Result<Reloaded, ChangeError> {
        let file = self.path.display();
        log::info!("{cause}: reloading {file}");
        let mut document = self.lock();
        let outcome = config::read(&self.path)
            .and_then(|text| Ok((config::parse(&self.path, &text)?, text)))
            .map_err(ChangeError::from)
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
                for line in errors.messages() {
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
        let text = serde_yaml::to_string(&yaml)?;
        let config = config::parse(&self.path, &text).map_err(ChangeError::from)?;
        let prepared = self.prepare(&config, Origin::Edit)?;
        let file_error = |source| EditError::File {
            path: self.path.clone(),
            source,
        };
        let saved = if self.persist {
            let on_disk = std::fs::read_to_string(&self.path).map_err(file_error)?;
            if on_disk != document.file_text {
                return Err(Conflict::EditedSince(self.path.clone()).into());
            }
            let text = format!("{PERSISTED_BANNER}{text}");
            persist::replace(&self.path, &text).map_err(file_error)?;
            Some(text)
        } else {
            None
        };
        // Should this fail after the file was written, the file no longer matches what was
        // loaded: the next persisted edit asks for a reload, which applies it.
        self.commit(prepared, &config, Origin::Edit)?;
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

    /// Checks certificates, resolves targets and compiles `config` against the running
    /// runtime, changing nothing yet. What only a new process can change keeps its running
    /// value, with a warning.
    fn prepare(&self, config: &Config, origin: Origin) -> Result<Prepared, ChangeError> {
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
            Origin::File => load::resolve(&config)?,
            Origin::Edit => {
                let mut unknown = config.clone();
                for u in &mut unknown.upstreams {
                    u.targets
                        .retain(|t| !base.resolved.contains_key(&t.address));
                }
                let mut resolved = (*base.resolved).clone();
                resolved.extend(load::resolve(&unknown)?);
                resolved
            }
        };
        let summary = format!(
            "{} listener(s), {} route(s), {} upstream(s)",
            config.listeners.len(),
            config.routes.len(),
            config.upstreams.len()
        );
        let runtime =
            Runtime::compile(Arc::new(config), Some(&base), resolved).map_err(LoadError::from)?;
        Ok(Prepared {
            base,
            runtime,
            certs,
            summary,
        })
    }

    /// The certificate sets of `config`'s TLS listeners, loaded but not installed.
    fn certificates(&self, config: &Config) -> Result<Vec<NewCerts>, LoadError> {
        let certs = load::for_tls_listeners(config, |l, spec| {
            let Some(loaded) = self.certs.iter().find(|c| c.listener == l.name) else {
                return Ok(None);
            };
            let set = loaded.prepare(spec)?;
            Ok(Some((loaded.clone(), spec.clone(), set)))
        })?;
        Ok(certs)
    }

    /// Swaps a prepared configuration in. If DNS discovery swapped in a runtime since it was
    /// compiled, `config` is compiled again against that one, so neither change is lost.
    fn commit(
        &self,
        mut prepared: Prepared,
        config: &Config,
        origin: Origin,
    ) -> Result<String, ChangeError> {
        loop {
            if install(&self.runtime, &prepared.base, prepared.runtime).is_ok() {
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
