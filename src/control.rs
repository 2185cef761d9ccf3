//! Commands that drive a running weir, found through its `server.pid_file`: `weir reload`
//! (SIGHUP) and `weir upgrade` (a new process takes the listeners over, the old one drains).
//! Each checks the file first, as `weir --test` does, so a bad file never reaches the server.

use crate::config::{self, Config};
use crate::server::{self, BuildError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Time a new process gets to load its configuration and wait for the sockets.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Time from SIGQUIT to the new process holding the listeners.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(20);
/// How often progress is looked at.
const POLL: Duration = Duration::from_millis(20);

/// `weir reload`: checks the file, then sends SIGHUP to the running weir. When the running
/// weir is another binary than this one (a new one was installed), it upgrades to this one
/// instead, as HAProxy's reload does: so `systemctl reload` after a package upgrade swaps
/// the binary without a lost connection, and the new process stays in the service's cgroup.
pub fn reload(path: &Path) -> ExitCode {
    let Some(config) = checked(path) else {
        return ExitCode::FAILURE;
    };
    let running = running(&config.server.pid_file);
    if let Ok(pid) = running {
        if !same_binary(pid) {
            println!("weir reload: weir (pid {pid}) runs another binary than this one: upgrading");
            return upgrade_checked(path, &config);
        }
    }
    match running.and_then(|pid| signal(pid, Signal::SIGHUP)) {
        Ok(pid) => {
            println!(
                "{}: configuration is valid; weir (pid {pid}) is reloading it",
                path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("weir reload: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `weir upgrade`: checks the file with this binary, starts it with `--upgrade`, waits until
/// it waits for the sockets, sends SIGQUIT to the running weir, and waits until the new
/// process holds the listeners. Until SIGQUIT nothing is changed, so a new process that fails
/// to start leaves the old one serving.
pub fn upgrade(path: &Path) -> ExitCode {
    match checked(path) {
        Some(config) => upgrade_checked(path, &config),
        None => ExitCode::FAILURE,
    }
}

fn upgrade_checked(path: &Path, config: &Config) -> ExitCode {
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

fn upgrade_to(path: &Path, config: &Config) -> Result<(i32, i32), String> {
    let process = &config.server;
    let old = running(&process.pid_file)?;
    let sock = &process.upgrade_sock;
    let folder = sock.parent().unwrap_or(Path::new("/"));
    if !folder.is_dir() {
        return Err(format!(
            "the folder of server.upgrade_sock ({}) does not exist; weir (pid {old}) keeps serving",
            sock.display()
        ));
    }
    // The new process creates the socket when it is ready for the listeners, and removes it
    // once it has them; a stale one would look like readiness.
    let _ = std::fs::remove_file(sock);
    let mut child = start(path, process.error_log.as_deref())?;
    let log = match &process.error_log {
        Some(file) => format!(" (its log: {})", file.display()),
        None => String::new(),
    };
    let keeps = format!("weir (pid {old}) keeps serving");
    wait(READY_TIMEOUT, || {
        if sock.exists() {
            return Some(Ok(()));
        }
        match child.try_wait() {
            // A daemonizing process (`server.daemon`) returns 0 once its child is ready.
            Ok(Some(status)) if !status.success() => Some(Err(format!(
                "the new process exited ({status}) before taking over{log}; {keeps}"
            ))),
            _ => None,
        }
    })
    .unwrap_or_else(|| {
        stop(&mut child);
        Err(format!(
            "the new process was not ready for the listeners within {}s; {keeps}",
            READY_TIMEOUT.as_secs()
        ))
    })?;
    signal(old, Signal::SIGQUIT)?;
    wait(TAKEOVER_TIMEOUT, || {
        if exited(&mut child) {
            return Some(Err(format!(
                "the new process exited while taking over{log}; pid {old} is draining: \
                 start weir again"
            )));
        }
        let new = pid_in(&process.pid_file).filter(|pid| *pid != old && alive(*pid));
        new.filter(|_| !sock.exists()).map(Ok)
    })
    .unwrap_or_else(|| {
        Err(format!(
            "the new process did not take the listeners within {}s of SIGQUIT",
            TAKEOVER_TIMEOUT.as_secs()
        ))
    })
    .map(|new| (old, new))
}

/// Starts this binary on `path` with `--upgrade`, in its own process group so that it
/// outlives this command and a Ctrl-C meant for it. Its output goes to `error_log` if set.
fn start(path: &Path, error_log: Option<&Path>) -> Result<Child, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let path = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("--config")
        .arg(path)
        .arg("--upgrade")
        .stdin(Stdio::null())
        .process_group(0);
    if let Some(log) = error_log {
        let file = open_log(log)?;
        let copy = file.try_clone().map_err(|e| e.to_string())?;
        command.stdout(copy).stderr(file);
    }
    command
        .spawn()
        .map_err(|e| format!("cannot start the new process: {e}"))
}

fn open_log(path: &Path) -> Result<File, String> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open server.error_log {}: {e}", path.display()))
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

fn exited(child: &mut Child) -> bool {
    matches!(child.try_wait(), Ok(Some(status)) if !status.success())
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
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
    match server::check(config.clone()) {
        Ok(()) => Some(config),
        Err(e) => {
            report(path, &e);
            None
        }
    }
}

/// Prints a start-up error: errors that carry their `FILE:LINE:COLUMN` as they are, others
/// after the configuration file's name.
pub fn report(path: &Path, e: &BuildError) {
    if e.is_located() {
        eprintln!("{e}");
    } else {
        eprintln!("{}: {e}", path.display());
    }
}

/// The pid of the weir that runs with this pid file.
fn running(pid_file: &Path) -> Result<i32, String> {
    let pid = pid_in(pid_file).ok_or_else(|| {
        format!(
            "no pid in {}; is weir running with this configuration?",
            pid_file.display()
        )
    })?;
    // A stale pid file may name another program now, which a signal would end.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let name = exe.file_name().unwrap_or_default().to_string_lossy();
    if name.starts_with("weir") {
        Ok(pid)
    } else {
        Err(format!(
            "pid {pid} from {} is not a running weir; is weir running with this configuration?",
            pid_file.display()
        ))
    }
}

/// Whether `pid` runs the very file this process runs (same device and inode; a replaced
/// binary keeps running from its old inode).
fn same_binary(pid: i32) -> bool {
    let theirs = std::fs::metadata(format!("/proc/{pid}/exe"));
    let ours = std::fs::metadata("/proc/self/exe");
    match (theirs, ours) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        // Another user's process: nothing to compare, so reload as asked.
        _ => true,
    }
}

fn pid_in(pid_file: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    text.trim().parse().ok().filter(|pid| *pid > 1)
}

fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
}

fn signal(pid: i32, signal: Signal) -> Result<i32, String> {
    kill(Pid::from_raw(pid), signal)
        .map(|()| pid)
        .map_err(|e| format!("cannot signal weir (pid {pid}): {e}"))
}
