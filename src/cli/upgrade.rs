//! `weir upgrade`: this binary takes the listeners over from the running weir.
//!
//! Nothing is changed until every check that can be made beforehand has passed: the file,
//! the context the new process would run in, the addresses it would bind, and the new
//! process itself, started and waiting on the upgrade socket. Only then is the old one sent
//! SIGQUIT; a failure before leaves it serving as it was.

mod error;

use super::checked;
use super::reload::{running, signal};
use crate::config::Config;
use crate::procfs;
use error::{BindError, ContextError, LogPlace, Refusal, StartError, UpgradeError};
use nix::sys::signal::Signal;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Time a new process gets to load its configuration and wait for the sockets.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Time from SIGQUIT until the new process listens on every address (Pingora retries a busy
/// address for 30 s before it gives up).
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(40);
/// How often progress is looked at.
const POLL: Duration = Duration::from_millis(20);

/// `weir upgrade`: checks the file, then upgrades.
pub(super) fn upgrade(path: &Path) -> ExitCode {
    match checked(path) {
        Some(config) => upgrade_checked(path, &config),
        None => ExitCode::FAILURE,
    }
}

/// Upgrades to this binary serving `config`, reporting the outcome.
pub(super) fn upgrade_checked(path: &Path, config: &Config) -> ExitCode {
    match upgrade_to(path, config) {
        Ok((old, new)) => {
            println!(
                "weir upgrade: weir (pid {new}) now serves {}; pid {old} finishes its in-flight \
                 requests (up to {}) and exits",
                path.display(),
                humantime::format_duration(config.server.graceful_shutdown_timeout)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir upgrade: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Upgrades to this binary serving `config`: the old pid and the new one.
fn upgrade_to(path: &Path, config: &Config) -> Result<(i32, i32), UpgradeError> {
    let process = &config.server;
    let old = running(&process.pid_file)?;
    let refuse = |reason: Refusal| UpgradeError::Refused { old, reason };
    same_context(old).map_err(|e| refuse(e.into()))?;
    bindable(config, old).map_err(|e| refuse(e.into()))?;
    let sock = &process.upgrade_sock;
    if !sock.parent().is_some_and(Path::is_dir) {
        return Err(refuse(Refusal::NoSockFolder(sock.clone())));
    }
    match std::fs::remove_file(sock) {
        Err(source) if source.kind() != ErrorKind::NotFound => {
            return Err(refuse(Refusal::StaleSock {
                path: sock.clone(),
                source,
            }))
        }
        _ => {}
    }
    let (mut child, log) = start(path, process.error_log.as_deref(), old)?;
    let ready = wait(READY_TIMEOUT, || {
        if procfs::unix_listener_elsewhere(sock) {
            return Some(Ok(()));
        }
        match child.try_wait() {
            // A daemonizing process (`server.daemon`) returns 0 once its child bootstraps.
            Ok(Some(status)) if !status.success() => Some(Err(refuse(Refusal::Exited {
                status,
                log: log.clone(),
            }))),
            _ => None,
        }
    });
    ready.unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        Err(refuse(Refusal::NotReady { log: log.clone() }))
    })?;

    signal(old, Signal::SIGQUIT)?;
    let wanted: HashSet<SocketAddr> = config.listeners.iter().map(|l| l.address).collect();
    let taken = wait(TAKEOVER_TIMEOUT, || {
        let new = procfs::read_pid(&process.pid_file).filter(|pid| *pid != old);
        let gone = matches!(child.try_wait(), Ok(Some(status)) if !status.success())
            || new.is_some_and(|pid| !procfs::alive(pid));
        if gone {
            return Some(Err(UpgradeError::ExitedTakingOver {
                old,
                log: log.clone(),
            }));
        }
        let new = new?;
        wanted
            .is_subset(&procfs::tcp_listening(&new.to_string()))
            .then_some(Ok(new))
    });
    let new = taken.unwrap_or(Err(UpgradeError::NotListening { log }))?;
    Ok((old, new))
}

/// Every address the file listens on is the old process's already, or free to bind: one
/// that is not would fail in the new process only after the old one handed over.
fn bindable(config: &Config, old: i32) -> Result<(), BindError> {
    let held = procfs::tcp_listening(&old.to_string());
    for l in &config.listeners {
        if held.contains(&l.address) {
            continue;
        }
        TcpListener::bind(l.address).map_err(|source| BindError {
            listener: l.name.clone(),
            address: l.address,
            source,
        })?;
    }
    Ok(())
}

/// Refuses to start the new process in another context than the old one's: as another
/// user, or outside the systemd service whose main process the old one is (systemd would
/// lose the new one, and `weir reload` from the service starts it inside).
fn same_context(old: i32) -> Result<(), ContextError> {
    let uid = |pid: &str| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("Uid:"))?;
        line.split_whitespace().nth(2).map(str::to_string)
    };
    if let (Some(theirs), Some(ours)) = (uid(&old.to_string()), uid("self")) {
        if theirs != ours {
            return Err(ContextError::OtherUser { old, theirs, ours });
        }
    }
    let Some(unit) = systemd_unit(old) else {
        return Ok(());
    };
    let main_pid = Command::new("systemctl")
        .args(["show", "--property=MainPID", "--value", &unit])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_string());
    if systemd_unit(std::process::id() as i32).as_ref() != Some(&unit)
        && main_pid.is_ok_and(|pid| pid == old.to_string())
    {
        return Err(ContextError::OutsideService { old, unit });
    }
    Ok(())
}

/// The systemd service a process runs in, from its cgroup (v2's `0::` line, else v1's
/// `name=systemd` one).
fn systemd_unit(pid: i32) -> Option<String> {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .or_else(|| {
            cgroups
                .lines()
                .find_map(|l| l.split_once(":name=systemd:").map(|(_, p)| p))
        })?;
    let unit = path.rsplit('/').find(|part| part.ends_with(".service"))?;
    Some(unit.to_string())
}

/// Starts this binary on `path` with `--upgrade`, in its own process group so that it
/// outlives this command and a Ctrl-C meant for it. Its output goes to `error_log` if set,
/// else where the old process's goes (a file, a terminal, a pipe), else where this command's
/// goes. Also says where its log is, for messages.
fn start(path: &Path, error_log: Option<&Path>, old: i32) -> Result<(Child, LogPlace), StartError> {
    let exe = std::env::current_exe().map_err(StartError::CurrentExe)?;
    let path = std::path::absolute(path).map_err(|source| StartError::ConfigPath {
        path: path.to_path_buf(),
        source,
    })?;
    let mut command = Command::new(exe);
    command
        .arg("--config")
        .arg(path)
        .arg("--upgrade")
        .stdin(Stdio::null())
        .process_group(0);
    let (output, log) = match error_log {
        Some(file) => (
            Some(open_log(file).map_err(|source| StartError::ErrorLog {
                path: file.to_path_buf(),
                source,
            })?),
            LogPlace::File(file.to_path_buf()),
        ),
        None => match open_log(Path::new(&format!("/proc/{old}/fd/2"))) {
            Ok(file) => (Some(file), LogPlace::Old(old)),
            Err(_) => (None, LogPlace::Ours),
        },
    };
    if let Some(file) = output {
        let copy = file.try_clone().map_err(StartError::ShareLog)?;
        command.stdout(copy).stderr(file);
    }
    let child = command.spawn().map_err(StartError::Spawn)?;
    Ok((child, log))
}

/// Opens a log file to append to, creating it if needed.
fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Polls `step` until it gives an answer or `timeout` passes.
fn wait<T>(timeout: Duration, mut step: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(answer) = step() {
            return Some(answer);
        }
        std::thread::sleep(POLL);
    }
    None
}
