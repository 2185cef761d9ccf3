//! Changes to the running configuration, one at a time: a reload of the file (SIGHUP, which
//! `weir reload` sends, or the admin API's `POST /reload`) and the admin API's edits of
//! targets.
//!
//! Both end the same way: a configuration validated as a whole, its certificates loaded and a
//! runtime compiled that keeps the live state (health, ejections, in-flight counts,
//! connection pools) of every target whose upstream and address did not change. Only when
//! all of that succeeds are the certificates and the runtime swapped in; a failed change
//! changes nothing and says why, with every error.
//!
//! An edit is made to the YAML document the runtime was compiled from (`${VAR}` references
//! unexpanded), so what the API changed can be shown (`GET /config`) and, with
//! `admin.persist`, written back to the file. Without it the edit lasts until the next reload.

use super::error::{ChangeError, Conflict, EditError};
use super::load::{self, LoadError};
use super::{install, persist, restart_only};
use crate::config::{self, Config};
use crate::metrics;
use crate::runtime::{Runtime, SharedRuntime};
use crate::tls::{CertSet, ListenerCerts};
use crate::upstream::Resolved;
use serde_yaml::Value;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, TryLockError};

/// First line of a file the admin API wrote back.
const PERSISTED_BANNER: &str = "# Written by weir's admin API (admin.persist: true). \
Comments of the previous version are not kept.\n";

/// What an applied edit did to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Saved {
    /// Written back to the file: it survives reloads and restarts.
    Persisted,
    /// In the running configuration only: the next reload of the file drops it.
    RuntimeOnly,
    /// Nothing to do: the configuration already was so (a drained target drained again).
    Unchanged,
}

/// A reload that was applied.
#[derive(Debug)]
pub(crate) struct Reloaded {
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
pub(crate) struct LiveConfig {
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
    pub(crate) fn new(
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
    pub(crate) fn runtime(&self) -> &SharedRuntime {
        &self.runtime
    }

    /// The file it was loaded from.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Whether edits are written back to the file.
    pub(crate) fn persists(&self) -> bool {
        self.persist
    }

    /// The YAML document the running configuration was compiled from, and how many of its
    /// edits the file lacks. (Settings that need `weir upgrade` keep their running value
    /// even when the document changed them.)
    pub(crate) fn document(&self) -> (Value, usize) {
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
    pub(crate) fn reload(&self, cause: &str) -> Result<Reloaded, ChangeError> {
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
    pub(crate) fn edit(
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
        let file_error = |source| EditError::File {
            path: self.path.clone(),
            source,
        };
        if self.persist {
            let on_disk = std::fs::read_to_string(&self.path).map_err(file_error)?;
            if on_disk != document.file_text {
                return Err(Conflict::EditedSince(self.path.clone()).into());
            }
        }
        let prepared = self.prepare(&config, Origin::Edit)?;
        let saved = if self.persist {
            let text = format!("{PERSISTED_BANNER}{text}");
            if let Err(e) = persist::replace(&self.path, &text) {
                prepared.runtime.retire_series(&prepared.base);
                return Err(file_error(e));
            }
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
        restart_only::keep_running(&file, &mut config, &base.config);
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

    /// Swaps in a runtime with the addresses DNS discovery `found` for the names of `base`,
    /// the runtime they were resolved for. Skipped when a reload or an edit is under way or
    /// swapped another runtime in since: the next round resolves again from that one. (Under
    /// the document's lock, so that changes never interleave, not even the removal of the
    /// metric series one of them took away.)
    pub(crate) fn rediscovered(&self, base: &Arc<Runtime>, found: Resolved) {
        let _document = match self.document.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => {
                log::info!(
                    "discovery: a reload or an edit is under way; resolving again next round"
                );
                return;
            }
        };
        if !Arc::ptr_eq(&self.runtime.load(), base) {
            log::info!("discovery: the runtime changed meanwhile; resolving again next round");
            return;
        }
        let mut resolved: Resolved = (*base.resolved).clone();
        resolved.extend(found);
        match Runtime::compile(base.config.clone(), Some(base), resolved) {
            Ok(next) => {
                if install(&self.runtime, base, next).is_err() {
                    log::info!(
                        "discovery: the runtime changed meanwhile; resolving again next round"
                    );
                }
            }
            Err(e) => log::error!("discovery: cannot apply the new addresses: {e}"),
        }
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
