//! The `weir` command: argument parsing and process bootstrap only.

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use weir::cli::{self, report};
use weir::{config, control, demo, process, server};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An edge proxy and load balancer, configured from one YAML file.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The configuration file.
    #[arg(short, long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Check the configuration and exit: 0 when valid, 1 printing every error.
    #[arg(short, long, requires = "config")]
    test: bool,
    /// Take the listening sockets over from the running weir (send it SIGQUIT once this
    /// process waits for them); `weir upgrade` does both.
    #[arg(short, long, requires = "config")]
    upgrade: bool,
    /// Run in the background, as `server.daemon: true` does.
    #[arg(short, long, requires = "config")]
    daemon: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
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

fn main() -> ExitCode {
    // RUST_LOG, when set, decides; else `server.log_level` does, once the file is read.
    let level_from_env = std::env::var_os("RUST_LOG").is_some();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("trace")).init();
    if !level_from_env {
        log::set_max_level(log::LevelFilter::Info);
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Demo {
            http,
            https,
            admin,
            instances,
        }) => match instances.try_into() {
            Ok(instances) => run_demo(&demo::DemoAddresses {
                http,
                https,
                admin,
                instances,
            }),
            Err(_) => {
                eprintln!("weir demo: --instances takes three addresses");
                ExitCode::FAILURE
            }
        },
        Some(Command::Instance {
            id,
            listen,
            delay,
            status,
            health_status,
            cert,
            key,
        }) => {
            let mut server = pingora::server::Server::new(None).unwrap_or_else(|e| {
                eprintln!("weir: cannot start: {e}");
                std::process::exit(1)
            });
            let instance = demo::DemoInstance::new(&id)
                .delay(delay)
                .status(status)
                .health_status(health_status);
            let tls = cert.as_deref().zip(key.as_deref());
            match instance.service(&listen, tls) {
                Ok(service) => {
                    server.add_service(service);
                }
                Err(e) => {
                    eprintln!("weir instance: {e}");
                    return ExitCode::FAILURE;
                }
            }
            server.run_forever()
        }
        Some(Command::Reload) => match cli.config {
            Some(path) => cli::reload(&path),
            None => {
                eprintln!("weir reload: give the running configuration with --config FILE");
                ExitCode::from(2)
            }
        },
        Some(Command::Upgrade) => match cli.config {
            Some(path) => cli::upgrade(&path),
            None => {
                eprintln!("weir upgrade: give the configuration with --config FILE");
                ExitCode::from(2)
            }
        },
        None => match cli.config {
            Some(path) if cli.test => test(&path),
            Some(path) => run(
                &path,
                server::Start {
                    upgrade: cli.upgrade,
                    daemon: cli.daemon,
                },
                level_from_env,
            ),
            None => {
                eprintln!("weir: give a configuration with --config FILE, or try `weir demo`");
                ExitCode::from(2)
            }
        },
    }
}

/// `weir --test`: loads and checks a configuration, resolving target host names and loading
/// certificates too, as `nginx -t` does.
fn test(path: &Path) -> ExitCode {
    let checked = config::load(path).map_err(|errors| eprintln!("{errors}"));
    let checked =
        checked.and_then(|config| control::check(config).map_err(|e| report(path, &e.into())));
    match checked {
        Ok(()) => {
            println!("{}: configuration is valid", path.display());
            ExitCode::SUCCESS
        }
        Err(()) => ExitCode::FAILURE,
    }
}

/// Loads a configuration and serves it until stopped.
fn run(path: &Path, start: server::Start, level_from_env: bool) -> ExitCode {
    process::Signals::get();
    // A daemon works from `/`, and SIGHUP re-reads the file.
    let path = &std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let loaded = config::read(path).and_then(|text| Ok((config::parse(path, &text)?, text)));
    let (config, text) = match loaded {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let process = config.server.clone();
    if !level_from_env {
        log::set_max_level(level_filter(process.log_level));
    }
    match server::build(config, &text, start) {
        Ok((server, _runtime)) => {
            process::run(server, &process);
            ExitCode::SUCCESS
        }
        Err(e) => {
            report(path, &e);
            ExitCode::FAILURE
        }
    }
}

fn run_demo(addresses: &demo::DemoAddresses) -> ExitCode {
    process::Signals::get();
    // The demo's admin token (conf/demo.yaml reads it from the environment): the caller's,
    // or a fresh random one, printed below.
    let token = std::env::var(demo::DEMO_TOKEN_VARIABLE)
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    std::env::set_var(demo::DEMO_TOKEN_VARIABLE, &token);
    let source = addresses.config();
    let mut config = match config::parse(std::path::Path::new("conf/demo.yaml"), &source) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    // HTTPS needs the development certificate; without it the demo still serves HTTP.
    let has_cert = |l: &config::Listener| {
        l.protocol
            .tls()
            .is_none_or(|tls| tls.certificates.iter().all(|c| c.cert.exists()))
    };
    if !config.listeners.iter().all(has_cert) {
        config.listeners.retain(has_cert);
        eprint!("{}", addresses.describe(demo::DEMO_NO_HTTPS));
    }
    let process = config.server.clone();
    let built = server::build(config, &source, server::Start::default());
    let (mut server, _runtime) = match built {
        Ok(s) => s,
        Err(e) => {
            eprintln!("weir demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (id, address) in addresses.instances() {
        match demo::DemoInstance::new(id).service(&address.to_string(), None) {
            Ok(service) => {
                server.add_service(service);
            }
            Err(e) => {
                eprintln!("weir demo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let banner = addresses.describe(demo::DEMO_BANNER);
    println!("{}", banner.replace("{token}", &token));
    process::run(server, &process);
    ExitCode::SUCCESS
}

fn level_filter(level: config::LogLevel) -> log::LevelFilter {
    match level {
        config::LogLevel::Error => log::LevelFilter::Error,
        config::LogLevel::Warn => log::LevelFilter::Warn,
        config::LogLevel::Info => log::LevelFilter::Info,
        config::LogLevel::Debug => log::LevelFilter::Debug,
        config::LogLevel::Trace => log::LevelFilter::Trace,
    }
}
