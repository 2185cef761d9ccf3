//! The certificate watcher: reloads a listener's certificates when their files change, and
//! repeats expiry warnings daily. (SIGHUP reloads them with the whole configuration.)

use super::ListenerCerts;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the files are looked at.
const TICK: Duration = Duration::from_secs(1);
/// Time between two rounds of expiry warnings.
const EXPIRY_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Watches the certificate files of every `https` listener.
pub(crate) struct Watcher {
    listeners: Vec<Arc<ListenerCerts>>,
}

impl Watcher {
    /// Watches the files of `listeners` once started.
    pub(crate) fn new(listeners: Vec<Arc<ListenerCerts>>) -> Self {
        Self { listeners }
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
        let mut last_expiry_check = Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            for (certs, last) in self.listeners.iter().zip(seen.iter_mut()) {
                let now = certs.stamp();
                if now == *last && !certs.is_loaded(&now) {
                    log::info!("listener `{}`: certificate files changed", certs.listener);
                    reload(certs);
                }
                *last = now;
            }
            if last_expiry_check.elapsed() >= EXPIRY_EVERY {
                last_expiry_check = Instant::now();
                self.listeners.iter().for_each(|l| l.warn_if_expiring());
            }
        }
    }
}
