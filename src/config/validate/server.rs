//! Validation of the process-wide sections: `server:`, `admin:`, `access_log:` and
//! `resolver:`.

use super::super::report::{join_index, Report};
use super::super::schema::*;
use super::super::*;
use super::values::{beside, cidrs, duration, duration_or_zero};

pub(super) fn access_log(file: &Path, raw: &RawAccessLog, report: &mut Report) -> AccessLog {
    if raw.queue == Some(0) {
        report.value("access_log.queue", "must be at least 1 (lines)");
    }
    AccessLog {
        format: raw.format,
        path: raw
            .path
            .as_deref()
            .filter(|p| *p != "stdout")
            .map(|p| beside(file, p)),
        queue: raw.queue.unwrap_or(DEFAULT_ACCESS_LOG_QUEUE).max(1),
    }
}

pub(super) fn admin(raw: &RawAdmin, report: &mut Report) -> Option<Admin> {
    let address = match raw.address.as_deref() {
        None => SocketAddr::from(([127, 0, 0, 1], DEFAULT_ADMIN_PORT)),
        Some(text) => match text.parse() {
            Ok(address) => address,
            Err(_) => {
                report.value(
                    "admin.address",
                    format!("`{text}` is not an ip:port, e.g. 127.0.0.1:9901"),
                );
                return None;
            }
        },
    };
    let token = raw.token.clone().filter(|t| !t.is_empty());
    if token.is_none() && !address.ip().is_loopback() {
        report.value(
            "admin.address",
            format!(
                "{address} is reachable from other machines, so the admin listener needs a \
                 `token`"
            ),
        );
    }
    Some(Admin {
        address,
        token,
        persist: raw.persist,
        allow: cidrs(&raw.allow, "admin.allow", report),
    })
}

pub(super) fn resolver(raw: &[Option<String>], report: &mut Report) -> Vec<SocketAddr> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.as_ref()?)))
        .filter_map(|(i, s)| {
            let parsed = s.parse::<SocketAddr>().or_else(|_| {
                s.parse::<std::net::IpAddr>()
                    .map(|ip| SocketAddr::new(ip, 53))
            });
            if parsed.is_err() {
                report.value(
                    &join_index("resolver", i),
                    format!("`{s}` is not a DNS server address, e.g. 10.0.0.10 or 127.0.0.1:5353"),
                );
            }
            parsed.ok()
        })
        .collect()
}

pub(super) fn server(file: &Path, raw: &RawServer, report: &mut Report) -> Server {
    let threads = match raw.threads {
        Some(0) => {
            report.value("server.threads", "must be at least 1");
            1
        }
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    if let Some(user) = &raw.user {
        if !matches!(nix::unistd::User::from_name(user), Ok(Some(_))) {
            report.value(
                "server.user",
                format!("there is no user `{user}` on this machine"),
            );
        }
    }
    if let Some(group) = &raw.group {
        if !matches!(nix::unistd::Group::from_name(group), Ok(Some(_))) {
            report.value(
                "server.group",
                format!("there is no group `{group}` on this machine"),
            );
        }
    }
    let upgrade_sock = beside(
        file,
        raw.upgrade_sock.as_deref().unwrap_or(DEFAULT_UPGRADE_SOCK),
    );
    upgrade_socket(&upgrade_sock, report);
    Server {
        threads,
        pid_file: beside(file, raw.pid_file.as_deref().unwrap_or(DEFAULT_PID_FILE)),
        upgrade_sock,
        error_log: raw.error_log.as_deref().map(|p| beside(file, p)),
        user: raw.user.clone(),
        group: raw.group.clone(),
        grace_period: duration_or_zero(
            raw.grace_period.as_deref(),
            "server.grace_period",
            Duration::ZERO,
            report,
        ),
        graceful_shutdown_timeout: duration(
            raw.graceful_shutdown_timeout.as_deref(),
            "server.graceful_shutdown_timeout",
            DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
            report,
        ),
        daemon: raw.daemon,
        log_level: raw.log_level,
    }
}

/// A Unix socket path must fit `sun_path` (108 bytes with its NUL), or the new process of
/// an upgrade could not wait on it. (Its folder may appear later, as systemd's
/// RuntimeDirectory does; `weir upgrade` checks it.)
fn upgrade_socket(path: &Path, report: &mut Report) {
    const SUN_PATH: usize = 107;
    let length = path.as_os_str().len();
    if length > SUN_PATH {
        report.value(
            "server.upgrade_sock",
            format!(
                "{} is {length} bytes long; a Unix socket path has at most {SUN_PATH}",
                path.display()
            ),
        );
    }
}
