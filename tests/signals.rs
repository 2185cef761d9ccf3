//! The signals weir documents, sent as logrotate and init systems send them: blindly,
//! whatever the configuration holds. None of them may end weir unless it means to stop.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use nix::sys::signal::Signal;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// logrotate's `postrotate` sends SIGUSR1 whether or not weir writes a log file: with no
/// access log, or one on stdout, weir says there is nothing to reopen and goes on serving.
#[test]
fn sigusr1_without_an_access_log_file_is_a_logged_no_op() {
    let app = Instance::start("app");
    for extra in ["", "access_log: { format: json, path: stdout }\n"] {
        let weir =
            Weir::start_logging(&single_upstream("round_robin", &[(&app, 1)], extra), "info");
        for round in 1..=2 {
            weir.signal(Signal::SIGUSR1);
            poll_until(WAIT, || {
                (weir.log_count("SIGUSR1: no access log file to reopen") >= round).then_some(())
            })
            .unwrap_or_else(|| panic!("SIGUSR1 #{round} is logged as a no-op ({extra:?})"));
            let answer = client().get(weir.url("/")).send().unwrap();
            assert_eq!(answer.status(), 200, "weir still serves ({extra:?})");
        }
    }
}
