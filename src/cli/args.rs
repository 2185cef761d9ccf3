//! The command line: what `weir` takes, as clap reads it.

use crate::demo;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// An edge proxy and load balancer, configured from one YAML file.
#[derive(Parser)]
#[command(version, about)]
pub(super) struct Cli {
    /// The configuration file.
    #[arg(short, long, value_name = "FILE", global = true)]
    pub(super) config: Option<PathBuf>,
    /// Check the configuration and exit: 0 when valid, 1 printing every error.
    #[arg(short, long, requires = "config")]
    pub(super) test: bool,
    /// Take the listening sockets over from the running weir (send it SIGQUIT once this
    /// process waits for them); `weir upgrade` does both.
    #[arg(short, long, requires = "config")]
    pub(super) upgrade: bool,
    /// Run in the background, as `server.daemon: true` does.
    #[arg(short, long, requires = "config")]
    pub(super) daemon: bool,
    #[command(subcommand)]
    pub(super) command: Option<Command>,
}

#[derive(Subcommand)]
pub(super) enum Command {
    /// Start three demo instances and a proxy in front of them on 127.0.0.1:8080 (and
    /// 127.0.0.1:8443 with the certificates of certs/make-dev-certs); the flags move them.
    Demo {
        /// Address of the HTTP listener.
        #[arg(long, value_name = "ADDR", default_value_t = demo::DEFAULT_HTTP)]
        http: SocketAddr,
        /// Address of the HTTPS listener.
        #[arg(long, value_name = "ADDR", default_value_t = demo::DEFAULT_HTTPS)]
        https: SocketAddr,
        /// Address of the admin listener (API, status page, /metrics).
        #[arg(long, value_name = "ADDR", default_value_t = demo::DEFAULT_ADMIN)]
        admin: SocketAddr,
        /// Addresses of the three demo instances.
        #[arg(long, value_name = "ADDR,ADDR,ADDR", value_delimiter = ',',
              default_values_t = demo::DEFAULT_INSTANCES)]
        instances: Vec<SocketAddr>,
    },
    /// Check the configuration, then tell the running weir (found by `server.pid_file`) to
    /// reload it in place, as SIGHUP does.
    Reload,
    /// Replace the running weir with this binary without refusing a connection: check the
    /// configuration, start this binary with --upgrade, hand the listeners over, let the old
    /// process drain.
    Upgrade,
    /// Run one demo instance (the backend `weir demo` uses).
    Instance {
        /// Its INSTANCE_ID, echoed in every answer.
        #[arg(long, env = "INSTANCE_ID")]
        id: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: String,
        /// Wait this long before answering (e.g. 200ms), to play a slow instance.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
        delay: Duration,
        /// Answer every path but /health with this status, to play a failing instance.
        #[arg(long, value_parser = status_code, default_value = "200")]
        status: http::StatusCode,
        /// Answer /health with this status, to play an instance that reports itself sick.
        #[arg(long, value_parser = status_code, default_value = "200")]
        health_status: http::StatusCode,
        /// Serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate; needs --key.
        #[arg(long, requires = "key", value_name = "FILE")]
        cert: Option<String>,
        /// The private key of --cert.
        #[arg(long, requires = "cert", value_name = "FILE")]
        key: Option<String>,
    },
}

fn status_code(s: &str) -> Result<http::StatusCode, http::status::InvalidStatusCode> {
    http::StatusCode::from_bytes(s.as_bytes())
}
