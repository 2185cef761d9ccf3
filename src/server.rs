//! Builds the Pingora server from a configuration: process settings, the HTTP proxy service
//! on every listener, and the shared runtime it serves from.

use crate::access_log::AccessLog;
use crate::admin::AdminApi;
use crate::config::{Config, Listener};
use crate::connections::Connections;
use crate::control::{self, LiveConfig, LoadError, Supervisor};
use crate::l4::TcpProxy;
use crate::process::{scratch_pid_file, Housekeeping, Lifecycle, Listening, IDLE_LINGER};
use crate::proxy::{HttpConnections, Proxy};
use crate::runtime::{Runtime, SharedRuntime};
use crate::tls::{ListenerCerts, TlsErrors, Watcher};
use crate::upstream::Dns;
use arc_swap::ArcSwap;
use pingora::apps::http_app::HttpServer;
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::services::background::background_service;
use pingora::services::listening::Service;
use std::fs::OpenOptions;
use std::sync::Arc;
use std::time::Duration;

/// How long the process that started a daemon waits for it to be listening before it
/// exits with failure.
const DAEMON_READY_TIMEOUT_SECONDS: u64 = 60;

/// Why a server could not be assembled.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    /// Addresses or certificates did not load, or the runtime did not compile.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The DNS client for discovery could not be set up.
    #[error("DNS resolver: {0}")]
    Dns(#[from] hickory_resolver::ResolveError),
    /// Listener TLS settings that could not be used.
    #[error(transparent)]
    Tls(#[from] TlsErrors),
    /// The access log that cannot be opened.
    #[error("cannot open the access log {}: {source}", path.display())]
    AccessLog {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The log file of a daemon that cannot be written.
    #[error("cannot open server.error_log {}: {source}", path.display())]
    ErrorLog {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl BuildError {
    /// Whether the message starts with the `FILE:LINE:COLUMN` of the setting at fault.
    pub(crate) fn is_located(&self) -> bool {
        match self {
            Self::Load(e) => e.is_located(),
            Self::Tls(_) => true,
            _ => false,
        }
    }
}

/// Adds the HTTP listeners (`http`) or the TCP ones to `service`, with TLS where they
/// terminate it.
fn bind<A>(
    service: &mut Service<A>,
    listeners: &[Listener],
    certs: &[(String, Arc<ListenerCerts>)],
    http: bool,
) -> Result<(), TlsErrors> {
    for listener in listeners.iter().filter(|l| l.protocol.is_http() == http) {
        let address = listener.address.to_string();
        match certs.iter().find(|(name, _)| *name == listener.name) {
            Some((_, certs)) => {
                let settings = certs.settings()?;
                service.add_tls_with_settings(&address, None, settings);
            }
            None => service.add_tcp(&address),
        }
    }
    Ok(())
}

/// How the process was started, beyond the file.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Start {
    /// Take the listening sockets over from a running weir (`-u`) instead of binding them.
    pub upgrade: bool,
    /// Run in the background (`-d`), whatever `server.daemon` says.
    pub daemon: bool,
}

/// Compiles the runtime and assembles a server ready to run: the HTTP proxy on every
/// listener (one service, so one pool of worker threads), behind the bootstrap that binds or
/// inherits the sockets; the supervisor of health checks and discovery; the certificate
/// watcher; the reloader; and the lifecycle that drains and exits. `text` is the YAML that
/// `config` was parsed from, the base of admin API edits.
pub(crate) fn build(
    config: Config,
    text: &str,
    start: Start,
) -> Result<(Server, SharedRuntime), BuildError> {
    let resolved = control::resolve(&config)?;
    let certs = control::certificates(&config).map_err(LoadError::from)?;
    let config = Arc::new(config);
    let compiled = Runtime::compile(config.clone(), None, resolved).map_err(LoadError::from)?;
    let runtime: SharedRuntime = Arc::new(ArcSwap::from_pointee(compiled));
    let process = &config.server;
    let daemon = process.daemon || start.daemon;
    if let Some(path) = process.error_log.as_ref().filter(|_| daemon) {
        let opened = OpenOptions::new().create(true).append(true).open(path);
        opened.map_err(|source| BuildError::ErrorLog {
            path: path.clone(),
            source,
        })?;
    }
    let conf = ServerConf {
        threads: process.threads,
        daemon,
        // A daemon's parent returns once the child has started and bootstraps, or with an
        // error if it does not get that far.
        daemon_wait_for_ready: true,
        // Not Pingora's ten minutes: a daemon that has not bound its listeners by then is
        // failing, and systemd's start timeout (90 s by default) should hear it first.
        daemon_ready_timeout_seconds: std::num::NonZeroU64::new(DAEMON_READY_TIMEOUT_SECONDS),
        // A daemon writes its pid at the fork, before it holds any listener. In an upgrade
        // that would name a process that may yet fail while the old one still serves, so it
        // goes aside; the lifecycle writes the real file once the listeners are taken over.
        pid_file: if start.upgrade {
            scratch_pid_file(&process.pid_file).display().to_string()
        } else {
            process.pid_file.display().to_string()
        },
        upgrade_sock: process.upgrade_sock.display().to_string(),
        error_log: process.error_log.as_ref().map(|p| p.display().to_string()),
        user: process.user.clone(),
        group: process.group.clone(),
        // The lifecycle service exits once drained or at graceful_shutdown_timeout; Pingora's
        // own grace period is only the backstop.
        grace_period_seconds: Some(process.graceful_shutdown_timeout.as_secs() + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade: start.upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    let lifecycle = Lifecycle::new(
        server.watch_execution_phase(),
        process.pid_file.clone(),
        process.graceful_shutdown_timeout,
    );
    let bootstrap = server.bootstrap_as_a_service();
    let access_log = config.access_log.as_ref().map(AccessLog::open).transpose();
    let access_log = access_log.map_err(|source| BuildError::AccessLog {
        path: config
            .access_log
            .as_ref()
            .and_then(|a| a.path.clone())
            .unwrap_or_default(),
        source,
    })?;
    let (access_log, log_writer) = access_log.unzip();
    if let Some(writer) = log_writer {
        server.add_service(background_service("weir access log", writer));
    }
    let lifecycle = server.add_service(background_service("weir lifecycle", lifecycle));
    let listeners = &config.listeners;
    if listeners.iter().any(|l| l.protocol.is_http()) {
        let proxy = Proxy::new(runtime.clone(), access_log.clone());
        let proxy = pingora::proxy::http_proxy(&server.configuration, proxy);
        let proxy = HttpConnections::new(proxy, runtime.clone());
        let mut proxy = Service::new(
            "weir http".to_string(),
            Connections::new(proxy, listeners, IDLE_LINGER),
        );
        bind(&mut proxy, listeners, &certs, true)?;
        server
            .add_service(Listening::new(proxy, process.pid_file.clone()))
            .add_dependencies([&bootstrap, &lifecycle]);
    }
    if listeners.iter().any(|l| !l.protocol.is_http()) {
        let tcp = TcpProxy::new(runtime.clone(), listeners, access_log.clone());
        let tcp = Connections::new(tcp, listeners, Duration::ZERO);
        let mut tcp = Service::new("weir tcp".to_string(), tcp);
        bind(&mut tcp, listeners, &certs, false)?;
        server
            .add_service(Listening::new(tcp, process.pid_file.clone()))
            .add_dependencies([&bootstrap, &lifecycle]);
    }
    let certs: Vec<_> = certs.into_iter().map(|(_, c)| c).collect();
    let live = Arc::new(LiveConfig::new(
        config.path.clone(),
        text,
        runtime.clone(),
        certs.clone(),
    ));
    if let Some(admin) = &config.admin {
        let api = HttpServer::new_app(AdminApi::new(admin, live.clone()));
        let mut service = Service::new("weir admin".to_string(), api);
        service.add_tcp(&admin.address.to_string());
        server
            .add_service(Listening::new(service, process.pid_file.clone()))
            .add_dependencies([&bootstrap, &lifecycle]);
    }
    let housekeeping = Housekeeping::new(live.clone(), access_log);
    let housekeeping = server.add_service(background_service("weir signals", housekeeping));
    bootstrap.add_dependency(&housekeeping);
    server.add_service(background_service("weir certificates", Watcher::new(certs)));
    let supervisor = Supervisor::new(live, Dns::new(&config.resolver)?);
    server.add_service(background_service("weir supervisor", supervisor));
    Ok((server, runtime))
}
