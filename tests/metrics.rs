//! The admin listener's /metrics and /status, scraped as Prometheus and an operator would.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test helper that cannot go on should fail the test loudly

mod common;

use common::*;
use std::collections::HashMap;
use std::time::Duration;

#[test]
fn request_counters_match_what_each_instance_served() {
    let (a, b, c) = (
        Instance::start("a"),
        Instance::start("b"),
        Instance::start("c"),
    );
    let admin = "admin: { address: \"127.0.0.1:{port2}\" }\n";
    let weir = Weir::start(&single_upstream(
        "round_robin",
        &[(&a, 1), (&b, 1), (&c, 1)],
        admin,
    ));
    let mut served: HashMap<String, f64> = HashMap::new();
    let http = client();
    for _ in 0..30 {
        let r = http.get(weir.url("/")).send().unwrap();
        assert_eq!(r.status(), 200);
        *served.entry(served_by(&r)).or_default() += 1.0;
    }
    let text = scrape(weir.port2);
    for id in ["a", "b", "c"] {
        let labels = [
            ("route", "all"),
            ("upstream", "app"),
            ("instance", id),
            ("code_class", "2xx"),
        ];
        assert_eq!(
            sample(&text, "weir_requests_total", &labels),
            Some(served[id]),
            "{id} in:\n{text}"
        );
        let in_flight = [("upstream", "app"), ("instance", id)];
        assert_eq!(
            sample(&text, "weir_in_flight_requests", &in_flight),
            Some(0.0)
        );
    }
    let route = [("route", "all"), ("upstream", "app")];
    let count = sample(&text, "weir_request_duration_seconds_count", &route);
    assert_eq!(count, Some(30.0));
    assert_eq!(sample(&text, "weir_build_info", &[]), Some(1.0));
    assert!(sample(&text, "process_resident_memory_bytes", &[]).is_some_and(|b| b > 0.0));

    let status_url = format!("http://127.0.0.1:{}/status", weir.port2);
    let status: serde_json::Value = http.get(status_url).send().unwrap().json().unwrap();
    assert_eq!(status["upstreams"][0]["name"], "app");
    assert_eq!(status["upstreams"][0]["available"], 3);
    assert_eq!(status["routes"], 1);
}

#[test]
fn a_dead_instance_shows_in_the_health_gauge_and_the_admin_api() {
    let (a, mut b) = (Instance::start("a"), Instance::start("b"));
    let extra = "    health_check: { type: tcp, interval: 100ms, unhealthy_failures: 1 }\n\
                 admin: { address: \"127.0.0.1:{port2}\" }\n";
    let weir = Weir::start(&single_upstream("round_robin", &[(&a, 1), (&b, 1)], extra));
    let health = |id: &str| {
        sample(
            &scrape(weir.port2),
            "weir_upstream_health",
            &[("upstream", "app"), ("instance", id)],
        )
    };
    assert_eq!(health("b"), Some(1.0));
    b.kill();
    let dropped = poll_until(Duration::from_secs(5), || {
        (health("b") == Some(0.0)).then_some(())
    });
    assert!(dropped.is_some(), "b is reported down");
    assert_eq!(health("a"), Some(1.0));

    // The same, instance by instance, from the admin API.
    let admin = |path: &str| {
        let url = format!("http://127.0.0.1:{}{path}", weir.port2);
        let r = client().get(url).send().unwrap();
        (r.status().as_u16(), r.json::<serde_json::Value>().unwrap())
    };
    let (status, list) = admin("/upstreams");
    assert_eq!((status, &list["data"][0]["name"]), (200, &"app".into()));
    let instance = |app: &serde_json::Value, id: &str| {
        let all = app["data"].as_array().unwrap();
        all.iter().find(|i| i["instance"] == id).unwrap().clone()
    };
    let states = poll_until(Duration::from_secs(5), || {
        let (status, app) = admin("/upstreams/app/health");
        assert_eq!(status, 200);
        let (a_state, b_state) = (instance(&app, "a"), instance(&app, "b"));
        (a_state["last_check"] == "passed" && b_state["last_check"] == "failed")
            .then_some((a_state, b_state))
    });
    let (a_state, b_state) = states.expect("both instances were checked");
    assert_eq!(a_state["health"], "healthy");
    assert_eq!(b_state["health"], "unhealthy");
    assert_eq!(b_state["in_flight"], 0);
    assert_eq!(b_state["weight"], 1);
    let (status, missing) = admin("/upstreams/nope/health");
    assert_eq!(status, 404);
    assert!(missing["error"].as_str().unwrap().contains("`nope`"));
}

#[test]
fn an_admin_listener_off_loopback_needs_its_token() {
    let a = Instance::start("a");
    let admin = "admin: { address: \"0.0.0.0:{port2}\", token: s3cret }\n";
    let weir = Weir::start(&single_upstream("round_robin", &[(&a, 1)], admin));
    let url = format!("http://127.0.0.1:{}/status", weir.port2);
    let http = client();
    let refused = http.get(&url).send().unwrap();
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let wrong = http.get(&url).bearer_auth("guess").send().unwrap();
    assert_eq!(wrong.status(), 401);
    let allowed = http.get(&url).bearer_auth("s3cret").send().unwrap();
    assert_eq!(allowed.status(), 200);
    let missing = http
        .get(url.replace("/status", "/nothing"))
        .bearer_auth("s3cret")
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[test]
fn open_connections_and_tls_handshakes_are_counted_per_listener() {
    let a = Instance::start("a");
    let ca = TestCa::new();
    let (cert, key) = ca.issue("localhost", &["localhost"], &[]);
    let weir = Weir::start(&format!(
        "listeners:\n  - {{ name: web, address: \"127.0.0.1:{{port}}\" }}\n  \
         - name: secure\n    address: \"127.0.0.1:{{port2}}\"\n    protocol: https\n    \
         tls: {{ certificates: [{{ cert: \"{}\", key: \"{}\" }}] }}\n\
         routes:\n  - {{ name: all, upstream: app }}\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: a }}]\n\
         admin: {{ address: \"127.0.0.1:{{port3}}\" }}\n",
        cert.display(),
        key.display(),
        a.address()
    ));
    let scrape = || scrape(weir.port3);
    let open = |n: f64| {
        poll_until(Duration::from_secs(10), || {
            let text = scrape();
            let value = sample(&text, "weir_downstream_connections", &[("listener", "web")]);
            (value == Some(n)).then_some(())
        })
        .unwrap_or_else(|| panic!("expected {n} open connections:\n{}", scrape()));
    };

    // Three keep-alive clients hold a connection each until they are dropped.
    let clients: Vec<_> = (0..3).map(|_| client()).collect();
    for c in &clients {
        assert_eq!(c.get(weir.url("/")).send().unwrap().status(), 200);
    }
    open(3.0);
    drop(clients);
    open(0.0);

    // Handshakes by version, on the HTTPS listener only.
    for version in ["-tls1_2", "-tls1_3", "-tls1_3"] {
        let out = s_client(weir.port2, &["-servername", "localhost", version]);
        assert!(out.contains("Cipher is"), "{version}: {out}");
    }
    let text = scrape();
    for (version, n) in [("TLSv1.2", 1.0), ("TLSv1.3", 2.0)] {
        let labels = [("listener", "secure"), ("version", version)];
        let counted = sample(&text, "weir_tls_handshakes_total", &labels);
        assert_eq!(counted, Some(n), "{version}:\n{text}");
    }
    let plain = [("listener", "web"), ("version", "TLSv1.3")];
    assert_eq!(
        sample(&text, "weir_tls_handshakes_total", &plain),
        Some(0.0)
    );
}
