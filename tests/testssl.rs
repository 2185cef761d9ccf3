//! testssl.sh (Debian's `testssl`) against an https listener, as an auditor would run it:
//! no finding may be rated HIGH or CRITICAL. The certificate is issued as a public CA issues
//! one (full chain, a CRL distribution point) by a test CA testssl is told to trust, so what
//! is rated is weir's TLS setup, not the test certificate's provenance. Localhost only: no
//! DNS lookups, no revocation fetches.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long the run may take on a busy machine (about 20 seconds when idle).
const TESTSSL_DEADLINE: Duration = Duration::from_secs(180);

/// Severities that fail the test.
const REFUSED: [&str; 2] = ["HIGH", "CRITICAL"];

#[test]
fn testssl_rates_nothing_high_or_critical() {
    if !require_tools("testssl_rates_nothing_high_or_critical", &["testssl"]) {
        return;
    }
    let ca = TestCa::new();
    let (cert, key) = ca.issue(
        "localhost",
        &["localhost", "127.0.0.1"],
        &["-r", "http://127.0.0.1/weir-dev.crl"],
    );
    let app = Instance::start("app-1");
    let weir = Weir::start(&format!(
        "server: {{ pid_file: \"{{dir}}/weir.pid\" }}\n\
         listeners:\n  - name: secure\n    address: \"127.0.0.1:{{port}}\"\n    protocol: https\n\
         \x20   tls:\n      certificates:\n        - {{ cert: \"{}\", key: \"{}\" }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n",
        cert.display(),
        key.display(),
        app.address()
    ));
    let report = tempfile::tempdir().unwrap();
    let json = report.path().join("testssl.json");
    let mut run = Proc(
        Command::new("testssl")
            .args(["--quiet", "--fast", "--warnings", "off", "--color", "0"])
            // Everything rated but the client simulations, which rate nothing and take
            // two thirds of the time.
            .args(["--protocols", "--std", "--fs", "--server-preference"])
            .args(["--server-defaults", "--headers", "--vulnerable"])
            .args(["--nodns", "none", "--ip", "127.0.0.1"])
            .args(["--connect-timeout", "10", "--openssl-timeout", "10"])
            .arg("--add-ca")
            .arg(ca.path("ca.crt"))
            .arg("--jsonfile")
            .arg(&json)
            .arg(format!("https://127.0.0.1:{}", weir.port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let status = poll_until(TESTSSL_DEADLINE, || run.0.try_wait().unwrap());
    assert!(
        status.is_some(),
        "testssl did not finish in {TESTSSL_DEADLINE:?}"
    );
    let text = std::fs::read_to_string(&json)
        .unwrap_or_else(|e| panic!("testssl wrote no report ({status:?}): {e}"));
    let findings: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let field = |f: &serde_json::Value, name: &str| f[name].as_str().unwrap_or("?").to_string();
    // `cipher_order`, or one per protocol (`cipher_order-tls1_2`) in later testssl.
    let rated = findings
        .iter()
        .any(|f| field(f, "id").starts_with("cipher_order"));
    assert!(rated, "testssl did not rate the server's ciphers:\n{text}");
    let refused: Vec<String> = findings
        .iter()
        .filter(|f| REFUSED.contains(&field(f, "severity").as_str()))
        .map(|f| {
            let [severity, id, finding] = ["severity", "id", "finding"].map(|n| field(f, n));
            format!("{severity} {id}: {finding}")
        })
        .collect();
    assert!(
        refused.is_empty(),
        "testssl rated weir's TLS:\n{}",
        refused.join("\n")
    );
}
