//! Values written as text that several sections share: durations and file paths.

use super::super::report::{join_index, Report};
use ipnet::IpNet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A path from the file `file`: relative ones are taken from its folder, as nginx takes
/// them from its prefix, so the same file works from any working directory. The result is
/// absolute, so that processes started elsewhere (`weir upgrade`, `weir reload`) agree on it.
pub(super) fn beside(file: &Path, path: &str) -> PathBuf {
    let file = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    file.parent().unwrap_or(Path::new("/")).join(path)
}

pub(super) fn duration(
    raw: Option<&str>,
    path: &str,
    default: Duration,
    report: &mut Report,
) -> Duration {
    let d = duration_or_zero(raw, path, default, report);
    if d.is_zero() {
        report.value(path, "must be longer than zero");
        return default;
    }
    d
}

/// A duration setting where `0s` means "none".
pub(super) fn duration_or_zero(
    raw: Option<&str>,
    path: &str,
    default: Duration,
    report: &mut Report,
) -> Duration {
    let Some(raw) = raw else { return default };
    match humantime::parse_duration(raw) {
        Ok(d) => d,
        Err(_) => {
            report.value(
                path,
                format!(
                    "`{raw}` is not a duration; write a number and a unit, e.g. 500ms, 10s, 2m"
                ),
            );
            default
        }
    }
}

/// A byte size at `path` (`512`, `64k`, `10m`, `1g`, in powers of 1024 as nginx reads
/// them); `None`, reported, when it does not parse or is zero.
pub(super) fn size(raw: &str, path: &str, report: &mut Report) -> Option<u64> {
    let parsed = parse_size::Config::new()
        .with_binary()
        .parse_size(raw.trim());
    match parsed {
        Ok(0) => report.value(path, "must be larger than zero"),
        Ok(bytes) => return Some(bytes),
        Err(_) => report.value(
            path,
            format!(
                "`{raw}` is not a size; write bytes or a number and a unit, e.g. 512, 64k, 10m, 1g"
            ),
        ),
    }
    None
}

/// A list of CIDRs (a bare address is one address) at `path`, each bad one reported; the
/// host bits of a network written with them are dropped, as `10.1.2.3/8` means `10.0.0.0/8`.
pub(super) fn cidrs(raw: &[String], path: &str, report: &mut Report) -> Vec<IpNet> {
    raw.iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let parsed = c
                .parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from));
            match parsed {
                Ok(net) => Some(net.trunc()),
                Err(_) => {
                    report.value(
                        &join_index(path, i),
                        format!(
                            "`{c}` is not a CIDR or IP address, e.g. 10.0.0.0/8, 192.168.1.7 or fd00::/8"
                        ),
                    );
                    None
                }
            }
        })
        .collect()
}
