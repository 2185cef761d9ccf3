//! The commands of conf/weir.service, run as systemd runs them, against a test file: the
//! check, the daemon (`--daemon`: the parent returns once the child has started, with the pid
//! file written; the daemon logs to the error log), a reload, and a graceful stop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The `KEY=` command lines of the unit, with the installed paths replaced by the test's.
fn unit_command(key: &str, config: &Path) -> Command {
    let unit = std::fs::read_to_string("conf/weir.service").unwrap();
    let line = unit
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("conf/weir.service has {key}="));
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("/usr/local/bin/weir"));
    let mut command = Command::new(weir_bin());
    for word in words {
        if word == "/etc/weir/weir.yaml" {
            command.arg(config);
        } else {
            command.arg(word);
        }
    }
    command
}

#[test]
fn the_systemd_unit_commands_start_reload_and_stop_a_daemon() {
    let a = Instance::start("a");
    let port = free_port();
    let yaml = format!(
        "server: {{ pid_file: weir.pid, upgrade_sock: upgrade.sock, error_log: weir.log }}\n\
         access_log: {{ path: access.log }}\n\
         listeners: [{{ name: web, address: \"127.0.0.1:{port}\" }}]\n\
         routes: [{{ name: all, upstream: app }}]\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: a }}]\n",
        a.address()
    );
    let (dir, config) = write_config(&yaml);
    let (pid_file, log) = (dir.path().join("weir.pid"), dir.path().join("weir.log"));

    succeed(&mut unit_command("ExecStartPre", &config));
    // The parent returns once the daemon has started, as Type=forking expects.
    succeed(&mut unit_command("ExecStart", &config));
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    let _daemon = Detached(pid.parse().unwrap());
    wait_listening(_daemon.0, port);
    let url = format!("http://127.0.0.1:{port}/");
    let answer = poll_until(Duration::from_secs(5), || client().get(&url).send().ok());
    assert_eq!(answer.map(|r| served_by(&r)), Some("a".to_string()));

    succeed(&mut unit_command("ExecReload", &config));
    let logged = |part: &str| std::fs::read_to_string(&log).unwrap().contains(part);
    assert!(
        poll_until(Duration::from_secs(5), || logged("reloaded").then_some(())).is_some(),
        "the daemon logs to server.error_log"
    );

    // The access log's writer runs in the daemon, not in the parent that forked it.
    let access_log = dir.path().join("access.log");
    let written = || std::fs::read_to_string(&access_log).unwrap_or_default();
    assert!(
        poll_until(Duration::from_secs(5), || (!written().is_empty())
            .then_some(()))
        .is_some(),
        "the daemon writes its access log"
    );
    // logrotate: move the file away, then postrotate sends the daemon SIGUSR1.
    std::fs::rename(&access_log, dir.path().join("access.log.1")).unwrap();
    signal(pid.parse().unwrap(), Signal::SIGUSR1);
    assert!(
        poll_until(Duration::from_secs(5), || {
            logged("SIGUSR1: reopened the access log").then_some(())
        })
        .is_some(),
        "the daemon reopens its access log on SIGUSR1"
    );
    assert_eq!(
        served_by(&client().get(&url).send().unwrap()),
        "a",
        "and serves on"
    );
    assert!(
        poll_until(Duration::from_secs(5), || (!written().is_empty())
            .then_some(()))
        .is_some(),
        "into a new file"
    );

    signal(pid.parse().unwrap(), Signal::SIGTERM);
    let gone = poll_until(Duration::from_secs(15), || {
        (!Path::new(&format!("/proc/{pid}")).exists()).then_some(())
    });
    assert!(gone.is_some(), "the daemon stops on SIGTERM");
    assert!(!pid_file.exists(), "and removes its pid file");
}
