//! The `weir` command: its arguments, and what each of its forms does. Serving (`weir
//! --config F`, `--test`, `weir demo`, `weir instance`) is in [`serve`]; `weir reload` and
//! `weir upgrade` drive a running weir found through its `server.pid_file`, and each checks
//! the file first, as `weir --test` does, so a bad file never reaches the server.

mod args;
mod reload;
mod serve;
mod upgrade;

use crate::config::{self, Config};
use crate::server::BuildError;
use crate::{control, demo, server};
use args::{Cli, Command};
use clap::Parser;
use std::path::Path;
use std::process::ExitCode;

/// Runs the `weir` command with this process's arguments: what `main` does.
pub fn main() -> ExitCode {
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
            Ok(instances) => serve::demo(&demo::DemoAddresses {
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
        }) => serve::instance(&id, &listen, delay, status, health_status, cert.zip(key)),
        Some(Command::Reload) => match cli.config {
            Some(path) => reload::reload(&path),
            None => {
                eprintln!("weir reload: give the running configuration with --config FILE");
                ExitCode::from(2)
            }
        },
        Some(Command::Upgrade) => match cli.config {
            Some(path) => upgrade::upgrade(&path),
            None => {
                eprintln!("weir upgrade: give the configuration with --config FILE");
                ExitCode::from(2)
            }
        },
        None => match cli.config {
            Some(path) if cli.test => serve::test(&path),
            Some(path) => serve::run(
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

/// Loads and checks the file as `--test` does, printing every error.
fn checked(path: &Path) -> Option<Config> {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return None;
        }
    };
    match control::check(config.clone()) {
        Ok(()) => Some(config),
        Err(e) => {
            report(path, &e.into());
            None
        }
    }
}

/// Prints a start-up error: errors that carry their `FILE:LINE:COLUMN` as they are, others
/// after the configuration file's name.
fn report(path: &Path, e: &BuildError) {
    if e.is_located() {
        eprintln!("{e}");
    } else {
        eprintln!("{}: {e}", path.display());
    }
}
