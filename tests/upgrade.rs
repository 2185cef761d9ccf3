//! Binary upgrade (`weir upgrade`) under a continuous load of keep-alive and new-connection
//! clients: the new process takes the listeners over without a failed request or a refused
//! connection, a long request finishes on the old one, and a failed upgrade changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

/// The upgrade socket and the log of the new process are in the test's folder.
fn config(app: &Instance, slow: &Instance) -> String {
    let server = "upgrade_sock: weir-upgrade.sock, error_log: new-weir.log, \
                  graceful_shutdown_timeout: 10s";
    slow_route(app, slow, server)
}

/// `weir upgrade --config FILE`.
fn weir_upgrade(weir: &Weir) -> Output {
    Command::new(weir_bin())
        .args(["upgrade", "--config"])
        .arg(weir.config())
        .output()
        .unwrap()
}

/// The pid in the test's pid file.
fn pid_file(weir: &Weir) -> u32 {
    let text = std::fs::read_to_string(weir.dir.path().join("weir.pid")).unwrap();
    text.trim().parse().unwrap()
}

/// Upgrades a weir under load with `command` (given the running weir and its new file, which
/// moves `/` to another instance and adds a listener): no request fails, a long request
/// finishes on the old process, the new process serves the new file and the old one exits.
/// Returns the new process's pid and what `command` printed.
fn upgrade_under_load(binary: &Path, command: impl FnOnce(&Weir) -> Output) -> (Detached, String) {
    let (a, b) = (Instance::start("a"), Instance::start("b"));
    // Longer than the 5 s the old process keeps accepting after the hand-over, so that the
    // request is still in flight when it drains.
    let slow = Instance::start_slow("slow", Duration::from_secs(7));
    let mut weir = Weir::start_from(binary, &config(&a, &slow), "info");
    let old = weir.pid;
    assert_eq!(pid_file(&weir), old, "weir writes its pid at start");
    let load = Load::mixed(weir.url("/"), 20);
    load.wait_more(200);

    let long_url = weir.url("/slow");
    let long = std::thread::spawn(move || {
        let r = client().get(long_url).send().unwrap();
        (r.status().as_u16(), served_by(&r))
    });
    assert!(
        poll_until(Duration::from_secs(5), || (connections_to(slow.port()) > 0)
            .then_some(()))
        .is_some(),
        "the long request reached the slow instance"
    );

    // `b` answering shows the new process has taken over; so does the added listener.
    let second = "  - { name: second, address: \"127.0.0.1:{port2}\" }\n";
    let new_yaml = config(&b, &slow).replace("routes:", &format!("{second}routes:"));
    weir.rewrite(&new_yaml);
    let out = command(&weir);
    let new = pid_file(&weir);
    let started = Detached(new);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(new, old);
    assert!(
        stdout.contains(&format!("weir (pid {new}) now serves")),
        "{stdout}"
    );
    let by_new = poll_until(Duration::from_secs(10), || {
        let r = client().get(weir.url("/")).send().ok()?;
        (served_by(&r) == "b").then_some(())
    });
    assert!(
        by_new.is_some(),
        "the new process serves the new configuration"
    );
    wait_listening(new, weir.port2);
    let second_url = format!("http://127.0.0.1:{}/", weir.port2);
    assert_eq!(client().get(second_url).send().unwrap().status(), 200);

    assert_eq!(long.join().unwrap(), (200, "slow".to_string()));
    let status = weir.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "the old process exits 0 after draining: {status:?}"
    );
    assert!(weir
        .wait_log(&["handing the listeners over"], Duration::ZERO)
        .is_some());
    assert!(weir
        .wait_log(&["listeners closed; draining"], Duration::ZERO)
        .is_some());
    assert_eq!(
        weir.log_count("draining 0 in-flight"),
        0,
        "the long request was in flight when the old process drained"
    );

    // With the old process gone, everything is served by the new one.
    load.wait_more(200);
    let tally = load.finish();
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);
    assert!(tally.by_instance["a"] > 0 && tally.by_instance["b"] > 0);
    assert_eq!(
        pid_file(&weir),
        new,
        "the old process left the new pid file alone"
    );
    (started, stdout)
}

#[test]
fn upgrade_under_load_fails_no_request_and_the_old_process_finishes_a_long_one() {
    upgrade_under_load(Path::new(weir_bin()), weir_upgrade);
}

#[test]
fn reload_after_a_new_binary_is_installed_upgrades_to_it() {
    let installed = tempfile::tempdir().unwrap();
    let binary = installed.path().join("weir");
    std::fs::copy(weir_bin(), &binary).unwrap();
    let (new, stdout) = upgrade_under_load(&binary, |weir| {
        // Installed as a package manager does: written aside, then renamed over.
        let fresh = installed.path().join("weir.new");
        std::fs::copy(weir_bin(), &fresh).unwrap();
        std::fs::rename(&fresh, &binary).unwrap();
        Command::new(&binary)
            .args(["reload", "--config"])
            .arg(weir.config())
            .output()
            .unwrap()
    });
    assert!(
        stdout.contains("a new binary was installed over"),
        "{stdout}"
    );
    let exe = std::fs::read_link(format!("/proc/{}/exe", new.0)).unwrap();
    assert_eq!(exe, binary, "the new process runs the new binary");
}

#[test]
fn an_https_listener_upgrades_under_http2_keep_alive_and_new_tls_connections() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("site", &["site.test"], &[]);
    let a = Instance::start("a");
    let yaml = format!(
        "server: {{ pid_file: weir.pid, upgrade_sock: weir-upgrade.sock, error_log: new.log }}\n\
         listeners:\n  - name: secure\n    address: \"127.0.0.1:{{port}}\"\n    \
         protocol: https\n    tls:\n      certificates: [{{ cert: \"{}\", key: \"{}\" }}]\n\
         routes: [{{ name: all, upstream: app }}]\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: a }}]\n",
        cert.display(),
        key.display(),
        a.address()
    );
    let mut weir = Weir::start_logging(&yaml, "info");
    let url = format!("https://site.test:{}/", weir.port);
    let first = ca.builder(&["site.test"]).build().unwrap().get(&url).send();
    assert_eq!(first.unwrap().version(), reqwest::Version::HTTP_2);
    // Half the clients keep one HTTP/2 connection, half make a TLS handshake per request
    // and speak HTTP/1.1 on it. (A fresh HTTP/2 connection that the old process accepts in
    // its last milliseconds may get Pingora's GOAWAY before its first stream; RFC 9113
    // §8.7 makes that request safe to retry, and browsers do, but this test's client
    // would count it as failed.)
    let load = Load::start_with(url, 20, |i| {
        let builder = ca.builder(&["site.test"]).timeout(Duration::from_secs(10));
        let builder = if i % 2 == 0 {
            builder
        } else {
            builder.http1_only().pool_max_idle_per_host(0)
        };
        builder.build().unwrap()
    });
    load.wait_more(200);

    let out = weir_upgrade(&weir);
    let _new = Detached(pid_file(&weir));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = weir.wait_exit(Duration::from_secs(20));
    assert!(
        status.is_some_and(|s| s.success()),
        "old process: {status:?}"
    );
    load.wait_more(200);
    let tally = load.finish();
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);
}

#[test]
fn a_failed_upgrade_leaves_the_old_process_serving() {
    let a = Instance::start("a");
    let slow = Instance::start_slow("slow", Duration::from_secs(3));
    let good = config(&a, &slow);
    let mut weir = Weir::start_logging(&good, "info");
    let load = Load::mixed(weir.url("/"), 20);
    load.wait_more(100);

    weir.rewrite(&good.replace("targets: [{ address", "targets: [{ adress"));
    let out = weir_upgrade(&weir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("weir.yaml:") && stderr.contains("unknown key `adress`"),
        "the reason, with its location: {stderr}"
    );
    assert_eq!(pid_file(&weir), weir.pid, "no new process took over");

    // A listener the new file adds on an address another program holds: refused up front,
    // as the new process would find out only after the hand-over.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    let added = format!("  - {{ name: second, address: \"{address}\" }}\nroutes:");
    weir.rewrite(&good.replace("routes:", &added));
    let out = weir_upgrade(&weir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let reason = format!("listener `second` cannot bind {address}");
    assert!(stderr.contains(&reason), "{stderr}");
    assert!(stderr.contains(&format!("weir (pid {}) keeps serving", weir.pid)));
    assert_eq!(pid_file(&weir), weir.pid, "no new process took over");

    load.wait_more(100);
    assert!(
        weir.wait_exit(Duration::ZERO).is_none(),
        "the old process runs"
    );
    let tally = load.finish();
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);
}

#[test]
fn upgrade_without_a_running_weir_says_so() {
    let a = Instance::start("a");
    let (dir, path) = write_config(&config(&a, &a).replace("{port}", &free_port().to_string()));
    let upgrade = || {
        let out = Command::new(weir_bin())
            .args(["upgrade", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let stderr = upgrade();
    assert!(stderr.contains("no pid in"), "{stderr}");
    // A stale pid file naming another program: that program is not signalled.
    std::fs::write(
        dir.path().join("weir.pid"),
        format!("{}\n", std::process::id()),
    )
    .unwrap();
    let stderr = upgrade();
    assert!(stderr.contains("is not a running weir"), "{stderr}");
}
