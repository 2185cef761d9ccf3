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
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// One demo instance.
pub(crate) struct DemoInstance {
    id: String,
    delay: Duration,
    status: http::StatusCode,
    health_status: http::StatusCode,
    started: Instant,
}

impl DemoInstance {
    /// A healthy instance named `id`.
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            delay: Duration::ZERO,
            status: http::StatusCode::OK,
            health_status: http::StatusCode::OK,
            started: Instant::now(),
        }
    }

    /// Waits `delay` before answering anything but `/health`, to play a slow instance.
    pub(crate) fn delay(self, delay: Duration) -> Self {
        Self { delay, ..self }
    }

    /// Answers everything but `/health` with `status`, to play a failing instance.
    pub(crate) fn status(self, status: http::StatusCode) -> Self {
        Self { status, ..self }
    }

    /// Answers `/health` with `status`, to play an instance that reports itself sick.
    pub(crate) fn health_status(self, health_status: http::StatusCode) -> Self {
        Self {
            health_status,
            ..self
        }
    }

    /// A listening service for this instance on `address`, one thread; with `tls` (a PEM
    /// certificate and key) it speaks HTTPS, HTTP/2 included, to play a re-encrypted backend.
    pub(crate) fn service(
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
pub(crate) const DEMO_NO_HTTPS: &str = "\
weir demo: HTTPS on 127.0.0.1:8443 is off: certs/dev/localhost.crt is missing.
Run ./certs/make-dev-certs (or ./scripts/demo, which does) to make it.
";

/// The configuration `weir demo` runs: three instances on 9001-9003 behind 127.0.0.1:8080,
/// and 127.0.0.1:8443 with the development certificate.
pub(crate) const DEMO_CONFIG: &str = include_str!("../conf/demo.yaml");

/// `127.0.0.1:port`, for the demo's default addresses.
const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// The demo's HTTP listener unless `weir demo --http` moves it.
pub(crate) const DEFAULT_HTTP: SocketAddr = loopback(8080);
/// The demo's HTTPS listener unless `weir demo --https` moves it.
pub(crate) const DEFAULT_HTTPS: SocketAddr = loopback(8443);
/// The demo's admin listener unless `weir demo --admin` moves it.
pub(crate) const DEFAULT_ADMIN: SocketAddr = loopback(9901);
/// The demo's instances unless `weir demo --instances` moves them.
pub(crate) const DEFAULT_INSTANCES: [SocketAddr; 3] =
    [loopback(9001), loopback(9002), loopback(9003)];

/// INSTANCE_IDs of the instances `weir demo` starts, in the order of their addresses.
pub(crate) const DEMO_INSTANCE_IDS: [&str; 3] = ["instance-1", "instance-2", "instance-3"];

/// Where `weir demo` listens: conf/demo.yaml's addresses unless its flags move them (to run
/// it beside something that holds those ports, as the tests do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DemoAddresses {
    /// The HTTP listener.
    pub http: SocketAddr,
    /// The HTTPS listener.
    pub https: SocketAddr,
    /// The admin listener (API, status page, /metrics).
    pub admin: SocketAddr,
    /// The three instances.
    pub instances: [SocketAddr; 3],
}

impl Default for DemoAddresses {
    fn default() -> Self {
        Self {
            http: DEFAULT_HTTP,
            https: DEFAULT_HTTPS,
            admin: DEFAULT_ADMIN,
            instances: DEFAULT_INSTANCES,
        }
    }
}

impl DemoAddresses {
    /// Each default address with the one that replaces it.
    fn moves(&self) -> [(SocketAddr, SocketAddr); 6] {
        let [i1, i2, i3] = self.instances;
        let [d1, d2, d3] = DEFAULT_INSTANCES;
        [
            (DEFAULT_HTTP, self.http),
            (DEFAULT_HTTPS, self.https),
            (DEFAULT_ADMIN, self.admin),
            (d1, i1),
            (d2, i2),
            (d3, i3),
        ]
    }

    /// [`DEMO_CONFIG`] with these addresses: each `address:` of a default one names its
    /// replacement instead (quoted, so that an IPv6 address reads as one value).
    pub(crate) fn config(&self) -> String {
        let moves = self
            .moves()
            .map(|(from, to)| (format!("address: {from}"), format!("address: \"{to}\"")));
        replace_all(DEMO_CONFIG, &moves)
    }

    /// The instances to start: (INSTANCE_ID, address).
    pub(crate) fn instances(&self) -> [(&'static str, SocketAddr); 3] {
        let [i1, i2, i3] = self.instances;
        let [n1, n2, n3] = DEMO_INSTANCE_IDS;
        [(n1, i1), (n2, i2), (n3, i3)]
    }

    /// [`DEMO_BANNER`] (or [`DEMO_NO_HTTPS`]) naming these addresses.
    pub(crate) fn describe(&self, text: &str) -> String {
        let [i1, i2, i3] = self.instances;
        let instances = if self.instances == DEFAULT_INSTANCES {
            "127.0.0.1:9001-9003".to_string()
        } else {
            format!("{i1}, {i2}, {i3}")
        };
        let https = format!("localhost:{}", self.https.port());
        let mut moves = vec![
            ("127.0.0.1:9001-9003".to_string(), instances),
            ("localhost:8443".to_string(), https),
        ];
        moves.extend(
            self.moves()
                .map(|(from, to)| (from.to_string(), to.to_string())),
        );
        replace_all(text, &moves)
    }
}

/// `text` with each `(from, to)` of `moves` replaced at once: a replacement that looks like
/// another `from` is left as it is.
fn replace_all(text: &str, moves: &[(String, String)]) -> String {
    let marker = |i: usize| format!("\u{0}{i}\u{0}");
    let marked = moves
        .iter()
        .enumerate()
        .fold(text.to_string(), |t, (i, (from, _))| {
            t.replace(from, &marker(i))
        });
    moves
        .iter()
        .enumerate()
        .fold(marked, |t, (i, (_, to))| t.replace(&marker(i), to))
}

/// The environment variable conf/demo.yaml takes the admin token from; `weir demo` sets it
/// to a random token unless it is set already.
pub(crate) const DEMO_TOKEN_VARIABLE: &str = "WEIR_ADMIN_TOKEN";

/// What `weir demo` prints once it is up; `{token}` stands for the admin token.
pub(crate) const DEMO_BANNER: &str = "\
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_addresses_leave_the_shipped_demo_as_it_is() {
        let defaults = DemoAddresses::default();
        assert_eq!(
            defaults.config().replace('"', ""),
            DEMO_CONFIG.replace('"', ""),
            "only quoted"
        );
        assert_eq!(defaults.describe(DEMO_BANNER), DEMO_BANNER);
    }

    #[test]
    fn moved_addresses_swap_at_once_even_onto_another_default() {
        let moved = DemoAddresses {
            http: loopback(9001),
            instances: [loopback(8080), loopback(7002), loopback(7003)],
            ..DemoAddresses::default()
        };
        let config = moved.config();
        assert!(
            config.contains("name: web, address: \"127.0.0.1:9001\" }"),
            "{config}"
        );
        assert!(
            config.contains("{ address: \"127.0.0.1:8080\", name: instance-1 }"),
            "{config}"
        );
        let banner = moved.describe(DEMO_BANNER);
        assert!(
            banner.contains("curl -i http://127.0.0.1:9001/"),
            "{banner}"
        );
        assert!(
            banner.contains("(127.0.0.1:8080, 127.0.0.1:7002, 127.0.0.1:7003)"),
            "{banner}"
        );
        assert!(banner.contains("targets/127.0.0.1:7003/drain"), "{banner}");
    }
}
