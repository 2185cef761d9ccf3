//! Stopping weir: SIGTERM keeps accepting for `grace_period`, closes the listeners, lets
//! in-flight requests finish up to `graceful_shutdown_timeout` and exits 0 as soon as they
//! are done; SIGINT exits at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::time::Duration;

/// Starts `n` requests to `/slow`, half on a keep-alive client that has served a request
/// before, and waits until weir holds all of them open to the instance.
fn slow_requests(weir: &Weir, slow: &Instance, n: usize) -> Vec<std::thread::JoinHandle<String>> {
    let requests = (0..n)
        .map(|i| {
            let (url, warm) = (weir.url("/slow"), weir.url("/"));
            std::thread::spawn(move || {
                let c = if i % 2 == 0 {
                    let c = client();
                    c.get(warm).send().unwrap();
                    c
                } else {
                    reqwest::blocking::Client::builder()
                        .pool_max_idle_per_host(0)
                        .build()
                        .unwrap()
                };
                match c.get(url).send() {
                    Ok(r) => format!("{} {}", r.status().as_u16(), served_by(&r)),
                    Err(e) => format!("error: {e}"),
                }
            })
        })
        .collect();
    let held = poll_until(Duration::from_secs(5), || {
        (connections_to(slow.port()) >= n).then_some(())
    });
    assert!(held.is_some(), "{n} slow requests reached the instance");
    requests
}

/// A request on a new connection: its status, or "refused".
fn fresh_request(weir: &Weir) -> String {
    let c = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    match c.get(weir.url("/")).send() {
        Ok(r) => r.status().as_u16().to_string(),
        Err(e) if e.is_connect() => "refused".to_string(),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn sigterm_finishes_in_flight_requests_and_refuses_only_once_the_listeners_close() {
    let app = Instance::start("app");
    let slow = Instance::start_slow("slow", Duration::from_secs(2));
    let server = "grace_period: 3s, graceful_shutdown_timeout: 10s";
    let mut weir = Weir::start_logging(&slow_route(&app, &slow, server), "info");
    let pid_file = weir.dir.path().join("weir.pid");
    let load = Load::mixed(weir.url("/"), 20);
    load.wait_more(200);
    let in_flight = slow_requests(&weir, &slow, 4);

    weir.signal(Signal::SIGTERM);
    assert!(weir
        .wait_log(&["SIGTERM: accepting for 3s more"], Duration::from_secs(5))
        .is_some());
    // Within the grace period the listeners still accept, and every request is served.
    assert_eq!(fresh_request(&weir), "200");
    let tally = load.finish();
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);

    // Until the listeners close, every fresh connection is served; then they refuse.
    let mut answers = vec![];
    let refused = poll_until(Duration::from_secs(10), || {
        answers.push(fresh_request(&weir));
        (answers.last().map(String::as_str) == Some("refused")).then_some(())
    });
    assert!(refused.is_some(), "the listeners close: {answers:?}");
    answers.pop();
    assert!(
        answers.iter().all(|a| a == "200"),
        "served until then: {answers:?}"
    );
    assert!(weir
        .wait_log(&["listeners closed; draining"], Duration::from_secs(5))
        .is_some());

    for request in in_flight {
        assert_eq!(request.join().unwrap(), "200 slow");
    }
    let status = weir.wait_exit(Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    assert_eq!(
        (
            weir.log_count("drained in"),
            weir.log_count("still in flight")
        ),
        (1, 0),
        "weir exits once drained, not at the timeout:\n{}",
        weir.log()
    );
    assert!(!pid_file.exists(), "the pid file is removed");
}

#[test]
fn sigterm_gives_up_on_requests_at_graceful_shutdown_timeout() {
    let app = Instance::start("app");
    let slow = Instance::start_slow("slow", Duration::from_secs(30));
    let server = "graceful_shutdown_timeout: 1s";
    let mut weir = Weir::start_logging(&slow_route(&app, &slow, server), "info");
    let in_flight = slow_requests(&weir, &slow, 2);

    weir.signal(Signal::SIGTERM);
    // The requests would take 30 s: weir leaves them at the timeout, and says so.
    let status = weir.wait_exit(Duration::from_secs(20));
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    assert!(weir
        .wait_log(
            &["2 requests still in flight after graceful_shutdown_timeout (1s)"],
            Duration::ZERO
        )
        .is_some());
    for request in in_flight {
        assert!(request.join().unwrap().starts_with("error"));
    }
}

#[test]
fn sigint_exits_at_once() {
    let app = Instance::start("app");
    let slow = Instance::start_slow("slow", Duration::from_secs(30));
    let mut weir = Weir::start_logging(
        &slow_route(&app, &slow, "graceful_shutdown_timeout: 30s"),
        "info",
    );
    let _in_flight = slow_requests(&weir, &slow, 1);
    weir.signal(Signal::SIGINT);
    // Well before the request (30 s) or graceful_shutdown_timeout (30 s) could end.
    let status = weir.wait_exit(Duration::from_secs(15));
    assert!(status.is_some_and(|s| s.success()), "exit: {status:?}");
    assert!(
        weir.wait_log(&["SIGINT", "exiting"], Duration::from_secs(5))
            .is_some(),
        "{}",
        weir.log()
    );
    assert_eq!(weir.log_count("still in flight"), 0);
}

#[test]
fn sigquit_without_a_new_process_keeps_weir_serving_despite_a_stale_socket() {
    let app = Instance::start("app");
    let weir = Weir::start_logging(&slow_route(&app, &app, "upgrade_sock: up.sock"), "info");
    let load = Load::mixed(weir.url("/"), 20);
    // A socket file left by a new process that died: nobody listens on it.
    drop(std::os::unix::net::UnixListener::bind(weir.dir.path().join("up.sock")).unwrap());
    weir.signal(Signal::SIGQUIT);
    assert!(weir
        .wait_log(
            &["SIGQUIT: no new process waits on"],
            Duration::from_secs(10)
        )
        .is_some());
    load.wait_more(200);
    let tally = load.finish();
    assert!(tally.failed.is_empty(), "failed: {:?}", tally.failed);
}
