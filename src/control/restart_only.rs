//! Settings only a new process can apply (`weir upgrade`): the sockets of the listeners, and
//! the server, access_log and admin sections. A reload or an edit that changes them keeps
//! their running value, applies everything else, and says so in the log.

use crate::config::{Config, Listener};

/// Gives `config` the running value of every setting that needs a new process, warning
/// once for each kind that changed; `file` names the configuration in the warnings.
pub(super) fn keep_running(file: &dyn std::fmt::Display, config: &mut Config, running: &Config) {
    if sockets(&config.listeners) != sockets(&running.listeners) {
        log::warn!(
            "reload: {file}: listeners were added, removed or changed address or protocol; \
             that needs `weir upgrade`. The running sockets stay; everything else is applied"
        );
        // Each running listener takes its new settings when its socket is unchanged.
        config.listeners = running
            .listeners
            .iter()
            .map(|old| {
                let same = |l: &&Listener| socket(l) == socket(old);
                config.listeners.iter().find(same).unwrap_or(old).clone()
            })
            .collect();
    }
    keep(
        file,
        "the server section",
        &mut config.server,
        &running.server,
    );
    keep(
        file,
        "the access_log section",
        &mut config.access_log,
        &running.access_log,
    );
    keep(file, "the admin section", &mut config.admin, &running.admin);
}

/// What identifies a listener's socket: binding a new one needs a new process.
fn socket(l: &Listener) -> (&str, std::net::SocketAddr, bool, bool) {
    let tls = l.protocol.tls().is_some();
    (l.name.as_str(), l.address, tls, l.protocol.is_http())
}

/// The sockets of a listener list.
fn sockets(listeners: &[Listener]) -> Vec<(&str, std::net::SocketAddr, bool, bool)> {
    listeners.iter().map(socket).collect()
}

/// Settings a running process keeps until a new one starts (`weir upgrade`): when the file
/// changes them, the running value stays, and the log says so. (pid_file and upgrade_sock
/// must even stay the same across the upgrade: both processes use them.)
fn keep<T: PartialEq + Clone>(file: &dyn std::fmt::Display, what: &str, new: &mut T, running: &T) {
    if new != running {
        log::warn!(
            "reload: {file}: {what} changed; it applies with `weir upgrade` (pid_file and \
             upgrade_sock with a restart). Everything else is applied"
        );
        *new = running.clone();
    }
}
