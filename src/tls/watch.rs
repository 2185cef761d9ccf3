//! The certificate watcher: reloads a listener's certificates when their files change or
//! on SIGHUP, and repeats expiry warnings daily.

use super::ListenerCerts;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often SIGHUP is looked for.
const TICK: Duration = Duration::from_millis(200);
/// Files are looked at every this many ticks (once a second).
const FILE_TICKS: u32 = 5;
/// Time between two rounds of expiry warnings.
const EXPIRY_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Watches the certificate files of every `https` listener.
pub struct Watcher {
    listeners: Vec<Arc<ListenerCerts>>,
    hangup: Arc<AtomicBool>,
}

impl Watcher {
    /// Takes SIGHUP over at once (its default would end the process) and watches
    /// `listeners` once started.
    pub fn new(listeners: Vec<Arc<ListenerCerts>>) -> std::io::Result<Self> {
        let hangup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())?;
        Ok(Self { listeners, hangup })
    }
}

/// Reloads one listener, logging the outcome of a failure (success logs itself).
fn reload(certs: &ListenerCerts) {
    if let Err(errors) = certs.reload() {
        for e in errors.0 {
            log::error!(
                "{e}; listener `{}` keeps serving its previous certificates",
                certs.listener
            );
        }
    }
}

#[async_trait]
impl BackgroundService for Watcher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut tick = tokio::time::interval(TICK);
        // A file is reloaded once it has stopped changing for one look, so that a cert
        // and key written one after the other are not loaded half-replaced.
        let mut seen: Vec<_> = self.listeners.iter().map(|l| l.stamp()).collect();
        let mut ticks = 0u32;
        let mut last_expiry_check = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            if self.hangup.swap(false, Ordering::Relaxed) {
                log::info!("SIGHUP: reloading certificates");
                self.listeners.iter().for_each(|l| reload(l));
            }
            ticks = (ticks + 1) % FILE_TICKS;
            if ticks == 0 {
                for (certs, last) in self.listeners.iter().zip(seen.iter_mut()) {
                    let now = certs.stamp();
                    if now == *last && !certs.is_loaded(&now) {
                        log::info!("listener `{}`: certificate files changed", certs.listener);
                        reload(certs);
                    }
                    *last = now;
                }
            }
            if last_expiry_check.elapsed() >= EXPIRY_EVERY {
                last_expiry_check = Instant::now();
                self.listeners.iter().for_each(|l| l.warn_if_expiring());
            }
        }
    }
}
