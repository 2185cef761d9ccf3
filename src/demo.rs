//! Demo instances: tiny HTTP services that say who they are. `weir demo` runs three of them
//! behind a proxy; `weir instance` runs one, which the tests use as a real backend.
//!
//! `GET /health` answers `{"status":"healthy","instance":…}`; every other request is echoed
//! back as JSON (method, HTTP version, path, headers with repeated ones joined by `, `, body
//! size, instance).

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::http::ServerSession;
use pingora::services::listening::Service;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One demo instance.
pub struct DemoInstance {
    id: String,
    delay: Duration,
    status: http::StatusCode,
    health_status: http::StatusCode,
    started: Instant,
}

impl DemoInstance {
    /// A healthy instance named `id`.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            delay: Duration::ZERO,
            status: http::StatusCode::OK,
            health_status: http::StatusCode::OK,
            started: Instant::now(),
        }
    }

    /// Waits `delay` before answering anything but `/health`, to play a slow instance.
    pub fn delay(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }

    /// Answers everything but `/health` with `status`, to play a failing instance.
    pub fn status(self, status: http::StatusCode) -> Self {
        Self { status, ..self }
    }

    /// Answers `/health` with `status`, to play an instance that reports itself sick.
    pub fn health_status(self, health_status: http::StatusCode) -> Self {
        Self {
            health_status,
            ..self
        }
    }

    /// A listening service for this instance on `address`, one thread; with `tls` (a PEM
    /// certificate and key) it speaks HTTPS, HTTP/2 included, to play a re-encrypted backend.
    pub fn service(
        self,
        address: &str,
        tls: Option<(&str, &str)>,
    ) -> pingora::Result<Service<Self>> {
        let mut service = Service::new(format!("demo instance {}", self.id), self);
        match tls {
            Some((cert, key)) => {
                let mut settings = TlsSettings::intermediate(cert, key)?;
                settings.enable_h2();
                service.add_tls_with_settings(address, None, settings);
            }
            None => service.add_tcp(address),
        }
        service.threads = Some(1);
        Ok(service)
    }
}

#[async_trait]
impl ServeHttp for DemoInstance {
    async fn response(&self, session: &mut ServerSession) -> http::Response<Vec<u8>> {
        let req = session.req_header();
        let health = req.uri.path() == "/health";
        let status = if health {
            self.health_status
        } else {
            self.status
        };
        let body = if health {
            serde_json::json!({
                "status": if status.is_success() { "healthy" } else { "unhealthy" },
                "instance": self.id,
                "uptime_secs": self.started.elapsed().as_secs(),
            })
        } else {
            let method = req.method.to_string();
            let version = format!("{:?}", req.version);
            let path = req
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let mut headers: BTreeMap<String, String> = BTreeMap::new();
            for (name, value) in &req.headers {
                let value = String::from_utf8_lossy(value.as_bytes());
                headers
                    .entry(name.to_string())
                    .and_modify(|joined| {
                        joined.push_str(", ");
                        joined.push_str(&value);
                    })
                    .or_insert_with(|| value.into_owned());
            }
            let mut body_bytes = 0;
            while let Ok(Some(chunk)) = session.read_request_body().await {
                body_bytes += chunk.len();
            }
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            serde_json::json!({
                "instance": self.id,
                "method": method,
                "version": version,
                "path": path,
                "headers": headers,
                "body_bytes": body_bytes,
            })
        };
        let body = body.to_string().into_bytes();
        http::Response::builder()
            .status(status)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::CONTENT_LENGTH, body.len())
            .header("x-instance-id", self.id.as_str())
            .body(body)
            .unwrap_or_default()
    }
}

/// What `weir demo` prints when the development certificate is missing, instead of HTTPS.
pub const DEMO_NO_HTTPS: &str = "\
weir demo: HTTPS on 127.0.0.1:8443 is off: certs/dev/localhost.crt is missing.
Run ./certs/make-dev-certs (or ./scripts/demo, which does) to make it.
";

/// The configuration `weir demo` runs: three instances on 9001-9003 behind 127.0.0.1:8080,
/// and 127.0.0.1:8443 with the development certificate.
pub const DEMO_CONFIG: &str = include_str!("../conf/demo.yaml");

/// Instances `weir demo` starts: (INSTANCE_ID, address).
pub const DEMO_INSTANCES: [(&str, &str); 3] = [
    ("instance-1", "127.0.0.1:9001"),
    ("instance-2", "127.0.0.1:9002"),
    ("instance-3", "127.0.0.1:9003"),
];

/// The environment variable conf/demo.yaml takes the admin token from; `weir demo` sets it
/// to a random token unless it is set already.
pub const DEMO_TOKEN_VARIABLE: &str = "WEIR_ADMIN_TOKEN";

/// What `weir demo` prints once it is up; `{token}` stands for the admin token.
pub const DEMO_BANNER: &str = "\
weir demo: three instances (127.0.0.1:9001-9003) behind http://127.0.0.1:8080 and
https://localhost:8443; status page at http://127.0.0.1:9901/

Admin token (for the status page's buttons and API writes): {token}

Try:
  curl -i http://127.0.0.1:8080/                  # round robin: run it a few times
  curl -s http://127.0.0.1:8080/api/users/42      # echoed by an instance, with the headers weir added
  curl -i -H 'X-Request-ID: my-id-1' http://127.0.0.1:8080/hello
  curl -s http://127.0.0.1:8080/health            # an instance's health answer
  curl -s --cacert certs/dev/ca.crt https://localhost:8443/   # HTTP/2 over TLS
  curl -s http://127.0.0.1:9901/status            # the admin listener: upstreams, instances
  curl -s http://127.0.0.1:9901/metrics | grep weir_requests_total
  curl -s -X POST -H 'Authorization: Bearer {token}' \\
       http://127.0.0.1:9901/upstreams/demo/targets/127.0.0.1:9003/drain

Ctrl-C stops everything.
";
