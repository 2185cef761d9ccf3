//! The proxy service, ending the process when its listeners cannot be set up.

use super::remove_pid_file;
use async_trait::async_trait;
use log::error;
use pingora::server::RuntimeOpts;
use pingora::server::{ListenFds, ShutdownWatch};
use pingora::services::Service;
use std::path::PathBuf;

/// Wraps the listening service. Pingora panics inside the service when a listener cannot be
/// bound (an address in use, a port below 1024 without the right), which would leave a
/// process that runs but serves nothing; here the process exits 1 instead, so a supervisor,
/// a daemon's parent or `weir upgrade` sees the failure.
pub(crate) struct Listening<S> {
    service: Option<S>,
    name: String,
    pid_file: PathBuf,
}

impl<S: Service> Listening<S> {
    /// Wraps `service`, whose process writes `pid_file`.
    pub(crate) fn new(service: S, pid_file: PathBuf) -> Self {
        Self {
            name: service.name().to_string(),
            service: Some(service),
            pid_file,
        }
    }
}

#[async_trait]
impl<S: Service + 'static> Service for Listening<S> {
    async fn start_service(
        &mut self,
        fds: Option<ListenFds>,
        shutdown: ShutdownWatch,
        listeners_per_fd: usize,
    ) {
        let Some(mut service) = self.service.take() else {
            return;
        };
        let run =
            tokio::spawn(
                async move { service.start_service(fds, shutdown, listeners_per_fd).await },
            );
        match run.await {
            Err(e) if e.is_panic() => {
                error!("{}: cannot listen ({e}); exiting", self.name);
                remove_pid_file(&self.pid_file);
                std::process::exit(1);
            }
            // Done, or cancelled by a shutdown.
            _ => {}
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn threads(&self) -> Option<usize> {
        self.service.as_ref().and_then(Service::threads)
    }

    fn runtime_opts_override(&self, global: &RuntimeOpts) -> Option<RuntimeOpts> {
        self.service
            .as_ref()
            .and_then(|s| s.runtime_opts_override(global))
    }

    fn listen_addresses(&self) -> Option<Vec<String>> {
        self.service.as_ref().and_then(Service::listen_addresses)
    }
}
