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
    #[arg(short, long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Check the configuration and exit: 0 when valid, 1 printing every error.
    #[arg(short, long, requires = "config")]
    test: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start three demo instances and a proxy in front of them on 127.0.0.1:8080.
    Demo,
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
        }) => {
            let mut server = pingora::server::Server::new(None).unwrap_or_else(|e| {
                eprintln!("weir: cannot start: {e}");
                std::process::exit(1)
            });
            let instance = demo::DemoInstance::new(&id)
                .delay(delay)
                .status(status)
                .health_status(health_status);
            server.add_service(instance.service(&listen));
            server.run_forever()
        }
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
        // Target host names are resolved too, as `nginx -t` does.
        let compiled = server::resolve(&config).and_then(|resolved| {
            Ok(weir::runtime::Runtime::compile(
                std::sync::Arc::new(config),
                None,
                resolved,
            )?)
        });
        return match compiled {
            Ok(_) => {
                println!("{}: configuration is valid", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                ExitCode::FAILURE
            }
        };
    }
    match server::build(config) {
        Ok((server, _runtime)) => server.run_forever(),
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            ExitCode::FAILURE
        }
    }
}

fn run_demo() -> ExitCode {
    let config = match config::parse(std::path::Path::new("conf/demo.yaml"), demo::DEMO_CONFIG) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let (mut server, _runtime) = match server::build(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("weir demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (id, address) in demo::DEMO_INSTANCES {
        server.add_service(demo::DemoInstance::new(id).service(address));
    }
    println!("{}", demo::DEMO_BANNER);
    server.run_forever()
}
