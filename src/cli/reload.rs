//! `weir reload`, and finding the running weir through its `server.pid_file`, which
//! `weir upgrade` shares.

use super::{checked, upgrade};
use crate::procfs;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `weir reload`: checks the file, then sends SIGHUP to the running weir. When the file the
/// running weir was started from has been replaced by this binary (a new one was installed
/// at the same path), it upgrades to it instead, as HAProxy's reload re-executes its binary:
/// so `systemctl reload` after a package upgrade swaps the binary without a lost connection,
/// and the new process starts inside the service (its cgroup, user and environment).
pub(super) fn reload(path: &Path) -> ExitCode {
    let Some(config) = checked(path) else {
        return ExitCode::FAILURE;
    };
    let running = running(&config.server.pid_file);
    if let Ok(pid) = running {
        if installed_over(pid) {
            println!(
                "weir reload: a new binary was installed over the one pid {pid} runs: upgrading"
            );
            return upgrade::upgrade_checked(path, &config);
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

/// Why the running weir could not be found through its pid file, or reached there.
#[derive(Debug, thiserror::Error)]
pub(super) enum RunningError {
    /// The pid file is missing, empty or not a pid.
    #[error("no pid in {}; is weir running with this configuration?", .0.display())]
    NoPid(PathBuf),
    /// The pid is stale: no process runs it, or another program does now.
    #[error(
        "pid {pid} from {} is not a running weir; is weir running with this configuration?",
        pid_file.display()
    )]
    NotWeir {
        /// The pid the file holds.
        pid: i32,
        /// The pid file.
        pid_file: PathBuf,
    },
    /// The signal could not be sent (another user's process, or it exited meanwhile).
    #[error("cannot signal weir (pid {pid}): {source}")]
    Signal {
        /// The running weir.
        pid: i32,
        /// Why `kill` failed.
        source: nix::Error,
    },
}

/// The pid of the weir that runs with this pid file.
pub(super) fn running(pid_file: &Path) -> Result<i32, RunningError> {
    let pid =
        procfs::read_pid(pid_file).ok_or_else(|| RunningError::NoPid(pid_file.to_path_buf()))?;
    // A stale pid file may name another program now, which a signal would end.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let name = exe.file_name().unwrap_or_default().to_string_lossy();
    if name.starts_with("weir") {
        Ok(pid)
    } else {
        Err(RunningError::NotWeir {
            pid,
            pid_file: pid_file.to_path_buf(),
        })
    }
}

/// Whether this binary now sits at the path `pid` was started from, in place of the file it
/// runs. A replaced binary keeps running from its old inode (/proc shows it as deleted); a
/// repointed symlink leaves the old file in place, so the path it was started by counts too.
fn installed_over(pid: i32) -> bool {
    let inode = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let (Some(running), Ok(ours)) = (
        inode(Path::new(&format!("/proc/{pid}/exe"))),
        std::fs::canonicalize("/proc/self/exe"),
    ) else {
        return false;
    };
    if inode(&ours) == Some(running) {
        return false;
    }
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let exe = exe.to_string_lossy();
    let started_by = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = started_by.split(|b| *b == 0).next().unwrap_or_default();
    let argv0 = PathBuf::from(String::from_utf8_lossy(argv0).into_owned());
    let paths = [
        PathBuf::from(exe.strip_suffix(" (deleted)").unwrap_or(&exe)),
        argv0,
    ];
    paths
        .iter()
        .filter(|p| p.is_absolute())
        .any(|p| std::fs::canonicalize(p).is_ok_and(|p| p == ours))
}

/// Sends `signal` to the running weir `pid`, giving `pid` back.
pub(super) fn signal(pid: i32, signal: Signal) -> Result<i32, RunningError> {
    kill(Pid::from_raw(pid), signal)
        .map(|()| pid)
        .map_err(|source| RunningError::Signal { pid, source })
}
