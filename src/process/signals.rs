//! Every signal weir acts on, in one place: SIGHUP (reload the file), SIGUSR1 (reopen the
//! access log), SIGTERM (stop gracefully), SIGINT (stop at once) and SIGQUIT (hand the
//! listeners to a new process).
//!
//! A serving process takes all of them over with flags as its first step, whatever its
//! configuration says, and only ever reads these flags: a signal sent before the server runs
//! (its pid file may be written already) is acted on rather than ending the process with a
//! default action (SIGUSR1's and SIGHUP's end it), and a SIGINT during a drain is not lost
//! with a signal stream that Pingora dropped.
//!
//! One exception: a process that daemonizes lets its short-lived parent keep SIGUSR1, which
//! Pingora's daemon sends it to say it is ready. Pingora's parent listens for it only once it
//! has forked, so a readiness signal that comes early would reach a handler of ours alone
//! and leave the parent waiting — or, before any handler, end the parent, and with it the
//! start. The daemon takes SIGUSR1 over before its bootstrap completes, that is before it
//! tells its parent (and systemd) that it runs, and it tells it only once the parent
//! listens.

use super::POLL;
use crate::access_log::AccessLog;
use crate::control::LiveConfig;
use crate::procfs;
use async_trait::async_trait;
use log::{info, warn};
use pingora::server::{ShutdownSignal, ShutdownSignalWatch, ShutdownWatch};
use pingora::services::background::BackgroundService;
use pingora::services::ServiceReadyNotifier;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// The longest a daemon waits for its parent to listen for the readiness signal.
const PARENT_WAIT: Duration = Duration::from_secs(10);
/// How often it looks.
const PARENT_POLL: Duration = Duration::from_millis(5);

/// How long a SIGQUIT waits for a new process to be waiting on the upgrade socket.
const UPGRADE_WAIT: Duration = Duration::from_secs(5);

/// Each signal weir acts on, a flag set by its handler. Signals belong to the process, so
/// there is one set.
pub(crate) struct Signals {
    hangup: Arc<AtomicBool>,
    reopen: OnceLock<Arc<AtomicBool>>,
    /// The process that daemonizes, recorded before the fork: the daemon's parent, to be
    /// told it is ready.
    daemonizer: OnceLock<u32>,
    term: Arc<AtomicBool>,
    int: Arc<AtomicBool>,
    quit: Arc<AtomicBool>,
}

static SIGNALS: OnceLock<Signals> = OnceLock::new();

/// A flag that `signal`'s handler sets.
fn flag(signal: i32) -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    // Only signals such as SIGKILL and SIGSTOP cannot be caught; none of weir's.
    if let Err(e) = signal_hook::flag::register(signal, flag.clone()) {
        log::error!("cannot handle signal {signal}: {e}");
    }
    flag
}

impl Signals {
    /// The process's signals, all but SIGUSR1 taken over on the first call: a serving process
    /// makes it its first step, and takes SIGUSR1 with [`Signals::take_reopen`] as soon as
    /// it knows whether it daemonizes.
    pub(crate) fn get() -> &'static Self {
        SIGNALS.get_or_init(|| {
            use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
            Self {
                hangup: flag(SIGHUP),
                reopen: OnceLock::new(),
                daemonizer: OnceLock::new(),
                term: flag(SIGTERM),
                int: flag(SIGINT),
                quit: flag(SIGQUIT),
            }
        })
    }

    /// Records that this process daemonizes: it leaves SIGUSR1 to the parent Pingora makes
    /// of it, and its daemon waits for that parent to listen before it says it is ready.
    pub(crate) fn daemonizing(&self) {
        self.daemonizer.get_or_init(std::process::id);
    }

    /// In a daemon, until the process that started it handles SIGUSR1 (the readiness
    /// signal) or is gone, for at most `PARENT_WAIT`: Pingora's parent sets its handler up
    /// after the fork, and a signal before that would end it as if the start had failed.
    async fn parent_listening(&self) {
        let Some(&parent) = self.daemonizer.get().filter(|p| **p != std::process::id()) else {
            return;
        };
        let deadline = Instant::now() + PARENT_WAIT;
        while procfs::catches(parent, signal_hook::consts::SIGUSR1) == Some(false)
            && Instant::now() < deadline
        {
            tokio::time::sleep(PARENT_POLL).await;
        }
    }

    /// Takes SIGUSR1 over (once; later calls change nothing): at once in a process that
    /// serves in the foreground, after the fork in a daemon.
    pub(crate) fn take_reopen(&self) {
        self.reopen
            .get_or_init(|| flag(signal_hook::consts::SIGUSR1));
    }

    /// Whether SIGINT came since the last look.
    pub(crate) fn interrupted(&self) -> bool {
        self.int.swap(false, Ordering::Relaxed)
    }

    fn terminated(&self) -> bool {
        self.term.swap(false, Ordering::Relaxed)
    }

    fn quit(&self) -> bool {
        self.quit.swap(false, Ordering::Relaxed)
    }

    fn hung_up(&self) -> bool {
        self.hangup.swap(false, Ordering::Relaxed)
    }

    fn reopen_requested(&self) -> bool {
        self.reopen
            .get()
            .is_some_and(|f| f.swap(false, Ordering::Relaxed))
    }
}

/// What the stop signals ask of Pingora: SIGTERM a graceful stop (nginx's QUIT), SIGINT one
/// at once, and SIGQUIT the hand-over of the listeners to a new process waiting on
/// `upgrade_sock` (Pingora's). A SIGQUIT with no such process is ignored rather than ending
/// the only weir there is.
pub(crate) struct Shutdown {
    /// Time SIGTERM keeps the listeners accepting before they close.
    pub grace_period: Duration,
    /// Where a new process waits for the listeners.
    pub upgrade_sock: PathBuf,
}

impl Shutdown {
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
    async fn terminate(&self, signals: &Signals) -> ShutdownSignal {
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
impl ShutdownSignalWatch for Shutdown {
    async fn recv(&self) -> ShutdownSignal {
        let signals = Signals::get();
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

/// How often SIGHUP and SIGUSR1 are looked for.
const TICK: Duration = Duration::from_millis(100);

/// What SIGHUP and SIGUSR1 do in a running weir: reload the configuration file, and reopen
/// the access log file (logrotate's `postrotate`). Without a log file, SIGUSR1 is logged and
/// changes nothing.
pub(crate) struct Housekeeping {
    live: Arc<LiveConfig>,
    access_log: Option<AccessLog>,
}

impl Housekeeping {
    /// Reloads `live` on SIGHUP and reopens `access_log` on SIGUSR1.
    pub(crate) fn new(live: Arc<LiveConfig>, access_log: Option<AccessLog>) -> Self {
        Self { live, access_log }
    }
}

#[async_trait]
impl BackgroundService for Housekeeping {
    /// Ready once SIGUSR1 is taken over: the bootstrap waits for it, so a daemon handles
    /// SIGUSR1 before it tells its parent (and systemd) that it runs. A foreground process
    /// took it at start already.
    async fn start_with_ready_notifier(
        &self,
        mut shutdown: ShutdownWatch,
        ready: ServiceReadyNotifier,
    ) {
        let signals = Signals::get();
        signals.take_reopen();
        signals.parent_listening().await;
        ready.notify_ready();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            if signals.reopen_requested()
                && !self.access_log.as_ref().is_some_and(AccessLog::reopen)
            {
                info!("SIGUSR1: no access log file to reopen (access_log.path is stdout or unset)");
            }
            if !signals.hung_up() {
                continue;
            }
            let live = self.live.clone();
            // Loading reads files and may resolve names: off the async threads. The outcome
            // is logged by the reload itself.
            if let Err(e) = tokio::task::spawn_blocking(move || live.reload("SIGHUP")).await {
                log::error!("reload failed unexpectedly, the running configuration stays: {e}");
            }
        }
    }
}
