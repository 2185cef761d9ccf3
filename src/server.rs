//! Builds the Pingora server from a configuration: process settings, the HTTP proxy service
//! on every listener, and the shared runtime it serves from.

use crate::config::{Config, Protocol};
use crate::proxy::Proxy;
use crate::runtime::{CompileError, Runtime, SharedRuntime};
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
    /// No runtime to resolve discovered names at startup.
    #[error("starting the DNS resolution: {0}")]
    Io(#[from] std::io::Error),
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

/// Compiles the runtime and assembles a server ready to `run_forever`: the HTTP proxy on
/// every listener and the supervisor of health checks and discovery.
pub fn build(config: Config) -> Result<(Server, SharedRuntime), BuildError> {
    let resolved = resolve(&config)?;
    let config = Arc::new(config);
    let runtime: SharedRuntime = Arc::new(ArcSwap::from_pointee(Runtime::compile(
        config.clone(),
        None,
        resolved,
    )?));
    let defaults = ServerConf::default();
    let conf = ServerConf {
        threads: config.server.threads,
        pid_file: config
            .server
            .pid_file
            .clone()
            .unwrap_or(defaults.pid_file.clone()),
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
        Proxy::http(runtime.clone()),
        "weir http",
    );
    for listener in &config.listeners {
        match listener.protocol {
            Protocol::Http => proxy.add_tcp(&listener.address.to_string()),
        }
    }
    server.add_service(proxy);
    let supervisor = Supervisor::new(runtime.clone(), Dns::new(&config.resolver)?);
    server.add_service(background_service("weir supervisor", supervisor));
    Ok((server, runtime))
}
