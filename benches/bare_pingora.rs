//! The reference point of the side-by-side benchmark: Pingora's own round-robin balancer
//! with nothing else on the path, over the same three backends. weir must stay within 10%.
//! Run by benches/run.sh and benches/run-tls.sh; not part of weir.
//! Usage: bare_pingora [ADDR] [TLS_ADDR CERT KEY]  (TLS: Pingora's defaults, HTTP/1.1 only)
#![allow(clippy::expect_used)] // a reference that cannot start should stop, saying why

use async_trait::async_trait;
use pingora::lb::{selection::RoundRobin, LoadBalancer};
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;
use std::sync::Arc;

struct Bare(Arc<LoadBalancer<RoundRobin>>);

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _s: &mut Session, _c: &mut ()) -> Result<Box<HttpPeer>> {
        let backend = self
            .0
            .select(b"", 256)
            .ok_or_else(|| Error::new(ErrorType::HTTPStatus(503)))?;
        Ok(Box::new(HttpPeer::new(backend, false, String::new())))
    }
}

fn main() {
    let listen = std::env::args().nth(1).unwrap_or("127.0.0.1:8084".into());
    let conf = ServerConf {
        threads: 1,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let lb = LoadBalancer::try_from_iter(["127.0.0.1:9101", "127.0.0.1:9102", "127.0.0.1:9103"])
        .expect("static backends");
    let mut proxy = pingora::proxy::http_proxy_service(&server.configuration, Bare(Arc::new(lb)));
    proxy.add_tcp(&listen);
    let args: Vec<String> = std::env::args().skip(2).collect();
    if let [tls, cert, key] = args.as_slice() {
        proxy.add_tls(tls, cert, key).expect("certificate and key");
    }
    server.add_service(proxy);
    server.run_forever()
}
