//! The `weir` command: argument parsing and process bootstrap only.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use weir::{config, demo, server};

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start three demo instances and a proxy in front of them on 127.0.0.1:8080 (and
    /// 127.0.0.1:8443 with the certificates of certs/make-dev-certs).
    Demo,
    /// Check the configuration, then tell the running weir (found by `server.pid_file`) to
    /// reload it in place, as SIGHUP does.
    Reload,
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
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Demo) => run_demo(),
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
            Some(path) => reload(&path),
            None => {
                eprintln!("weir reload: give the running configuration with --config FILE");
                ExitCode::from(2)
            }
        },
        None => match cli.config {
            Some(path) => run(&path, cli.test),
            None => {
                eprintln!("weir: give a configuration with --config FILE, or try `weir demo`");
                ExitCode::from(2)
            }
        },
    }
}

/// Loads, checks and (unless only testing) serves a configuration.
fn run(path: &std::path::Path, test_only: bool) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    if test_only {
        // Target host names are resolved and certificates loaded too, as `nginx -t` does.
        return match server::check(config) {
            Ok(()) => {
                println!("{}: configuration is valid", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                report(path, &e);
                ExitCode::FAILURE
            }
        };
    }
    let pid_file = config.server.pid_file.clone();
    match server::build(config) {
        Ok((server, _runtime)) => {
            if let Err(e) = std::fs::write(&pid_file, format!("{}\n", std::process::id())) {
                log::warn!("cannot write the pid file {}: {e}", pid_file.display());
            }
            server.run_forever()
        }
        Err(e) => {
            report(path, &e);
            ExitCode::FAILURE
        }
    }
}

/// `weir reload`: checks the file as `--test` does, then sends SIGHUP to the pid in its
/// `server.pid_file`.
fn reload(path: &std::path::Path) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let pid_file = config.server.pid_file.clone();
    if let Err(e) = server::check(config) {
        report(path, &e);
        return ExitCode::FAILURE;
    }
    let pid = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("cannot read the pid file {}: {e}", pid_file.display()))
        .and_then(|text| {
            text.trim()
                .parse::<i32>()
                .ok()
                .filter(|pid| *pid > 1)
                .ok_or_else(|| format!("{} does not hold a pid", pid_file.display()))
        })
        .and_then(|pid| {
            // A stale pid file may name another program now, which SIGHUP would end.
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            let name = exe.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with("weir") {
                Ok(pid)
            } else {
                Err(format!("pid {pid} from {} is not weir", pid_file.display()))
            }
        });
    let signalled = pid.and_then(|pid| {
        let target = nix::unistd::Pid::from_raw(pid);
        nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGHUP)
            .map(|()| pid)
            .map_err(|e| format!("no weir runs as pid {pid} ({e})"))
    });
    match signalled {
        Ok(pid) => {
            println!(
                "{}: configuration is valid; weir (pid {pid}) is reloading its certificates",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir reload: {e}; is weir running with this configuration?");
            ExitCode::FAILURE
        }
    }
}

fn run_demo() -> ExitCode {
    let mut config = match config::parse(std::path::Path::new("conf/demo.yaml"), demo::DEMO_CONFIG)
    {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    // HTTPS needs the development certificate; without it the demo still serves HTTP.
    let has_cert = |l: &config::Listener| match &l.protocol {
        config::Protocol::Https(tls) => tls.certificates.iter().all(|c| c.cert.exists()),
        config::Protocol::Http { .. } => true,
    };
    if !config.listeners.iter().all(has_cert) {
        config.listeners.retain(has_cert);
        eprint!("{}", demo::DEMO_NO_HTTPS);
    }
    let (mut server, _runtime) = match server::build(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("weir demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (id, address) in demo::DEMO_INSTANCES {
        match demo::DemoInstance::new(id).service(address, None) {
            Ok(service) => {
                server.add_service(service);
            }
            Err(e) => {
                eprintln!("weir demo: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{}", demo::DEMO_BANNER);
    server.run_forever()
}

/// Prints a start-up error: errors that carry their `FILE:LINE:COLUMN` as they are, others
/// after the configuration file's name.
fn report(path: &std::path::Path, e: &server::BuildError) {
    if e.is_located() {
        eprintln!("{e}");
    } else {
        eprintln!("{}: {e}", path.display());
    }
}
