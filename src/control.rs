//! Commands that drive a running weir, found through its `server.pid_file`: `weir reload`
//! (SIGHUP) and `weir upgrade` (a new process takes the listeners over, the old one drains).
//! Each checks the file first, as `weir --test` does, so a bad file never reaches the server.

use crate::config::{self, Config};
use crate::server::{self, BuildError};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::fs::{File, OpenOptions};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

/// Time a new process gets to load its configuration and wait for the sockets.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Time from SIGQUIT to the new process holding the listeners.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(20);
/// Time the new process gets to bind listeners the file adds (Pingora retries a busy
/// address for 30 s).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(40);
/// How often progress is looked at.
const POLL: Duration = Duration::from_millis(20);

/// `weir reload`: checks the file, then sends SIGHUP to the running weir. When the file the
/// running weir was started from has been replaced by this binary (a new one was installed
/// at the same path), it upgrades to it instead, as HAProxy's reload re-executes its binary:
/// so `systemctl reload` after a package upgrade swaps the binary without a lost connection,
/// and the new process starts inside the service (its cgroup, user and environment).
pub fn reload(path: &Path) -> ExitCode {
    let Some(config) = checked(path) else {
        return ExitCode::FAILURE;
    };
    let running = running(&config.server.pid_file);
    if let Ok(pid) = running {
        if installed_over(pid) {
            println!(
                "weir reload: a new binary was installed over the one pid {pid} runs: upgrading"
            );
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
    let keeps = format!("weir (pid {old}) keeps serving");
    same_context(old).map_err(|e| format!("{e}; {keeps}"))?;
    let sock = &process.upgrade_sock;
    // The new process creates the socket when it is ready for the listeners, and removes it
    // once it has them; a stale one would look like readiness.
    match std::fs::remove_file(sock) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(format!(
                "cannot remove the old {} ({e}); {keeps}",
                sock.display()
            ))
        }
        _ => {}
    }
    let (mut child, log) = start(path, process.error_log.as_deref(), old)?;
    wait(READY_TIMEOUT, || {
        if is_socket(sock) {
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
    let new = wait(TAKEOVER_TIMEOUT, || {
        if exited(&mut child) {
            return Some(Err(format!(
                "the new process exited while taking over{log}; unless pid {old} had handed \
                 its listeners over already, it keeps serving"
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
    })?;
    // Listeners the file adds are bound only now; one that cannot be ends the process.
    wait(LISTEN_TIMEOUT, || {
        if exited(&mut child) {
            return Some(Err(format!(
                "the new process took the listeners over, then exited: some listener could \
                 not be bound{log}; start weir again"
            )));
        }
        let listening = config.listeners.iter().all(|l| accepts(l.address));
        listening.then_some(Ok(()))
    })
    .unwrap_or_else(|| {
        Err(format!(
            "the new process does not accept on every listener after {}s{log}",
            LISTEN_TIMEOUT.as_secs()
        ))
    })?;
    Ok((old, new))
}

/// Whether something accepts connections on `address` (the loopback address of its family
/// for a wildcard one).
fn accepts(address: SocketAddr) -> bool {
    let mut address = address;
    if address.ip().is_unspecified() {
        address.set_ip(match address {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
        });
    }
    TcpStream::connect_timeout(&address, POLL * 10).is_ok()
}

fn is_socket(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// Refuses to start the new process in another context than the old one's: under another
/// user, or outside the systemd service the old one runs in (systemd would lose it).
fn same_context(old: i32) -> Result<(), String> {
    let owner = |pid: &str| std::fs::metadata(format!("/proc/{pid}")).map(|m| m.uid());
    if let (Ok(theirs), Ok(ours)) = (owner(&old.to_string()), owner("self")) {
        if theirs != ours {
            return Err(format!(
                "weir (pid {old}) runs as uid {theirs} and this command as uid {ours}; \
                 run it as the same user"
            ));
        }
    }
    let cgroup = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/cgroup"));
    if let (Ok(theirs), Ok(ours)) = (cgroup(&old.to_string()), cgroup("self")) {
        let service = theirs
            .trim()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if theirs != ours && service.ends_with(".service") {
            return Err(format!(
                "weir (pid {old}) runs in the systemd service {service}, and a process started \
                 from here would run outside it: install the binary, then \
                 `systemctl reload {service}`"
            ));
        }
    }
    Ok(())
}

/// Starts this binary on `path` with `--upgrade`, in its own process group so that it
/// outlives this command and a Ctrl-C meant for it. Its output goes to `error_log` if set,
/// else where the old process's goes (a file, a terminal, a pipe), else where this command's
/// goes. Also says where its log is, for messages.
fn start(path: &Path, error_log: Option<&Path>, old: i32) -> Result<(Child, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
    let path = std::path::absolute(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut command = Command::new(exe);
    command
        .arg("--config")
        .arg(path)
        .arg("--upgrade")
        .stdin(Stdio::null())
        .process_group(0);
    let (output, log) = match error_log {
        Some(file) => (
            Some(open_log(file)?),
            format!(" (its log: {})", file.display()),
        ),
        None => (
            open_log(Path::new(&format!("/proc/{old}/fd/2"))).ok(),
            format!(" (its log goes where pid {old}'s goes)"),
        ),
    };
    if let Some(file) = output {
        let copy = file.try_clone().map_err(|e| e.to_string())?;
        command.stdout(copy).stderr(file);
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start the new process: {e}"))?;
    Ok((child, log))
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

/// Whether this binary now sits at the path `pid` was started from, in place of the file it
/// runs (a replaced binary keeps running from its old inode, which /proc shows as deleted).
fn installed_over(pid: i32) -> bool {
    let Ok(theirs) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
        return false;
    };
    let theirs = theirs.to_string_lossy();
    let path = Path::new(theirs.strip_suffix(" (deleted)").unwrap_or(&theirs));
    let ours = std::fs::canonicalize("/proc/self/exe");
    let inode = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    ours.is_ok_and(|ours| {
        ours == path && inode(&ours) != inode(Path::new(&format!("/proc/{pid}/exe")))
    })
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
