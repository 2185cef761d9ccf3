//! HTTPS: certificates by SNI, TLS versions, session resumption, HTTP/2, redirects, HSTS,
//! certificate hot reload under load, and TLS to upstream instances. Clients are curl,
//! openssl s_client and reqwest; certificates come from certs/make-dev-certs at test time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// One https listener on `{port}` with `certificates` (YAML flow items) and `tls_extra`
/// lines under `tls:`, proxying to `app`.
fn https_config(app: &Instance, certificates: &[String], tls_extra: &str) -> String {
    format!(
        "server: {{ pid_file: \"{{dir}}/weir.pid\" }}\n\
         listeners:\n  - name: secure\n    address: \"127.0.0.1:{{port}}\"\n    protocol: https\n\
         \x20   tls:\n{tls_extra}      certificates:\n{}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: {} }}]\n",
        certificates
            .iter()
            .map(|c| format!("        - {c}"))
            .collect::<Vec<_>>()
            .join("\n"),
        app.address(),
        app.id
    )
}

/// `{ cert: …, key: … }` plus `extra` keys.
fn cert_entry((cert, key): &(std::path::PathBuf, std::path::PathBuf), extra: &str) -> String {
    format!(
        "{{ cert: \"{}\", key: \"{}\"{extra} }}",
        cert.display(),
        key.display()
    )
}

/// The subject line s_client prints for the certificate served to `args`.
fn subject(port: u16, args: &[&str]) -> String {
    let out = s_client(port, args);
    out.lines()
        .find(|l| l.starts_with("subject="))
        .unwrap_or_else(|| panic!("no certificate in:\n{out}"))
        .to_string()
}

#[test]
fn sni_picks_each_certificate_with_its_chain_and_no_sni_gets_the_default() {
    let ca = TestCa::new();
    let a = ca.issue("a", &["a.test"], &[]);
    let b = ca.issue("b", &["b.test", "*.b.test"], &[]);
    let fallback = ca.issue("fallback", &["fallback.test"], &["-d", "5"]);
    let app = Instance::start("app-1");
    let config = https_config(
        &app,
        &[
            cert_entry(&a, ""),
            cert_entry(&b, ""),
            cert_entry(&fallback, ", default: true"),
        ],
        "",
    );
    let weir = Weir::start_logging(&config, "warn");
    let port = weir.port;
    assert_eq!(
        subject(port, &["-servername", "a.test"]),
        "subject=CN = a.test"
    );
    assert_eq!(
        subject(port, &["-servername", "b.test"]),
        "subject=CN = b.test"
    );
    assert_eq!(
        subject(port, &["-servername", "API.B.test"]),
        "subject=CN = b.test"
    );
    assert_eq!(
        subject(port, &["-servername", "x.y.b.test"]),
        "subject=CN = fallback.test"
    );
    assert_eq!(
        subject(port, &["-servername", "other.test"]),
        "subject=CN = fallback.test"
    );
    assert_eq!(
        subject(port, &["-noservername"]),
        "subject=CN = fallback.test"
    );
    // The full chain is served: the root alone verifies it.
    let ca_file = ca.ca().display().to_string();
    let out = s_client(
        port,
        &[
            "-servername",
            "a.test",
            "-CAfile",
            &ca_file,
            "-verify_return_error",
            "-showcerts",
        ],
    );
    assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    assert_eq!(
        out.matches("-----BEGIN CERTIFICATE-----").count(),
        2,
        "{out}"
    );
    // A certificate close to expiry is logged with its names.
    weir.wait_log(
        &["certificate", "fallback.test", "expires in"],
        Duration::from_secs(5),
    )
    .expect("an expiry warning");
}

#[test]
fn ecdsa_and_rsa_certificates_for_one_name_are_served_as_the_client_supports() {
    let ca = TestCa::new();
    let ec = ca.issue("ec", &["shop.test"], &[]);
    let rsa = ca.issue("rsa", &["shop.test"], &["-k", "rsa"]);
    let app = Instance::start("app-1");
    let config = https_config(&app, &[cert_entry(&ec, ""), cert_entry(&rsa, "")], "");
    let weir = Weir::start(&config);
    let key_type = |args: &[&str]| {
        let out = s_client(weir.port, args);
        out.lines()
            .find(|l| l.starts_with("Peer signature type"))
            .unwrap_or_else(|| panic!("no signature type in:\n{out}"))
            .to_string()
    };
    assert!(key_type(&["-servername", "shop.test"]).contains("ECDSA"));
    let rsa_only = [
        "-servername",
        "shop.test",
        "-tls1_2",
        "-cipher",
        "ECDHE-RSA-AES128-GCM-SHA256",
    ];
    assert!(key_type(&rsa_only).contains("RSA"));
}

#[test]
fn curl_negotiates_http2_or_http1_and_the_upstream_sees_https() {
    let ca = TestCa::new();
    let cert = ca.issue("site", &["site.test"], &[]);
    let app = Instance::start("app-1");
    let weir = Weir::start(&https_config(&app, &[cert_entry(&cert, "")], ""));
    let url = format!("https://site.test:{}/hello", weir.port);
    let resolve = format!("site.test:{}:127.0.0.1", weir.port);
    let ca_file = ca.ca().display().to_string();
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = Command::new("curl")
            .args(["-sS", flag, "--cacert", &ca_file, "--resolve", &resolve])
            .args(["-w", "\n%{http_version} %{http_code}", &url])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, status) = text.rsplit_once('\n').unwrap();
        assert_eq!(status, format!("{version} 200"), "{text}");
        let echo: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(echo["path"], "/hello");
        assert_eq!(echo["headers"]["x-forwarded-proto"], "https");
    }
    // An HTTP/2 client library, through ALPN.
    let resp = ca.client(&["site.test"]).get(&url).send().unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    assert_eq!(served_by(&resp), "app-1");
}

#[test]
fn only_tls_1_2_and_1_3_are_accepted_and_min_version_raises_the_floor() {
    let ca = TestCa::new();
    let cert = ca.issue("site", &["site.test"], &[]);
    let app = Instance::start("app-1");
    let weir = Weir::start(&https_config(&app, &[cert_entry(&cert, "")], ""));
    let handshake = |port: u16, version: &str| {
        // The client itself would refuse TLS 1.0/1.1 at its default security level.
        let out = s_client(port, &[version, "-cipher", "DEFAULT:@SECLEVEL=0"]);
        // `New, TLSv1.3, Cipher is …`, or `New, (NONE), Cipher is (NONE)` when refused.
        out.lines()
            .find_map(|l| l.strip_prefix("New, ")?.split(',').next())
            .filter(|v| v.starts_with("TLS"))
            .map(str::to_string)
    };
    assert_eq!(handshake(weir.port, "-tls1"), None);
    assert_eq!(handshake(weir.port, "-tls1_1"), None);
    assert_eq!(handshake(weir.port, "-tls1_2").as_deref(), Some("TLSv1.2"));
    assert_eq!(handshake(weir.port, "-tls1_3").as_deref(), Some("TLSv1.3"));
    let strict = Weir::start(&https_config(
        &app,
        &[cert_entry(&cert, "")],
        "      min_version: 1.3\n",
    ));
    assert_eq!(handshake(strict.port, "-tls1_2"), None);
    assert_eq!(
        handshake(strict.port, "-tls1_3").as_deref(),
        Some("TLSv1.3")
    );
}

/// Runs s_client with `-sess_out` (writing `session`), keeping stdin open until the
/// session file is written: TLS 1.3 tickets arrive after the handshake.
fn save_session(port: u16, version: &str, session: &Path) {
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version,
        ])
        .args(["-servername", "site.test", "-sess_out"])
        .arg(session)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let written = poll_until(Duration::from_secs(5), || {
        std::fs::metadata(session).ok().filter(|m| m.len() > 0)
    });
    drop(child.stdin.take());
    let _ = child.wait();
    written.expect("a session ticket");
}

#[test]
fn a_returning_client_resumes_its_session() {
    let ca = TestCa::new();
    let cert = ca.issue("site", &["site.test"], &[]);
    let app = Instance::start("app-1");
    let weir = Weir::start(&https_config(&app, &[cert_entry(&cert, "")], ""));
    for version in ["-tls1_2", "-tls1_3"] {
        let session = ca.path(&format!("session{version}.pem"));
        save_session(weir.port, version, &session);
        let session = session.display().to_string();
        let out = s_client(
            weir.port,
            &[version, "-servername", "site.test", "-sess_in", &session],
        );
        assert!(out.contains("Reused, TLSv1."), "{version}:\n{out}");
    }
}

#[test]
fn plain_listener_redirects_to_https_except_listed_paths_and_https_sends_hsts() {
    let ca = TestCa::new();
    let cert = ca.issue("site", &["shop.test"], &[]);
    let app = Instance::start("app-1");
    let config = format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\", redirect_https: true, \
         redirect_except: [/.well-known/acme-challenge/] }}\n\
         \x20 - name: secure\n    address: \"127.0.0.1:{{port2}}\"\n    protocol: https\n\
         \x20   hsts: {{ max_age: 1d, include_subdomains: true }}\n\
         \x20   tls: {{ certificates: [{}] }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\" }}]\n",
        cert_entry(&cert, ""),
        app.address()
    );
    let weir = Weir::start(&config);
    let plain = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", weir.port);
    let expected = format!("https://shop.test:{}/path/x?q=1&r=2", weir.port2);
    let get = plain
        .get(url("/path/x?q=1&r=2"))
        .header("Host", "shop.test")
        .send()
        .unwrap();
    assert_eq!(get.status(), 301);
    assert_eq!(get.headers()["location"], expected.as_str());
    let post = plain
        .post(url("/path/x?q=1&r=2"))
        .header("Host", "shop.test")
        .body("x")
        .send()
        .unwrap();
    assert_eq!(post.status(), 308);
    assert_eq!(post.headers()["location"], expected.as_str());
    let acme = plain
        .get(url("/.well-known/acme-challenge/token"))
        .send()
        .unwrap();
    assert_eq!(acme.status(), 200);
    assert!(acme.headers().get("strict-transport-security").is_none());
    // Following the redirect lands on HTTPS, which sends HSTS.
    let https = ca
        .client(&["shop.test"])
        .get(format!("http://shop.test:{}/path", weir.port))
        .send()
        .unwrap();
    assert_eq!(https.status(), 200);
    assert_eq!(https.url().scheme(), "https");
    assert_eq!(
        https.headers()["strict-transport-security"],
        "max-age=86400; includeSubDomains"
    );
}

#[test]
fn replaced_certificates_are_served_without_a_restart_and_no_request_fails() {
    let ca = TestCa::new();
    let cert = ca.issue("site", &["site.test"], &[]);
    let app = Instance::start("app-1");
    let weir = Weir::start_logging(&https_config(&app, &[cert_entry(&cert, "")], ""), "info");
    let first = file_serial(&cert.0);
    assert_eq!(served_serial(weir.port, "site.test"), first);
    let url = format!("https://site.test:{}/", weir.port);
    let load = Load::mixed_with(url, 8, || ca.builder(&["site.test"]));
    load.wait_more(50);

    // 1. New files on disk are picked up on their own.
    ca.issue("site", &["site.test"], &[]);
    let second = file_serial(&cert.0);
    assert_ne!(second, first);
    poll_until(Duration::from_secs(10), || {
        (served_serial(weir.port, "site.test") == second).then_some(())
    })
    .expect("the new certificate is served within seconds");

    // 2. `weir reload` (SIGHUP) reloads them at once.
    let before = load.served();
    ca.issue("site", &["site.test"], &[]);
    let third = file_serial(&cert.0);
    succeed(
        Command::new(weir_bin())
            .args(["reload", "--config"])
            .arg(weir.config()),
    );
    weir.wait_log(&["SIGHUP: reloading"], Duration::from_secs(5))
        .expect("the running weir got the signal");
    poll_until(Duration::from_secs(10), || {
        (served_serial(weir.port, "site.test") == third).then_some(())
    })
    .expect("the reloaded certificate is served");

    // 3. A broken replacement keeps the working certificate and says why.
    std::fs::write(&cert.0, "not a certificate\n").unwrap();
    weir.wait_log(
        &[
            "weir.yaml:",
            "certificates[0]",
            "holds no certificate",
            "keeps serving",
        ],
        Duration::from_secs(10),
    )
    .expect("the failed reload is logged with its location");
    assert_eq!(served_serial(weir.port, "site.test"), third);

    poll_until(Duration::from_secs(10), || {
        (load.served() > before + 50).then_some(())
    })
    .expect("load kept flowing");
    let tally = load.finish();
    assert!(
        tally.failed.is_empty(),
        "failed during the swaps: {:?}",
        tally.failed
    );
    assert!(tally.ok > 100);
}

/// weir in front of one HTTPS instance with certificate `backend.test`, with `tls` as the
/// upstream's `tls:` and `extra` upstream keys.
fn reencrypting(backend: &Instance, tls: &str, extra: &str) -> Weir {
    Weir::start_logging(
        &format!(
            "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n\
             routes:\n  - {{ name: all, upstream: secure_app }}\n\
             upstreams:\n  secure_app:\n    targets: [{{ address: \"{}\", name: b1 }}]\n    tls: {tls}\n{extra}",
            backend.address()
        ),
        "warn",
    )
}

#[test]
fn upstream_tls_verifies_against_the_configured_ca_and_speaks_http2_when_asked() {
    let ca = TestCa::new();
    let (cert, key) = ca.issue("backend", &["backend.test"], &[]);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let backend = Instance::start_with("b1", &["--cert", &cert, "--key", &key]);
    let ca_file = ca.ca().display().to_string();
    let trusted = format!("{{ sni: backend.test, ca: \"{ca_file}\" }}");

    let weir = reencrypting(&backend, &trusted, "");
    let echo: serde_json::Value = client().get(weir.url("/x")).send().unwrap().json().unwrap();
    assert_eq!(echo["instance"], "b1");
    assert_eq!(echo["version"], "HTTP/1.1");

    let h2 = reencrypting(&backend, &trusted, "    http2: true\n");
    let echo: serde_json::Value = client().get(h2.url("/x")).send().unwrap().json().unwrap();
    assert_eq!(echo["version"], "HTTP/2.0");

    // Another CA: the instance's certificate is not trusted.
    let other = TestCa::new();
    other.issue("unused", &["unused.test"], &[]);
    let untrusted = format!("{{ sni: backend.test, ca: \"{}\" }}", other.ca().display());
    let weir = reencrypting(&backend, &untrusted, "    retries: 0\n");
    let resp = client().get(weir.url("/x")).send().unwrap();
    assert_eq!(resp.status(), 502);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(body["request_id"], id.as_str());
    weir.wait_log(
        &[&id, "502", "secure_app", "certificate verify failed"],
        Duration::from_secs(5),
    )
    .expect("a log line naming the failed verification");

    // A name the certificate does not carry fails too.
    let wrong_name = format!("{{ sni: other.test, ca: \"{ca_file}\" }}");
    let weir = reencrypting(&backend, &wrong_name, "    retries: 0\n");
    assert_eq!(client().get(weir.url("/x")).send().unwrap().status(), 502);
}

#[test]
fn certificates_that_do_not_load_are_all_reported_where_they_are_configured() {
    let ca = TestCa::new();
    let (cert, _) = ca.issue("a", &["a.test"], &[]);
    let (_, other_key) = ca.issue("b", &["b.test"], &[]);
    let missing = (
        Path::new("/nonexistent/site.crt").to_path_buf(),
        other_key.clone(),
    );
    let app = Instance::start("app-1");
    let yaml = https_config(
        &app,
        &[
            cert_entry(&(cert.clone(), other_key.clone()), ""),
            cert_entry(&missing, ""),
        ],
        "",
    )
    .replace("{dir}", "/tmp")
    .replace("{port}", &free_port().to_string());
    let (_dir, path) = write_config(&yaml);
    let out = weir_test(&path);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert_eq!(
        lines[0],
        format!(
            "{}:8:11: listeners[0].tls.certificates[0]: the key in {} does not belong to the certificate in {}",
            path.display(),
            other_key.display(),
            cert.display()
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "{}:9:11: listeners[0].tls.certificates[1]: ",
            path.display()
        )) && lines[1].contains("cannot read /nonexistent/site.crt: No such file"),
        "{stderr}"
    );
}
