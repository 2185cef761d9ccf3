//! The stop signals, and what they mean to weir.
//!
//! They are taken over with flags when the process starts, and only ever read from these
//! flags: a signal sent before the server runs (its pid file may be written already) is acted
//! on rather than killing the process without a drain, and a SIGINT during a drain is not
//! lost with a signal stream that Pingora dropped.

use super::POLL;
use crate::procfs;
use async_trait::async_trait;
use log::{info, warn};
use pingora::server::{ShutdownSignal, ShutdownSignalWatch};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a SIGQUIT waits for a new process to be waiting on the upgrade socket.
const UPGRADE_WAIT: Duration = Duration::from_secs(5);

/// SIGTERM, SIGINT and SIGQUIT, each a flag set by its handler. Signals belong to the
/// process, so there is one set.
pub struct StopSignals {
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
}

static STOP_SIGNALS: OnceLock<StopSignals> = OnceLock::new();

impl StopSignals {
    /// The process's stop signals, taken over on the first call: make it first thing.
    pub fn get() -> &'static Self {
        STOP_SIGNALS.get_or_init(|| {
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
        })
    }

    /// Whether SIGINT came since the last look.
    pub fn interrupted(&self) -> bool {
        self.int.swap(false, Ordering::Relaxed)
    }

    fn terminated(&self) -> bool {
        self.term.swap(false, Ordering::Relaxed)
    }

    fn quit(&self) -> bool {
        self.quit.swap(false, Ordering::Relaxed)
    }
}

/// What the stop signals ask of Pingora: SIGTERM a graceful stop (nginx's QUIT), SIGINT one
/// at once, and SIGQUIT the hand-over of the listeners to a new process waiting on
/// `upgrade_sock` (Pingora's). A SIGQUIT with no such process is ignored rather than ending
/// the only weir there is.
pub struct Signals {
    /// Time SIGTERM keeps the listeners accepting before they close.
    pub grace_period: Duration,
    /// Where a new process waits for the listeners.
    pub upgrade_sock: PathBuf,
}

impl Signals {
    /// Whether a new process listens on the upgrade socket, within [`UPGRADE_WAIT`]: `weir
    /// upgrade` signals once it does, while `weir -u & kill -QUIT` may signal first. A file
    /// left by a process that died, or this process's own (while it bootstraps in an upgrade
    /// itself), does not count.
    async fn successor_waits(&self) -> bool {
        let started = Instant::now();
        while started.elapsed() < UPGRADE_WAIT {
            if procfs::unix_listener_elsewhere(&self.upgrade_sock) {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        false
    }

    /// SIGTERM: the listeners accept for `grace_period` more (unless SIGINT comes).
    async fn terminate(&self, signals: &StopSignals) -> ShutdownSignal {
        if !self.grace_period.is_zero() {
            info!(
                "SIGTERM: accepting for {} more (grace_period), then draining",
                humantime::format_duration(self.grace_period)
            );
        }
        let started = Instant::now();
        while started.elapsed() < self.grace_period {
            if signals.interrupted() {
                return ShutdownSignal::FastShutdown;
            }
            tokio::time::sleep(POLL).await;
        }
        ShutdownSignal::GracefulTerminate
    }
}

#[async_trait]
impl ShutdownSignalWatch for Signals {
    async fn recv(&self) -> ShutdownSignal {
        let signals = StopSignals::get();
        loop {
            if signals.interrupted() {
                return ShutdownSignal::FastShutdown;
            }
            if signals.terminated() {
                return self.terminate(signals).await;
            }
            if signals.quit() {
                if self.successor_waits().await {
                    return ShutdownSignal::GracefulUpgrade;
                }
                warn!(
                    "SIGQUIT: no new process waits on {}, so weir keeps serving; start one \
                     with `weir upgrade` (SIGTERM stops gracefully)",
                    self.upgrade_sock.display()
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
