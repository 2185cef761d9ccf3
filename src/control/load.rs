//! What a configuration needs from outside its file before it can serve: the addresses of
//! its targets and the certificates of its listeners. Start-up, `weir --test`, `weir reload`
//! and a reload of the running process all load them here, so a file that passes `--test`
//! also starts and reloads.

use crate::config::{Config, Listener, ListenerTls};
use crate::runtime::{CompileError, Runtime};
use crate::tls::{ListenerCerts, TlsErrors};
use crate::upstream::{resolve_static, Dns, ResolveError, Resolved};
use std::sync::Arc;

/// Why a configuration cannot serve, although its file is valid.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// A static target did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The DNS client for discovery could not be set up.
    #[error("DNS resolver: {0}")]
    Dns(#[from] hickory_resolver::ResolveError),
    /// No runtime to resolve discovered names in.
    #[error("resolving discovered names: {0}")]
    Io(#[from] std::io::Error),
    /// Listener certificates or TLS settings that could not be used.
    #[error(transparent)]
    Tls(#[from] TlsErrors),
    /// The runtime did not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
}

impl LoadError {
    /// Whether the message starts with the `FILE:LINE:COLUMN` of the setting at fault.
    pub(crate) fn is_located(&self) -> bool {
        matches!(
            self,
            Self::Tls(_) | Self::Compile(CompileError::Tls(_) | CompileError::Policy(_))
        )
    }
}

/// Every target address of `config`: static names through the system resolver (blocking),
/// discovered ones through DNS (a name that does not resolve yet starts with no instances).
pub(crate) fn resolve(config: &Config) -> Result<Resolved, LoadError> {
    let mut resolved = resolve_static(config)?;
    if config.upstreams.iter().any(|u| u.resolve_every.is_some()) {
        let io = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let found = io.block_on(async {
            let dns = Dns::new(&config.resolver)?;
            Ok::<_, LoadError>(dns.resolve_all(config, &Resolved::new()).await)
        })?;
        resolved.extend(found);
    }
    Ok(resolved)
}

/// What `weir --test` and `weir reload` check beyond the file: target addresses, upstream
/// CAs and listener certificates, all that start-up loads.
pub(crate) fn check(config: Config) -> Result<(), LoadError> {
    let resolved = resolve(&config)?;
    certificates(&config)?;
    Runtime::compile(Arc::new(config), None, resolved)?;
    Ok(())
}

/// The certificates of every listener that terminates TLS, loaded, by listener name.
pub(crate) fn certificates(
    config: &Config,
) -> Result<Vec<(String, Arc<ListenerCerts>)>, TlsErrors> {
    for_tls_listeners(config, |l, tls| {
        let certs = ListenerCerts::load(&l.name, tls)?;
        Ok(Some((l.name.clone(), Arc::new(certs))))
    })
}

/// `load` for each listener of `config` that terminates TLS, keeping what it returns;
/// every failure is reported, not only the first.
pub(super) fn for_tls_listeners<T>(
    config: &Config,
    mut load: impl FnMut(&Listener, &ListenerTls) -> Result<Option<T>, TlsErrors>,
) -> Result<Vec<T>, TlsErrors> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for l in &config.listeners {
        let Some(tls) = l.protocol.tls() else {
            continue;
        };
        match load(l, tls) {
            Ok(found) => loaded.extend(found),
            Err(e) => errors.extend(e.0),
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(TlsErrors(errors))
    }
}
