//! Builds the Pingora server from a configuration: process settings, the HTTP proxy service
//! on every listener, and the shared runtime it serves from.

use crate::config::{Config, Protocol};
use crate::proxy::Proxy;
use crate::reload::Reloader;
use crate::runtime::{CompileError, Runtime, SharedRuntime};
use crate::tls::{ListenerCerts, TlsErrors, Watcher};
use crate::upstream::{resolve_static, Dns, ResolveError, Resolved, Supervisor};
use arc_swap::ArcSwap;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use pingora::services::background::background_service;
use std::sync::Arc;

/// Why a server could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A static target did not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The runtime did not compile.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The DNS client for discovery could not be set up.
    #[error("DNS resolver: {0}")]
    Dns(#[from] hickory_resolver::ResolveError),
    /// No runtime to resolve discovered names at startup, or no SIGHUP handler.
    #[error("starting: {0}")]
    Io(#[from] std::io::Error),
    /// Listener certificates or TLS settings that could not be used.
    #[error(transparent)]
    Tls(#[from] TlsErrors),
}

impl BuildError {
    /// Whether the message starts with the `FILE:LINE:COLUMN` of the setting at fault.
    pub fn is_located(&self) -> bool {
        matches!(self, Self::Tls(_) | Self::Compile(CompileError::Tls(_)))
    }
}

/// Every target address of `config`: static names through the system resolver, discovered
/// ones through DNS (a name that does not resolve yet starts with no instances).
pub fn resolve(config: &Config) -> Result<Resolved, BuildError> {
    let mut resolved = resolve_static(config)?;
    if config.upstreams.iter().any(|u| u.resolve_every.is_some()) {
        let io = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let found = io.block_on(async {
            let dns = Dns::new(&config.resolver)?;
            Ok::<_, BuildError>(dns.resolve_all(config, &Resolved::new()).await)
        })?;
        resolved.extend(found);
    }
    Ok(resolved)
}

/// Everything `build` loads from outside the file: target addresses, upstream CAs and
/// listener certificates. `weir --test` runs it, so a file that passes also starts.
pub fn check(config: Config) -> Result<(), BuildError> {
    let resolved = resolve(&config)?;
    certificates(&config)?;
    Runtime::compile(Arc::new(config), None, resolved)?;
    Ok(())
}

/// The certificates of every `https` listener, by listener name; every failure reported.
fn certificates(config: &Config) -> Result<Vec<(String, Arc<ListenerCerts>)>, TlsErrors> {
    let mut loaded = Vec::new();
    let mut errors = Vec::new();
    for l in &config.listeners {
        let Protocol::Https(tls) = &l.protocol else {
            continue;
        };
        match ListenerCerts::load(&l.name, tls) {
            Ok(certs) => loaded.push((l.name.clone(), Arc::new(certs))),
            Err(e) => errors.extend(e.0),
        }
    }
    if errors.is_empty() {
        Ok(loaded)
    } else {
        Err(TlsErrors(errors))
    }
}

/// Compiles the runtime and assembles a server ready to `run_forever`: the HTTP proxy on
/// every listener (one service, so one pool of worker threads), the supervisor of health
/// checks and discovery, and the certificate watcher.
pub fn build(config: Config) -> Result<(Server, SharedRuntime), BuildError> {
    let resolved = resolve(&config)?;
    let certs = certificates(&config)?;
    let config = Arc::new(config);
    let runtime: SharedRuntime = Arc::new(ArcSwap::from_pointee(Runtime::compile(
        config.clone(),
        None,
        resolved,
    )?));
    let defaults = ServerConf::default();
    let conf = ServerConf {
        threads: config.server.threads,
        pid_file: config.server.pid_file.display().to_string(),
        upgrade_sock: config
            .server
            .upgrade_sock
            .clone()
            .unwrap_or(defaults.upgrade_sock.clone()),
        graceful_shutdown_timeout_seconds: Some(config.server.graceful_shutdown_timeout.as_secs()),
        ..defaults
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service_with_name(
        &server.configuration,
        Proxy::new(runtime.clone()),
        "weir http",
    );
    for listener in &config.listeners {
        let address = listener.address.to_string();
        match certs.iter().find(|(name, _)| *name == listener.name) {
            Some((_, certs)) => {
                let settings = certs.settings().map_err(TlsErrors::from)?;
                proxy.add_tls_with_settings(&address, None, settings);
            }
            None => proxy.add_tcp(&address),
        }
    }
    server.add_service(proxy);
    let certs: Vec<_> = certs.into_iter().map(|(_, c)| c).collect();
    let reloader = Reloader::new(config.path.clone(), runtime.clone(), certs.clone())?;
    server.add_service(background_service("weir reload", reloader));
    server.add_service(background_service("weir certificates", Watcher::new(certs)));
    let supervisor = Supervisor::new(runtime.clone(), Dns::new(&config.resolver)?);
    server.add_service(background_service("weir supervisor", supervisor));
    Ok((server, runtime))
}
