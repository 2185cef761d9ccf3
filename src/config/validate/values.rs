//! Values written as text that several sections share: durations and file paths.

use super::super::report::Report;
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
