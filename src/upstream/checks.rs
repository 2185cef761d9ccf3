//! Active checks: Pingora's HTTP and TCP health checks, built once per pool from its
//! `health_check:` settings.

use crate::config::{CheckKind, HealthCheck};
use pingora::http::ResponseHeader;
use pingora::lb::health_check::{HealthCheck as Probe, HttpHealthCheck, TcpHealthCheck};
use pingora::lb::Backend;
use pingora::protocols::l4::socket::SocketAddr as PeerAddr;
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorType};
use std::net::SocketAddr;
use std::time::Duration;

type BoxedProbe = Box<dyn Probe + Send + Sync>;

/// Why one probe of an instance failed; the supervisor logs it when the instance turns
/// unhealthy.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    /// An HTTP check got a status outside `expected_status`.
    #[error("answered with status {0}")]
    Status(u16),
    /// The probe could not connect, or the exchange failed, as Pingora words it.
    #[error("{0}")]
    Failed(Box<Error>),
    /// No verdict within the check's `timeout`.
    #[error("no answer within {0:?}")]
    TimedOut(Duration),
}

/// A pool's probes and the thresholds that judge their results.
pub(crate) struct Checker {
    /// The settings it was built from.
    pub settings: HealthCheck,
    /// One probe per server name the targets are reached by (TLS targets named by host
    /// each send their own); never empty.
    probes: Vec<(String, BoxedProbe)>,
}

impl Checker {
    /// Builds the probes for `settings`; HTTP checks without a `host` send the upstream's
    /// name as `Host`, as nginx does with its upstream group name. They connect as `peers`
    /// do (TLS, server name, HTTP version), with the check's timeouts: one probe per
    /// distinct server name among them.
    pub(crate) fn new(settings: &HealthCheck, upstream: &str, peers: Vec<HttpPeer>) -> Self {
        let mut probes: Vec<(String, BoxedProbe)> = Vec::new();
        for peer in peers {
            if probes.iter().all(|(name, _)| *name != peer.sni) {
                probes.push((peer.sni.clone(), build(settings, upstream, peer)));
            }
        }
        if probes.is_empty() {
            let placeholder =
                HttpPeer::new(SocketAddr::from(([0, 0, 0, 0], 1)), false, String::new());
            probes.push((String::new(), build(settings, upstream, placeholder)));
        }
        Self {
            settings: settings.clone(),
            probes,
        }
    }

    /// Probes `addr`, reached by `server_name`, once within the check timeout; `Err` says
    /// why it failed.
    pub(crate) async fn probe(
        &self,
        addr: SocketAddr,
        server_name: &str,
    ) -> Result<(), CheckError> {
        let backend = Backend {
            addr: PeerAddr::Inet(addr),
            weight: 1,
            ext: Default::default(),
        };
        let probe = self
            .probes
            .iter()
            .find(|(name, _)| name == server_name)
            .unwrap_or(&self.probes[0]);
        match tokio::time::timeout(self.settings.timeout, probe.1.check(&backend)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(match e.etype() {
                ErrorType::CustomCode(_, status) => CheckError::Status(*status),
                _ => CheckError::Failed(e),
            }),
            Err(_) => Err(CheckError::TimedOut(self.settings.timeout)),
        }
    }
}

/// One probe for `settings`, connecting as `peer` does.
fn build(settings: &HealthCheck, upstream: &str, peer: HttpPeer) -> BoxedProbe {
    match &settings.kind {
        CheckKind::Tcp => {
            let mut tcp = TcpHealthCheck::new();
            tcp.peer_template.options.connection_timeout = Some(settings.timeout);
            tcp
        }
        CheckKind::Http {
            path,
            host,
            headers,
            expected_status,
        } => {
            let mut http = HttpHealthCheck::new(host.as_deref().unwrap_or(upstream), false);
            http.peer_template = peer;
            http.req
                .set_uri(http::Uri::try_from(path.as_str()).unwrap_or(http::Uri::from_static("/")));
            for (name, value) in headers {
                // Names and values were validated with the configuration.
                let _ = http.req.insert_header(name.clone(), value.clone());
            }
            let options = &mut http.peer_template.options;
            options.connection_timeout = Some(settings.timeout);
            options.read_timeout = Some(settings.timeout);
            options.write_timeout = Some(settings.timeout);
            let ranges = expected_status.clone();
            http.validator = Some(Box::new(move |resp: &ResponseHeader| {
                let status = resp.status.as_u16();
                if ranges
                    .iter()
                    .any(|&(low, high)| (low..=high).contains(&status))
                {
                    Ok(())
                } else {
                    Error::e_explain(
                        ErrorType::CustomCode("unexpected status", status),
                        "during the health check",
                    )
                }
            }));
            Box::new(http)
        }
    }
}
