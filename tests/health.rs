//! Health checks, failover, timeouts and discovery, on the real binary: instances die, hang,
//! fail and come back while clients keep asking.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a load generator saw.
const WAIT: Duration = Duration::from_secs(10);

#[test]
fn killing_an_instance_under_load_fails_no_request() {
    let a = Instance::start("a");
    let mut b = Instance::start("b");
    let c = Instance::start("c");
    let checks = "    health_check: { path: /health, interval: 200ms, timeout: 500ms, \
                  healthy_successes: 2, unhealthy_failures: 2 }\n";
    let weir = Weir::start_logging(
        &single_upstream("round_robin", &[(&a, 1), (&b, 1), (&c, 1)], checks),
        "warn",
    );
    let load = Load::start(weir.url("/"), 24);
    load.wait_more(100); // the load runs before the kill
    b.kill();
    let passive = weir.wait_log(&["instance `b` ejected"], WAIT);
    let active = weir.wait_log(&["instance `b` is unhealthy"], WAIT);
    b.restart();
    weir.wait_log(&["instance `b` is healthy again"], WAIT)
        .expect("b is checked healthy again after its restart");
    let back = poll_until(WAIT, || {
        serving(&weir, 3).contains(&"b".to_string()).then_some(())
    });
    let tally = load.finish();

    passive.expect("b is ejected by failed requests");
    // Ejected by its first failed request (max_fails is 1 by default), not after a run of them.
    let log = weir.log();
    let ejections: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("instance `b` ejected"))
        .collect();
    assert!(
        ejections.iter().all(|l| l.contains("after 1 failure(s)")),
        "{ejections:?}"
    );
    active.expect("b is marked unhealthy by checks");
    assert!(back.is_some(), "b receives traffic again");
    assert!(
        tally.failed.is_empty(),
        "failed requests: {:?}",
        tally.failed
    );
    assert!(tally.ok > 200, "only {} requests completed", tally.ok);
    assert!(tally.by_instance["a"] > 0 && tally.by_instance["c"] > 0);
}

#[test]
fn an_instance_failing_its_health_check_gets_no_traffic() {
    let a = Instance::start("a");
    let sick = Instance::start_with("sick", &["--health-status", "500"]);
    let checks = "    health_check: { path: /health, interval: 100ms, unhealthy_failures: 1, \
                  expected_status: [200-299] }\n";
    let weir = Weir::start_logging(
        &single_upstream("round_robin", &[(&a, 1), (&sick, 1)], checks),
        "warn",
    );
    weir.wait_log(&["instance `sick` is unhealthy", "500"], WAIT)
        .expect("the sick instance is marked unhealthy");
    let served = serving(&weir, 30);
    assert!(served.iter().all(|s| s == "a"), "served by {served:?}");
}

#[test]
fn a_hanging_instance_costs_one_read_timeout_then_is_ejected() {
    let good = Instance::start("good");
    let hang = Instance::start_slow("hang", Duration::from_secs(3600));
    let extra = "    timeouts: { read: 500ms }\n    passive: { max_fails: 1, fail_timeout: 30s }\n";
    let weir = Weir::start_logging(
        &single_upstream("round_robin", &[(&hang, 1), (&good, 1)], extra),
        "warn",
    );
    let client = client();
    let mut statuses = vec![];
    // A request left waiting on the hanging instance (an hour) would run into the client's
    // own timeout and fail here: each one ends with weir's read timeout or an answer.
    for _ in 0..10 {
        let r = client.get(weir.url("/")).send().unwrap();
        let status = r.status().as_u16();
        if status == 504 {
            let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
            let body: serde_json::Value = r.json().unwrap();
            assert_eq!(body["request_id"], id.as_str());
        }
        statuses.push(status);
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 504).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        9,
        "{statuses:?}"
    );
    weir.wait_log(&["504", "upstream `app` instance `hang`"], WAIT)
        .expect("the timeout is logged with upstream and instance");
}

#[test]
fn all_instances_down_gives_503_at_once_with_or_without_panic_mode() {
    let dead = [refused_address(), refused_address(), refused_address()];
    let yaml = format!(
        "listeners: [{{ name: web, address: \"127.0.0.1:{{port}}\" }}]\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n\
         routes:\n  - {{ name: strict, paths: [/strict], upstream: strict }}\n  \
         - {{ name: all, upstream: panicky }}\n\
         upstreams:\n  \
         panicky:\n    targets: [{{ address: \"{}\" }}, {{ address: \"{}\" }}]\n    \
         health_check: {{ type: tcp, interval: 100ms, unhealthy_failures: 1 }}\n    \
         timeouts: {{ connect: 2s }}\n  \
         strict:\n    targets: [{{ address: \"{}\" }}]\n    panic_mode: false\n    \
         health_check: {{ type: tcp, interval: 100ms, unhealthy_failures: 1 }}\n",
        dead[0].address(),
        dead[1].address(),
        dead[2].address()
    );
    let weir = Weir::start_logging(&yaml, "warn");
    for upstream in ["panicky", "strict"] {
        poll_until(WAIT, || {
            let down = format!("upstream `{upstream}`: instance");
            (weir.log_count(&down) >= if upstream == "panicky" { 2 } else { 1 }).then_some(())
        })
        .expect("every instance is marked unhealthy");
    }
    let client = client();
    // At once: one try of each refusing instance in panic mode, none with it off; never a
    // wait for the next health check.
    for path in ["/", "/strict"] {
        let r = client.get(weir.url(path)).send().unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert_eq!(r.headers()["retry-after"], "1");
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: serde_json::Value = r.json().unwrap();
        assert_eq!(body["request_id"], id.as_str());
    }
    weir.wait_log(
        &["upstream `panicky`", "panic mode: trying them anyway"],
        WAIT,
    )
    .expect("panic mode is logged");
    // Connection attempts by requests (health checks do not count here): each refusing
    // instance once in panic mode, none with it off.
    let metrics = scrape(weir.port2);
    let tries = |upstream: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| l.starts_with("weir_upstream_connect_failures_total{"))
            .filter(|l| l.contains(&format!("upstream=\"{upstream}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!((tries("panicky"), tries("strict")), (2.0, 0.0), "{metrics}");
    assert_eq!(
        weir.log_count("upstream `strict`: no instance is available"),
        0
    );
}

#[test]
fn a_backup_serves_only_while_no_primary_is_available() {
    let mut primary = Instance::start("primary");
    let backup = Instance::start("backup");
    let yaml = format!(
        "listeners: [{{ name: web, address: \"127.0.0.1:{{port}}\" }}]\n\
         routes: [{{ name: all, upstream: app }}]\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{}\", name: primary }}, \
         {{ address: \"{}\", name: backup, backup: true }}]\n    \
         health_check: {{ type: tcp, interval: 100ms, unhealthy_failures: 1, healthy_successes: 1 }}\n",
        primary.address(),
        backup.address()
    );
    let weir = Weir::start_logging(&yaml, "warn");
    assert!(serving(&weir, 10).iter().all(|s| s == "primary"));
    primary.kill();
    weir.wait_log(&["instance `primary` is unhealthy"], WAIT)
        .unwrap();
    assert!(serving(&weir, 10).iter().all(|s| s == "backup"));
    primary.restart();
    weir.wait_log(&["instance `primary` is healthy again"], WAIT)
        .unwrap();
    assert!(serving(&weir, 10).iter().all(|s| s == "primary"));
}

/// A backend that reads one request per connection, records its method and closes the
/// connection without answering.
fn closing_backend() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let method = line.split(' ').next().unwrap().to_string();
            let mut length = 0;
            loop {
                let mut header = String::new();
                reader.read_line(&mut header).unwrap();
                if header.trim().is_empty() {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            record.lock().unwrap().push(method);
        }
    });
    (address, seen)
}

#[test]
fn get_is_retried_elsewhere_but_post_is_never_sent_twice() {
    let good = Instance::start("good");
    let (closer, seen) = closing_backend();
    let yaml = format!(
        "listeners: [{{ name: web, address: \"127.0.0.1:{{port}}\" }}]\n\
         routes: [{{ name: all, upstream: app }}]\n\
         upstreams:\n  app:\n    targets: [{{ address: \"{closer}\", name: closer }}, \
         {{ address: \"{}\", name: good }}]\n    passive: {{ max_fails: 0 }}\n",
        good.address()
    );
    let weir = Weir::start(&yaml);
    let client = client();
    for _ in 0..6 {
        let r = client.get(weir.url("/")).send().unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(served_by(&r), "good");
    }
    let gets = seen.lock().unwrap().iter().filter(|m| *m == "GET").count();
    assert!(gets > 0, "the closing backend saw no GET");
    let mut failed_posts = 0;
    for _ in 0..6 {
        let r = client.post(weir.url("/")).body("order=1").send().unwrap();
        match r.status().as_u16() {
            200 => assert_eq!(served_by(&r), "good"),
            502 => failed_posts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    let posts = seen.lock().unwrap().iter().filter(|m| *m == "POST").count();
    assert!(failed_posts > 0, "no POST reached the closing backend");
    assert_eq!(
        posts, failed_posts,
        "each failed POST was sent exactly once"
    );
}

#[test]
fn slow_start_ramps_a_recovered_instance() {
    let a = Instance::start("a");
    let mut b = Instance::start("b");
    let extra = "    health_check: { type: tcp, interval: 100ms, unhealthy_failures: 1, \
                 healthy_successes: 1 }\n    slow_start: 4s\n";
    let weir = Weir::start_logging(
        &single_upstream("round_robin", &[(&a, 1), (&b, 1)], extra),
        "warn",
    );
    b.kill();
    weir.wait_log(&["instance `b` is unhealthy"], WAIT).unwrap();
    b.restart();
    weir.wait_log(&["instance `b` is healthy again"], WAIT)
        .unwrap();
    let start = Instant::now();
    let client = client();
    let (mut total, mut to_b) = (0, 0);
    while start.elapsed() < Duration::from_secs(2) {
        let r = client.get(weir.url("/")).send().unwrap();
        total += 1;
        to_b += usize::from(served_by(&r) == "b");
    }
    let share = to_b as f64 / total as f64;
    assert!(
        share < 0.35,
        "b took {share:.2} of {total} requests; its full share is 0.5"
    );
    assert!(to_b > 0, "b took nothing of {total} requests");
}

#[test]
fn max_ejection_percent_keeps_half_the_pool() {
    let good = Instance::start("good");
    let bad: Vec<Instance> = (1..=3)
        .map(|i| Instance::start_with(&format!("bad{i}"), &["--status", "500"]))
        .collect();
    let extra = "    passive: { max_fails: 1, fail_statuses: [500], max_ejection_percent: 50 }\n";
    let targets = [(&good, 1), (&bad[0], 1), (&bad[1], 1), (&bad[2], 1)];
    let weir = Weir::start_logging(&single_upstream("round_robin", &targets, extra), "warn");
    let client = client();
    for _ in 0..20 {
        client.get(weir.url("/")).send().unwrap();
    }
    let served: BTreeSet<String> = (0..20)
        .map(|_| served_by(&client.get(weir.url("/")).send().unwrap()))
        .collect();
    assert_eq!(served.len(), 2, "served by {served:?}");
    assert!(served.contains("good"));
    assert_eq!(weir.log_count("ejected for"), 2);
    assert!(weir.log_count("max_ejection_percent 50") > 0);
}

/// A DNS server on UDP that answers A queries with `answers` and AAAA with nothing.
fn dns_server(answers: Arc<Mutex<Vec<Ipv4Addr>>>) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let query = &buf[..n];
            let mut end = 12;
            while query[end] != 0 {
                end += usize::from(query[end]) + 1;
            }
            let qtype = u16::from_be_bytes([query[end + 1], query[end + 2]]);
            let ips = if qtype == 1 {
                answers.lock().unwrap().clone()
            } else {
                vec![]
            };
            let mut reply = query[..2].to_vec();
            reply.extend([0x81, 0x80, 0, 1]);
            reply.extend(u16::try_from(ips.len()).unwrap().to_be_bytes());
            reply.extend([0, 0, 0, 0]);
            reply.extend(&query[12..end + 5]);
            for ip in ips {
                reply.extend([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4]);
                reply.extend(ip.octets());
            }
            socket.send_to(&reply, from).unwrap();
        }
    });
    port
}

#[test]
fn dns_discovery_adds_and_removes_instances_without_a_restart() {
    let two = Instance::start_at("two", "127.0.0.2:0", &[]);
    let port = two.port();
    let three = Instance::start_at("three", &format!("127.0.0.3:{port}"), &[]);
    let answers = Arc::new(Mutex::new(vec![Ipv4Addr::new(127, 0, 0, 2)]));
    let dns = dns_server(answers.clone());
    let yaml = format!(
        "listeners: [{{ name: web, address: \"127.0.0.1:{{port}}\" }}]\n\
         routes: [{{ name: all, upstream: app }}]\n\
         resolver: [\"127.0.0.1:{dns}\"]\n\
         upstreams:\n  app:\n    discovery: dns\n    resolve_every: 200ms\n    \
         targets: [{{ address: \"svc.weir.test:{port}\" }}]\n"
    );
    let weir = Weir::start_logging(&yaml, "warn");
    let instances = |n| serving(&weir, n).into_iter().collect::<BTreeSet<_>>();
    let addr = |i: &Instance| i.address();
    assert_eq!(instances(4), BTreeSet::from([addr(&two)]));

    answers.lock().unwrap().push(Ipv4Addr::new(127, 0, 0, 3));
    poll_until(WAIT, || {
        (instances(4) == BTreeSet::from([addr(&two), addr(&three)])).then_some(())
    })
    .expect("the added address takes traffic");

    answers.lock().unwrap().remove(0);
    poll_until(WAIT, || {
        (instances(4) == BTreeSet::from([addr(&three)])).then_some(())
    })
    .expect("the removed address takes no more traffic");

    answers.lock().unwrap().clear();
    weir.wait_log(
        &["resolving `svc.weir.test", "keeping 1 known address"],
        WAIT,
    )
    .expect("a failed resolution is logged");
    assert_eq!(instances(4), BTreeSet::from([addr(&three)]));
}

/// Instances that discovery removed leave /metrics with them: after 50 changes of the
/// answer, the scrape holds series for the live instances only.
#[test]
fn metric_series_of_instances_discovery_removed_are_gone() {
    let answers = Arc::new(Mutex::new(vec![Ipv4Addr::new(127, 0, 1, 0)]));
    let dns = dns_server(answers.clone());
    let yaml = format!(
        "listeners: [{{ name: web, address: \"127.0.0.1:{{port}}\" }}]\n\
         admin: {{ address: \"127.0.0.1:{{port2}}\" }}\n\
         routes: [{{ name: all, upstream: app }}]\n\
         resolver: [\"127.0.0.1:{dns}\"]\n\
         upstreams:\n  app:\n    discovery: dns\n    resolve_every: 50ms\n    \
         targets: [{{ address: \"svc.weir.test:9\" }}]\n"
    );
    let weir = Weir::start_logging(&yaml, "warn");
    for change in 1..=50u8 {
        // Two addresses each time, one of them new.
        *answers.lock().unwrap() = vec![
            Ipv4Addr::new(127, 0, 1, change - 1),
            Ipv4Addr::new(127, 0, 1, change),
        ];
        poll_until(WAIT, || {
            (weir.log_count("discovery: `svc.weir.test:9` now resolves") >= usize::from(change))
                .then_some(())
        })
        .unwrap_or_else(|| panic!("change {change} is applied"));
    }
    let families = [
        "weir_requests_total",
        "weir_upstream_duration_seconds_count",
        "weir_upstream_ejections_total",
        "weir_upstream_connect_failures_total",
        "weir_upstream_health",
    ];
    let instances = |text: &str, family: &str| -> BTreeSet<String> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{family}{{")))
            .filter_map(|l| l.split("instance=\"").nth(1)?.split('"').next())
            .filter(|i| !i.is_empty())
            .map(String::from)
            .collect()
    };
    let live = BTreeSet::from(["127.0.1.49:9".to_string(), "127.0.1.50:9".to_string()]);
    let url = format!("http://127.0.0.1:{}/metrics", weir.port2);
    let mut last = String::new();
    // The last change is logged before it is swapped in: poll until the scrape has it.
    let settled = poll_until(WAIT, || {
        last = client().get(&url).send().unwrap().text().unwrap();
        families
            .iter()
            .all(|f| instances(&last, f) == live)
            .then_some(())
    });
    if settled.is_none() {
        for family in families {
            assert_eq!(instances(&last, family), live, "{family}");
        }
    }
}
