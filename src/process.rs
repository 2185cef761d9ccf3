//! The process around the proxy: its pid file, its stop signals, and the drain that lets
//! in-flight requests finish after SIGTERM or after a binary upgrade took the listeners over.

use crate::config;
use async_trait::async_trait;
use log::{info, warn};
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::{
    ExecutionPhase, RunArgs, Server, ShutdownSignal, ShutdownSignalWatch, ShutdownWatch,
};
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{broadcast, Mutex};

/// Requests this process is serving. One process serves one proxy, so the count is
/// process-wide; a draining process exits as soon as it reaches zero.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How often a draining process looks at the count.
const DRAIN_POLL: Duration = Duration::from_millis(20);

/// How long idle keep-alive connections stay open once the listeners close. A client that
/// sends on one meanwhile is answered, with `Connection: close`; closing them at once would
/// race clients that are sending their next request at that moment.
pub const IDLE_LINGER: Duration = Duration::from_secs(1);

/// Counts one request as in flight until dropped.
pub struct InFlight(());

impl InFlight {
    /// Counts a request that has started.
    pub fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
        Self(())
    }

    /// Requests being served now.
    pub fn count() -> usize {
        IN_FLIGHT.load(Ordering::Relaxed)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The HTTP proxy, whose idle keep-alive connections close [`IDLE_LINGER`] after the
/// listeners do rather than at once.
pub struct Draining<A> {
    app: Arc<A>,
}

impl<A> Draining<A> {
    /// Wraps the proxy `app`.
    pub fn new(app: A) -> Self {
        Self { app: Arc::new(app) }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for Draining<A> {
    async fn process_new_http(
        self: &Arc<Self>,
        session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        self.app.process_new_http(session, shutdown).await
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.app.server_options()
    }

    async fn http_cleanup(&self) {
        // Meanwhile requests still come in on open connections; the shutdown watch makes
        // each answer close its connection.
        tokio::time::sleep(IDLE_LINGER).await;
        self.app.http_cleanup().await;
    }
}

/// Stop signals as operators know them from nginx and HAProxy: SIGQUIT hands the listeners to
/// a new process (`--upgrade`), SIGTERM stops gracefully, SIGINT stops at once.
pub struct Signals {
    /// Time SIGTERM keeps the listeners accepting before they close.
    pub grace_period: Duration,
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let mut quit = signal(SignalKind::quit()).expect("SIGQUIT handler");
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        tokio::select! {
            _ = quit.recv() => ShutdownSignal::GracefulUpgrade,
            _ = int.recv() => ShutdownSignal::FastShutdown,
            _ = term.recv() => {
                if self.grace_period.is_zero() {
                    return ShutdownSignal::GracefulTerminate;
                }
                info!(
                    "SIGTERM: accepting for {} more (grace_period), then draining",
                    humantime::format_duration(self.grace_period)
                );
                tokio::select! {
                    _ = tokio::time::sleep(self.grace_period) => ShutdownSignal::GracefulTerminate,
                    _ = int.recv() => ShutdownSignal::FastShutdown,
                }
            }
        }
    }
}

/// Follows the server through its phases: writes the pid file once the listeners are this
/// process's (so `weir upgrade` sees the new process take over), and once they are closed,
/// exits as soon as no request is in flight (after [`IDLE_LINGER`]) or
/// `graceful_shutdown_timeout` has passed.
/// Pingora itself would wait out its whole grace period, however idle.
pub struct Lifecycle {
    phases: Mutex<broadcast::Receiver<ExecutionPhase>>,
    pid_file: PathBuf,
    graceful_shutdown_timeout: Duration,
}

impl Lifecycle {
    /// A lifecycle fed by `phases` (from `Server::watch_execution_phase`, taken before the
    /// server runs so that no phase is missed).
    pub fn new(
        phases: broadcast::Receiver<ExecutionPhase>,
        pid_file: PathBuf,
        graceful_shutdown_timeout: Duration,
    ) -> Self {
        Self {
            phases: Mutex::new(phases),
            pid_file,
            graceful_shutdown_timeout,
        }
    }

    async fn drain(&self) -> ! {
        let started = Instant::now();
        info!(
            "listeners closed; draining {} in-flight requests",
            InFlight::count()
        );
        loop {
            let left = InFlight::count();
            if left == 0 && started.elapsed() >= IDLE_LINGER {
                info!(
                    "drained in {:.1}s; exiting",
                    started.elapsed().as_secs_f64()
                );
                break;
            }
            if started.elapsed() >= self.graceful_shutdown_timeout {
                warn!(
                    "{left} requests still in flight after graceful_shutdown_timeout ({}); exiting",
                    humantime::format_duration(self.graceful_shutdown_timeout)
                );
                break;
            }
            tokio::time::sleep(DRAIN_POLL).await;
        }
        remove_pid_file(&self.pid_file);
        std::process::exit(0)
    }
}

#[async_trait]
impl BackgroundService for Lifecycle {
    /// Ready once the pid file is written: the proxy waits for it, so whoever sees weir
    /// listen finds its pid.
    async fn start_with_ready_notifier(
        &self,
        _shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        let mut ready = Some(ready);
        let mut phases = self.phases.lock().await;
        loop {
            match phases.recv().await {
                Ok(ExecutionPhase::BootstrapComplete) => {
                    write_pid_file(&self.pid_file);
                    if let Some(ready) = ready.take() {
                        ready.notify_ready();
                    }
                }
                Ok(ExecutionPhase::GracefulUpgradeTransferringFds) => {
                    info!("SIGQUIT: handing the listeners over to the new process");
                }
                Ok(ExecutionPhase::ShutdownGracePeriod) => self.drain().await,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Serves until a stop signal, then removes the pid file (a graceful stop exits from
/// [`Lifecycle`] once drained).
pub fn run(server: Server, settings: &config::Server) {
    server.run(RunArgs {
        shutdown_signal: Box::new(Signals {
            grace_period: settings.grace_period,
        }),
    });
    remove_pid_file(&settings.pid_file);
}

/// Writes this process's pid, which `weir reload` and `weir upgrade` signal.
fn write_pid_file(path: &Path) {
    if let Err(e) = std::fs::write(path, format!("{}\n", std::process::id())) {
        warn!("cannot write the pid file {}: {e}", path.display());
    }
}

/// Removes the pid file if it still holds this process's pid: after an upgrade it holds the
/// new process's.
pub fn remove_pid_file(path: &Path) {
    let ours = std::fs::read_to_string(path)
        .is_ok_and(|text| text.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(path);
    }
}
