//! Why `weir upgrade` failed, worded for its user: each refusal before the handover ends
//! with the old process keeping on serving; each failure after says what became of it.

use super::{READY_TIMEOUT, TAKEOVER_TIMEOUT};
use crate::cli::reload::RunningError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Why an upgrade failed, and whether the old process still serves.
#[derive(Debug, thiserror::Error)]
pub(super) enum UpgradeError {
    /// The running weir could not be found, or not sent SIGQUIT.
    #[error(transparent)]
    Running(#[from] RunningError),
    /// A check before the handover failed: the old process was left as it was.
    #[error("{reason}; weir (pid {old}) keeps serving")]
    Refused {
        /// The running weir.
        old: i32,
        /// The check that failed.
        #[source]
        reason: Refusal,
    },
    /// The new process could not be started.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The new process died after the old one was sent SIGQUIT.
    #[error(
        "the new process exited while taking over{log}; unless pid {old} had handed its \
         listeners over already, it keeps serving, else start weir again"
    )]
    ExitedTakingOver {
        /// The old weir.
        old: i32,
        /// Where the new process's output went.
        log: LogPlace,
    },
    /// The new process did not listen on every address within [`TAKEOVER_TIMEOUT`].
    #[error(
        "the new process does not listen on every address {}s after SIGQUIT{log}",
        TAKEOVER_TIMEOUT.as_secs()
    )]
    NotListening {
        /// Where the new process's output goes.
        log: LogPlace,
    },
}

/// A check made before the old process is sent SIGQUIT that failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum Refusal {
    /// The new process would run in another context than the old one.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// A listener's address is neither the old process's nor free.
    #[error(transparent)]
    Unbindable(#[from] BindError),
    /// `server.upgrade_sock` sits in a folder that does not exist.
    #[error("the folder of server.upgrade_sock {} does not exist", .0.display())]
    NoSockFolder(PathBuf),
    /// A leftover upgrade socket could not be removed.
    #[error("cannot remove the old {} ({source})", path.display())]
    StaleSock {
        /// `server.upgrade_sock`.
        path: PathBuf,
        /// Why removing it failed.
        source: io::Error,
    },
    /// The new process exited with an error before it waited for the listeners.
    #[error("the new process exited ({status}) before taking over{log}")]
    Exited {
        /// How it exited.
        status: ExitStatus,
        /// Where its output went.
        log: LogPlace,
    },
    /// The new process did not wait on the upgrade socket within [`READY_TIMEOUT`]; it was
    /// killed.
    #[error(
        "the new process was not ready for the listeners within {}s{log}",
        READY_TIMEOUT.as_secs()
    )]
    NotReady {
        /// Where its output went.
        log: LogPlace,
    },
}

/// The new process would run in another context than the old one.
#[derive(Debug, thiserror::Error)]
pub(super) enum ContextError {
    /// The old process runs as another user.
    #[error(
        "weir (pid {old}) runs as uid {theirs} and this command as uid {ours}: run it as the \
         same user"
    )]
    OtherUser {
        /// The old weir.
        old: i32,
        /// Its uid.
        theirs: String,
        /// This command's uid.
        ours: String,
    },
    /// The old process is a systemd service's main process, and this command runs outside.
    #[error(
        "weir (pid {old}) is the main process of the systemd service {unit}, and a process \
         started from here would run outside it: install the binary, then `systemctl reload \
         {unit}`"
    )]
    OutsideService {
        /// The old weir.
        old: i32,
        /// The service it is the main process of.
        unit: String,
    },
}

/// A listener's address that the new process could not bind.
#[derive(Debug, thiserror::Error)]
#[error(
    "listener `{listener}` cannot bind {address} ({source}), which the new process would find \
     only after the old one handed over"
)]
pub(super) struct BindError {
    /// The listener's name.
    pub(super) listener: String,
    /// Its address.
    pub(super) address: SocketAddr,
    /// Why binding failed.
    pub(super) source: io::Error,
}

/// Why the new process could not be started.
#[derive(Debug, thiserror::Error)]
pub(super) enum StartError {
    /// The path of this binary is unknown.
    #[error("cannot find this binary: {0}")]
    CurrentExe(#[source] io::Error),
    /// The configuration file's path could not be made absolute.
    #[error("{}: {source}", path.display())]
    ConfigPath {
        /// The path as given.
        path: PathBuf,
        /// Why it could not be made absolute.
        source: io::Error,
    },
    /// `server.error_log` could not be opened.
    #[error("server.error_log: cannot open {}: {source}", path.display())]
    ErrorLog {
        /// `server.error_log`.
        path: PathBuf,
        /// Why opening it failed.
        source: io::Error,
    },
    /// The log file could not be shared between standard output and error.
    #[error(transparent)]
    ShareLog(io::Error),
    /// The process could not be spawned.
    #[error("cannot start the new process: {0}")]
    Spawn(#[source] io::Error),
}

/// Where the new process's output goes; shown after messages about it.
#[derive(Debug, Clone)]
pub(super) enum LogPlace {
    /// `server.error_log`.
    File(PathBuf),
    /// Where the old process's standard error goes.
    Old(i32),
    /// This command's output.
    Ours,
}

impl fmt::Display for LogPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(file) => write!(f, " (its log: {})", file.display()),
            Self::Old(pid) => write!(f, " (its log goes where pid {pid}'s goes)"),
            Self::Ours => f.write_str(" (its log is this command's output)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scripts and the tests of the running binary match these words: they are kept as they
    /// were when the errors were strings.
    #[test]
    fn messages_keep_their_words() {
        let refused = |reason| UpgradeError::Refused { old: 7, reason };
        let cases = [
            (
                refused(Refusal::NoSockFolder("/run/weir/up.sock".into())),
                "the folder of server.upgrade_sock /run/weir/up.sock does not exist; weir \
                 (pid 7) keeps serving",
            ),
            (
                refused(Refusal::NotReady {
                    log: LogPlace::File("/var/log/weir.log".into()),
                }),
                "the new process was not ready for the listeners within 60s (its log: \
                 /var/log/weir.log); weir (pid 7) keeps serving",
            ),
            (
                refused(
                    ContextError::OtherUser {
                        old: 7,
                        theirs: "0".into(),
                        ours: "1000".into(),
                    }
                    .into(),
                ),
                "weir (pid 7) runs as uid 0 and this command as uid 1000: run it as the same \
                 user; weir (pid 7) keeps serving",
            ),
            (
                UpgradeError::ExitedTakingOver {
                    old: 7,
                    log: LogPlace::Old(7),
                },
                "the new process exited while taking over (its log goes where pid 7's goes); \
                 unless pid 7 had handed its listeners over already, it keeps serving, else \
                 start weir again",
            ),
            (
                UpgradeError::NotListening {
                    log: LogPlace::Ours,
                },
                "the new process does not listen on every address 40s after SIGQUIT (its log \
                 is this command's output)",
            ),
        ];
        for (error, words) in cases {
            assert_eq!(error.to_string(), words);
        }
    }
}
