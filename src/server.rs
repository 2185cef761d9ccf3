//! Builds the Pingora server from a configuration: process settings, the HTTP proxy service
//! on every listener, and the shared runtime it serves from.

use crate::config::{Config, Protocol};
use crate::proxy::Proxy;
use crate::runtime::{CompileError, Runtime, SharedRuntime};
use arc_swap::ArcSwap;
use pingora::server::configuration::ServerConf;
use pingora::server::Server;
use std::sync::Arc;

/// Compiles the runtime and assembles a server ready to `run_forever`.
pub fn build(config: &Config) -> Result<(Server, SharedRuntime), CompileError> {
    let runtime: SharedRuntime = Arc::new(ArcSwap::from_pointee(Runtime::compile(config, None)?));
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
    Ok((server, runtime))
}
