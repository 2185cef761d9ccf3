//! The stop signals, and what they mean to weir.

use super::POLL;
use async_trait::async_trait;
use log::{info, warn};
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, SignalKind};

/// The stop signals: SIGTERM stops gracefully (nginx's QUIT), SIGINT at once, and SIGQUIT
/// hands the listeners to a new process waiting on `upgrade_sock` (Pingora's); a SIGQUIT
/// with no such process is ignored rather than ending the only weir there is.
pub struct Signals {
    /// Time SIGTERM keeps the listeners accepting before they close.
    pub grace_period: Duration,
    /// Where a new process waits for the listeners.
    pub upgrade_sock: PathBuf,
    /// Signals that came before the server listened for them.
    pub early: EarlySignals,
}

/// Stop signals taken over as soon as the process starts, so that one sent before the server
/// runs (the pid file is already written) is acted on rather than killing the process
/// without a drain.
#[derive(Clone)]
pub struct EarlySignals {
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
}

impl EarlySignals {
    /// Takes SIGTERM, SIGINT and SIGQUIT over; call it first thing.
    pub fn register() -> Self {
        use signal_hook::consts::{SIGINT, SIGQUIT, SIGTERM};
        let flag = |signal| {
            let flag = Arc::new(AtomicBool::new(false));
            // Only SIGKILL, SIGSTOP and the like can fail, and these are not.
            signal_hook::flag::register(signal, flag.clone()).expect("a catchable signal");
            flag
        };
        Self {
            term: flag(SIGTERM),
            int: flag(SIGINT),
            quit: flag(SIGQUIT),
        }
    }
}

/// How long a SIGQUIT waits for a new process to be waiting on the upgrade socket.
const UPGRADE_WAIT: Duration = Duration::from_secs(5);

impl Signals {
    /// Whether a new process waits on the upgrade socket, within [`UPGRADE_WAIT`]: `weir
    /// upgrade` signals once it does, while `weir -u & kill -QUIT` may signal first.
    async fn successor_waits(&self) -> bool {
        let started = Instant::now();
        while started.elapsed() < UPGRADE_WAIT {
            let is_socket = std::fs::metadata(&self.upgrade_sock)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()));
            if is_socket {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        false
    }

    async fn terminate(&self, int: &mut tokio::signal::unix::Signal) -> ShutdownSignal {
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

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let mut quit = signal(SignalKind::quit()).expect("SIGQUIT handler");
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        let early = &self.early;
        if early.int.load(Ordering::Relaxed) {
            return ShutdownSignal::FastShutdown;
        }
        if early.term.load(Ordering::Relaxed) {
            return self.terminate(&mut int).await;
        }
        let mut upgrade = early.quit.load(Ordering::Relaxed);
        loop {
            if upgrade {
                if self.successor_waits().await {
                    return ShutdownSignal::GracefulUpgrade;
                }
                warn!(
                    "SIGQUIT: no new process waits on {}, so weir keeps serving; start one \
                     with `weir upgrade` (SIGTERM stops gracefully)",
                    self.upgrade_sock.display()
                );
            }
            tokio::select! {
                _ = quit.recv() => upgrade = true,
                _ = int.recv() => return ShutdownSignal::FastShutdown,
                _ = term.recv() => return self.terminate(&mut int).await,
            }
        }
    }
}
