//! The forms of `weir` that serve: a configuration (or `--test` of one), the demo, and one
//! demo instance.

use super::report;
use crate::{config, control, demo, process, server};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

/// `weir instance`: one demo backend, until stopped.
pub(super) fn instance(
    id: &str,
    listen: &str,
    delay: Duration,
    status: http::StatusCode,
    health_status: http::StatusCode,
    tls: Option<(String, String)>,
) -> ExitCode {
    let mut server = pingora::server::Server::new(None).unwrap_or_else(|e| {
        eprintln!("weir: cannot start: {e}");
        std::process::exit(1)
    });
    let instance = demo::DemoInstance::new(id)
        .delay(delay)
        .status(status)
        .health_status(health_status);
    match instance.service(listen, tls.as_ref().map(|(c, k)| (c.as_str(), k.as_str()))) {
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

/// `weir --test`: loads and checks a configuration, resolving target host names and loading
/// certificates too, as `nginx -t` does.
pub(super) fn test(path: &Path) -> ExitCode {
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
pub(super) fn run(path: &Path, start: server::Start, level_from_env: bool) -> ExitCode {
    let signals = process::Signals::get();
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
    if start.daemon || process.daemon {
        signals.daemonizing();
    } else {
        signals.take_reopen();
    }
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

/// `weir demo`: three demo instances and a proxy in front of them, on `addresses`.
pub(super) fn demo(addresses: &demo::DemoAddresses) -> ExitCode {
    process::Signals::get().take_reopen();
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
