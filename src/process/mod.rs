//! The process around the proxy: its pid file, its signals, and the drain that lets
//! in-flight requests finish after SIGTERM or after a binary upgrade took the listeners over.

mod listening;
mod signals;

use crate::connections::InFlight;
pub(crate) use listening::Listening;
pub(crate) use signals::{Housekeeping, Shutdown, Signals};

use crate::{config, procfs};
use async_trait::async_trait;
use log::{error, info, warn};
use pingora::server::{ExecutionPhase, RunArgs, Server, ShutdownWatch};
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, Mutex};

/// How often a draining process looks at the count, and a SIGQUIT for a new process.
const POLL: Duration = Duration::from_millis(20);

/// How long idle keep-alive connections stay open once the listeners close. A client that
/// sends on one meanwhile is answered, with `Connection: close`; closing them at once would
/// race clients that are sending their next request at that moment.
pub(crate) const IDLE_LINGER: Duration = Duration::from_secs(1);

/// Follows the server through its phases: writes the pid file once the listeners are this
/// process's (so `weir upgrade` sees the new process take over), and once they are closed,
/// exits as soon as no request has been in flight for [`IDLE_LINGER`], or once
/// `graceful_shutdown_timeout` has passed, or at once on SIGINT. Pingora itself would wait
/// out its whole grace period, however idle.
pub(crate) struct Lifecycle {
    phases: Mutex<broadcast::Receiver<ExecutionPhase>>,
    pid_file: PathBuf,
    graceful_shutdown_timeout: Duration,
}

impl Lifecycle {
    /// A lifecycle fed by `phases` (from `Server::watch_execution_phase`, taken before the
    /// server runs so that no phase is missed).
    pub(crate) fn new(
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

    async fn drain(&self, handed_over: bool) -> ! {
        let started = Instant::now();
        info!(
            "listeners closed; draining {} in-flight requests",
            InFlight::count()
        );
        // Quiet for IDLE_LINGER since the last request: connections still open (idle
        // keep-alive, HTTP/2 after GOAWAY, a handshake under way) have had their turn.
        let mut last_busy = started;
        loop {
            let left = InFlight::count();
            if left > 0 {
                last_busy = Instant::now();
            } else if last_busy.elapsed() >= IDLE_LINGER {
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
            if Signals::get().interrupted() {
                warn!("SIGINT: exiting with {left} requests in flight");
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        self.exit(handed_over)
    }

    /// Exits 0, or 1 when the listeners went to a new process that is gone by now: then
    /// nothing serves, and a supervisor (systemd's `Restart=on-failure`) should start weir.
    fn exit(&self, handed_over: bool) -> ! {
        remove_pid_file(&self.pid_file);
        let successor = procfs::read_pid(&self.pid_file).filter(|pid| procfs::alive(*pid));
        if handed_over && successor.is_none() {
            error!(
                "the listeners went to a new process, which is gone ({} names no running \
                 weir); exiting with failure",
                self.pid_file.display()
            );
            std::process::exit(1);
        }
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
        // Once stopping, Pingora no longer reads signals; SIGINT must still end the process.
        let (mut stopping, mut handed_over) = (false, false);
        loop {
            let phase = tokio::select! {
                phase = phases.recv() => phase,
                _ = tokio::time::sleep(POLL), if stopping => {
                    if Signals::get().interrupted() {
                        warn!("SIGINT: exiting at once");
                        self.exit(handed_over);
                    }
                    continue;
                }
            };
            match phase {
                Ok(ExecutionPhase::BootstrapComplete) => {
                    write_pid_file(&self.pid_file);
                    if let Some(ready) = ready.take() {
                        ready.notify_ready();
                    }
                }
                Ok(ExecutionPhase::GracefulUpgradeTransferringFds) => {
                    info!("SIGQUIT: handing the listeners over to the new process");
                    (stopping, handed_over) = (true, true);
                }
                Ok(ExecutionPhase::GracefulTerminate | ExecutionPhase::ShutdownStarted) => {
                    stopping = true;
                }
                Ok(ExecutionPhase::ShutdownGracePeriod) => self.drain(handed_over).await,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// Serves until a stop signal, then removes the pid file (a graceful stop exits from
/// [`Lifecycle`] once drained).
pub(crate) fn run(server: Server, settings: &config::Server) {
    server.run(RunArgs {
        shutdown_signal: Box::new(Shutdown {
            grace_period: settings.grace_period,
            upgrade_sock: settings.upgrade_sock.clone(),
        }),
    });
    remove_pid_file(&settings.pid_file);
}

/// Where a daemon started with `--upgrade` lets Pingora write its pid at the fork: aside,
/// as it holds no listener yet. The lifecycle writes the real file once it does.
pub(crate) fn scratch_pid_file(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Writes this process's pid, which `weir reload`, `weir upgrade` and systemd read: whole,
/// through a rename, so that no reader ever sees an empty file. A daemon's is written at
/// the fork already.
fn write_pid_file(path: &Path) {
    remove_pid_file(&scratch_pid_file(path));
    if holds_our_pid(path) {
        return;
    }
    let aside = path.with_extension("pid-writing");
    let written = std::fs::write(&aside, format!("{}\n", std::process::id()))
        .and_then(|()| std::fs::rename(&aside, path));
    if let Err(e) = written {
        warn!("cannot write the pid file {}: {e}", path.display());
    }
}

fn holds_our_pid(path: &Path) -> bool {
    procfs::read_pid(path) == Some(std::process::id() as i32)
}

/// Removes the pid file if it still holds this process's pid: after an upgrade it holds the
/// new process's.
pub(crate) fn remove_pid_file(path: &Path) {
    if holds_our_pid(path) {
        let _ = std::fs::remove_file(path);
    }
}
