//! External programs some tests drive (Redis, PostgreSQL, Chromium): a test whose tool is
//! missing says so and is skipped on a developer's machine, and fails under CI, which
//! installs them all (`.ci/run` sets `CI`).

use std::path::Path;

/// Whether every one of `tools` is installed (a program on PATH, or an absolute path that
/// exists). When one is missing: under CI (the `CI` variable is set) the test fails; elsewhere
/// it prints which tool is missing and how to install it, and returns false so the test
/// returns early.
pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    let Some(missing) = tools.iter().find(|tool| !installed(tool)) else {
        return true;
    };
    let reason = format!("{test}: {missing} is not installed (./scripts/setup --test installs it)");
    assert!(std::env::var_os("CI").is_none(), "{reason}");
    eprintln!("skipped: {reason}");
    false
}

fn installed(tool: &str) -> bool {
    if tool.starts_with('/') {
        return Path::new(tool).exists();
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}
